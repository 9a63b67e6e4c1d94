//! One unit of the tree, as everyone sees it: what it runs, its settings,
//! and its record (state, counters, last exit). The owner of the unit's
//! group is the record's only writer; handles read it.
//!
//! Also the messages a group's owner receives: from the runs of its units
//! (`Ended`, tagged with the run's epoch so that a late report from an old
//! run is ignored) and from handles (control calls, units added and
//! removed).

use std::num::NonZeroU32;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, Weak};
use std::time::Duration;

use smol_str::SmolStr;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::observe::report::{StopOutcome, UnitReport};
use crate::run::process::{GroupSignaller, ProcessBody};
use crate::run::task::TaskBody;
use crate::spec::group::IntensityLimit;
use crate::spec::policy::RestartTracker;
use crate::spec::probe::Watching;
use crate::spec::{Spec, UnitOptions};
use crate::tree::clock::{Clock, Stamp};
use crate::tree::members::{Members, Named};
use crate::tree::timers::TimerKey;
use crate::{Context, Error, ExitReason, Readiness, RestartPolicy, Strategy, UnitKind, UnitState, UnitStatus};

/// A unit of the tree. Lives as long as it is registered.
pub(crate) struct Unit {
    /// The full path: `"storage/db"` for the unit `db` of the group
    /// `storage`; the name itself at the root.
    pub(crate) path: SmolStr,
    pub(crate) body: Body,
    pub(crate) settings: Arc<Settings>,
    /// Added at run time: such units start after the registered ones and
    /// stop concurrently among themselves, as their dependencies allow.
    pub(crate) added: bool,
    /// How many `wait_state`/`wait_ready`/`wait_status` calls wait on it:
    /// a change of a unit nobody waits on costs this load alone, even while
    /// others are waited on.
    pub(crate) waits: AtomicU32,
    /// Units of its group wait for it to be ready: its run then tells its
    /// readiness in a turn of the owner's taken on its own task. Set and
    /// cleared by the owner; a stale value only picks the slower way.
    pub(crate) awaited: AtomicBool,
    /// Where its name begins in its path, found once: the name is hashed
    /// and compared at every lookup. `u16::MAX` for a name that begins
    /// further in (it is then found again each time).
    name_at: u16,
    record: Mutex<Record>,
}

/// What a unit was registered with, apart from its body. Units registered
/// one after another with the same settings and no dependencies or checks
/// share one copy (see [`Settings::shared_with`]): a loop that registers
/// 10k units keeps one.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) policy: RestartPolicy,
    pub(crate) stop_timeout: Duration,
    pub(crate) critical: bool,
    /// Forgotten once it ends for good.
    pub(crate) temporary: bool,
    /// The names of the siblings it depends on.
    pub(crate) depends_on: Box<[Arc<str>]>,
    /// How its runs are watched (readiness, liveness, watchdog), if at all.
    pub(crate) watching: Option<Box<Watching>>,
}

impl Settings {
    /// Its readiness is [`Readiness::Completed`]: a one-shot job, done once
    /// a run ends well.
    pub(crate) fn completes(&self) -> bool {
        self.watching.as_deref().is_some_and(|watching| matches!(watching.readiness, Readiness::Completed))
    }
}

/// Whether a unit with `record` and `settings` lets its group be ready
/// (see [`Unit::counts_ready`]).
fn counts_ready(record: &Record, settings: &Settings) -> bool {
    match record.state {
        _ if record.ready => true,
        UnitState::Stopping => record.stop.as_ref().is_none_or(|stop| !stop.then_start),
        UnitState::Stopped => true,
        UnitState::Exited => !settings.completes() || record.lets_dependents_start(false),
        _ => false,
    }
}

/// What a unit runs.
pub(crate) enum Body {
    Task(TaskBody),
    Process(Box<ProcessBody>),
    Group(Box<GroupBody>),
}

/// A group: its settings, its units, and the address of its owner while
/// its run is in progress.
pub(crate) struct GroupBody {
    pub(crate) strategy: Strategy,
    pub(crate) intensity: Option<IntensityLimit>,
    members: RwLock<Members<Arc<Unit>>>,
    owner: Mutex<Option<OwnerAddress>>,
}

