//! The HTTP endpoint under the load real clients put on it: keep-alive and
//! pipelined requests, floods of slow and idle sockets, bad settings, and
//! the metrics it serves. Every request goes over a real TCP socket, through
//! hyper's own HTTP/1.1 client where a client that speaks the protocol is
//! needed, and through raw bytes where a misbehaving one is.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use supervisor::{Context, Error, HttpEndpoint, HttpServer, Supervisor, SupervisorHandle, TaskSpec, UnitState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(20);

fn waiting_task(name: &str) -> TaskSpec {
    TaskSpec::new(name, |ctx: Context| async move { ctx.cancelled().await })
}

fn endpoint() -> HttpEndpoint {
    HttpEndpoint::new().addr("127.0.0.1:0".parse().unwrap())
}

async fn serve(handle: &SupervisorHandle) -> HttpServer {
    endpoint().serve(handle).await.expect("bind")
}

/// An HTTP/1.1 connection through hyper's client.
async fn connect(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("HTTP/1.1 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender
}

/// One GET on an open connection: the status and the body.
async fn get_on(sender: &mut SendRequest<Empty<Bytes>>, path: &str) -> (StatusCode, String) {
    let request = Request::get(path).header("host", "test").body(Empty::new()).unwrap();
    let response = tokio::time::timeout(DEADLINE, sender.send_request(request))
        .await
        .expect("an answer in time")
        .unwrap_or_else(|error| panic!("GET {path}: {error}"));
    let status = response.status();
    let body = response.into_body().collect().await.expect("the body").to_bytes();
    (status, String::from_utf8(body.to_vec()).expect("UTF-8 body"))
}

/// One GET on a connection of its own.
async fn get(addr: SocketAddr, path: &str) -> (StatusCode, String) {
    get_on(&mut connect(addr).await, path).await
}

/// Waits until every unit is running, watching the events.
async fn wait_until_running(handle: &SupervisorHandle) {
    let mut events = handle.subscribe();
    let deadline = Instant::now() + DEADLINE;
    while !handle.statuses().iter().all(|unit| unit.state == UnitState::Running) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        assert!(!remaining.is_zero(), "units never all ran: {:?}", handle.statuses());
        let _ = tokio::time::timeout(remaining.min(Duration::from_millis(50)), events.recv()).await;
    }
}

#[tokio::test]
async fn keep_alive_serves_request_after_request_on_one_connection() {
    let handle = Supervisor::builder().task(waiting_task("ticker")).build().unwrap().start();
    let server = serve(&handle).await;
    wait_until_running(&handle).await;

    let mut connection = connect(server.local_addr()).await;
    for path in ["/livez", "/readyz", "/status", "/metrics", "/nope", "/healthz"] {
        let (status, body) = get_on(&mut connection, path).await;
        let expected = if path == "/nope" { StatusCode::NOT_FOUND } else { StatusCode::OK };
        assert_eq!(status, expected, "{path}: {body}");
    }
    handle.shutdown().await;
    tokio::time::timeout(DEADLINE, server.stopped()).await.expect("the endpoint stops after the shutdown");
}

#[tokio::test]
async fn pipelined_requests_are_each_answered_in_order() {
    let handle = Supervisor::builder().task(waiting_task("ticker")).build().unwrap().start();
    let server = serve(&handle).await;
    wait_until_running(&handle).await;

    // Ten requests in one write, the last asking to close the connection.
    let paths = ["/livez", "/readyz", "/status", "/metrics", "/nope"];
    let mut requests = String::new();
    for i in 0..10 {
        let close = if i == 9 { "Connection: close\r\n" } else { "" };
        requests.push_str(&format!("GET {} HTTP/1.1\r\nHost: test\r\n{close}\r\n", paths[i % paths.len()]));
    }
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream.write_all(requests.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut bytes)).await.expect("answers in time").unwrap();

    let mut statuses = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(head) = response.parse(rest).expect("a well-formed answer") else {
            panic!("a truncated answer after {} complete ones", statuses.len());
        };
        let length: usize = response
            .headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case("content-length"))
            .map(|header| std::str::from_utf8(header.value).unwrap().parse().unwrap())
            .expect("every answer has a length");
        statuses.push(response.code.unwrap());
        rest = &rest[head + length..];
    }
    let expected: Vec<u16> = (0..10).map(|i| if paths[i % paths.len()] == "/nope" { 404 } else { 200 }).collect();
    assert_eq!(statuses, expected);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_at_once_while_200_slow_clients_hold_sockets() {
    let handle = Supervisor::builder().task(waiting_task("ticker")).build().unwrap().start();
    // The defaults: 64 connections, 5 s to send the headers.
    let server = serve(&handle).await;
    let addr = server.local_addr();
    wait_until_running(&handle).await;

    // 200 clients that start a request and then trickle its headers, one
    // byte at a time.
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /livez HTTP/1.1\r\nHost: test\r\nX-Slow: ").await.unwrap();
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

    for round in 0..5 {
        let began = Instant::now();
        let (status, body) = get(addr, "/livez").await;
        let took = began.elapsed();
        assert_eq!(status, StatusCode::OK, "round {round}: {body}");
        assert!(took < Duration::from_secs(1), "round {round}: /livez took {took:?}");
    }
    trickle.abort();
    handle.shutdown().await;
}

