//! Both macros together: `#[supervised]` tasks and a `supervise!` manifest
//! with a daemon, run for a few seconds, then shut down gracefully.
//!
//! ```text
//! cargo run -p supervisor-examples --example macros
//! ```

use std::time::Duration;

use supervisor::{Context, UnitState, supervise, supervised};

/// Ticks until it is asked to stop; restarted after 1s if it ever ends.
#[supervised(restart = "1s", max = -1)]
async fn ticker(ctx: Context) -> anyhow::Result<()> {
    let mut interval = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            () = ctx.cancelled() => return Ok(()),
            _ = interval.tick() => tracing::info!(unit = ctx.name(), "tick"),
        }
    }
}

/// Fails every time: restarted twice with a growing delay, then given up.
#[supervised(restart = "200ms", backoff = 2.0, max_delay = "1s", max = 2, on = "failure")]
async fn flaky(ctx: Context) -> Result<(), String> {
    Err(format!("run {} failed", ctx.restart_count() + 1))
}

async fn heartbeat(ctx: Context) {
    ctx.cancelled().await;
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_env_filter("info").init();

    let sup = supervise! {
        shutdown_timeout = "5s";
        task ticker;
        task flaky;
        task heartbeat = heartbeat { stop_timeout = "1s" };
        daemon greeter = "sh -c 'echo hello from a daemon; sleep 30'" {
            restart = "1s", max = 3, stop_signal = "TERM", stop_timeout = "2s",
            env = { GREETING = "hello" },
        };
    };
    let handle = sup.start();

    tokio::time::sleep(Duration::from_secs(3)).await;
    for status in handle.statuses() {
        println!(
            "{:<10} {:?} restarts={} last_error={:?}",
            status.name, status.state, status.restart_count, status.last_error
        );
    }
    assert_eq!(handle.status("flaky").map(|s| s.state), Some(UnitState::Failed));

    let report = handle.shutdown().await;
    println!("{report}");
}
