use supervisor::{supervised, Context};

#[supervised]
async fn worker<T: Default>(_ctx: Context) {}

fn main() {}
