//! Stopping units: one at a time on request, all of them at shutdown, and the
//! [`ShutdownReport`] that says how it went.

use std::fmt;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFuture;

use crate::control::{self, Control};
use crate::supervisor::Shared;
use crate::unit::{Activation, Ending, StopAsked, Unit, mark_aborted};
use crate::{SupervisorHandle, UnitKind, UnitState};

/// How a shutdown goes through the units.
///
/// # Examples
///
/// ```
/// use supervisor::{ShutdownOrder, Supervisor};
///
/// let builder = Supervisor::builder().shutdown_order(ShutdownOrder::Concurrent);
/// # let _ = builder;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ShutdownOrder {
    /// The most recently started unit first, each fully stopped before the
    /// next is asked: a unit never outlives one it was started after, so a
    /// unit may rely on those registered before it until it has stopped.
    /// The shutdown takes as long as the units' stops added up.
    #[default]
    Sequential,
    /// Every unit asked at once (in reverse start order), all winding down
    /// together, each within its own grace period: the shutdown takes as
    /// long as the slowest stop. For units that do not depend on each other.
    Concurrent,
}

/// How one unit's stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StopOutcome {
    /// It ended within its grace period.
    Graceful,
    /// It had to be aborted (a task) or killed with `SIGKILL` (a process).
    Forced,
    /// It was not running (stopped, exited or failed before the shutdown).
    NotRunning,
}

/// One unit's line in a [`ShutdownReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UnitReport {
    /// The unit's name.
    pub name: String,
    /// Task or process.
    #[serde(rename = "type")]
    pub kind: UnitKind,
    /// The unit's state when the shutdown reached it.
    pub state: UnitState,
    /// How the stop went.
    pub outcome: StopOutcome,
    /// How long the stop took.
    #[serde(serialize_with = "seconds")]
    pub took: Duration,
}

/// What a shutdown did, unit by unit, in the order the units were stopped
/// (the reverse of their start order).
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
///     .task(TaskSpec::new("polite", |ctx: supervisor::Context| async move { ctx.cancelled().await }))
///     .task(TaskSpec::new("stubborn", |_ctx| std::future::pending::<()>())
///         .stop_timeout(Duration::from_millis(10)))
///     .build()?
///     .start();
/// # while handle.statuses().iter().any(|unit| unit.state != supervisor::UnitState::Running) {
/// #     tokio::task::yield_now().await;
/// # }
/// let report = handle.shutdown().await;
/// assert_eq!(report.units[0].name, "stubborn");
/// assert_eq!(report.units[0].outcome, StopOutcome::Forced);
/// assert_eq!(report.units[1].outcome, StopOutcome::Graceful);
/// assert!(!report.is_clean());
/// assert_eq!(report.exit_code(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Every unit, in stop order.
    pub units: Vec<UnitReport>,
    /// How long the whole shutdown took.
    #[serde(serialize_with = "seconds")]
    pub took: Duration,
}

impl ShutdownReport {
    /// The units that had to be aborted or killed.
    pub fn forced(&self) -> impl Iterator<Item = &UnitReport> {
        self.units.iter().filter(|unit| unit.outcome == StopOutcome::Forced)
    }

    /// The units the supervisor had given up on before the shutdown.
    pub fn failed(&self) -> impl Iterator<Item = &UnitReport> {
        self.units.iter().filter(|unit| unit.state == UnitState::Failed)
    }

    /// Whether every unit stopped within its grace period and none had been
    /// given up on.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.forced().next().is_none() && self.failed().next().is_none()
    }

    /// `0` for a clean shutdown, `1` otherwise: what a `main` should exit with.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        i32::from(!self.is_clean())
    }
}

impl From<&ShutdownReport> for ExitCode {
    fn from(report: &ShutdownReport) -> Self {
        if report.is_clean() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
    }
}

/// A table: one line per unit, then the total.
impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.units.iter().map(|unit| unit.name.len()).max().unwrap_or(4).max(4);
        writeln!(f, "{:width$}  {:7}  {:8}  {:11}  took", "unit", "type", "state", "stop")?;
        for unit in &self.units {
            let kind = match unit.kind {
                UnitKind::Task => "task",
                UnitKind::Process => "process",
            };
            let outcome = match (unit.outcome, unit.kind) {
                (StopOutcome::Graceful, _) => "graceful",
                (StopOutcome::Forced, UnitKind::Task) => "aborted",
                (StopOutcome::Forced, UnitKind::Process) => "killed",
                (StopOutcome::NotRunning, _) => "not running",
            };
            writeln!(f, "{:width$}  {kind:7}  {:8}  {outcome:11}  {:?}", unit.name, unit.state.as_str(), unit.took)?;
        }
        write!(f, "shutdown took {:?}", self.took)
    }
}

