//! How a unit's record changes as its runs begin, end and stop, and
//! whether a restart is still due: steps taken under the record's lock, by
//! the owner of the unit's group alone.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::spec::policy::RestartPolicy;
use crate::tree::timers::TimerKey;
use crate::tree::unit::{LastExit, Record, RunEnd, RunHandle, Stop, Unit, address};
use crate::{ExitReason, UnitState};

/// The handle of a run that has ended, taken out of `record`, with what
/// only a running run has (its pid, its readiness).
pub(crate) fn take_run(record: &mut Record) -> Option<RunHandle> {
    record.pid = None;
    record.ready = false;
    record.clear_not_ready();
    record.run.take()
}

/// Whether the restart of `unit`'s run `epoch` is to happen now: the unit
/// is still in that backoff, and its restarts are not paused (if they are,
/// it is held for the resume). If so, counts it toward the unit's limit
/// when its policy decided it (`by_policy`, or decided before a strategy
/// took it over), not when it comes with a sibling's.
pub(crate) fn due_restart(
    record: &mut Record,
    policy: &RestartPolicy,
    epoch: u32,
    by_policy: bool,
    now: Instant,
) -> bool {
    if record.epoch != epoch || record.state != UnitState::Backoff {
        return false;
    }
    record.held = record.paused;
    if record.paused {
        record.policy_restart |= by_policy;
        return false;
    }
    if std::mem::take(&mut record.policy_restart) || by_policy {
        record.tracker.record_restart(policy, now);
    }
    record.restarts_total += 1;
    true
}

/// A restart the group's intensity counts before it happens: the one
/// decided after `unit`'s run `epoch`.
pub(crate) struct PendingRestart {
    pub(crate) unit: Arc<Unit>,
    pub(crate) epoch: u32,
}

impl PendingRestart {
    /// Whether it is still to come: the unit waits for it, in `Backoff`
    /// (held there while restarts are paused). Stopped, started or removed
    /// by hand meanwhile, it is not.
    pub(crate) fn to_come(&self) -> bool {
        let record = self.unit.record();
        record.epoch == self.epoch && record.state == UnitState::Backoff
    }
}

impl PartialEq for PendingRestart {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.unit, &other.unit) && self.epoch == other.epoch
    }
}

impl Eq for PendingRestart {}

impl std::hash::Hash for PendingRestart {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (address(&self.unit), self.epoch).hash(state);
    }
}

/// A stop that ended, as recorded.
pub(crate) struct Settled {
    /// Aborted or killed after its grace period.
    pub(crate) forced: bool,
    pub(crate) took: Duration,
    /// Its own grace period's timer, if it had one.
    pub(crate) abort_timer: Option<TimerKey>,
}

/// A run asked to stop has ended: records it `Stopped`, and how.
pub(crate) fn settle_stop(record: &mut Record, stop: Stop, end: RunEnd, now: Instant) -> Settled {
    let (reason, forced) = match end {
        RunEnd::Exited(reason) => (Some(reason), stop.aborted),
        RunEnd::Stopped { reason, forced } => (Some(reason), forced),
        // Asked to stop while it was being stopped for its failure: it ends
        // as asked, with what the process answered.
        RunEnd::Judged { exit, forced, .. } => (Some(exit), forced || stop.aborted),
        RunEnd::Aborted => (None, true),
    };
    record.state = UnitState::Stopped;
    match &reason {
        Some(reason) => record_stop(record, reason),
        None => record_no_exit(record),
    }
    Settled { forced, took: now.saturating_duration_since(stop.asked), abort_timer: stop.abort_timer }
}

/// Makes the unit's record ready for a new run: its epoch, `Starting`.
/// Returns the run's epoch and the unit's restart count.
pub(crate) fn begin_run(record: &mut Record) -> (u32, u32) {
    record.epoch = record.epoch.wrapping_add(1);
    record.state = UnitState::Starting;
    record.stop = None;
    // A restart held while paused, or decided, was for a run before this one.
    record.held = false;
    record.policy_restart = false;
    record.ready = false;
    record.ready_in_run = false;
    // "fatal: disk full" of the run before would read as this run's.
    record.clear_run_notes();
    (record.epoch, record.tracker.restarts())
}

/// Drops a task's run, as far as its thread lets it.
pub(crate) fn abort(record: &mut Record) {
    if let Some(stop) = &mut record.stop {
        stop.aborted = true;
    }
    if let Some(abort) = record.run.as_ref().and_then(|run| run.abort.as_ref()) {
        abort.abort();
    }
}

