use supervisor::{supervised, Context};

#[supervised(max_restarts = 3, delay = "5s", readiness = notified)]
async fn worker(_ctx: Context) {}

fn main() {}
