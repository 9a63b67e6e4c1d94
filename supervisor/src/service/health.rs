//! Health: user checks, and the liveness and readiness verdicts computed
//! from them and from the units' states ([`HealthReport`]).
//!
//! Nothing here runs in the background: a report is computed when it is
//! asked for, from the units' current states and a fresh run of every check.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::observe::event::bounded_text;
use crate::spec::guarded::Guarded;
use crate::{Error, SupervisorBuilder, SupervisorHandle, UnitKind, UnitState, UnitStatus};

/// How long a health check may take before it counts as failed.
pub const DEFAULT_HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The check timeouts allowed.
const TIMEOUT_RANGE: std::ops::RangeInclusive<Duration> = Duration::from_millis(1)..=Duration::from_secs(3600);

type BoxedCheck = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type CheckFn = Arc<Guarded<Box<dyn Fn() -> BoxedCheck + Send + Sync>>>;

/// One registered check.
#[derive(Clone)]
struct Check {
    name: Arc<str>,
    run: CheckFn,
    /// Its run in progress, or its last one: concurrent asks share a run,
    /// and a run that overruns is not started again until it has ended.
    flight: Arc<Mutex<Option<Flight>>>,
}

/// One run of a check, on a thread of its own.
#[derive(Clone)]
struct Flight {
    started: Instant,
    /// `None` until the run has ended.
    outcome: watch::Receiver<Option<Result<(), String>>>,
}

impl Check {
    fn new<F, Fut, E>(name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + 'static,
    {
        let run: CheckFn = Arc::new(Guarded::new(Box::new(move || {
            let future = check();
            // Bounded as a unit's error is: the message is kept with the
            // run and sent twice in every report (its check and a reason),
            // so a 16 MiB error made each probe's answer 32 MiB.
            Box::pin(async move { future.await.map_err(|error| bounded_text(error.to_string())) })
        })));
        Check { name: name.into().into(), run, flight: Arc::default() }
    }

    /// Runs the check, or joins its run in progress, and judges it against
    /// `timeout`, counted from when the run started.
    async fn report(&self, timeout: Duration) -> CheckReport {
        let flight = {
            let mut flight = self.flight.lock().unwrap_or_else(PoisonError::into_inner);
            match &*flight {
                Some(running) if running.outcome.borrow().is_none() => running.clone(),
                _ => flight.insert(self.launch(timeout)).clone(),
            }
        };
        // Only a timeout that build() refuses could overflow.
        let deadline = flight.started.checked_add(timeout).unwrap_or(flight.started);
        let mut outcome = flight.outcome.clone();
        let error = if Instant::now() >= deadline {
            Some(format!(
                "timed out after {timeout:?}; its run started {:?} ago is still running",
                millis(flight.started.elapsed())
            ))
        } else {
            match tokio::time::timeout_at(deadline, outcome.wait_for(Option::is_some)).await {
                Ok(Ok(outcome)) => outcome.clone().and_then(Result::err),
                Ok(Err(_)) => Some("the check ended without an answer".to_owned()),
                Err(_) => Some(format!("timed out after {timeout:?}")),
            }
        };
        let took = flight.started.elapsed();
        CheckReport { name: self.name.to_string(), ok: error.is_none(), error, took }
    }

    /// The check, failed without a run, for `error`.
    fn failed(&self, error: &str) -> CheckReport {
        CheckReport { name: self.name.to_string(), ok: false, error: Some(error.to_owned()), took: Duration::ZERO }
    }

    /// Starts a run on a thread of its own, so that a check that blocks its
    /// thread holds up nothing but itself.
    fn launch(&self, timeout: Duration) -> Flight {
        let started = Instant::now();
        let failed = |error: String| Flight { started, outcome: watch::channel(Some(Err(error))).1 };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return failed("health checks run on a tokio runtime; there is none here".to_owned());
        };
        let (sender, outcome) = watch::channel(None);
        let run = self.run.clone();
        let spawned = std::thread::Builder::new().name("health-check".to_owned()).spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(|| {
                // The closure is called here too: it may block as well.
                runtime.block_on(async { tokio::time::timeout(timeout, run()).await })
            }));
            let result = match result {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(format!("timed out after {timeout:?}")),
                Err(payload) => {
                    // A payload whose drop panics too must not end this thread
                    // before it has answered.
                    let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
                    Err("the check panicked".to_owned())
                }
            };
            // An answer after the timeout is a failure, however it came.
            let took = started.elapsed();
            let result = match result {
                Ok(()) if took > timeout => Err(format!("timed out after {timeout:?} (it took {:?})", millis(took))),
                result => result,
            };
            sender.send_replace(Some(result));
        });
        match spawned {
            Ok(_) => Flight { started, outcome },
            Err(error) => failed(format!("cannot start a thread for the check: {error}")),
        }
    }
}

