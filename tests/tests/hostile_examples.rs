//! The examples run as the README's "Quick start" and "More examples" say
//! (`cargo run --example NAME`), driven by real clients: HTTP requests, the
//! `ctl` example over the control socket, TCP clients, and `SIGINT` as
//! Ctrl-C sends it. Each test checks what the README and the example's own
//! header comment claim: the output, the endpoints and their status codes,
//! the restarts the status shows, a clean stop with a shutdown report, the
//! exit code, and that no process of the example's units is left behind.
//!
//! The examples are built once with `cargo build -p supervisor-examples
//! --examples` into this test's target directory and profile (as
//! `tests/service.rs` does for `service`), then run from there. Every
//! example runs with a marker in its environment, which its daemons
//! inherit, so that the processes it leaves behind are found in `/proc`
//! whatever other examples run at the same time.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustix::process::{Pid, Signal};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How long anything the examples do may take, at most.
const DEADLINE: Duration = Duration::from_secs(20);

/// The directory the examples are built in: `target/<profile>/examples`.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        // target/<profile>/deps/hostile_examples-<hash>
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>").to_owned();
        let mut build = std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        build
            .args(["build", "--quiet", "-p", "supervisor-examples", "--examples"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .env("CARGO_TARGET_DIR", profile_dir.parent().expect("target dir"));
        if profile_dir.file_name().is_some_and(|name| name == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "cannot build the examples: {status}");
        profile_dir.join("examples")
    })
}

/// The path of an example's binary.
fn example(name: &str) -> PathBuf {
    let binary = examples_dir().join(name);
    assert!(binary.exists(), "no example at {}", binary.display());
    binary
}

/// A marker no other run of an example has.
fn new_mark(test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{test}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

const MARK_VAR: &str = "HOSTILE_EXAMPLES_MARK";

/// The command of an example as a newcomer's terminal would start it: no
/// backtraces asked for, the default log filter, and the marker.
fn command(name: &str, mark: &str) -> Command {
    let mut command = Command::new(example(name));
    command
        .env(MARK_VAR, mark)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env_remove("RUST_LOG")
        .env_remove("SUPERVISOR_TOKEN")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// The live processes (not zombies) whose environment holds `mark`, as
/// `pid: command line`.
fn processes_with_mark(mark: &str) -> Vec<String> {
    let needle = format!("{MARK_VAR}={mark}");
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return found };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if !environ.split(|&byte| byte == 0).any(|var| var == needle.as_bytes()) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
        if matches!(state, Some('Z' | 'X') | None) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        found.push(format!("{pid}: {}", cmdline.trim()));
    }
    found
}

/// Asserts that no process of the example's run is left, giving the
/// kernel a moment to finish what was killed.
async fn assert_nothing_left(mark: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = processes_with_mark(mark);
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            // Do not leave them to the machine either.
            for line in &left {
                if let Some(pid) = line.split(':').next().and_then(|pid| pid.parse::<i32>().ok()) {
                    let _ = rustix::process::kill_process(Pid::from_raw(pid).unwrap(), Signal::KILL);
                }
            }
            panic!("processes left behind:\n{}", left.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Collects a pipe into a shared string, line by line.
fn collect(pipe: impl AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    text
}

/// An example running in the background, its output collected.
struct Running {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    fn spawn(mut command: Command) -> Running {
        let mut child = command.spawn().expect("start the example");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Running { child, stdout, stderr }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id().expect("running")).unwrap()).unwrap()
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stdout satisfies `done`, and returns it then.
    async fn wait_stdout(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let text = self.stdout();
            if done(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} on stdout in time; stdout:\n{text}\nstderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `SIGINT`, as Ctrl-C does, and waits for the exit.
    async fn interrupt(&mut self) -> ExitStatus {
        rustix::process::kill_process(self.pid(), Signal::INT).expect("send SIGINT");
        self.wait().await
    }

    async fn wait(&mut self) -> ExitStatus {
        let status = tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!("the example did not end in time; stdout:\n{}\nstderr:\n{}", self.stdout(), self.stderr())
            })
            .unwrap();
        // Let the readers take the last lines.
        tokio::time::sleep(Duration::from_millis(100)).await;
        status
    }
}

