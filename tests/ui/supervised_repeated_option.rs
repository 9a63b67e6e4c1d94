use supervisor::{supervised, Context};

#[supervised(restart = "5s", max = 3, restart = "10s")]
async fn worker(_ctx: Context) {}

fn main() {}