/// Runs each of `checks` concurrently, and judges it against `timeout`.
async fn report_each(checks: &[Check], timeout: Duration) -> Vec<CheckReport> {
    futures_util::future::join_all(checks.iter().map(|check| check.report(timeout))).await
}

/// `duration` to the millisecond, for messages.
fn millis(duration: Duration) -> Duration {
    Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

/// The health checks of a supervisor, how long each may take, and whether a
/// unit that gave up fails liveness.
#[derive(Default)]
pub(crate) struct Checks {
    checks: Mutex<Vec<Check>>,
    timeout: Mutex<Option<Duration>>,
    failed_units_fail_liveness: AtomicBool,
}

impl Checks {
    /// Adds `check`, replacing a check of the same name.
    fn add(&self, check: Check) {
        let mut checks = self.checks.lock().unwrap_or_else(PoisonError::into_inner);
        match checks.iter_mut().find(|existing| existing.name == check.name) {
            Some(existing) => *existing = check,
            None => checks.push(check),
        }
    }

    fn remove(&self, name: &str) -> bool {
        let mut checks = self.checks.lock().unwrap_or_else(PoisonError::into_inner);
        let before = checks.len();
        checks.retain(|check| &*check.name != name);
        checks.len() != before
    }

    fn snapshot(&self) -> Vec<Check> {
        self.checks.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn timeout(&self) -> Duration {
        self.timeout.lock().unwrap_or_else(PoisonError::into_inner).unwrap_or(DEFAULT_HEALTH_CHECK_TIMEOUT)
    }

    fn failed_units_fail_liveness(&self) -> bool {
        self.failed_units_fail_liveness.load(Ordering::Relaxed)
    }

    /// Runs every check concurrently, each on a thread of its own and under
    /// the timeout. Asked from a thread of no runtime, the checks are run
    /// and judged on `supervisor_runtime`: the timer that judges them needs
    /// one.
    async fn run_all(&self, supervisor_runtime: Option<tokio::runtime::Handle>) -> Vec<CheckReport> {
        let timeout = self.timeout();
        let checks = self.snapshot();
        if checks.is_empty() || tokio::runtime::Handle::try_current().is_ok() {
            return report_each(&checks, timeout).await;
        }
        let judged = match supervisor_runtime {
            Some(runtime) => {
                let owned = checks.clone();
                runtime.spawn(async move { report_each(&owned, timeout).await }).await.ok()
            }
            None => None,
        };
        judged.unwrap_or_else(|| {
            let error = "health checks run on a tokio runtime; the supervisor's is gone and there is none here";
            checks.iter().map(|check| check.failed(error)).collect()
        })
    }
}

impl fmt::Debug for Checks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.snapshot().into_iter().map(|check| check.name).collect();
        f.debug_struct("Checks")
            .field("names", &names)
            .field("timeout", &self.timeout())
            .field("failed_units_fail_liveness", &self.failed_units_fail_liveness())
            .finish()
    }
}

