use supervisor::{supervised, Context};

#[supervised(restat = "5s")]
async fn worker(_ctx: Context) {}

fn main() {}
