use supervisor::{supervised, Context};

#[supervised(restart = "5 parsecs")]
async fn worker(_ctx: Context) {}

fn main() {}
