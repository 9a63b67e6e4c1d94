//! What every group owner and every handle of one supervisor shares: the
//! root of the tree, the event channel, the clock, the shutdown's progress
//! and, once it has ended, the report.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use smol_str::SmolStr;
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::extensions::{Extensions, ShutdownHooks};
use crate::observe::event::{Event, EventKind};
use crate::observe::report::{ShutdownCause, ShutdownReport, StopOutcome};
use crate::panics::log_contained;
use crate::tree::clock::{self, Clock};
use crate::tree::paths;
use crate::tree::unit::{Line, Unit, address};
use crate::{Error, UnitState};

/// Wakes the callers of `wait_state`/`wait_ready` when the unit each waits
/// on changes, and costs one atomic load per change of a unit nobody waits
/// on.
///
/// Waits are kept by unit: a caller waiting for one unit among ten thousand
/// starting is woken by that unit's changes only, not by every other's (each
/// wake is a hand-off between threads). And by what they want: a wait for
/// `Failed` is not woken by each restart of a unit that crashes on.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    waiting: AtomicUsize,
    /// By the address of the unit waited on.
    by_unit: Mutex<foldhash::HashMap<usize, Arc<Watchers>>>,
}

/// The waits on one unit.
#[derive(Debug, Default)]
struct Watchers {
    notify: Notify,
    /// What any of them wants, as [`Interest`] bits: those of every wait
    /// since the first, as a wait that ends leaves the others' bits set.
    wanted: AtomicU32,
}

/// What a wait is woken for: every change of its unit, or only the unit
/// being in one of some states, or ready.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Interest(u32);

impl Interest {
    /// Every change.
    pub(crate) const ANY: Interest = Interest(u32::MAX);
    const READY: u32 = 1 << 31;

    /// The unit being in `state`.
    pub(crate) fn state(state: UnitState) -> Interest {
        Interest(state_bit(state))
    }

    /// The unit being ready, or in one of `states`.
    pub(crate) fn ready_or(states: &[UnitState]) -> Interest {
        Interest(states.iter().fold(Self::READY, |bits, &state| bits | state_bit(state)))
    }

    fn covers(wanted: u32, state: UnitState, ready: bool) -> bool {
        let now = state_bit(state) | if ready { Self::READY } else { 0 };
        wanted & now != 0
    }
}

fn state_bit(state: UnitState) -> u32 {
    1 << (state as u32)
}

impl Changes {
    /// `unit` changed: wakes those waiting on it for what it is now.
    // Inlined: most changes are of units nobody waits on, and the call
    // (saving and restoring the registers the rest needs) cost more than
    // the load.
    #[inline]
    pub(crate) fn changed(&self, unit: &Unit) {
        // Read after the change was written (and its record unlocked): a
        // wait that counts itself later looks at the record later too.
        if unit.waits.load(Ordering::SeqCst) != 0 {
            self.wake_waits_on(unit);
        }
    }

    /// Wakes the waits on `unit` that its change concerns.
    #[cold]
    fn wake_waits_on(&self, unit: &Unit) {
        let waits = self.waits();
        let Some(watchers) = waits.get(&address(unit)) else { return };
        let wanted = watchers.wanted.load(Ordering::Relaxed);
        // The record is read only for a unit waited on, under the table's
        // lock: no lock is ever taken in the other order (a wait looks at
        // its unit with the table unlocked).
        let covered = wanted == Interest::ANY.0 || {
            let record = unit.record();
            Interest::covers(wanted, record.state, record.ready)
        };
        if covered {
            // Under the lock, without a clone: a wait ending meanwhile must
            // see its entry's true count to forget it.
            watchers.notify.notify_waiters();
        }
    }

    /// `unit` is gone: wakes every wait on it.
    pub(crate) fn removed(&self, unit: &Unit) {
        self.changed_around(unit);
    }

