//! The routes in an application's own server: `supervisor::http::router`
//! and `Routes` mounted in a real axum app served by `axum::serve`, asked
//! over real TCP sockets, with the control API restarting a real process;
//! and the floods the stand-alone endpoint survives (slow clients, huge
//! headers, malformed requests), against the routes in axum and against
//! the endpoint with the control API on.

mod client;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get as axum_get;
use client::{DEADLINE, Target, get, process_exists, raw, send, wait_status, with_token};
use supervisor::http::{ControlApi, HttpEndpoint, Routes};
use supervisor::{Context, DaemonSpec, PROMETHEUS_CONTENT_TYPE, Supervisor, SupervisorHandle, TaskSpec, UnitState};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn waiting_task(name: &str) -> TaskSpec {
    TaskSpec::new(name, |ctx: Context| async move { ctx.cancelled().await })
}

fn sleeper(name: &str) -> DaemonSpec {
    DaemonSpec::new(name, "sleep").arg("300")
}

fn start() -> SupervisorHandle {
    Supervisor::builder().task(waiting_task("ticker")).daemon(sleeper("web")).build().unwrap().start()
}

/// Serves `app` with `axum::serve` on a free loopback port.
async fn serve(app: Router) -> (Target, SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("axum serves");
    });
    (Target::Tcp(addr), addr, server)
}

/// The application's own routes, with the supervisor's nested under
/// `prefix`.
fn app(prefix: &str, supervisor: Router) -> Router {
    Router::new()
        .route("/", axum_get(|| async { "the application" }))
        .route("/api/hello", axum_get(|| async { "hello" }))
        .nest(prefix, supervisor)
}

async fn wait_until_running(handle: &SupervisorHandle) {
    for name in handle.unit_names() {
        wait_status(handle, &name, |status| status.state == UnitState::Running && status.ready).await;
    }
}

