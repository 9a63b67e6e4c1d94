use supervisor::{supervised, Context};

struct Service;

impl Service {
    #[supervised]
    async fn run(&self, _ctx: Context) {}
}

fn main() {}
