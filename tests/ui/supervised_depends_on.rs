use supervisor::{supervised, Context};

#[supervised(depends_on = [db])]
async fn worker(_ctx: Context) {}

fn main() {}
