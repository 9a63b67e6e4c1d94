//! Readiness and liveness probes (HTTP, TCP, exec), the notify socket's
//! readiness and watchdog, and a task's `ctx.ready()` and heartbeats, under
//! a hostile world: servers that never answer, trickle, flood heads,
//! bodies or `1xx` answers, send garbage or redirect in loops; ports whose
//! backlog is full; probe commands that fork, flood, ignore `SIGTERM` or
//! stop themselves; daemons that flood their notify socket, pass
//! descriptors along, name another process as their main one, or go
//! silent; tasks that say they are ready from many threads or hang.
//!
//! Every server is real (a loopback socket of the test), every process a
//! real `sh`, `sleep` or `python3`; every wait has a generous deadline, so
//! that a hang fails instead of blocking the suite.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use supervisor::{
    Context, DaemonSpec, Error, Event, EventKind, ExitReason, MaxRestarts, Probe, Readiness, RestartOn, RestartPolicy,
    StopOutcome, Supervisor, SupervisorHandle, TaskSpec, UnitState, UnitStatus,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "support/deadline.rs"]
mod deadline;
use deadline::{delay_near_the_clock_end, events_until, shutdown, wait_ready, wait_status};
#[path = "support/specs.rs"]
mod specs;
use specs::{idle, python, sh};

const SEC: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);
/// How long anything may take before a test fails: long enough for a
/// loaded machine, short enough that a hang fails.
const DEADLINE: Duration = Duration::from_secs(20);

/// A task whose readiness is `probe`.
fn probed(name: &str, probe: Probe) -> TaskSpec {
    idle(name).readiness(Readiness::Probe(probe))
}

/// Waits until `name` is not ready with a reason that contains `text`.
async fn not_ready_with(handle: &SupervisorHandle, name: &str, text: &str) -> UnitStatus {
    let status =
        wait_status(DEADLINE, handle, name, |status| status.not_ready.as_deref().is_some_and(|why| why.contains(text)))
            .await;
    assert!(!status.ready, "{status:?}");
    status
}

/// Waits until a line of `name`'s output contains `text`. Output is no
/// change of status, which a wait could wake on: this looks every 10 ms.
async fn output_has(handle: &SupervisorHandle, name: &str, text: &str) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !handle.tail(name, 1000).unwrap().iter().any(|line| line.contains(text)) {
        assert!(tokio::time::Instant::now() < deadline, "no `{text}` from `{name}`: {:?}", handle.tail(name, 20));
        tokio::time::sleep(10 * MS).await;
    }
}

/// Waits (up to the deadline) until `done` holds, looking every 10 ms.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(10 * MS).await;
    }
}

/// Whether the process `pid` still exists and runs `needle` (its command
/// line contains it): a pid reused by another process does not count, nor
/// does a zombie (its command line is empty).
fn runs(pid: u32, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(needle))
        .unwrap_or(false)
}

/// The pids of every live process whose command line contains `needle`.
fn processes_running(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok())
            && runs(pid, needle)
        {
            found.push(pid);
        }
    }
    found
}

/// A number no other test's process has on its command line: a `sleep`
/// argument (seconds) that marks the processes of one test.
fn marker(base: u32) -> String {
    format!("{}.{}", base + std::process::id() % 1000, std::process::id())
}

async fn nothing_left_running(needle: &str) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let left = processes_running(needle);
        if left.is_empty() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "processes outlived their run: {left:?}");
        tokio::time::sleep(10 * MS).await;
    }
}

// ---------------------------------------------------------------------------
// Hostile HTTP servers.
// ---------------------------------------------------------------------------

type Conn = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A server on loopback whose every connection is handled by a handler of
/// its own; it counts the connections accepted and those still open (not
/// yet closed by the probe, as the handler sees it). Stops when dropped.
struct Server {
    url: String,
    accepted: Arc<AtomicU32>,
    open: Arc<AtomicI32>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(handler: impl Fn(TcpStream) -> Conn + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    let (accepted, open) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicI32::new(0)));
    let (counted, opened) = (accepted.clone(), open.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            counted.fetch_add(1, Ordering::SeqCst);
            opened.fetch_add(1, Ordering::SeqCst);
            let connection = handler(stream);
            let closed = opened.clone();
            tokio::spawn(async move {
                connection.await;
                closed.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    Server { url, accepted, open, task }
}

/// Reads a request's head; `false` if the connection ended first.
async fn read_request(stream: &mut TcpStream) -> bool {
    let mut request = Vec::new();
    let mut buffer = [0; 1024];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return false,
            Ok(read) => request.extend_from_slice(&buffer[..read]),
        }
    }
    true
}

/// Reads until the peer closes the connection.
async fn drain(stream: &mut TcpStream) {
    let mut sink = [0; 1024];
    while matches!(stream.read(&mut sink).await, Ok(read) if read > 0) {}
}

/// Answers every request with `bytes`, then closes its side.
fn answer(bytes: &'static [u8]) -> impl Fn(TcpStream) -> Conn + Send + Sync + 'static {
    move |mut stream| {
        Box::pin(async move {
            if read_request(&mut stream).await {
                let _ = stream.write_all(bytes).await;
                let _ = stream.shutdown().await;
                drain(&mut stream).await;
            }
        })
    }
}

/// Answers with `head`, then writes `piece` until the probe closes the
/// connection (a write fails).
fn endless(head: &'static [u8], piece: &'static [u8]) -> impl Fn(TcpStream) -> Conn + Send + Sync + 'static {
    move |mut stream| {
        Box::pin(async move {
            if read_request(&mut stream).await && stream.write_all(head).await.is_ok() {
                while stream.write_all(piece).await.is_ok() {}
            }
        })
    }
}

/// Reads the request (or not), says nothing, and waits for the probe to
/// close the connection.
fn silent(mut stream: TcpStream) -> Conn {
    Box::pin(async move { drain(&mut stream).await })
}

/// Answers one byte every 100 ms.
fn trickle(mut stream: TcpStream) -> Conn {
    Box::pin(async move {
        if read_request(&mut stream).await {
            for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n" {
                if stream.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(100 * MS).await;
            }
        }
    })
}

/// A status line, then a header every 50 ms, for ever.
fn slow_headers(mut stream: TcpStream) -> Conn {
    Box::pin(async move {
        if read_request(&mut stream).await && stream.write_all(b"HTTP/1.1 200 OK\r\n").await.is_ok() {
            for index in 0u64.. {
                if stream.write_all(format!("x-header-{index}: value\r\n").as_bytes()).await.is_err() {
                    return;
                }
                tokio::time::sleep(50 * MS).await;
            }
        }
    })
}

/// `100 Continue`, then silence with the connection open.
fn continue_then_silence(mut stream: TcpStream) -> Conn {
    Box::pin(async move {
        if read_request(&mut stream).await && stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_ok() {
            drain(&mut stream).await;
        }
    })
}

