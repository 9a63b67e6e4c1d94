use supervisor::{supervised, Context};

#[supervised(restart)]
async fn worker(_ctx: Context) {}

fn main() {}