    /// What a wait on `unit` looks at beside the unit itself changed (a
    /// unit it depends on, a group above it): wakes every wait on it,
    /// whatever the unit's own state.
    pub(crate) fn changed_around(&self, unit: &Unit) {
        if unit.waits.load(Ordering::SeqCst) > 0
            && let Some(watchers) = self.waits().get(&address(unit))
        {
            watchers.notify.notify_waiters();
        }
    }

    pub(crate) fn anyone_waiting(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }

    /// What every wait looks at changed (the supervisor began or finished
    /// ending): wakes them all.
    pub(crate) fn changed_everywhere(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            for watchers in self.waits().values() {
                watchers.notify.notify_waiters();
            }
        }
    }

    /// Waits until `check` returns `Some`, checking after every change of
    /// `unit` that `interest` covers (and every change that concerns all
    /// waits: the unit's removal, the supervisor's end).
    pub(crate) async fn wait_for<T>(&self, unit: &Unit, interest: Interest, mut check: impl FnMut() -> Option<T>) -> T {
        // Most waits are over at once (a control call finds its group's
        // mailbox open): no registration for those.
        if let Some(found) = check() {
            return found;
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        unit.waits.fetch_add(1, Ordering::SeqCst);
        let key = address(unit);
        let watchers = {
            let mut waits = self.waits();
            let watchers = waits.entry(key).or_default();
            // Under the lock, before the first look: a change the look
            // misses is one this wait is woken for.
            watchers.wanted.fetch_or(interest.0, Ordering::Relaxed);
            watchers.clone()
        };
        let waiting = Waiting { changes: self, unit, key, watchers };
        loop {
            let changed = waiting.watchers.notify.notified();
            tokio::pin!(changed);
            // Listening before looking, so that a change in between is not missed.
            changed.as_mut().enable();
            if let Some(found) = check() {
                return found;
            }
            changed.await;
        }
    }

    fn waits(&self) -> MutexGuard<'_, foldhash::HashMap<usize, Arc<Watchers>>> {
        self.by_unit.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One wait: forgets the unit's entry when the last wait on it ends.
struct Waiting<'a> {
    changes: &'a Changes,
    unit: &'a Unit,
    key: usize,
    watchers: Arc<Watchers>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut waits = self.changes.waits();
        // Every clone is made under this lock: with the table's and this
        // one alone left, no other wait is on the unit.
        if Arc::strong_count(&self.watchers) == 2 {
            waits.remove(&self.key);
        }
        drop(waits);
        self.unit.waits.fetch_sub(1, Ordering::SeqCst);
        self.changes.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

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
    /// In reverse start order, the unit registered last first, each fully
    /// stopped before the next is asked: a unit may rely on those
    /// registered before it until it has stopped. A restart, by its policy
    /// or by hand, keeps a unit's place. The shutdown takes as long as the
    /// units' stops added up.
    #[default]
    Sequential,
    /// Every unit asked at once (in reverse start order), all winding down
    /// together, each within its own grace period: the shutdown takes as
    /// long as the slowest stop. A unit that others depend on is asked as
    /// soon as they have stopped (not once every unit asked before it has),
    /// so a chain of dependencies takes as long as its stops added up and
    /// holds back nothing else. `stop_unit` and `restart` stop a unit's
    /// dependents the same way.
    Concurrent,
}

/// The settings of a running supervisor.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) shutdown_order: ShutdownOrder,
    pub(crate) shutdown_timeout: Option<Duration>,
}