/// Each kind of answer, and what the probe makes of it: `Ok` ready, `Err`
/// not ready with a reason containing the text. The documented rule: a
/// status from 200 to 399 passes, redirects are not followed, the body is
/// not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_answers_are_classified_as_documented() {
    let cases: [(&'static [u8], Result<(), &str>); 25] = [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", Ok(())),
        (b"HTTP/1.1 299 Odd\r\ncontent-length: 0\r\n\r\n", Ok(())),
        (b"HTTP/1.1 399 Odd\r\ncontent-length: 0\r\n\r\n", Ok(())),
        (b"HTTP/1.1 301 Moved\r\nlocation: /health\r\ncontent-length: 0\r\n\r\n", Ok(())),
        (b"HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/\r\ncontent-length: 0\r\n\r\n", Ok(())),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", Ok(())),
        (b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", Ok(())),
        (b"HTTP/1.0 200 OK\r\n\r\nno length: the body lasts until the close", Ok(())),
        (b"HTTP/1.1 200 OK\r\n\r\nno length either", Ok(())),
        (b"HTTP/1.1 200\r\ncontent-length: 0\r\n\r\n", Ok(())),
        // The body is not read: one cut short does not matter.
        (b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc", Ok(())),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", Ok(())),
        (b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n", Err("status 400 Bad Request")),
        (b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n", Err("status 404 Not Found")),
        (b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n", Err("status 503 Service Unavailable")),
        (b"HTTP/1.1 999 Odd\r\ncontent-length: 0\r\n\r\n", Err("status 999")),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", Err("status 101")),
        (b"HTTP/1.1 099 Odd\r\ncontent-length: 0\r\n\r\n", Err("invalid HTTP status-code")),
        (b"\x00\xff garbage garbage\r\n\r\n", Err("invalid HTTP version")),
        (b"<html>HTTP/0.9 has no status line</html>", Err("invalid HTTP version")),
        (b"HTTP/2.0 200 OK\r\n\r\n", Err("invalid HTTP version")),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab", Err("invalid content-length")),
        (b"HTTP/1.1 200 OK\r\nno colon in this header\r\n\r\n", Err("invalid HTTP header")),
        (b"HTTP/1.1 100 Continue\r\n\r\n", Err("connection closed before message completed")),
        (b"", Err("connection closed before message completed")),
    ];
    let mut servers = Vec::new();
    let mut builder = Supervisor::builder();
    for (index, (bytes, _)) in cases.iter().enumerate() {
        let server = serve(answer(bytes)).await;
        let probe = Probe::http(server.url.as_str()).timeout(2 * SEC).period(50 * MS);
        builder = builder.task(probed(&format!("p{index}"), probe));
        servers.push(server);
    }
    let handle = builder.build().unwrap().start();
    for (index, (bytes, expected)) in cases.iter().enumerate() {
        let name = format!("p{index}");
        let answer = String::from_utf8_lossy(bytes);
        match expected {
            Ok(()) => {
                let status = wait_ready(DEADLINE, &handle, &name).await;
                assert!(status.not_ready.is_none(), "{answer:?}: {status:?}");
            }
            Err(text) => {
                let status = not_ready_with(&handle, &name, text).await;
                let why = status.not_ready.unwrap();
                assert!(why.starts_with(&format!("{}: ", servers[index].url)), "{answer:?}: {why}");
            }
        }
    }
    shutdown(DEADLINE, &handle).await;
}

/// Redirects are not followed: a `302` to another server of ours is a
/// pass, and that server is never asked.
#[tokio::test]
async fn an_http_redirect_is_a_pass_and_is_not_followed() {
    let elsewhere = serve(answer(b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n")).await;
    let location = format!("HTTP/1.1 302 Found\r\nlocation: {}\r\ncontent-length: 0\r\n\r\n", elsewhere.url);
    let redirecting = serve(answer(Box::leak(location.into_bytes().into_boxed_slice()))).await;
    let handle =
        Supervisor::builder().task(probed("p", Probe::http(redirecting.url.as_str()))).build().unwrap().start();
    wait_ready(DEADLINE, &handle, "p").await;
    shutdown(DEADLINE, &handle).await;
    assert_eq!(redirecting.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(elsewhere.accepted.load(Ordering::SeqCst), 0, "the redirect was followed");
}

/// Servers that never finish an answer (silent, one byte every 100 ms, a
/// header every 50 ms for ever, `100 Continue` then silence): each attempt
/// fails at its timeout, and closes its connection, so connections do not
/// pile up on the server however many attempts are made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_answers_that_never_end_are_cut_at_the_timeout_and_their_connections_closed() {
    let servers =
        [serve(silent).await, serve(trickle).await, serve(slow_headers).await, serve(continue_then_silence).await];
    let mut builder = Supervisor::builder();
    for (index, server) in servers.iter().enumerate() {
        let probe = Probe::http(server.url.as_str()).timeout(300 * MS).period(50 * MS);
        builder = builder.task(probed(&format!("p{index}"), probe));
    }
    let began = std::time::Instant::now();
    let handle = builder.build().unwrap().start();
    for index in 0..servers.len() {
        not_ready_with(&handle, &format!("p{index}"), "timed out after 300ms").await;
    }
    let took = began.elapsed();
    assert!(took < 3 * SEC, "the first attempts, cut at 300 ms, took {took:?} to fail");
    for server in &servers {
        eventually("four attempts made, at most one connection open", || {
            server.accepted.load(Ordering::SeqCst) >= 4 && server.open.load(Ordering::SeqCst) <= 1
        })
        .await;
    }
    shutdown(DEADLINE, &handle).await;
    for server in &servers {
        eventually("the last connection closed after the shutdown", || server.open.load(Ordering::SeqCst) == 0).await;
    }
}

/// A head that never ends (headers for ever, or one endless header) fails
/// at once instead of growing memory; a body that never ends (a huge
/// length, or chunks for ever) is not read: the probe passes on the status
/// and closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_heads_fail_and_endless_bodies_are_left_unread() {
    let header: &'static [u8] = Box::leak(b"x-filler: ".repeat(100).into_boxed_slice());
    let chunk: &'static [u8] = Box::leak([&b"1000\r\n"[..], &[b'a'; 4096], b"\r\n"].concat().into_boxed_slice());
    let heads = [
        serve(endless(b"HTTP/1.1 200 OK\r\n", b"x-h: v\r\n")).await,
        serve(endless(b"HTTP/1.1 200 OK\r\nx-long: ", header)).await,
    ];
    let bodies = [
        serve(endless(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000000000\r\n\r\n", &[b'a'; 65536])).await,
        serve(endless(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", chunk)).await,
    ];
    let long = |server: &Server| Probe::http(server.url.as_str()).timeout(5 * SEC).period(Duration::from_secs(3600));
    let handle = Supervisor::builder()
        .task(probed("head0", long(&heads[0])))
        .task(probed("head1", long(&heads[1])))
        .task(probed("body0", long(&bodies[0])))
        .task(probed("body1", long(&bodies[1])))
        .build()
        .unwrap()
        .start();
    for name in ["head0", "head1"] {
        not_ready_with(&handle, name, "message head is too large").await;
    }
    for name in ["body0", "body1"] {
        wait_ready(DEADLINE, &handle, name).await;
    }
    // Until first ready, attempts come quickly: a head is asked for again.
    for server in &heads {
        eventually("the probe closed its connections", || server.open.load(Ordering::SeqCst) == 0).await;
    }
    for server in &bodies {
        eventually("the probe closed the connection", || {
            server.accepted.load(Ordering::SeqCst) == 1 && server.open.load(Ordering::SeqCst) == 0
        })
        .await;
    }
    shutdown(DEADLINE, &handle).await;
}

/// A server flooding `100 Continue` answers (never a final one), written
/// from a thread of its own as fast as the probe reads.
fn flood_of_continues() -> (String, Arc<AtomicBool>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::spawn(move || {
        while !stopped.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    std::thread::spawn(move || {
                        use std::io::Write;
                        stream.set_nonblocking(false).unwrap();
                        let continues = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(1000);
                        while stream.write_all(&continues).is_ok() {}
                    });
                }
                Err(_) => std::thread::sleep(5 * MS),
            }
        }
    });
    (url, stop)
}

/// A probe must respect its timeout, and an attempt must not hold the
/// runtime: the supervisor shares it with the application, its other
/// probes and watchdogs, and its health endpoint.
///
/// Against a server that floods `100 Continue` answers, hyper's client
/// parses and drops them in a loop that never waits on the socket, and
/// `tokio::time::timeout` polls the attempt again before it looks at its
/// deadline: an attempt with a 200 ms timeout once ended after about 5 s,
/// holding the runtime's thread for seconds. An attempt now reads at most
/// 1 MiB and fails there, well within its timeout.
#[tokio::test]
async fn a_flood_of_1xx_answers_is_cut_at_the_timeout_without_stalling_the_runtime() {
    let (url, stop) = flood_of_continues();
    let gap = Arc::new(Mutex::new(Duration::ZERO));
    let widest = gap.clone();
    let ticker = tokio::spawn(async move {
        let mut last = std::time::Instant::now();
        loop {
            tokio::time::sleep(MS).await;
            let now = std::time::Instant::now();
            let mut widest = widest.lock().unwrap();
            *widest = (*widest).max(now - last);
            last = now;
        }
    });
    let handle = Supervisor::builder()
        .task(probed("p", Probe::http(url.as_str()).timeout(200 * MS).period(Duration::from_secs(3600))))
        .build()
        .unwrap()
        .start();
    let began = std::time::Instant::now();
    let status = not_ready_with(&handle, "p", "sent more than 1024 KiB without a final answer").await;
    let took = began.elapsed();
    ticker.abort();
    shutdown(DEADLINE, &handle).await;
    stop.store(true, Ordering::SeqCst);
    let gap = *gap.lock().unwrap();
    assert!(
        took < 2 * SEC && gap < SEC,
        "an attempt with a 200 ms timeout took {took:?} to fail, and held the runtime for up to {gap:?}: {status:?}"
    );
}

/// `http://host:port?query` is a valid URL (an empty path with a query),
/// and `build()` takes it; its request must be `GET /?query`, as curl and
/// browsers send it.
///
/// Every attempt once failed with "cannot make the request: invalid
/// format", after connecting: the request target was the URL's path and
/// query as written, `?ready=1`, and the unit was never ready.
#[tokio::test]
async fn an_http_url_with_a_query_and_no_path_is_asked_for_slash_and_the_query() {
    let requests = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = requests.clone();
    let server = serve(move |mut stream| {
        let seen = seen.clone();
        Box::pin(async move {
            let mut head = Vec::new();
            let mut buffer = [0; 1024];
            while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => head.extend_from_slice(&buffer[..read]),
                }
            }
            let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_owned();
            seen.lock().unwrap().push(line);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        })
    })
    .await;
    let url = server.url.replace("/health", "?ready=1");
    let handle = Supervisor::builder()
        .task(probed("p", Probe::http(url.as_str()).timeout(SEC).period(50 * MS)))
        .build()
        .unwrap()
        .start();
    let status = wait_status(DEADLINE, &handle, "p", |status| status.ready || status.not_ready.is_some()).await;
    shutdown(DEADLINE, &handle).await;
    let requests = requests.lock().unwrap().clone();
    assert!(status.ready, "{url} never passed: {:?}; the server saw {requests:?}", status.not_ready);
    assert_eq!(requests.first().map(String::as_str), Some("GET /?ready=1 HTTP/1.1"));
}

/// A probe waiting for ever (timeouts and periods of `Duration::MAX`) on a
/// server that never answers: the unit is never ready, the shutdown ends
/// at once, and the attempt's connection is closed with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_http_attempt_ends_with_the_shutdown() {
    let server = serve(silent).await;
    let forever = Probe::http(server.url.as_str()).timeout(Duration::MAX).period(Duration::MAX);
    let handle = Supervisor::builder()
        .task(probed("p", forever))
        .task(idle("dependent").depends_on(["p"]))
        .build()
        .unwrap()
        .start();
    eventually("the attempt connected", || server.open.load(Ordering::SeqCst) == 1).await;
    let status = handle.status("p").unwrap();
    assert!(status.running && !status.ready, "{status:?}");
    assert_eq!(handle.status("dependent").unwrap().state, UnitState::Waiting);
    let began = std::time::Instant::now();
    shutdown(DEADLINE, &handle).await;
    assert!(began.elapsed() < 2 * SEC, "the shutdown waited for the attempt: {:?}", began.elapsed());
    eventually("the attempt's connection closed", || server.open.load(Ordering::SeqCst) == 0).await;
}

// ---------------------------------------------------------------------------
// TCP probes.
// ---------------------------------------------------------------------------

/// A port that accepts and never reads passes (the documented caveat: the
/// probe shows that the port is open); a port whose backlog is full (its
/// program never accepts) fails at the timeout instead of hanging; a name
/// passes once one of its addresses accepts; a name that does not resolve
/// fails with a reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_probes_against_deaf_full_and_named_ports() {
    let deaf = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let deaf_addr = deaf.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let holding = held.clone();
    let accepting = tokio::spawn(async move {
        while let Ok((stream, _)) = deaf.accept().await {
            holding.lock().unwrap().push(stream); // never read
        }
    });
    // A backlog of 0 holds one connection; the program never accepts it.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let full = socket.listen(0).unwrap();
    let full_addr = full.local_addr().unwrap();
    let mut filling = Vec::new();
    while let Ok(stream) = std::net::TcpStream::connect_timeout(&full_addr, 200 * MS) {
        filling.push(stream);
        assert!(filling.len() < 100, "the backlog never fills");
    }
    let quick = |addr: String| Probe::tcp(addr).timeout(300 * MS).period(50 * MS);
    let handle = Supervisor::builder()
        .task(probed("deaf", quick(deaf_addr.to_string())))
        .task(probed("full", quick(full_addr.to_string())))
        .task(probed("named", quick(format!("localhost:{}", deaf_addr.port()))))
        .task(probed("nowhere", quick("no-such-host.invalid:80".to_owned())))
        .build()
        .unwrap()
        .start();
    wait_ready(DEADLINE, &handle, "deaf").await;
    wait_ready(DEADLINE, &handle, "named").await;
    not_ready_with(&handle, "full", &format!("tcp {full_addr}: timed out after 300ms")).await;
    let nowhere = wait_status(DEADLINE, &handle, "nowhere", |status| status.not_ready.is_some()).await;
    assert!(nowhere.not_ready.unwrap().starts_with("tcp no-such-host.invalid:80: "));
    shutdown(DEADLINE, &handle).await;
    accepting.abort();
    drop((full, filling));
}

// ---------------------------------------------------------------------------
// Exec probes.
// ---------------------------------------------------------------------------

/// An exec probe that leaves a child in its group passes, and the child is
/// killed; one whose grandchild leaves the group (`setsid`) still passes at
/// once (its output is `/dev/null`: no pipe is held open), the grandchild
/// being out of reach as documented; one that floods its output passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_probes_that_fork_or_flood_pass_and_leave_their_group_behind_them() {
    let (in_group, left) = (marker(6000), marker(7000));
    // The grandchild says when it has left the group; the probe then exits.
    let dir = tempfile::tempdir().unwrap();
    let left_file = dir.path().join("left");
    let escape = format!(
        "setsid sh -c 'echo $$ > {file}; exec sleep {left}' </dev/null >/dev/null 2>&1 & \
         while [ ! -s {file} ]; do sleep 0.01; done; exit 0",
        file = left_file.display()
    );
    let handle = Supervisor::builder()
        .task(probed("forks", Probe::exec(["sh", "-c", &format!("sleep {in_group} & exit 0")]).period(SEC)))
        .task(probed("escapes", Probe::exec(["sh", "-c", &escape]).timeout(5 * SEC).period(Duration::from_secs(3600))))
        .task(probed(
            "floods",
            Probe::exec(["sh", "-c", "head -c 30000000 /dev/zero; head -c 1000000 /dev/zero >&2"])
                .timeout(10 * SEC)
                .period(Duration::from_secs(3600)),
        ))
        .build()
        .unwrap()
        .start();
    for name in ["forks", "escapes", "floods"] {
        wait_ready(DEADLINE, &handle, name).await;
    }
    nothing_left_running(&in_group).await;
    // The one that left its group is out of reach (documented): end it here.
    let escaped = processes_running(&left);
    assert_eq!(escaped.len(), 1, "{escaped:?}");
    for pid in escaped {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap(),
            rustix::process::Signal::KILL,
        );
    }
    nothing_left_running(&left).await;
    shutdown(DEADLINE, &handle).await;
}