/// The verdict on the whole supervisor, as
/// [`SupervisorHandle::health`] computes it.
///
/// - **Live** while the supervisor runs (it has not finished shutting down)
///   and every check passes. By default a unit's state never makes it not
///   live: a unit waiting to restart is the supervisor doing its job. With
///   [`SupervisorBuilder::failed_units_fail_liveness`], a unit that has
///   given up ([`Failed`](UnitState::Failed)) makes it not live too, until
///   that unit is started again (one whose group waits to restart, which
///   starts it afresh, does not).
/// - **Ready** when it is live, no shutdown has begun, every check passes and
///   no unit holds readiness back ([`UnitStatus::holds_back_readiness`]):
///   every unit that should be running is running and ready, as its
///   [`Readiness`](crate::Readiness) says. A unit waiting for its
///   dependencies, starting, running but not ready yet, in
///   [`Backoff`](UnitState::Backoff) or [`Failed`](UnitState::Failed) makes
///   it not ready; a unit stopped on request ([`Stopped`](UnitState::Stopped),
///   or [`Stopping`](UnitState::Stopping) but to start again) or one whose
///   policy let it end ([`Exited`](UnitState::Exited)) does not. Every unit
///   starts not ready, so a supervisor starts not ready.
///
/// Serialises to camelCase JSON; `status` is `"ok"`, `"not-ready"` or
/// `"not-live"`, and `reasons` lists every reason it is not ready or not
/// live, not only the first.
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
///     .health_check("disk", || async { Ok::<_, std::io::Error>(()) })
///     .build()?
///     .start();
/// # while handle.status("ticker").unwrap().state != supervisor::UnitState::Running {
/// #     tokio::task::yield_now().await;
/// # }
/// let report = handle.health().await;
/// assert!(report.live && report.ready, "{:?}", report.reasons);
/// assert_eq!(report.checks[0].name, "disk");
///
/// handle.add_health_check("database", || async { Err::<(), _>("connection refused") });
/// let report = handle.health().await;
/// assert!(!report.live && !report.ready);
/// assert_eq!(report.reasons, ["check `database` failed: connection refused"]);
/// handle.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HealthReport {
    /// `"ok"`, `"not-ready"` or `"not-live"`.
    pub status: &'static str,
    /// Whether the supervisor runs and every check passes (and, when
    /// [`SupervisorBuilder::failed_units_fail_liveness`] asks for it, no unit
    /// has given up).
    pub live: bool,
    /// Whether it is live, not shutting down, and every unit that should run
    /// is running and ready.
    pub ready: bool,
    /// Every reason it is not live or not ready, in order: the supervisor
    /// first, then the checks, then the units.
    pub reasons: Vec<String>,
    /// Every check, in registration order.
    pub checks: Vec<CheckReport>,
    /// Every unit and group, depth first in registration order (a group,
    /// then its units), as [`SupervisorHandle::statuses`] lists them.
    pub units: Vec<UnitHealth>,
}

/// How one health check went.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CheckReport {
    /// The check's name.
    pub name: String,
    /// Whether it passed within its timeout.
    pub ok: bool,
    /// Why it failed: its error, a panic, or the timeout.
    pub error: Option<String>,
    /// How long it took, or how long it had run when it was judged (a check
    /// that overran its timeout is judged at the timeout).
    #[serde(serialize_with = "seconds")]
    pub took: Duration,
}

/// One unit's part in the readiness verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UnitHealth {
    /// The unit's path: its name after its groups' (`"storage/db"`).
    pub name: String,
    /// Task, process or group.
    #[serde(rename = "type")]
    pub kind: UnitKind,
    /// Its state when the report was made.
    pub state: UnitState,
    /// Whether this unit lets the supervisor be ready.
    pub ready: bool,
    /// Why it is, or is not, ready.
    pub reason: &'static str,
    /// What it waits for, or what its readiness check said, when it is not
    /// ready (see [`UnitStatus::not_ready`](crate::UnitStatus::not_ready)).
    pub detail: Option<String>,
}

/// Whether a unit lets the supervisor be ready, and why.
pub(crate) fn unit_verdict(unit: &UnitStatus) -> (bool, &'static str) {
    // The engine's own rule, as for a group's readiness.
    let ready = !unit.holds_back_readiness;
    let reason = match unit.state {
        UnitState::Running if ready => "running",
        UnitState::Running => "running, not ready yet",
        UnitState::Waiting => "not started",
        UnitState::Starting => "not running yet",
        UnitState::Backoff => "waiting to restart",
        UnitState::Failed => "gave up: restart limit reached",
        UnitState::Stopping if ready => "being stopped on request",
        UnitState::Stopping => "being stopped to start again",
        // By hand, or with its group (stopped, or between two runs).
        UnitState::Stopped => "stopped",
        UnitState::Exited if ready => "ended; its policy does not restart it",
        UnitState::Exited => "ended without completing; its policy does not run it again",
    };
    (ready, reason)
}

