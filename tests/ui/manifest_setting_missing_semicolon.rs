use supervisor::{supervise, Context, Supervisor};

async fn idle(ctx: Context) {
    ctx.cancelled().await;
}

fn main() {
    // The values are right: only the `;` after each is missing.
    let _sup: Supervisor = supervise! {
        shutdown_timeout = "30s"
        task b = idle;
        shutdown_order = "concurrent"
        strategy = "one_for_all";
    };
}