fn seconds<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// Stops the unit's loop, if it has one, and waits for it. The caller holds
/// the unit's control (see `control`).
///
/// A task is asked through its context and aborted after its grace period
/// (or at once when `kill_now` fires); a process's loop signals its group and
/// kills it after the grace period by itself.
pub(crate) async fn stop_locked(shared: &Shared, unit: &Unit) -> Option<Ending> {
    let asked = ask_to_stop(unit);
    wait_stopped(shared, unit, asked.activation?, &mut Grace::new(shared), asked.at).await
}

/// Takes the unit's activation and cancels it. The caller holds `control`.
fn ask_to_stop(unit: &Unit) -> StopAsked {
    let asked = unit.take_activation();
    if let Some(activation) = &asked.activation {
        activation.stop.cancel();
    }
    asked
}

/// The timers of a task's grace period. A shutdown reuses one for all its
/// units, and moves its timer only when a unit's deadline comes before the
/// one it is set for: stopping a unit that ends at once then touches no
/// timer at all, where arming one per unit would wake the runtime's timer
/// driver every time.
pub(crate) struct Grace<'a> {
    timer: Pin<Box<Sleep>>,
    /// What `timer` is set for; `None` before first use.
    armed_for: Option<Instant>,
    kill_now: Pin<Box<WaitForCancellationFuture<'a>>>,
}

impl<'a> Grace<'a> {
    pub(crate) fn new(shared: &'a Shared) -> Self {
        Grace {
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed_for: None,
            kill_now: Box::pin(shared.kill_now.cancelled()),
        }
    }

    /// Completes when a grace period of `timeout` from `began` runs out, or
    /// at once when `kill_now` fires.
    async fn run_out(&mut self, began: Instant, timeout: Duration) {
        // A timeout too long to add up is as good as never.
        let deadline = began.checked_add(timeout).unwrap_or_else(|| began + Duration::from_secs(100 * 365 * 24 * 3600));
        loop {
            if self.armed_for.is_none_or(|armed| armed > deadline) {
                self.timer.as_mut().reset(deadline);
                self.armed_for = Some(deadline);
            }
            tokio::select! {
                () = self.timer.as_mut() => {}
                () = self.kill_now.as_mut() => return,
            }
            // The timer was set for an earlier unit's deadline.
            if Instant::now() >= deadline {
                return;
            }
            self.armed_for = None;
        }
    }
}

/// Waits for a unit asked to stop at `began` to end: a task is aborted when
/// its grace period runs out; a process's loop kills it by itself.
async fn wait_stopped(
    shared: &Shared,
    unit: &Unit,
    activation: Activation,
    grace: &mut Grace<'_>,
    began: Instant,
) -> Option<Ending> {
    let Activation { stop: _, mut task } = activation;
    if unit.kind() == UnitKind::Task {
        let graceful = tokio::select! {
            biased;
            joined = &mut task => Some(joined),
            () = grace.run_out(began, unit.stop_timeout()) => None,
        };
        let joined = match graceful {
            Some(joined) => joined,
            None => {
                task.abort();
                match task.await {
                    // It finished between the timeout and the abort.
                    Ok(ending) => Ok(ending),
                    // Cancelled, or a panic while its future was dropped:
                    // either way the run is gone.
                    Err(_) => return Some(mark_aborted(shared, unit)),
                }
            }
        };
        return joined_ending(unit, joined);
    }
    joined_ending(unit, task.await)
}

fn joined_ending(unit: &Unit, joined: Result<Ending, tokio::task::JoinError>) -> Option<Ending> {
    match joined {
        Ok(ending) => Some(ending),
        Err(error) => {
            // Only a bug in the loop itself, or a runtime going away, gets here.
            tracing::error!(unit = %unit.name, %error, "unit loop ended abnormally");
            None
        }
    }
}

/// Shuts down unless a shutdown has already run; every caller gets the one
/// report.
pub(crate) async fn shut_down_once(shared: &Arc<Shared>) -> &ShutdownReport {
    shared.report.get_or_init(|| shutdown_on_worker(shared.clone())).await
}

/// Runs [`shutdown`] in a task of its own. A caller outside the runtime's
/// workers (a `#[tokio::main]` body runs in `block_on`) would otherwise hand
/// every unit's stop across threads, and a shutdown then also finishes when
/// its caller is dropped half-way.
async fn shutdown_on_worker(shared: Arc<Shared>) -> ShutdownReport {
    let worker_shared = shared.clone();
    match tokio::spawn(async move { shutdown(&worker_shared).await }).await {
        Ok(report) => report,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // The runtime is shutting down and took the task with it.
        Err(_) => shutdown(&shared).await,
    }
}

