//! One attempt of an HTTP probe: `GET url` over a connection of its own.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::Empty;
use hyper::Request;
use hyper::body::Bytes;
use hyper::header::{ACCEPT, CONNECTION, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::io_message;

/// `GET url` over a connection of its own; a status from 200 to 399 passes.
pub(super) async fn http(url: &str) -> Result<(), String> {
    let uri = crate::spec::probe::validate_http(url)?;
    let authority = uri.authority().ok_or("the URL has no host")?;
    let port = authority.port_u16().unwrap_or(80);
    let request = Request::get(request_target(&uri).as_ref())
        .header(HOST, authority.as_str())
        .header(USER_AGENT, concat!("tokio-supervisor-probe/", env!("CARGO_PKG_VERSION")))
        .header(ACCEPT, "*/*")
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|error| format!("cannot make the request: {error}"))?;
    let stream = TcpStream::connect(format!("{}:{port}", authority.host()))
        .await
        .map_err(|error| format!("cannot connect: {}", io_message(&error)))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(Capped::new(stream)))
        .await
        .map_err(|error| hyper_message(&error))?;
    // The connection is driven here rather than in a task of its own, so
    // that dropping the attempt (at its timeout) closes it.
    let mut response = std::pin::pin!(sender.send_request(request));
    let response = tokio::select! {
        biased;
        response = &mut response => response,
        ended = connection => match ended {
            // Closed as asked (`Connection: close`): the answer, if one came,
            // is waiting; if none did, the request fails.
            Ok(()) => response.await,
            Err(error) => return Err(hyper_message(&error)),
        },
    };
    let response = response.map_err(|error| hyper_message(&error))?;
    let status = response.status();
    if (200..400).contains(&status.as_u16()) { Ok(()) } else { Err(format!("status {status}")) }
}

/// What a request for `uri` asks for: its path and query, `/` when it has
/// no path (`http://host?ready=1` asks for `/?ready=1`, as curl does).
fn request_target(uri: &hyper::Uri) -> std::borrow::Cow<'_, str> {
    match uri.path_and_query().map(hyper::http::uri::PathAndQuery::as_str) {
        Some(target) if target.starts_with('/') => target.into(),
        Some(query) => format!("/{query}").into(),
        None => "/".into(),
    }
}

/// The most an HTTP probe reads from one connection. A head is a few
/// hundred bytes; a server that streams `100 Continue` without end would
/// otherwise keep the attempt reading (and its thread busy) past its
/// timeout, as the socket never makes it wait.
const MAX_ANSWER_BYTES: u64 = 1 << 20;

/// A probe's connection that fails once the server has sent more than
/// [`MAX_ANSWER_BYTES`].
struct Capped {
    stream: TcpStream,
    read: u64,
}

impl Capped {
    fn new(stream: TcpStream) -> Self {
        Capped { stream, read: 0 }
    }
}

impl AsyncRead for Capped {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.read > MAX_ANSWER_BYTES {
            return Poll::Ready(Err(io::Error::other(format!(
                "the server sent more than {} KiB without a final answer",
                MAX_ANSWER_BYTES / 1024
            ))));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        self.read += (buf.filled().len() - before) as u64;
        polled
    }
}

impl AsyncWrite for Capped {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A hyper error with its cause: "connection closed before message
/// completed", "error reading a body from connection: connection reset by
/// peer".
fn hyper_message(error: &hyper::Error) -> String {
    use std::error::Error as _;
    match error.source() {
        Some(source) => match source.downcast_ref::<io::Error>() {
            Some(io) => format!("{error}: {}", io_message(io)),
            None => format!("{error}: {source}"),
        },
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_asks_for_the_path_and_query_and_slash_without_a_path() {
        let target = |url: &str| request_target(&url.parse().unwrap()).into_owned();
        assert_eq!(target("http://h:1/ready?x=1"), "/ready?x=1");
        assert_eq!(target("http://h:1?ready=1"), "/?ready=1");
        assert_eq!(target("http://h:1"), "/");
    }
}
