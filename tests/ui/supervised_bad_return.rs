use supervisor::{supervised, Context};

#[supervised]
async fn worker(_ctx: Context) -> u32 {
    7
}

fn main() {}
