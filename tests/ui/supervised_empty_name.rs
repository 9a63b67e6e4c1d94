use supervisor::{supervised, Context};

#[supervised(name = "")]
async fn worker(_ctx: Context) {}

fn main() {}