/// Exec probes that ignore `SIGTERM`, or stop themselves with `SIGSTOP`,
/// are killed with their group at the timeout; a program that does not
/// exist, or is a directory, fails with a reason that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_probes_that_resist_or_cannot_run_fail_with_the_reason() {
    let (deaf, stopped) = (marker(8000), marker(9000));
    let dir = tempfile::tempdir().unwrap();
    let quick = |probe: Probe| probe.timeout(200 * MS).period(50 * MS);
    let handle = Supervisor::builder()
        .task(probed("deaf", quick(Probe::exec(["sh", "-c", &format!("trap '' TERM; sleep {deaf}")]))))
        .task(probed("stopped", quick(Probe::exec(["sh", "-c", &format!("sleep {stopped} & kill -STOP $$")]))))
        .task(probed("missing", quick(Probe::exec(["/nonexistent/health-check"]))))
        .task(probed("directory", quick(Probe::exec([dir.path()]))))
        .build()
        .unwrap()
        .start();
    not_ready_with(&handle, "deaf", "timed out after 200ms").await;
    not_ready_with(&handle, "stopped", "timed out after 200ms").await;
    let missing = not_ready_with(&handle, "missing", "cannot run it: no such file or directory").await;
    assert!(missing.not_ready.unwrap().ends_with("(is it installed and on PATH?)"));
    let directory = not_ready_with(&handle, "directory", "cannot run it: permission denied").await;
    assert!(directory.not_ready.unwrap().ends_with("(it is a directory, not a program)"));
    shutdown(DEADLINE, &handle).await;
    nothing_left_running(&deaf).await;
    nothing_left_running(&stopped).await;
}

