use supervisor::supervise;

mod a {
    #[supervisor::supervised(name = "run-a")]
    pub(crate) async fn run(ctx: supervisor::Context) {
        ctx.cancelled().await;
    }
}

mod b {
    #[supervisor::supervised(name = "run-b")]
    pub(crate) async fn run(ctx: supervisor::Context) {
        ctx.cancelled().await;
    }
}

supervise! {
    struct Jobs;
    task a::run;
    task b::run;
}

fn main() {}
