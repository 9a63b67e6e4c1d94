//! The supervisor's own systemd notifier sends its last `STATUS=` line, the
//! one with the units' final states, before a shutdown returns: it once
//! ended as the supervisor did, and in about one shutdown in six the last
//! change was never sent (`systemctl status` then showed units still
//! running, or stopping, after the service had stopped).
//!
//! Against a real unix datagram socket. `NOTIFY_SOCKET` is the whole
//! process's: the supervisors run in a child process (this same test
//! binary, running the ignored test `child`) with it set in its
//! environment only.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use supervisor::{Context, RestartPolicy, Supervisor, TaskSpec, UnitState};
use tokio::net::UnixDatagram;
use tokio::process::Command;

/// Generous: only a hang reaches it.
const DEADLINE: Duration = Duration::from_secs(60);
/// Set in the child's environment: how many shutdowns it runs.
const ROUNDS_ENV: &str = "SUPERVISOR_TEST_FINAL_STATUS_ROUNDS";
/// How many shutdowns: the lost status showed in about 2 of 12.
const ROUNDS: usize = 40;
/// What the child sends to the socket itself once a shutdown has returned,
/// followed by the round's number.
const ROUND_DONE: &str = "X-TEST-ROUND-DONE=";
/// The status once a running task is stopped and a failed one stays failed.
const FINAL_STATUS: &str = "STATUS=shutting down; 2 units: 1 stopped, 1 failed";

/// The supervisors under test, when run by
/// `the_last_status_is_sent_before_shutdown_returns`: each with a task that
/// runs and one that failed for good, shut down once the failure is seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the_last_status_is_sent_before_shutdown_returns"]
async fn child() {
    let Some(rounds) = std::env::var(ROUNDS_ENV).ok().map(|rounds| rounds.parse::<usize>().unwrap()) else {
        return;
    };
    let target = std::env::var_os("NOTIFY_SOCKET").expect("NOTIFY_SOCKET is set");
    let marker = std::os::unix::net::UnixDatagram::unbound().unwrap();
    for round in 0..rounds {
        let handle = Supervisor::builder()
            .task(TaskSpec::new("runs", |ctx: Context| async move { ctx.cancelled().await }))
            .task(
                TaskSpec::new("fails", |_ctx: Context| async { Err::<(), _>("boom") })
                    .restart(RestartPolicy::new().max_restarts(0)),
            )
            .build()
            .unwrap()
            .start();
        assert!(handle.notify_systemd());
        tokio::time::timeout(DEADLINE, handle.wait_state("fails", UnitState::Failed)).await.unwrap().unwrap();
        let report = tokio::time::timeout(DEADLINE, handle.shutdown()).await.unwrap();
        assert_eq!(report.units.len(), 2, "{report}");
        // Queued behind everything the supervisor sent before it returned.
        marker.send_to(format!("{ROUND_DONE}{round}\n").as_bytes(), &target).unwrap();
    }
}

fn socket_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    (dir, path)
}

/// Every datagram the socket holds, until it has been quiet for a moment.
async fn drain(socket: &UnixDatagram) -> Vec<String> {
    let mut messages = Vec::new();
    let mut buffer = vec![0; 4096];
    while let Ok(received) = tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buffer)).await {
        messages.push(String::from_utf8_lossy(&buffer[..received.unwrap()]).into_owned());
    }
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_status_is_sent_before_shutdown_returns() {
    let (_dir, path) = socket_path();
    let socket = UnixDatagram::bind(&path).unwrap();
    // Read as the child runs, as systemd does: the socket's queue is short.
    let reader = tokio::spawn(async move {
        let mut messages = Vec::new();
        let mut buffer = vec![0; 4096];
        loop {
            let received = tokio::time::timeout(DEADLINE, socket.recv(&mut buffer)).await.expect("a notification");
            let message = String::from_utf8_lossy(&buffer[..received.unwrap()]).into_owned();
            let last = message.trim_end() == format!("{ROUND_DONE}{}", ROUNDS - 1);
            messages.push(message);
            if last {
                // Whatever comes after the last shutdown returned, too.
                messages.extend(drain(&socket).await);
                return messages;
            }
        }
    });
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--ignored", "--nocapture", "--test-threads=1"])
        .env("NOTIFY_SOCKET", &path)
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env(ROUNDS_ENV, ROUNDS.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(DEADLINE, child).await.expect("the child exits").unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the child failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let messages = tokio::time::timeout(DEADLINE, reader).await.expect("the reader ends").unwrap();

    // Each round's notifications, up to the child's marker.
    let mut rounds: Vec<Vec<&str>> = vec![Vec::new()];
    for line in messages.iter().flat_map(|message| message.lines()) {
        if line.starts_with(ROUND_DONE) {
            assert_eq!(line, format!("{ROUND_DONE}{}", rounds.len() - 1), "{messages:#?}");
            rounds.push(Vec::new());
        } else {
            rounds.last_mut().unwrap().push(line);
        }
    }
    let late = rounds.pop().unwrap();
    assert!(late.is_empty(), "sent after the last shutdown returned: {late:?}");
    assert_eq!(rounds.len(), ROUNDS);
    let mut wrong = Vec::new();
    for (round, lines) in rounds.iter().enumerate() {
        let stopping = lines.iter().position(|&line| line == "STOPPING=1");
        let last_status = lines.iter().rposition(|line| line.starts_with("STATUS="));
        let fine = matches!((stopping, last_status), (Some(stopping), Some(last)) if stopping < last)
            && last_status.is_some_and(|last| lines[last] == FINAL_STATUS);
        if !fine {
            wrong.push(format!("round {round}: {lines:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {ROUNDS} shutdowns did not end on `{FINAL_STATUS}` after STOPPING=1:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
