use supervisor::{supervise, Context, Supervisor};

mod a {
    #[supervisor::supervised(name = "alpha")]
    pub(crate) async fn worker(ctx: supervisor::Context) {
        ctx.cancelled().await;
    }
}

mod b {
    #[supervisor::supervised(name = "beta")]
    pub(crate) async fn worker(ctx: supervisor::Context) {
        ctx.cancelled().await;
    }
}

async fn p(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        task a::worker;
        task b::worker;
        task c = p { depends_on = [worker] };
    };
}
