use supervisor::{supervised, Context};

#[supervised(restart = "5s" max = 3)]
async fn worker(_ctx: Context) {}

fn main() {}
