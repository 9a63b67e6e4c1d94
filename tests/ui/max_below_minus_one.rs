use supervisor::{supervised, Context};

#[supervised(max = -2)]
async fn worker(_ctx: Context) {}

fn main() {}