/// A unit's record. Written by its group's owner only.
pub(crate) struct Record {
    pub(crate) state: UnitState,
    pub(crate) ready: bool,
    /// It was ready at some moment of its current or last run.
    pub(crate) ready_in_run: bool,
    pub(crate) pid: Option<NonZeroU32>,
    /// Restarts its policy performed since it was (re)started by hand.
    pub(crate) tracker: RestartTracker,
    pub(crate) restarts_total: u64,
    /// When its last run started (its wall-clock time follows from it).
    pub(crate) run_started: Option<Stamp>,
    /// How its last run ended, if with an exit code or a signal: kept here,
    /// not with the notes, since every run that ends has one (a task's is
    /// 0 or 1).
    pub(crate) last_exit: Option<LastExit>,
    /// Counts the runs: a report tagged with another epoch is stale.
    pub(crate) epoch: u32,
    /// The run in progress, if any.
    pub(crate) run: Option<RunHandle>,
    /// The stop in progress, if any; boxed, as only a unit being stopped
    /// has one.
    pub(crate) stop: Option<Box<Stop>>,
    /// What only some units have to say: kept out of line, so that an
    /// idle unit that has none pays a word.
    pub(crate) notes: Option<Box<Notes>>,
    /// Restarts are paused: a restart due waits for `resume_restarts`.
    pub(crate) paused: bool,
    /// A restart came due while paused.
    pub(crate) held: bool,
    /// Its own policy decided (and announced) the restart it waits for in
    /// `Backoff`, or that was held while paused: counted toward its limit
    /// whoever performs it, the resume or a strategy that stops and
    /// restarts it with a sibling meanwhile.
    pub(crate) policy_restart: bool,
    /// Its line is in the shutdown's report: a unit is listed once.
    pub(crate) reported: bool,
    /// Removed from its group, for good: how its owner tells a call about
    /// a unit removed meanwhile, without looking its name up.
    pub(crate) removed: bool,
}

/// A unit's record's rarer parts.
#[derive(Default)]
pub(crate) struct Notes {
    /// The error its last failed run ended with.
    pub(crate) last_error: Option<Box<str>>,
    /// Why it is not ready, when a readiness check said so.
    pub(crate) not_ready: Option<Box<str>>,
    /// What its run said of itself last (`STATUS=`).
    pub(crate) status_text: Option<Box<str>>,
}

impl Record {
    /// The notes, made on first use.
    pub(crate) fn notes(&mut self) -> &mut Notes {
        self.notes.get_or_insert_with(Box::default)
    }

    /// Why the unit is not ready, when a readiness check said so.
    pub(crate) fn not_ready(&self) -> Option<&str> {
        self.notes.as_ref().and_then(|notes| notes.not_ready.as_deref())
    }

    /// Whether the units that depend on it (a `group` if `group`) may
    /// start: it is ready, or its policy let it end after a run that was
    /// ready and then succeeded (a one-shot job, such as a migration, that
    /// has done its work). A run that ended without ever being ready, or
    /// failed, did not. A group that ended well did its work, ready or
    /// not as its parent saw it: its units may become ready and end in the
    /// one burst of reports its owner hears before it tells its parent.
    pub(crate) fn lets_dependents_start(&self, group: bool) -> bool {
        self.ready
            || (self.state == UnitState::Exited
                && (self.ready_in_run || group)
                && self.notes.as_ref().is_none_or(|notes| notes.last_error.is_none()))
    }

    /// Forgets why it was not ready.
    pub(crate) fn clear_not_ready(&mut self) {
        if let Some(notes) = &mut self.notes {
            notes.not_ready = None;
        }
    }

    /// Forgets what a run before the next one said: why it was not ready,
    /// and its status text.
    pub(crate) fn clear_run_notes(&mut self) {
        if let Some(notes) = &mut self.notes {
            notes.not_ready = None;
            notes.status_text = None;
        }
    }
}

/// How a unit's stop went, for its line in a report.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line {
    /// The state it was left in.
    pub(crate) state: UnitState,
    pub(crate) outcome: StopOutcome,
    pub(crate) took: Duration,
}

/// How to stop a run in progress.
pub(crate) struct RunHandle {
    /// Asks the run to stop: a task's context, a process's stop, a group's
    /// owner.
    pub(crate) stop: CancellationToken,
    /// Drops a task's run after its grace period: its tokio task's handle,
    /// kept as `spawn` returned it. Made into an `AbortHandle` at once, the
    /// `JoinHandle`'s drop changed the state of a task that another worker
    /// could be running already: `start()` of 10k units took 16 % longer on
    /// two workers. Dropped at the run's end instead, on the thread that
    /// ran it, it costs a stop some 70 instructions more.
    pub(crate) abort: Option<JoinHandle<()>>,
    /// Signals a process's group while it runs.
    pub(crate) signaller: Option<GroupSignaller>,
}