/// Runs an example to its end: the exit status, stdout and stderr.
async fn run_to_end(command: Command) -> (ExitStatus, String, String) {
    let mut running = Running::spawn(command);
    let status = running.wait().await;
    (status, running.stdout(), running.stderr())
}

/// A request over a fresh connection: the status code and the body.
async fn request<S>(mut stream: S, method: &str, path: &str, token: Option<&str>) -> (u16, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let auth = token.map_or_else(String::new, |token| format!("Authorization: Bearer {token}\r\n"));
    stream
        .write_all(
            format!(
                "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut bytes)).await.expect("an answer in time").unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text.get(9..12).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("not HTTP: {text}"));
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { unchunk(body) } else { body.to_owned() };
    (status, body)
}

/// The body of a chunked answer.
fn unchunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request(TcpStream::connect(addr).await.expect("connect"), "GET", path, None).await
}

/// The lines of `text` that start with `unit` (after any indent) followed
/// by spaces, without the indent.
fn row<'a>(text: &'a str, unit: &str) -> Vec<&'a str> {
    text.lines()
        .map(str::trim_start)
        .filter(|line| line.strip_prefix(unit).is_some_and(|rest| rest.starts_with(' ')))
        .collect()
}

/// Asserts that the shutdown report lists each unit as stopped gracefully,
/// after its header.
fn assert_report(stdout: &str, units: &[&str]) {
    let (_, report) =
        stdout.rsplit_once("stop         took").unwrap_or_else(|| panic!("no shutdown report on stdout:\n{stdout}"));
    for unit in units {
        let line = row(report, unit);
        assert!(
            line.iter().any(|line| line.contains("stopped") && line.contains("graceful")),
            "{unit} is not `stopped graceful` in the report:\n{report}"
        );
    }
    assert!(report.contains("shutdown requested; shutdown took"), "{report}");
}

fn assert_no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "a panic on stderr:\n{stderr}");
}

// ---------------------------------------------------------------- service

