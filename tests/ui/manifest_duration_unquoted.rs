use supervisor::{supervise, Context, Supervisor};

async fn idle(ctx: Context) {
    ctx.cancelled().await;
}

fn main() {
    // A duration is a string: each says so at once, with the value written.
    let _sup: Supervisor = supervise! {
        shutdown_timeout = 30s;
        task a = idle { restart = 5s };
        task b = idle { stop_timeout = 10ms };
        task c = idle { watchdog = 1.5s };
        task d = idle { window = 1m 30s, window_max = 3 };
        task e = idle { ready = notified, readiness_timeout = 1_000ms };
        task f = idle { restart = 1e3ms };
    };
}