/// A stop in progress.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stop {
    pub(crate) asked: Instant,
    /// A start follows once it is stopped (a restart): the unit holds its
    /// group back as a unit that is not ready, not as one at rest.
    pub(crate) then_start: bool,
    /// A task's run had to be aborted.
    pub(crate) aborted: bool,
    /// The owner's timer that aborts a task at the end of its grace period.
    pub(crate) abort_timer: Option<TimerKey>,
}

/// How the last run ended, as the status shows it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LastExit {
    Code(i32),
    Signal(i32),
}

impl LastExit {
    pub(crate) fn of(reason: &ExitReason) -> Option<Self> {
        match (reason.exit_code(), reason.signal()) {
            (Some(code), _) => Some(LastExit::Code(code)),
            (None, Some(signal)) => Some(LastExit::Signal(signal)),
            (None, None) => None,
        }
    }
}

/// The span of the unit at `path` (see [`Unit::span`]).
fn span_of(path: &str) -> tracing::Span {
    tracing::error_span!("unit", unit = %path)
}

impl Drop for Unit {
    fn drop(&mut self) {
        // A `Drop` of the user's, in what a task's factory captured, that
        // panics is logged with the unit's path.
        let Unit { path, body, .. } = self;
        if let Body::Task(task) = body {
            task.drop_factory(|| span_of(path));
        }
    }
}

impl Unit {
    pub(crate) fn new(path: SmolStr, body: Body, settings: Arc<Settings>, added: bool) -> Self {
        let name_at = u16::try_from(name_start(&path)).unwrap_or(u16::MAX);
        Unit {
            name_at,
            path,
            body,
            settings,
            added,
            waits: AtomicU32::new(0),
            awaited: AtomicBool::new(false),
            record: Mutex::new(Record {
                state: UnitState::Stopped,
                ready: false,
                pid: None,
                tracker: RestartTracker::new(),
                restarts_total: 0,
                run_started: None,
                last_exit: None,
                epoch: 0,
                run: None,
                stop: None,
                notes: None,
                paused: false,
                held: false,
                policy_restart: false,
                reported: false,
                removed: false,
                ready_in_run: false,
            }),
        }
    }

    /// The `tracing` span of the lines about it, its own and the
    /// supervisor's. At the error level, so that a subscriber that lets
    /// through only warnings still sees which unit a line is about.
    pub(crate) fn span(&self) -> tracing::Span {
        span_of(&self.path)
    }

    /// Its name within its group: the last part of its path.
    pub(crate) fn name(&self) -> &str {
        let at = match self.name_at {
            u16::MAX => name_start(&self.path),
            at => usize::from(at),
        };
        &self.path[at..]
    }

    /// Its line in a shutdown's report, or a removal's answer.
    pub(crate) fn report_line(&self, Line { state, outcome, took }: Line) -> UnitReport {
        UnitReport { name: String::from(&*self.path), kind: self.kind(), state, outcome, took }
    }

    pub(crate) fn kind(&self) -> UnitKind {
        match self.body {
            Body::Task(_) => UnitKind::Task,
            Body::Process(_) => UnitKind::Process,
            Body::Group(_) => UnitKind::Group,
        }
    }

    pub(crate) fn group(&self) -> Option<&GroupBody> {
        match &self.body {
            Body::Group(group) => Some(group),
            _ => None,
        }
    }

    /// The record, for a short look or, by the group's owner, a change.
    pub(crate) fn record(&self) -> MutexGuard<'_, Record> {
        // No code panics while holding this lock; recover rather than spread
        // a poison that cannot mean a broken invariant.
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether it lets its group be ready: it is ready, or it is stopped
    /// or being stopped on request, not to start again, or its policy let
    /// it end (a one-shot job, only once it is done).
    pub(crate) fn counts_ready(&self) -> bool {
        counts_ready(&self.record(), &self.settings)
    }

    pub(crate) fn state(&self) -> UnitState {
        self.record().state
    }

    /// Its status at `now`; `siblings` are the members of its group, and
    /// `group_at_rest` says whether that group is at rest (stopped, ended or
    /// given up: none of its units is to run). `clock` gives the wall-clock
    /// time of its last start. `now` is read once for a whole list of
    /// statuses: a read of the clock for each was a tenth of the time of
    /// 100k.
    pub(crate) fn status(
        &self,
        siblings: &Members<Arc<Unit>>,
        group_at_rest: bool,
        clock: &Clock,
        now: Instant,
    ) -> UnitStatus {
        let mut status = self.recorded_status(clock, now);
        if status.state == UnitState::Waiting {
            status.not_ready = self.waiting_for(siblings).or(status.not_ready);
        }
        if status.ready
            && status.state == UnitState::Running
            && let Body::Group(group) = &self.body
            && !group.units_ready_now()
        {
            // A group's record says what its parent's owner last heard of
            // it, and a call that starts a unit of the group again answers
            // before that owner hears of the change: the group is not ready
            // from the moment one of its units holds it back.
            status.ready = false;
            status.holds_back_readiness = true;
            status.not_ready = Some("a unit of the group is not ready".to_owned());
        }
        if group_at_rest {
            // What its group holds back no longer counts.
            status.holds_back_readiness = false;
        }
        status
    }

