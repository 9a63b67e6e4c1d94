//! The stand-alone HTTP endpoint ([`HttpEndpoint`], feature `http`):
//! liveness and readiness probes, status and metrics, and the control API
//! when enabled, on `hyper`, over TCP or a Unix socket. The answers are
//! those of [`routes::answer`], which the tower
//! `Service` of an application's own server calls too.
//!
//! Connections are HTTP/1.1 with keep-alive and pipelining, served by
//! hyper. A table of connections ([`Connections`]) caps how many are open:
//! when it is full, the connection that has been idle the longest (waiting
//! for a request's headers, however slowly they trickle in) is closed to make
//! room, so slow or idle clients can never lock a probe out.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::control::ControlApi;
use super::routes::{self, Body, Message, json};
use super::unix::{self, PlacedSocket};
use crate::{Error, SupervisorHandle};

/// The address the endpoint binds by default: loopback, port 9000.
pub const DEFAULT_HTTP_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9000);

/// How long in-flight requests get to finish when the server stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// The name the endpoint goes by in [`Error::InvalidSetting`].
const ENDPOINT: &str = "http endpoint";

const MAX_CONNECTIONS: std::ops::RangeInclusive<usize> = 1..=65_536;
const MAX_REQUEST_SIZE: std::ops::RangeInclusive<usize> = 8 * 1024..=1024 * 1024;
const HEADER_READ_TIMEOUT: std::ops::RangeInclusive<Duration> = Duration::from_millis(1)..=Duration::from_secs(3600);
const CONNECTION_TIMEOUT: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(24 * 3600);

/// Settings of the HTTP endpoint; [`serve`](Self::serve) starts it.
///
/// | path | answer |
/// | --- | --- |
/// | `GET /livez` (alias `/health`), `GET /healthz` | the [`HealthReport`](crate::HealthReport) as JSON; 200 when live, 503 when not |
/// | `GET /readyz` (alias `/ready`) | the [`HealthReport`](crate::HealthReport) as JSON; 200 when ready, 503 when not |
/// | `GET /status` | a JSON array of every [`UnitStatus`](crate::UnitStatus) |
/// | `GET /metrics` | the Prometheus text of [`SupervisorHandle::metrics_text`] |
/// | `/units/...` | the control API, when [`control`](Self::control) enables it (see [`ControlApi`]) |
///
/// Any other path is 404; any method but `GET` and `HEAD` is 405 with an
/// `Allow` header. Every answer is `Cache-Control: no-store`. Connections are
/// HTTP/1.1 with keep-alive and pipelining (a client that sends
/// `Connection: close`, as the kubelet does, gets its connection closed after
/// the answer).
///
/// The same answers are available to an application's own web server as a
/// tower `Service` ([`Routes`](super::Routes)) or an axum `Router`
/// ([`router`](super::router), feature `axum`).
///
/// | setting | default | allowed |
/// | --- | --- | --- |
/// | [`addr`](Self::addr) | [`DEFAULT_HTTP_ADDR`], `127.0.0.1:9000` | any |
/// | [`unix_socket`](Self::unix_socket) | none: TCP on `addr` | a path where a socket may be created |
/// | [`control`](Self::control) | off | a [`ControlApi`] |
/// | [`max_connections`](Self::max_connections) | 64 | 1 to 65,536 |
/// | [`max_request_size`](Self::max_request_size) | 16 KiB | 8 KiB to 1 MiB |
/// | [`header_read_timeout`](Self::header_read_timeout) | 5 s | 1 ms to 1 h |
/// | [`connection_timeout`](Self::connection_timeout) | 30 s | 1 ms to 24 h |
///
/// A setting out of range is refused by [`serve`](Self::serve) with
/// [`Error::InvalidSetting`] naming it.
///
/// # Security
///
/// It binds loopback by default; bind another address only behind
/// whatever guards that network. Nothing from a request reaches a shell or
/// a file path, and without [`control`](Self::control) nothing reaches a
/// unit: the endpoint only reads. `/status` shows no
/// environment values (a [`UnitStatus`](crate::UnitStatus) has none).
///
/// Slow or hostile clients cost a bounded amount and never lock the probes
/// out: at most [`max_connections`](Self::max_connections) are open at once,
/// and when that many are, a new connection closes the one that has waited
/// the longest for a request (an idle kept-alive connection, or one whose
/// headers trickle in) to make room; a connection is refused only when every
/// one has a request in progress. A request's headers must arrive within
/// [`header_read_timeout`](Self::header_read_timeout) (the next request's
/// too, on a kept-alive connection), and a connection lasts at most
/// [`connection_timeout`](Self::connection_timeout). The supervisor itself
/// is never held up: its units run in their own tasks.
///
/// # Caveats
///
/// A flood of more than [`max_connections`](Self::max_connections) new
/// connections within the time a probe takes to send its request (a
/// round trip) can still push the probe out; the kubelet then retries.
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
    unix_socket: Option<PathBuf>,
    control: Option<ControlApi>,
    max_connections: usize,
    max_request_size: usize,
    header_read_timeout: Duration,
    connection_timeout: Duration,
}

