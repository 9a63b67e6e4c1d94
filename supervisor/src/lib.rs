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
//! - `http`: the health endpoint, the same routes as a tower `Service`
//!   (`http::Routes`), and the opt-in control API (`http::ControlApi`).
//! - `axum`: the routes as an axum `Router` (`http::router`).
//! - `metrics`: the units' metrics through the `metrics` facade
//!   (`SupervisorHandle::publish_metrics`).
//! - `systemd`: `sd_notify` readiness and watchdog.

// On docs.rs (`--cfg docsrs`, a nightly rustdoc): `doc_cfg` turns on
// `doc(auto_cfg)`, which labels every item behind `#[cfg(feature = ...)]` with
// the feature it needs. (`doc_auto_cfg` was merged into `doc_cfg` and is an
// error on current nightlies.)
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::unwrap_used)]

#[cfg(not(unix))]
compile_error!("supervisor supports Unix-like systems (Linux, macOS, the BSDs) only for now");

mod context;
mod error;
mod extensions;
mod handle;
mod observe;
mod panics;
mod recent;
mod run;
mod service;
mod signal;
mod spec;
#[allow(clippy::module_inception)]
mod supervisor;
mod text;
mod tree;
mod unit_ref;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use context::Context;
pub use error::Error;
pub use handle::{SupervisorHandle, WeakSupervisorHandle};
pub use observe::event::{Event, EventKind, ExitReason};
pub use observe::report::{ShutdownCause, ShutdownReport, StopOutcome, UnitReport};
pub use observe::status::{UnitKind, UnitState, UnitStatus};
pub use service::health::{CheckReport, DEFAULT_HEALTH_CHECK_TIMEOUT, HealthReport, UnitHealth};
#[cfg(feature = "http")]
pub use service::http;
#[cfg(feature = "http")]
pub use service::http::{ControlApi, DEFAULT_HTTP_ADDR, HttpEndpoint, HttpServer, Routes};
pub use service::metrics::PROMETHEUS_CONTENT_TYPE;
#[cfg(feature = "metrics")]
pub use service::metrics_facade::MetricsPublisher;
pub use service::pidfile::PidFile;
pub use signal::Signal;
pub use spec::daemon::{DEFAULT_DAEMON_STOP_TIMEOUT, DEFAULT_TAIL_LINES, DaemonSpec, Output};
pub use spec::group::Spec;
pub use spec::group::{GroupSpec, MAX_GROUP_DEPTH};
pub use spec::policy::{GiveUpReason, MaxRestarts, RestartOn, RestartPolicy};
pub use spec::probe::{Probe, Readiness};
pub use spec::task::{DEFAULT_TASK_STOP_TIMEOUT, TaskOutput, TaskSpec};
pub use supervisor::{DEFAULT_EVENT_CAPACITY, MAX_EVENT_CAPACITY, Supervisor, SupervisorBuilder};
pub use tree::shared::ShutdownOrder;
pub use tree::strategy::Strategy;
pub use unit_ref::UnitRef;