/// The descriptors of the process `pid`: each number and what it points at.
fn descriptors(pid: u32) -> Vec<(u32, String)> {
    let mut fds: Vec<(u32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|entry| {
            let target = std::fs::read_link(entry.path()).map(|path| path.display().to_string()).unwrap_or_default();
            (entry.file_name().to_string_lossy().parse().unwrap(), target)
        })
        .collect();
    fds.sort();
    fds
}

/// The descriptors of `pid` once its program has started (the dynamic
/// loader opens and closes libraries at first): two looks 20 ms apart
/// that agree.
async fn settled_descriptors(pid: u32) -> Vec<(u32, String)> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let first = descriptors(pid);
        tokio::time::sleep(20 * MS).await;
        let second = descriptors(pid);
        if first == second && second.iter().all(|(_, target)| !target.is_empty()) {
            return second;
        }
        assert!(tokio::time::Instant::now() < deadline, "the descriptors of {pid} never settle");
    }
}

/// An exec probe's program gets `/dev/null` as stdin, stdout and stderr
/// and no other descriptor of the supervisor's (its sockets, its daemons'
/// notify sockets and output pipes): exactly what a program spawned with
/// `/dev/null` by the test itself gets (which also has what the test's
/// own parent left it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_probe_inherits_no_descriptor_of_the_supervisor() {
    let (mark, plain) = (marker(10000), marker(13000));
    let _listening = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let handle = Supervisor::builder()
        .daemon(sh("notified", "exec sleep 60").readiness(Readiness::Notified).watchdog(Duration::from_secs(60)))
        .task(probed("p", Probe::exec(["sleep", mark.as_str()]).timeout(Duration::from_secs(30))))
        .build()
        .unwrap()
        .start();
    wait_status(DEADLINE, &handle, "notified", |status| status.running).await;
    eventually("the probe runs", || processes_running(&mark).len() == 1).await;
    let probe = settled_descriptors(processes_running(&mark)[0]).await;
    let mut baseline = std::process::Command::new("sleep")
        .arg(&plain)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually("the plain program runs", || processes_running(&plain).len() == 1).await;
    let expected = settled_descriptors(baseline.id()).await;
    let _ = baseline.kill();
    let _ = baseline.wait();
    shutdown(DEADLINE, &handle).await;
    nothing_left_running(&mark).await;
    let null = "/dev/null".to_owned();
    assert_eq!(&probe[..3], [(0, null.clone()), (1, null.clone()), (2, null)]);
    assert_eq!(probe, expected, "the probe inherited descriptors of the supervisor");
}

/// A daemon whose liveness probe cannot run at all is unhealthy: stopped
/// and restarted, with the reason.
#[tokio::test]
async fn a_liveness_exec_probe_that_cannot_run_makes_the_daemon_unhealthy() {
    let sup = Supervisor::builder()
        .daemon(
            DaemonSpec::new("worker", "sleep")
                .arg("60")
                .liveness(Probe::exec(["/nonexistent/alive-check"]).period(50 * MS).failure_threshold(2))
                .restart(RestartPolicy::new().on(RestartOn::Never)),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let seen = events_until(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Exited { .. })).await;
    let Some(EventKind::Exited { reason: ExitReason::Unhealthy(why) }) = seen.last().map(|event| &event.kind) else {
        panic!("not unhealthy: {seen:?}")
    };
    assert!(why.starts_with("exec `/nonexistent/alive-check`: cannot run it: no such file"), "{why}");
    let worker = wait_status(DEADLINE, &handle, "worker", |status| status.state == UnitState::Exited).await;
    assert!(worker.last_error.unwrap().contains("cannot run it"));
    shutdown(DEADLINE, &handle).await;
}