/// The units' part of readiness, without running any check: whether every
/// unit lets the supervisor be ready and no shutdown has begun.
pub(crate) fn units_ready(handle: &SupervisorHandle) -> bool {
    !handle.is_shutting_down() && all_ready(&handle.statuses())
}

/// Whether each of `units` lets the supervisor be ready.
pub(crate) fn all_ready(units: &[UnitStatus]) -> bool {
    units.iter().all(|unit| unit_verdict(unit).0)
}

/// Whether the supervisor still runs: no shutdown has completed and not every
/// handle has been dropped.
pub(crate) fn is_running(handle: &SupervisorHandle) -> bool {
    !handle.has_ended()
}

/// Computes a full report: runs every check, then reads every unit's state.
pub(crate) async fn report(handle: &SupervisorHandle) -> HealthReport {
    let settings = handle.extension::<Checks>();
    let checks = settings.run_all(handle.runtime()).await;
    let units: Vec<UnitHealth> = handle
        .statuses()
        .into_iter()
        .map(|unit| {
            let (ready, reason) = unit_verdict(&unit);
            let detail = if ready { None } else { unit.not_ready };
            UnitHealth { name: unit.name, kind: unit.kind, state: unit.state, ready, reason, detail }
        })
        .collect();
    let running = is_running(handle);
    let shutting_down = handle.is_shutting_down();
    // A unit that gave up fails liveness only when asked, and only while the
    // supervisor runs on: a shutdown is no reason to restart the process.
    let failed_fails_liveness = settings.failed_units_fail_liveness() && running && !shutting_down;
    let to_run_again = if failed_fails_liveness { groups_to_run_again(&units) } else { Vec::new() };
    let mut reasons = Vec::new();
    if !running {
        reasons.push("the supervisor has shut down".to_owned());
    } else if shutting_down {
        reasons.push("the supervisor is shutting down".to_owned());
    }
    for check in checks.iter().filter(|check| !check.ok) {
        reasons.push(format!("check `{}` failed: {}", check.name, check.error.as_deref().unwrap_or("unknown error")));
    }
    if running && !shutting_down {
        // A unit that gave up is named whenever it fails liveness, even where
        // it holds nothing back (its group was stopped since): a report that
        // is not live always says why.
        let fails_liveness = |unit: &UnitHealth| failed_fails_liveness && gave_up_for_good(unit, &to_run_again);
        for unit in units.iter().filter(|unit| !unit.ready || fails_liveness(unit)) {
            let liveness = if fails_liveness(unit) { "; this fails liveness" } else { "" };
            let detail = unit.detail.as_deref().map_or_else(String::new, |detail| format!(" ({detail})"));
            reasons.push(format!("unit `{}` ({}): {}{detail}{liveness}", unit.name, unit.state, unit.reason));
        }
    }
    let any_failed = failed_fails_liveness && units.iter().any(|unit| gave_up_for_good(unit, &to_run_again));
    let live = running && checks.iter().all(|check| check.ok) && !any_failed;
    let ready = live && !shutting_down && units.iter().all(|unit| unit.ready);
    let status = match (live, ready) {
        (true, true) => "ok",
        (true, false) => "not-ready",
        (false, _) => "not-live",
    };
    HealthReport { status, live, ready, reasons, checks, units }
}

/// The groups about to run again (in `Backoff`, or `Waiting` or `Starting`
/// their new run): each starts its units afresh.
fn groups_to_run_again(units: &[UnitHealth]) -> Vec<&str> {
    units
        .iter()
        .filter(|unit| {
            unit.kind == UnitKind::Group
                && matches!(unit.state, UnitState::Backoff | UnitState::Waiting | UnitState::Starting)
        })
        .map(|group| group.name.as_str())
        .collect()
}

