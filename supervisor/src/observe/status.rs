//! Point-in-time snapshots of a unit: [`UnitStatus`], [`UnitState`], [`UnitKind`].

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

/// What a unit runs.
///
/// Serialised as `"task"`, `"process"` or `"group"` (under the JSON key
/// `type`).
///
/// More kinds may be added: a `match` on it needs a
/// `_` arm.
///
/// # Examples
///
/// ```
/// use supervisor::UnitKind;
///
/// fn noun(kind: UnitKind) -> &'static str {
///     match kind {
///         UnitKind::Task => "task",
///         UnitKind::Process => "process",
///         _ => "unit",
///     }
/// }
/// assert_eq!(noun(UnitKind::Process), "process");
/// assert_eq!(serde_json::to_string(&UnitKind::Task).unwrap(), r#""task""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum UnitKind {
    /// An async task ([`TaskSpec`](crate::TaskSpec)).
    Task,
    /// An external OS process ([`DaemonSpec`](crate::DaemonSpec)).
    Process,
    /// A group of units ([`GroupSpec`](crate::GroupSpec)).
    Group,
}

impl UnitKind {
    /// The lowercase name used in JSON and logs.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(supervisor::UnitKind::Group.as_str(), "group");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Task => "task",
            UnitKind::Process => "process",
            UnitKind::Group => "group",
        }
    }
}

/// Where a unit is in its life.
///
/// ```text
///            +--------------------------------------------+
///            v                                            |
/// Starting -> Running -> (run ends) -> Backoff -(delay)---+
///                |                  \-> Exited   (policy does not restart this ending)
///                |                  \-> Failed   (restart limit or window reached)
///                +-> Stopping -> Stopped          (stop_unit, restart, shutdown)
/// ```
///
/// # Examples
///
/// ```
/// use supervisor::UnitState;
///
/// assert!(UnitState::Backoff.is_active());
/// assert!(!UnitState::Failed.is_active());
/// assert_eq!(UnitState::Running.to_string(), "running");
/// ```
///
/// More states may be added: a `match` on it needs a `_` arm.
///
/// ```
/// use supervisor::UnitState;
///
/// fn symbol(state: UnitState) -> char {
///     match state {
///         UnitState::Running => '+',
///         UnitState::Failed => '!',
///         UnitState::Stopped | UnitState::Exited => '-',
///         _ => '~', // starting, backoff, stopping, and any state added later
///     }
/// }
/// assert_eq!(symbol(UnitState::Backoff), '~');
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum UnitState {
    /// Waiting for the units it depends on to be ready before it starts.
    Waiting,
    /// A run is being started (a process being spawned).
    Starting,
    /// A run is in progress.
    Running,
    /// The last run ended; waiting out the restart delay.
    Backoff,
    /// A stop was asked for; waiting for the run to end.
    Stopping,
    /// Stopped on request (`stop_unit`, `shutdown`), with its group (stopped,
    /// or given up on its intensity), or never started.
    Stopped,
    /// Ended, and the policy does not restart this ending.
    Exited,
    /// The supervisor gave up: the restart limit or window was reached, or
    /// a run failed while its group ended (stopped, given up, shut down),
    /// and no restart comes. A failure its policy lets rest
    /// (`RestartOn::Never`) is `Exited`.
    Failed,
}

impl UnitState {
    /// Whether the unit is in a run, between runs or about to start one
    /// (waiting for its dependencies, starting, running, in backoff or
    /// stopping), as opposed to at rest.
    ///
    /// ```
    /// use supervisor::UnitState;
    ///
    /// assert!(UnitState::Waiting.is_active());
    /// assert!(UnitState::Running.is_active());
    /// assert!(UnitState::Stopping.is_active());
    /// for at_rest in [UnitState::Stopped, UnitState::Exited, UnitState::Failed] {
    ///     assert!(!at_rest.is_active());
    /// }
    /// ```
    #[must_use]
    pub fn is_active(self) -> bool {
        matches!(
            self,
            UnitState::Waiting | UnitState::Starting | UnitState::Running | UnitState::Backoff | UnitState::Stopping
        )
    }

    /// The lowercase name used in JSON and logs; `Display` writes the same.
    ///
    /// ```
    /// use supervisor::UnitState;
    ///
    /// assert_eq!(UnitState::Backoff.as_str(), "backoff");
    /// assert_eq!(serde_json::to_string(&UnitState::Backoff).unwrap(), r#""backoff""#);
    /// assert_eq!(format!("[{:>8}]", UnitState::Failed), "[  failed]");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            UnitState::Waiting => "waiting",
            UnitState::Starting => "starting",
            UnitState::Running => "running",
            UnitState::Backoff => "backoff",
            UnitState::Stopping => "stopping",
            UnitState::Stopped => "stopped",
            UnitState::Exited => "exited",
            UnitState::Failed => "failed",
        }
    }
}

