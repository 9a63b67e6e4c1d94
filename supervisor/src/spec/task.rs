//! Async tasks as units: [`TaskSpec`], and how one run of a task is driven.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::FutureExt;
use smallbox::space::S2;
use smallbox::{SmallBox, smallbox};

use crate::observe::event::bounded_display;
use crate::spec::UnitOptions;
use crate::spec::guarded::Guarded;
use crate::{Context, ExitReason, Probe, Readiness, RestartPolicy};

/// How long a task gets to finish after it is asked to stop, before it is
/// aborted.
pub const DEFAULT_TASK_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// What a task's future may return: `()` or `Result<(), E>` for any error type
/// that implements `Display` (`std::io::Error`, `anyhow::Error`,
/// `Box<dyn Error + Send + Sync>`, a `&'static str`, ...).
///
/// # Examples
///
/// ```
/// use supervisor::{ExitReason, TaskOutput};
///
/// assert_eq!(().into_exit_reason(), ExitReason::Success);
/// assert_eq!(Err::<(), _>("boom").into_exit_reason(), ExitReason::Error("boom".into()));
/// ```
pub trait TaskOutput: Send + 'static {
    /// How the run ended.
    fn into_exit_reason(self) -> ExitReason;
}

impl TaskOutput for () {
    fn into_exit_reason(self) -> ExitReason {
        ExitReason::Success
    }
}

impl<E: fmt::Display + Send + 'static> TaskOutput for Result<(), E> {
    fn into_exit_reason(self) -> ExitReason {
        match self {
            Ok(()) => ExitReason::Success,
            // The alternate form keeps an error's chain where the type has
            // one (`anyhow`: "connecting to db: connection refused").
            Err(error) => ExitReason::Error(bounded_display(&error)),
        }
    }
}

pub(crate) type BoxedRun = Pin<Box<dyn Future<Output = ExitReason> + Send>>;
/// Kept inline when it captures two words or less (nothing, as an `async fn`
/// item; an `Arc` or two), boxed otherwise: a unit is then one allocation,
/// where a box of its own took a block of 32 bytes for an `Arc` of 8 and
/// made a start of 10k units a tenth slower.
pub(crate) type Factory = Guarded<SmallBox<dyn Fn(Context) -> BoxedRun + Send + Sync, S2>>;

/// An async task to supervise.
///
/// `f` is called once per run with a fresh [`Context`], inside the tokio
/// task that carries the run, when that task first polls it; the future it
/// returns is the run. A run restarted with no delay goes on in the task of
/// the run before it, once that run has been dropped. A run ends when the
/// future completes (`Ok`/`()` is a success, `Err` a failure, its `Display`
/// kept as `last_error`) or panics (the panic is caught, the message kept
/// as `last_error`, and counts as a failure).
///
/// A unit that counts as ready once it runs ([`Readiness::Started`], the
/// default) is ready as soon as its run is started: `wait_ready` may return
/// before `f` has been called.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use supervisor::{Context, MaxRestarts, RestartPolicy, TaskSpec};
///
/// let spec = TaskSpec::new("poller", |ctx: Context| async move {
///     ctx.cancelled().await;
///     Ok::<_, std::io::Error>(())
/// })
/// .restart(RestartPolicy::new().delay(Duration::from_secs(1)).max_restarts(MaxRestarts::AtMost(5)))
/// .stop_timeout(Duration::from_secs(2));
/// assert_eq!(spec.name(), "poller");
/// ```
#[must_use = "a spec does nothing until it is added to a supervisor with `.task(spec)`"]
pub struct TaskSpec {
    pub(crate) name: String,
    factory: Factory,
    pub(crate) policy: RestartPolicy,
    pub(crate) stop_timeout: Duration,
    pub(crate) options: UnitOptions,
}

/// A task's settings, apart from its name and factory.
pub(crate) struct TaskSettings {
    pub(crate) policy: RestartPolicy,
    pub(crate) stop_timeout: Duration,
    pub(crate) options: UnitOptions,
}

impl TaskSpec {
    /// A task named `name`, run by calling `f`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{RestartOn, RestartPolicy, Supervisor, TaskSpec, UnitState};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("hello", |_ctx| async { println!("hello") }).restart(RestartPolicy::new().on(RestartOn::Never)))
    ///     .build()?
    ///     .start();
    /// handle.wait_state("hello", UnitState::Exited).await?;
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn new<F, Fut>(name: impl Into<String>, f: F) -> Self
    where
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: TaskOutput,
    {
        let factory: Factory =
            Guarded::new(smallbox!(move |ctx| -> BoxedRun { Box::pin(f(ctx).map(TaskOutput::into_exit_reason)) }));
        TaskSpec {
            name: name.into(),
            factory,
            policy: RestartPolicy::default(),
            stop_timeout: DEFAULT_TASK_STOP_TIMEOUT,
            options: UnitOptions::default(),
        }
    }

