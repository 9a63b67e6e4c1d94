//! Supervised OS processes: a `sleep` that runs quietly, a shell that
//! crashes every second and is restarted, and one that prints a line every
//! 300 ms. Prints their status and captured output for a few seconds, then
//! shuts down and prints the report; Ctrl-C shuts down at once, leaving no
//! process behind.
//!
//! ```text
//! cargo run --example daemons
//! ```

use std::time::Duration;

use supervisor::{DaemonSpec, RestartPolicy, Supervisor};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sup = Supervisor::builder()
        .daemon(DaemonSpec::new("sleeper", "sleep").arg("3600"))
        .daemon(
            DaemonSpec::new("crasher", "sh")
                .args(["-c", "echo starting; sleep 1; echo 'giving up' >&2; exit 3"])
                .restart(RestartPolicy::new().delay(Duration::from_millis(200))),
        )
        .daemon(
            DaemonSpec::new("talker", "sh")
                .args(["-c", r#"i=0; while :; do i=$((i+1)); echo "line $i from $GREETING"; sleep 0.3; done"#])
                .env("GREETING", "talker")
                .stop_timeout(Duration::from_secs(2)),
        )
        .build()?;
    let handle = sup.start();
    // Ctrl-C (or SIGTERM) stops the daemons before the program ends.
    let interrupted = handle.shutdown_on_signal();
    let report = tokio::select! {
        shown = show(&handle) => {
            shown?;
            handle.shutdown().await
        }
        report = interrupted => report,
    };
    println!("{report}");
    Ok(())
}

/// Prints the units' status and tails, once a second for four seconds.
async fn show(handle: &supervisor::SupervisorHandle) -> anyhow::Result<()> {
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!("{:8} {:8} {:>7} {:>8}  last exit", "unit", "state", "pid", "restarts");
        for status in handle.statuses() {
            let pid = status.pid.map_or("-".to_owned(), |pid| pid.to_string());
            let last_exit = match (status.exit_code, status.signal) {
                (Some(code), _) => format!("code {code}"),
                (None, Some(signal)) => format!("signal {signal}"),
                (None, None) => "-".to_owned(),
            };
            println!("{:8} {:8} {pid:>7} {:>8}  {last_exit}", status.name, status.state, status.restart_count);
        }
        println!("crasher's tail: {:?}", handle.tail("crasher", 3)?);
        println!("talker's tail:  {:?}\n", handle.tail("talker", 3)?);
    }
    Ok(())
}
