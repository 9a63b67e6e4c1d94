//! Two `#[supervised]` fns of one name in two modules, each with a unit
//! name of its own, are two units of one group.
use supervisor::{Context, Supervisor, supervise};

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

#[supervisor::supervised]
async fn run(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        task a::run;
        task b::run;
        task run;
    };
}