pub(crate) struct Shared {
    /// The root group: its units are the supervisor's top-level units.
    pub(crate) root: Arc<Unit>,
    /// The events' sender, until the supervisor ends: dropped then, so
    /// that each subscriber's stream ends (`RecvError::Closed`) once it
    /// has read what was sent.
    events: RwLock<Option<broadcast::Sender<Event>>>,
    /// Whether anyone ever subscribed to the events.
    ever_subscribed: AtomicBool,
    pub(crate) settings: Settings,
    pub(crate) clock: Clock,
    /// A seed for each group owner's random source (jitter).
    pub(crate) seed: Mutex<fastrand::Rng>,
    pub(crate) changes: Changes,
    /// Stops the root group: the shutdown.
    pub(crate) root_stop: CancellationToken,
    /// Cuts every grace period short.
    pub(crate) kill_now: CancellationToken,
    shutting_down: AtomicBool,
    cause: Mutex<Option<ShutdownCause>>,
    began: Mutex<Option<Instant>>,
    /// The report's lines so far: the units' names are copied into a
    /// caller's report (see [`Ended`]), not while the units stop one by one.
    lines: Mutex<Vec<(Arc<Unit>, Line)>>,
    report: watch::Sender<Option<Arc<Ended>>>,
    pub(crate) extensions: Extensions,
    pub(crate) shutdown_hooks: ShutdownHooks,
    /// The runtime the supervisor was started on, where its runs go (and
    /// the shutdown's timer, whichever thread begins the shutdown).
    runtime: OnceLock<tokio::runtime::Handle>,
    /// Paths of units whose state changed with no event of its own: a unit
    /// asked to stop becomes `Stopping`, and not ready, silently (its
    /// `Stopped` is the event); the root's (`""`) when the shutdown
    /// begins. Made for the first listener, the metrics publisher, which
    /// learns of every other change by an event.
    quiet: OnceLock<broadcast::Sender<SmolStr>>,
}

/// How many quiet changes a listener may fall behind by before it is told
/// it lagged (and looks at every unit).
#[cfg(feature = "metrics")]
const QUIET_CAPACITY: usize = 1024;

/// How the supervisor ended: the report, before any caller has a copy.
/// Each caller gets a report of its own, whose names are copied from the
/// units then: the report kept here copies none.
pub(crate) struct Ended {
    /// Every unit, in stop order.
    lines: Vec<(Arc<Unit>, Line)>,
    pub(crate) cause: ShutdownCause,
    pub(crate) took: Duration,
}

impl Ended {
    /// A report of its own for a caller.
    pub(crate) fn report(&self) -> ShutdownReport {
        let units = self.lines.iter().map(|(unit, line)| unit.report_line(*line)).collect();
        ShutdownReport { units, cause: self.cause.clone(), took: self.took }
    }

    /// How many units had to be aborted or killed.
    fn forced(&self) -> usize {
        self.lines.iter().filter(|(_, line)| line.outcome == StopOutcome::Forced).count()
    }
}