impl Default for HttpEndpoint {
    fn default() -> Self {
        HttpEndpoint {
            addr: DEFAULT_HTTP_ADDR,
            unix_socket: None,
            control: None,
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
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::{DEFAULT_HTTP_ADDR, HttpEndpoint};
    ///
    /// let endpoint = HttpEndpoint::new();
    /// assert!(format!("{endpoint:?}").contains(&DEFAULT_HTTP_ADDR.to_string()));
    /// ```
    pub fn new() -> Self {
        HttpEndpoint::default()
    }

    /// The address to bind; port 0 picks a free port (see
    /// [`HttpServer::local_addr`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::HttpEndpoint;
    ///
    /// // Reachable from outside the host (a pod's kubelet, say).
    /// let endpoint = HttpEndpoint::new().addr("0.0.0.0:9000".parse().unwrap());
    /// # let _ = endpoint;
    /// ```
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Listens on a Unix socket at `path` instead of TCP: for the control
    /// API, or for probes run on the same host. The socket is created with
    /// mode `0600`, so that only the supervisor's user (and root) can
    /// connect; it is never reachable with a wider mode, even for an
    /// instant (it is bound in a private directory and moved into place).
    /// A socket left at `path` by a process that ended is replaced; a live
    /// one, or a file that is not a socket, makes [`serve`](Self::serve)
    /// fail, and so does a socket that another endpoint, started at the
    /// same moment, placed there first, or a stale one that this user may
    /// not remove (another user's, in a sticky directory such as `/tmp`). The socket is removed when the
    /// endpoint stops, or as the supervisor's shutdown ends, before its
    /// report is handed out (like the PID file), whichever comes first: a
    /// `main` that exits with the report's code at once leaves no file.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::os::unix::fs::PermissionsExt;
    /// use supervisor::{HttpEndpoint, Supervisor};
    ///
    /// let handle = Supervisor::builder().build()?.start();
    /// let path = std::env::temp_dir().join(format!("supervisor-doc-{}.sock", std::process::id()));
    /// let server = HttpEndpoint::new().unix_socket(&path).serve(&handle).await?;
    /// assert_eq!(server.unix_socket(), Some(path.as_path()));
    /// assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
    /// server.shutdown().await;
    /// assert!(!path.exists());
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Caveats
    ///
    /// A socket's path is limited to about 100 bytes (108 on Linux,
    /// 104 on macOS), and the socket is first bound at a path about 30 bytes
    /// longer, inside the private directory: keep socket paths short
    /// (`/run/app/control.sock`).
    pub fn unix_socket(mut self, path: impl AsRef<Path>) -> Self {
        self.unix_socket = Some(path.as_ref().to_owned());
        self
    }

    /// Enables the control API under `/units/...` (restart, stop, start,
    /// signal and tail a unit) for callers that send its bearer token; see
    /// [`ControlApi`]. Off unless called.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::HttpEndpoint;
    /// use supervisor::http::ControlApi;
    ///
    /// let token = "0123456789abcdef0123456789abcdef"; // from a secret store, in practice
    /// let endpoint = HttpEndpoint::new().unix_socket("/run/app/control.sock").control(ControlApi::new(token)?);
    /// # let _ = endpoint;
    /// # Ok(())
    /// # }
    /// ```
    pub fn control(mut self, api: ControlApi) -> Self {
        self.control = Some(api);
        self
    }

    /// How many connections may be open at once (1 to 65,536; default 64).
    /// When that many are open, a new connection closes the one that has
    /// waited the longest for a request; it is refused only when every one
    /// has a request in progress.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::HttpEndpoint;
    ///
    /// let endpoint = HttpEndpoint::new().max_connections(16);
    /// # let _ = endpoint;
    /// ```
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// The largest request accepted, headers and body (8 KiB to 1 MiB;
    /// default 16 KiB): the headers of a larger one are refused with 431, a
    /// larger declared body with 413.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::HttpEndpoint;
    ///
    /// let endpoint = HttpEndpoint::new().max_request_size(64 * 1024);
    /// # let _ = endpoint;
    /// ```
    pub fn max_request_size(mut self, bytes: usize) -> Self {
        self.max_request_size = bytes;
        self
    }

    /// How long a client has to send a request's headers, counted from
    /// when the connection opens or the previous answer was sent (1 ms to
    /// 1 h; default 5 s). It also closes a kept-alive connection left idle
    /// that long.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::HttpEndpoint;
    ///
    /// let endpoint = HttpEndpoint::new().header_read_timeout(Duration::from_secs(2));
    /// # let _ = endpoint;
    /// ```
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// The longest a connection may last, however slowly the client reads
    /// (1 ms to 24 h; default 30 s). Then it is closed once its request in
    /// progress, if any, has been answered, however long that takes (a
    /// restart waits for its unit's stop); an answer the client does not
    /// read is given up 2 s after it is ready.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::HttpEndpoint;
    ///
    /// let endpoint = HttpEndpoint::new().connection_timeout(Duration::from_secs(60));
    /// # let _ = endpoint;
    /// ```
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Checks every setting against its range.
    fn validate(&self) -> Result<(), Error> {
        let invalid = |setting: &'static str, reason: String| Error::InvalidSetting {
            unit: ENDPOINT.to_owned(),
            setting,
            reason,
        };
        if !MAX_CONNECTIONS.contains(&self.max_connections) {
            return Err(invalid(
                "max_connections",
                format!(
                    "{} connections; allow between {} and {}",
                    self.max_connections,
                    MAX_CONNECTIONS.start(),
                    MAX_CONNECTIONS.end()
                ),
            ));
        }
        if !MAX_REQUEST_SIZE.contains(&self.max_request_size) {
            return Err(invalid(
                "max_request_size",
                format!(
                    "{} bytes; allow between {} (8 KiB) and {} (1 MiB)",
                    self.max_request_size,
                    MAX_REQUEST_SIZE.start(),
                    MAX_REQUEST_SIZE.end()
                ),
            ));
        }
        for (setting, value, range) in [
            ("header_read_timeout", self.header_read_timeout, HEADER_READ_TIMEOUT),
            ("connection_timeout", self.connection_timeout, CONNECTION_TIMEOUT),
        ] {
            if !range.contains(&value) {
                return Err(invalid(
                    setting,
                    format!("{value:?}; give a duration between {:?} and {:?}", range.start(), range.end()),
                ));
            }
        }
        Ok(())
    }

    /// Binds the address (or the Unix socket) and serves the endpoint for `handle`'s supervisor
    /// in a background task, until the supervisor has shut down (or every
    /// handle is dropped), or [`HttpServer::shutdown`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Error, HttpEndpoint, Supervisor};
    ///
    /// let handle = Supervisor::builder().build()?.start();
    /// let server = HttpEndpoint::new().addr("127.0.0.1:0".parse().unwrap()).serve(&handle).await?;
    /// server.shutdown().await;
    ///
    /// let refused = HttpEndpoint::new().max_connections(0).serve(&handle).await;
    /// assert!(matches!(refused, Err(Error::InvalidSetting { setting: "max_connections", .. })));
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] naming a setting out of range (see the
    /// table above), [`Error::Io`] when the address or the socket cannot be
    /// bound (a live socket, or a file that is not a socket, at the socket's
    /// path).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn serve(self, handle: &SupervisorHandle) -> Result<HttpServer, Error> {
        self.validate()?;
        let (listener, local_addr) = match &self.unix_socket {
            Some(path) => {
                let (listener, file) = unix::bind(path).await?;
                let file = PlacedSocket::new(file, handle);
                tracing::info!(path = %path.display(), control = self.control.is_some(), "HTTP endpoint listening");
                (Listener::Unix(listener, file), SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))
            }
            None => {
                let listener = TcpListener::bind(self.addr).await.map_err(|source| Error::Io {
                    context: format!("cannot bind the HTTP endpoint to {}", self.addr),
                    source,
                })?;
                let local_addr = listener.local_addr().map_err(|source| Error::Io {
                    context: "cannot read the HTTP endpoint's address".to_owned(),
                    source,
                })?;
                tracing::info!(addr = %local_addr, control = self.control.is_some(), "HTTP endpoint listening");
                (Listener::Tcp(listener), local_addr)
            }
        };
        let unix_socket = self.unix_socket.clone();
        let stop = CancellationToken::new();
        let task = tokio::spawn(accept_loop(listener, handle.detached(), self, stop.clone()));
        Ok(HttpServer { local_addr, unix_socket, stop, task })
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
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), supervisor::Error> {
/// use supervisor::Supervisor;
///
/// let handle = Supervisor::builder().build()?.start();
/// let server = handle.serve_http("127.0.0.1:0".parse().unwrap()).await?;
/// let addr = server.local_addr();
/// server.shutdown().await; // stops it before the supervisor
/// assert!(tokio::net::TcpStream::connect(addr).await.is_err());
/// handle.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct HttpServer {
    local_addr: SocketAddr,
    unix_socket: Option<PathBuf>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// The address actually bound (with the port picked for port 0).
    ///
    /// # Caveats
    ///
    /// An endpoint on a Unix socket has no TCP address: this is then the
    /// unspecified `0.0.0.0:0`, and [`unix_socket`](Self::unix_socket) says
    /// where it listens.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::Supervisor;
    ///
    /// let handle = Supervisor::builder().build()?.start();
    /// let server = handle.serve_http("127.0.0.1:0".parse().unwrap()).await?;
    /// let addr = server.local_addr();
    /// assert_ne!(addr.port(), 0);
    /// assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The path of the Unix socket the endpoint listens on, if it listens on
    /// one ([`HttpEndpoint::unix_socket`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::Supervisor;
    ///
    /// let handle = Supervisor::builder().build()?.start();
    /// let server = handle.serve_http("127.0.0.1:0".parse().unwrap()).await?;
    /// assert_eq!(server.unix_socket(), None); // TCP
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn unix_socket(&self) -> Option<&Path> {
        self.unix_socket.as_deref()
    }

    /// Stops accepting, lets requests in flight finish (briefly), and waits
    /// for the endpoint to end.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::Supervisor;
    ///
    /// let handle = Supervisor::builder().build()?.start();
    /// let server = handle.serve_http("127.0.0.1:0".parse().unwrap()).await?;
    /// let addr = server.local_addr();
    /// server.shutdown().await;
    /// assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.stopped().await;
    }

    /// Waits for the endpoint to end: after the supervisor's shutdown, or
    /// [`shutdown`](Self::shutdown).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::Supervisor;
    ///
    /// let handle = Supervisor::builder().build()?.start();
    /// let server = handle.serve_http("127.0.0.1:0".parse().unwrap()).await?;
    /// let stopped = tokio::spawn(server.stopped());
    /// handle.shutdown().await;
    /// stopped.await.unwrap(); // the endpoint ended with the supervisor
    /// # Ok(())
    /// # }
    /// ```
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
            .field("unix_socket", &self.unix_socket)
            .field("running", &!self.task.is_finished())
            .finish()
    }
}

