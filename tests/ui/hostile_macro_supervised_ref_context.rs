use supervisor::{supervised, Context};

#[supervised]
async fn worker(_ctx: &Context) {}

fn main() {}