impl Shared {
    pub(crate) fn new(
        root: Arc<Unit>,
        settings: Settings,
        event_capacity: usize,
        seed: Option<u64>,
        extensions: Extensions,
    ) -> Self {
        let (events, _) = broadcast::channel(event_capacity);
        Shared {
            root,
            events: RwLock::new(Some(events)),
            ever_subscribed: AtomicBool::new(false),
            settings,
            clock: Clock::new(),
            seed: Mutex::new(seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed)),
            changes: Changes::default(),
            root_stop: CancellationToken::new(),
            kill_now: CancellationToken::new(),
            shutting_down: AtomicBool::new(false),
            cause: Mutex::new(None),
            began: Mutex::new(None),
            lines: Mutex::new(Vec::new()),
            report: watch::Sender::new(None),
            extensions,
            shutdown_hooks: ShutdownHooks::default(),
            runtime: OnceLock::new(),
            quiet: OnceLock::new(),
        }
    }

    /// Remembers the runtime the supervisor is started on: the caller's.
    pub(crate) fn start_on(&self, runtime: tokio::runtime::Handle) {
        let _ = self.runtime.set(runtime);
    }

    /// The runtime the supervisor was started on (`None` before it starts).
    pub(crate) fn runtime(&self) -> Option<tokio::runtime::Handle> {
        self.runtime.get().cloned()
    }

    /// Whether the caller runs on the supervisor's runtime, where a turn of
    /// a group's owner may be taken (it may start runs).
    pub(crate) fn on_own_runtime(&self) -> bool {
        tokio::runtime::Handle::try_current()
            .is_ok_and(|current| self.runtime.get().is_some_and(|runtime| runtime.id() == current.id()))
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.ever_subscribed.store(true, Ordering::Release);
        match &*self.events.read().unwrap_or_else(PoisonError::into_inner) {
            Some(events) => events.subscribe(),
            // Ended: a stream that is over.
            None => broadcast::channel(1).1,
        }
    }

    /// Listens to the changes that have no event (see `quiet`).
    #[cfg(feature = "metrics")]
    pub(crate) fn listen_quietly(&self) -> broadcast::Receiver<SmolStr> {
        self.quiet.get_or_init(|| broadcast::channel(QUIET_CAPACITY).0).subscribe()
    }

    /// `unit` changed with no event: tells those listening, if anyone ever did.
    pub(crate) fn changed_quietly(&self, unit: &Unit) {
        if let Some(quiet) = self.quiet.get() {
            // An error only means nobody listens any more.
            let _ = quiet.send(unit.path.clone());
        }
    }

    /// A random source for a new group owner.
    pub(crate) fn rng(&self) -> fastrand::Rng {
        self.seed.lock().unwrap_or_else(PoisonError::into_inner).fork()
    }

    /// Logs `kind` in the unit's span and sends it to subscribers, if there
    /// are any.
    pub(crate) fn emit(&self, unit: &Unit, kind: EventKind) {
        // Checked before the span is made: with no subscriber for the
        // level, the log line costs one load instead of a span and a guard.
        if level_of(&kind) <= tracing::level_filters::LevelFilter::current() {
            log_contained(|| unit.span().in_scope(|| log(&kind)));
        }
        // An error only means the last subscriber left meanwhile.
        let _ = self.to_subscribers(|events| events.send(Event::new(&unit.path, self.clock.now(), kind)));
    }

    /// Whether an event would be seen at all, by a subscriber or in the
    /// logs: an event whose making costs (a name copied per unit) is made
    /// only then.
    pub(crate) fn events_seen(&self) -> bool {
        tracing::enabled!(tracing::Level::ERROR) || self.has_subscribers()
    }

    /// Whether anyone receives the events.
    fn has_subscribers(&self) -> bool {
        self.to_subscribers(|_| ()).is_some()
    }

    /// Calls `send` with the events' sender, if anyone receives the events.
    /// Counting the receivers takes the channel's lock: not for every event
    /// of a supervisor that nobody ever subscribed to.
    fn to_subscribers<T>(&self, send: impl FnOnce(&broadcast::Sender<Event>) -> T) -> Option<T> {
        if !self.ever_subscribed.load(Ordering::Acquire) {
            return None;
        }
        let events = self.events.read().unwrap_or_else(PoisonError::into_inner);
        events.as_ref().filter(|events| events.receiver_count() > 0).map(send)
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// The error for a call about `unit` that the owner of `group` will not
    /// take: the supervisor is shutting down, or else the group is not
    /// running (stopped, or ending by its strategy or by hand).
    pub(crate) fn refusal(&self, group: &Unit, action: &'static str, unit: String) -> Error {
        if group.path.is_empty() || self.is_shutting_down() {
            Error::ShuttingDown { action, unit }
        } else {
            Error::GroupNotRunning { action, unit, group: group.path.to_string() }
        }
    }

    /// Begins the supervisor's shutdown, once: the first cause is kept.
    /// Arms the shutdown timeout. Returns `false` if it had begun already.
    pub(crate) fn begin_shutdown(&self, cause: ShutdownCause) -> bool {
        if self.shutting_down.swap(true, Ordering::AcqRel) {
            return false;
        }
        *self.cause.lock().unwrap_or_else(PoisonError::into_inner) = Some(cause);
        *self.began.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        self.shutdown_hooks.begin();
        // On the supervisor's runtime: the last handle may be dropped on a
        // thread of no runtime.
        if self.settings.shutdown_timeout == Some(Duration::ZERO) {
            // Before any unit is asked to stop: each is then killed, not
            // only those the timer's turn would find still stopping.
            log_contained(
                || tracing::warn!(timeout = ?Duration::ZERO, "shutdown timeout reached: killing what is left"),
            );
            self.kill_now.cancel();
        } else if let Some(timeout) = self.settings.shutdown_timeout
            && let Some(runtime) = self.runtime.get().cloned().or_else(|| tokio::runtime::Handle::try_current().ok())
        {
            runtime.spawn(kill_after(timeout, self.kill_now.clone(), self.report.subscribe()));
        }
        self.changes.changed_everywhere();
        // No event says it either: the supervisor is no longer ready.
        self.changed_quietly(&self.root);
        true
    }

    /// Adds a unit's line to the shutdown report.
    /// Makes room for `count` more report lines at once, rather than
    /// growing the list line by line through a shutdown of many units.
    pub(crate) fn expect_report_lines(&self, count: usize) {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner).reserve(count);
    }

    pub(crate) fn report_line(&self, unit: Arc<Unit>, line: Line) {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner).push((unit, line));
    }

    /// Takes the lines of the units removed out of the report: a removal
    /// that a shutdown overtook may have had its unit, or a removed group's
    /// units, listed first.
    pub(crate) fn unreport_removed(&self) {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner).retain(|(unit, _)| !unit.record().removed);
    }

    /// Ends the supervisor: runs the shutdown hooks and hands the report out.
    pub(crate) async fn finish(&self) {
        self.shutting_down.store(true, Ordering::Release);
        self.shutdown_hooks.end().await;
        let lines = std::mem::take(&mut *self.lines.lock().unwrap_or_else(PoisonError::into_inner));
        let report = self.report_of(lines, ShutdownCause::Requested);
        log_contained(|| {
            tracing::info!(took = ?report.took, forced = report.forced(), cause = %report.cause, "supervisor ended");
        });
        self.publish(report);
    }

    /// Ends the supervisor whose root task its runtime dropped before it
    /// finished: every run not ended yet was dropped with the runtime.
    /// The units not at rest are marked `Stopped`, and listed as a shutdown
    /// lists them (see [`dropped_outcome`]), each that had something to
    /// stop with its `Stopped` event; then the report is handed
    /// out, so that no wait on the supervisor waits for ever. Nothing is
    /// left to await: the shutdown hooks end as they can without a runtime
    /// (the PID file is released).
    pub(crate) fn finish_dropped(&self) {
        if self.has_ended() {
            return;
        }
        self.shutting_down.store(true, Ordering::Release);
        let mut lines = std::mem::take(&mut *self.lines.lock().unwrap_or_else(PoisonError::into_inner));
        // Listed as a shutdown would have stopped them.
        paths::walk_newest_first(&self.root, &mut |unit| {
            let mut record = unit.record();
            if std::mem::replace(&mut record.reported, true) {
                return;
            }
            let outcome = dropped_outcome(record.state, record.run.is_some());
            let stopped_now = record.state.is_active();
            if stopped_now {
                record.state = UnitState::Stopped;
            }
            record.ready = false;
            record.pid = None;
            let state = record.state;
            // A stop under way took until now, as a shutdown counts it.
            let took = record.stop.as_ref().map_or(Duration::ZERO, |stop| stop.asked.elapsed());
            drop(record);
            if stopped_now && outcome != StopOutcome::NotRunning {
                // Told as a shutdown tells each stop: a subscriber that
                // follows the units by their events saw them run on, their
                // last event `Started`, up to the stream's end.
                self.emit(unit, EventKind::Stopped { forced: outcome == StopOutcome::Forced, took });
            }
            lines.push((unit.clone(), Line { state, outcome, took }));
        });
        let report = self.report_of(lines, ShutdownCause::RuntimeDropped);
        log_contained(|| tracing::warn!(cause = %report.cause, "supervisor ended with its runtime"));
        self.shutdown_hooks.end_without_runtime();
        self.publish(report);
    }

    /// How the supervisor ended: `lines`, with the shutdown's cause
    /// (`otherwise` if none began) and length.
    fn report_of(&self, lines: Vec<(Arc<Unit>, Line)>, otherwise: ShutdownCause) -> Ended {
        let cause = self.cause.lock().unwrap_or_else(PoisonError::into_inner).take().unwrap_or(otherwise);
        let took = self.began.lock().unwrap_or_else(PoisonError::into_inner).map_or(Duration::ZERO, |at| at.elapsed());
        Ended { lines, cause, took }
    }

    /// Hands the report out, and ends the event streams: the supervisor
    /// has ended.
    fn publish(&self, report: Ended) {
        self.report.send_replace(Some(Arc::new(report)));
        self.changes.changed_everywhere();
        drop(self.events.write().unwrap_or_else(PoisonError::into_inner).take());
    }

    pub(crate) fn has_ended(&self) -> bool {
        self.report.borrow().is_some()
    }

    /// Waits for the supervisor to end.
    pub(crate) async fn ended(&self) -> Arc<Ended> {
        let mut report = self.report.subscribe();
        match report.wait_for(Option::is_some).await {
            Ok(ready) => ready.clone().unwrap_or_else(|| unreachable!("waited for Some")),
            // The sender lives in `self`.
            Err(_) => unreachable!("the report's sender outlives its receivers"),
        }
    }
}

