//! [`Supervisor`] and its builder: registering units and starting them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::extensions::{BuildStep, Extensions};
use crate::handle::SupervisorHandle;
use crate::observe::report::ShutdownReport;
use crate::service::signals;
use crate::spec::Spec;
use crate::spec::validate;
use crate::tree::build;
use crate::tree::node::{self, Node};
use crate::tree::shared::{self, Shared, ShutdownOrder};
use crate::{DaemonSpec, Error, Event, GroupSpec, Strategy, TaskSpec};

/// How many events a slow subscriber may fall behind before it misses some
/// (it is then told how many, by `RecvError::Lagged`).
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;

/// The largest event capacity `build()` accepts.
pub const MAX_EVENT_CAPACITY: usize = 1 << 24;

/// A supervision tree, ready to start.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use supervisor::{Context, DaemonSpec, MaxRestarts, RestartPolicy, Supervisor, TaskSpec};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), supervisor::Error> {
/// let sup = Supervisor::builder()
///     .task(TaskSpec::new("ticker", |ctx: Context| async move {
///         ctx.cancelled().await;
///         Ok::<_, std::io::Error>(())
///     }))
///     .daemon(DaemonSpec::new("sleeper", "sleep").arg("60")
///         .restart(RestartPolicy::new().delay(Duration::from_secs(5)).max_restarts(MaxRestarts::AtMost(3))))
///     .build()?;
/// let handle = sup.start();
/// assert_eq!(handle.unit_names(), ["ticker", "sleeper"]);
/// let report = handle.shutdown().await;
/// assert!(report.is_clean());
/// # Ok(())
/// # }
/// ```
#[must_use = "a supervisor does nothing until `.start()` or `.run().await`"]
pub struct Supervisor {
    shared: Arc<Shared>,
}

/// Collects units and settings for a [`Supervisor`]: the root group of the
/// tree.
#[must_use = "call `.build()` to get a `Supervisor`"]
#[derive(Debug)]
pub struct SupervisorBuilder {
    /// The root group: its units, strategy and intensity.
    root: GroupSpec,
    shutdown_timeout: Option<Duration>,
    shutdown_order: ShutdownOrder,
    event_capacity: Option<usize>,
    random_seed: Option<u64>,
    /// What the service layer keeps on the supervisor (see `extensions`).
    pub(crate) extensions: Extensions,
    build_steps: BuildSteps,
}

impl Default for SupervisorBuilder {
    fn default() -> Self {
        SupervisorBuilder {
            root: GroupSpec::new(""),
            shutdown_timeout: None,
            shutdown_order: ShutdownOrder::default(),
            event_capacity: None,
            random_seed: None,
            extensions: Extensions::default(),
            build_steps: BuildSteps::default(),
        }
    }
}

/// The steps the service layer adds to `build()`.
#[derive(Default)]
struct BuildSteps(Vec<BuildStep>);

impl fmt::Debug for BuildSteps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildSteps").field("steps", &self.0.len()).finish()
    }
}

impl Supervisor {
    /// Starts describing a supervisor.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::{Supervisor, TaskSpec};
    ///
    /// let sup = Supervisor::builder().task(TaskSpec::new("job", |_ctx| async {})).build();
    /// assert!(sup.is_ok());
    /// ```
    pub fn builder() -> SupervisorBuilder {
        SupervisorBuilder::default()
    }