    /// The restart policy (default: [`RestartPolicy::new`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{RestartOn, RestartPolicy, Supervisor, TaskSpec, UnitState};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("migrate", |_ctx| async { Ok::<(), String>(()) }).restart(RestartPolicy::new().on(RestartOn::Failure)))
    ///     .build()?
    ///     .start();
    /// let status = handle.wait_state("migrate", UnitState::Exited).await?;
    /// assert_eq!(status.restart_count, 0);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How long a run may take to finish after cancellation before it is
    /// aborted (default 5 s).
    ///
    /// # Caveats
    ///
    /// Aborting drops the run's future, which takes effect at its next
    /// `.await`: a run that blocks its thread (a busy loop, blocking I/O)
    /// cannot be aborted until it yields. Put blocking work in
    /// `tokio::task::spawn_blocking`, and check `ctx.is_cancelled()` in long
    /// computations.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use std::time::Duration;
    /// use supervisor::{StopOutcome, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("stubborn", |_ctx| std::future::pending::<()>()).stop_timeout(Duration::from_millis(10)))
    ///     .build()?
    ///     .start();
    /// handle.wait_ready("stubborn").await?;
    /// let report = handle.shutdown().await;
    /// assert_eq!(report.units[0].outcome, StopOutcome::Forced);
    /// # Ok(())
    /// # }
    /// ```
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// The unit's name.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::TaskSpec;
    ///
    /// assert_eq!(TaskSpec::new("job", |_ctx| async {}).name(), "job");
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When this unit ends for good (it is `Failed`, or `Exited` because its
    /// policy does not restart it), its group ends too: as a failure if the
    /// unit failed, cleanly if it exited cleanly. At the root, the
    /// supervisor shuts down, so that `run()` returns and a `main` exits with
    /// the report's code: "the main job is done, stop everything", or "a
    /// vital unit gave up, let the orchestrator restart us".
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, RestartOn, RestartPolicy, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("server", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .task(TaskSpec::new("job", |_ctx| async { Ok::<_, std::io::Error>(()) })
    ///         .restart(RestartPolicy::new().on(RestartOn::Failure))
    ///         .critical())
    ///     .build()?
    ///     .start();
    /// let report = handle.wait().await; // the job is done: everything stops
    /// assert_eq!(report.exit_code(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn critical(mut self) -> Self {
        self.options.critical = true;
        self
    }

    /// Forgets the unit once it ends for good (`Exited`, or `Failed`): it is
    /// removed from its group as [`remove`](crate::SupervisorHandle::remove)
    /// would, and its name is free again. For one unit per piece of work
    /// (a connection, a job) added at run time, which would otherwise pile
    /// up at rest; OTP calls such a child *temporary*. Usually with
    /// `RestartPolicy::new().on(RestartOn::Never)` or `on(RestartOn::Failure)`.
    /// A unit that others depend on stays at rest instead, as `remove` would
    /// refuse it: its dependents keep waiting for it by name. It is
    /// forgotten once the last of them is (removed, or forgotten as
    /// temporary, or with its group's end). One that is
    /// also [`critical`](Self::critical) is forgotten, then ends its group:
    /// the group's next run, if its policy restarts it, runs without it.
    ///
    /// Its group never runs it again either, as OTP never restarts a
    /// temporary child: stopped by its group's strategy (a sibling failed)
    /// or with its group (a group's run that ends or restarts, but for the
    /// supervisor's shutdown, whose report lists it), it is forgotten. A
    /// stop by hand leaves it at rest, to start again by hand.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{RestartOn, RestartPolicy, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder().build()?.start();
    /// let mut events = handle.subscribe();
    /// handle.add(TaskSpec::new("job", |_ctx| async {}).restart(RestartPolicy::new().on(RestartOn::Never)).temporary()).await?;
    /// while !matches!(events.recv().await.unwrap().kind, supervisor::EventKind::Removed) {}
    /// assert!(handle.status("job").is_none());
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn temporary(mut self) -> Self {
        self.options.temporary = true;
        self
    }

    /// Starts this unit only once each of these units of its group is
    /// ready (until then its state is `Waiting`), and stops it before them.
    /// Names are siblings in the same group (a group counts as ready when
    /// every unit of it that should run is ready). A dependency that was
    /// ready, then ended well and rests by its policy (`Exited`: a one-shot
    /// job that did its work) counts as ready until it runs again. Unknown
    /// names, a unit depending on itself and cycles are `build()` errors.
    ///
    /// `stop_unit` and `restart` of a dependency first stop its dependents
    /// (and `restart` starts them again once it is ready); `start_unit`,
    /// and `restart` of a unit at rest, start what a unit depends on if it
    /// is not running. A dependency
    /// restarted by its own policy leaves its dependents running under
    /// `OneForOne`; `RestForOne` restarts them with it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let idle = |ctx: Context| async move { ctx.cancelled().await };
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("api", idle).depends_on(["db"]))
    ///     .task(TaskSpec::new("db", idle))
    ///     .build()?
    ///     .start();
    /// handle.wait_ready("api").await?; // db started first
    /// handle.shutdown().await; // api stops first
    /// # Ok(())
    /// # }
    /// ```
    pub fn depends_on<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.options.depends_on.extend(names.into_iter().map(Into::into));
        self
    }

