use supervisor::{supervise, Context, Supervisor};

async fn idle(ctx: Context) {
    ctx.cancelled().await;
}

fn main() {
    // The builder's names for options the manifest names otherwise.
    let _sup: Supervisor = supervise! {
        task a = idle { max_restarts = 3, delay = "5s" };
        task b = idle { readiness = notified, restart_policy = "always" };
        daemon c = "c" { current_dir = "/srv", args = ["--port", "8080"] };
        task d = idle { current_dir = "/srv" };
        task e = idle { ready = tcp("127.0.0.1:5432"), failure_threshold = 3 };
        group g { max_restarts = 2 } { task f = idle; }
    };
}
