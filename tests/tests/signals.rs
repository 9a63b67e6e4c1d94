//! `SIGTERM`, `SIGINT` and `SIGHUP` sent to this very process: the first
//! starts a graceful shutdown, a second one during it kills what is left.
//!
//! Signal handlers are process-wide, so this file holds one test, in a test
//! binary of its own.

use std::pin::Pin;
use std::time::Duration;

use rustix::process::{Signal, getpid, kill_process};
use supervisor::{Context, ShutdownReport, StopOutcome, Supervisor, SupervisorHandle, TaskSpec};
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(20);

/// Drives `shutdown` until the first signal has begun it; it must not end
/// by itself before a second one.
async fn until_shutting_down(handle: &SupervisorHandle, mut shutdown: Pin<&mut impl Future<Output = ShutdownReport>>) {
    let deadline = Instant::now() + DEADLINE;
    while !handle.is_shutting_down() {
        assert!(Instant::now() < deadline, "the first signal did not start a shutdown");
        tokio::select! {
            report = &mut shutdown => panic!("ended before the second signal: {report}"),
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
}

#[tokio::test]
async fn first_signal_stops_gracefully_and_second_kills_what_is_left() {
    // Graceful: a task that ends when asked; a process that ends on SIGTERM.
    let handle = Supervisor::builder()
        .task(TaskSpec::new("polite", |ctx: Context| async move { ctx.cancelled().await }))
        .daemon(supervisor::DaemonSpec::new("sleeper", "sleep").arg("300"))
        .build()
        .unwrap()
        .start();
    let shutdown = handle.shutdown_on_signal();
    kill_process(getpid(), Signal::TERM).unwrap();
    let report = tokio::time::timeout(DEADLINE, shutdown).await.expect("shut down after SIGTERM");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.exit_code(), 0);
    assert!(report.units.iter().all(|unit| unit.outcome == StopOutcome::Graceful), "{report}");

    // A task that ignores its stop for a minute: the first SIGINT starts the
    // shutdown, which waits; the second ends the wait at once.
    let handle = Supervisor::builder()
        .task(TaskSpec::new("polite", |ctx: Context| async move { ctx.cancelled().await }))
        .task(
            TaskSpec::new("stubborn", |_ctx: Context| std::future::pending::<()>())
                .stop_timeout(Duration::from_secs(60)),
        )
        .build()
        .unwrap()
        .start();
    let shutdown = handle.shutdown_on_signal();
    tokio::pin!(shutdown);
    kill_process(getpid(), Signal::INT).unwrap();
    let began = Instant::now();
    until_shutting_down(&handle, shutdown.as_mut()).await;
    kill_process(getpid(), Signal::TERM).unwrap();
    let report = tokio::time::timeout(DEADLINE, shutdown).await.expect("the second signal ends the shutdown");
    assert!(began.elapsed() < Duration::from_secs(30), "waited out the stop timeout");
    let stubborn = report.units.iter().find(|unit| unit.name == "stubborn").unwrap();
    assert_eq!(stubborn.outcome, StopOutcome::Forced, "{report}");
    assert!(!report.is_clean());
    assert_eq!(report.exit_code(), 1);

    // The terminal or the SSH session went away: `SIGHUP` ends the process
    // by default, and the daemons, in process groups of their own, ran on
    // for ever. It shuts down gracefully instead. A closing terminal sends
    // two (the kernel's and the shell's): the second skipped the grace
    // periods, and a unit that takes its time to stop was killed.
    let handle = Supervisor::builder()
        .daemon(supervisor::DaemonSpec::new("sleeper", "sleep").arg("300"))
        .task(TaskSpec::new("careful", |ctx: Context| async move {
            ctx.cancelled().await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }))
        .build()
        .unwrap()
        .start();
    handle.wait_ready("sleeper").await.unwrap();
    let pid = handle.status("sleeper").unwrap().pid.unwrap();
    let shutdown = handle.shutdown_on_signal();
    tokio::pin!(shutdown);
    kill_process(getpid(), Signal::HUP).unwrap();
    until_shutting_down(&handle, shutdown.as_mut()).await;
    kill_process(getpid(), Signal::HUP).unwrap();
    let report = tokio::time::timeout(DEADLINE, shutdown).await.expect("shut down after SIGHUP");
    assert!(report.is_clean(), "the second hang-up cut the grace periods short: {report}");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "the daemon outlived the hang-up");
}
