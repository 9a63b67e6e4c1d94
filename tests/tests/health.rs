//! Health checks, liveness and readiness, and the HTTP endpoint, exercised
//! with a real HTTP/1.1 client over a real TCP socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use supervisor::{
    Context, Error, GroupSpec, HttpEndpoint, HttpServer, MaxRestarts, RestartPolicy, Supervisor, SupervisorHandle,
    TaskSpec, UnitState,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(20);

/// One HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.body))
    }
}

/// Sends `request` as it is and reads the answer until the server closes
/// (every request here asks it to).
async fn raw(addr: SocketAddr, request: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut bytes = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut bytes)).await.expect("answer in time").expect("read");
    let text = String::from_utf8(bytes).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no header end in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().expect("status code");
    let headers = lines
        .map(|line| {
            let (key, value) = line.split_once(':').expect("header line");
            (key.trim().to_owned(), value.trim().to_owned())
        })
        .collect();
    Answer { status, headers, body: body.to_owned() }
}

async fn request(addr: SocketAddr, method: &str, path: &str) -> Answer {
    raw(
        addr,
        &format!("{method} {path} HTTP/1.1\r\nHost: test\r\nUser-Agent: supervisor-tests\r\nConnection: close\r\n\r\n"),
    )
    .await
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path).await
}

/// Asks `path` until it answers `status`.
async fn wait_for_status(addr: SocketAddr, path: &str, status: u16) -> Answer {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let answer = get(addr, path).await;
        if answer.status == status {
            return answer;
        }
        assert!(Instant::now() < deadline, "{path} never answered {status}; last: {answer:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `name` is in `state`, watching the events.
async fn wait_for_state(handle: &SupervisorHandle, name: &str, state: UnitState) {
    let mut events = handle.subscribe();
    let deadline = Instant::now() + DEADLINE;
    while handle.status(name).map(|status| status.state) != Some(state) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        assert!(!remaining.is_zero(), "`{name}` never reached {state:?}: {:?}", handle.status(name));
        // Any event, or a short tick for the changes that have none.
        let _ = tokio::time::timeout(remaining.min(Duration::from_millis(50)), events.recv()).await;
    }
}

fn waiting_task(name: &str) -> TaskSpec {
    TaskSpec::new(name, |ctx: Context| async move { ctx.cancelled().await })
}

async fn serve(handle: &SupervisorHandle) -> HttpServer {
    HttpEndpoint::new().addr("127.0.0.1:0".parse().unwrap()).serve(handle).await.expect("bind")
}

#[tokio::test]
async fn every_endpoint_answers_with_its_status_code_and_json() {
    let handle = Supervisor::builder()
        .task(waiting_task("ticker"))
        .daemon(supervisor::DaemonSpec::new("sleeper", "sleep").arg("300").env("SECRET_TOKEN", "hunter2"))
        .health_check("always-fine", || async { Ok::<_, std::io::Error>(()) })
        .build()
        .unwrap()
        .start();
    let server = serve(&handle).await;
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);

    let ready = wait_for_status(addr, "/readyz", 200).await;
    assert_eq!(ready.header("content-type"), Some("application/json"));
    assert_eq!(ready.header("cache-control"), Some("no-store"));
    let body = ready.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["ready"], true);
    assert_eq!(body["live"], true);
    assert_eq!(body["reasons"], serde_json::json!([]));
    assert_eq!(body["checks"][0]["name"], "always-fine");
    assert_eq!(body["checks"][0]["ok"], true);
    assert_eq!(body["units"][0]["name"], "ticker");
    assert_eq!(body["units"][1]["type"], "process");
    assert_eq!(body["units"][1]["state"], "running");

    for path in ["/livez", "/healthz", "/health", "/ready"] {
        let answer = get(addr, path).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        assert_eq!(answer.json()["live"], true, "{path}");
    }
    // Query strings are ignored.
    assert_eq!(get(addr, "/readyz?verbose=1").await.status, 200);

    let status = get(addr, "/status").await;
    assert_eq!(status.status, 200);
    let units = status.json();
    let units = units.as_array().expect("an array");
    assert_eq!(units.len(), 2);
    assert_eq!(units[0]["name"], "ticker");
    assert_eq!(units[0]["type"], "task");
    assert_eq!(units[1]["name"], "sleeper");
    assert!(units[1]["pid"].as_u64().is_some());
    assert!(!status.body.contains("hunter2") && !status.body.contains("SECRET_TOKEN"), "{}", status.body);

    let metrics = get(addr, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    for line in [
        "# TYPE supervisor_up gauge",
        "supervisor_up 1",
        "supervisor_ready 1",
        "supervisor_unit_up{unit=\"ticker\",type=\"task\"} 1",
        "supervisor_unit_up{unit=\"sleeper\",type=\"process\"} 1",
        "supervisor_unit_state{unit=\"sleeper\",type=\"process\",state=\"running\"} 1",
        "supervisor_unit_state{unit=\"sleeper\",type=\"process\",state=\"backoff\"} 0",
        "# TYPE supervisor_unit_restarts_total counter",
        "supervisor_unit_restarts_total{unit=\"ticker\",type=\"task\"} 0",
        "# TYPE supervisor_unit_last_exit_code gauge",
    ] {
        assert!(metrics.body.lines().any(|l| l == line), "no line {line:?} in\n{}", metrics.body);
    }
    // Every sample line is `name{labels} value` or `name value`.
    for line in metrics.body.lines().filter(|line| !line.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad sample {line:?}");
    }

    let missing = get(addr, "/nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "not found");
    assert_eq!(get(addr, "/").await.status, 404);

    for method in ["POST", "PUT", "DELETE"] {
        let answer = request(addr, method, "/readyz").await;
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.header("allow"), Some("GET, HEAD"));
        assert!(answer.json()["error"].as_str().unwrap().contains(method));
    }

    let head = request(addr, "HEAD", "/livez").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());

    let too_big =
        raw(addr, "GET /livez HTTP/1.1\r\nHost: test\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\n").await;
    assert_eq!(too_big.status, 413);
    let huge_header = format!(
        "GET /livez HTTP/1.1\r\nHost: test\r\nConnection: close\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let huge = raw(addr, &huge_header).await;
    assert_eq!(huge.status, 431, "{huge:?}");

    // The endpoint ends with the supervisor.
    let report = handle.shutdown().await;
    assert!(report.is_clean(), "{report}");
    // (Whether the port still accepts is not checked: another test of this
    // binary may be given the freed port at once.)
    tokio::time::timeout(DEADLINE, server.stopped()).await.expect("the endpoint stops after the shutdown");
}

