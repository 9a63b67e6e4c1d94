//! Keeps long-running work alive inside an application.
//!
//! A [`Supervisor`] runs *units*: async tasks ([`TaskSpec`]) and external OS
//! processes ([`DaemonSpec`]). When a unit's run ends, its [`RestartPolicy`]
//! decides whether and when it runs again (delay, limit, backoff, jitter,
//! intensity window). Panics are caught, processes run in their own process
//! group and are stopped with `SIGTERM` then `SIGKILL`, and a shutdown stops
//! every unit gracefully in reverse start order. At any moment the
//! [`SupervisorHandle`] gives a [`UnitStatus`] per unit (serialisable to JSON)
//! and a stream of [`Event`]s.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use supervisor::{Context, DaemonSpec, MaxRestarts, RestartPolicy, Supervisor, TaskSpec, UnitState};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), supervisor::Error> {
//! let sup = Supervisor::builder()
//!     .task(TaskSpec::new("ticker", |ctx: Context| async move {
//!         while !ctx.is_cancelled() {
//!             tokio::time::sleep(Duration::from_millis(10)).await;
//!         }
//!         Ok::<_, std::io::Error>(())
//!     })
//!     .restart(RestartPolicy::new().delay(Duration::from_secs(1)).max_restarts(MaxRestarts::Unlimited)))
//!     .daemon(DaemonSpec::new("sleeper", "sleep").arg("30")
//!         .restart(RestartPolicy::new().delay(Duration::from_secs(5)).max_restarts(MaxRestarts::AtMost(3))))
//!     .build()?;
//! let handle = sup.start();
//! assert_eq!(handle.status("ticker").map(|s| s.name), Some("ticker".to_owned()));
//! let report = handle.shutdown().await;
//! assert!(report.units.iter().all(|unit| unit.state != UnitState::Failed));
//! # Ok(())
//! # }
//! ```
//!
//! # Restart counting
//!
//! `restart_count` is the number of restarts performed. `MaxRestarts::AtMost(0)`
//! runs a unit once; `AtMost(3)` lets a unit that keeps failing run four times,
//! after which it is [`UnitState::Failed`] with `restart_count == 3`.
//! [`SupervisorHandle::restart`] and [`SupervisorHandle::start_unit`] reset the
//! count.
//!
//! # Features
//!
//! - `macros` (default): [`supervised`] and [`supervise!`].
//! - `http`: the health endpoint.
//! - `systemd`: `sd_notify` readiness and watchdog.

#![cfg_attr(docsrs, feature(doc_auto_cfg))]
#![warn(clippy::unwrap_used)]

#[cfg(not(unix))]
compile_error!("supervisor supports Unix-like systems (Linux, macOS, the BSDs) only for now");

mod context;
mod daemon;
mod error;
mod event;
mod handle;
mod health;
#[cfg(feature = "http")]
mod http;
mod output;
mod pidfile;
mod policy;
mod process;
mod shutdown;
mod signal;
mod status;
#[allow(clippy::module_inception)]
mod supervisor;
#[cfg(feature = "systemd")]
mod systemd;
mod task;
mod unit;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use context::Context;
pub use daemon::{DEFAULT_DAEMON_STOP_TIMEOUT, DEFAULT_TAIL_LINES, DaemonSpec, Output};
pub use error::Error;
pub use event::{Event, EventKind, ExitReason};
pub use handle::SupervisorHandle;
pub use health::{CheckReport, DEFAULT_HEALTH_CHECK_TIMEOUT, HealthReport, UnitHealth};
#[cfg(feature = "http")]
pub use http::{DEFAULT_HTTP_ADDR, HttpEndpoint, HttpServer};
pub use pidfile::PidFile;
pub use policy::{GiveUpReason, MaxRestarts, RestartOn, RestartPolicy};
pub use shutdown::{ShutdownReport, StopOutcome, UnitReport};
pub use signal::Signal;
pub use status::{UnitKind, UnitState, UnitStatus};
pub use supervisor::{DEFAULT_EVENT_CAPACITY, Supervisor, SupervisorBuilder};
pub use task::{DEFAULT_TASK_STOP_TIMEOUT, TaskOutput, TaskSpec};

#[cfg(feature = "macros")]
pub use supervisor_macros::{supervise, supervised};