/// A daemon stopped because its liveness probe failed keeps, beside that
/// reason, how its process ended: the exit code it answered the stop
/// with, or the signal that ended it. One that exits 7 on `SIGTERM`
/// (its probe fails only once the trap is set, so the answer is certain);
/// one that `SIGTERM` kills.
#[tokio::test]
async fn a_daemon_stopped_by_its_liveness_probe_keeps_its_exit_code_or_signal() {
    let dir = tempfile::tempdir().unwrap();
    let armed = dir.path().join("armed");
    let armed = armed.to_str().unwrap();
    let answers = DaemonSpec::new("answers", "sh")
        .args(["-c", r#"trap "exit 7" TERM; touch "$1"; while :; do sleep 0.1; done"#, "sh", armed])
        .liveness(Probe::exec(["test", "!", "-e", armed]).period(50 * MS).failure_threshold(1))
        .restart(RestartPolicy::new().on(RestartOn::Never));
    let killed = DaemonSpec::new("killed", "sleep")
        .arg("60")
        .liveness(Probe::exec(["false"]).period(50 * MS).failure_threshold(1))
        .restart(RestartPolicy::new().on(RestartOn::Never));
    let handle = Supervisor::builder().daemon(answers).daemon(killed).build().unwrap().start();
    for (name, exit_code, signal) in [("answers", Some(7), None), ("killed", None, Some(15))] {
        let status = wait_status(DEADLINE, &handle, name, |status| status.state == UnitState::Exited).await;
        assert_eq!((status.exit_code, status.signal), (exit_code, signal), "`{name}`: {status:?}");
        let error = status.last_error.unwrap_or_default();
        assert!(error.contains("liveness probe failed"), "`{name}` lost why it was stopped: {error}");
    }
    shutdown(DEADLINE, &handle).await;
}

/// A daemon being stopped for its failed liveness probe, that ignores its
/// stop signal, and is removed meanwhile: killed once its grace period is
/// over, it is reported as forced, as its signal says (the removal's report
/// and the event said it stopped gracefully).
#[tokio::test]
async fn a_probe_stop_that_a_removal_overtakes_reports_the_kill() {
    let deaf = sh("deaf", "trap '' TERM; while :; do sleep 0.05; done")
        .liveness(Probe::exec(["false"]).period(100 * MS).initial_delay(200 * MS).failure_threshold(1))
        .restart(RestartPolicy::new().on(RestartOn::Never))
        .stop_timeout(700 * MS);
    let sup = Supervisor::builder().daemon(deaf).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    events_until(
        DEADLINE,
        &mut events,
        |event| matches!(&event.kind, EventKind::NotReady { reason: Some(why) } if why.contains("being stopped")),
    )
    .await;
    let removed = tokio::time::timeout(DEADLINE, handle.remove("deaf")).await.expect("removed").unwrap();
    assert_eq!(removed.outcome, StopOutcome::Forced, "{removed:?}");
    let seen = events_until(DEADLINE, &mut events, |event| event.kind == EventKind::Removed).await;
    assert!(seen.iter().any(|event| matches!(event.kind, EventKind::Stopped { forced: true, .. })), "{seen:?}");
    shutdown(DEADLINE, &handle).await;
}

/// A daemon stopped because its watchdog fired keeps the signal that
/// ended it, beside the reason it was stopped.
#[tokio::test]
async fn a_daemon_stopped_by_its_watchdog_keeps_its_signal() {
    let sup = Supervisor::builder()
        .daemon(
            DaemonSpec::new("silent", "sleep")
                .arg("60")
                .watchdog(200 * MS)
                .restart(RestartPolicy::new().on(RestartOn::Never)),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let seen = events_until(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Exited { .. })).await;
    assert!(seen.iter().any(|event| event.kind == EventKind::Exited { reason: ExitReason::Hung }), "{seen:?}");
    let status = wait_status(DEADLINE, &handle, "silent", |status| status.state == UnitState::Exited).await;
    assert_eq!((status.exit_code, status.signal), (None, Some(15)), "{status:?}");
    assert!(status.last_error.unwrap_or_default().contains("hung"));
    shutdown(DEADLINE, &handle).await;
}

/// Zero timeouts and periods are typed build errors naming the setting,
/// all reported at once.
#[test]
fn zero_probe_timeouts_and_periods_are_typed_build_errors() {
    let err = Supervisor::builder()
        .task(probed("exec", Probe::exec(["true"]).timeout(Duration::ZERO)))
        .task(probed("http", Probe::http("http://127.0.0.1:1/").timeout(Duration::ZERO)))
        .task(idle("tcp").liveness(Probe::tcp("127.0.0.1:1").period(Duration::ZERO)))
        .task(idle("fine").liveness(Probe::tcp("127.0.0.1:1").initial_delay(Duration::ZERO).timeout(Duration::MAX)))
        .build()
        .unwrap_err();
    let mut settings: Vec<(String, &str)> = err
        .problems()
        .iter()
        .map(|problem| match problem {
            Error::InvalidSetting { unit, setting, reason } => {
                assert!(reason.contains("zero"), "{reason}");
                (unit.clone(), *setting)
            }
            other => panic!("not a typed setting error: {other:?}"),
        })
        .collect();
    settings.sort();
    assert_eq!(
        settings,
        [
            ("exec".to_owned(), "readiness probe timeout"),
            ("http".to_owned(), "readiness probe timeout"),
            ("tcp".to_owned(), "liveness probe period")
        ]
    );
}

// ---------------------------------------------------------------------------
// The notify socket.
// ---------------------------------------------------------------------------

/// Sends each argument as one datagram to `$NOTIFY_SOCKET`.
const SEND: &str = "import os, socket, sys\n\
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
    for a in sys.argv[1:]:\n\
    \x20   s.sendto(a.encode().replace(b'\\\\n', b'\\n'), os.environ['NOTIFY_SOCKET'])\n";

/// `READY=1` sent by a grandchild counts; `MAINPID=` naming another
/// process and `STOPPING=1` are ignored: the stop signals the run's own
/// group only, and the other process lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mainpid_of_another_process_and_stopping_are_ignored_and_a_grandchild_may_say_ready() {
    let mark = marker(11000);
    let mut other = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let script = format!(
        "( python3 -c \"$0\" 'MAINPID={other}' 'READY=1' 'STOPPING=1' 'MAINPID=1' 'STATUS=said'; echo said ) & exec sleep {mark}",
        other = other.id()
    );
    let handle = Supervisor::builder()
        .daemon(
            DaemonSpec::new("db", "sh")
                .args(["-c", &script, SEND])
                .readiness(Readiness::Notified)
                .stop_timeout(5 * SEC),
        )
        .build()
        .unwrap()
        .start();
    wait_ready(DEADLINE, &handle, "db").await;
    output_has(&handle, "db", "said").await;
    let db = wait_status(DEADLINE, &handle, "db", |status| status.status_text.as_deref() == Some("said")).await;
    assert!(db.running && db.ready, "{db:?}");
    tokio::time::timeout(DEADLINE, handle.stop_unit("db")).await.expect("the stop ends").unwrap();
    let db = handle.status("db").unwrap();
    assert_eq!(db.state, UnitState::Stopped, "{db:?}");
    let alive = other.try_wait().unwrap().is_none();
    let _ = other.kill();
    let _ = other.wait();
    shutdown(DEADLINE, &handle).await;
    nothing_left_running(&mark).await;
    assert!(alive, "the process named by MAINPID= was signalled");
}

/// Descriptors passed along with a datagram (`SCM_RIGHTS`) are closed, not
/// kept: the daemon passes the write end of a pipe and closes its own, and
/// sees the end of the pipe.
#[tokio::test]
async fn descriptors_sent_to_the_notify_socket_are_closed() {
    let program = "import os, select, socket, time\n\
                   s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
                   s.connect(os.environ['NOTIFY_SOCKET'])\n\
                   r, w = os.pipe()\n\
                   for _ in range(20):\n\
                   \x20   socket.send_fds(s, [b'STATUS=fds'], [w, w, w, w])\n\
                   socket.send_fds(s, [b'READY=1'], [w])\n\
                   os.close(w)\n\
                   seen, _, _ = select.select([r], [], [], 5)\n\
                   print('eof' if seen and os.read(r, 1) == b'' else 'kept', flush=True)\n\
                   while True:\n\
                   \x20   time.sleep(1)\n";
    let handle =
        Supervisor::builder().daemon(python("db", program).readiness(Readiness::Notified)).build().unwrap().start();
    wait_ready(DEADLINE, &handle, "db").await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let verdict = loop {
        let tail = handle.tail("db", 10).unwrap();
        if let Some(line) = tail.iter().find(|line| *line == "eof" || *line == "kept") {
            break line.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no verdict: {tail:?}");
        tokio::time::sleep(10 * MS).await;
    };
    shutdown(DEADLINE, &handle).await;
    assert_eq!(verdict, "eof", "the supervisor kept a descriptor sent with a notification");
}

/// The times of the `Started` and `Exited` events of `unit`.
/// Told by the events' own times, which the supervisor stamps as it acts:
/// the times they were received at lag behind on a loaded machine, the
/// `Started` more than the `Exited`, and a run measured that way looked
/// shorter than its watchdog's period.
fn run_span(events: &[Event], unit: &str) -> (Duration, ExitReason) {
    let started = events
        .iter()
        .find(|event| event.unit == unit && matches!(event.kind, EventKind::Started { .. }))
        .map(|event| event.time)
        .unwrap_or_else(|| panic!("`{unit}` never started"));
    let (ended, reason) = events
        .iter()
        .find_map(|event| match &event.kind {
            EventKind::Exited { reason } if event.unit == unit => Some((event.time, reason.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("`{unit}` never ended"));
    (ended.duration_since(started).expect("the end comes after the start"), reason)
}

/// The watchdog of a daemon: a flood of `WATCHDOG=1` keeps it alive and
/// silence afterwards makes it hung; a flood of garbage (oversized, NUL,
/// `WATCHDOG=0`, empty lines) is no sign of life and does not delay the
/// expiry; pings from a grandchild count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_floods_garbage_and_grandchildren() {
    let flood = "import os, socket, time\n\
                 s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
                 end = time.time() + 1.0\n\
                 while time.time() < end:\n\
                 \x20   s.sendto(b'WATCHDOG=1', os.environ['NOTIFY_SOCKET'])\n\
                 while True:\n\
                 \x20   time.sleep(1)\n";
    let garbage = "import os, socket\n\
                   s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
                   junk = [b'WATCHDOG=1\\n' + b'x' * 5000, b'WATCHDOG=1\\0', b'WATCHDOG=0', b'\\n\\n', b'watchdog=1', b'WATCHDOG=1 ']\n\
                   while True:\n\
                   \x20   for j in junk:\n\
                   \x20       s.sendto(j, os.environ['NOTIFY_SOCKET'])\n";
    let pinger = "import os, socket, time\n\
                  s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
                  end = time.time() + 1.0\n\
                  while time.time() < end:\n\
                  \x20   s.sendto(b'WATCHDOG=1', os.environ['NOTIFY_SOCKET'])\n\
                  \x20   time.sleep(0.05)\n";
    let mark = marker(12000);
    let never = || RestartPolicy::new().on(RestartOn::Never);
    // Long enough for python to start and send its first ping on a loaded
    // machine: a daemon slower than its period to start is hung, rightly.
    let period = SEC;
    let sup = Supervisor::builder()
        .daemon(python("flood", flood).watchdog(period).restart(never()))
        .daemon(python("garbage", garbage).watchdog(period).restart(never()))
        .daemon(
            DaemonSpec::new("grandchild", "sh")
                .args(["-c", &format!("python3 -c \"$0\" & exec sleep {mark}"), pinger])
                .watchdog(period)
                .restart(never()),
        )
        .build()
        .unwrap();
    let mut receiver = sup.subscribe();
    let handle = sup.start();
    let mut events = Vec::new();
    let mut exited = 0;
    while exited < 3 {
        let event = tokio::time::timeout(DEADLINE, receiver.recv()).await.expect("an event in time").unwrap();
        exited += usize::from(matches!(event.kind, EventKind::Exited { .. }));
        events.push(event);
    }
    shutdown(DEADLINE, &handle).await;
    nothing_left_running(&mark).await;
    for (unit, least, most) in [("flood", SEC, 10 * SEC), ("garbage", period, 10 * SEC), ("grandchild", SEC, 10 * SEC)]
    {
        let (lasted, reason) = run_span(&events, unit);
        assert_eq!(reason, ExitReason::Hung, "{unit}");
        assert!(lasted >= least && lasted <= most, "`{unit}` was found hung after {lasted:?}");
    }
}

/// `WATCHDOG=trigger` from a daemon that ignores `SIGTERM`: it is hung,
/// killed after its stop timeout, and restarted as the policy says; every
/// run's process is gone at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_trigger_from_a_daemon_that_ignores_sigterm_restarts_it() {
    let program = "import os, signal, socket, time\n\
                   signal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
                   s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
                   time.sleep(0.1)\n\
                   s.sendto(b'WATCHDOG=trigger', os.environ['NOTIFY_SOCKET'])\n\
                   while True:\n\
                   \x20   time.sleep(1)\n";
    let sup = Supervisor::builder()
        .daemon(
            python("stuck", program)
                .watchdog(Duration::from_secs(60))
                .stop_timeout(300 * MS)
                .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(1))),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let seen = events_until(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::GaveUp { .. })).await;
    let pids: Vec<u32> = seen
        .iter()
        .filter_map(|event| match event.kind {
            EventKind::Started { pid, .. } => pid,
            _ => None,
        })
        .collect();
    let hung = seen.iter().filter(|event| matches!(event.kind, EventKind::Exited { reason: ExitReason::Hung })).count();
    assert_eq!((pids.len(), hung), (2, 2), "{seen:?}");
    let stuck = wait_status(DEADLINE, &handle, "stuck", |status| status.state == UnitState::Failed).await;
    assert!(stuck.last_error.unwrap().contains("hung"));
    shutdown(DEADLINE, &handle).await;
    for pid in pids {
        assert!(!runs(pid, "python3"), "the run {pid} outlived its kill");
    }
}

/// `READY=1` floods, `RELOADING=1` and `READY=1` again: the unit is ready,
/// not ready while reloading (with the reason), ready again; never ready
/// twice in a row.
#[tokio::test]
async fn reloading_and_ready_floods_flip_readiness_consistently() {
    let program = "import os, socket, time\n\
                   s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
                   to = os.environ['NOTIFY_SOCKET']\n\
                   for _ in range(2000):\n\
                   \x20   s.sendto(b'READY=1', to)\n\
                   for _ in range(20):\n\
                   \x20   s.sendto(b'RELOADING=1', to)\n\
                   \x20   s.sendto(b'RELOADING=1\\nREADY=1\\nREADY=1', to)\n\
                   s.sendto(b'RELOADING=1', to)\n\
                   s.sendto(b'STATUS=reloading for good', to)\n\
                   while True:\n\
                   \x20   time.sleep(1)\n";
    let sup = Supervisor::builder()
        .event_capacity(1 << 16)
        .daemon(python("db", program).readiness(Readiness::Notified))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let db = wait_status(DEADLINE, &handle, "db", |status| status.status_text.as_deref() == Some("reloading for good"))
        .await;
    let db = if db.ready { wait_status(DEADLINE, &handle, "db", |status| !status.ready).await } else { db };
    assert_eq!(db.not_ready.as_deref(), Some("reloading (RELOADING=1)"), "{db:?}");
    shutdown(DEADLINE, &handle).await;
    let mut last = false;
    let mut flips = 0;
    while let Ok(event) = events.try_recv() {
        match event.kind {
            EventKind::Ready => {
                assert!(!last, "ready twice in a row");
                last = true;
                flips += 1;
            }
            EventKind::NotReady { reason } => {
                assert!(last, "not ready twice in a row");
                assert_eq!(reason.as_deref(), Some("reloading (RELOADING=1)"));
                last = false;
            }
            _ => {}
        }
    }
    assert!((1..=21).contains(&flips), "{flips} times ready");
}

// ---------------------------------------------------------------------------
// Tasks: ctx.ready() and heartbeats.
// ---------------------------------------------------------------------------

/// `ctx.ready()` and `ctx.heartbeat()` called thousands of times from many
/// threads at once: the unit becomes ready once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_from_many_threads_at_once_makes_a_task_ready_once() {
    let sup = Supervisor::builder()
        .task(
            TaskSpec::new("api", |ctx: Context| async move {
                let threads: Vec<_> = (0..8)
                    .map(|_| {
                        let ctx = ctx.clone();
                        std::thread::spawn(move || {
                            for _ in 0..2000 {
                                ctx.ready();
                                ctx.heartbeat();
                            }
                        })
                    })
                    .collect();
                tokio::task::spawn_blocking(move || threads.into_iter().for_each(|thread| thread.join().unwrap()))
                    .await
                    .unwrap();
                ctx.cancelled().await;
            })
            .readiness(Readiness::Notified)
            .watchdog(Duration::from_secs(60)),
        )
        .task(idle("dependent").depends_on(["api"]))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    wait_ready(DEADLINE, &handle, "dependent").await;
    shutdown(DEADLINE, &handle).await;
    let readies = std::iter::from_fn(|| events.try_recv().ok())
        .filter(|event| event.unit == "api" && matches!(event.kind, EventKind::Ready))
        .count();
    assert_eq!(readies, 1);
}