#[tokio::test]
async fn readiness_follows_a_unit_through_backoff_and_back() {
    let fail = Arc::new(Notify::new());
    let trigger = fail.clone();
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("flaky", move |ctx: Context| {
                let fail = fail.clone();
                async move {
                    tokio::select! {
                        () = ctx.cancelled() => Ok(()),
                        () = fail.notified() => Err("lost the connection"),
                    }
                }
            })
            .restart(RestartPolicy::new().delay(Duration::from_secs(2)).max_restarts(MaxRestarts::Unlimited)),
        )
        .task(waiting_task("steady"))
        .build()
        .unwrap()
        .start();
    let server = serve(&handle).await;
    let addr = server.local_addr();

    wait_for_state(&handle, "flaky", UnitState::Running).await;
    assert_eq!(get(addr, "/readyz").await.status, 200);

    trigger.notify_one();
    wait_for_state(&handle, "flaky", UnitState::Backoff).await;
    let not_ready = get(addr, "/readyz").await;
    assert_eq!(not_ready.status, 503, "{not_ready:?}");
    let body = not_ready.json();
    assert_eq!(body["status"], "not-ready");
    assert_eq!(body["ready"], false);
    assert_eq!(body["live"], true);
    assert_eq!(body["units"][0]["state"], "backoff");
    assert_eq!(body["units"][0]["ready"], false);
    assert_eq!(body["units"][1]["ready"], true);
    assert!(body["reasons"][0].as_str().unwrap().contains("flaky"), "{body}");
    // Waiting to restart is not dead.
    assert_eq!(get(addr, "/livez").await.status, 200);
    assert_eq!(get(addr, "/healthz").await.status, 200);

    let ready = wait_for_status(addr, "/readyz", 200).await;
    assert_eq!(ready.json()["units"][0]["state"], "running");
    assert_eq!(handle.status("flaky").unwrap().restart_count, 1);

    // A unit stopped on purpose does not count against readiness.
    handle.stop_unit("flaky").await.unwrap();
    let ready = get(addr, "/readyz").await;
    assert_eq!(ready.status, 200, "{ready:?}");
    assert_eq!(ready.json()["units"][0]["state"], "stopped");
    handle.shutdown().await;
}

