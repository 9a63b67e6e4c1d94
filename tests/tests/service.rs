//! The example service (`cargo run --example service`) run as a child
//! process, as systemd or Kubernetes would run it: a real `NOTIFY_SOCKET`
//! receives its notifications, a real HTTP client asks its probes, `SIGTERM`
//! stops it, and no process of its units is left behind.
//!
//! `NOTIFY_SOCKET` and `WATCHDOG_USEC` are set only in the child's
//! environment, never in this process's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixDatagram};

use support::notify::{read_notifications, receive_until};

mod support;
use tokio::process::{Child, Command};
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(30);

/// Builds the example (a no-op when it is up to date) and returns its path,
/// in the target directory and profile this test was built in.
async fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/service-<hash>
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    build
        .args(["build", "--quiet", "-p", "supervisor-examples", "--example", "service"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("CARGO_TARGET_DIR", profile_dir.parent().expect("target dir"));
    if profile_dir.file_name().is_some_and(|name| name == "release") {
        build.arg("--release");
    }
    let status = tokio::time::timeout(Duration::from_secs(900), build.status())
        .await
        .expect("the example builds in time")
        .expect("cargo runs");
    assert!(status.success(), "cannot build the example: {status}");
    let binary = profile_dir.join("examples").join("service");
    assert!(binary.exists(), "no example at {}", binary.display());
    binary
}

fn pid_of(child: &Child) -> Pid {
    let pid = child.id().expect("running");
    Pid::from_raw(i32::try_from(pid).unwrap()).unwrap()
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut bytes)).await.expect("answer in time").unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}

/// The pids in the `started` lines of the service's log: a daemon's run
/// has one, a task's none.
fn started_pids(log: &str) -> Vec<i32> {
    log.lines()
        .map(without_colours)
        .filter(|line| line.contains(" started restart_count="))
        .filter_map(|line| line.split_once(" pid=")?.1.split_whitespace().next()?.parse().ok())
        .collect()
}

/// `line` without its terminal colour codes (`ESC [ ... m`).
fn without_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            let _ = chars.by_ref().find(|&c| c == 'm');
        } else {
            plain.push(c);
        }
    }
    plain
}

/// Whether any process is left in the group `pgid`.
fn group_alive(pgid: i32) -> bool {
    let pid = Pid::from_raw(pgid).unwrap();
    !matches!(rustix::process::test_kill_process_group(pid), Err(rustix::io::Errno::SRCH))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_service_runs_notifies_and_stops_cleanly_on_sigterm() {
    let binary = example_binary().await;
    let dir = std::env::temp_dir().join(format!("supervisor-service-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket_path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&socket_path);
    let mut notifications = read_notifications(UnixDatagram::bind(&socket_path).expect("bind the notify socket"));

    let mut child = Command::new(&binary)
        .arg("127.0.0.1:0")
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the example");
    let pid = pid_of(&child);

    // Keep reading both pipes so the child never blocks on them.
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let stderr = child.stderr.take().unwrap();
    let stderr_task = tokio::spawn(async move {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text).await;
        text
    });
    let addr: SocketAddr = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("serving http://") {
                return rest.split('/').next().unwrap().parse().unwrap();
            }
        }
        panic!("the example ended before it served HTTP");
    })
    .await
    .expect("the example serves HTTP in time");
    let stdout_task = tokio::spawn(async move {
        let mut text = String::new();
        while let Ok(Some(line)) = stdout.next_line().await {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });

    let mut messages = Vec::new();
    receive_until(&mut notifications, "READY=1", &mut messages).await;
    assert!(messages.iter().any(|message| message.starts_with("STATUS=")), "{messages:?}");
    receive_until(&mut notifications, "WATCHDOG=1", &mut messages).await;

    let (status, body) = get(addr, "/livez").await;
    assert_eq!(status, 200, "{body}");

    // The crashing daemon is restarted: wait until it has been.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, body) = get(addr, "/status").await;
        assert_eq!(status, 200);
        let units: Value = serde_json::from_str(&body).unwrap();
        let units = units.as_array().unwrap().clone();
        let names: Vec<_> = units.iter().map(|unit| unit["name"].as_str().unwrap().to_owned()).collect();
        assert_eq!(names, ["worker", "flaky", "heartbeat", "db", "api"]);
        if units[1]["restartCount"].as_u64().unwrap() >= 1 && units[1]["state"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "`flaky` was never restarted: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    rustix::process::kill_process(pid, Signal::TERM).expect("send SIGTERM");
    receive_until(&mut notifications, "STOPPING=1", &mut messages).await;
    let exit = tokio::time::timeout(DEADLINE, child.wait()).await.expect("the example exits in time").unwrap();
    let stdout = stdout_task.await.unwrap();
    let stderr = stderr_task.await.unwrap();
    assert_eq!(exit.code(), Some(0), "exit {exit}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("shutdown took"), "no shutdown report in\n{stdout}");
    assert!(stdout.contains("graceful"), "{stdout}");
    assert!(!stdout.contains("killed"), "{stdout}");

    // The process group of each daemon's run, from its `started` line: a
    // poll of `/status` missed the first run of `flaky` when a loaded
    // machine took its 4 s to get the service ready.
    let groups = started_pids(&stderr);
    assert!(groups.len() >= 4, "expected the worker, db and two runs of flaky: {groups:?}\nstderr:\n{stderr}");
    // No process of any unit outlives the service.
    let deadline = Instant::now() + DEADLINE;
    while groups.iter().any(|&group| group_alive(group)) {
        assert!(Instant::now() < deadline, "processes left in groups {groups:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(TcpStream::connect(addr).await.is_err(), "still listening after exit");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn without_a_notify_socket_nothing_is_started() {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        // Running under a service manager: the premise does not hold.
        return;
    }
    let handle = supervisor::Supervisor::builder()
        .task(supervisor::TaskSpec::new("ticker", |ctx: supervisor::Context| async move { ctx.cancelled().await }))
        .build()
        .unwrap()
        .start();
    assert!(!handle.notify_systemd());
    handle.shutdown().await;
}