    /// Receives every [`Event`], from the first: subscribe here, before
    /// `start()`, to miss none. The stream ends once the supervisor has
    /// ended, as [`SupervisorHandle::subscribe`]'s does.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{EventKind, Supervisor, TaskSpec};
    ///
    /// let sup = Supervisor::builder().task(TaskSpec::new("a", |_ctx| async {})).build()?;
    /// let mut events = sup.subscribe();
    /// let handle = sup.start();
    /// assert!(matches!(events.recv().await.unwrap().kind, EventKind::Started { .. }));
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.subscribe()
    }

    /// Starts every unit, in start order, on the current tokio runtime.
    ///
    /// Dropping every clone of the returned handle stops all units in the
    /// background (gracefully, as far as the runtime lives); call
    /// [`SupervisorHandle::shutdown`] to stop them and wait.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as [`tokio::spawn`] does, with a message
    /// that says so, at the caller's line. On a runtime built
    /// without tokio's timers (`enable_time` or `enable_all` on its
    /// builder), wherever the supervisor first needs one (a restart delay,
    /// a stop's grace period), as tokio's own timers panic there. On a
    /// runtime without tokio's IO driver, each daemon's run, and each TCP,
    /// HTTP or exec probe, fails, its error saying so, instead of spawning
    /// a process nothing could watch. The supervisor looks for the driver
    /// the only way tokio allows, by the panic tokio raises without it,
    /// which it catches: the panic hook prints tokio's message (once per
    /// worker thread), and with `panic = "abort"`, or a hook that exits,
    /// that panic ends the program, as tokio's own would have.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("worker", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// let status = handle.wait_ready("worker").await?;
    /// assert!(status.running);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use = "dropping the last handle shuts the supervisor down"]
    #[track_caller]
    pub fn start(self) -> SupervisorHandle {
        let shared = self.shared;
        // Told at the caller's line, with the way out: tokio's own panic
        // pointed into this library.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            panic!(
                "`Supervisor::start` must be called inside a tokio runtime (from `#[tokio::main]` or a task); \
                 there is none on this thread"
            );
        };
        shared.start_on(runtime);
        let root = Node::start(shared.clone(), shared.root.clone(), shared.root_stop.clone(), None);
        if let Some(tree) = shared.root.group() {
            node::mark_starting_below(&shared, tree);
        }
        {
            let mut record = shared.root.record();
            record.state = crate::UnitState::Running;
            record.ready = true;
        }
        let owner = EndsWithRuntime(shared.clone());
        tokio::spawn(async move {
            root.run().await;
            owner.0.finish().await;
        });
        SupervisorHandle::new(shared)
    }

    /// Starts every unit, waits for `SIGINT`, `SIGTERM` or `SIGHUP`, then
    /// shuts down gracefully; a second `SIGINT` or `SIGTERM` during the
    /// shutdown skips what is left of the grace periods (a closing terminal
    /// sends `SIGHUP` twice). Returns early, with the report,
    /// when the supervisor ends by itself (the root group gave up, or a
    /// critical unit ended).
    ///
    /// It keeps the handle to itself. A `main` that needs it meanwhile (to
    /// serve the HTTP endpoint, add units, subscribe) calls
    /// [`start`](Self::start), then
    /// [`shutdown_on_signal`](SupervisorHandle::shutdown_on_signal), which
    /// waits and shuts down as this does:
    ///
    /// ```no_run
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("ticker", |ctx: supervisor::Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// let shutdown = handle.shutdown_on_signal(); // the handlers, installed now
    /// let mut events = handle.subscribe();
    /// tokio::spawn(async move {
    ///     while let Ok(event) = events.recv().await {
    ///         println!("{event}");
    ///     }
    /// });
    /// let report = shutdown.await;
    /// std::process::exit(report.exit_code());
    /// # }
    /// ```
    ///
    /// `SIGHUP` (its terminal or SSH session went away) is left ignored if
    /// this process ignored it when it started, as under `nohup`. Other
    /// signals whose default action ends a process (`SIGUSR1`, `SIGQUIT`...)
    /// are left as they are: one that arrives ends this process, and its
    /// daemons run on.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start) does; and on a runtime without tokio's IO
    /// driver (`enable_io()` or `enable_all()` on its builder), which
    /// signals need.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Supervisor, TaskSpec};
    ///
    /// let report = Supervisor::builder()
    ///     .task(TaskSpec::new("ticker", |ctx: supervisor::Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .run()
    ///     .await;
    /// println!("{report}");
    /// std::process::exit(report.exit_code());
    /// # }
    /// ```
    pub async fn run(self) -> ShutdownReport {
        // Said as `start` says it: the signal handlers, installed first,
        // panicked with tokio's message, which named a reactor.
        if tokio::runtime::Handle::try_current().is_err() {
            panic!(
                "`Supervisor::run` must be awaited inside a tokio runtime (from `#[tokio::main]` or a task); \
                 there is none on this thread"
            );
        }
        let signals = signals::Signals::install();
        let handle = self.start();
        signals::shutdown_on(&handle, signals).await
    }
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = Vec::new();
        crate::tree::paths::walk(&self.shared.root, &mut |unit| names.push(unit.path.clone()));
        f.debug_struct("Supervisor").field("units", &names).finish()
    }
}