#[cfg(feature = "macros")]
/// Makes an `async fn` a supervised task with a restart policy checked at compile time.
///
/// The fn stays an ordinary fn that you can call as usual. Next to it the macro adds a type with the
/// same name (types and fns live in different namespaces). `worker::spec()` returns the fn's
/// `TaskSpec` and `worker::NAME` its unit name. The unit name is the fn's name unless you set `name = "..."`.
/// This also works for fns declared inside a function body, such as in doctests.
///
/// The fn must be a free `async fn` that takes a `supervisor::Context` (any pattern; a parameter of
/// another type, such as `std::task::Context`, is a compile error on its type) or nothing, and returns
/// `()` or `Result<(), E>` with `E: Display`. Its body is passed on as written, not parsed: an error
/// in it is reported by the compiler, where it is, and `worker::spec()` still exists.
///
/// Options: `restart = "5s"` (delay), `max = -1 | n` (`-1` is unlimited, `0` means never restart),
/// `on = "always" | "failure" | "never"`, `backoff = 2.0`, `max_delay = "1m"` (needs `backoff`),
/// `jitter = 0.1`, `reset_after = "5m"`, `window = "30s"` with `window_max = 5`, `stop_timeout = "10s"`,
/// `name = "custom"`, and `crate = "path"` (when the crate is renamed); `critical`, `ready = notified |
/// tcp("host:port") | http("url") | exec("program args")`, `liveness = tcp(..) | http(..) | exec(..)` with
/// their `readiness_*` and `liveness_*` settings, and `watchdog = "30s"`, as in [`supervise!`].
///
/// ```rust
/// use supervisor::{supervised, Context, Supervisor, UnitState};
///
/// #[supervised(restart = "1s", max = 2, on = "failure")]
/// async fn flaky(ctx: Context) -> Result<(), String> {
///     Err(format!("run {} failed", ctx.restart_count() + 1))
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(flaky::NAME, "flaky");
/// let sup = Supervisor::builder().task(flaky::spec()).build().unwrap();
/// let handle = sup.start();
/// # tokio::time::pause();
/// # loop {
/// #     if handle.status("flaky").map(|s| s.state) == Some(UnitState::Failed) { break }
/// #     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
/// # }
/// assert_eq!(handle.status("flaky").unwrap().restart_count, 2); // three runs in all
/// handle.shutdown().await;
/// # }
/// ```
///
/// # Equivalent code
///
/// ```rust
/// # use supervisor::{Context, MaxRestarts, RestartOn, RestartPolicy, TaskSpec};
/// # use std::time::Duration;
/// # async fn flaky(_ctx: Context) -> Result<(), String> { Ok(()) }
/// let spec = TaskSpec::new("flaky", flaky).restart(
///     RestartPolicy::new()
///         .delay(Duration::new(1, 0))
///         .max_restarts(MaxRestarts::AtMost(2))
///         .on(RestartOn::Failure),
/// );
/// # let _ = spec;
/// ```
///
/// A fn without a parameter is wrapped in a closure: `TaskSpec::new("f", |_| f())`.
///
/// # Caveats
///
/// On an associated fn (in an `impl` or a `trait`) the attribute is an error on the fn's name that says
/// what a free fn would call instead. An associated fn without `self` or `Self` has the tokens of a free
/// one, so the attribute reads its source file to tell them apart, by name: when one file has both a
/// free and an associated `#[supervised]` fn of the same name, or when another macro wrote the
/// attribute or the fn, the associated one gets rustc's error ("struct is not supported in `trait`s or
/// `impl`s") instead.
pub use supervisor_macros::supervised;

