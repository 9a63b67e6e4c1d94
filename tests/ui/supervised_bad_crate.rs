use supervisor::{supervised, Context};

#[supervised(crate = "not a path")]
async fn worker(_ctx: Context) {}

fn main() {}
