//! The generated code is warning-free even with strict lints, and with the
//! runtime's names imported (so no generated path is a redundant
//! qualification).
#![deny(warnings, unused_qualifications, missing_docs, unreachable_pub)]
#![deny(missing_debug_implementations, unused_results, rust_2018_idioms)]

use std::time::Duration;
use supervisor::{
    Context, DaemonSpec, MaxRestarts, RestartOn, RestartPolicy, Signal, Supervisor, TaskSpec,
    supervise, supervised,
};

/// A documented public task.
#[supervised(restart = "5s", max = 3, on = "failure", stop_timeout = "1s")]
pub async fn worker(ctx: Context) -> anyhow::Result<()> {
    ctx.cancelled().await;
    Ok(())
}

#[supervised(backoff = 2.0, max_delay = "1m", jitter = 0.5, reset_after = "1h")]
async fn private_task() {}

async fn cleanup(_ctx: Context) {}

fn unused_imports_are_used() -> (Duration, Option<DaemonSpec>, MaxRestarts, RestartOn, RestartPolicy, Signal, Option<TaskSpec>) {
    (Duration::ZERO, None, MaxRestarts::Unlimited, RestartOn::Always, RestartPolicy::new(), Signal::TERM, None)
}

fn main() {
    let _ = unused_imports_are_used();
    let _sup: Supervisor = supervise! {
        shutdown_timeout = "2s";
        daemon web = "web --port 80" { restart = "1s", max = -1, stop_signal = "SIGTERM", window = "1m", window_max = 5 };
        task worker;
        task private_task { max = 1 };
        task cleanup = cleanup { restart = "250ms", max = 0 };
    };
}