/// Stops every unit, most recently started first.
async fn shutdown(shared: &Shared) -> ShutdownReport {
    shared.begin_shutdown();
    let began = Instant::now();
    let deadline = shared.shutdown_timeout.map(|timeout| {
        let kill_now = shared.kill_now.clone();
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            tracing::warn!(?timeout, "shutdown timeout reached: killing what is left");
            kill_now.cancel();
        })
    });
    let mut order: Vec<&Unit> = shared.units.iter().collect();
    order.sort_by_key(|unit| std::cmp::Reverse(unit.start_seq()));
    let mut grace = Grace::new(shared);
    let mut units = Vec::with_capacity(order.len());
    match shared.shutdown_order {
        ShutdownOrder::Sequential => {
            for unit in order {
                let asked = ask_for_shutdown(shared, unit).await;
                units.push(asked.stopped(shared, &mut grace).await);
            }
        }
        // Every unit is asked first, then each is waited for in turn: the
        // others wind down meanwhile, and each deadline counts from its ask.
        ShutdownOrder::Concurrent => {
            let mut asked = Vec::with_capacity(order.len());
            for unit in order {
                asked.push(ask_for_shutdown(shared, unit).await);
            }
            for asked in asked {
                units.push(asked.stopped(shared, &mut grace).await);
            }
        }
    }
    if let Some(deadline) = deadline {
        deadline.abort();
    }
    shared.root.cancel();
    shared.shutdown_hooks.end().await;
    let report = ShutdownReport { units, took: began.elapsed() };
    tracing::info!(took = ?report.took, forced = report.forced().count(), "shutdown complete");
    report
}

/// A unit a shutdown has asked to stop, its control held until it is
/// seen stopped.
struct Asked<'a> {
    unit: &'a Unit,
    stop: StopAsked,
    _control: Control<'a>,
}

async fn ask_for_shutdown<'a>(shared: &'a Shared, unit: &'a Unit) -> Asked<'a> {
    let control = control::take(shared, unit).await;
    Asked { unit, stop: ask_to_stop(unit), _control: control }
}

impl Asked<'_> {
    async fn stopped(self, shared: &Shared, grace: &mut Grace<'_>) -> UnitReport {
        let StopAsked { state, activation, at } = self.stop;
        let ending = match activation {
            Some(activation) => wait_stopped(shared, self.unit, activation, grace, at).await,
            None => None,
        };
        let (outcome, took) = match ending {
            Some(Ending { state: UnitState::Stopped, forced: true, took }) => (StopOutcome::Forced, took),
            Some(Ending { state: UnitState::Stopped, forced: false, took }) => (StopOutcome::Graceful, took),
            _ => (StopOutcome::NotRunning, Duration::ZERO),
        };
        UnitReport { name: self.unit.name.to_string(), kind: self.unit.kind(), state, outcome, took }
    }
}

/// Waits for `SIGINT` or `SIGTERM`, then shuts down gracefully; a second
/// signal during the shutdown skips what is left of the grace periods.
pub(crate) async fn shutdown_on(handle: &SupervisorHandle, mut signals: Signals) -> ShutdownReport {
    signals.recv().await;
    tracing::info!("shutdown signal received; stopping every unit");
    let shutdown = handle.shutdown();
    tokio::pin!(shutdown);
    tokio::select! {
        report = &mut shutdown => report,
        () = signals.recv() => {
            tracing::warn!("second shutdown signal: killing what is left");
            handle.skip_grace();
            shutdown.await
        }
    }
}

impl SupervisorHandle {
    /// Waits for `SIGINT` or `SIGTERM`, then shuts down gracefully, like
    /// [`Supervisor::run`](crate::Supervisor::run): a second signal during
    /// the shutdown skips what is left of the grace periods. For a `main`
    /// that needs the handle (to serve the HTTP endpoint, say) before it
    /// waits.
    ///
    /// # Caveats
    ///
    /// The signal handlers are installed when this is called (not when the
    /// future is first polled); a signal that arrives before that gets the
    /// default action, which ends the process. `Supervisor::run` installs
    /// them before the units start.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("ticker", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// let report = handle.shutdown_on_signal().await;
    /// println!("{report}");
    /// std::process::exit(report.exit_code());
    /// # }
    /// ```
    pub fn shutdown_on_signal(&self) -> impl Future<Output = ShutdownReport> + Send + '_ {
        let signals = Signals::install();
        shutdown_on(self, signals)
    }
}

/// `SIGINT` and `SIGTERM`, installed before the units start so that none is
/// missed.
pub(crate) struct Signals {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub(crate) fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(signal) => Some(signal),
            Err(error) => {
                tracing::error!(%error, "cannot listen for {name}; it will not shut the supervisor down");
                None
            }
        };
        Signals {
            interrupt: install(SignalKind::interrupt(), "SIGINT"),
            terminate: install(SignalKind::terminate(), "SIGTERM"),
        }
    }

    /// Waits for the next `SIGINT` or `SIGTERM`; for ever if neither could
    /// be installed.
    pub(crate) async fn recv(&mut self) {
        async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
            match signal {
                Some(signal) => {
                    if signal.recv().await.is_none() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            () = next(&mut self.interrupt) => {}
            () = next(&mut self.terminate) => {}
        }
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals").finish_non_exhaustive()
    }
}
