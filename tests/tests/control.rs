//! The control API over real sockets with real processes: restarting,
//! stopping, starting, signalling and tailing a daemon over TCP and over a
//! Unix socket; the socket's mode and life; and everything it must refuse.

mod client;
#[path = "support/subscriber.rs"]
mod subscriber;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use client::{Answer, DEADLINE, Target, get, process_exists, send, wait_status, with_token};
use supervisor::http::{ControlApi, HttpEndpoint, HttpServer};
use supervisor::{Context, DaemonSpec, GroupSpec, Supervisor, SupervisorHandle, TaskSpec, UnitState};
use tokio::time::Instant;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn control() -> ControlApi {
    ControlApi::new(TOKEN).expect("a valid token")
}

/// A daemon that says so when it gets `SIGHUP`, and runs until stopped.
fn hup_daemon(name: &str) -> DaemonSpec {
    DaemonSpec::new(name, "sh").args(["-c", "trap 'echo got-hup' HUP; echo started; while :; do sleep 0.05; done"])
}

fn waiting_task(name: &str) -> TaskSpec {
    TaskSpec::new(name, |ctx: Context| async move { ctx.cancelled().await })
}

/// A directory of its own for a test's sockets, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("sup-ctl-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The names in the directory.
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn serve_tcp(handle: &SupervisorHandle) -> (HttpServer, Target) {
    let server =
        HttpEndpoint::new().addr("127.0.0.1:0".parse().unwrap()).control(control()).serve(handle).await.expect("serve");
    let target = Target::Tcp(server.local_addr());
    (server, target)
}

fn pid_of(handle: &SupervisorHandle, name: &str) -> u32 {
    handle.status(name).and_then(|status| status.pid).unwrap_or_else(|| panic!("`{name}` has no pid"))
}

/// Asks for the tail until a line contains `text`.
async fn wait_for_line(target: &Target, unit: &str, text: &str) -> Answer {
    wait_for_lines(target, unit, text, 1).await
}

/// Asks for the tail until `count` lines contain `text` (the tail keeps the
/// lines of earlier runs too).
async fn wait_for_lines(target: &Target, unit: &str, text: &str, count: usize) -> Answer {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let answer = with_token(target, "GET", &format!("/units/{unit}/tail?lines=50"), TOKEN).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let lines = answer.json()["lines"].clone();
        if lines.as_array().unwrap().iter().filter(|line| line.as_str().unwrap().contains(text)).count() >= count {
            return answer;
        }
        assert!(Instant::now() < deadline, "`{unit}` never wrote {text:?}: {lines}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Restarts, stops, starts, signals and tails `web` over `target`.
async fn drive_a_daemon(handle: &SupervisorHandle, target: &Target) {
    let before = wait_status(handle, "web", |status| status.state == UnitState::Running).await;
    let old_pid = before.pid.unwrap();

    let restarted = with_token(target, "POST", "/units/web/restart", TOKEN).await;
    assert_eq!(restarted.status, 200, "{restarted:?}");
    let body = restarted.json();
    assert_eq!(body["unit"], "web");
    assert_eq!(body["done"], "restart");
    assert_eq!(body["status"]["state"], "running", "{body}");
    let new_pid = pid_of(handle, "web");
    assert_ne!(new_pid, old_pid, "a restart runs a new process");
    assert_eq!(body["status"]["pid"], new_pid);
    assert!(!process_exists(old_pid), "the old process {old_pid} is gone once the restart answers");

    let stopped = with_token(target, "POST", "/units/web/stop", TOKEN).await;
    assert_eq!(stopped.status, 200, "{stopped:?}");
    assert_eq!(stopped.json()["status"]["state"], "stopped");
    assert_eq!(handle.status("web").unwrap().state, UnitState::Stopped);
    assert!(!process_exists(new_pid));
    // A stopped daemon takes no signal.
    let conflict = with_token(target, "POST", "/units/web/signal/HUP", TOKEN).await;
    assert_eq!(conflict.status, 409, "{conflict:?}");

    // The new run has set its trap once it says so: count its line apart
    // from those of the earlier runs.
    let earlier = handle.tail("web", 50).unwrap().iter().filter(|line| line.contains("started")).count();
    let started = with_token(target, "POST", "/units/web/start", TOKEN).await;
    assert_eq!(started.status, 200, "{started:?}");
    assert_eq!(started.json()["status"]["state"], "running");
    wait_for_lines(target, "web", "started", earlier + 1).await;

    let signalled = with_token(target, "POST", "/units/web/signal/HUP", TOKEN).await;
    assert_eq!(signalled.status, 200, "{signalled:?}");
    assert_eq!(signalled.json()["done"], "signal SIGHUP");
    wait_for_line(target, "web", "got-hup").await;
    // The same with the SIG prefix.
    assert_eq!(with_token(target, "POST", "/units/web/signal/SIGHUP", TOKEN).await.status, 200);

    let one = with_token(target, "GET", "/units/web/tail?lines=1", TOKEN).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["lines"].as_array().unwrap().len(), 1, "{one:?}");
    assert_eq!(one.json()["unit"], "web");

    let status = with_token(target, "GET", "/units/web", TOKEN).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["status"]["name"], "web");
    assert_eq!(status.json()["status"]["type"], "process");
}

