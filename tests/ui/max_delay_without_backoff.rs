use supervisor::{supervised, Context};

#[supervised(max_delay = "1m")]
async fn worker(_ctx: Context) {}

fn main() {}
