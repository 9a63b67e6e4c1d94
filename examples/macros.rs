//! Both macros together: `#[supervised]` tasks and a typed `supervise!`
//! manifest with a group, a daemon that others depend on, and the typed
//! handle it defines; run for a few seconds, then shut down gracefully.
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

/// Runs once the database is ready, then is done.
async fn migrate(ctx: Context) -> Result<(), String> {
    tracing::info!(unit = ctx.name(), "migrating");
    Ok(())
}

supervise! {
    /// The units of this example, one field each.
    struct Services;
    shutdown_timeout = "5s";
    group storage { strategy = "rest_for_one", intensity = 5, period = "1m" } {
        // Ready once it prints its line, like a database that says so.
        daemon db = "sh -c 'sleep 0.3; echo database system is ready; exec sleep 30'" {
            ready = output("database system is ready"),
            restart = "1s", max = 3, stop_signal = "TERM", stop_timeout = "2s",
            env = { PGDATA = "/tmp/example-db" },
        };
        // Done once it ends well: `storage` is ready only then.
        task migrate = migrate { depends_on = [db], ready = completed, on = "failure" };
    }
    task ticker { depends_on = [storage] };
    task flaky;
}

#[tokio::main]
async fn main() -> Result<(), supervisor::Error> {
    // Log lines to stderr, apart from what the example prints.
    tracing_subscriber::fmt().with_env_filter("info").with_writer(std::io::stderr).init();

    let services = Services::start();
    // Ctrl-C (or SIGTERM) stops the units before the program ends.
    let interrupted = services.handle().shutdown_on_signal();
    let report = tokio::select! {
        shown = show(&services) => {
            shown?;
            services.handle().shutdown().await
        }
        report = interrupted => report,
    };
    println!("{report}");
    Ok(())
}

/// Waits for the units, restarts a few, and prints their statuses.
async fn show(services: &Services) -> Result<(), supervisor::Error> {
    // `ticker` waits for the group `storage`, which is ready once `db` is
    // and `migrate` is done.
    let ticker = services.ticker.wait_ready().await?;
    println!("{} is ready; storage/db said: {:?}", ticker.name, services.storage.db.tail(5)?);
    services.storage.migrate.wait_state(UnitState::Exited).await?;

    // A unit of a group, then the group itself (through its own UnitRef).
    services.storage.db.restart().await?;
    services.storage.wait_ready().await?;

    services.flaky.wait_state(UnitState::Failed).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for status in services.handle().statuses() {
        println!(
            "{:<16} {:<8} ready={:<5} restarts={} last_error={:?}",
            status.name, status.state, status.ready, status.restart_count, status.last_error
        );
    }
    Ok(())
}
