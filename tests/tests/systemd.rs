//! `sd_notify` against a real unix datagram socket: `READY=1` waits for the
//! health checks, the watchdog pings only while live, `STOPPING=1` at
//! shutdown.
//!
//! The supervisor runs in a child process (this same test binary, running
//! the ignored test `child`), so that `NOTIFY_SOCKET` and `WATCHDOG_USEC`
//! are set in its environment only.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use supervisor::{Context, DaemonSpec, Probe, Readiness, Supervisor, TaskSpec};
use tokio::net::UnixDatagram;
use tokio::process::Command;
use tokio::time::Instant;

use support::notify::{read_notifications, receive_until};

mod support;

const DEADLINE: Duration = Duration::from_secs(30);
/// Set in the child's environment: the file whose existence makes its
/// health check pass.
const FLAG_ENV: &str = "SUPERVISOR_TEST_HEALTHY_FLAG";

/// The supervisor under test, when run by `notifications_follow_health`.
#[tokio::test]
#[ignore = "run as a child process by notifications_follow_health"]
async fn child() {
    let Some(flag) = std::env::var_os(FLAG_ENV).map(PathBuf::from) else {
        return;
    };
    let handle = Supervisor::builder()
        .task(TaskSpec::new("ticker", |ctx: Context| async move { ctx.cancelled().await }))
        .health_check("flag", move || {
            let healthy = flag.exists();
            async move { if healthy { Ok(()) } else { Err("no flag file yet") } }
        })
        .build()
        .unwrap()
        .start();
    let shutdown = handle.shutdown_on_signal();
    assert!(handle.notify_systemd());
    let report = shutdown.await;
    assert!(report.is_clean(), "{report}");
}

