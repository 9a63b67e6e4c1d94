//! The HTTP endpoint ([`HttpEndpoint`], feature `http`): liveness and
//! readiness probes, status and metrics, on `hyper`.

use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::service::health::{self, HealthReport};
use crate::service::metrics::PROMETHEUS_CONTENT_TYPE;
use crate::{Error, SupervisorHandle};

/// The address the endpoint binds by default: loopback, port 9000.
pub const DEFAULT_HTTP_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9000);

const PATHS: [&str; 7] = ["/livez", "/readyz", "/healthz", "/status", "/metrics", "/health", "/ready"];
const ALLOW: &str = "GET, HEAD";
/// How long in-flight requests get to finish when the server stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Settings of the HTTP endpoint; [`serve`](Self::serve) starts it.
///
/// | path | answer |
/// | --- | --- |
/// | `GET /livez` (alias `/health`), `GET /healthz` | the [`HealthReport`] as JSON; 200 when live, 503 when not |
/// | `GET /readyz` (alias `/ready`) | the [`HealthReport`] as JSON; 200 when ready, 503 when not |
/// | `GET /status` | a JSON array of every [`UnitStatus`](crate::UnitStatus) |
/// | `GET /metrics` | the Prometheus text of [`SupervisorHandle::metrics_text`] |
///
/// Any other path is 404; any method but `GET` and `HEAD` is 405 with an
/// `Allow` header. Every answer is `Cache-Control: no-store`.
///
/// # Security
///
/// It binds loopback by default; bind another address only behind
/// whatever guards that network. Nothing from a request reaches a shell, a
/// file path or a unit: the endpoint only reads. `/status` shows no
/// environment values (a [`UnitStatus`](crate::UnitStatus) has none). Each connection serves
/// one request and is closed; the number of connections at once, the size of
/// a request and the time to send its headers are capped, and a connection
/// lasts at most [`connection_timeout`](Self::connection_timeout), so slow
/// or hostile clients cost a bounded amount and never hold up the
/// supervisor, whose units run in their own tasks.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), supervisor::Error> {
/// use supervisor::{Context, HttpEndpoint, Supervisor, TaskSpec};
///
/// let handle = Supervisor::builder()
///     .task(TaskSpec::new("ticker", |ctx: Context| async move { ctx.cancelled().await }))
///     .build()?
///     .start();
/// let server = HttpEndpoint::new().addr("127.0.0.1:0".parse().unwrap()).max_connections(16).serve(&handle).await?;
/// println!("probes on http://{}/readyz", server.local_addr());
/// handle.shutdown().await; // the endpoint stops with the supervisor
/// server.stopped().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "call `.serve(&handle)` to start the endpoint"]
pub struct HttpEndpoint {
    addr: SocketAddr,
    max_connections: usize,
    max_request_size: usize,
    header_read_timeout: Duration,
    connection_timeout: Duration,
}

impl Default for HttpEndpoint {
    fn default() -> Self {
        HttpEndpoint {
            addr: DEFAULT_HTTP_ADDR,
            max_connections: 64,
            max_request_size: 16 * 1024,
            header_read_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(30),
        }
    }
}

impl HttpEndpoint {
    /// The defaults: [`DEFAULT_HTTP_ADDR`], 64 connections, 16 KiB requests,
    /// 5 s to send the headers, 30 s per connection.
    pub fn new() -> Self {
        HttpEndpoint::default()
    }

    /// The address to bind; port 0 picks a free port (see
    /// [`HttpServer::local_addr`]).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// How many connections are served at once (at least 1); more are
    /// closed as soon as they are accepted.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        self
    }

    /// The largest request accepted, headers and body (at least 8 KiB): the
    /// headers of a larger one are refused with 431, a larger declared body
    /// with 413.
    pub fn max_request_size(mut self, bytes: usize) -> Self {
        self.max_request_size = bytes.max(8192);
        self
    }

    /// How long a client has to send a request's headers.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// The longest a connection may last, however slowly the client reads.
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Binds the address and serves the endpoint for `handle`'s supervisor
    /// in a background task, until the supervisor has shut down (or every
    /// handle is dropped), or [`HttpServer::shutdown`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the address cannot be bound.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn serve(self, handle: &SupervisorHandle) -> Result<HttpServer, Error> {
        let listener = TcpListener::bind(self.addr).await.map_err(|source| Error::Io {
            context: format!("cannot bind the HTTP endpoint to {}", self.addr),
            source,
        })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| Error::Io { context: "cannot read the HTTP endpoint's address".to_owned(), source })?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(accept_loop(listener, handle.detached(), self, stop.clone()));
        tracing::info!(addr = %local_addr, "HTTP endpoint listening");
        Ok(HttpServer { local_addr, stop, task })
    }
}

