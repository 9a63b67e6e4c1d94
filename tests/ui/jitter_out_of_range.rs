use supervisor::{supervised, Context};

#[supervised(jitter = 1.5)]
async fn worker(_ctx: Context) {}

fn main() {}