/// Records how a run that nobody asked to stop ended (see `record_exit`).
/// Returns the reason its policy and its event go by, and whether the run
/// was dropped with its runtime (an end with no reason of its own).
pub(crate) fn record_end(record: &mut Record, end: RunEnd) -> (ExitReason, bool) {
    match end {
        RunEnd::Exited(reason) | RunEnd::Stopped { reason, .. } => {
            record_exit(record, &reason);
            (reason, false)
        }
        RunEnd::Judged { failure, exit, .. } => {
            record_exit(record, &failure);
            // The failure is why it ended; how the process ended (the exit
            // code or the signal of its answer to the stop) is its own.
            record.last_exit = LastExit::of(&exit);
            (failure, false)
        }
        RunEnd::Aborted => {
            let reason = ExitReason::Error("the run was dropped before it ended, with its runtime".to_owned());
            record_exit(record, &reason);
            (reason, true)
        }
    }
}

/// Records how the last run ended: its exit code or signal, and its error
/// as `last_error` if it failed (a run that did not fail leaves none).
pub(crate) fn record_exit(record: &mut Record, reason: &ExitReason) {
    record.last_exit = LastExit::of(reason);
    set_last_error(record, reason.error_message());
}

/// Like `record_exit`, for a run that a requested stop ended: it keeps its
/// exit code or signal (a process's answer to the stop signal, or the
/// `SIGKILL` after the timeout), but that is no failure. Only a panic is
/// kept as the run's error: a bug, stopping or not.
pub(crate) fn record_stop(record: &mut Record, reason: &ExitReason) {
    record.last_exit = LastExit::of(reason);
    let panic = if matches!(reason, ExitReason::Panic(_)) { reason.error_message() } else { None };
    set_last_error(record, panic);
}

/// Like `record_stop`, for a run that a requested stop ended with no exit
/// of its own (an aborted task, or one left behind): it has no exit code,
/// and no error; what the run before it left is not its own.
pub(crate) fn record_no_exit(record: &mut Record) {
    record.last_exit = None;
    set_last_error(record, None);
}

fn set_last_error(record: &mut Record, error: Option<String>) {
    match error {
        Some(error) => record.notes().last_error = Some(error.into_boxed_str()),
        // No notes are made only to say there is no error.
        None => {
            if let Some(notes) = &mut record.notes {
                notes.last_error = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::build::idle_unit;

    /// Every run that ends has an exit code or a signal (a task's is 0 or
    /// 1): recording it, or a stop, must not make the notes kept for rarer
    /// things, which would cost each of 10k stopped units a block.
    #[test]
    fn a_run_that_ends_cleanly_keeps_its_exit_without_notes() {
        let unit = idle_unit("job");
        let mut record = unit.record();
        record_exit(&mut record, &ExitReason::Success);
        assert!(matches!(record.last_exit, Some(LastExit::Code(0))));
        record_stop(&mut record, &ExitReason::Signal(15));
        assert!(matches!(record.last_exit, Some(LastExit::Signal(15))));
        assert!(record.notes.is_none(), "notes made for an exit");
        record_exit(&mut record, &ExitReason::Error("boom".to_owned()));
        assert!(matches!(record.last_exit, Some(LastExit::Code(1))));
        assert_eq!(record.notes.as_ref().and_then(|notes| notes.last_error.as_deref()), Some("boom"));
    }

    /// `last_error` is why the last run failed: a later run that succeeds,
    /// or a stop that was asked for, leaves none; a panic while stopping is
    /// kept.
    #[test]
    fn only_a_failed_last_run_leaves_an_error() {
        let unit = idle_unit("job");
        let mut record = unit.record();
        let error = |record: &Record| record.notes.as_ref().and_then(|notes| notes.last_error.clone());
        record_exit(&mut record, &ExitReason::Code(1));
        assert_eq!(error(&record).as_deref(), Some("exited with code 1"));
        record_exit(&mut record, &ExitReason::SuccessCode(143));
        assert_eq!(error(&record), None);
        record_exit(&mut record, &ExitReason::Code(2));
        record_stop(&mut record, &ExitReason::Code(143));
        assert!(matches!(record.last_exit, Some(LastExit::Code(143))));
        assert_eq!(error(&record), None, "a process's answer to its stop signal is no failure");
        record_stop(&mut record, &ExitReason::Panic("boom".to_owned()));
        assert!(error(&record).is_some_and(|error| error.contains("boom")));
    }

    /// A run stopped for its failure (a liveness probe, a watchdog) keeps
    /// both: the failure as its reason and error, the process's answer to
    /// the stop as its exit.
    #[test]
    fn a_judged_run_keeps_its_failure_and_its_exit() {
        let unit = idle_unit("job");
        let mut record = unit.record();
        let end = RunEnd::Judged { failure: ExitReason::Hung, exit: ExitReason::Signal(15), forced: false };
        let (reason, dropped) = record_end(&mut record, end);
        assert_eq!((reason, dropped), (ExitReason::Hung, false));
        assert!(matches!(record.last_exit, Some(LastExit::Signal(15))));
        let error = record.notes.as_ref().and_then(|notes| notes.last_error.as_deref());
        assert!(error.is_some_and(|error| error.contains("hung")), "{error:?}");
    }
}