#[tokio::test]
async fn a_failing_check_makes_it_neither_live_nor_ready() {
    let healthy = Arc::new(AtomicBool::new(true));
    let flag = healthy.clone();
    let handle = Supervisor::builder().task(waiting_task("ticker")).build().unwrap().start();
    handle.add_health_check("database", move || {
        let healthy = flag.load(Ordering::SeqCst);
        async move { if healthy { Ok(()) } else { Err("connection refused") } }
    });
    let server = serve(&handle).await;
    let addr = server.local_addr();
    wait_for_status(addr, "/readyz", 200).await;

    healthy.store(false, Ordering::SeqCst);
    for path in ["/livez", "/readyz", "/healthz", "/health", "/ready"] {
        let answer = get(addr, path).await;
        assert_eq!(answer.status, 503, "{path}");
        let body = answer.json();
        assert_eq!(body["status"], "not-live");
        assert_eq!(body["checks"][0]["ok"], false);
        assert_eq!(body["checks"][0]["error"], "connection refused");
        assert_eq!(body["reasons"], serde_json::json!(["check `database` failed: connection refused"]));
    }
    let report = handle.health().await;
    assert!(!report.live && !report.ready);

    healthy.store(true, Ordering::SeqCst);
    assert_eq!(get(addr, "/readyz").await.status, 200);
    assert!(handle.remove_health_check("database"));
    assert!(!handle.remove_health_check("database"));
    handle.shutdown().await;
}

#[tokio::test]
async fn slow_and_panicking_checks_fail_without_holding_anything_up() {
    let handle = Supervisor::builder()
        .task(waiting_task("ticker"))
        // Long enough for a panic to be reported on a loaded machine (a
        // backtrace may be captured), short beside the slow check's sleep.
        .health_check_timeout(Duration::from_secs(2))
        .health_check("slow", || async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, String>(())
        })
        .health_check("broken", || async {
            if true {
                panic!("check bug");
            }
            Ok::<_, String>(())
        })
        .build()
        .unwrap()
        .start();
    let began = Instant::now();
    let report = handle.health().await;
    assert!(began.elapsed() < Duration::from_secs(10), "the checks ran one after another or without a timeout");
    assert!(!report.live);
    assert_eq!(report.checks.len(), 2);
    assert!(report.checks[0].error.as_deref().unwrap().starts_with("timed out"), "{:?}", report.checks[0]);
    assert_eq!(report.checks[1].error.as_deref(), Some("the check panicked"));
    assert_eq!(report.reasons.len(), 2);
    handle.shutdown().await;
}

#[tokio::test]
async fn a_unit_that_gave_up_makes_it_not_ready_but_live() {
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("doomed", |_ctx| async { Err::<(), _>("bad config") })
                .restart(RestartPolicy::new().max_restarts(MaxRestarts::AtMost(0))),
        )
        .task(waiting_task("ticker"))
        .build()
        .unwrap()
        .start();
    wait_for_state(&handle, "doomed", UnitState::Failed).await;
    let report = handle.health().await;
    assert!(report.live);
    assert!(!report.ready);
    assert_eq!(report.status, "not-ready");
    assert!(report.reasons[0].contains("doomed"), "{:?}", report.reasons);
    handle.start_unit("doomed").await.unwrap();
    handle.shutdown().await;
}