    /// When a run counts as ready (default [`Readiness::Started`]): readiness
    /// gates the units that depend on this one, `/readyz` and `wait_ready`.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::{Probe, Readiness, TaskSpec};
    ///
    /// let spec = TaskSpec::new("api", |ctx: supervisor::Context| async move { ctx.cancelled().await }).readiness(Readiness::Probe(Probe::tcp("127.0.0.1:5432")));
    /// # let _ = spec;
    /// ```
    pub fn readiness(mut self, readiness: Readiness) -> Self {
        self.options.watching().readiness = readiness;
        self
    }

    /// A liveness probe: a run whose probe fails `failure_threshold` times
    /// in a row is stopped and ends as a failure
    /// ([`ExitReason::Unhealthy`]), which
    /// goes through the restart policy, the strategy and the intensity like
    /// any failure. It probes only while a run is in progress.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::{Probe, TaskSpec};
    ///
    /// let spec = TaskSpec::new("api", |ctx: supervisor::Context| async move { ctx.cancelled().await }).liveness(Probe::tcp("127.0.0.1:8081").period(Duration::from_secs(10)).failure_threshold(3));
    /// # let _ = spec;
    /// ```
    pub fn liveness(mut self, probe: Probe) -> Self {
        self.options.watching().liveness = Some(probe);
        self
    }

    /// A watchdog: a run that gives no sign of life for `period` is hung:
    /// it is stopped like any stop and ends as a failure
    /// ([`ExitReason::Hung`]). The task gives signs of life with
    /// [`Context::heartbeat`](crate::Context::heartbeat).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::TaskSpec;
    ///
    /// let spec = TaskSpec::new("api", |ctx: supervisor::Context| async move { ctx.cancelled().await }).watchdog(Duration::from_secs(30));
    /// # let _ = spec;
    /// ```
    pub fn watchdog(mut self, period: Duration) -> Self {
        self.options.watching().watchdog = Some(period);
        self
    }

    pub(crate) fn into_parts(self) -> (TaskSettings, Factory) {
        let TaskSpec { factory, policy, stop_timeout, options, .. } = self;
        (TaskSettings { policy, stop_timeout, options }, factory)
    }
}

impl fmt::Debug for TaskSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSpec")
            .field("name", &self.name)
            .field("policy", &self.policy)
            .field("stop_timeout", &self.stop_timeout)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn run_once(spec: &TaskSpec) -> ExitReason {
        let ctx = Context::new("t".into(), 0, tokio_util::sync::CancellationToken::new(), None);
        futures_util::FutureExt::now_or_never((spec.factory)(ctx)).expect("the run completes at once")
    }

    #[test]
    fn a_factory_that_captures_two_words_or_less_is_kept_inline() {
        let shared = Arc::new(7_u64);
        let spec = TaskSpec::new("t", move |_ctx| {
            let shared = shared.clone();
            async move { if *shared == 7 { Ok(()) } else { Err("changed") } }
        });
        assert!(!spec.factory.is_heap());
        assert_eq!(run_once(&spec), ExitReason::Success);
        let item = TaskSpec::new("t", |_ctx| async {});
        assert!(!item.factory.is_heap());
    }

    #[test]
    fn a_larger_factory_is_boxed_and_runs_alike() {
        let words = [3_u64; 8];
        let spec = TaskSpec::new("t", move |_ctx| async move {
            if words.iter().sum::<u64>() == 24 { Err("all there") } else { Ok(()) }
        });
        assert!(spec.factory.is_heap());
        assert_eq!(run_once(&spec), ExitReason::Error("all there".into()));
    }

    /// Small, but aligned past the inline space's 8 bytes: boxed, so that
    /// the closure never sits at an address its type forbids.
    #[test]
    fn a_factory_aligned_past_the_inline_space_is_boxed() {
        #[derive(Clone, Copy)]
        #[repr(align(64))]
        struct Aligned(u8);
        let aligned = Aligned(5);
        let spec = TaskSpec::new("t", move |_ctx| {
            let at = std::ptr::from_ref(&aligned).addr();
            async move { if at.is_multiple_of(64) && aligned.0 == 5 { Ok(()) } else { Err("misaligned") } }
        });
        assert!(spec.factory.is_heap());
        assert_eq!(run_once(&spec), ExitReason::Success);
    }
}
