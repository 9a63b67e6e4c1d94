use supervisor::{supervised, Context};

trait Service {
    #[supervised]
    async fn run(ctx: Context);
}

fn main() {}
