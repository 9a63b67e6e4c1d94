//! The Prometheus metrics: the text a user can serve anywhere
//! (`SupervisorHandle::metrics_text`), the same text on the HTTP endpoint's
//! `/metrics` (read over a real TCP socket), and the restart counter.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use supervisor::{
    Context, HttpEndpoint, MaxRestarts, PROMETHEUS_CONTENT_TYPE, RestartPolicy, Supervisor, TaskSpec, UnitState,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[path = "support/deadline.rs"]
mod deadline;
use deadline::wait_status;

const DEADLINE: Duration = Duration::from_secs(20);

/// A GET over a fresh connection: the whole answer, head and body.
async fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut bytes = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut bytes)).await.expect("answer in time").expect("read");
    let text = String::from_utf8(bytes).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header end");
    (head.to_owned(), body.to_owned())
}

#[tokio::test]
async fn restarts_total_is_a_counter_that_a_manual_restart_does_not_lower() {
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    let handle = Supervisor::builder()
        .task(
            // Fails its first two runs, then runs until stopped.
            TaskSpec::new("flaky", move |ctx: Context| {
                let run = counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    if run < 2 {
                        return Err("not yet");
                    }
                    ctx.cancelled().await;
                    Ok(())
                }
            })
            .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::Unlimited)),
        )
        .build()
        .unwrap()
        .start();
    let server = HttpEndpoint::new().addr("127.0.0.1:0".parse().unwrap()).serve(&handle).await.unwrap();
    let status =
        wait_status(DEADLINE, &handle, "flaky", |s| s.state == UnitState::Running && s.restart_count == 2).await;
    assert_eq!(status.restarts_total, 2);

    handle.restart("flaky").await.unwrap();
    let status = wait_status(DEADLINE, &handle, "flaky", |s| s.state == UnitState::Running).await;
    assert_eq!(status.restart_count, 0, "a manual restart resets the policy's count");
    assert_eq!(status.restarts_total, 2, "but never the total");

    let text = handle.metrics_text();
    for line in [
        "# TYPE supervisor_unit_restarts_total counter",
        "supervisor_unit_restarts_total{unit=\"flaky\",type=\"task\"} 2",
        "# TYPE supervisor_unit_uptime_seconds gauge",
        "supervisor_up 1",
        "supervisor_ready 1",
        "supervisor_unit_up{unit=\"flaky\",type=\"task\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
    }
    assert!(!text.contains("supervisor_unit_restarts{"), "the gauge that fell is gone:\n{text}");
    // Every family is announced once, before its samples, and every sample
    // is `name{labels} value` with a number for a value.
    let mut announced = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            assert!(!announced.contains(&name), "{name} announced twice");
            announced.push(name);
        } else if !line.starts_with('#') {
            let (name, value) = line.rsplit_once(' ').unwrap();
            let family = name.split('{').next().unwrap();
            assert!(announced.contains(&family), "{line:?} before its TYPE line");
            assert!(value.parse::<f64>().is_ok(), "bad sample {line:?}");
        }
    }

    // /metrics serves the same text (but for the uptimes, which move).
    let (head, served) = get(server.local_addr(), "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains(&format!("content-type: {PROMETHEUS_CONTENT_TYPE}")), "{head}");
    let stable = |text: &str| -> Vec<String> {
        text.lines().filter(|line| !line.starts_with("supervisor_unit_uptime_seconds{")).map(String::from).collect()
    };
    assert_eq!(stable(&served), stable(&handle.metrics_text()));
    handle.shutdown().await;
    assert!(handle.metrics_text().lines().any(|line| line == "supervisor_up 0"));
}
