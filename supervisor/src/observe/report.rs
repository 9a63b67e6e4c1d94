//! What a shutdown did: [`ShutdownReport`], a line per unit, and why the
//! supervisor ended.

use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use crate::{UnitKind, UnitState};

/// How one unit's stop went.
///
/// # Caveats
///
/// A group's own outcome tells of the group alone: it is `Graceful` once
/// its units have stopped, however they stopped. Which of them had to be
/// killed is in their own lines of a [`ShutdownReport`], and in their
/// [`Stopped`](crate::EventKind::Stopped) events (`forced`), which is where
/// to look after [`remove`](crate::SupervisorHandle::remove) of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum StopOutcome {
    /// It ended within its grace period. A unit between runs (waiting out
    /// a restart delay, or for its dependencies) has nothing to stop: it is
    /// `Stopped` at once, gracefully, in no time.
    Graceful,
    /// It had to be aborted (a task) or killed with `SIGKILL` (a process).
    Forced,
    /// It was not running when the shutdown reached it: stopped, exited or
    /// failed before the shutdown, never started (a shutdown asked as the
    /// tree starts), or ended by itself while the shutdown stopped
    /// the units after it (a run that failed so is `Failed`, and the
    /// report is not clean, unless its policy lets a failure rest).
    NotRunning,
    /// It could not be stopped: a task that blocks its thread ignores the
    /// abort, and was still running a second after the shutdown timeout.
    Abandoned,
}

/// One unit's line in a [`ShutdownReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UnitReport {
    /// The unit's path.
    pub name: String,
    /// Task, process or group.
    #[serde(rename = "type")]
    pub kind: UnitKind,
    /// The state the unit ended in: `Stopped` once stopped, or the state it
    /// was at rest in (`Exited`, `Failed`) when the shutdown reached it.
    pub state: UnitState,
    /// How the stop went.
    pub outcome: StopOutcome,
    /// How long the stop took.
    #[serde(serialize_with = "seconds")]
    pub took: Duration,
}

/// Why a supervisor ended.
///
/// # Examples
///
/// ```
/// use supervisor::ShutdownCause;
///
/// assert!(!ShutdownCause::Requested.is_failure());
/// assert_eq!(ShutdownCause::Requested.to_string(), "shutdown requested");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
#[non_exhaustive]
pub enum ShutdownCause {
    /// `shutdown()`, a signal, or every handle dropped.
    Requested,
    /// The root group gave up: more restarts than its intensity allows.
    GaveUp {
        /// Why, e.g. "more than 10 restarts within 1m".
        reason: String,
    },
    /// A critical unit of the root group ended for good.
    CriticalEnded {
        /// Its path.
        unit: String,
        /// Whether it failed (`Failed`, or an ending its policy does not
        /// restart that was a failure) rather than exited cleanly.
        failed: bool,
    },
    /// The tokio runtime it ran on was shut down (dropped) first: its
    /// units were dropped with it (tasks aborted, processes killed), not
    /// stopped gracefully.
    RuntimeDropped,
}

impl ShutdownCause {
    /// Whether the supervisor ended because something failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::ShutdownCause;
    ///
    /// assert!(!ShutdownCause::Requested.is_failure());
    /// assert!(ShutdownCause::GaveUp { reason: "too many restarts".to_owned() }.is_failure());
    /// assert!(!ShutdownCause::CriticalEnded { unit: "job".to_owned(), failed: false }.is_failure());
    /// ```
    #[must_use]
    pub fn is_failure(&self) -> bool {
        match self {
            ShutdownCause::Requested => false,
            ShutdownCause::GaveUp { .. } | ShutdownCause::RuntimeDropped => true,
            ShutdownCause::CriticalEnded { failed, .. } => *failed,
        }
    }
}

impl fmt::Display for ShutdownCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShutdownCause::Requested => f.write_str("shutdown requested"),
            ShutdownCause::GaveUp { reason } => write!(f, "the root group gave up: {reason}"),
            ShutdownCause::CriticalEnded { unit, failed: true } => write!(f, "critical unit `{unit}` failed"),
            ShutdownCause::CriticalEnded { unit, failed: false } => write!(f, "critical unit `{unit}` finished"),
            ShutdownCause::RuntimeDropped => f.write_str("its tokio runtime was shut down first"),
        }
    }
}

