use supervisor::{Context, Supervisor, supervise, supervised};

#[supervised(restart = "1s")]
async fn ticker(ctx: Context) {
    ctx.cancelled().await;
}

#[supervised(restart = "1s", max = 3)]
async fn tuned(_ctx: Context) {}

mod jobs {
    #[supervised(name = "jobs-report")]
    pub async fn report(_ctx: supervisor::Context) {}
    use supervisor::supervised;
}

async fn cleanup_loop(_ctx: Context) -> anyhow::Result<()> {
    Ok(())
}

fn main() {
    let prefix = String::from("hi");
    let sup: Supervisor = supervise! {
        shutdown_timeout = "30s";
        daemon worker = "worker --port 8080 'quoted arg' \"double quoted\"" {
            restart = "5s", max = -1, on = "always", backoff = 1.5, max_delay = "30s",
            jitter = 0.2, reset_after = "10m", window = "1m", window_max = 10,
            stop_timeout = "3s", stop_signal = "INT", dir = "/tmp",
            env = { RUST_LOG = "info", "WITH-DASH" = "x" },
        };
        daemon web = ["python3", "-m", "http.server", "8000"];
        daemon "named-with-dash" = "sleep 1";
        daemon piped = ["sh", "-c", "echo a | wc -l"] { max = 0 };
        task ticker;
        task jobs::report;
        task tuned { max = -1, on = "failure", jitter = 0.1, stop_timeout = "1s" };
        task cleanup = cleanup_loop { restart = "1s", max = 3 };
        task closure = move |ctx: Context| {
            let prefix = prefix.clone();
            async move {
                let _ = (prefix, ctx.name());
            }
        } { on = "never" };
        task "string-name" = cleanup_loop;
    };
    let _ = sup;
    let _empty: Supervisor = supervise! {};
}