#[tokio::test]
async fn the_router_nested_in_an_axum_app_answers_over_http() {
    let handle = start();
    let (target, _, server) = serve(app("/supervisor", supervisor::http::router(&handle))).await;
    wait_until_running(&handle).await;

    // The application's own routes are untouched.
    assert_eq!(get(&target, "/").await.body, "the application");
    assert_eq!(get(&target, "/api/hello").await.body, "hello");

    for path in ["/livez", "/readyz", "/healthz", "/health", "/ready"] {
        let answer = get(&target, &format!("/supervisor{path}")).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
        assert_eq!(answer.header("cache-control"), Some("no-store"));
        let body = answer.json();
        assert_eq!(body["live"], true, "{path}");
        assert_eq!(body["ready"], true, "{path}");
        assert_eq!(body["units"][1]["name"], "web", "{path}");
    }

    let status = get(&target, "/supervisor/status").await;
    assert_eq!(status.status, 200);
    let units = status.json();
    assert_eq!(units[0]["name"], "ticker");
    assert_eq!(units[1]["type"], "process");
    assert!(units[1]["pid"].as_u64().is_some());

    let metrics = get(&target, "/supervisor/metrics").await;
    assert_eq!(metrics.status, 200);
    assert_eq!(metrics.header("content-type"), Some(PROMETHEUS_CONTENT_TYPE));
    assert!(metrics.body.lines().any(|line| line == "supervisor_unit_up{unit=\"web\",type=\"process\"} 1"));

    // The same answers as the stand-alone endpoint: a readiness verdict
    // follows the units.
    handle.stop_unit("web").await.unwrap();
    handle.start_unit("web").await.unwrap();
    wait_until_running(&handle).await;
    assert_eq!(get(&target, "/supervisor/readyz").await.status, 200);

    let head = send(&target, "HEAD", "/supervisor/livez", &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let post = send(&target, "POST", "/supervisor/readyz", &[]).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    // Other paths under the prefix are the application's: its fallback.
    assert_eq!(get(&target, "/supervisor/nope").await.status, 404);
    assert_eq!(get(&target, "/livez").await.status, 404, "nothing is mounted outside the prefix");
    // No control API unless asked for.
    let control = with_token(&target, "POST", "/supervisor/units/web/restart", TOKEN).await;
    assert_eq!(control.status, 404);

    handle.shutdown().await;
    // A supervisor that has ended is not live.
    assert_eq!(get(&target, "/supervisor/livez").await.status, 503);
    server.abort();
}

#[tokio::test]
async fn the_routes_mount_under_any_prefix_as_a_router_or_a_tower_service() {
    let handle = start();
    let app = Router::new()
        .nest("/ops/deep/supervisor", supervisor::http::router(&handle))
        .nest_service("/svc", Routes::new(&handle));
    let (target, _, server) = serve(app).await;
    wait_until_running(&handle).await;

    for prefix in ["/ops/deep/supervisor", "/svc"] {
        for path in ["/livez", "/readyz", "/status", "/metrics"] {
            let answer = get(&target, &format!("{prefix}{path}")).await;
            assert_eq!(answer.status, 200, "{prefix}{path}: {answer:?}");
        }
    }
    // Mounted as a service, the routes answer every path under the prefix:
    // the endpoint's own JSON 404.
    let missing = get(&target, "/svc/nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "not found");
    handle.shutdown().await;
    server.abort();
}

#[tokio::test]
async fn the_control_api_in_an_axum_app_restarts_a_real_process() {
    let handle = start();
    let routes = Routes::new(&handle).control(ControlApi::new(TOKEN).unwrap()).into_router();
    let (target, _, server) = serve(app("/supervisor", routes)).await;
    wait_until_running(&handle).await;
    let old_pid = handle.status("web").unwrap().pid.unwrap();

    let refused = send(&target, "POST", "/supervisor/units/web/restart", &[]).await;
    assert_eq!(refused.status, 401);
    assert_eq!(handle.status("web").unwrap().pid, Some(old_pid));

    let restarted = with_token(&target, "POST", "/supervisor/units/web/restart", TOKEN).await;
    assert_eq!(restarted.status, 200, "{restarted:?}");
    let new_pid = handle.status("web").unwrap().pid.unwrap();
    assert_ne!(new_pid, old_pid);
    assert_eq!(restarted.json()["status"]["pid"], new_pid);
    assert!(!process_exists(old_pid));

    let unknown = with_token(&target, "POST", "/supervisor/units/nope/stop", TOKEN).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["units"], serde_json::json!(["ticker", "web"]));
    let bad = with_token(&target, "POST", "/supervisor/units/web/signal/NOPE", TOKEN).await;
    assert_eq!(bad.status, 400);
    let units = with_token(&target, "GET", "/supervisor/units", TOKEN).await;
    assert_eq!(units.status, 404, "`/units` names no unit: {units:?}");
    assert!(units.json()["units"].is_array());
    // The probes need no token.
    assert_eq!(get(&target, "/supervisor/livez").await.status, 200);
    handle.shutdown().await;
    server.abort();
}

/// A probe answers 200 within a second.
async fn probe_answers_at_once(target: &Target, path: &str) {
    let began = Instant::now();
    let answer = get(target, path).await;
    let took = began.elapsed();
    assert_eq!(answer.status, 200, "{path}: {answer:?}");
    assert!(took < Duration::from_secs(1), "{path} took {took:?}");
}

/// Slow clients, huge headers and malformed requests against routes served
/// at `addr` under `prefix`, the control API on: nothing is answered with a
/// 5xx or hangs, nothing reaches a unit, and the probes and the control API
/// answer at once afterwards.
async fn flood(handle: &SupervisorHandle, addr: SocketAddr, prefix: &str) {
    let target = Target::Tcp(addr);
    let livez = format!("{prefix}/livez");
    let pid = handle.status("web").unwrap().pid.unwrap();

    // 200 clients that start a request and trickle its headers, a byte at
    // a time, on the probes and on the control API.
    let mut slow = Vec::new();
    for i in 0..200 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let path = if i % 2 == 0 { livez.clone() } else { format!("{prefix}/units/web/restart") };
        let method = if i % 2 == 0 { "GET" } else { "POST" };
        stream.write_all(format!("{method} {path} HTTP/1.1\r\nHost: test\r\nX-Slow: ").as_bytes()).await.unwrap();
        slow.push(stream);
    }
    let trickle = tokio::spawn(async move {
        loop {
            for stream in &mut slow {
                let _ = stream.write_all(b"a").await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    for _ in 0..5 {
        probe_answers_at_once(&target, &livez).await;
    }

    // Huge headers: answered (or refused with 431), never a hang.
    for size in [16 * 1024, 64 * 1024, 2 * 1024 * 1024] {
        for path in [livez.clone(), format!("{prefix}/units/web/restart")] {
            let request = format!(
                "POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nX-Padding: {}\r\n\r\n",
                "a".repeat(size)
            );
            if let Some(answer) = raw(addr, request.as_bytes()).await {
                assert!(
                    [401, 405, 413, 431].contains(&answer.status),
                    "{size}-byte header on {path}: {}",
                    answer.status
                );
            }
        }
    }

    // Malformed requests: refused, never a 5xx, never a unit touched.
    let bearer = format!("Authorization: Bearer {TOKEN}\r\n");
    // Every request that parses asks to close, so that the answer ends.
    let close = "Connection: close\r\n";
    let malformed: Vec<Vec<u8>> = vec![
        b"GARBAGE\r\n\r\n".to_vec(),
        b"GET\r\n\r\n".to_vec(),
        format!("GET {livez} HTTP/9.9\r\nHost: test\r\n{close}\r\n").into_bytes(),
        format!("GET {livez} HTTP/1.1\r\n{close}Host test\r\n\r\n").into_bytes(),
        format!("GET {livez} HTTP/1.1\r\nHost: test\r\n{close}Content-Length: -1\r\n\r\n").into_bytes(),
        format!("POST {livez} HTTP/1.1\r\nHost: test\r\n{close}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab")
            .into_bytes(),
        format!(
            "POST {livez} HTTP/1.1\r\nHost: test\r\n{close}Transfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n\r\n"
        )
        .into_bytes(),
        [
            format!("GET {prefix}/units/").as_bytes(),
            b"\xff\xfe",
            b"/restart HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
        ]
        .concat(),
        [
            format!("POST {prefix}/units/web").as_bytes(),
            b"\x00",
            b"/restart HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
        ]
        .concat(),
        format!("POST {prefix}/units/web/restart HTTP/1.1\r\nHost: test\r\n{close}{bearer}X-Bad: \x01\x02\r\n\r\n")
            .into_bytes(),
        format!(
            "POST {prefix}/units/{}/restart HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
            "a".repeat(100_000)
        )
        .into_bytes(),
        [
            format!("POST {prefix}/units/web/restart HTTP/1.1\r\nHost: test\r\n{close}Authorization: Bearer ")
                .as_bytes(),
            b"\xc3\x28\r\n\r\n",
        ]
        .concat(),
    ];
    let mut answered = 0;
    for request in &malformed {
        if let Some(answer) = raw(addr, request).await {
            answered += 1;
            assert!(
                (400..500).contains(&answer.status) || answer.status == 505,
                "{:?} was answered {}: {}",
                String::from_utf8_lossy(&request[..request.len().min(80)]),
                answer.status,
                answer.body
            );
        }
    }
    eprintln!("{answered} of {} malformed requests answered with an error, the others closed", malformed.len());
    assert!(answered * 2 >= malformed.len(), "most malformed requests get an answer saying what is wrong");
    // Well-formed requests with odd paths, with the token: refused by the
    // control API itself.
    for (path, expected) in [
        ("/units/web/signal/%ff", 400),
        ("/units/%2e%2e/%2e%2e/restart", 404),
        ("/units/web/tail?lines=99999999999999999999999", 400),
        ("/units/..%2F..%2Fetc%2Fpasswd/tail", 404),
    ] {
        let request = format!("POST {prefix}{path} HTTP/1.1\r\nHost: test\r\n{bearer}{close}\r\n");
        let answer = raw(addr, request.as_bytes()).await.expect("an answer");
        let expected = if path.contains("tail") { [expected, 405] } else { [expected, expected] };
        assert!(expected.contains(&answer.status), "{path}: {} {}", answer.status, answer.body);
    }
    trickle.abort();

    for _ in 0..3 {
        probe_answers_at_once(&target, &livez).await;
    }
    assert_eq!(handle.status("web").unwrap().pid, Some(pid), "no flood reached the unit");
    let restarted = with_token(&target, "POST", &format!("{prefix}/units/web/restart"), TOKEN).await;
    assert_eq!(restarted.status, 200, "the control API still works: {restarted:?}");
    assert_ne!(handle.status("web").unwrap().pid, Some(pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routes_in_an_axum_app_survive_slow_clients_huge_headers_and_malformed_requests() {
    let handle = start();
    let routes = Routes::new(&handle).control(ControlApi::new(TOKEN).unwrap()).into_router();
    let (_, addr, server) = serve(app("/supervisor", routes)).await;
    wait_until_running(&handle).await;
    tokio::time::timeout(Duration::from_secs(120), flood(&handle, addr, "/supervisor")).await.expect("in time");
    handle.shutdown().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_with_the_control_api_survives_the_same_floods() {
    let handle = start();
    let server = HttpEndpoint::new()
        .addr("127.0.0.1:0".parse().unwrap())
        .control(ControlApi::new(TOKEN).unwrap())
        .serve(&handle)
        .await
        .unwrap();
    wait_until_running(&handle).await;
    tokio::time::timeout(Duration::from_secs(120), flood(&handle, server.local_addr(), "")).await.expect("in time");
    handle.shutdown().await;
    tokio::time::timeout(DEADLINE, server.stopped()).await.expect("the endpoint stops");
}