impl fmt::Display for UnitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A snapshot of one unit, as returned by
/// [`SupervisorHandle::status`](crate::SupervisorHandle::status).
///
/// Serialises to camelCase JSON: `kind` under the key `type`, `lastStart` as an
/// RFC 3339 timestamp, `uptime` as a number of seconds.
///
/// Only the supervisor makes one; read its public fields. Fields may be added,
/// so it cannot be built or destructured field by field outside this crate
/// (write `let UnitStatus { name, state, .. } = status;`).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), supervisor::Error> {
/// use supervisor::{Supervisor, TaskSpec, UnitKind};
///
/// let handle = Supervisor::builder()
///     .task(TaskSpec::new("ticker", |ctx: supervisor::Context| async move { ctx.cancelled().await }))
///     .build()?
///     .start();
/// let status = handle.status("ticker").expect("registered");
/// assert_eq!(status.kind, UnitKind::Task);
/// let json = serde_json::to_value(&status).unwrap();
/// assert_eq!(json["type"], "task");
/// assert_eq!(json["restartCount"], 0);
/// assert_eq!(json["restartsTotal"], 0);
/// handle.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UnitStatus {
    /// The unit's path: its name after its groups' (`"storage/db"`).
    pub name: String,
    /// Task, process or group.
    #[serde(rename = "type")]
    pub kind: UnitKind,
    /// Where the unit is in its life.
    pub state: UnitState,
    /// Whether a run is in progress (`Running` or `Stopping`; for a group,
    /// while it supervises its units).
    pub running: bool,
    /// The process ID of the current run (processes only).
    pub pid: Option<u32>,
    /// Restarts its policy performed since the unit was (re)started by hand.
    pub restart_count: u32,
    /// Restarts performed since the supervisor started, by its policy or
    /// by its group's strategy (a sibling's failure), including before a
    /// manual restart or start; never decreases. A restart of its whole
    /// group, by the group's own policy, counts for the group, not for its
    /// units.
    pub restarts_total: u64,
    /// Whether its restarts are paused
    /// ([`pause_restarts`](crate::SupervisorHandle::pause_restarts)).
    pub restarts_paused: bool,
    /// Whether the unit is ready (see [`Readiness`](crate::Readiness); by
    /// default, once it runs). A group is ready when every unit of it that
    /// should run is ready. A [`Readiness::Completed`](crate::Readiness::Completed)
    /// job is ready once a run of it ended well and its policy let it rest,
    /// and stays so at rest. Readiness gates `depends_on`, `/readyz` and
    /// `wait_ready`.
    pub ready: bool,
    /// Whether it keeps its group, and the supervisor's readiness
    /// (`/readyz`), from being ready: it should run and is not ready
    /// (waiting, starting, running but not ready yet, waiting to restart,
    /// given up, being stopped to start again), or it is a one-shot job
    /// ([`Readiness::Completed`](crate::Readiness::Completed)) that ended
    /// without completing. A unit stopped on request, one that its policy
    /// let end, and the units of a group at rest (stopped, ended or given
    /// up) do not.
    pub holds_back_readiness: bool,
    /// Why it is not ready, when something says so: what a `Waiting` unit
    /// waits for ("waiting for `storage/db` (not ready: ...)"), or what its
    /// readiness check said: its last error, or, once it passes, how far
    /// it is from the successes in a row it needs ("passed 1 of the 3
    /// attempts in a row it needs").
    pub not_ready: Option<String>,
    /// What the current run (or, between runs, the last one) said of
    /// itself last: a process's `STATUS=` line, sent over the notify
    /// protocol. A new run starts without one.
    pub status_text: Option<String>,
    /// When the current or last run started.
    #[serde(serialize_with = "rfc3339")]
    pub last_start: Option<SystemTime>,
    /// How long the current run has lasted; `None` when not running.
    #[serde(serialize_with = "seconds")]
    pub uptime: Option<Duration>,
    /// Exit code of the last run: a process's code; `0` or `1` for a task that
    /// returned `Ok`/`()` or `Err`; `None` for a task aborted (or left
    /// behind) when it did not stop within its stop timeout.
    pub exit_code: Option<i32>,
    /// The signal that ended the last run of a process.
    pub signal: Option<i32>,
    /// Why the last run failed: the task's error, the panic message, how a
    /// process ended, or why it could not be spawned. `None` once a run has
    /// succeeded, or ended on a stop that was asked for (unless it
    /// panicked). A message over 64 KiB is cut, with a note of how many
    /// bytes were left out, here as in the events and the logs; a task's
    /// error is cut as its `Display` writes it, which is not read past
    /// 16 MiB (the note then says "at least").
    pub last_error: Option<String>,
}

/// The time as RFC 3339, or `null` if no RFC 3339 time says it: a wall
/// clock set before 1970 (the formatter panics there) or past the year
/// 9999 (it fails, and so would the whole status).
fn rfc3339<S: Serializer>(time: &Option<SystemTime>, serializer: S) -> Result<S::Ok, S::Error> {
    // 10000-01-01T00:00:00Z.
    const PAST_RFC3339: Duration = Duration::from_secs(253_402_300_800);
    let since_epoch = time.and_then(|time| time.duration_since(SystemTime::UNIX_EPOCH).ok());
    match (time, since_epoch) {
        (Some(time), Some(since)) if since < PAST_RFC3339 => {
            serializer.collect_str(&humantime::format_rfc3339_millis(*time))
        }
        _ => serializer.serialize_none(),
    }
}

fn seconds<S: Serializer>(duration: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => serializer.serialize_f64(duration.as_secs_f64()),
        None => serializer.serialize_none(),
    }
}

impl fmt::Display for UnitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct At(#[serde(serialize_with = "rfc3339")] Option<SystemTime>);

    fn json(time: Option<SystemTime>) -> String {
        serde_json::to_string(&At(time)).expect("a time always serialises")
    }

    /// A wall clock set before 1970, or far in the future, made the status
    /// JSON panic (the formatter's `expect`) or fail as a whole.
    #[test]
    fn a_start_time_no_rfc3339_time_says_is_null() {
        let epoch = SystemTime::UNIX_EPOCH;
        assert_eq!(json(Some(epoch + Duration::from_millis(1500))), r#""1970-01-01T00:00:01.500Z""#);
        assert_eq!(json(Some(epoch + Duration::from_secs(253_402_300_799))), r#""9999-12-31T23:59:59.000Z""#);
        assert_eq!(json(epoch.checked_sub(Duration::from_secs(1))), "null");
        assert_eq!(json(Some(epoch + Duration::from_secs(253_402_300_800))), "null");
        assert_eq!(json(None), "null");
    }
}