/// Whether `unit` has given up and nothing will start it again by itself:
/// it is `Failed`, and no group above it is among `to_run_again`. One whose
/// group is about to restart it is waiting to restart, which never makes
/// the supervisor not live.
fn gave_up_for_good(unit: &UnitHealth, to_run_again: &[&str]) -> bool {
    unit.state == UnitState::Failed
        && !to_run_again.iter().any(|group| unit.name.strip_prefix(group).is_some_and(|rest| rest.starts_with('/')))
}

impl SupervisorBuilder {
    /// Adds a health check: an async fn run each time health is asked for
    /// ([`SupervisorHandle::health`], the HTTP probes, the systemd
    /// watchdog). A check that returns `Err`, panics or takes longer than
    /// the check timeout makes the supervisor not live and not ready. A check
    /// of the same name is replaced. An error's message over 64 KiB is cut,
    /// with a note of how many bytes were left out, as a unit's is.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::Supervisor;
    ///
    /// let sup = Supervisor::builder()
    ///     .health_check("disk", || async {
    ///         std::fs::metadata("/").map(|_| ())
    ///     })
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn health_check<F, Fut, E>(self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + 'static,
    {
        self.extensions.get_or_default::<Checks>().add(Check::new(name, check));
        self
    }

    /// How long each health check may take before it counts as failed
    /// (default [`DEFAULT_HEALTH_CHECK_TIMEOUT`], 5 s; between 1 ms and 1 h,
    /// else `build()` fails with [`Error::InvalidSetting`]).
    ///
    /// The timeout holds whatever a check does: each run has a thread of its
    /// own, from which it drives its future on the supervisor's runtime, so a
    /// check that blocks (a synchronous client, a lock, `std::thread::sleep`)
    /// holds up neither the probes nor any other task. A check that has not
    /// answered within the timeout has failed, and an answer that comes later
    /// counts for nothing. While a run that overran still blocks its thread,
    /// health asks fail at once rather than start another run beside it, so
    /// a check that never returns costs one thread, not one per ask; asks
    /// made while a run is in progress share it.
    ///
    /// # Caveats
    ///
    /// The check's own timers and sockets are driven by the runtime: on a
    /// current-thread runtime, by its one thread, so they wait while a task
    /// on that thread blocks it (the probes then wait as well; a blocking
    /// check alone blocks only its own thread). A check that blocks for
    /// ever keeps its thread for ever.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use std::time::Duration;
    /// use supervisor::Supervisor;
    ///
    /// let handle = Supervisor::builder()
    ///     .health_check_timeout(Duration::from_millis(100))
    ///     .health_check("stuck", || async {
    ///         std::thread::sleep(Duration::from_secs(1)); // blocks its thread
    ///         Ok::<_, std::io::Error>(())
    ///     })
    ///     .build()?
    ///     .start();
    /// let report = handle.health().await; // after 100 ms, not 1 s
    /// assert!(!report.live);
    /// assert_eq!(report.checks[0].error.as_deref(), Some("timed out after 100ms"));
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn health_check_timeout(self, timeout: Duration) -> Self {
        let checks = self.extensions.get_or_default::<Checks>();
        *checks.timeout.lock().unwrap_or_else(PoisonError::into_inner) = Some(timeout);
        // Judged at build(), on the last value set.
        self.build_step(Box::new(move || {
            let timeout = checks.timeout();
            if TIMEOUT_RANGE.contains(&timeout) {
                return Ok(None);
            }
            Err(Error::InvalidSetting {
                unit: "health checks".to_owned(),
                setting: "health_check_timeout",
                reason: format!(
                    "{timeout:?}; give a duration between {:?} and {:?}",
                    TIMEOUT_RANGE.start(),
                    TIMEOUT_RANGE.end()
                ),
            })
        }))
    }

    /// Whether a unit that has given up ([`UnitState::Failed`]: its restart
    /// limit reached) makes the supervisor not live (default `false`).
    ///
    /// By default liveness only says that the supervisor itself works: a
    /// unit that gave up makes it not ready, but `/livez` stays 200, so an
    /// orchestrator never restarts the process for it. Set this when a
    /// restart of the whole process is the remedy for a unit that gave up
    /// (Kubernetes restarts the container after its liveness probe's
    /// `failureThreshold`), and the other units may run on until then. The
    /// rule holds while the supervisor runs on, not during a shutdown, and
    /// ends once the unit is started again
    /// ([`SupervisorHandle::start_unit`], [`SupervisorHandle::restart`]).
    /// A unit in backoff, stopped or exited never fails liveness, nor one
    /// that gave up in a group waiting to restart, which starts it afresh.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{MaxRestarts, RestartPolicy, Supervisor, TaskSpec, UnitState};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("doomed", |_ctx| async { Err::<(), _>("bad config") })
    ///         .restart(RestartPolicy::new().max_restarts(MaxRestarts::AtMost(0))))
    ///     .failed_units_fail_liveness(true)
    ///     .build()?
    ///     .start();
    /// # let mut events = handle.subscribe();
    /// while handle.status("doomed").unwrap().state != UnitState::Failed {
    ///     // ... wait for it to give up (watch the events, say) ...
    /// #   let _ = events.recv().await;
    /// }
    /// let report = handle.health().await;
    /// assert!(!report.live);
    /// assert_eq!(report.reasons, ["unit `doomed` (failed): gave up: restart limit reached; this fails liveness"]);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn failed_units_fail_liveness(self, yes: bool) -> Self {
        self.extensions.get_or_default::<Checks>().failed_units_fail_liveness.store(yes, Ordering::Relaxed);
        self
    }
}

