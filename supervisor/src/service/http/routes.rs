//! The answers: one function ([`answer`]) that both the stand-alone
//! [`HttpEndpoint`](super::HttpEndpoint) and the tower `Service`
//! ([`Routes`]) call, so an application's own server answers exactly what
//! the endpoint answers.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;

use super::control::{self, ControlApi};
use crate::SupervisorHandle;
use crate::service::health;
use crate::service::metrics::PROMETHEUS_CONTENT_TYPE;

/// The probe, status and metrics paths, aliases included.
pub(crate) const PATHS: [&str; 7] = ["/livez", "/readyz", "/healthz", "/status", "/metrics", "/health", "/ready"];
const ALLOW_READ: &str = "GET, HEAD";

/// The body of every answer: the whole of it, in one piece.
pub(crate) type Body = Full<Bytes>;

/// The routes of the HTTP endpoint as a tower `Service`, for an
/// application that already runs a web server: `/livez`, `/readyz`,
/// `/healthz`, `/status` and `/metrics` (see
/// [`HttpEndpoint`](super::HttpEndpoint) for what each answers), and the
/// control API under `/units/...` once [`control`](Self::control) enables
/// it.
///
/// It answers by the path it is given, whatever prefix it was mounted
/// under: mounted with axum's `nest_service("/supervisor", routes)` (or
/// [`router`](super::router) and `nest`, feature `axum`), it answers
/// `/supervisor/livez`. Every answer is made in full before it is sent
/// (`Full<Bytes>`), and a request's body is never read.
///
/// # Why a tower `Service`
///
/// A tower `Service` is what most Rust servers take as they are: axum
/// (`nest_service`, `route_service`), tower-http's layers, and hyper
/// itself through `hyper_util::service::TowerToHyperService`. It ties the
/// crate to no framework's version: an application on any axum release, or
/// on none, can mount it. The axum `Router` of [`router`](super::router)
/// (feature `axum`) is this service behind axum's routes, for
/// `app.nest("/supervisor", router)` and axum's layers.
///
/// # Examples
///
/// Called as any server calls it:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use http_body_util::{BodyExt, Empty};
/// use hyper::body::Bytes;
/// use supervisor::http::Routes;
/// use supervisor::{Context, Supervisor, TaskSpec};
/// use tower_service::Service;
///
/// let handle = Supervisor::builder()
///     .task(TaskSpec::new("ticker", |ctx: Context| async move { ctx.cancelled().await }))
///     .build()?
///     .start();
/// handle.wait_ready("ticker").await?;
/// let mut routes = Routes::new(&handle);
/// let request = hyper::Request::get("/readyz").body(Empty::<Bytes>::new())?;
/// let response = routes.call(request).await?;
/// assert_eq!(response.status(), 200);
/// let body = response.into_body().collect().await?.to_bytes();
/// assert!(String::from_utf8_lossy(&body).contains("\"ready\":true"));
/// handle.shutdown().await;
/// # Ok(())
/// # }
/// ```
///
/// # Caveats
///
/// - The slow-client protection of the stand-alone endpoint (a cap on
///   connections, header and connection timeouts, a request size limit)
///   belongs to the server, not to the routes: mounted in an application,
///   the routes get whatever the application's server gives. They never
///   read a body and answer from memory, so a hostile request costs them
///   nothing more than any other route of the application.
/// - It holds a handle that does not keep the supervisor running: once
///   every other handle is dropped the supervisor shuts down, and the
///   routes answer as for a supervisor that has ended (`/livez` 503).
#[derive(Clone)]
pub struct Routes {
    handle: SupervisorHandle,
    control: Option<Arc<ControlApi>>,
}

impl Routes {
    /// The probe, status and metrics routes of `handle`'s supervisor; the
    /// control API stays off.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), supervisor::Error> {
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// # let _guard = runtime.enter();
    /// use supervisor::Supervisor;
    /// use supervisor::http::Routes;
    ///
    /// let handle = Supervisor::builder().build()?.start();
    /// let routes = Routes::new(&handle);
    /// assert!(!format!("{routes:?}").contains("control: true"));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn new(handle: &SupervisorHandle) -> Self {
        Routes { handle: handle.detached(), control: None }
    }

    /// Enables the control API under `/units/...`, for callers that send
    /// its bearer token; see [`ControlApi`].
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), supervisor::Error> {
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// # let _guard = runtime.enter();
    /// use supervisor::Supervisor;
    /// use supervisor::http::{ControlApi, Routes};
    ///
    /// let handle = Supervisor::builder().build()?.start();
    /// let routes = Routes::new(&handle).control(ControlApi::new("a-long-random-secret-token")?);
    /// assert!(format!("{routes:?}").contains("control: true"));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Caveats
    ///
    /// Whoever has the token can stop every unit: serve the routes where
    /// only operators reach them, over TLS if they cross a network.
    #[must_use]
    pub fn control(mut self, api: ControlApi) -> Self {
        self.control = Some(Arc::new(api));
        self
    }

    /// Whether the control API is on.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn has_control(&self) -> bool {
        self.control.is_some()
    }

    /// The answer to one request, of which only the method, the path, the
    /// query and the `Authorization` header are read.
    async fn answer(&self, parts: &Parts) -> Response<Body> {
        answer(&self.handle, self.control.as_deref(), parts).await
    }
}

impl fmt::Debug for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routes").field("control", &self.control.is_some()).finish_non_exhaustive()
    }
}

impl<B> tower_service::Service<Request<B>> for Routes {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The body is never read: dropped here, it holds nothing up.
        let (parts, _) = request.into_parts();
        let routes = self.clone();
        Box::pin(async move { Ok(routes.answer(&parts).await) })
    }
}

/// The answer to one request: the probes, status and metrics, and the
/// control API when `control` is given.
pub(crate) async fn answer(handle: &SupervisorHandle, control: Option<&ControlApi>, parts: &Parts) -> Response<Body> {
    let path = parts.uri.path();
    if let Some(control) = control
        && control::is_control_path(path)
    {
        return control.answer(handle, parts).await;
    }
    if !PATHS.contains(&path) {
        return json(StatusCode::NOT_FOUND, &NotFound { error: "not found", paths: &PATHS });
    }
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return method_not_allowed(&parts.method, ALLOW_READ);
    }
    match path {
        "/livez" | "/health" | "/healthz" => {
            let report = health::report(handle).await;
            json(verdict(report.live), &report)
        }
        "/readyz" | "/ready" => {
            let report = health::report(handle).await;
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
pub(crate) struct Message {
    pub(crate) error: String,
}

/// 405, with the methods allowed.
pub(crate) fn method_not_allowed(method: &Method, allow: &'static str) -> Response<Body> {
    let mut response =
        json(StatusCode::METHOD_NOT_ALLOWED, &Message { error: format!("method {method} not allowed; use {allow}") });
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// A JSON answer, ending with a newline.
pub(crate) fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
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

fn no_store(mut response: Response<Body>) -> Response<Body> {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
