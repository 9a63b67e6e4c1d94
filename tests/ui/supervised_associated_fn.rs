use supervisor::{supervised, Context};

struct Service;

impl Service {
    #[supervised]
    async fn run(_ctx: Context) -> Self {
        Service
    }
}

fn main() {}