/// How a unit that the runtime's drop found is listed, as a shutdown lists
/// it: its run, dropped, was aborted or killed; a unit between runs
/// (waiting out a restart delay, or for its dependencies) had nothing to
/// stop, and is stopped at once, gracefully; one at rest, or marked to
/// start and never launched, was not running.
fn dropped_outcome(state: UnitState, has_run: bool) -> StopOutcome {
    match state {
        _ if has_run && state.is_active() => StopOutcome::Forced,
        UnitState::Backoff | UnitState::Waiting => StopOutcome::Graceful,
        _ => StopOutcome::NotRunning,
    }
}

/// Cuts every grace period short once `timeout` has passed, unless the
/// supervisor has ended by then.
async fn kill_after(timeout: Duration, kill_now: CancellationToken, mut report: watch::Receiver<Option<Arc<Ended>>>) {
    tokio::select! {
        () = clock::sleep_from(Instant::now(), timeout) => {
            log_contained(|| tracing::warn!(?timeout, "shutdown timeout reached: killing what is left"));
            kill_now.cancel();
        }
        _ = report.wait_for(Option::is_some) => {}
    }
}

/// The `tracing` side of an event; the unit is a field of the enclosing span.
/// The level `kind` is logged at, by [`log`].
fn level_of(kind: &EventKind) -> tracing::Level {
    match kind {
        EventKind::Exited { reason } if !reason.is_success() => tracing::Level::WARN,
        EventKind::SiblingFailed { .. } | EventKind::NotReady { .. } | EventKind::Stopped { forced: true, .. } => {
            tracing::Level::WARN
        }
        EventKind::Panicked { .. } | EventKind::GaveUp { .. } => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    }
}