impl SupervisorHandle {
    /// Adds a health check at run time; see
    /// [`SupervisorBuilder::health_check`]. A check of the same name is
    /// replaced.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::Supervisor;
    ///
    /// let handle = Supervisor::builder().build()?.start();
    /// handle.add_health_check("db", || async { Err::<(), _>("unreachable") });
    /// let report = handle.health().await;
    /// assert!(!report.live);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn add_health_check<F, Fut, E>(&self, name: impl Into<String>, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + 'static,
    {
        self.extension::<Checks>().add(Check::new(name, check));
    }

    /// Removes a health check; `false` if there was none of that name.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::Supervisor;
    ///
    /// let handle = Supervisor::builder().build()?.start();
    /// handle.add_health_check("db", || async { Err::<(), _>("unreachable") });
    /// assert!(handle.remove_health_check("db"));
    /// assert!(!handle.remove_health_check("db"));
    /// assert!(handle.health().await.live);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn remove_health_check(&self, name: &str) -> bool {
        self.extension::<Checks>().remove(name)
    }

    /// Runs every health check (concurrently, each under its timeout) and
    /// reads every unit's state: the liveness and readiness verdicts, with
    /// every reason. See [`HealthReport`] for the rules.
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
    /// handle.stop_unit("ticker").await?;
    /// let report = handle.health().await;
    /// // Stopped on purpose: still ready.
    /// assert!(report.ready, "{:?}", report.reasons);
    /// println!("{}", serde_json::to_string_pretty(&report).unwrap());
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn health(&self) -> HealthReport {
        report(self).await
    }
}

fn seconds<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_rules() {
        let verdict = |state, holds_back_readiness: bool| {
            let status = UnitStatus {
                name: "unit".to_owned(),
                kind: UnitKind::Task,
                state,
                running: false,
                pid: None,
                restart_count: 0,
                restarts_total: 0,
                restarts_paused: false,
                ready: !holds_back_readiness,
                holds_back_readiness,
                not_ready: None,
                status_text: None,
                last_start: None,
                uptime: None,
                exit_code: None,
                signal: None,
                last_error: None,
            };
            unit_verdict(&status)
        };
        // The engine says whether a unit holds readiness back; the verdict
        // follows it, whatever the state.
        for state in [UnitState::Running, UnitState::Stopping, UnitState::Stopped, UnitState::Exited, UnitState::Failed]
        {
            assert!(verdict(state, false).0, "{state:?}");
            assert!(!verdict(state, true).0, "{state:?}");
        }
        assert_eq!(verdict(UnitState::Stopping, true).1, "being stopped to start again");
        assert_eq!(verdict(UnitState::Stopping, false).1, "being stopped on request");
        // Not "on request": its group may have stopped it, or be between runs.
        assert_eq!(verdict(UnitState::Stopped, false).1, "stopped");
        assert_eq!(verdict(UnitState::Exited, true).1, "ended without completing; its policy does not run it again");
    }
}