/// A task that stops beating and ignores its cancellation: it is hung, not
/// ready from then on (with the reason) during its grace period, aborted
/// at its stop timeout, and restarted; the next run, which beats, lives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_task_that_ignores_its_cancellation_is_aborted_and_restarted() {
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let beats = Arc::new(AtomicU64::new(0));
    let beaten = beats.clone();
    let sup = Supervisor::builder()
        .task(
            TaskSpec::new("poller", move |ctx: Context| {
                let run = counted.fetch_add(1, Ordering::SeqCst);
                let beaten = beaten.clone();
                async move {
                    if run == 0 {
                        ctx.ready();
                        std::future::pending::<()>().await; // no beat, deaf to cancellation
                    }
                    ctx.ready();
                    loop {
                        ctx.heartbeat();
                        beaten.fetch_add(1, Ordering::SeqCst);
                        tokio::select! {
                            () = ctx.cancelled() => return,
                            () = tokio::time::sleep(20 * MS) => {}
                        }
                    }
                }
            })
            .readiness(Readiness::Notified)
            .watchdog(300 * MS)
            .stop_timeout(SEC)
            .restart(RestartPolicy::new().delay(Duration::ZERO)),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    wait_ready(DEADLINE, &handle, "poller").await;
    let stopping = wait_status(DEADLINE, &handle, "poller", |status| !status.ready && status.restart_count == 0).await;
    assert!(stopping.not_ready.as_deref().is_some_and(|why| why.contains("being stopped")), "{stopping:?}");
    let seen = events_until(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Exited { .. })).await;
    assert!(matches!(seen.last().unwrap().kind, EventKind::Exited { reason: ExitReason::Hung }), "{seen:?}");
    let poller = wait_status(DEADLINE, &handle, "poller", |status| status.restart_count == 1 && status.ready).await;
    assert!(poller.last_error.unwrap().contains("hung"));
    eventually("the second run beats on", || beats.load(Ordering::SeqCst) >= 40).await;
    let poller = handle.status("poller").unwrap();
    assert_eq!((poller.restart_count, poller.state), (1, UnitState::Running), "a beating run was found hung");
    shutdown(DEADLINE, &handle).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