fn fresh_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("supervisor-systemd-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn has_line(messages: &[String], line: &str) -> bool {
    messages.iter().any(|message| message.lines().any(|l| l == line))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_follow_health() {
    let dir = fresh_dir();
    let socket_path = dir.join("notify.sock");
    let flag = dir.join("healthy");
    let mut messages = read_notifications(UnixDatagram::bind(&socket_path).unwrap());
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--ignored", "--nocapture", "--test-threads=1"])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .env_remove("WATCHDOG_PID")
        .env(FLAG_ENV, &flag)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap()).unwrap();

    // The unit runs at once, but the check fails: no READY=1, and no
    // watchdog ping either, while it is not live.
    let mut seen = Vec::new();
    receive_until(&mut messages, "STATUS=1 unit: 1 running", &mut seen).await;
    let quiet_until = Instant::now() + Duration::from_millis(1500);
    while let Ok(Some(message)) = tokio::time::timeout_at(quiet_until, messages.recv()).await {
        seen.push(message);
    }
    assert!(!has_line(&seen, "READY=1"), "ready while a check fails: {seen:?}");
    assert!(!has_line(&seen, "WATCHDOG=1"), "watchdog pinged while not live: {seen:?}");

    // Once the check passes: READY=1, then regular pings.
    std::fs::write(&flag, b"").unwrap();
    receive_until(&mut messages, "READY=1", &mut seen).await;
    receive_until(&mut messages, "WATCHDOG=1", &mut seen).await;
    receive_until(&mut messages, "WATCHDOG=1", &mut seen).await;
    assert_eq!(seen.iter().filter(|message| message.lines().any(|l| l == "READY=1")).count(), 1);

    kill_process(pid, Signal::TERM).unwrap();
    receive_until(&mut messages, "STOPPING=1", &mut seen).await;
    let output = tokio::time::timeout(DEADLINE, child.wait_with_output()).await.expect("the child exits").unwrap();
    assert!(
        output.status.success(),
        "the child failed: {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}

/// Set in the environment of the child run by
/// `exec_probes_do_not_inherit_the_supervisors_notify_socket`.
const PROBED_ENV: &str = "SUPERVISOR_TEST_PROBE_UNDER_SYSTEMD";

/// A supervisor run by systemd, with a unit whose readiness probe runs a
/// program: that program must not see the supervisor's `NOTIFY_SOCKET` and
/// watchdog variables (a tool that speaks `sd_notify` would talk to
/// systemd as the service), as a daemon's own program does not.
#[tokio::test]
#[ignore = "run as a child process by exec_probes_do_not_inherit_the_supervisors_notify_socket"]
async fn child_with_an_exec_probe() {
    if std::env::var_os(PROBED_ENV).is_none() {
        return;
    }
    let sees_none = r#"test -z "$NOTIFY_SOCKET$WATCHDOG_USEC$WATCHDOG_PID""#;
    let probe = Probe::exec(["sh", "-c", sees_none]).period(Duration::from_millis(50));
    let handle = Supervisor::builder()
        .daemon(DaemonSpec::new("web", "sleep").arg("1000").readiness(Readiness::Probe(probe)))
        .build()
        .unwrap()
        .start();
    let ready = tokio::time::timeout(Duration::from_secs(10), handle.wait_ready("web")).await;
    let report = handle.shutdown().await;
    assert!(matches!(ready, Ok(Ok(_))), "the probe saw the variables: {ready:?}; {:?}", report.units);
}

#[tokio::test]
async fn exec_probes_do_not_inherit_the_supervisors_notify_socket() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_with_an_exec_probe", "--ignored", "--nocapture", "--test-threads=1"])
        .env("NOTIFY_SOCKET", "/run/supervisor-test-none/notify")
        .env("WATCHDOG_USEC", "60000000")
        .env("WATCHDOG_PID", "1")
        .env(PROBED_ENV, "1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(DEADLINE, output).await.expect("the child exits").unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the child failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("1 passed"), "the child test did not run:\n{stdout}");
}

/// Set in the environment of the child run by
/// `the_watchdog_pings_on_while_thousands_of_units_crash_in_a_loop`: how many
/// units crash in a loop there.
const CRASHING_ENV: &str = "SUPERVISOR_TEST_CRASHING_UNITS";

/// The supervisor under test, when run by
/// `the_watchdog_pings_on_while_thousands_of_units_crash_in_a_loop`.
#[tokio::test]
#[ignore = "run as a child process by the_watchdog_pings_on_while_thousands_of_units_crash_in_a_loop"]
async fn child_with_units_in_a_crash_loop() {
    let Some(units) = std::env::var(CRASHING_ENV).ok().and_then(|units| units.parse::<usize>().ok()) else {
        return;
    };
    // The default policy: restarted a second later, for ever.
    let mut builder = Supervisor::builder();
    for index in 0..units {
        builder = builder.task(TaskSpec::new(format!("crashing-{index}"), |_ctx| async { Err::<(), _>("boom") }));
    }
    let handle = builder.task(TaskSpec::new("steady", |ctx: Context| async move { ctx.cancelled().await })).build();
    let handle = handle.unwrap().start();
    let shutdown = handle.shutdown_on_signal();
    assert!(handle.notify_systemd());
    let _ = shutdown.await;
}

/// The pings the child with `units` crashing units sends over `window`,
/// once it has said anything at all.
async fn watchdog_pings(units: usize, window: Duration) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let mut messages = read_notifications(UnixDatagram::bind(&socket_path).unwrap());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_with_units_in_a_crash_loop", "--ignored", "--nocapture", "--test-threads=1"])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "500000")
        .env_remove("WATCHDOG_PID")
        .env(CRASHING_ENV, units.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(DEADLINE, messages.recv()).await.expect("a first notification").unwrap();
    let end = Instant::now() + window;
    let mut pings = 0;
    while let Ok(Some(message)) = tokio::time::timeout_at(end, messages.recv()).await {
        pings += usize::from(message.lines().any(|line| line == "WATCHDOG=1"));
    }
    child.kill().await.unwrap();
    pings
}

/// A unit waiting to restart does not make the supervisor less live: the
/// pings come every half of `WatchdogSec` however many units crash in a
/// loop. With 3,000 of them the events came faster than the notifier read
/// the states after each, and the pings, behind them, stopped: systemd
/// would kill a live service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_pings_on_while_thousands_of_units_crash_in_a_loop() {
    // Every 250 ms: 12 are due in 3 s.
    let window = Duration::from_secs(3);
    let quiet = watchdog_pings(0, window).await;
    assert!(quiet >= 6, "{quiet} pings in {window:?} with no unit crashing");
    let pings = watchdog_pings(3000, window).await;
    assert!(pings >= 6, "{pings} pings in {window:?} while 3,000 units crash in a loop");
}
