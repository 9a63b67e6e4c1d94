use supervisor::{supervised, Context};

#[supervised(name = "jobs/report")]
async fn report(_ctx: Context) {}

fn main() {}