/// `wait_ready` on a task that ends before it says it is ready, and will
/// not restart, answers at once that it will not happen.
#[tokio::test]
async fn wait_ready_on_a_task_that_fails_before_it_is_ready_says_it_will_not_happen() {
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("api", |_ctx: Context| async move { Err::<(), _>("the port is taken") })
                .readiness(Readiness::Notified)
                .restart(RestartPolicy::new().on(RestartOn::Never)),
        )
        .build()
        .unwrap()
        .start();
    let answer = tokio::time::timeout(DEADLINE, handle.wait_ready("api")).await.expect("wait_ready answers");
    assert!(matches!(answer, Err(Error::WillNotHappen { .. })), "{answer:?}");
    shutdown(DEADLINE, &handle).await;
}

// ---------------------------------------------------------------------------
// A daemon that floods its output with short lines

/// Two-byte lines, written faster than they are read.
const FLOOD: &str = "yes & yes & yes &";
const NOTIFY_READY: &str = "python3 -c \"import os, socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); \
    s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\"";
/// How long past the moment it is due a sign may take to count, on a
/// loaded machine: the flood held them back for as long as it lasted.
const SLACK: Duration = Duration::from_secs(8);

async fn ready_notified_beside_a_flood() {
    let script = format!("{FLOOD} sleep 0.5; {NOTIFY_READY}; wait");
    let spec = sh("chatty", &script).tail_lines(20).readiness(Readiness::Notified);
    let handle = Supervisor::builder().daemon(spec).build().unwrap().start();
    let began = std::time::Instant::now();
    let ready = tokio::time::timeout(SLACK, handle.wait_ready("chatty")).await;
    let took = began.elapsed();
    shutdown(DEADLINE, &handle).await;
    assert!(ready.is_ok(), "READY=1, sent 0.5 s in, not heard within {took:?}");
}

/// Its `READY=1` is heard while the daemon floods its output: reading the
/// output spent the task's whole budget at each poll, and the notify
/// socket, polled after it, was heard seconds late, or never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_notified_beside_an_output_flood_is_heard() {
    ready_notified_beside_a_flood().await;
}

#[tokio::test(flavor = "current_thread")]
async fn ready_notified_beside_an_output_flood_is_heard_on_one_thread() {
    ready_notified_beside_a_flood().await;
}

/// The watchdog of a daemon that floods its output and never beats finds
/// it hung in time (it fired 14 s late, or not within 20 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_daemon_that_never_beats_is_found_hung_in_time() {
    let spec = sh("chatty", &format!("{FLOOD} wait")).tail_lines(20).watchdog(SEC);
    let sup = Supervisor::builder().daemon(spec).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let began = std::time::Instant::now();
    let seen = events_until(DEADLINE + DEADLINE, &mut events, |event| {
        event.unit == "chatty" && matches!(event.kind, EventKind::Exited { .. } | EventKind::Stopped { .. })
    })
    .await;
    let took = began.elapsed();
    shutdown(DEADLINE, &handle).await;
    let ended = seen.last().expect("the run ended");
    assert!(matches!(&ended.kind, EventKind::Exited { reason: ExitReason::Hung }), "{ended:?}");
    assert!(took < SEC + SLACK, "a watchdog of 1 s judged the run hung after {took:?}");
}

/// A readiness probe runs beside a daemon that floods its output: it
/// passes at its first attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readiness_probe_runs_beside_an_output_flood() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let probe = Probe::tcp(listener.local_addr().unwrap().to_string()).period(200 * MS);
    let spec = sh("chatty", &format!("{FLOOD} wait")).tail_lines(20).readiness(Readiness::Probe(probe));
    let handle = Supervisor::builder().daemon(spec).build().unwrap().start();
    let began = std::time::Instant::now();
    let ready = tokio::time::timeout(SLACK, handle.wait_ready("chatty")).await;
    let (took, status) = (began.elapsed(), handle.status("chatty"));
    shutdown(DEADLINE, &handle).await;
    drop(listener);
    assert!(ready.is_ok(), "the probe passes at its first attempt, yet not ready after {took:?}: {status:?}");
}

/// `STATUS=` with nothing clears the status text, as the notification's
/// doc and systemd say: it was kept as an empty text.
#[tokio::test]
async fn an_empty_status_clears_the_status_text() {
    let program = "import os, socket, sys, time\n\
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
        to = os.environ['NOTIFY_SOCKET']\n\
        s.sendto(b'READY=1\\nSTATUS=warming up', to)\n\
        while not os.path.exists(sys.argv[1]):\n\
        \x20   time.sleep(0.01)\n\
        s.sendto(b'STATUS=', to)\n\
        time.sleep(60)\n";
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("cleared");
    let spec = python("db", program).arg(flag.to_str().unwrap()).readiness(Readiness::Notified);
    let handle = Supervisor::builder().daemon(spec).build().unwrap().start();
    wait_status(DEADLINE, &handle, "db", |status| status.status_text.as_deref() == Some("warming up")).await;
    std::fs::write(&flag, b"").unwrap();
    let db = wait_status(DEADLINE, &handle, "db", |status| status.status_text.as_deref() != Some("warming up")).await;
    shutdown(DEADLINE, &handle).await;
    assert_eq!(db.status_text, None, "an empty STATUS= left {:?}", db.status_text);
}

/// A task asked to stop, and slow to stop, is judged by neither its
/// liveness probe nor its readiness probe any more: they are not called
/// during the stop, as a process's are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_being_stopped_is_probed_no_more() {
    let stopping = Arc::new(AtomicBool::new(false));
    let probed_while_stopping = Arc::new(AtomicU32::new(0));
    let check = |failing: bool| {
        let (stopping, probed) = (stopping.clone(), probed_while_stopping.clone());
        Probe::check(move || {
            let now_stopping = stopping.load(Ordering::SeqCst);
            if now_stopping {
                probed.fetch_add(1, Ordering::SeqCst);
            }
            async move { if now_stopping && failing { Err("cannot answer while stopping") } else { Ok(()) } }
        })
        .period(20 * MS)
        .failure_threshold(1)
    };
    let flag = stopping.clone();
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("w", move |ctx: Context| {
                let flag = flag.clone();
                async move {
                    ctx.cancelled().await;
                    flag.store(true, Ordering::SeqCst);
                    tokio::time::sleep(500 * MS).await;
                }
            })
            .liveness(check(true))
            .readiness(Readiness::Probe(check(false)))
            .stop_timeout(5 * SEC),
        )
        .build()
        .unwrap()
        .start();
    wait_ready(DEADLINE, &handle, "w").await;
    handle.stop_unit("w").await.unwrap();
    assert!(stopping.load(Ordering::SeqCst));
    assert_eq!(probed_while_stopping.load(Ordering::SeqCst), 0, "probed while it stopped");
    let status = handle.status("w").unwrap();
    assert_eq!((status.state, status.last_error), (UnitState::Stopped, None));
    shutdown(DEADLINE, &handle).await;
}

/// What a check's future holds that panics when it is dropped.
struct PanicsWhenDropped;

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        panic!("the check's future panicked when dropped");
    }
}

/// A check that never answers, whose future panics when it is dropped (at
/// its timeout of 100 ms, or with its run); it counts its attempts.
fn hangs_and_panics_when_dropped(attempts: &Arc<AtomicU32>) -> Probe {
    let attempts = attempts.clone();
    Probe::check(move || {
        attempts.fetch_add(1, Ordering::SeqCst);
        async {
            let _held = PanicsWhenDropped;
            std::future::pending::<Result<(), String>>().await
        }
    })
    .timeout(100 * MS)
}

