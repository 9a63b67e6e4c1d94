//! The routes as an axum `Router` (feature `axum`), for
//! `app.nest("/supervisor", supervisor::http::router(&handle))`.

use axum::Router;
use axum::routing::any_service;

use super::routes::{PATHS, Routes};
use crate::SupervisorHandle;

/// The probe, status and metrics routes as an axum `Router`, to `nest`
/// under any prefix of an axum application: `/livez`, `/readyz`,
/// `/healthz`, `/status` and `/metrics` (and the aliases `/health` and
/// `/ready`), answered as [`HttpEndpoint`](super::HttpEndpoint) answers
/// them. The control API stays off; see [`Routes::into_router`] to enable
/// it.
///
/// The router has no state of its own: `S` is whatever state the
/// application's router has, so it nests into any `Router<S>`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use axum::Router;
/// use axum::routing::get;
/// use supervisor::{Context, Supervisor, TaskSpec};
///
/// let handle = Supervisor::builder()
///     .task(TaskSpec::new("worker", |ctx: Context| async move { ctx.cancelled().await }))
///     .build()?
///     .start();
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .nest("/supervisor", supervisor::http::router(&handle)); // GET /supervisor/readyz, ...
/// // axum::serve(listener, app).await?;
/// # let _ = app;
/// handle.shutdown().await;
/// # Ok(())
/// # }
/// ```
///
/// # Caveats
///
/// - The routes are as safe as the server that serves them: `axum::serve`
///   caps neither connections nor the time a client takes to send its
///   headers, where [`HttpEndpoint`](super::HttpEndpoint) does both. The
///   routes never read a body and answer from memory, so what a hostile
///   client costs is the server's business, as for the application's other
///   routes.
/// - Paths outside these routes, `/supervisor/nope` say, get the
///   application's fallback (axum's default is an empty 404), not the
///   endpoint's JSON 404.
pub fn router<S>(handle: &SupervisorHandle) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Routes::new(handle).into_router()
}

impl Routes {
    /// These routes as an axum `Router` (feature `axum`), with the control
    /// API's `/units/...` routes when [`control`](Self::control) enabled it;
    /// see [`router`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use axum::Router;
    /// use supervisor::Supervisor;
    /// use supervisor::http::{ControlApi, Routes};
    ///
    /// let handle = Supervisor::builder().build()?.start();
    /// let token = std::env::var("SUPERVISOR_TOKEN").unwrap_or_else(|_| "0123456789abcdef0123456789abcdef".into());
    /// let app: Router = Router::new()
    ///     .nest("/supervisor", Routes::new(&handle).control(ControlApi::new(token)?).into_router());
    /// // POST /supervisor/units/worker/restart with `Authorization: Bearer <token>`
    /// # let _ = app;
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Caveats
    ///
    /// With the control API on, whoever reaches the application and holds
    /// the token can stop every unit: mount it only on a server that
    /// operators alone can reach (or serve it on a Unix socket with
    /// [`HttpEndpoint::unix_socket`](super::HttpEndpoint::unix_socket)).
    pub fn into_router<S>(self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let mut router = Router::new();
        for path in PATHS {
            router = router.route(path, any_service(self.clone()));
        }
        if self.has_control() {
            router = router.route("/units", any_service(self.clone())).route("/units/{*rest}", any_service(self));
        }
        router
    }
}
