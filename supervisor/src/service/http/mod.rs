//! HTTP (feature `http`): the probe, status and metrics routes, and the
//! opt-in control API, served three ways from one piece of code.
//!
//! - [`HttpEndpoint`]: a server of its own, over TCP or a Unix socket,
//!   hardened against slow and hostile clients.
//! - [`Routes`]: the same answers as a tower `Service`, to mount in an
//!   application's own server (axum's `nest_service`, or hyper through
//!   `hyper_util`'s `TowerToHyperService`).
//! - [`router`] (feature `axum`): the same as an axum `Router`, for
//!   `app.nest("/supervisor", supervisor::http::router(&handle))`.
//!
//! The control API ([`ControlApi`]: restart, stop, start, signal and tail a
//! unit) is off unless given to [`HttpEndpoint::control`] or
//! [`Routes::control`], and every call to it needs its bearer token.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), supervisor::Error> {
//! use supervisor::http::{ControlApi, HttpEndpoint, Routes};
//! use supervisor::Supervisor;
//!
//! let handle = Supervisor::builder().build()?.start();
//! // Probes for the orchestrator, on a port of their own.
//! let probes = HttpEndpoint::new().addr("127.0.0.1:0".parse().unwrap()).serve(&handle).await?;
//! // The same routes for the application's own server.
//! let routes = Routes::new(&handle);
//! // The control API, for operators, on a Unix socket only they can open.
//! let socket = std::env::temp_dir().join(format!("supervisor-mod-doc-{}.sock", std::process::id()));
//! let control = HttpEndpoint::new()
//!     .unix_socket(&socket)
//!     .control(ControlApi::new("0123456789abcdef0123456789abcdef")?)
//!     .serve(&handle)
//!     .await?;
//! # let _ = (probes, routes);
//! handle.shutdown().await;
//! control.stopped().await;
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "axum")]
mod axum;
mod control;
mod endpoint;
mod routes;
mod unix;

#[cfg(feature = "axum")]
pub use self::axum::router;
pub use control::ControlApi;
pub use endpoint::{DEFAULT_HTTP_ADDR, HttpEndpoint, HttpServer};
pub use routes::Routes;