#[tokio::test]
async fn the_oldest_idle_connection_makes_room_for_a_new_one() {
    let handle = Supervisor::builder().task(waiting_task("ticker")).build().unwrap().start();
    let server =
        endpoint().max_connections(2).header_read_timeout(Duration::from_secs(60)).serve(&handle).await.unwrap();
    let addr = server.local_addr();
    wait_until_running(&handle).await;

    // Two clients that connect and never finish a request take every slot.
    let mut idle = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /livez HTTP/1.1\r\n").await.unwrap();
        idle.push(stream);
    }
    // A probe is answered all the same...
    let (status, _) = get(addr, "/livez").await;
    assert_eq!(status, StatusCode::OK);
    // ...because the oldest idle client was closed (long before its 60 s
    // header timeout), without an answer.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(DEADLINE, idle[0].read_to_end(&mut rest)).await.expect("closed in time");
    assert!(read.is_err() || rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));

    // A kept-alive connection waiting for its next request is idle too: two
    // newer idle clients push it out.
    let mut kept = connect(addr).await;
    assert_eq!(get_on(&mut kept, "/livez").await.0, StatusCode::OK);
    for _ in 0..2 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /livez HTTP/1.1\r\n").await.unwrap();
        idle.push(stream);
    }
    let request = Request::get("/livez").header("host", "test").body(Empty::new()).unwrap();
    let answer = tokio::time::timeout(DEADLINE, kept.send_request(request)).await.expect("an outcome in time");
    assert!(answer.is_err(), "the kept-alive connection should have been closed to make room: {answer:?}");
    server.shutdown().await;
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_with_a_request_in_progress_is_never_closed_for_room() {
    let checks = Arc::new(AtomicU32::new(0));
    let counter = checks.clone();
    let handle = Supervisor::builder()
        .task(waiting_task("ticker"))
        .health_check("slow", move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                Ok::<_, String>(())
            }
        })
        .build()
        .unwrap()
        .start();
    let server = endpoint().max_connections(1).serve(&handle).await.unwrap();
    let addr = server.local_addr();

    let first = tokio::spawn(async move { get(addr, "/livez").await });
    // Once the first request is being answered (its check is running), a
    // second client finds no room: it is closed without an answer.
    let deadline = Instant::now() + DEADLINE;
    while checks.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the first request never ran its check");
        tokio::task::yield_now().await;
    }
    let mut second = TcpStream::connect(addr).await.unwrap();
    second.write_all(b"GET /livez HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(DEADLINE, second.read_to_end(&mut bytes)).await.expect("closed in time");
    assert!(read.is_err() || bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    // The first one gets its answer.
    let (status, body) = first.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    handle.shutdown().await;
}

#[tokio::test]
async fn every_bad_endpoint_setting_is_refused_by_name() {
    let handle = Supervisor::builder().task(waiting_task("ticker")).build().unwrap().start();
    let cases = [
        (endpoint().max_connections(0), "max_connections"),
        (endpoint().max_connections(usize::MAX), "max_connections"),
        (endpoint().max_request_size(0), "max_request_size"),
        (endpoint().max_request_size(1024), "max_request_size"),
        (endpoint().max_request_size(usize::MAX), "max_request_size"),
        (endpoint().header_read_timeout(Duration::ZERO), "header_read_timeout"),
        (endpoint().header_read_timeout(Duration::MAX), "header_read_timeout"),
        (endpoint().connection_timeout(Duration::ZERO), "connection_timeout"),
        (endpoint().connection_timeout(Duration::MAX), "connection_timeout"),
    ];
    for (endpoint, name) in cases {
        let shown = format!("{endpoint:?}");
        match endpoint.serve(&handle).await {
            Err(error) => {
                let message = error.to_string();
                let Error::InvalidSetting { setting, unit, .. } = error else {
                    panic!("{shown}: expected InvalidSetting, got {message}");
                };
                assert_eq!(setting, name, "{shown}");
                assert_eq!(unit, "http endpoint");
                assert!(message.contains(name), "{message}");
            }
            Ok(server) => panic!("{shown}: served on {}", server.local_addr()),
        }
    }

    // The largest values allowed work.
    let server = endpoint()
        .max_connections(65_536)
        .max_request_size(1024 * 1024)
        .header_read_timeout(Duration::from_secs(3600))
        .connection_timeout(Duration::from_secs(24 * 3600))
        .serve(&handle)
        .await
        .unwrap();
    wait_until_running(&handle).await;
    assert_eq!(get(server.local_addr(), "/livez").await.0, StatusCode::OK);
    handle.shutdown().await;
}