fn log(kind: &EventKind) {
    match kind {
        // An `Option` is recorded as its value, or not at all: as `?pid`,
        // a JSON log had the text "Some(4242)" (and "None" for a task).
        EventKind::Started { restart_count, pid } => tracing::info!(restart_count, pid, "started"),
        EventKind::Exited { reason } if reason.is_success() => tracing::info!(%reason, "run ended"),
        EventKind::Exited { reason } => tracing::warn!(%reason, "run failed"),
        EventKind::Panicked { message } => tracing::error!(%message, "run panicked"),
        EventKind::Restarting { attempt, delay } => tracing::info!(attempt, ?delay, "restarting"),
        EventKind::Finished => tracing::info!("finished; the policy does not restart it"),
        EventKind::GaveUp { reason } => tracing::error!(%reason, "gave up"),
        EventKind::SiblingFailed { sibling, strategy } => {
            tracing::warn!(%sibling, %strategy, "restarting with a sibling that ended")
        }
        EventKind::Waiting { on } => tracing::info!(?on, "waiting for its dependencies"),
        EventKind::Ready => tracing::info!("ready"),
        EventKind::NotReady { reason } => tracing::warn!(reason = reason.as_deref(), "not ready"),
        EventKind::Added => tracing::info!("added"),
        EventKind::Removed => tracing::info!("removed"),
        EventKind::Stopped { forced: false, took } => tracing::info!(?took, "stopped"),
        EventKind::Stopped { forced: true, took } => tracing::warn!(?took, "stop timed out; aborted or killed"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;
    use crate::tree::build;
    use crate::{ExitReason, GiveUpReason, Strategy};

    #[test]
    fn a_dropped_runtime_lists_a_unit_as_a_shutdown_would() {
        use UnitState::{Backoff, Exited, Running, Starting, Stopping, Waiting};
        for state in [Running, Stopping, Starting] {
            assert_eq!(dropped_outcome(state, true), StopOutcome::Forced, "{state:?}");
        }
        for state in [Backoff, Waiting] {
            assert_eq!(dropped_outcome(state, false), StopOutcome::Graceful, "{state:?}");
        }
        for state in [Starting, Exited, UnitState::Failed, UnitState::Stopped] {
            assert_eq!(dropped_outcome(state, false), StopOutcome::NotRunning, "{state:?}");
        }
    }

    fn unit() -> Arc<Unit> {
        build::idle_unit("u")
    }

    /// Waits `interest` for `unit` to be in `wanted`, in a task of its own,
    /// counting its looks; returns once the wait is registered.
    async fn wait(
        changes: &Arc<Changes>,
        unit: &Arc<Unit>,
        interest: Interest,
        wanted: UnitState,
    ) -> (tokio::task::JoinHandle<()>, Arc<AtomicU32>) {
        let looks = Arc::new(AtomicU32::new(0));
        let (shared, waited, counted) = (changes.clone(), unit.clone(), looks.clone());
        let waiting = tokio::spawn(async move {
            shared
                .wait_for(&waited, interest, || {
                    counted.fetch_add(1, Ordering::Relaxed);
                    (waited.state() == wanted).then_some(())
                })
                .await;
        });
        while !changes.anyone_waiting() {
            tokio::task::yield_now().await;
        }
        (waiting, looks)
    }

    /// Goes through the states of 100 restarts, letting the waits run
    /// after each change.
    async fn restart_100_times(changes: &Changes, unit: &Unit) {
        for _ in 0..100 {
            for state in [UnitState::Backoff, UnitState::Starting, UnitState::Running] {
                unit.record().state = state;
                changes.changed(unit);
                tokio::task::yield_now().await;
            }
        }
    }

    /// Records the level of each event logged while it is the default.
    #[derive(Default)]
    struct Levels(Mutex<Vec<tracing::Level>>);

    impl tracing::Subscriber for Levels {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            self.0.lock().expect("not poisoned").push(*event.metadata().level());
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn each_event_is_logged_at_the_level_its_gate_checks() {
        let kinds = [
            EventKind::Started { restart_count: 0, pid: None },
            EventKind::Exited { reason: ExitReason::Success },
            EventKind::Exited { reason: ExitReason::Code(3) },
            EventKind::Panicked { message: "boom".to_owned() },
            EventKind::Restarting { attempt: 1, delay: Duration::ZERO },
            EventKind::Finished,
            EventKind::GaveUp { reason: GiveUpReason::MaxRestarts { max: 1 } },
            EventKind::SiblingFailed { sibling: "db".to_owned(), strategy: Strategy::OneForAll },
            EventKind::Waiting { on: vec!["db".to_owned()] },
            EventKind::Ready,
            EventKind::NotReady { reason: None },
            EventKind::Added,
            EventKind::Removed,
            EventKind::Stopped { forced: false, took: Duration::ZERO },
            EventKind::Stopped { forced: true, took: Duration::ZERO },
        ];
        // tracing caches each callsite's interest for the whole process; a
        // second dispatcher, kept meanwhile, makes it ask this thread's too,
        // where a test on another thread, with none, could turn a line off.
        let _anchor = tracing::Dispatch::new(tracing_subscriber::registry());
        for kind in kinds {
            let levels = Arc::new(Levels::default());
            tracing::subscriber::with_default(levels.clone(), || log(&kind));
            let logged = levels.0.lock().expect("not poisoned").clone();
            assert_eq!(logged, [level_of(&kind)], "{kind:?}");
        }
    }

    #[tokio::test]
    async fn a_wait_for_a_state_is_woken_by_that_state_only() {
        let (changes, unit) = (Arc::new(Changes::default()), unit());
        let (waiting, looks) = wait(&changes, &unit, Interest::state(UnitState::Failed), UnitState::Failed).await;
        restart_100_times(&changes, &unit).await;
        unit.record().state = UnitState::Failed;
        changes.changed(&unit);
        waiting.await.unwrap();
        // Two looks before waiting (before and after registering), and the
        // one after `Failed`.
        assert_eq!(looks.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_wait_for_any_change_and_a_removal_wake_whatever_the_state() {
        let (changes, unit) = (Arc::new(Changes::default()), unit());
        let (waiting, looks) = wait(&changes, &unit, Interest::ANY, UnitState::Failed).await;
        restart_100_times(&changes, &unit).await;
        assert!(looks.load(Ordering::Relaxed) > 100, "{looks:?}");
        unit.record().state = UnitState::Failed;
        changes.changed(&unit);
        waiting.await.unwrap();

        let (waiting, looks) =
            wait(&changes, &unit, Interest::ready_or(&[UnitState::Exited]), UnitState::Stopped).await;
        unit.record().state = UnitState::Stopped;
        changes.changed(&unit);
        tokio::task::yield_now().await;
        assert_eq!(looks.load(Ordering::Relaxed), 2, "not woken for `Stopped`");
        changes.removed(&unit);
        waiting.await.unwrap();
        assert_eq!(looks.load(Ordering::Relaxed), 3, "woken by the removal");
    }

    /// While one unit is waited on, the changes of every other take no
    /// lock: with the table of waits held, they still go through.
    #[tokio::test]
    async fn a_change_of_a_unit_nobody_waits_on_takes_no_lock() {
        let (changes, waited, other) = (Arc::new(Changes::default()), unit(), unit());
        let (waiting, _) = wait(&changes, &waited, Interest::ANY, UnitState::Failed).await;
        let held = changes.waits();
        let (done, finished) = std::sync::mpsc::channel();
        let (shared, changing) = (changes.clone(), other.clone());
        std::thread::spawn(move || {
            for _ in 0..1000 {
                shared.changed(&changing);
                shared.removed(&changing);
            }
            let _ = done.send(());
        });
        let went_through = finished.recv_timeout(Duration::from_secs(10));
        drop(held);
        assert!(went_through.is_ok(), "a change of an unwatched unit waited for the table's lock");
        waited.record().state = UnitState::Failed;
        changes.changed(&waited);
        waiting.await.unwrap();
    }
}
