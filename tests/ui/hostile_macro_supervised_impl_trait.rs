use supervisor::{supervised, Context};

#[supervised]
async fn worker(_ctx: Context) -> impl std::fmt::Debug {
    5
}

fn main() {}