impl SupervisorBuilder {
    /// Adds an async task to the root group.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec, UnitKind};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("worker", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// assert_eq!(handle.status("worker").unwrap().kind, UnitKind::Task);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn task(mut self, spec: TaskSpec) -> Self {
        // Straight into the root's list: moving the root in and out of
        // its own builder method would copy it for every unit.
        self.root.units.push(Spec::Task(spec));
        self
    }

    /// Adds an external process to the root group.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{DaemonSpec, Supervisor, UnitKind};
    ///
    /// let handle = Supervisor::builder().daemon(DaemonSpec::new("sleeper", "sleep").arg("30")).build()?.start();
    /// let status = handle.wait_ready("sleeper").await?;
    /// assert_eq!(status.kind, UnitKind::Process);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn daemon(mut self, spec: DaemonSpec) -> Self {
        self.root.units.push(Spec::Daemon(spec));
        self
    }

    /// Adds a group to the root group.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::{GroupSpec, Strategy, Supervisor, TaskSpec};
    ///
    /// let sup = Supervisor::builder()
    ///     .group(GroupSpec::new("pair").strategy(Strategy::OneForAll)
    ///         .task(TaskSpec::new("reader", |_ctx| async {}))
    ///         .task(TaskSpec::new("writer", |_ctx| async {})))
    ///     .build()
    ///     .unwrap();
    /// # let _ = sup;
    /// ```
    #[inline]
    pub fn group(mut self, spec: GroupSpec) -> Self {
        self.root.units.push(Spec::Group(spec));
        self
    }

    /// The root group's strategy (default [`Strategy::OneForOne`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::{Strategy, Supervisor};
    ///
    /// let builder = Supervisor::builder().strategy(Strategy::RestForOne);
    /// # let _ = builder;
    /// ```
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.root = self.root.strategy(strategy);
        self
    }

    /// More than `max_restarts` restarts among the root group's units within
    /// `period`, and the root gives up: the supervisor shuts down with exit
    /// code 1, so that `run()` and `wait()` return. No limit unless set.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::Supervisor;
    ///
    /// let builder = Supervisor::builder().intensity(10, Duration::from_secs(60));
    /// # let _ = builder;
    /// ```
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.root = self.root.intensity(max_restarts, period);
        self
    }

    /// An upper bound on a whole shutdown: when it runs out, every unit still
    /// stopping is aborted or killed at once, whatever its own stop timeout.
    ///
    /// # Caveats
    ///
    /// A task that blocks its thread (a busy loop, a blocking call) is not
    /// stopped by an abort: it is given one second more to go away, then
    /// left behind and reported [`StopOutcome::Abandoned`](crate::StopOutcome::Abandoned).
    /// A shutdown so takes at most `timeout` plus a second.
    ///
    /// That bound needs a second worker thread, free to run the timers
    /// while a task blocks one. On a `current_thread` runtime, or one with
    /// a single worker, nothing else runs while a task blocks the thread:
    /// no timer fires, the shutdown lasts as long as the task blocks, the
    /// task is reported as it ends (`Graceful`, if it ends by itself,
    /// however late), and the units stopped after it find the shutdown's
    /// time spent and are killed at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::{Supervisor, TaskSpec};
    ///
    /// let sup = Supervisor::builder()
    ///     .task(TaskSpec::new("job", |_ctx| async {}))
    ///     .shutdown_timeout(Duration::from_secs(30))
    ///     .build();
    /// assert!(sup.is_ok());
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// Whether a shutdown stops the units one at a time, in reverse start
    /// order (the default), or all at once.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, ShutdownOrder, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("a", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .task(TaskSpec::new("b", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .shutdown_order(ShutdownOrder::Concurrent)
    ///     .build()?
    ///     .start();
    /// let report = handle.shutdown().await;
    /// assert_eq!(report.units.len(), 2);
    /// assert!(report.is_clean());
    /// # Ok(())
    /// # }
    /// ```
    pub fn shutdown_order(mut self, order: ShutdownOrder) -> Self {
        self.shutdown_order = order;
        self
    }

    /// The capacity of the event channel (default 1024, at most
    /// [`MAX_EVENT_CAPACITY`]).
    ///
    /// A subscriber that falls further behind than that loses the oldest
    /// events (`RecvError::Lagged`). Each run sends a few (`Started`,
    /// `Exited` or `Stopped`; `Added` and `Removed` for a unit added at run
    /// time), so a server that adds a unit per connection sends about five
    /// per connection: a burst of 2,000 connections is some 10k events. Make
    /// room for the bursts you expect, or read the events on a thread of
    /// their own.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{EventKind, Supervisor, TaskSpec};
    ///
    /// let sup = Supervisor::builder().task(TaskSpec::new("a", |_ctx| async {})).event_capacity(4096).build()?;
    /// let mut events = sup.subscribe();
    /// let handle = sup.start();
    /// assert!(matches!(events.recv().await.unwrap().kind, EventKind::Started { .. }));
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = Some(capacity);
        self
    }

    /// Seeds the random source that draws the restart delays' jitter, so
    /// that a run can be repeated exactly (tests do this with
    /// `tokio::time::pause()`). By default the seed is random.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = supervisor::Supervisor::builder().random_seed(42);
    /// # let _ = builder;
    /// ```
    pub fn random_seed(mut self, seed: u64) -> Self {
        self.random_seed = Some(seed);
        self
    }

    /// Adds a step to `build()`, run after the units are checked.
    pub(crate) fn build_step(mut self, step: BuildStep) -> Self {
        self.build_steps.0.push(step);
        self
    }

    /// Checks every unit and setting, and builds the supervisor.
    ///
    /// # Errors
    ///
    /// Every problem found, at once ([`Error::Problems`] when there are
    /// several): [`Error::EmptyName`], [`Error::NameWithSlash`],
    /// [`Error::NameWithControl`], [`Error::DuplicateName`] (within a
    /// group), [`Error::EmptyProgram`],
    /// [`Error::InvalidSetting`] for a setting out of range,
    /// [`Error::UnknownDependency`], [`Error::SelfDependency`] and
    /// [`Error::DependencyCycle`]; alone, [`Error::TooDeep`] for groups
    /// nested deeper than [`MAX_GROUP_DEPTH`](crate::MAX_GROUP_DEPTH); then
    /// what a build step (the PID file) says.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::{Error, Supervisor, TaskSpec};
    ///
    /// let result = Supervisor::builder()
    ///     .task(TaskSpec::new("job", |_ctx| async {}))
    ///     .task(TaskSpec::new("job", |_ctx| async {}))
    ///     .build();
    /// assert!(matches!(result, Err(Error::DuplicateName { .. })));
    /// ```
    pub fn build(mut self) -> Result<Supervisor, Error> {
        if let Err(too_deep) = validate::check_depth("", 0, &self.root.units) {
            validate::drop_flat(std::mem::take(&mut self.root.units));
            return Err(too_deep);
        }
        // Names that two units of the root take are found by the root's
        // index as it is made; when anything else is wrong, every problem
        // is listed, those names in their place among the rest.
        if !self.problems(false).is_empty() {
            Error::from_problems(self.problems(true))?;
        }
        let steps = std::mem::take(&mut self.build_steps.0);
        let (sup, duplicates) = self.build_with_duplicates();
        Error::from_problems(duplicates)?;
        for step in steps {
            if let Some(hook) = step()? {
                sup.shared.shutdown_hooks.add(hook);
            }
        }
        Ok(sup)
    }

    /// What is wrong with the builder's settings and units (with the names
    /// that two units of the root take, if `root_duplicates`).
    fn problems(&self, root_duplicates: bool) -> Vec<Error> {
        let mut problems = Vec::new();
        if root_duplicates {
            validate::check_units("", &self.root.units, &mut problems);
        } else {
            validate::check_units_but_duplicates("", &self.root.units, &mut problems);
        }
        validate::check_intensity("the root group", self.root.parts.intensity, &mut problems);
        if let Some(capacity) = self.event_capacity
            && !(1..=MAX_EVENT_CAPACITY).contains(&capacity)
        {
            problems.push(Error::InvalidSetting {
                unit: "the supervisor".to_owned(),
                setting: "event_capacity",
                reason: format!("{capacity} is not between 1 and {MAX_EVENT_CAPACITY}, e.g. 1024"),
            });
        }
        problems
    }

    /// Builds without checking; for input already checked at compile time.
    pub(crate) fn build_unchecked(self) -> Supervisor {
        self.build_with_duplicates().0
    }

    /// Builds, leaving out each unit of the root whose name an earlier one
    /// took, named in the errors returned.
    fn build_with_duplicates(self) -> (Supervisor, Vec<Error>) {
        let (root, duplicates) = build::root_and_duplicates(self.root);
        let settings =
            shared::Settings { shutdown_order: self.shutdown_order, shutdown_timeout: self.shutdown_timeout };
        let capacity = self.event_capacity.unwrap_or(DEFAULT_EVENT_CAPACITY).clamp(1, MAX_EVENT_CAPACITY);
        let shared = Arc::new(Shared::new(root, settings, capacity, self.random_seed, self.extensions));
        (Supervisor { shared }, duplicates)
    }
}

/// Held by the supervisor's root task: if its runtime drops it before the
/// supervisor has finished, the supervisor ends there, so that `wait()` and
/// every other wait on it still get their answer.
struct EndsWithRuntime(Arc<Shared>);

impl Drop for EndsWithRuntime {
    fn drop(&mut self) {
        self.0.finish_dropped();
    }
}