#[tokio::test]
async fn the_control_api_drives_a_real_process_over_tcp() {
    let handle = Supervisor::builder().daemon(hup_daemon("web")).build().unwrap().start();
    let (server, target) = serve_tcp(&handle).await;
    drive_a_daemon(&handle, &target).await;
    // The probes are still there, and still need no token.
    assert_eq!(get(&target, "/livez").await.status, 200);
    handle.shutdown().await;
    tokio::time::timeout(DEADLINE, server.stopped()).await.expect("the endpoint stops with the supervisor");
}

#[tokio::test]
async fn the_control_api_drives_a_real_process_over_a_unix_socket() {
    let scratch = Scratch::new("unix");
    let socket = scratch.path("control.sock");
    let handle = Supervisor::builder().daemon(hup_daemon("web")).build().unwrap().start();
    let server = HttpEndpoint::new().unix_socket(&socket).control(control()).serve(&handle).await.expect("serve");
    assert_eq!(server.unix_socket(), Some(socket.as_path()));

    let metadata = std::fs::symlink_metadata(&socket).unwrap();
    assert!(metadata.file_type().is_socket());
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600, "the socket is for its owner only");
    // Nothing is left of the private directory it was bound in.
    assert_eq!(scratch.entries(), ["control.sock"]);

    let target = Target::Unix(socket.clone());
    drive_a_daemon(&handle, &target).await;
    assert_eq!(with_token(&target, "POST", "/units/web/restart", "wrong-token-wrong-token").await.status, 401);

    server.shutdown().await;
    assert!(!socket.exists(), "the socket is removed when the endpoint stops");
    assert!(scratch.entries().is_empty());
    handle.shutdown().await;
}

/// Set in the child of the test below: where it serves its socket.
const EXITS_AT_ONCE: &str = "SUPERVISOR_TEST_EXITS_AT_ONCE";

/// The socket file is gone once the supervisor's shutdown has returned its
/// report, as the PID file is: a `main` that exits with the report's code
/// at once (the README's pattern) leaves nothing behind. It was removed
/// only by the endpoint's own task, which never ran again.
#[test]
fn a_main_that_exits_with_the_report_leaves_no_socket_behind() {
    for round in 0..3 {
        let scratch = Scratch::new(&format!("exit-{round}"));
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "exits_with_the_report_at_once", "--nocapture", "--test-threads", "1"])
            .env(EXITS_AT_ONCE, scratch.path("control.sock"))
            .output()
            .expect("run the child test");
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert_eq!(output.status.code(), Some(0), "{text}");
        assert!(text.contains("serving"), "{text}");
        assert_eq!(scratch.entries(), Vec::<String>::new(), "round {round}");
    }
}

/// The child of the test above; passes at once in any other run.
#[test]
fn exits_with_the_report_at_once() {
    let Some(socket) = std::env::var_os(EXITS_AT_ONCE).map(PathBuf::from) else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let handle = Supervisor::builder().daemon(hup_daemon("web")).build().unwrap().start();
        let _server = HttpEndpoint::new().unix_socket(&socket).control(control()).serve(&handle).await.unwrap();
        assert!(socket.exists());
        println!("serving");
        let report = handle.shutdown().await;
        std::process::exit(report.exit_code());
    });
}

