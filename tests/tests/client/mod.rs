//! An HTTP/1.1 client for the tests of the routes and the control API:
//! hyper's own client over a real TCP or Unix socket, and raw bytes over
//! TCP for the clients that do not speak the protocol.
//!
//! Each test binary that includes it uses only part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use supervisor::{SupervisorHandle, UnitStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// Where a server listens.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// One answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.body))
    }
}

/// One request through hyper's client on a connection of its own, with
/// the headers given.
pub(crate) async fn send(target: &Target, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::builder().method(method).uri(path).header("host", "test");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Empty::<Bytes>::new()).expect("a valid request");
    let answer = async {
        let response = match target {
            Target::Tcp(addr) => {
                let stream = TcpStream::connect(addr).await.expect("connect");
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
                tokio::spawn(connection);
                sender.send_request(request).await
            }
            Target::Unix(path) => {
                let stream = UnixStream::connect(path).await.expect("connect to the Unix socket");
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
                tokio::spawn(connection);
                sender.send_request(request).await
            }
        };
        let response = response.unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or_default().to_owned()))
            .collect();
        let body = response.into_body().collect().await.expect("the body").to_bytes();
        Answer { status, headers, body: String::from_utf8(body.to_vec()).expect("UTF-8 body") }
    };
    tokio::time::timeout(DEADLINE, answer).await.unwrap_or_else(|_| panic!("{method} {path}: no answer in time"))
}

pub(crate) async fn get(target: &Target, path: &str) -> Answer {
    send(target, "GET", path, &[]).await
}

/// A request with `Authorization: Bearer <token>`.
pub(crate) async fn with_token(target: &Target, method: &str, path: &str, token: &str) -> Answer {
    let authorization = format!("Bearer {token}");
    send(target, method, path, &[("authorization", &authorization)]).await
}

/// Sends `bytes` as they are over TCP and reads until the server closes;
/// `None` when it closed without a word (or reset the connection).
pub(crate) async fn raw(addr: SocketAddr, bytes: &[u8]) -> Option<Answer> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may close before it has read everything (a refused huge
    // header): what it answered is still there to read.
    let _ = stream.write_all(bytes).await;
    let mut read = Vec::new();
    let outcome = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut read)).await.expect("closed in time");
    if outcome.is_err() && read.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&read).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.get(9..12)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Some(Answer { status, headers, body: body.to_owned() })
}

/// Waits until `name`'s status satisfies `done`.
pub(crate) async fn wait_status(
    handle: &SupervisorHandle,
    name: &str,
    done: impl Fn(&UnitStatus) -> bool,
) -> UnitStatus {
    match tokio::time::timeout(DEADLINE, handle.wait_status(name, done)).await {
        Ok(status) => status.expect("the unit exists and the supervisor runs"),
        Err(_) => panic!("timed out waiting on `{name}`; last status: {:#?}", handle.status(name)),
    }
}

/// Whether a process with this pid exists (a zombie counts).
pub(crate) fn process_exists(pid: u32) -> bool {
    let pid = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw).expect("a valid pid");
    rustix::process::test_kill_process(pid).is_ok()
}
