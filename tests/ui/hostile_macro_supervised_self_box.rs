use supervisor::{supervised, Context};

struct S;

impl S {
    #[supervised]
    async fn worker(self: Box<Self>, _ctx: Context) {}
}

fn main() {}
