use supervisor::{supervised, Context};

#[supervised(max = "3")]
async fn worker(_ctx: Context) {}

fn main() {}
