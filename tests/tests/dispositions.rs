//! A supervisor whose own process inherited ignored signals (a parent ran
//! `trap '' CHLD TERM` before `exec`): it must still see every exit status,
//! and its children must start with default dispositions for the signals
//! they are stopped with.
//!
//! With no signal ignored, it must change none of its own dispositions: a
//! caught `SIGCHLD` would cost every child's exit a signal delivery.
//!
//! Dispositions are process-wide, so the checks run in a child copy of this
//! test binary (started through `bash -c "trap '' CHLD TERM; exec ..."` for
//! the ignored case): each outer test starts it and asserts that it passed;
//! each inner test does nothing unless it runs in that child.

use std::process::Command;
use std::time::{Duration, Instant};

use supervisor::{DaemonSpec, EventKind, RestartOn, RestartPolicy, Supervisor, UnitState};

#[path = "support/deadline.rs"]
mod deadline;
use deadline::wait_status;

/// Set in the environment of the child copy of this binary.
const INNER: &str = "SUPERVISOR_TEST_INHERITED_IGNORED_SIGNALS";

/// Set in the environment of the child copy that inherits no ignored signal.
const INNER_DEFAULT: &str = "SUPERVISOR_TEST_DEFAULT_DISPOSITIONS";

/// Set in the environment of the child copy whose first spawn finds no file
/// descriptor free.
const INNER_EXHAUSTED: &str = "SUPERVISOR_TEST_DISPOSITIONS_WITHOUT_DESCRIPTORS";

/// How long any condition may take to come true before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);

const SIGHUP: u32 = 1;
const SIGINT: u32 = 2;
const SIGQUIT: u32 = 3;
const SIGUSR1: u32 = 10;
const SIGUSR2: u32 = 12;
const SIGTERM: u32 = 15;
const SIGCHLD: u32 = 17;

/// The signals ignored by a process, from the `SigIgn` mask of its
/// `/proc/<pid>/status`.
fn ignored_mask(status: &str) -> u64 {
    mask(status, "SigIgn:")
}

/// The mask on the line of `/proc/<pid>/status` that starts with `key`.
fn mask(status: &str, key: &str) -> u64 {
    let line = status.lines().find(|line| line.starts_with(key)).unwrap_or_else(|| panic!("a {key} line"));
    u64::from_str_radix(line[key.len()..].trim(), 16).expect("a hex mask")
}

/// Runs the test `inner` in a child copy of this binary, with `var` set,
/// through `bash -c` with `shell_prefix` before the `exec`; asserts that it
/// ran and passed.
fn run_inner(inner: &str, var: &str, shell_prefix: &str) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!(r#"{shell_prefix}exec "$0" "$@""#))
        .arg(&exe)
        .args(["--exact", inner, "--nocapture", "--test-threads=1"])
        .env(var, "1")
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the inner test failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains("1 passed"), "the inner test did not run:\n{stdout}\n{stderr}");
}

/// Whether this is a child copy of this binary, run by an outer test.
fn in_a_child_copy() -> bool {
    [INNER, INNER_DEFAULT, INNER_EXHAUSTED].iter().any(|var| std::env::var_os(var).is_some())
}

fn bit(signal: u32) -> u64 {
    1 << (signal - 1)
}

#[test]
fn exit_statuses_and_stop_signals_hold_when_sigchld_and_sigterm_are_inherited_ignored() {
    if in_a_child_copy() {
        return;
    }
    run_inner("inner_with_ignored_sigchld_and_sigterm", INNER, "trap '' CHLD TERM HUP; ");
}

#[test]
fn no_disposition_changes_when_no_signal_is_inherited_ignored() {
    if in_a_child_copy() {
        return;
    }
    // `trap - ...` resets them, whatever the test runner's own parent ignored.
    run_inner("inner_with_default_dispositions", INNER_DEFAULT, "trap - CHLD TERM HUP INT QUIT USR1 USR2; ");
}

/// Runs only inside the child started by the test above.
#[test]
fn inner_with_default_dispositions() {
    if std::env::var_os(INNER_DEFAULT).is_none() {
        return;
    }
    let control =
        [SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM, SIGCHLD].iter().fold(0, |all, &signal| all | bit(signal));
    let own = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    assert_eq!(ignored_mask(&own) & control, 0, "the test's own setup failed: {own}");
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let once = || RestartPolicy::new().on(RestartOn::Never);
        let handle = Supervisor::builder()
            .daemon(DaemonSpec::new("three", "sh").args(["-c", "exit 3"]).restart(once()))
            .daemon(DaemonSpec::new("sleeper", "sleep").arg("60"))
            .build()
            .expect("valid supervisor")
            .start();
        let three = wait_status(DEADLINE, &handle, "three", |status| status.state == UnitState::Exited).await;
        assert_eq!(three.exit_code, Some(3), "{three:#?}");
        wait_status(DEADLINE, &handle, "sleeper", |status| status.state == UnitState::Running && status.pid.is_some())
            .await;
        handle.stop_unit("sleeper").await.expect("stop sleeper");
        assert_eq!(handle.status("sleeper").expect("known unit").signal, Some(SIGTERM as i32));
        let own = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        let mut caught = mask(&own, "SigCgt:") & control;
        if !pidfd_supported() {
            // Tokio then waits for children by `SIGCHLD`, with a handler
            // of its own.
            caught &= !bit(SIGCHLD);
        }
        assert_eq!(caught, 0, "the supervisor caught signals it found at their defaults: {own}");
        handle.shutdown().await;
    });
}

