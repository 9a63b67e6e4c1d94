use supervisor::{supervised, Context};

#[supervised(restart = "1s")]
fn worker(_ctx: Context) {}

fn main() {}
