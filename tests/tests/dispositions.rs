//! A supervisor whose own process inherited ignored signals (a parent ran
//! `trap '' CHLD TERM` before `exec`): it must still see every exit status,
//! and its children must start with default dispositions for the signals
//! they are stopped with.
//!
//! Dispositions are process-wide, so the checks run in a child copy of this
//! test binary started through `bash -c "trap '' CHLD TERM; exec ..."`: the
//! outer test starts it and asserts that it passed; the inner test does
//! nothing unless it runs in that child.

use std::process::Command;
use std::time::{Duration, Instant};

use supervisor::{
    DaemonSpec, EventKind, RestartOn, RestartPolicy, Supervisor, SupervisorHandle, UnitState, UnitStatus,
};

/// Set in the environment of the child copy of this binary.
const INNER: &str = "SUPERVISOR_TEST_INHERITED_IGNORED_SIGNALS";

/// How long any condition may take to come true before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);

const SIGTERM: u32 = 15;
const SIGCHLD: u32 = 17;

/// The signals ignored by the process `pid` (`self` for this one), from the
/// `SigIgn` mask of its `/proc/<pid>/status`.
fn ignored_mask(status: &str) -> u64 {
    let line = status.lines().find(|line| line.starts_with("SigIgn:")).expect("a SigIgn line");
    u64::from_str_radix(line["SigIgn:".len()..].trim(), 16).expect("a hex mask")
}

fn bit(signal: u32) -> u64 {
    1 << (signal - 1)
}

#[test]
fn exit_statuses_and_stop_signals_hold_when_sigchld_and_sigterm_are_inherited_ignored() {
    if std::env::var_os(INNER).is_some() {
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = Command::new("bash")
        .arg("-c")
        .arg(r#"trap '' CHLD TERM; exec "$0" "$@""#)
        .arg(&exe)
        .args(["--exact", "inner_with_ignored_sigchld_and_sigterm", "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the inner test failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains("1 passed"), "the inner test did not run:\n{stdout}\n{stderr}");
}

/// Runs only inside the child started by the test above.
#[test]
fn inner_with_ignored_sigchld_and_sigterm() {
    if std::env::var_os(INNER).is_none() {
        return;
    }
    let own = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let ignored = ignored_mask(&own);
    assert_eq!(
        ignored & (bit(SIGCHLD) | bit(SIGTERM)),
        bit(SIGCHLD) | bit(SIGTERM),
        "the test's own setup failed: SIGCHLD and SIGTERM should be ignored here (SigIgn {ignored:x})"
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(inner());
}

async fn wait_status(handle: &SupervisorHandle, name: &str, pred: impl Fn(&UnitStatus) -> bool) -> UnitStatus {
    match tokio::time::timeout(DEADLINE, handle.wait_status(name, pred)).await {
        Ok(status) => status.expect("the unit exists and the supervisor runs"),
        Err(_) => panic!("timed out waiting on `{name}`; last status: {:#?}", handle.status(name)),
    }
}

async fn inner() {
    let once = || RestartPolicy::new().on(RestartOn::Never);
    let sup = Supervisor::builder()
        .daemon(DaemonSpec::new("three", "sh").args(["-c", "exit 3"]).restart(once()))
        .daemon(DaemonSpec::new("mask", "grep").args(["^SigIgn:", "/proc/self/status"]).restart(once()))
        .daemon(DaemonSpec::new("sleeper", "sleep").arg("60").stop_timeout(Duration::from_secs(20)))
        .build()
        .expect("valid supervisor");
    let handle = sup.start();
    let mut events = handle.subscribe();

    // The exit status is seen, not lost to the kernel's automatic reaping.
    let three = wait_status(&handle, "three", |status| status.state == UnitState::Exited).await;
    assert_eq!(three.exit_code, Some(3), "{three:#?}");
    assert_eq!(three.last_error.as_deref(), Some("exited with code 3"), "{three:#?}");

    // The child starts with SIGCHLD and SIGTERM at their defaults.
    let mask = wait_status(&handle, "mask", |status| status.state == UnitState::Exited).await;
    assert_eq!(mask.exit_code, Some(0), "{mask:#?}");
    let line = handle.tail("mask", 10).expect("known unit").join("\n");
    let child_ignored = ignored_mask(&line);
    assert_eq!(child_ignored & (bit(SIGCHLD) | bit(SIGTERM)), 0, "the child inherited ignored signals: {line}");

    // So SIGTERM stops it gracefully, long before the 20 s timeout.
    wait_status(&handle, "sleeper", |status| status.state == UnitState::Running && status.pid.is_some()).await;
    let began = Instant::now();
    handle.stop_unit("sleeper").await.expect("stop sleeper");
    assert!(began.elapsed() < DEADLINE, "the stop took {:?}", began.elapsed());
    let stopped = tokio::time::timeout(DEADLINE, async {
        loop {
            let event = events.recv().await.expect("events");
            if event.unit == "sleeper"
                && let EventKind::Stopped { forced, .. } = event.kind
            {
                return forced;
            }
        }
    })
    .await
    .expect("a Stopped event");
    assert!(!stopped, "the stop had to kill the process");
    let sleeper = handle.status("sleeper").expect("known unit");
    assert_eq!(sleeper.signal, Some(SIGTERM as i32), "{sleeper:#?}");

    handle.shutdown().await;
}