#[cfg(feature = "macros")]
/// A manifest of daemons, tasks and groups, checked at compile time, that evaluates to a `Supervisor`
/// or, with a `struct` line first, defines a typed handle.
///
/// ```rust
/// use supervisor::{supervise, supervised, Context, Supervisor};
///
/// #[supervised(restart = "1s")]
/// async fn ticker(ctx: Context) {
///     ctx.cancelled().await;
/// }
///
/// async fn cleanup_loop(ctx: Context) -> anyhow::Result<()> {
///     ctx.cancelled().await;
///     Ok(())
/// }
///
/// let sup: Supervisor = supervise! {
///     shutdown_timeout = "30s";
///     daemon worker = "worker --port 8080 'quoted arg'" { restart = "5s", max = -1, stop_signal = "INT" };
///     daemon web = ["python3", "-m", "http.server", "8000"] { dir = "/tmp", env = { PYTHONUNBUFFERED = "1" } };
///     task ticker;                                        // an #[supervised] fn: its own policy
///     task cleanup = cleanup_loop { restart = "1s", max = 3 };
/// };
/// # let _ = sup;
/// ```
///
/// # The grammar
///
/// ```text
/// supervise! {
///     pub struct Services;                      // optional, first: the typed form (below)
///     shutdown_timeout = "30s";                 // settings of the whole manifest
///     shutdown_order = "sequential";            // or "concurrent"
///     strategy = "one_for_one";                 // the root group's: one_for_one | one_for_all | rest_for_one
///     intensity = 10; period = "60s";           // more than 10 restarts within 60 s: the root gives up
///     crate = "supervisor";                     // the crate's path, when it is renamed
///
///     daemon NAME = "program args" { options };
///     daemon NAME = ["program", "arg", ...] { options };
///     task NAME = EXPR { options };
///     task PATH { options };                    // an #[supervised] fn
///     group NAME { group options } {            // no `;` after the closing brace
///         entries, nested up to 64 levels
///     }
/// }
/// ```
///
/// Entries:
/// - `daemon NAME = "program args";` splits the string at compile time the way a POSIX shell splits words
///   (with quotes and backslashes) but never runs a shell. An unquoted `|`, `&&`, `;`, `>`, `<`, `&`,
///   backtick, `$(` or line break between two commands is a compile error, and so is what only a shell would expand or act on, which the
///   program would get as written: a variable (`$HOME`, `${HOME}`) outside single quotes, a `~` that
///   begins a word, and a `VAR=value` before the program (give it as `env = { VAR = "value" }`). To use
///   a shell, write `["sh", "-c", "..."]` yourself.
/// - `daemon NAME = ["program", "arg", ...];` gives the words explicitly.
/// - Entries take no attributes or doc comments (write comments with `//`); a unit that runs only
///   under a condition is added with the builder or `handle.add`.
/// - `task path;` adds an `#[supervised]` fn with its own policy. `task path { ... };` sets options over
///   the attribute's, key by key: `task ticker { max = 0 };` keeps the fn's delay, and `critical = false`
///   clears the attribute's `critical`. A probe's settings (`readiness_period`...) go where the probe is
///   set: the manifest cannot see the attribute's. The unit is named by
///   the fn (its `name` option, else the fn's name); two units with one name are a compile error on the
///   later entry, and a path to a plain fn (not `#[supervised]`) is one too: write `task NAME = path;`.
/// - `task NAME = EXPR;` adds a path to an async fn taking `Context`, or a closure.
/// - `group NAME { options } { entries }` adds a [`GroupSpec`]: its units are named by path
///   (`"storage/postgres"`), and the manifest names them, in `depends_on`, by their own names.
/// - NAME is an identifier or a string literal, such as `daemon "my-web" = ...`; it may not contain `/`.
///
/// Options of tasks and daemons:
/// - the restart policy: `restart = "5s"` (delay), `max = -1 | n`, `on = "always" | "failure" | "never"`,
///   `backoff = 2.0`, `max_delay = "1m"`, `jitter = 0.1`, `reset_after = "5m"`, `window = "30s"` with
///   `window_max = 5`; and `stop_timeout = "10s"`;
/// - `critical` (or `critical = true | false`): when the unit ends for good, its group ends too;
/// - `depends_on = [a, b]`: siblings in the same group that must be ready before it starts;
/// - `ready = started | notified | tcp("host:port") | http("http://...") | exec("program args") |
///   output("text")` (see [`Readiness`]; `output` is for daemons), with `readiness_period`,
///   `readiness_timeout`, `readiness_initial_delay`, `readiness_failures` and `readiness_successes` for a
///   probe;
/// - `liveness = tcp(...) | http(...) | exec(...)` (see [`Probe`]), with `liveness_period`,
///   `liveness_timeout`, `liveness_initial_delay`, `liveness_failures` and `liveness_successes` (1, as
///   Kubernetes requires of a liveness probe);
/// - `watchdog = "30s"`: a task that calls `ctx.heartbeat()` less often (a process that sends
///   `WATCHDOG=1` less often) is hung;
/// - daemons only: `stop_signal = "TERM" | "SIGTERM" | ...`, `dir = "..."`, `env = { KEY = "value", ... }`,
///   `success_codes = [0, 143]`.
///
/// Options of groups: `strategy`, `intensity` with `period`, the restart policy (how its parent restarts it
/// once it failed), `critical` and `depends_on`.
///
/// ```rust
/// use supervisor::{supervise, Context, Supervisor};
///
/// async fn migrate(_ctx: Context) -> anyhow::Result<()> {
///     Ok(())
/// }
///
/// async fn api(ctx: Context) {
///     ctx.ready();
///     ctx.cancelled().await;
/// }
///
/// let sup: Supervisor = supervise! {
///     strategy = "one_for_one";
///     intensity = 10; period = "60s";
///     group storage { strategy = "rest_for_one", intensity = 3, period = "30s", restart = "5s", max = 2 } {
///         daemon postgres = "postgres -D /var/lib/pg" { ready = tcp("127.0.0.1:5432"), success_codes = [0, 143] };
///         task migrate = migrate { depends_on = [postgres], ready = completed, on = "failure" };
///     }
///     task api = api { depends_on = [storage], ready = notified, critical };
///     daemon worker = "worker" { liveness = exec("worker --check"), liveness_period = "10s" };
///     daemon poller = "poller" { watchdog = "30s" };
/// };
/// # let _ = sup;
/// ```
///
/// Everything that can be checked at compile time is, every error of one manifest at once, each on the
/// offending token: durations, ranges, unknown or repeated options, duplicate names in a group, commands,
/// an unknown dependency (with the closest sibling), a dependency cycle (on the dependency that closes
/// it, naming the whole cycle), a dependency on a unit of another group (saying where it is), an unknown
/// strategy, `intensity` without `period`, a probe address without a port or a URL that does not parse.
///
/// # The typed form
///
/// With `pub struct Services;` (any attributes, visibility and name) as its first line, the manifest
/// defines that type instead of evaluating to a `Supervisor`. Its fields are [`UnitRef`]s named as the
/// manifest names the units and nested as the groups are, so a misspelt unit is a compile error (rustc's
/// "no field `postgress` on type `ServicesStorage`", with the right name suggested), not a run-time
/// `Error::UnknownUnit`:
///
/// - `Services::start()` starts the units on the current tokio runtime and returns `Services`
///   (outside a runtime it panics, like [`Supervisor::start`]);
/// - `Services::builder()` returns the [`SupervisorBuilder`] with every unit and setting registered, to add
///   what the manifest does not say (a PID file, health checks, an HTTP endpoint); build it, start it, and
///   `Services::from_handle(handle)` gives the `Services` of what it started;
/// - `services.handle()` is the [`SupervisorHandle`], for the calls that name no unit;
/// - `services.api` is the `UnitRef` of `api`: `status()`, `restart()`, `stop()`, `start()`,
///   `wait_ready()`, `wait_state(..)`, `tail(n)`, `signal(..)`, `remove()`;
/// - `services.storage` is of the generated type `ServicesStorage` (the typed form's name and the
///   group's path in UpperCamelCase): it dereferences to the group's own `UnitRef`
///   (`services.storage.restart().await?` restarts the group) and has a field per unit of the group
///   (`services.storage.postgres`).
///
/// A name that is no identifier becomes one: `"web-1"` is the field `web_1`, a keyword is a raw
/// identifier (`r#type`), or `self_` for `self` (and `Self`, `super`, `crate`), which cannot be
/// raw; two names that become the same field are a compile error. A `task path;`
/// entry's field is named after the fn, its `UnitRef` by the unit's name. The types are `Clone` and
/// `Debug`, documented, and raise no lint. The task expressions of a typed manifest are evaluated in
/// `Services::builder()`, an associated fn, so they cannot use local variables: give fns, or closures
/// that capture nothing. A group's type is an item of the module like the typed form itself: another
/// item of that name (a type `ServicesStorage` of yours, or the group type of a second typed manifest
/// that makes the same name) is a clash that rustc reports as `ServicesStorage` "defined multiple
/// times", among follow-on errors; rename the typed form or the group.
///
/// ```rust
/// use supervisor::{supervise, Context, UnitState};
///
/// async fn idle(ctx: Context) {
///     ctx.cancelled().await;
/// }
///
/// supervise! {
///     /// The units of this service.
///     pub struct Services;
///     group storage { strategy = "rest_for_one" } {
///         task postgres = idle;
///         task migrate = idle { depends_on = [postgres] };
///     }
///     task api = idle { depends_on = [storage] };
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), supervisor::Error> {
/// let services = Services::start();
/// services.api.wait_ready().await?;
/// services.storage.postgres.restart().await?;             // takes `migrate` along, as it depends on it
/// assert_eq!(services.storage.migrate.path(), "storage/migrate");
/// services.storage.wait_state(UnitState::Running).await?; // the group's own UnitRef
/// services.handle().shutdown().await;
/// # Ok(())
/// # }
/// ```
///
/// # Equivalent code
///
/// The first manifest above is:
///
/// ```rust
/// # use supervisor::{Context, DaemonSpec, MaxRestarts, RestartPolicy, Signal, Supervisor, TaskSpec};
/// # use std::time::Duration;
/// # async fn cleanup_loop(_ctx: Context) -> anyhow::Result<()> { Ok(()) }
/// let sup = Supervisor::builder()
///     .shutdown_timeout(Duration::new(30, 0))
///     .daemon(
///         DaemonSpec::new("worker", "worker")
///             .args(["--port", "8080", "quoted arg"])
///             .restart(RestartPolicy::new().delay(Duration::new(5, 0)).max_restarts(MaxRestarts::Unlimited))
///             .stop_signal(Signal::INT),
///     )
///     .daemon(
///         DaemonSpec::new("web", "python3")
///             .args(["-m", "http.server", "8000"])
///             .env("PYTHONUNBUFFERED", "1")
///             .current_dir("/tmp"),
///     )
///     // .task(ticker::spec())
///     .task(
///         TaskSpec::new("cleanup", cleanup_loop)
///             .restart(RestartPolicy::new().delay(Duration::new(1, 0)).max_restarts(MaxRestarts::AtMost(3))),
///     )
///     .build()
///     .unwrap(); // the macro checked the names and commands at compile time
/// # let _ = sup;
/// ```
///
/// The tree:
///
/// ```rust
/// # use supervisor::{Context, DaemonSpec, GroupSpec, MaxRestarts, Probe, Readiness, RestartOn, RestartPolicy, Strategy, Supervisor, TaskSpec};
/// # use std::time::Duration;
/// # async fn migrate(_ctx: Context) -> anyhow::Result<()> { Ok(()) }
/// # async fn api(ctx: Context) { ctx.cancelled().await }
/// let sup = Supervisor::builder()
///     .strategy(Strategy::OneForOne)
///     .intensity(10, Duration::new(60, 0))
///     .group(
///         GroupSpec::new("storage")
///             .strategy(Strategy::RestForOne)
///             .intensity(3, Duration::new(30, 0))
///             .restart(RestartPolicy::new().delay(Duration::new(5, 0)).max_restarts(MaxRestarts::AtMost(2)))
///             .daemon(
///                 DaemonSpec::new("postgres", "postgres")
///                     .args(["-D", "/var/lib/pg"])
///                     .success_codes([0, 143])
///                     .readiness(Readiness::Probe(Probe::tcp("127.0.0.1:5432"))),
///             )
///             .task(
///                 TaskSpec::new("migrate", migrate)
///                     .restart(RestartPolicy::new().on(RestartOn::Failure))
///                     .depends_on(["postgres"])
///                     .readiness(Readiness::Completed),
///             ),
///     )
///     .task(TaskSpec::new("api", api).critical().readiness(Readiness::Notified).depends_on(["storage"]))
///     .daemon(DaemonSpec::new("worker", "worker").liveness(Probe::exec(["worker", "--check"]).period(Duration::new(10, 0))))
///     .daemon(DaemonSpec::new("poller", "poller").watchdog(Duration::new(30, 0)))
///     .build()
///     .unwrap();
/// # let _ = sup;
/// ```
///
/// And the typed form is, besides the types, `Services::builder()` returning that builder (before
/// `build()`), `Services::start()` being `Services::from_handle(builder.build()?.start())`, and
/// `from_handle` filling each field with `handle.unit("storage/postgres")`.
pub use supervisor_macros::supervise;

/// The README's examples, compiled as doctests so that the front page stays
/// true.
#[cfg(all(doctest, feature = "macros"))]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// The types that will grow are `#[non_exhaustive]`: code outside the crate
/// matches them with a `_` arm and never builds a status itself, so adding a
/// state, a kind, a rule or a field is not a breaking change.
///
/// ```compile_fail,E0004
/// use supervisor::UnitState;
/// fn code(state: UnitState) -> u8 {
///     match state {
///         UnitState::Starting => 0,
///         UnitState::Running => 1,
///         UnitState::Backoff => 2,
///         UnitState::Stopping => 3,
///         UnitState::Stopped => 4,
///         UnitState::Exited => 5,
///         UnitState::Failed => 6,
///     }
/// }
/// ```
///
/// ```compile_fail,E0004
/// use supervisor::UnitKind;
/// fn code(kind: UnitKind) -> u8 {
///     match kind {
///         UnitKind::Task => 0,
///         UnitKind::Process => 1,
///     }
/// }
/// ```
///
/// ```compile_fail,E0004
/// use supervisor::MaxRestarts;
/// fn limit(max: MaxRestarts) -> Option<u32> {
///     match max {
///         MaxRestarts::Unlimited => None,
///         MaxRestarts::AtMost(n) => Some(n),
///     }
/// }
/// ```
///
/// ```compile_fail,E0004
/// use supervisor::RestartOn;
/// fn code(on: RestartOn) -> u8 {
///     match on {
///         RestartOn::Always => 0,
///         RestartOn::Failure => 1,
///         RestartOn::Never => 2,
///     }
/// }
/// ```
///
/// ```compile_fail,E0639
/// use supervisor::{UnitKind, UnitState, UnitStatus};
/// let status = UnitStatus {
///     name: "worker".to_owned(),
///     kind: UnitKind::Task,
///     state: UnitState::Running,
///     running: true,
///     pid: None,
///     restart_count: 0,
///     last_start: None,
///     uptime: None,
///     exit_code: None,
///     signal: None,
///     last_error: None,
/// };
/// ```
#[cfg(doctest)]
struct NonExhaustiveDoctests;
