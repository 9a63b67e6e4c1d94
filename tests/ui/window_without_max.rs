use supervisor::{supervised, Context};

#[supervised(window = "30s")]
async fn worker(_ctx: Context) {}

fn main() {}