/// A check whose future panics when it is dropped, at its timeout or with
/// a run stopped mid-attempt, fails that attempt and nothing more, as a
/// check that panics while it runs does: the panic unwound through the
/// task watching the run, and a task's run ended as "dropped before it
/// ended, with its runtime", its unit at rest for good; a daemon's run
/// ended as a panic of the supervisor's own task, and was restarted.
#[tokio::test]
async fn a_check_whose_future_panics_when_dropped_fails_only_its_attempt() {
    let (api_attempts, db_attempts) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let db = sh("db", "exec sleep 1000").readiness(Readiness::Probe(hangs_and_panics_when_dropped(&db_attempts)));
    let sup = Supervisor::builder()
        .task(probed("api", hangs_and_panics_when_dropped(&api_attempts)))
        .daemon(db)
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let pid = wait_status(DEADLINE, &handle, "db", |status| status.pid.is_some()).await.pid;
    eventually("three attempts of each check", || {
        api_attempts.load(Ordering::SeqCst) >= 3 && db_attempts.load(Ordering::SeqCst) >= 3
    })
    .await;
    for name in ["api", "db"] {
        let status = not_ready_with(&handle, name, "check: timed out after 100ms").await;
        assert_eq!((status.state, status.restart_count, status.last_error), (UnitState::Running, 0, None), "{name}");
    }
    assert_eq!(handle.status("db").unwrap().pid, pid, "the daemon's run went on");
    // Stopped while an attempt is in flight (each waits its whole timeout,
    // and the next follows at once).
    for name in ["api", "db"] {
        handle.stop_unit(name).await.unwrap();
        let status = handle.status(name).unwrap();
        assert_eq!((status.state, status.last_error), (UnitState::Stopped, None), "{name}");
    }
    let report = shutdown(DEADLINE, &handle).await;
    assert_eq!(report.exit_code(), 0, "{report}");
    let mut ended = Vec::new();
    while let Ok(event) = events.try_recv() {
        if matches!(event.kind, EventKind::Exited { .. }) {
            ended.push(event);
        }
    }
    assert!(ended.is_empty(), "runs ended by themselves: {ended:?}");
}

/// A probe's timeout within a millisecond of the clock's end waits for
/// ever, as one past it does: tokio's timeout panicked there, in the task
/// watching the run, which ended as "dropped before it ended, with its
/// runtime", its unit at rest for good.
#[tokio::test(start_paused = true)]
async fn a_probe_timeout_within_a_millisecond_of_the_clock_end_waits_for_ever() {
    let far = delay_near_the_clock_end(Duration::from_micros(500));
    let never = Probe::check(std::future::pending::<Result<(), String>>).timeout(far);
    let slow_exec = Probe::exec(["sleep", "1000"]).timeout(far);
    let ticker = TaskSpec::new("ticker", |_ctx: Context| async {
        tokio::time::sleep(SEC).await;
        Err::<(), _>("boom")
    })
    .restart(RestartPolicy::new().delay(SEC).max_restarts(MaxRestarts::AtMost(5)));
    let handle = Supervisor::builder()
        .task(probed("check", never))
        .task(probed("exec", slow_exec))
        .task(ticker)
        .build()
        .unwrap()
        .start();
    wait_status(DEADLINE, &handle, "ticker", |status| status.state == UnitState::Failed).await;
    for name in ["check", "exec"] {
        let status = handle.status(name).unwrap();
        assert_eq!((status.state, status.last_error), (UnitState::Running, None), "{name}");
    }
    let report = shutdown(DEADLINE, &handle).await;
    for name in ["check", "exec"] {
        let unit = report.units.iter().find(|unit| unit.name == name).unwrap();
        assert_eq!(unit.outcome, StopOutcome::Graceful, "{report}");
    }
}

/// A probe's initial delay too long for the clock to hold waits for ever,
/// with `tokio::time::pause()` too, as a period or a timeout that long
/// does: tokio's sleep cut it to some 30 years, to which a paused clock
/// jumped, and the probes then ran: the readiness probe made its unit
/// ready, and the failing liveness probe restarted its unit's run.
#[tokio::test(start_paused = true)]
async fn an_initial_delay_past_the_clock_end_waits_for_ever_with_a_paused_clock() {
    const THOUSAND_YEARS: Duration = Duration::from_secs(1000 * 365 * 86_400);
    let passes = Probe::check(|| async { Ok::<_, String>(()) }).initial_delay(Duration::MAX);
    let fails = |delay| Probe::check(|| async { Err::<(), _>("down") }).initial_delay(delay).failure_threshold(1);
    let far = delay_near_the_clock_end(Duration::from_micros(500));
    let handle = Supervisor::builder()
        .task(probed("ready", passes))
        .task(idle("live").liveness(fails(Duration::MAX)))
        .task(idle("near-the-end").liveness(fails(far)))
        .build()
        .unwrap()
        .start();
    for name in ["ready", "live", "near-the-end"] {
        wait_status(DEADLINE, &handle, name, |status| status.running).await;
    }
    let probed = async {
        tokio::select! {
            _ = handle.wait_ready("ready") => "`ready` became ready",
            _ = handle.wait_status("live", |status| status.restarts_total > 0) => "`live` was restarted",
            _ = handle.wait_status("near-the-end", |status| status.restarts_total > 0) => "`near-the-end` was restarted",
        }
    };
    if let Ok(what) = tokio::time::timeout(THOUSAND_YEARS, probed).await {
        panic!("a probe ran before its initial delay was over: {what}");
    }
    let report = shutdown(DEADLINE, &handle).await;
    assert!(report.units.iter().all(|unit| unit.outcome == StopOutcome::Graceful), "{report}");
}

/// A watchdog period too long for the clock to hold never judges a run
/// hung, with `tokio::time::pause()` too, as a restart delay that long
/// never ends: its deadline was put some 30 years on, to which a paused
/// clock jumped, and a task or a daemon that gave no sign of life was then
/// stopped as hung and restarted.
#[tokio::test(start_paused = true)]
async fn a_watchdog_past_the_clock_end_never_fires_with_a_paused_clock() {
    const THOUSAND_YEARS: Duration = Duration::from_secs(1000 * 365 * 86_400);
    let far = delay_near_the_clock_end(Duration::from_micros(500));
    let handle = Supervisor::builder()
        .task(idle("task").watchdog(Duration::MAX))
        .task(idle("near-the-end").watchdog(far))
        .daemon(DaemonSpec::new("daemon", "sleep").arg("1000").watchdog(Duration::MAX))
        .build()
        .unwrap()
        .start();
    for name in ["task", "near-the-end", "daemon"] {
        wait_status(DEADLINE, &handle, name, |status| status.running).await;
    }
    let restarted = |name| handle.wait_status(name, |status| status.restarts_total > 0);
    let judged = async {
        tokio::select! {
            _ = restarted("task") => "`task`",
            _ = restarted("near-the-end") => "`near-the-end`",
            _ = restarted("daemon") => "`daemon`",
        }
    };
    if let Ok(which) = tokio::time::timeout(THOUSAND_YEARS, judged).await {
        panic!("{which} was judged hung: {:?}", handle.status(which.trim_matches('`')));
    }
    // The daemon's stop is a real process's: on the real clock, which a
    // paused one would jump past while the process exits.
    tokio::time::resume();
    let report = shutdown(DEADLINE, &handle).await;
    assert!(report.units.iter().all(|unit| unit.outcome == StopOutcome::Graceful), "{report}");
}

/// A task that ends by itself in the moment its liveness probe fails (its
/// server gone with it) ended as it did, as a process whose leader has
/// exited is judged no more: which of the two the run's task looked at
/// first was left to chance, and one in two such runs that had returned
/// `Ok` was reported stopped for its failed probe, a failure its policy
/// then acted on. Twenty tasks, each a toss.
#[tokio::test(start_paused = true)]
async fn a_task_that_ends_as_its_liveness_probe_fails_ends_as_it_did() {
    let start = tokio::time::Instant::now();
    let gone_at = start + SEC;
    let mut builder = Supervisor::builder();
    for index in 0..20 {
        let probe = Probe::check(move || async move {
            if tokio::time::Instant::now() >= gone_at { Err("the server is gone") } else { Ok(()) }
        })
        .period(100 * MS)
        .failure_threshold(1);
        let task = TaskSpec::new(format!("t{index}"), |_ctx: Context| async {
            tokio::time::sleep(SEC).await;
            Ok::<_, String>(())
        });
        builder = builder.task(task.liveness(probe).restart(RestartPolicy::new().on(RestartOn::Never)));
    }
    let handle = builder.build().unwrap().start();
    for index in 0..20 {
        let status =
            wait_status(DEADLINE, &handle, &format!("t{index}"), |status| status.state == UnitState::Exited).await;
        assert_eq!((status.state, status.exit_code, status.last_error), (UnitState::Exited, Some(0), None), "t{index}");
    }
    shutdown(DEADLINE, &handle).await;
}
