use supervisor::{supervised, Context};

#[supervised]
async fn worker(_ctx: Context) -> i32 {
    5
}

fn main() {}