/// Quick start: the probes, the live table, `flaky`'s restarts, `/readyz`
/// at 503 while `api` waits for `db` and while `flaky` waits to restart,
/// then Ctrl-C: the report, exit code 0, and no process left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_probes_table_restarts_and_ctrl_c() {
    let mark = new_mark("service");
    let mut command = command("service", &mark);
    command.arg("127.0.0.1:0"); // the header's "any free port"
    let mut service = Running::spawn(command);
    let stdout = service.wait_stdout("`serving http://`", |text| text.contains("press Ctrl-C to stop")).await;
    let addr: SocketAddr = stdout
        .lines()
        .find_map(|line| line.strip_prefix("serving http://"))
        .and_then(|rest| rest.split('/').next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no address on stdout:\n{stdout}"));
    assert!(stdout.contains("/livez /readyz /healthz /status /metrics"), "{stdout}");

    // db listens only after two seconds: api waits for it, and /readyz says so.
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    let reasons = health["reasons"].to_string();
    assert!(reasons.contains("`api`") && reasons.contains("waiting for `db`"), "{reasons}");

    let (status, body) = get(addr, "/livez").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("supervisor_unit_up{unit=\"worker\""), "{body}");

    // Then ready, with every unit.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, body) = get(addr, "/readyz").await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = get(addr, "/status").await;
    assert_eq!(status, 200);
    let statuses: Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = statuses.as_array().unwrap().iter().filter_map(|unit| unit["name"].as_str()).collect();
    assert_eq!(names, ["worker", "flaky", "heartbeat", "db", "api"]);
    let (status, body) = get(addr, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("temp-dir"), "{body}");
    assert!(processes_with_mark(&mark).len() >= 3, "the daemons run: {:?}", processes_with_mark(&mark));

    // flaky crashes after 4 s and waits 2 s to restart: /readyz is 503 then,
    // naming it, and its restart count grows.
    let deadline = Instant::now() + DEADLINE;
    let mut saw_flaky_waiting = false;
    loop {
        let (status, body) = get(addr, "/readyz").await;
        if status == 503 && body.contains("`flaky`") && body.contains("waiting to restart") {
            saw_flaky_waiting = true;
        }
        let (_, body) = get(addr, "/status").await;
        let statuses: Value = serde_json::from_str(&body).unwrap();
        let flaky = statuses.as_array().unwrap().iter().find(|unit| unit["name"] == "flaky").unwrap().clone();
        if saw_flaky_waiting && flaky["restartsTotal"].as_u64() >= Some(1) && flaky["state"] == "running" {
            assert_eq!(flaky["exitCode"], 1, "{flaky}");
            break;
        }
        assert!(Instant::now() < deadline, "flaky was not seen waiting then restarted: {flaky}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The live table shows the restart and the last exit.
    service
        .wait_stdout("a table row of flaky restarted once", |text| {
            row(text, "flaky").iter().any(|line| {
                let columns: Vec<&str> = line.split_whitespace().collect();
                columns.get(4) == Some(&"1") && line.ends_with("exited with code 1")
            })
        })
        .await;
    let stdout = service.stdout();
    assert!(stdout.contains("unit       type     state         pid  restarts    uptime  last exit"), "{stdout}");

    let status = service.interrupt().await;
    let stdout = service.stdout();
    assert_eq!(status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{}", service.stderr());
    assert_report(&stdout, &["worker", "flaky", "heartbeat", "db", "api"]);
    assert_no_panic(&service.stderr());
    assert_nothing_left(&mark).await;
}

/// README: probes on 127.0.0.1:9000 unless told; a port already in use is
/// said plainly, the units are stopped, and the exit code is a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_default_port_in_use_fails_plainly() {
    // Hold 127.0.0.1:9000 (if something else already does, it is in use all the same).
    let _holder = TcpListener::bind("127.0.0.1:9000").await;
    let mark = new_mark("service-busy");
    let (status, stdout, stderr) = run_to_end(command("service", &mark)).await;
    assert_eq!(status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("cannot bind the HTTP endpoint to 127.0.0.1:9000: Address already in use"), "{stderr}");
    assert!(!stdout.contains("serving"), "{stdout}");
    assert_no_panic(&stderr);
    assert_nothing_left(&mark).await;
}

/// The header: `HOST:PORT`, or a port; anything else is refused with a hint
/// and exit code 2, before anything starts.
#[tokio::test]
async fn service_bad_address_is_refused() {
    let mark = new_mark("service-bad");
    let mut command = command("service", &mark);
    command.arg("localhost:nine");
    let (status, stdout, stderr) = run_to_end(command).await;
    assert_eq!(status.code(), Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("cannot use `localhost:nine` as an address: write HOST:PORT"), "{stderr}");
    assert_nothing_left(&mark).await;
}

// ------------------------------------------------------------------ tasks

/// "restart policies and events": the events, the status, the report.
#[tokio::test]
async fn tasks_prints_events_status_and_report() {
    let mark = new_mark("tasks");
    let (status, stdout, stderr) = run_to_end(command("tasks", &mark)).await;
    assert_eq!(status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for event in [
        "ticker: tick",
        "ticker: Started { restart_count: 0",
        "flaky: Exited { reason: Error(\"lost the connection (run 1)\") }",
        "flaky: Restarting { attempt: 2, delay: 200ms }", // the backoff doubles the delay
        "panicky: Panicked { message: \"an invariant was broken\" }",
        "panicky: GaveUp { reason: MaxRestarts { max: 2 } }",
    ] {
        assert!(stdout.contains(event), "no `{event}`:\n{stdout}");
    }
    let (_, status_part) = stdout.split_once("\nstatus:\n").expect("the status");
    let ticker = row(status_part.trim_start(), "ticker");
    assert!(
        ticker.first().is_some_and(|line| line.contains("running") && line.contains("restarts=0")),
        "{status_part}"
    );
    let panicky = row(status_part.trim_start(), "panicky");
    assert!(
        panicky.first().is_some_and(|line| line.contains("failed") && line.contains("restarts=2")),
        "{status_part}"
    );
    assert_report(&stdout, &["ticker", "flaky"]);
    // The panics are the demo's, kept quiet by its hook.
    assert!(!stderr.contains("panicked at"), "{stderr}");
    assert_nothing_left(&mark).await;
}

// ---------------------------------------------------------------- daemons

/// "processes, output tails": four tables, the crasher restarted with its
/// exit code, both tails, the report, nothing left.
#[tokio::test]
async fn daemons_prints_status_tails_and_report() {
    let mark = new_mark("daemons");
    let (status, stdout, stderr) = run_to_end(command("daemons", &mark)).await;
    assert_eq!(status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(stdout.matches("unit     state        pid restarts  last exit").count(), 4, "{stdout}");
    let crasher_restarts: Vec<u32> = row(&stdout, "crasher")
        .iter()
        .filter(|line| !line.contains("graceful"))
        .filter_map(|line| line.split_whitespace().nth(3)?.parse().ok())
        .collect();
    assert!(crasher_restarts.last() >= Some(&2), "crasher is restarted every second: {crasher_restarts:?}\n{stdout}");
    assert!(row(&stdout, "crasher").iter().any(|line| line.ends_with("code 3")), "{stdout}");
    assert!(stdout.contains("crasher's tail: [\"starting\", \"giving up\", \"starting\"]"), "{stdout}");
    assert!(stdout.contains("from talker\"]"), "{stdout}");
    assert!(row(&stdout, "sleeper").iter().filter(|line| line.contains("running")).count() == 4, "{stdout}");
    assert_report(&stdout, &["sleeper", "crasher", "talker"]);
    assert_no_panic(&stderr);
    assert_nothing_left(&mark).await;
}

/// Ctrl-C while `daemons` runs, as a newcomer watching its tables would
/// press it: its units do not outlive it (`sleeper` is `sleep 3600`). It
/// once had no signal handling, and left `sleep 3600` behind.
#[tokio::test]
async fn daemons_ctrl_c_leaves_nothing_behind() {
    let mark = new_mark("daemons-ctrl-c");
    // A terminal's Ctrl-C finds SIGINT at its default: make sure it is,
    // even if this test runs from a shell's background job (which ignores it).
    let mut command = Command::new("python3");
    command
        .args([
            "-c",
            "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])",
        ])
        .arg(example("daemons"))
        .env(MARK_VAR, &mark)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut daemons = Running::spawn(command);
    daemons.wait_stdout("the first table", |text| text.contains("talker's tail")).await;
    assert!(processes_with_mark(&mark).len() >= 3, "{:?}", processes_with_mark(&mark));
    daemons.interrupt().await;
    assert_nothing_left(&mark).await;
}

// ----------------------------------------------------------------- macros

/// "both macros: a group, a dependency and the typed handle".
#[tokio::test]
async fn macros_runs_the_manifest_and_shuts_down() {
    let mark = new_mark("macros");
    let (status, stdout, stderr) = run_to_end(command("macros", &mark)).await;
    assert_eq!(status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("ticker is ready; storage/db said: [\"database system is ready\"]"), "{stdout}");
    let expect = [
        ("storage ", "running", "ready=true"),
        ("storage/db ", "running", "ready=true"),
        ("storage/migrate ", "exited", "restarts=0"),
        // Done, and so ready at rest.
        ("storage/migrate ", "exited", "ready=true"),
        ("ticker ", "running", "ready=true"),
        ("flaky ", "failed", "restarts=2"),
    ];
    for (unit, state, what) in expect {
        assert!(
            stdout.lines().any(|line| line.starts_with(unit) && line.contains(state) && line.contains(what)),
            "no `{unit}` {state} {what}:\n{stdout}"
        );
    }
    assert!(stdout.contains("last_error=Some(\"run 3 failed\")"), "{stdout}");
    assert_report(&stdout, &["ticker", "storage/db", "storage"]);
    // Its log lines go to stderr, apart from what it prints.
    assert!(stderr.contains("migrating") && !stdout.contains("migrating"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_no_panic(&stderr);
    assert_nothing_left(&mark).await;
}

// ------------------------------------------------------------ connections

/// "a supervised task per connection": three clients echoed, each a unit
/// of the group `connections`.
#[tokio::test]
async fn connections_echoes_each_client_in_a_unit() {
    let mark = new_mark("connections");
    let connections = Running::spawn(command("connections", &mark));
    let stdout = connections.wait_stdout("the tree with the clients", |text| text.contains("acceptor")).await;
    assert!(stdout.starts_with("echo server on 127.0.0.1:"), "{stdout}");
    for i in 0..3 {
        assert!(stdout.contains(&format!("client {i} got back: hello from client {i}\n")), "{stdout}");
    }
    // A connection already echoed may still show `starting`: its status
    // follows its run.
    for conn in ["  conn-1", "  conn-2", "  conn-3"] {
        assert!(
            stdout.lines().any(|line| line.starts_with(conn)
                && line.contains("task")
                && (line.contains("running") || line.contains("starting"))),
            "{stdout}"
        );
    }
    assert!(stdout.lines().any(|line| line.starts_with("connections") && line.contains("group")), "{stdout}");
    assert_no_panic(&connections.stderr());
    // Its end is the next test's.
}

/// The header: "connects three clients, shows the tree, lets them leave,
/// and shuts down": the tree without the connections, then the report.
///
/// It once hung there for ever: the wait on the group for its members to
/// be gone was not woken when they went.
#[tokio::test]
async fn connections_lets_the_clients_leave_and_shuts_down() {
    let mark = new_mark("connections-end");
    let mut connections = Running::spawn(command("connections", &mark));
    let status = connections.wait().await;
    let stdout = connections.stdout();
    assert_eq!(status.code(), Some(0), "{stdout}");
    let trees = stdout.lines().filter(|line| line.starts_with("acceptor ") && line.contains("running")).count();
    assert_eq!(trees, 2, "the tree twice:\n{stdout}");
    let (_, second_tree) = stdout.split_once("conn-3").unwrap();
    assert!(!second_tree.contains("conn-"), "the connections are forgotten:\n{stdout}");
    assert_report(&stdout, &["acceptor", "connections"]);
}

// ------------------------------------------------------------- axum_app + ctl

/// Runs `ctl` with the same runtime directory as the application, as
/// `cargo run --example ctl -- ARGS` would find its socket.
async fn ctl(runtime_dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(example("ctl"))
        .args(args)
        .env("XDG_RUNTIME_DIR", runtime_dir)
        .env_remove("SUPERVISOR_TOKEN")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(DEADLINE, output).await.expect("ctl ends in time").expect("ctl runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// "the routes in an axum app, metrics through the `metrics` facade, a
/// control socket for `cargo run --example ctl`": the header's commands,
/// the token file beside the socket (mode 0600, removed at the end), and
/// Ctrl-C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_app_routes_metrics_and_ctl() {
    let runtime_dir = tempfile::tempdir().unwrap();
    let socket = runtime_dir.path().join("supervisor-example.sock");
    let token_file = runtime_dir.path().join("supervisor-example.sock.token");
    let mark = new_mark("axum-app");
    let mut command = command("axum_app", &mark);
    command.arg("127.0.0.1:0").env("XDG_RUNTIME_DIR", runtime_dir.path());
    let mut app = Running::spawn(command);
    let stdout = app.wait_stdout("the application's address", |text| text.contains("application on http://")).await;
    assert!(stdout.contains(&format!("control token in {}", token_file.display())), "{stdout}");
    assert!(stdout.contains(&format!("control API on {}", socket.display())), "{stdout}");
    let addr: SocketAddr = stdout
        .lines()
        .find_map(|line| line.strip_prefix("application on http://"))
        .and_then(|rest| rest.split(':').take(2).collect::<Vec<_>>().join(":").parse().ok())
        .unwrap_or_else(|| panic!("no address:\n{stdout}"));

    // The socket and the token file are the user's alone.
    for file in [&socket, &token_file] {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }

    let (status, body) = get(addr, "/").await;
    assert_eq!((status, body.as_str()), (200, "the application\n"));
    let (status, body) = get(addr, "/supervisor/readyz").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(addr, "/supervisor/status").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    for unit in ["web", "worker", "cleanup"] {
        assert!(body.contains(&format!("supervisor_unit_up{{unit=\"{unit}\"")), "{body}");
    }

    // The control API refuses a change without the token.
    let stream = UnixStream::connect(&socket).await.unwrap();
    let (status, body) = request(stream, "POST", "/units/web/restart", None).await;
    assert_eq!(status, 401, "{body}");

    // ctl, through the default socket and its token file.
    let (code, out, err) = ctl(runtime_dir.path(), &["status"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    for unit in ["web", "worker", "cleanup"] {
        assert!(row(&out, unit).iter().any(|line| line.contains("running")), "{out}");
    }
    let old_pid = row(&out, "web")[0].split_whitespace().nth(3).unwrap().to_owned();
    let (code, out, err) = ctl(runtime_dir.path(), &["restart", "web"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("web: restart done; now running, pid "), "{out}");
    assert!(!out.contains(&format!("pid {old_pid}\n")), "a new process: {out}");
    let (code, out, err) = ctl(runtime_dir.path(), &["signal", "web", "HUP"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("web: signal SIGHUP done"), "{out}");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (code, out, err) = ctl(runtime_dir.path(), &["tail", "web", "-n", "5"]).await;
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(out.contains("web: listening"), "{out}");
        if out.contains("web: reloading") {
            break;
        }
        assert!(Instant::now() < deadline, "the HUP trap never ran: {out}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, out, err) = ctl(runtime_dir.path(), &["status", "nope"]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("no unit named `nope`") && err.contains("units: web, worker, cleanup"), "{err}");

    let status = app.interrupt().await;
    let stdout = app.stdout();
    assert_eq!(status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{}", app.stderr());
    assert_report(&stdout, &["web", "worker", "cleanup"]);
    assert!(!socket.exists(), "the socket is removed");
    assert!(!token_file.exists(), "the token file is removed at the end");
    assert_no_panic(&app.stderr());
    assert_nothing_left(&mark).await;
    let (code, _, err) = ctl(runtime_dir.path(), &["status"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot connect to"), "{err}");
}

/// `axum_app` on the README's default address, 127.0.0.1:3000, already in
/// use: the error names the address, no unit is left to drop, and no
/// token file is left behind. It once said only `Address already in use`,
/// after its units had started and its token file was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_app_port_in_use_fails_plainly() {
    let runtime_dir = tempfile::tempdir().unwrap();
    let token_file = runtime_dir.path().join("supervisor-example.sock.token");
    let holder = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let busy = holder.local_addr().unwrap().to_string();
    let mark = new_mark("axum-busy");
    let mut command = command("axum_app", &mark);
    command.arg(&busy).env("XDG_RUNTIME_DIR", runtime_dir.path());
    let (status, stdout, stderr) = run_to_end(command).await;
    assert_eq!(status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_nothing_left(&mark).await;
    assert!(!token_file.exists(), "the token file is left behind:\n{stdout}");
    assert!(
        !stderr.contains("the run was dropped before it ended"),
        "the units were not stopped gracefully:\n{stderr}"
    );
    let error = stderr.lines().find(|line| line.starts_with("Error:")).unwrap_or_default();
    assert!(error.contains(&busy), "the error names no address: `{error}`");
}

// -------------------------------------------------------------- log_files

/// "a rotated log file per unit": one file per unit (a group's unit as
/// `storage.db`), each line `<time> <stream>: <line>`, listed at the end.
#[tokio::test]
async fn log_files_writes_a_file_per_unit() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let mark = new_mark("log-files");
    let mut command = command("log_files", &mark);
    command.arg(&logs);
    let (status, stdout, stderr) = run_to_end(command).await;
    assert_eq!(status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_report(&stdout, &["web", "worker", "storage/db", "storage"]);
    assert!(stdout.contains(&format!("log files in {}:", logs.display())), "{stdout}");
    let mut names: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let prefixes: Vec<&str> = names.iter().map(|name| name.split('.').next().unwrap()).collect();
    assert_eq!(prefixes, ["storage", "web", "worker"], "{names:?}");
    assert!(names[0].starts_with("storage.db.") && names.iter().all(|name| name.ends_with(".log")), "{names:?}");
    let read = |prefix: &str| {
        let name = names.iter().find(|name| name.starts_with(prefix)).unwrap();
        std::fs::read_to_string(logs.join(name)).unwrap()
    };
    assert!(read("web.").contains(" stdout: web: GET / 200\n"));
    let worker = read("worker.");
    assert!(worker.contains(" stdout: worker: job 1 done\n") && worker.contains(" stderr: worker: job 1 was slow\n"));
    assert!(read("storage.db.").contains(" stdout: db: ready\n"));
    // The terminal has the lifecycle, not the output lines.
    assert!(!stderr.contains("GET / 200"), "{stderr}");
    assert_no_panic(&stderr);
    assert_nothing_left(&mark).await;
}
