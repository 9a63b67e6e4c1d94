use supervisor::{supervised, Context};

#[supervised(stop_timeout = "30")]
async fn worker(_ctx: Context) {}

fn main() {}
