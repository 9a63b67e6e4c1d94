use supervisor::{supervised, Context};

#[supervised(ready = exec())]
async fn job(_ctx: Context) {}

fn main() {}