impl SupervisorHandle {
    /// Serves the HTTP endpoint on `addr` with the default limits; see
    /// [`HttpEndpoint`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("ticker", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// let server = handle.serve_http("127.0.0.1:0".parse().unwrap()).await?;
    /// assert!(server.local_addr().ip().is_loopback());
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the address cannot be bound.
    pub async fn serve_http(&self, addr: SocketAddr) -> Result<HttpServer, Error> {
        HttpEndpoint::new().addr(addr).serve(self).await
    }
}

/// A running HTTP endpoint. Dropping it leaves the endpoint running until the
/// supervisor shuts down.
pub struct HttpServer {
    local_addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// The address actually bound (with the port picked for port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets requests in flight finish (briefly), and waits
    /// for the endpoint to end.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.stopped().await;
    }

    /// Waits for the endpoint to end: after the supervisor's shutdown, or
    /// [`shutdown`](Self::shutdown).
    pub async fn stopped(self) {
        if let Err(error) = self.task.await
            && error.is_panic()
        {
            tracing::error!(%error, "the HTTP endpoint panicked");
        }
    }
}

impl fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServer")
            .field("local_addr", &self.local_addr)
            .field("running", &!self.task.is_finished())
            .finish()
    }
}

async fn accept_loop(listener: TcpListener, handle: SupervisorHandle, settings: HttpEndpoint, stop: CancellationToken) {
    let limit = Arc::new(Semaphore::new(settings.max_connections));
    let settings = Arc::new(settings);
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            () = handle.ended() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, or a connection reset while in the
                // queue: wait a moment rather than spin.
                tracing::warn!(%error, "HTTP endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = settings.max_connections, "HTTP endpoint: too many connections; closing one");
            drop(stream);
            continue;
        };
        let (handle, settings, stop) = (handle.clone(), settings.clone(), stop.clone());
        tokio::spawn(async move {
            serve_connection(stream, handle, &settings, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    // Ends the connections too, when the supervisor ended first.
    stop.cancel();
    // Every connection holds a permit: having them all back means every
    // connection has ended.
    let all = u32::try_from(settings.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN_TIMEOUT, limit.acquire_many(all)).await.is_err() {
        tracing::warn!("HTTP endpoint: requests still in flight when it stopped");
    }
    tracing::info!("HTTP endpoint stopped");
}

async fn serve_connection(
    stream: TcpStream,
    handle: SupervisorHandle,
    settings: &HttpEndpoint,
    stop: CancellationToken,
) {
    let max_request_size = settings.max_request_size;
    let service = hyper::service::service_fn(move |request| {
        let handle = handle.clone();
        async move { Ok::<_, Infallible>(respond(&handle, &request, max_request_size).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .keep_alive(false)
        .max_buf_size(max_request_size)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "HTTP endpoint: connection ended with an error");
            }
        }
        () = tokio::time::sleep(settings.connection_timeout) => {
            tracing::debug!("HTTP endpoint: connection timed out");
        }
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, connection).await;
        }
    }
}

/// The answer to one request.
async fn respond(
    handle: &SupervisorHandle,
    request: &Request<Incoming>,
    max_request_size: usize,
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if !PATHS.contains(&path) {
        return json(StatusCode::NOT_FOUND, &NotFound { error: "not found", paths: &PATHS });
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = json(
            StatusCode::METHOD_NOT_ALLOWED,
            &Message { error: format!("method {} not allowed; use GET", request.method()) },
        );
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(ALLOW));
        return response;
    }
    let declared_size = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared_size.is_some_and(|size| size > max_request_size as u64) {
        return json(
            StatusCode::PAYLOAD_TOO_LARGE,
            &Message { error: format!("requests are limited to {max_request_size} bytes") },
        );
    }
    match path {
        "/livez" | "/health" | "/healthz" => {
            let report = health::report(handle).await;
            json(verdict(report.live), &report)
        }
        "/readyz" | "/ready" => {
            let report: HealthReport = health::report(handle).await;
            json(verdict(report.ready), &report)
        }
        "/status" => json(StatusCode::OK, &handle.statuses()),
        _ => {
            let mut response = Response::new(Full::new(Bytes::from(handle.metrics_text())));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS_CONTENT_TYPE));
            no_store(response)
        }
    }
}

fn verdict(ok: bool) -> StatusCode {
    if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

#[derive(Serialize)]
struct NotFound {
    error: &'static str,
    paths: &'static [&'static str],
}

#[derive(Serialize)]
struct Message {
    error: String,
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Full<Bytes>> {
    let (status, body) = match serde_json::to_vec(body) {
        Ok(mut body) => {
            body.push(b'\n');
            (status, body)
        }
        Err(error) => {
            tracing::error!(%error, "HTTP endpoint: cannot serialise an answer");
            (StatusCode::INTERNAL_SERVER_ERROR, b"{\"error\":\"internal error\"}\n".to_vec())
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    no_store(response)
}

fn no_store(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
