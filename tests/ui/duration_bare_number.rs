use supervisor::{supervised, Context};

#[supervised(restart = 5)]
async fn worker(_ctx: Context) {}

fn main() {}
