use supervisor::{supervised, Context};

#[supervised]
async fn worker<'a>(_ctx: Context) {}

fn main() {}