#[tokio::test]
async fn it_starts_not_ready_and_stops_ready_at_shutdown() {
    // On this single-threaded runtime no unit loop has run yet when the
    // first report is taken: every unit is still `Starting`.
    let handle = Supervisor::builder()
        .daemon(supervisor::DaemonSpec::new("sleeper", "sleep").arg("300"))
        .task(waiting_task("ticker"))
        .build()
        .unwrap()
        .start();
    let first = handle.health().await;
    assert!(first.live);
    assert!(!first.ready, "{first:?}");
    assert_eq!(first.units[0].state, UnitState::Starting);
    assert_eq!(first.units[1].state, UnitState::Starting);
    assert_eq!(
        first.reasons,
        ["unit `sleeper` (starting): not running yet", "unit `ticker` (starting): not running yet"]
    );
    wait_for_state(&handle, "sleeper", UnitState::Running).await;
    assert!(handle.health().await.ready);

    let report = handle.shutdown().await;
    assert!(report.is_clean());
    let after = handle.health().await;
    assert!(!after.live && !after.ready);
    assert_eq!(after.reasons[0], "the supervisor has shut down");
}

#[tokio::test]
async fn clients_that_never_finish_their_headers_are_timed_out() {
    let handle = Supervisor::builder().task(waiting_task("ticker")).build().unwrap().start();
    let server = HttpEndpoint::new()
        .addr("127.0.0.1:0".parse().unwrap())
        .header_read_timeout(Duration::from_millis(500))
        .serve(&handle)
        .await
        .unwrap();
    let addr = server.local_addr();
    wait_for_status(addr, "/readyz", 200).await;

    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /livez HTTP/1.1\r\n").await.unwrap();
        slow.push(stream);
    }
    // The supervisor itself carries on meanwhile.
    handle.stop_unit("ticker").await.unwrap();
    handle.start_unit("ticker").await.unwrap();

    // The slow ones are dropped after the header timeout.
    for stream in &mut slow {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "a slow client was never timed out");
    }
    wait_for_status(addr, "/livez", 200).await;
    server.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
    handle.shutdown().await;
}

