use supervisor::{supervised, Context};

#[supervised(backoff = 0.5)]
async fn worker(_ctx: Context) {}

fn main() {}
