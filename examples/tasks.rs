//! Supervised async tasks: a steady ticker, a flaky task restarted with
//! backoff, and one that panics until the supervisor gives up. Prints every
//! event for a few seconds, then shuts down and prints the report.
//!
//! ```text
//! cargo run --example tasks
//! ```

use std::time::Duration;

use supervisor::{Context, MaxRestarts, RestartPolicy, Supervisor, TaskSpec};

async fn ticker(ctx: Context) -> Result<(), std::io::Error> {
    let mut interval = tokio::time::interval(Duration::from_millis(700));
    loop {
        tokio::select! {
            _ = ctx.cancelled() => return Ok(()),
            _ = interval.tick() => println!("  {}: tick", ctx.name()),
        }
    }
}

async fn flaky(ctx: Context) -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    anyhow::bail!("lost the connection (run {})", ctx.restart_count() + 1)
}

async fn panicky(_ctx: Context) {
    panic!("an invariant was broken");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Keep the demo's output to the events printed below.
    std::panic::set_hook(Box::new(|_| {}));
    let sup = Supervisor::builder()
        .task(TaskSpec::new("ticker", ticker))
        .task(TaskSpec::new("flaky", flaky).restart(
            RestartPolicy::new().delay(Duration::from_millis(100)).backoff(2.0).max_delay(Duration::from_secs(1)),
        ))
        .task(
            TaskSpec::new("panicky", panicky)
                .restart(RestartPolicy::new().delay(Duration::from_millis(200)).max_restarts(MaxRestarts::AtMost(2))),
        )
        .build()?;
    // Subscribed before the start, so that no event is missed.
    let mut events = sup.subscribe();
    let handle = sup.start();
    let printer = tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            println!("{:>8}: {:?}", event.unit, event.kind);
        }
    });

    tokio::time::sleep(Duration::from_secs(4)).await;
    println!("\nstatus:");
    for status in handle.statuses() {
        println!(
            "  {:8} {:8} restarts={} last_error={:?}",
            status.name, status.state, status.restart_count, status.last_error
        );
    }
    let report = handle.shutdown().await;
    // The event stream ends with the supervisor: the printer prints the
    // stops, then returns.
    let _ = printer.await;
    println!("\n{report}");
    Ok(())
}