/// A check that blocks its thread (as a synchronous client library would)
/// for `duration`.
fn blocking_check(duration: Duration) -> impl Fn() -> std::future::Ready<Result<(), String>> + Send + Sync + 'static {
    move || {
        std::thread::sleep(duration);
        std::future::ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_blocks_its_thread_fails_at_its_timeout() {
    let handle = Supervisor::builder()
        .task(waiting_task("ticker"))
        .health_check_timeout(Duration::from_secs(1))
        .build()
        .unwrap()
        .start();
    let server = serve(&handle).await;
    let addr = server.local_addr();
    wait_for_status(addr, "/readyz", 200).await;

    // Blocking in the closure and blocking in the future it returns.
    handle.add_health_check("sync-client", blocking_check(Duration::from_secs(4)));
    handle.add_health_check("blocking-future", || async {
        std::thread::sleep(Duration::from_secs(4));
        Ok::<_, String>(())
    });
    let began = Instant::now();
    let answer = get(addr, "/readyz").await;
    let took = began.elapsed();
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(took < Duration::from_millis(2500), "the probe took {took:?} with a 1 s check timeout");
    let body = answer.json();
    for check in 0..2 {
        assert_eq!(body["checks"][check]["ok"], false, "{body}");
        assert!(body["checks"][check]["error"].as_str().unwrap().starts_with("timed out after 1s"), "{body}");
    }

    // While the overrunning runs still block their threads, a probe fails at
    // once rather than start more of them.
    let began = Instant::now();
    let report = handle.health().await;
    assert!(began.elapsed() < Duration::from_millis(500), "took {:?}", began.elapsed());
    assert!(!report.live && !report.ready);
    assert!(report.checks[0].error.as_deref().unwrap().contains("still running"), "{:?}", report.checks[0]);

    // The other probes are not held up either.
    let began = Instant::now();
    assert_eq!(get(addr, "/status").await.status, 200);
    assert!(began.elapsed() < Duration::from_millis(500), "took {:?}", began.elapsed());

    assert!(handle.remove_health_check("sync-client") && handle.remove_health_check("blocking-future"));
    assert_eq!(get(addr, "/readyz").await.status, 200);
    handle.shutdown().await;
}

#[tokio::test]
async fn a_check_that_blocks_its_thread_fails_at_its_timeout_on_a_current_thread_runtime() {
    let handle = Supervisor::builder()
        .task(waiting_task("ticker"))
        .health_check_timeout(Duration::from_millis(300))
        .health_check("sync-client", blocking_check(Duration::from_secs(3)))
        .build()
        .unwrap()
        .start();
    let began = Instant::now();
    let report = handle.health().await;
    let took = began.elapsed();
    assert!(took < Duration::from_millis(1500), "took {took:?} with a 300 ms check timeout");
    assert!(!report.live);
    assert!(report.checks[0].error.as_deref().unwrap().starts_with("timed out"), "{:?}", report.checks[0]);
    handle.shutdown().await;
}

#[tokio::test]
async fn a_bad_health_check_timeout_is_refused_by_name() {
    let error = Supervisor::builder().health_check_timeout(Duration::ZERO).build().unwrap_err();
    assert!(
        matches!(error, Error::InvalidSetting { setting: "health_check_timeout", .. }),
        "expected InvalidSetting, got {error:?}"
    );
    let error = Supervisor::builder().health_check_timeout(Duration::MAX).build().unwrap_err();
    assert!(matches!(error, Error::InvalidSetting { setting: "health_check_timeout", .. }), "{error:?}");
    assert!(error.to_string().contains("health_check_timeout"), "{error}");
    assert!(Supervisor::builder().health_check_timeout(Duration::from_secs(3600)).build().is_ok());
}

/// A unit that gave up in a group stopped since holds nothing back, yet
/// still fails liveness when asked to: the answer names it, as every
/// answer that is not live says why.
#[tokio::test]
async fn a_failed_unit_of_a_stopped_group_is_named_where_it_fails_liveness() {
    let handle = Supervisor::builder()
        .failed_units_fail_liveness(true)
        .group(
            GroupSpec::new("storage").task(waiting_task("cache")).task(
                TaskSpec::new("db", |_ctx: Context| async move { Err::<(), _>("boom") })
                    .restart(RestartPolicy::new().max_restarts(MaxRestarts::AtMost(0))),
            ),
        )
        .build()
        .unwrap()
        .start();
    let server = serve(&handle).await;
    let addr = server.local_addr();
    wait_for_state(&handle, "storage/db", UnitState::Failed).await;
    handle.stop_unit("storage").await.unwrap();
    assert_eq!(handle.status("storage/db").unwrap().state, UnitState::Failed);
    let answer = get(addr, "/livez").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    let body = answer.json();
    assert_eq!(body["status"], "not-live");
    let reasons = body["reasons"].as_array().unwrap();
    assert!(
        reasons.iter().any(|reason| reason.as_str().unwrap().contains("`storage/db` (failed)")
            && reason.as_str().unwrap().contains("fails liveness")),
        "{body}"
    );
    let report = handle.health().await;
    assert!(!report.live && !report.reasons.is_empty(), "{report:?}");
    handle.shutdown().await;
}

/// "A unit waiting to restart does not make it dead", with
/// `failed_units_fail_liveness` too: a unit that gave up in a group waiting
/// out its own restart delay is started afresh with the group's next run,
/// and leaves the supervisor live meanwhile (it was not live for as long as
/// the delay, and a kubelet restarted the container on each group restart).
/// Once its group is stopped instead, nothing starts it again: it fails
/// liveness.
#[tokio::test(start_paused = true)]
async fn a_failed_unit_whose_group_waits_to_restart_leaves_it_live() {
    let handle = Supervisor::builder()
        .failed_units_fail_liveness(true)
        .group(
            GroupSpec::new("storage")
                .restart(RestartPolicy::new().delay(Duration::from_secs(3600)))
                .task(waiting_task("cache"))
                .task(
                    TaskSpec::new("db", |_ctx: Context| async move { Err::<(), _>("boom") })
                        .critical()
                        .restart(RestartPolicy::new().max_restarts(MaxRestarts::AtMost(0))),
                ),
        )
        .task(waiting_task("api"))
        .build()
        .unwrap()
        .start();
    wait_for_state(&handle, "storage", UnitState::Backoff).await;
    assert_eq!(handle.status("storage/db").unwrap().state, UnitState::Failed);
    let report = handle.health().await;
    assert!(report.live && !report.ready, "{report:?}");
    assert!(report.reasons.iter().all(|reason| !reason.contains("fails liveness")), "{report:?}");
    handle.stop_unit("storage").await.unwrap();
    assert_eq!(handle.status("storage/db").unwrap().state, UnitState::Failed);
    let report = handle.health().await;
    assert!(!report.live, "{report:?}");
    assert!(report.reasons.iter().any(|reason| reason.contains("`storage/db` (failed)")), "{report:?}");
    handle.shutdown().await;
}

#[tokio::test]
async fn a_failed_unit_fails_liveness_when_asked_to() {
    let fail = Arc::new(AtomicBool::new(true));
    let failing = fail.clone();
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("doomed", move |ctx: Context| {
                let fail = failing.load(Ordering::SeqCst);
                async move {
                    if fail {
                        return Err("bad config");
                    }
                    ctx.cancelled().await;
                    Ok(())
                }
            })
            .restart(RestartPolicy::new().max_restarts(MaxRestarts::AtMost(0))),
        )
        .task(waiting_task("ticker"))
        .failed_units_fail_liveness(true)
        .build()
        .unwrap()
        .start();
    let server = serve(&handle).await;
    let addr = server.local_addr();
    wait_for_state(&handle, "doomed", UnitState::Failed).await;

    let answer = get(addr, "/livez").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    let body = answer.json();
    assert_eq!(body["status"], "not-live");
    assert_eq!(body["live"], false);
    let reasons = body["reasons"].as_array().unwrap();
    assert!(
        reasons.iter().any(|reason| reason.as_str().unwrap().contains("`doomed` (failed)")
            && reason.as_str().unwrap().contains("liveness")),
        "{body}"
    );
    assert_eq!(get(addr, "/readyz").await.status, 503);

    // Started again by hand, it no longer fails liveness.
    fail.store(false, Ordering::SeqCst);
    handle.start_unit("doomed").await.unwrap();
    wait_for_state(&handle, "doomed", UnitState::Running).await;
    assert_eq!(get(addr, "/livez").await.status, 200);
    assert_eq!(get(addr, "/readyz").await.status, 200);

    // A unit stopped on purpose or backing off never fails liveness.
    handle.stop_unit("doomed").await.unwrap();
    assert_eq!(get(addr, "/livez").await.status, 200);
    handle.shutdown().await;
}

/// A check that fails with a huge message (a whole response body, a dump)
/// is told in a bounded answer: the start of its message, and how much was
/// left out.
#[tokio::test]
async fn a_check_failing_with_a_huge_message_is_told_in_a_bounded_answer() {
    const HUGE: usize = 16 << 20;
    let handle = Supervisor::builder()
        .task(waiting_task("ticker"))
        .health_check("dump", || async { Err::<(), _>(format!("upstream said: {}", "x".repeat(HUGE))) })
        .build()
        .unwrap()
        .start();
    let server = serve(&handle).await;
    let addr = server.local_addr();

    let answer = get(addr, "/livez").await;
    assert_eq!(answer.status, 503);
    assert!(answer.body.len() < 256 * 1024, "an answer of {} bytes", answer.body.len());
    let body = answer.json();
    let error = body["checks"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("upstream said: xxx"), "{error:.100}");
    assert!(error.ends_with(" bytes left out)"), "{}", &error[error.len() - 100..]);
    let reason = body["reasons"][0].as_str().unwrap();
    assert!(reason.starts_with("check `dump` failed: upstream said: xxx") && reason.len() < 128 * 1024);
    handle.shutdown().await;
}