/// The open connections, at most `max` of them.
struct Connections {
    max: usize,
    table: Mutex<Table>,
    /// Told when the last connection has given up its slot.
    emptied: Notify,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Open>,
}

struct Open {
    /// Since when it has been waiting for a request; `None` while one is in
    /// progress.
    idle_since: Option<Instant>,
    /// Closes it at once.
    close: CancellationToken,
}

impl Connections {
    fn new(max: usize) -> Arc<Self> {
        Arc::new(Connections { max, table: Mutex::new(Table::default()), emptied: Notify::new() })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes room for a new connection, closing the one idle the longest if
    /// the table is full; `None` when every connection has a request in
    /// progress.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut table = self.lock();
        if table.open.len() >= self.max {
            let (&oldest, _) = table
                .open
                .iter()
                .filter_map(|(id, open)| open.idle_since.map(|since| (id, since)))
                .min_by_key(|&(_, since)| since)?;
            if let Some(evicted) = table.open.remove(&oldest) {
                evicted.close.cancel();
            }
        }
        let id = table.next_id;
        table.next_id += 1;
        let close = CancellationToken::new();
        table.open.insert(id, Open { idle_since: Some(Instant::now()), close: close.clone() });
        Some(Slot { id, close, connections: self.clone(), answering: watch::Sender::new(false) })
    }