/// What a shutdown did, unit by unit, in the order the units were stopped
/// (the reverse of their start order, a group's units before the group),
/// and why the supervisor ended.
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
    /// Why the supervisor ended.
    pub cause: ShutdownCause,
    /// How long the whole shutdown took.
    #[serde(serialize_with = "seconds")]
    pub took: Duration,
}

impl ShutdownReport {
    /// The units that had to be aborted or killed.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use std::time::Duration;
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("polite", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .task(TaskSpec::new("stubborn", |_ctx| std::future::pending::<()>()).stop_timeout(Duration::from_millis(10)))
    ///     .build()?
    ///     .start();
    /// handle.wait_ready("polite").await?;
    /// handle.wait_ready("stubborn").await?;
    /// let report = handle.shutdown().await;
    /// let forced: Vec<&str> = report.forced().map(|unit| unit.name.as_str()).collect();
    /// assert_eq!(forced, ["stubborn"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn forced(&self) -> impl Iterator<Item = &UnitReport> {
        self.units.iter().filter(|unit| unit.outcome == StopOutcome::Forced)
    }

    /// The units the supervisor had given up on before the shutdown.
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
    ///     .build()?
    ///     .start();
    /// handle.wait_state("doomed", UnitState::Failed).await?;
    /// let report = handle.shutdown().await;
    /// assert_eq!(report.failed().next().unwrap().name, "doomed");
    /// assert!(!report.is_clean());
    /// # Ok(())
    /// # }
    /// ```
    pub fn failed(&self) -> impl Iterator<Item = &UnitReport> {
        self.units.iter().filter(|unit| unit.state == UnitState::Failed)
    }

    /// Whether the supervisor ended without a failure: every unit stopped
    /// within its grace period, none had been given up on, and the root
    /// did not give up.
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
    /// handle.wait_ready("worker").await?;
    /// let report = handle.shutdown().await;
    /// assert!(report.is_clean());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn is_clean(&self) -> bool {
        !self.cause.is_failure()
            && self.units.iter().all(|unit| !matches!(unit.outcome, StopOutcome::Forced | StopOutcome::Abandoned))
            && self.failed().next().is_none()
    }

    /// `0` for a clean end, `1` otherwise: what a `main` should exit with.
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
    /// handle.wait_ready("worker").await?;
    /// let report = handle.shutdown().await;
    /// assert_eq!(report.exit_code(), 0);
    /// # Ok(())
    /// # }
    /// ```
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
        let width = self.units.iter().map(|unit| unit.name.chars().count()).max().unwrap_or(4).max(4);
        writeln!(f, "{:width$}  {:7}  {:8}  {:11}  took", "unit", "type", "state", "stop")?;
        for unit in &self.units {
            let kind = unit.kind.as_str();
            let outcome = match (unit.outcome, unit.kind) {
                (StopOutcome::Graceful, _) => "graceful",
                (StopOutcome::Forced, UnitKind::Task) => "aborted",
                (StopOutcome::Forced, _) => "killed",
                (StopOutcome::NotRunning, _) => "not running",
                (StopOutcome::Abandoned, _) => "abandoned",
            };
            writeln!(f, "{:width$}  {kind:7}  {:8}  {outcome:11}  {:?}", unit.name, unit.state.as_str(), unit.took)?;
        }
        write!(f, "{}; shutdown took {:?}", self.cause, self.took)
    }
}

fn seconds<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up_names_beyond_ascii() {
        let line = |name: &str| UnitReport {
            name: name.to_owned(),
            kind: UnitKind::Task,
            state: UnitState::Stopped,
            outcome: StopOutcome::Graceful,
            took: Duration::ZERO,
        };
        let report = ShutdownReport {
            units: vec![line("café-crème"), line("ab")],
            cause: ShutdownCause::Requested,
            took: Duration::ZERO,
        };
        let text = report.to_string();
        // Where the second column begins, in characters, on each line.
        let columns: Vec<Option<usize>> = text
            .lines()
            .take(3)
            .map(|row| {
                row.chars()
                    .collect::<Vec<_>>()
                    .windows(4)
                    .position(|at| at == ['t', 'y', 'p', 'e'] || at == ['t', 'a', 's', 'k'])
            })
            .collect();
        assert_eq!(columns, [Some(12), Some(12), Some(12)], "{text}");
    }
}
