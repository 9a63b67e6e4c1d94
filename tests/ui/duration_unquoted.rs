use supervisor::{supervised, Context};

#[supervised(restart = 5s, stop_timeout = 250ms, max_delay = 1.5m)]
async fn worker(_ctx: Context) {}

fn main() {}
