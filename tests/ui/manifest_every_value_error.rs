use supervisor::{supervise, Context, Supervisor};

async fn serve(ctx: Context) {
    ctx.cancelled().await
}

fn main() {
    let _sup: Supervisor = supervise! {
        daemon logger = "echo #stamp
| tee /tmp/log";
        task a = serve { backoff = 1e309 };
        task b = serve { max = 99999999999999999999999999999999999999999 };
        task c = serve { window = "0s", window_max = 1 };
    };
}