    /// Completes once no connection holds a slot.
    async fn all_closed(&self) {
        loop {
            let emptied = self.emptied.notified();
            if self.lock().open.is_empty() {
                return;
            }
            emptied.await;
        }
    }
}

/// A connection's place in the table, given up when dropped.
struct Slot {
    id: u64,
    close: CancellationToken,
    connections: Arc<Connections>,
    /// Whether a request is being answered: a connection that times out
    /// meanwhile is closed only once it is.
    answering: watch::Sender<bool>,
}

impl Slot {
    /// A request is in progress: the connection is not to be closed for room.
    fn busy(&self) {
        self.answering.send_replace(true);
        if let Some(open) = self.connections.lock().open.get_mut(&self.id) {
            open.idle_since = None;
        }
    }

    /// Waiting for the next request.
    fn idle(&self) {
        self.answering.send_replace(false);
        if let Some(open) = self.connections.lock().open.get_mut(&self.id) {
            open.idle_since = Some(Instant::now());
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self.connections.lock();
        table.open.remove(&self.id);
        if table.open.is_empty() {
            self.connections.emptied.notify_waiters();
        }
    }
}

/// What the endpoint listens on.
enum Listener {
    Tcp(TcpListener),
    /// With its file, removed when the endpoint stops or the supervisor's
    /// shutdown ends, whichever comes first.
    Unix(UnixListener, PlacedSocket),
}

/// An accepted connection.
enum Accepted {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl Listener {
    /// The next connection, and who it comes from, for the logs.
    async fn accept(&self) -> std::io::Result<(Accepted, String)> {
        match self {
            Listener::Tcp(listener) => {
                listener.accept().await.map(|(stream, peer)| (Accepted::Tcp(stream), peer.to_string()))
            }
            Listener::Unix(listener, file) => listener
                .accept()
                .await
                .map(|(stream, _)| (Accepted::Unix(stream), format!("unix socket {}", file.path().display()))),
        }
    }
}

async fn accept_loop(listener: Listener, handle: SupervisorHandle, settings: HttpEndpoint, stop: CancellationToken) {
    let connections = Connections::new(settings.max_connections);
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
        let Some(slot) = connections.admit() else {
            tracing::warn!(
                %peer,
                max = settings.max_connections,
                "HTTP endpoint: every connection has a request in progress; closing a new one"
            );
            drop(stream);
            continue;
        };
        match stream {
            Accepted::Tcp(stream) => {
                tokio::spawn(serve_connection(stream, slot, handle.clone(), settings.clone(), stop.clone()));
            }
            Accepted::Unix(stream) => {
                tokio::spawn(serve_connection(stream, slot, handle.clone(), settings.clone(), stop.clone()));
            }
        }
    }
    // Closes the socket, and removes a Unix socket's file.
    drop(listener);
    // Ends the connections too, when the supervisor ended first.
    stop.cancel();
    // Every connection holds a slot until it ends (or is closed for room).
    if tokio::time::timeout(DRAIN_TIMEOUT + Duration::from_millis(100), connections.all_closed()).await.is_err() {
        tracing::warn!("HTTP endpoint: requests still in flight when it stopped");
    }
    tracing::info!("HTTP endpoint stopped");
}

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    slot: Slot,
    handle: SupervisorHandle,
    settings: Arc<HttpEndpoint>,
    stop: CancellationToken,
) {
    let slot = Arc::new(slot);
    let close = slot.close.clone();
    let mut answering = slot.answering.subscribe();
    let max_request_size = settings.max_request_size;
    let control = settings.control.clone();
    let service = hyper::service::service_fn(move |request| {
        let (handle, slot, control) = (handle.clone(), slot.clone(), control.clone());
        async move {
            slot.busy();
            let response = respond(&handle, control.as_ref(), request, max_request_size).await;
            slot.idle();
            Ok::<_, Infallible>(response)
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .keep_alive(true)
        // A client that shuts its side down once its request is sent
        // (`printf ... | nc -N`, a container's health check) still wants
        // the answer: without this, an answer not ready at once (a health
        // check, a control call) was dropped with the connection.
        .half_close(true)
        .max_buf_size(max_request_size)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "HTTP endpoint: connection ended with an error");
            }
            return;
        }
        () = close.cancelled() => {
            tracing::debug!("HTTP endpoint: closed the connection idle the longest to make room");
            return;
        }
        () = tokio::time::sleep(settings.connection_timeout) => {
            tracing::debug!("HTTP endpoint: connection timed out");
        }
        () = stop.cancelled() => {}
    }
    // Finish the request in progress, if any, then close. Its handler may
    // take as long as what it does (a restart waits for its unit's stop),
    // and its answer is not cut short unless the endpoint stops; a client
    // that does not read the answer gets `DRAIN_TIMEOUT` for it.
    connection.as_mut().graceful_shutdown();
    let drained = async {
        tokio::select! {
            _ = answering.wait_for(|answering| !answering) => {}
            () = stop.cancelled() => {}
        }
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        _ = connection => {}
        () = close.cancelled() => {}
        () = drained => {}
    }
}

/// The answer to one request: a request declaring a body larger than the
/// endpoint accepts is refused; the rest is the routes' answer.
async fn respond(
    handle: &SupervisorHandle,
    control: Option<&ControlApi>,
    request: Request<Incoming>,
    max_request_size: usize,
) -> Response<Body> {
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
    // The body is never read; kept until the answer is made.
    let (parts, _body) = request.into_parts();
    routes::answer(handle, control, &parts).await
}
