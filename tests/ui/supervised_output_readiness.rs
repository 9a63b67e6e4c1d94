use supervisor::{supervised, Context};

#[supervised(ready = output("listening"))]
async fn worker(_ctx: Context) {}

fn main() {}