/// Whether this kernel (and its sandbox) lets tokio wait for children with
/// a pidfd.
fn pidfd_supported() -> bool {
    rustix::process::pidfd_open(rustix::process::getpid(), rustix::process::PidfdFlags::empty()).is_ok()
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
        ignored & (bit(SIGCHLD) | bit(SIGTERM) | bit(SIGHUP)),
        bit(SIGCHLD) | bit(SIGTERM) | bit(SIGHUP),
        "the test's own setup failed: SIGCHLD, SIGTERM and SIGHUP should be ignored here (SigIgn {ignored:x})"
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(inner());
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
    let three = wait_status(DEADLINE, &handle, "three", |status| status.state == UnitState::Exited).await;
    assert_eq!(three.exit_code, Some(3), "{three:#?}");
    assert_eq!(three.last_error.as_deref(), Some("exited with code 3"), "{three:#?}");

    // The child starts with SIGCHLD and SIGTERM at their defaults.
    let mask = wait_status(DEADLINE, &handle, "mask", |status| status.state == UnitState::Exited).await;
    assert_eq!(mask.exit_code, Some(0), "{mask:#?}");
    let line = handle.tail("mask", 10).expect("known unit").join("\n");
    let child_ignored = ignored_mask(&line);
    assert_eq!(child_ignored & (bit(SIGCHLD) | bit(SIGTERM)), 0, "the child inherited ignored signals: {line}");

    // So SIGTERM stops it gracefully, long before the 20 s timeout.
    wait_status(DEADLINE, &handle, "sleeper", |status| status.state == UnitState::Running && status.pid.is_some())
        .await;
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

    // Started as under `nohup`: a hang-up, which shuts a supervisor down,
    // stays ignored.
    let handle = Supervisor::builder()
        .daemon(DaemonSpec::new("sleeper", "sleep").arg("60"))
        .build()
        .expect("valid supervisor")
        .start();
    let shutdown = handle.shutdown_on_signal();
    tokio::pin!(shutdown);
    // A listener of the test's own, woken by the same delivery as the
    // supervisor's would be.
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).expect("a listener");
    rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::HUP).expect("kill");
    tokio::time::timeout(DEADLINE, hangups.recv()).await.expect("the hang-up arrives");
    tokio::select! {
        report = &mut shutdown => panic!("a hang-up shut it down: {report}"),
        () = tokio::time::sleep(Duration::from_millis(300)) => {}
    }
    assert!(!handle.is_shutting_down());
    handle.shutdown().await;
}

/// The ignored signals are read from `/proc/self/status`, which cannot be
/// opened while every file descriptor is taken: a first spawn then (which
/// fails too) marked every signal as looked at, and an inherited ignored
/// `SIGTERM` was passed on to every daemon spawned once descriptors were
/// free again, each stop of theirs a kill at its timeout.
#[test]
fn an_ignored_stop_signal_is_reset_for_children_after_a_first_spawn_without_descriptors() {
    if in_a_child_copy() {
        return;
    }
    run_inner("inner_with_ignored_sigterm_and_no_descriptor_free", INNER_EXHAUSTED, "trap '' TERM; ");
}

/// Runs only inside the child started by the test above.
#[test]
fn inner_with_ignored_sigterm_and_no_descriptor_free() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    if std::env::var_os(INNER_EXHAUSTED).is_none() {
        return;
    }
    let own = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    assert_ne!(ignored_mask(&own) & bit(SIGTERM), 0, "the test's own setup failed: {own}");
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let handle = Supervisor::builder().build().expect("valid supervisor").start();
        let limit = getrlimit(Resource::Nofile);
        setrlimit(Resource::Nofile, Rlimit { current: Some(256), maximum: limit.maximum }).expect("a lower limit");
        let mut taken = Vec::new();
        while let Ok(file) = std::fs::File::open("/dev/null") {
            taken.push(file);
        }
        let quick = RestartPolicy::new().delay(Duration::from_millis(20));
        let spec = DaemonSpec::new("sleeper", "sleep").arg("60").restart(quick).stop_timeout(Duration::from_secs(5));
        handle.add(spec).await.expect("added");
        let failed = wait_status(DEADLINE, &handle, "sleeper", |status| status.last_error.is_some()).await;
        assert!(failed.last_error.as_deref().is_some_and(|error| error.contains("Too many open files")), "{failed:#?}");
        drop(taken);
        setrlimit(Resource::Nofile, limit).expect("the limit back");
        let running = wait_status(DEADLINE, &handle, "sleeper", |status| status.running && status.pid.is_some()).await;
        let pid = running.pid.expect("a pid");
        let child = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the daemon's status");
        assert_eq!(ignored_mask(&child) & bit(SIGTERM), 0, "the daemon inherited an ignored SIGTERM: {child}");
        let began = Instant::now();
        handle.stop_unit("sleeper").await.expect("stopped");
        assert!(began.elapsed() < Duration::from_secs(2), "the stop took {:?}: a kill at the timeout", began.elapsed());
        handle.shutdown().await;
    });
}