#[tokio::test]
async fn the_unix_socket_replaces_a_stale_socket_and_nothing_else() {
    let scratch = Scratch::new("stale");
    let handle = Supervisor::builder().task(waiting_task("ticker")).build().unwrap().start();
    let endpoint = |path: &Path| HttpEndpoint::new().unix_socket(path).control(control());

    // A socket left by a process that ended: nobody listens on it.
    let stale = scratch.path("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let server = endpoint(&stale).serve(&handle).await.expect("a stale socket is replaced");
    assert_eq!(std::fs::metadata(&stale).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(get(&Target::Unix(stale.clone()), "/livez").await.status, 200);

    // A live one is not taken over.
    let refused = endpoint(&stale).serve(&handle).await.expect_err("another endpoint listens there");
    assert!(refused.to_string().contains("another process listens"), "{refused}");
    assert_eq!(get(&Target::Unix(stale.clone()), "/livez").await.status, 200, "the first endpoint still answers");

    // Nor is a file that is not a socket.
    let file = scratch.path("precious.txt");
    std::fs::write(&file, "keep me").unwrap();
    let refused = endpoint(&file).serve(&handle).await.expect_err("a regular file is not replaced");
    assert!(refused.to_string().contains("not a socket"), "{refused}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    // A directory that does not exist.
    // The error names the path asked for and the directory that is
    // missing, not the hidden directory the socket would have been bound in.
    let missing = scratch.path("no/such/dir/control.sock");
    let refused = endpoint(&missing).serve(&handle).await.expect_err("its directory does not exist");
    let expected = format!(
        "cannot listen on {}: cannot create a directory in {} to bind the socket in: ",
        missing.display(),
        scratch.path("no/such/dir").display()
    );
    assert!(refused.to_string().starts_with(&expected), "{refused}");
    assert!(refused.to_string().contains("No such file or directory"), "{refused}");

    assert_eq!(scratch.entries(), ["precious.txt", "stale.sock"], "no private directory is left behind");
    server.shutdown().await;
    assert_eq!(scratch.entries(), ["precious.txt"]);
    handle.shutdown().await;
}

#[tokio::test]
async fn the_control_api_is_off_by_default() {
    let handle = Supervisor::builder().daemon(hup_daemon("web")).build().unwrap().start();
    let server = HttpEndpoint::new().addr("127.0.0.1:0".parse().unwrap()).serve(&handle).await.unwrap();
    let target = Target::Tcp(server.local_addr());
    let pid = wait_status(&handle, "web", |status| status.state == UnitState::Running).await.pid.unwrap();

    for (method, path) in [
        ("POST", "/units/web/restart"),
        ("POST", "/units/web/stop"),
        ("POST", "/units/web/signal/KILL"),
        ("GET", "/units/web/tail"),
        ("GET", "/units/web"),
        ("GET", "/units"),
    ] {
        let answer = with_token(&target, method, path, TOKEN).await;
        assert_eq!(answer.status, 404, "{method} {path}: {answer:?}");
        assert_eq!(answer.json()["error"], "not found");
    }
    assert_eq!(pid_of(&handle, "web"), pid, "nothing was done to the unit");
    assert!(handle.tail("web", 10).unwrap().iter().all(|line| line != "got-hup"));
    handle.shutdown().await;
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_refused_alike_before_anything_is_looked_at() {
    let handle = Supervisor::builder().daemon(hup_daemon("web")).build().unwrap().start();
    let (_server, target) = serve_tcp(&handle).await;
    let pid = wait_status(&handle, "web", |status| status.state == UnitState::Running).await.pid.unwrap();

    let same_length_wrong = format!("Bearer {}X", &TOKEN[..TOKEN.len() - 1]);
    let prefix = format!("Bearer {}", &TOKEN[..8]);
    let longer = format!("Bearer {TOKEN}0");
    let basic = format!("Basic {TOKEN}");
    let bare = TOKEN.to_owned();
    let right = format!("Bearer {TOKEN}");
    let ways: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("authorization", "Bearer ")],
        vec![("authorization", &same_length_wrong)],
        vec![("authorization", &prefix)],
        vec![("authorization", &longer)],
        vec![("authorization", &basic)],
        vec![("authorization", &bare)],
        // The right token twice is not the right token once.
        vec![("authorization", &right), ("authorization", &right)],
        // Nor is the token anywhere else.
        vec![("x-token", TOKEN), ("cookie", TOKEN)],
    ];
    let mut bodies = Vec::new();
    for headers in &ways {
        for (method, path) in [
            ("POST", "/units/web/restart"),
            ("POST", "/units/nope/restart"),
            ("POST", "/units/web/signal/BOGUS"),
            ("GET", "/units/web/tail?lines=x"),
            ("GET", "/units"),
            ("DELETE", "/units/web"),
        ] {
            let answer = send(&target, method, path, headers).await;
            assert_eq!(answer.status, 401, "{method} {path} with {headers:?}: {answer:?}");
            assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
            assert!(!answer.body.contains("web") && !answer.body.contains("nope"), "{}", answer.body);
            bodies.push(answer.body);
        }
    }
    bodies.dedup();
    assert_eq!(bodies.len(), 1, "every refusal reads the same: {bodies:?}");
    // A token in the query string is not a token either.
    let query = send(&target, "POST", &format!("/units/web/restart?token={TOKEN}"), &[]).await;
    assert_eq!(query.status, 401);

    assert_eq!(pid_of(&handle, "web"), pid, "nothing was done to the unit");
    // The scheme's case does not matter.
    let lower = send(&target, "GET", "/units/web", &[("authorization", &format!("bearer {TOKEN}"))]).await;
    assert_eq!(lower.status, 200, "{lower:?}");
    handle.shutdown().await;
}

#[tokio::test]
async fn unknown_units_bad_signals_and_bad_requests_are_refused() {
    let marker = std::env::temp_dir().join(format!("sup-ctl-{}-marker", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let handle = Supervisor::builder()
        // Stopped last in a shutdown, and slowly: the shutdown below lasts.
        .task(TaskSpec::new("slow", |ctx: Context| async move {
            ctx.cancelled().await;
            tokio::time::sleep(Duration::from_millis(800)).await;
        }))
        .daemon(hup_daemon("web"))
        .task(waiting_task("ticker"))
        .group(GroupSpec::new("storage").daemon(hup_daemon("db")))
        .build()
        .unwrap()
        .start();
    let (_server, target) = serve_tcp(&handle).await;
    wait_status(&handle, "storage/db", |status| status.state == UnitState::Running).await;
    let pid = wait_status(&handle, "web", |status| status.state == UnitState::Running).await.pid.unwrap();
    let call = |method: &'static str, path: String| {
        let target = target.clone();
        async move { with_token(&target, method, &path, TOKEN).await }
    };

    // An unknown unit: 404, naming the units to the caller with the token.
    let unknown = call("POST", "/units/nope/restart".to_owned()).await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let body = unknown.json();
    assert!(body["error"].as_str().unwrap().contains("nope"));
    assert_eq!(body["units"], serde_json::json!(["slow", "web", "ticker", "storage", "storage/db"]));
    for path in ["/units/nope", "/units/nope/tail", "/units/web/bogus", "/units/storage/nope/stop", "/units/"] {
        let method = if path.ends_with("stop") { "POST" } else { "GET" };
        let answer = call(method, path.to_owned()).await;
        assert_eq!(answer.status, 404, "{path}: {answer:?}");
        assert!(answer.json()["units"].as_array().unwrap().contains(&"web".into()), "{path}");
    }

    // Bad signals: 400, and nothing sent.
    for signal in ["BOGUS", "9", "-9", "term", "SIGRTMIN", "KILL%3Btouch", "%00", "HUP%20"] {
        let answer = call("POST", format!("/units/web/signal/{signal}")).await;
        assert_eq!(answer.status, 400, "{signal}: {answer:?}");
        assert!(answer.json()["error"].as_str().unwrap().contains("signal"), "{signal}");
    }
    // A signal to a task: it has no process.
    assert_eq!(call("POST", "/units/ticker/signal/HUP".to_owned()).await.status, 409);

    // Bad counts and paths: 400.
    for path in ["/units/web/tail?lines=ten", "/units/web/tail?lines=-1", "/units/web/tail?lines", "/units/%ff/stop"] {
        let method = if path.ends_with("stop") { "POST" } else { "GET" };
        assert_eq!(call(method, path.to_owned()).await.status, 400, "{path}");
    }
    for path in ["/units/web//stop", "/units/storage%2F%2Fdb/stop", "/units/web/"] {
        let method = if path.ends_with("stop") { "POST" } else { "GET" };
        assert_eq!(call(method, path.to_owned()).await.status, 400, "{path}");
    }

    // The wrong method: 405 with `Allow`.
    for (method, path, allow) in [
        ("GET", "/units/web/restart", "POST"),
        ("PUT", "/units/web/stop", "POST"),
        ("POST", "/units/web/tail", "GET, HEAD"),
        ("DELETE", "/units/web", "GET, HEAD"),
    ] {
        let answer = call(method, path.to_owned()).await;
        assert_eq!(answer.status, 405, "{method} {path}");
        assert_eq!(answer.header("allow"), Some(allow), "{method} {path}");
    }

    // What looks like a command is a unit name that does not exist.
    let touch = marker.display().to_string().replace('/', "%2F");
    for path in [
        format!("/units/$(touch%20{touch})/restart"),
        format!("/units/%60touch%20{touch}%60/stop"),
        format!("/units/web%3Btouch%20{touch}/restart"),
        format!("/units/web/signal/HUP%3Btouch%20{touch}"),
    ] {
        let answer = call("POST", path.clone()).await;
        assert!(answer.status == 404 || answer.status == 400, "{path}: {answer:?}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!marker.exists(), "nothing a caller sent was run");
    assert_eq!(pid_of(&handle, "web"), pid, "no request touched `web`");

    // Units in groups are named by path, `/` written as it is or as %2F.
    let db = pid_of(&handle, "storage/db");
    let restarted = call("POST", "/units/storage/db/restart".to_owned()).await;
    assert_eq!(restarted.status, 200, "{restarted:?}");
    assert_eq!(restarted.json()["unit"], "storage/db");
    let again = call("POST", "/units/storage%2Fdb/restart".to_owned()).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_ne!(pid_of(&handle, "storage/db"), db);
    // A group is a unit too.
    assert_eq!(call("POST", "/units/storage/stop".to_owned()).await.json()["status"]["state"], "stopped");
    assert_eq!(call("POST", "/units/storage/db/restart".to_owned()).await.status, 409, "its group is stopped");

    // Once a shutdown has begun, nothing is started.
    let shutdown = tokio::spawn({
        let handle = handle.clone();
        async move { handle.shutdown().await }
    });
    let deadline = Instant::now() + DEADLINE;
    while !handle.is_shutting_down() {
        assert!(Instant::now() < deadline, "the shutdown never began");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let late = call("POST", "/units/web/start".to_owned()).await;
    assert_eq!(late.status, 503, "{late:?}");
    assert!(late.json()["error"].as_str().unwrap().contains("shutting down"));
    shutdown.await.unwrap();
}

/// `connection_timeout`: "Then it is closed once its request in progress,
/// if any, has been answered"; the control API: "A restart answers once it
/// is done". A restart that outlasts the connection's time (its unit takes
/// 3 s to stop; the connection may last 300 ms) is answered when it is
/// done. The connection used to be cut 2 s after its time, the restart
/// going on unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_that_outlasts_its_connection_s_time_is_still_answered() {
    let slow = TaskSpec::new("slow", |ctx: Context| async move {
        ctx.cancelled().await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    });
    let handle = Supervisor::builder().task(slow).build().unwrap().start();
    let server = HttpEndpoint::new()
        .addr("127.0.0.1:0".parse().unwrap())
        .control(control())
        .connection_timeout(Duration::from_millis(300))
        .serve(&handle)
        .await
        .expect("serve");
    let target = Target::Tcp(server.local_addr());
    handle.wait_ready("slow").await.unwrap();
    let began = Instant::now();
    let restarted = with_token(&target, "POST", "/units/slow/restart", TOKEN).await;
    assert_eq!(restarted.status, 200, "{restarted:?}");
    assert!(began.elapsed() >= Duration::from_secs(3), "answered before the restart was done");
    assert_eq!(restarted.json()["status"]["state"], "running", "{restarted:?}");
    assert_eq!(handle.status("slow").unwrap().state, UnitState::Running);
    handle.shutdown().await;
}

/// "A unit path is the unit's full path, its `/` kept as they are": units
/// of a group named `tail`, `stop`, `start` and `restart` are read at
/// their paths. `GET /units/jobs/tail` answered with the tail of the group
/// `jobs`, and `GET /units/jobs/stop` with 405, although `ctl status
/// jobs/tail` asks exactly that. Writes still read the last name as the
/// action, and a path that names no unit still reads as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_named_after_actions_are_read_at_their_paths() {
    let jobs = ["tail", "stop", "start", "restart"]
        .into_iter()
        .fold(GroupSpec::new("jobs"), |group, name| group.task(waiting_task(name)));
    let handle = Supervisor::builder().group(jobs).daemon(hup_daemon("web")).build().unwrap().start();
    let (_server, target) = serve_tcp(&handle).await;
    for name in ["tail", "stop", "start", "restart"] {
        handle.wait_ready(&format!("jobs/{name}")).await.unwrap();
        for path in [format!("/units/jobs/{name}"), format!("/units/jobs%2F{name}")] {
            let answer = with_token(&target, "GET", &path, TOKEN).await;
            assert_eq!(answer.status, 200, "{path}: {answer:?}");
            assert_eq!(answer.json()["unit"], format!("jobs/{name}"), "{path}: {answer:?}");
            assert_eq!(answer.json()["status"]["state"], "running", "{path}: {answer:?}");
        }
    }
    // Its tail, with the action written out.
    let tail = with_token(&target, "GET", "/units/jobs/tail/tail", TOKEN).await;
    assert_eq!((tail.status, tail.json()["unit"].clone()), (200, "jobs/tail".into()), "{tail:?}");
    // A write: the last name is the action, on the unit before it.
    let stopped = with_token(&target, "POST", "/units/jobs/tail/stop", TOKEN).await;
    assert_eq!(stopped.status, 200, "{stopped:?}");
    assert_eq!(handle.status("jobs/tail").unwrap().state, UnitState::Stopped);
    assert_eq!(handle.status("jobs/stop").unwrap().state, UnitState::Running, "only `jobs/tail` was stopped");
    // No unit of the whole path: the tail, and a write action read by `GET`.
    let tail = with_token(&target, "GET", "/units/web/tail", TOKEN).await;
    assert_eq!((tail.status, tail.json()["unit"].clone()), (200, "web".into()), "{tail:?}");
    let wrong_method = with_token(&target, "GET", "/units/web/stop", TOKEN).await;
    assert_eq!(wrong_method.status, 405, "{wrong_method:?}");
    handle.shutdown().await;
}

/// Records each log line's message and fields.
struct LineRecorder(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LineRecorder {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut line = String::new();
        event.record(&mut |field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
            line.push_str(&format!("{}={value:?} ", field.name()));
        });
        self.0.lock().unwrap().push(line);
    }
}

/// A call that changes something is logged once it is done or refused, and
/// the line says which: a call refused (an unknown unit) was logged before
/// the unit was looked up, as if it had been carried out.
#[tokio::test]
async fn the_control_api_logs_what_it_did_and_what_it_refused() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let _subscriber = subscriber::on_this_thread(tracing_subscriber::registry().with(LineRecorder(lines.clone())));
    let handle = Supervisor::builder().task(waiting_task("worker")).build().unwrap().start();
    handle.wait_ready("worker").await.unwrap();
    let (_server, target) = serve_tcp(&handle).await;
    assert_eq!(with_token(&target, "POST", "/units/worker/restart", TOKEN).await.status, 200);
    assert_eq!(with_token(&target, "POST", "/units/ghost/restart", TOKEN).await.status, 404);
    handle.shutdown().await;
    let lines = lines.lock().unwrap();
    let about = |unit: &str| -> Vec<&String> {
        lines.iter().filter(|line| line.contains("control API") && line.contains(&format!("unit={unit} "))).collect()
    };
    let (worker, ghost) = (about("worker"), about("ghost"));
    assert!(worker.len() == 1 && worker[0].contains("control API: done"), "{worker:?}");
    assert!(ghost.len() == 1 && ghost[0].contains("control API: refused"), "{ghost:?}");
    assert!(ghost[0].contains("error="), "the refusal says why: {ghost:?}");
}
