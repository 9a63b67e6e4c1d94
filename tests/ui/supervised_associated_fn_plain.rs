use supervisor::{supervised, Context};

struct Service;

impl Service {
    #[supervised]
    async fn run(_ctx: Context) {}
}

fn main() {}
