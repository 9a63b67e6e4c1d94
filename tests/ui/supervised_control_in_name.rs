use supervisor::{supervised, Context};

#[supervised(name = "report\r")]
async fn report(_ctx: Context) {}

fn main() {}
