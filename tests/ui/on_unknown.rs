use supervisor::{supervised, Context};

#[supervised(on = "failed")]
async fn worker(_ctx: Context) {}

fn main() {}