    /// Whether it lets its group be ready as things stand: by its record
    /// (see [`counts_ready`](Self::counts_ready)) and, for a group that
    /// runs, by its own units too, which its record, written once its
    /// parent's owner hears of them, may not say yet.
    fn counts_ready_now(&self) -> bool {
        self.as_things_stand(|record| counts_ready(record, &self.settings))
    }

    /// Whether the units that depend on it may start, as things stand: by
    /// its record (see [`Record::lets_dependents_start`]) and, for a group
    /// that runs, by its own units too (see [`counts_ready_now`](Self::counts_ready_now)).
    pub(crate) fn lets_dependents_start_now(&self) -> bool {
        let group = self.group().is_some();
        self.as_things_stand(|record| record.lets_dependents_start(group))
    }

    /// Calls `each` on what keeps the units that depend on it from
    /// starting, as things stand, until `each` breaks: itself, if it does
    /// not let them start; if it rests done with its work (a one-shot job,
    /// or a group, whose run ended well), what it depends on that does not,
    /// looked through in turn. Its dependents need what it needed: a
    /// migration done on a database restarted since lets nothing that
    /// depends on it start on that database before it is ready again.
    /// `siblings` are the members of its group; a unit may be met more than
    /// once.
    fn holding_back(
        self: &Arc<Self>,
        siblings: &Members<Arc<Unit>>,
        each: &mut dyn FnMut(&Arc<Unit>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        if !self.lets_dependents_start_now() {
            return each(self);
        }
        if self.state() == UnitState::Exited {
            self.each_blocker(siblings, each)?;
        }
        ControlFlow::Continue(())
    }

    /// [`holding_back`](Self::holding_back) of each of its dependencies, in
    /// the order its `depends_on` names them, until `each` breaks.
    fn each_blocker(
        &self,
        siblings: &Members<Arc<Unit>>,
        each: &mut dyn FnMut(&Arc<Unit>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        for dependency in self.settings.depends_on.iter().filter_map(|name| siblings.get(name)) {
            dependency.holding_back(siblings, each)?;
        }
        ControlFlow::Continue(())
    }

    /// The first of its [`blockers`](Self::blockers), if any: what it waits
    /// for next. Without a list of them all, which its start would make
    /// for nothing (a chain of dependent units starts a tenth sooner).
    pub(crate) fn first_blocker(&self, siblings: &Members<Arc<Unit>>) -> Option<Arc<Unit>> {
        let mut first = None;
        let _ = self.each_blocker(siblings, &mut |unit| {
            first = Some(unit.clone());
            ControlFlow::Break(())
        });
        first
    }

    /// Its dependencies that keep it from starting, each once, in the order
    /// its `depends_on` names them (see [`holding_back`](Self::holding_back)).
    pub(crate) fn blockers(&self, siblings: &Members<Arc<Unit>>) -> Vec<Arc<Unit>> {
        let mut found: Vec<Arc<Unit>> = Vec::new();
        let _ = self.each_blocker(siblings, &mut |unit| {
            if !found.iter().any(|seen| Arc::ptr_eq(seen, unit)) {
                found.push(unit.clone());
            }
            ControlFlow::Continue(())
        });
        found
    }

    /// `by_record` of its record and, for a group that runs, whether its
    /// units let it be ready as things stand.
    fn as_things_stand(&self, by_record: impl FnOnce(&Record) -> bool) -> bool {
        let (holds, running) = {
            let record = self.record();
            (by_record(&record), record.state == UnitState::Running)
        };
        match &self.body {
            Body::Group(group) if holds && running => group.units_ready_now(),
            _ => holds,
        }
    }

    /// Whether it is at rest as a group: stopped, ended or given up, its
    /// units not to run. The root, which runs as long as the supervisor
    /// does, never is.
    pub(crate) fn is_group_at_rest(&self) -> bool {
        !self.path.is_empty() && matches!(self.state(), UnitState::Stopped | UnitState::Exited | UnitState::Failed)
    }

    /// Marks the stop in progress, if any, as followed by a start (see
    /// [`Stop::then_start`]).
    pub(crate) fn start_after_stop(&self) {
        if let Some(stop) = self.record().stop.as_mut() {
            stop.then_start = true;
        }
    }

    /// Its status now, read alone; `group` is the group it belongs to.
    pub(crate) fn status_in(&self, group: &Unit, clock: &Clock) -> UnitStatus {
        let now = Instant::now();
        let at_rest = group.is_group_at_rest();
        match group.group() {
            Some(body) => self.status(&body.members(), at_rest, clock, now),
            None => self.status(&Members::default(), at_rest, clock, now),
        }
    }

    /// What a waiting unit waits for, in words: its dependencies that are
    /// not ready, and why. Looked up when asked rather than kept: a unit
    /// that begins to wait then allocates nothing (in a chain of dependent
    /// units, two allocations of the six each start took).
    fn waiting_for(&self, siblings: &Members<Arc<Unit>>) -> Option<String> {
        let each: Vec<String> = self
            .blockers(siblings)
            .iter()
            .map(|dependency| {
                let record = dependency.record();
                match record.not_ready() {
                    Some(why) => format!("`{}` (not ready: {why})", dependency.path),
                    // A group whose record has not heard yet of a unit of it
                    // that holds it back.
                    None if record.ready => {
                        format!("`{}` (not ready: a unit of the group is not ready)", dependency.path)
                    }
                    None => format!("`{}` ({})", dependency.path, record.state),
                }
            })
            .collect();
        (!each.is_empty()).then(|| format!("waiting for {}", each.join(", ")))
    }

    /// Whether only a start by hand could make it ready, or let what waits
    /// for it start: it gave up or ended (`Failed`, `Exited`; callers rule
    /// out a job done first), it waits in vain for its dependencies, or it
    /// is a group that runs held back by such a unit of it. `siblings` are
    /// the members of its group.
    pub(crate) fn is_stuck(&self, siblings: &Members<Arc<Unit>>) -> bool {
        // A chain of waits is no longer than the group: dependency cycles
        // are refused.
        self.is_stuck_within(siblings, siblings.len())
    }

    fn is_stuck_within(&self, siblings: &Members<Arc<Unit>>, links_left: usize) -> bool {
        match self.state() {
            UnitState::Failed | UnitState::Exited => true,
            UnitState::Waiting => self.waits_in_vain(siblings, links_left),
            UnitState::Running => self.held_back_for_good(),
            _ => false,
        }
    }

    /// Whether one of its dependencies that keeps it waiting is stuck.
    fn waits_in_vain(&self, siblings: &Members<Arc<Unit>>, links_left: usize) -> bool {
        let Some(links_left) = links_left.checked_sub(1) else { return false };
        // Without a list of the blockers at each link: a wait on the last
        // unit of a chain looks down the whole chain at each change.
        let mut stuck = |blocker: &Arc<Unit>| {
            if blocker.is_stuck_within(siblings, links_left) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        self.each_blocker(siblings, &mut stuck).is_break()
    }

    /// Whether it is a group whose units hold it back for good: one that
    /// holds it back is stuck.
    fn held_back_for_good(&self) -> bool {
        let Some(body) = self.group() else { return false };
        let members = body.members();
        members.iter().any(|unit| !unit.counts_ready_now() && unit.is_stuck(&members))
    }

    /// Its status as its record has it.
    fn recorded_status(&self, clock: &Clock, now: Instant) -> UnitStatus {
        let record = self.record();
        let running = matches!(record.state, UnitState::Running | UnitState::Stopping);
        // A one-shot job that is done (see [`Settings::completes`]) is
        // ready at rest, by the rule that lets its dependents start; its
        // record's flag is of its runs.
        let ready = record.ready || (self.settings.completes() && record.lets_dependents_start(false));
        UnitStatus {
            // Not `to_string()`, which writes through `Display` into a
            // growing string: a third of a status list's time.
            name: String::from(self.path.as_str()),
            kind: self.kind(),
            state: record.state,
            running,
            // Not once the leader is reaped (its output may still be read
            // to the end): the pid may belong to another process by then.
            pid: record
                .pid
                .filter(|_| {
                    record.run.as_ref().and_then(|run| run.signaller.as_ref()).is_none_or(|group| !group.is_reaped())
                })
                .map(NonZeroU32::get),
            restart_count: record.tracker.restarts(),
            restarts_total: record.restarts_total,
            restarts_paused: record.paused,
            ready,
            holds_back_readiness: !counts_ready(&record, &self.settings),
            not_ready: record.not_ready().filter(|_| !ready).map(String::from),
            status_text: record.notes.as_ref().and_then(|notes| notes.status_text.as_deref()).map(String::from),
            last_start: record.run_started.map(|at| clock.wall_time(at)),
            uptime: record.run_started.filter(|_| running).map(|at| clock.elapsed_since(at, now)),
            exit_code: record.last_exit.and_then(|exit| match exit {
                LastExit::Code(code) => Some(code),
                LastExit::Signal(_) => None,
            }),
            signal: record.last_exit.and_then(|exit| match exit {
                LastExit::Signal(signal) => Some(signal),
                LastExit::Code(_) => None,
            }),
            last_error: record.notes.as_ref().and_then(|notes| notes.last_error.as_deref()).map(String::from),
        }
    }

    /// What signals the process group of the run in progress, if any.
    pub(crate) fn signaller(&self) -> Option<GroupSignaller> {
        self.record().run.as_ref().and_then(|run| run.signaller.clone())
    }

    pub(crate) fn tail(&self, lines: usize) -> Vec<String> {
        match &self.body {
            Body::Process(process) => process.tail(lines),
            Body::Task(_) | Body::Group(_) => Vec::new(),
        }
    }
}

/// Where the name begins in a unit's `path`: after its last `/`.
fn name_start(path: &str) -> usize {
    // A plain scan: paths are short, and `rfind`'s word-at-a-time search
    // costs more to set up than it saves (a tenth of `build()` for 10k units).
    path.bytes().rposition(|byte| byte == b'/').map_or(0, |slash| slash + 1)
}

/// A unit's identity while it lives: the tables that look units up by
/// address (waits, dependents, stops in flight) key on this.
pub(crate) fn address(unit: &Unit) -> usize {
    std::ptr::from_ref(unit) as usize
}

impl Named for Arc<Unit> {
    fn name(&self) -> &str {
        Unit::name(self)
    }
}

impl Settings {
    pub(crate) fn new(policy: RestartPolicy, stop_timeout: Duration, options: UnitOptions) -> Self {
        Settings {
            policy,
            stop_timeout,
            critical: options.critical,
            temporary: options.temporary,
            // Most units depend on nothing: no collect to run for them.
            depends_on: if options.depends_on.is_empty() {
                Box::default()
            } else {
                options.depends_on.into_iter().map(Arc::from).collect()
            },
            watching: options.watching,
        }
    }

    /// These settings, or `previous` if they are the same: the settings of
    /// the unit registered before, which would otherwise be copied once per
    /// unit. Settings with dependencies or checks are never shared, to
    /// keep the comparison to a few words.
    pub(crate) fn shared_with(self, previous: Option<&Arc<Settings>>) -> Arc<Settings> {
        match previous {
            Some(previous) if self.is_plain() && previous.is_plain() && self.same_plain(previous) => previous.clone(),
            _ => Arc::new(self),
        }
    }

    fn is_plain(&self) -> bool {
        self.depends_on.is_empty() && self.watching.is_none()
    }

    fn same_plain(&self, other: &Settings) -> bool {
        self.policy == other.policy
            && self.stop_timeout == other.stop_timeout
            && self.critical == other.critical
            && self.temporary == other.temporary
    }
}

impl GroupBody {
    pub(crate) fn new(strategy: Strategy, intensity: Option<IntensityLimit>, members: Members<Arc<Unit>>) -> Self {
        GroupBody { strategy, intensity, members: RwLock::new(members), owner: Mutex::new(None) }
    }

    pub(crate) fn members(&self) -> RwLockReadGuard<'_, Members<Arc<Unit>>> {
        self.members.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the members; for the group's owner only.
    pub(crate) fn change_members<R>(&self, change: impl FnOnce(&mut Members<Arc<Unit>>) -> R) -> R {
        change(&mut self.members.write().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether every unit of the group lets it be ready as things stand
    /// (see [`Unit::counts_ready_now`]).
    fn units_ready_now(&self) -> bool {
        self.members().iter().all(|unit| unit.counts_ready_now())
    }

    /// The members, in registration order, as a list that holds no lock.
    pub(crate) fn units(&self) -> Vec<Arc<Unit>> {
        self.members().iter().cloned().collect()
    }

    /// The address of the group's owner, while its run is in progress.
    pub(crate) fn owner(&self) -> Option<OwnerAddress> {
        self.owner.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The group's owner, while its run is in progress, to take a turn
    /// of: the mailbox is not copied for a call that needs none.
    pub(crate) fn owner_link(&self) -> Option<Arc<dyn OwnerLink>> {
        self.owner.lock().unwrap_or_else(PoisonError::into_inner).as_ref()?.owner.upgrade()
    }

    pub(crate) fn set_owner(&self, owner: Option<OwnerAddress>) {
        *self.owner.lock().unwrap_or_else(PoisonError::into_inner) = owner;
    }
}

/// Where a group's owner receives its messages.
pub(crate) type Mailbox = mpsc::UnboundedSender<Msg>;

/// What a group's owner is told.
pub(crate) enum Msg {
    /// A run of `unit` ended.
    Ended { unit: Arc<Unit>, epoch: u32, end: RunEnd },
    /// A unit's run became ready, or stopped being ready (`why` not).
    Ready { unit: Arc<Unit>, epoch: u32, ready: bool, why: Option<String> },
    /// What a run said of itself (a process's `STATUS=`).
    StatusText { unit: Arc<Unit>, epoch: u32, text: String },
    /// A control call on one of its units.
    Control { unit: Arc<Unit>, op: Op, reply: oneshot::Sender<Result<(), Error>> },
    /// A unit to add and start.
    Add { spec: Box<Spec>, reply: oneshot::Sender<Result<(), Error>> },
    /// A unit to stop and forget.
    Remove { unit: Arc<Unit>, reply: oneshot::Sender<Result<UnitReport, Error>> },
    /// The group's parent (or the shutdown) stopped it.
    EndGroup,
    /// The shutdown's grace periods are over.
    KillNow,
}

/// A control call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Start,
    Stop,
    Restart,
    PauseRestarts,
    ResumeRestarts,
}

impl Op {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Restart => "restart",
            Op::PauseRestarts => "pause the restarts of",
            Op::ResumeRestarts => "resume the restarts of",
        }
    }
}

/// How a run ended, as its run reports it.
#[derive(Debug)]
pub(crate) enum RunEnd {
    /// It ended (by itself, or because it was asked to).
    Exited(ExitReason),
    /// A process stopped on request: by the stop signal (`reason`), or
    /// killed after its grace period (`forced`).
    Stopped { reason: ExitReason, forced: bool },
    /// A run found unhealthy or hung, then stopped: `failure` is why (its
    /// event, its `last_error`), `exit` how a process answered the stop (a
    /// task's is `failure` again), and whether it had to be killed or
    /// aborted (`forced`). Both are kept: the status shows the exit code or
    /// signal of every run that had one.
    Judged { failure: ExitReason, exit: ExitReason, forced: bool },
    /// It was dropped before it ended: a task aborted after its grace period.
    Aborted,
}

impl RunEnd {
    /// This end with its reason's message bounded (see [`ExitReason::bounded`]).
    pub(crate) fn bounded(self) -> Self {
        match self {
            RunEnd::Exited(reason) => RunEnd::Exited(reason.bounded()),
            RunEnd::Stopped { reason, forced } => RunEnd::Stopped { reason: reason.bounded(), forced },
            RunEnd::Judged { failure, exit, forced } => {
                RunEnd::Judged { failure: failure.bounded(), exit: exit.bounded(), forced }
            }
            RunEnd::Aborted => RunEnd::Aborted,
        }
    }
}

/// A group's owner, as its runs and the handles reach it.
pub(crate) trait OwnerLink: Send + Sync {
    /// Handles `msg` now, in a turn of the owner's taken on the caller's
    /// task, if the owner's own task is idle and nothing is queued ahead of
    /// it; gives it back otherwise, to be sent. A run's end or a call
    /// handled so spares the owner a message and a wake: the hand-off that
    /// made a restart cost twice a raw spawn and join.
    ///
    /// Called only on the supervisor's runtime (a turn may start runs),
    /// and never while the caller holds a lock of the tree.
    ///
    /// `go_on`: the caller is the tokio task of a task's run, free to carry
    /// the unit's next run if this turn starts one; it is then returned.
    fn try_turn(&self, msg: Msg, go_on: bool) -> Result<Option<NextRun>, Msg>;

    /// Like [`try_turn`](Self::try_turn) for a caller that may be user
    /// code: only on the supervisor's runtime, and not inside a span of
    /// the caller's (the supervisor's own log lines would carry it).
    fn try_turn_for_caller(&self, msg: Msg) -> Result<(), Msg>;

    /// Adds `spec` to the group in a turn taken as
    /// [`try_turn_for_caller`](Self::try_turn_for_caller) would take it,
    /// and says how that went; gives it back otherwise, to be sent. Handled
    /// so, an `add` boxes no spec and needs no reply channel.
    #[expect(clippy::result_large_err, reason = "the spec is given back as it came, so as not to box it")]
    fn try_add_for_caller(&self, spec: Spec) -> Result<Result<(), Error>, Spec>;

    /// Sends `msg` to the owner's task.
    fn send(&self, msg: Msg);

    /// Tells the waits on `unit` that its status changed outside a turn:
    /// its run's leader was reaped, and its pid is no longer shown.
    fn changed_outside_turns(&self, unit: &Unit);
}

/// Where calls reach a group's owner while its run is in progress.
#[derive(Clone)]
pub(crate) struct OwnerAddress {
    pub(crate) mailbox: Mailbox,
    pub(crate) owner: Weak<dyn OwnerLink>,
}

/// A task's next run, to go on in the tokio task of the run before it.
pub(crate) struct NextRun {
    pub(crate) ctx: Context,
    pub(crate) reporter: Reporter,
}

/// Tells the group's owner how a run ended, once: when told, or else when
/// dropped (the run was aborted).
pub(crate) struct Reporter {
    owner: Weak<dyn OwnerLink>,
    unit: Arc<Unit>,
    epoch: u32,
    reported: bool,
}

impl Reporter {
    pub(crate) fn new(owner: Weak<dyn OwnerLink>, unit: Arc<Unit>, epoch: u32) -> Self {
        Reporter { owner, unit, epoch, reported: false }
    }

    /// The unit whose run it reports on.
    pub(crate) fn unit(&self) -> &Arc<Unit> {
        &self.unit
    }

    /// Reports `end`, in a turn of the owner's if it is idle. Called at the
    /// end of the run's task, once the run and what watched it are dropped:
    /// the next run may start before this returns.
    pub(crate) fn report(self, end: RunEnd) {
        self.hand_over(end, false);
    }

    /// Like [`report`](Self::report), from a task's run whose tokio task
    /// can go on with the unit's next run: the run to go on with, if the
    /// report started one.
    pub(crate) fn report_and_go_on(self, end: RunEnd) -> Option<NextRun> {
        self.hand_over(end, true)
    }

    fn hand_over(mut self, end: RunEnd, go_on: bool) -> Option<NextRun> {
        self.reported = true;
        // `None` only once the owner has gone, with its runtime.
        let owner = self.owner.upgrade()?;
        match owner.try_turn(Msg::Ended { unit: self.unit.clone(), epoch: self.epoch, end }, go_on) {
            Ok(next) => next,
            Err(msg) => {
                owner.send(msg);
                None
            }
        }
    }

    /// Reports `end` of a run that was dropped before it ended (aborted):
    /// always a message, as a drop may come while the runtime shuts down,
    /// where no turn could start a run.
    pub(crate) fn report_dropped(mut self, end: RunEnd) {
        self.send_dropped(end);
    }

    fn send_dropped(&mut self, end: RunEnd) {
        self.reported = true;
        if let Some(owner) = self.owner.upgrade() {
            owner.send(Msg::Ended { unit: self.unit.clone(), epoch: self.epoch, end });
        }
    }
}

impl Drop for Reporter {
    /// The run was aborted before its end was reported.
    fn drop(&mut self) {
        if !self.reported {
            self.send_dropped(RunEnd::Aborted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every unit keeps its record for as long as it is registered: what
    /// only some units need is boxed (`notes`, `stop`), and settings are
    /// shared. A task's factory, when small, is held inline (16 bytes
    /// more here, a block of 32 fewer).
    #[test]
    fn a_unit_stays_small() {
        let size = std::mem::size_of::<Unit>();
        assert!(size <= 184, "a unit grew to {size} bytes");
    }

    fn settings(policy: RestartPolicy, depends_on: Vec<String>) -> Settings {
        Settings::new(policy, Duration::from_secs(5), UnitOptions { depends_on, ..UnitOptions::default() })
    }

    #[test]
    fn units_registered_alike_share_their_settings() {
        let first = settings(RestartPolicy::new(), Vec::new()).shared_with(None);
        let alike = settings(RestartPolicy::new(), Vec::new()).shared_with(Some(&first));
        assert!(Arc::ptr_eq(&first, &alike));
        let other_delay = settings(RestartPolicy::new().delay(Duration::from_secs(7)), Vec::new());
        let other_delay = other_delay.shared_with(Some(&first));
        assert!(!Arc::ptr_eq(&first, &other_delay));
        assert_eq!(other_delay.policy, RestartPolicy::new().delay(Duration::from_secs(7)));
        let mut critical = settings(RestartPolicy::new(), Vec::new());
        critical.critical = true;
        assert!(critical.shared_with(Some(&first)).critical);
        // With dependencies, never shared, even with the same.
        let needs = settings(RestartPolicy::new(), vec!["db".to_owned()]).shared_with(Some(&first));
        let needs_too = settings(RestartPolicy::new(), vec!["db".to_owned()]).shared_with(Some(&needs));
        assert!(!Arc::ptr_eq(&needs, &needs_too));
        assert_eq!(&*needs_too.depends_on, [Arc::<str>::from("db")]);
    }
}
