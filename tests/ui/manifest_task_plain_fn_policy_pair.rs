use supervisor::{supervise, Context, Supervisor};

async fn cleanup(ctx: Context) {
    ctx.cancelled().await;
}

fn main() {
    // Only the error that the fn is not an #[supervised] one.
    let _sup: Supervisor = supervise! {
        task cleanup { max_delay = "5s", window = "10s" };
    };
}
