use supervisor::{supervised, Context};

trait Job {
    #[supervised]
    async fn run(_ctx: Context) {}
}

fn main() {}
