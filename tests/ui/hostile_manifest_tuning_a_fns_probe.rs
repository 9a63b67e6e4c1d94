use supervisor::{Context, Supervisor, supervise, supervised};

#[supervised(ready = tcp("127.0.0.1:1"))]
async fn tcp_ready(ctx: Context) {
    ctx.cancelled().await;
}

fn main() {
    let _sup: Supervisor = supervise! {
        task tcp_ready { readiness_period = "1s" };
    };
}
