//! The owner of one group: the only writer of its units' lifecycle.
//!
//! It starts its units, hears from their runs how each ended (a report
//! tagged with an older epoch is ignored), asks the restart policy, the
//! group's intensity and its strategy what follows, and carries out control
//! calls, additions and removals, one message at a time. A nested group is a
//! unit whose run is an owner of its own.
//!
//! The owner's state is changed in turns, one at a time, under its lock:
//! mostly by its own task, but a run that ends, and a handle's call, take
//! the turn themselves while that task is idle and nothing is queued, so
//! that a restart, a stop or an `add` costs no hand-off to another task.
//! Either way there is one writer at a time, and messages are handled in
//! the order they were sent. Only the owner's task waits for the lock;
//! everyone else tries it, and sends a message if it is taken, so no two
//! locks of the tree are ever waited for in a circle.
//!
//! Work that spans several units (a strategy stopping siblings, the group
//! ending) is a *plan*: batches of units to stop, one batch after another,
//! then what to do next. While a strategy's plan runs, every other message
//! waits, as in OTP, where a supervisor restarts one set of children at a
//! time.
//!
//! This file holds the node's state and its turns; the rest is by concern:
//! [`owner`] (the lock and who takes a turn), [`runs`] (a unit's runs, their
//! ends and restarts), [`plans`] (stops a batch at a time, the strategies'
//! and the group's ending) and [`calls`] (control calls, additions and
//! removals).

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use smol_str::SmolStr;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::observe::event::EventKind;
use crate::observe::report::{ShutdownCause, StopOutcome, UnitReport};
use crate::spec::policy::{Decision, GiveUpReason, RestartTracker};
use crate::spec::validate::join;
use crate::tree::batches::{Batches, Gated};
use crate::tree::clock::Stamp;
use crate::tree::graph::Graph;
use crate::tree::intensity::Intensity;
use crate::tree::paths;
use crate::tree::record::{PendingRestart, abort};
use crate::tree::round;
use crate::tree::shared::Shared;
use crate::tree::timers::{TimerKey, Timers};
use crate::tree::unit::{Body, GroupBody, Mailbox, Msg, NextRun, Op, OwnerAddress, OwnerLink, Unit, address};
use crate::tree::waiting::Waiters;
use crate::{Error, ExitReason, Strategy, UnitState};

mod calls;
mod owner;
mod plans;
mod runs;

/// How long a task aborted by a shutdown's timeout may take to go away
/// before the shutdown reports it abandoned and moves on: only a task that
/// blocks its thread takes longer.
const ABANDON_AFTER: Duration = Duration::from_secs(1);

/// Why a group's run ends.
#[derive(Debug, Clone)]
pub(crate) enum Ending {
    /// Its parent (or the shutdown) stopped it.
    Stopped,
    /// More restarts than its intensity allows.
    GaveUp(GiveUpReason),
    /// A critical unit ended for good.
    Critical { unit: SmolStr, failed: bool },
}

impl Ending {
    /// How the group's run ended, for its parent.
    pub(crate) fn exit_reason(&self) -> ExitReason {
        match self {
            Ending::Stopped | Ending::Critical { failed: false, .. } => ExitReason::Success,
            Ending::GaveUp(reason) => ExitReason::GroupGaveUp(*reason),
            Ending::Critical { unit, failed: true } => ExitReason::CriticalFailed { unit: unit.to_string() },
        }
    }

    fn cause(&self) -> ShutdownCause {
        match self {
            Ending::Stopped => ShutdownCause::Requested,
            Ending::GaveUp(reason) => ShutdownCause::GaveUp { reason: reason.to_string() },
            Ending::Critical { unit, failed } => {
                ShutdownCause::CriticalEnded { unit: unit.to_string(), failed: *failed }
            }
        }
    }
}

/// A deadline of the owner's.
enum Timer {
    /// A unit's restart delay is over.
    Restart { unit: Arc<Unit>, epoch: u32 },
    /// A task's grace period is over: abort it.
    Abort { unit: Arc<Unit>, epoch: u32 },
    /// An aborted task has not gone away: give up waiting for it.
    Abandon { unit: Arc<Unit>, epoch: u32 },
    /// A strategy's restart delay is over: start the set again.
    Regroup { cause: Arc<Unit>, set: Vec<(Arc<Unit>, u32)> },
    /// The earliest grace period among a plan's stops is over.
    PlanGrace,
}

/// The units a plan asked to stop and that have not stopped yet, by
/// address: a plan of 10k units finds each in constant time. Each unit of
/// the plan's gated stage keeps its index in that stage, to tell the stage
/// once it has stopped.
#[derive(Default)]
struct InFlight(foldhash::HashMap<usize, (Arc<Unit>, Option<usize>)>);

impl InFlight {
    fn insert(&mut self, unit: &Arc<Unit>, gated_at: Option<usize>) {
        self.0.insert(address(unit), (unit.clone(), gated_at));
    }

    fn contains(&self, unit: &Arc<Unit>) -> bool {
        self.0.contains_key(&address(unit))
    }

    /// Takes `unit` out; its index in the gated stage, if it has one.
    fn remove(&mut self, unit: &Arc<Unit>) -> Option<usize> {
        self.0.remove(&address(unit)).and_then(|(_, gated_at)| gated_at)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn reserve(&mut self, count: usize) {
        self.0.reserve(count);
    }

    fn units(&self) -> impl Iterator<Item = &Arc<Unit>> {
        self.0.values().map(|(unit, _)| unit)
    }

    /// Forgets the units' places in a gated stage that is gone: a plan
    /// interrupted by the group's ending hands its stops on.
    fn without_gate(mut self) -> Self {
        for (_, gated_at) in self.0.values_mut() {
            *gated_at = None;
        }
        self
    }
}

/// Units to stop, a stage at a time, then what follows.
struct Plan {
    batches: Batches<Arc<Unit>>,
    /// The gated stage under way, if the current stage is one.
    gated: Option<Gated<Arc<Unit>>>,
    /// Asked to stop, not stopped yet.
    in_flight: InFlight,
    /// The one timer for the grace periods of the plan's tasks, armed for
    /// the earliest: a plan of 10k stops arms one, not 10k.
    grace: Option<(Instant, TimerKey)>,
    then: After,
}

impl Plan {
    /// Whether `unit` is among what the plan stops or starts again.
    fn takes_part(&self, unit: &Arc<Unit>) -> bool {
        let is = |member: &Arc<Unit>| Arc::ptr_eq(member, unit);
        self.in_flight.contains(unit)
            || self.batches.any(is)
            || self.gated.as_ref().is_some_and(|gated| gated.any(is))
            || match &self.then {
                After::Regroup { cause, set, .. } => is(cause) || set.iter().any(is),
                After::Reply { unit: stopped, .. } => is(stopped),
                After::Relaunch { units, .. } => units.iter().any(is),
                After::End => false,
            }
    }
}

/// Who times a stop's grace period.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Grace {
    /// A timer of the stop's own.
    OwnTimer,
    /// The plan's timer.
    Plan,
}

enum After {
    /// Start `set` (in start order) again once `cause`'s delay is over.
    Regroup { cause: Arc<Unit>, set: Vec<Arc<Unit>>, delay: Duration },
    /// A stop by hand of `unit` (with the units that depend on it) is done.
    Reply { unit: Arc<Unit>, reply: oneshot::Sender<Result<(), Error>> },
    /// A restart by hand: start `units` again (in start order, the first
    /// with its count reset), then answer.
    Relaunch { units: Vec<Arc<Unit>>, reply: oneshot::Sender<Result<(), Error>> },
    /// The group's run is over.
    End,
}

/// What a stop request found.
enum Asked {
    /// The unit is stopping; `stopped` will be called.
    InFlight,
    /// Done at once: it had no run in progress.
    Done(StopOutcome),
}

/// A control call waiting for a unit's stop.
struct Waiter {
    unit: Arc<Unit>,
    wants: Wants,
}

enum Wants {
    Stop(oneshot::Sender<Result<(), Error>>),
    /// A start once stopped, for the call `Op` (a start, or a restart),
    /// which a refusal names.
    Start(oneshot::Sender<Result<(), Error>>, Op),
    Remove(oneshot::Sender<Result<UnitReport, Error>>),
}

/// A waiter whose unit has stopped, held until the plan in progress is
/// done (see [`Node::stopped`]).
struct Resume {
    waiter: Waiter,
    outcome: StopOutcome,
    took: Duration,
}

/// The tokio task of a run that ended in the current turn, free to carry
/// its unit's next run if the turn starts one.
struct FreeTask {
    unit: Arc<Unit>,
    epoch: u32,
    /// The task's handle, once the run's end is recorded.
    abort: Option<JoinHandle<()>>,
    /// The next run, once started.
    next: Option<NextRun>,
}

/// The state of a group's owner, changed in its turns (see [`Owner`](owner::Owner)).
pub(crate) struct Node {
    shared: Arc<Shared>,
    group: Arc<Unit>,
    mailbox: Mailbox,
    inbox: mpsc::UnboundedReceiver<Msg>,
    /// Its owner, for runs to take its turns.
    owner: Weak<dyn OwnerLink>,
    /// Wakes the owner's task, as it last waited.
    own_task: Option<Waker>,
    /// Set during a turn that a run's end takes on its own task.
    free_task: Option<FreeTask>,
    /// The messages taken from the inbox at once, handled in turn: a burst
    /// (10k runs ending in a stop) costs one wait on the inbox per batch,
    /// not one per message.
    received: Vec<Msg>,
    /// Cancelled by the parent (or the shutdown) to stop the group.
    stop: CancellationToken,
    timers: Timers<Timer>,
    /// The restarts counted against the group's intensity, each still to
    /// come known by its unit and the run it follows.
    intensity: Option<Intensity<PendingRestart>>,
    rng: fastrand::Rng,
    waiters: Vec<Waiter>,
    plan: Option<Plan>,
    /// Waiters whose unit stopped while a plan ran, held back with the
    /// messages; their calls came before those messages.
    resumes: VecDeque<Resume>,
    /// Messages held back while a strategy's plan runs.
    deferred: VecDeque<Msg>,
    ending: Option<Ending>,
    /// `kill_now` has fired: grace periods are over.
    killed: bool,
    /// Units waiting for their dependencies, each under one dependency not
    /// ready yet (by address): a unit that becomes ready looks only at
    /// those waiting for it.
    waiting: foldhash::HashMap<usize, Waiters>,
    /// Whether any unit of the group depends on another: without, nothing
    /// needs to look for dependents.
    dependencies_among_units: bool,
    /// The members sorted, made when first needed, forgotten when they
    /// change; kept only while some unit depends on another.
    graph: std::cell::OnceCell<Arc<Graph>>,
    /// Where a nested group tells its parent whether it is ready.
    parent: Option<ParentLink>,
    /// The task that turns the stop and the kill into messages, while the
    /// group's run is in progress.
    forwarder: Option<AbortHandle>,
    /// A unit changed since the group last looked whether it is ready.
    unseen_changes: std::cell::Cell<bool>,
    /// Where that look found a unit holding the group back: the next starts
    /// there.
    ready_cursor: usize,
    /// While that look found the group ready: the units changed since, the
    /// only ones that can hold it back now (`None`: it was not ready, or
    /// more changed than are kept; every unit is looked at then). A group
    /// of 50k ready units, one per connection, looked at each of them at
    /// every unit added or ended.
    changed_while_ready: std::cell::RefCell<Option<Vec<Arc<Unit>>>>,
    /// The units have been launched.
    launched: bool,
    /// A unit was stopped while it waited: the table of waiting units may
    /// hold stale entries, pruned as its lists grow.
    stopped_while_waiting: bool,
    /// A run could not be started in this turn: the owner's task lets the
    /// runtime's other tasks run before it goes on (see `poll_turns`).
    spawn_failed: bool,
    /// The last start time stamped, and its stamp: the runs that a turn
    /// starts together share one start time, stamped once.
    last_stamp: Option<(Instant, Stamp)>,
}

/// A run that ended by itself, and what its policy decided.
struct Exit {
    reason: ExitReason,
    succeeded: bool,
    /// `None` while the group ends: no restart then.
    decision: Option<Decision>,
    epoch: u32,
    /// When the owner learned of it: also the next run's start time.
    now: Instant,
}

/// A nested group's way to tell its parent's owner whether it is ready.
pub(crate) struct ParentLink {
    pub(crate) mailbox: Mailbox,
    /// The parent's owner, for a turn taken at once when it is idle.
    pub(crate) owner: Weak<dyn OwnerLink>,
    pub(crate) epoch: u32,
    /// What it told last.
    pub(crate) ready: bool,
}

impl Node {
    fn new(
        shared: Arc<Shared>,
        group: Arc<Unit>,
        stop: CancellationToken,
        parent: Option<ParentLink>,
        owner: Weak<dyn OwnerLink>,
    ) -> Node {
        let (mailbox, inbox) = mpsc::unbounded_channel();
        let body = group_body(&group);
        body.set_owner(Some(OwnerAddress { mailbox: mailbox.clone(), owner: owner.clone() }));
        let intensity = body.intensity.map(Intensity::new);
        let dependencies_among_units = body.members().iter().any(|unit| !unit.settings.depends_on.is_empty());
        let rng = shared.rng();
        let node = Node {
            shared,
            group,
            mailbox,
            inbox,
            owner,
            own_task: None,
            free_task: None,
            received: Vec::new(),
            stop,
            timers: Timers::default(),
            intensity,
            rng,
            waiters: Vec::new(),
            plan: None,
            resumes: VecDeque::new(),
            deferred: VecDeque::new(),
            ending: None,
            killed: false,
            waiting: foldhash::HashMap::default(),
            dependencies_among_units,
            graph: std::cell::OnceCell::new(),
            parent,
            forwarder: None,
            unseen_changes: std::cell::Cell::new(true),
            ready_cursor: 0,
            changed_while_ready: std::cell::RefCell::new(None),
            launched: false,
            stopped_while_waiting: false,
            spawn_failed: false,
            last_stamp: None,
        };
        // A group's run starts its units afresh, restart counts included:
        // a group restarted by its parent or by hand gives its units their
        // restarts again, as OTP starts a restarted supervisor's children.
        for unit in node.graph().order() {
            {
                let mut record = unit.record();
                record.tracker = RestartTracker::new();
                record.state = UnitState::Starting;
            }
            node.changed(unit);
        }
        node
    }

    /// Takes turns while there is something to do: the messages first,
    /// then the deadlines; `Ready` once the group's run is over.
    fn poll_turns(&mut self, cx: &mut Context<'_>) -> Poll<Ending> {
        loop {
            if let (Some(ending), None) = (&self.ending, &self.plan) {
                let ending = ending.clone();
                self.close();
                return Poll::Ready(ending);
            }
            // Never 0: the owner holds a sender, so the inbox stays open.
            if self.inbox.poll_recv_many(cx, &mut self.received, RECEIVED_AT_ONCE).is_ready() {
                self.on_received();
            } else if let Poll::Ready(timer) = self.timers.poll_expired(cx) {
                self.on_timer(timer);
                self.handle_deferred();
            } else {
                self.remember_own_task(cx);
                return Poll::Pending;
            }
            self.tell_parent();
            if std::mem::take(&mut self.spawn_failed) {
                // Its end is in the inbox, and with no restart delay the
                // next attempt would come in this same poll: a program that
                // cannot start would hold the thread for as many attempts
                // as the runtime's budget allows. One attempt a poll, and
                // the next once the runtime has looked at its timers and
                // I/O and run its other tasks, as after a `yield_now`.
                self.remember_own_task(cx);
                let _ = std::pin::pin!(tokio::task::yield_now()).poll(cx);
                return Poll::Pending;
            }
        }
    }

    fn remember_own_task(&mut self, cx: &Context<'_>) {
        if !self.own_task.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
            self.own_task = Some(cx.waker().clone());
        }
    }

    /// Has the owner's task poll again.
    fn wake_own_task(&self) {
        if let Some(waker) = &self.own_task {
            waker.wake_by_ref();
        }
    }

    /// Whether nothing starts or restarts in the group any more: it ends,
    /// or the supervisor shuts down. A shutdown ends a nested group only
    /// once its parent stops it; until then its units must not be
    /// restarted either (no unit starts once a shutdown has begun).
    fn winds_down(&self) -> bool {
        self.ending.is_some() || self.shared.is_shutting_down()
    }

    /// The group has ended and nothing it asked is still in flight.
    fn run_is_over(&self) -> bool {
        self.ending.is_some() && self.plan.is_none()
    }

    /// Handles the messages just received, in order. Once the group's run
    /// is over, the rest are answered as the closed inbox answers them.
    fn on_received(&mut self) {
        let mut received = std::mem::take(&mut self.received);
        for msg in received.drain(..) {
            if self.run_is_over() {
                self.refuse(msg);
                continue;
            }
            self.on_message(msg);
            self.handle_deferred();
        }
        // The buffer is kept for the next batch.
        self.received = received;
    }

    /// Turns the group's stop and the shutdown's kill into messages, so
    /// that the owner's loop waits on its mailbox and its timers alone:
    /// waiting on the tokens as well would cost four locks each time the
    /// owner goes idle, that is at each restart.
    fn forward_stop_and_kill(&self) -> AbortHandle {
        let (stop, kill_now) = (self.stop.clone(), self.shared.kill_now.clone());
        let (to_stop, to_kill) = (self.mailbox.clone(), self.mailbox.clone());
        let forwarder = tokio::spawn(async move {
            tokio::join!(
                async move {
                    stop.cancelled().await;
                    let _ = to_stop.send(Msg::EndGroup);
                },
                async move {
                    kill_now.cancelled().await;
                    let _ = to_kill.send(Msg::KillNow);
                },
            );
        });
        forwarder.abort_handle()
    }

    /// Tells the parent's owner when the group becomes ready or stops being
    /// ready.
    fn tell_parent(&mut self) {
        // Looking costs a pass over the units: once a burst of messages has
        // been handled, not after each, and only if a unit changed.
        if self.parent.is_none() || !self.inbox.is_empty() || !self.unseen_changes.replace(false) {
            return;
        }
        let ready = self.ending.is_none() && self.all_ready();
        let Some(parent) = &self.parent else { return };
        if ready == parent.ready {
            if !ready {
                return;
            }
            // Ready all along for the parent, though not for a while for
            // what looks at the group's units (its status, its dependents'
            // start): said again, so that the units waiting for the group
            // look again, and so do the waits on it.
            self.shared.changes.changed(&self.group);
        }
        let why = (!ready).then(|| "a unit of the group is not ready".to_owned());
        let msg = Msg::Ready { unit: self.group.clone(), epoch: parent.epoch, ready, why };
        // Told in a turn of the parent's taken here when its owner is idle,
        // and so on up the tree: a call answered in this turn (a unit of
        // the group restarted) then returns only once the groups above
        // know. By message otherwise, after what the parent has queued.
        let msg = match parent.owner.upgrade() {
            Some(owner) => owner.try_turn(msg, false).err(),
            None => Some(msg),
        };
        if let Some(msg) = msg {
            let _ = parent.mailbox.send(msg);
        }
        if let Some(parent) = &mut self.parent {
            parent.ready = ready;
        }
    }

    /// Whether every unit that should run is ready. The look starts at the
    /// unit that held the group back last time and goes round once, so that
    /// a group whose units become ready one at a time is looked over about
    /// once in all, not once per unit.
    fn all_ready(&mut self) -> bool {
        if let Some(mut changed) = self.changed_while_ready.get_mut().take()
            && changed.iter().all(|unit| unit.counts_ready() || !Self::is_member(unit))
        {
            changed.clear();
            *self.changed_while_ready.get_mut() = Some(changed);
            return true;
        }
        let members = self.body().members();
        let holds_back = |slot: &Option<Arc<Unit>>| slot.as_ref().is_some_and(|unit| !unit.counts_ready());
        let found = round::first_holding_back(members.slots(), self.ready_cursor, holds_back);
        drop(members);
        match found {
            Some(at) => {
                self.ready_cursor = at;
                false
            }
            None => {
                *self.changed_while_ready.get_mut() = Some(Vec::new());
                true
            }
        }
    }

    /// Begins the group's run, once: the forwarder of its stop, then its
    /// units. The forwarder is in place before any unit runs, so that
    /// whoever sees a unit running sees every task of its group's.
    fn begin(&mut self) {
        if self.forwarder.is_none() {
            self.forwarder = Some(self.forward_stop_and_kill());
        }
        self.launch_all();
    }

    /// Starts the units in start order, once: a nested group's are started
    /// by its parent's owner, before its own run begins.
    fn launch_all(&mut self) {
        if std::mem::replace(&mut self.launched, true) {
            return;
        }
        // A shutdown (or the group's stop) that came first: nothing starts.
        // The units wait as they are, `Starting`, for the ending to stop them.
        if self.stop.is_cancelled() || self.shared.is_shutting_down() {
            return;
        }
        // One start time for the lot: a clock read per unit adds up.
        let now = Instant::now();
        let graph = self.graph();
        if self.dependencies_among_units {
            // Room for every unit to wait: the table does not grow unit by unit.
            self.waiting.reserve(graph.order().len());
        }
        // Each unit is launched at its turn: `Node::start` made them all
        // `Starting`, and a unit is released from waiting only once its own
        // turn has made it wait.
        for (at, unit) in graph.order().iter().enumerate() {
            if self.ending.is_some() || self.asked_to_stop(at, unit) {
                // The rest wait as they are, `Starting`, for the ending.
                return;
            }
            self.launch_at(unit, now);
        }
    }

    /// Whether a shutdown or the group's stop was asked while its units
    /// are launched: the launch stops there. Spawning a thousand processes
    /// takes seconds, and each spawned after the request would only be
    /// stopped again, or killed once the shutdown's time is up. The group's
    /// token (a lock) is looked at every 64 units, or before a process.
    fn asked_to_stop(&self, at: usize, unit: &Unit) -> bool {
        self.shared.is_shutting_down()
            || ((at.is_multiple_of(64) || !matches!(unit.body, Body::Task(_))) && self.stop.is_cancelled())
    }

    /// What every turn taken on a caller's task ends with.
    fn end_turn(&mut self) {
        self.handle_deferred();
        self.tell_parent();
        // The owner's task waits on its inbox and its sleep alone: it is
        // woken for what only it does, closing and taking a due item.
        let armed = self.own_task.as_ref().is_none_or(|owner| self.timers.arm_for(owner));
        if self.run_is_over() || !armed {
            self.wake_own_task();
        }
    }

    fn body(&self) -> &GroupBody {
        group_body(&self.group)
    }

    /// `unit` changed: wakes the waits on it, and on the units that depend
    /// on it (a unit waiting for its dependencies tells how they are).
    // Inlined, as `Changes::changed`: a change per run's start and end.
    #[inline]
    fn changed(&self, unit: &Arc<Unit>) {
        let changes = &self.shared.changes;
        changes.changed(unit);
        self.unseen_changes.set(true);
        let mut kept = self.changed_while_ready.borrow_mut();
        if let Some(changed) = kept.as_mut() {
            // Past that many, every unit is looked at.
            if changed.len() < CHANGES_KEPT_WHILE_READY {
                changed.push(unit.clone());
            } else {
                *kept = None;
            }
        }
        drop(kept);
        if changes.anyone_waiting() {
            self.changed_for_waits_around(unit);
        }
    }

    /// Wakes the waits that look at `unit` from beside it: on the units that
    /// depend on it, and, once it has given up or ended, or waits in vain,
    /// on the groups above it and what waits for them and, if it is a group
    /// that ended, on its units.
    // Out of line: inlined into every call of `changed`, it made a start of
    // 10k units a tenth slower, with nobody waiting.
    #[cold]
    fn changed_for_waits_around(&self, unit: &Arc<Unit>) {
        let state = unit.state();
        let ended = matches!(state, UnitState::Failed | UnitState::Exited);
        // A unit that begins to wait in vain, for a unit that gave up or
        // ended (restarted by its policy or its group's strategy after
        // that, or added so), is stuck as one that ended is: a wait for it
        // to be ready, woken by neither `Waiting` nor a change of that unit,
        // long past, ends now, and so do the waits down from it.
        let waits_in_vain = state == UnitState::Waiting && unit.is_stuck(&self.body().members());
        if waits_in_vain {
            self.shared.changes.changed_around(unit);
        }
        if self.dependencies_among_units {
            self.dependents_changed(unit, ended || waits_in_vain);
        }
        if state == UnitState::Waiting && unit.group().is_some() {
            // A group that waits to start, its units at rest: a wait for one
            // of them to be ready looks whether it waits in vain.
            paths::walk(unit, &mut |inside| self.shared.changes.changed_around(inside));
        }
        if !ended && !waits_in_vain {
            return;
        }
        let changes = &self.shared.changes;
        // A wait for a group above it to be ready looks down at it, and so
        // does a wait for a unit that waits for one of those groups: held
        // back by this unit, the group waits in vain now, though it was not
        // ready before either, and its parent, told nothing new, wakes no
        // wait on its dependents. Only a unit that holds its group back, or
        // leaves units of it that depend on it waiting in vain, can hold the
        // groups above back: a unit per connection that ends and rests does
        // neither, and costs no look for the dependents of those groups.
        let holds_back = !unit.counts_ready()
            || (self.dependencies_among_units && self.dependency_graph().direct_dependents(unit).next().is_some());
        let above: Vec<Arc<Unit>> = paths::groups_above(&self.shared.root, &unit.path).collect();
        for (at, group) in above.iter().enumerate() {
            changes.changed_around(group);
            if holds_back {
                wake_dependents_of(&self.shared, above.get(at + 1).unwrap_or(&self.shared.root), group);
            }
        }
        if ended && unit.group().is_some() {
            // A wait for one of its units to be ready looks at the groups
            // above it: this one has ended, and that unit with it.
            paths::walk(unit, &mut |inside| changes.changed_around(inside));
        }
    }

    /// Wakes the waits on the units that depend on `unit` directly. Once it
    /// has given up or ended, or waits in vain, every wait down its chain
    /// of dependents, whatever their own state: a wait for one of them to
    /// be ready ends then if it waits in vain, for this unit, or, through
    /// this unit done with its work (a one-shot job), for what it needed,
    /// which they wait for now. Only then: a walk down the chain at each
    /// change took the start of a chain of 100 units, each waiting for the
    /// one before, from 0.16 ms to 1.76. `for_good`: it is `Failed` or
    /// `Exited`, or waits in vain.
    fn dependents_changed(&self, unit: &Unit, for_good: bool) {
        let graph = self.dependency_graph();
        if graph.direct_dependents(unit).next().is_none() {
            return;
        }
        if for_good {
            wake_down_chain(&self.shared, graph, unit);
        } else {
            for dependent in graph.direct_dependents(unit) {
                self.shared.changes.changed(dependent);
                if dependent.state() == UnitState::Exited {
                    // A job done at rest: what depends on it waits for this
                    // unit through it (see `Unit::holding_back`), and says
                    // how it is.
                    self.dependents_changed(dependent, false);
                }
            }
        }
    }

    /// The group's members sorted: in start order (registration order,
    /// the units added at run time after the registered ones, adjusted so
    /// that each unit comes after its dependencies), with who depends on
    /// whom. Without dependencies it is a fresh copy of the member list at
    /// each call: paths taken per unit look at `dependencies_among_units`
    /// (or the unit's own `depends_on`) first.
    fn graph(&self) -> Arc<Graph> {
        if !self.dependencies_among_units {
            // Nothing to sort: not worth a copy of the members kept per group.
            return Arc::new(Graph::of(self.body().units()));
        }
        self.dependency_graph().clone()
    }

    /// The kept graph, borrowed: for the paths taken per unit that depends
    /// on another, which only a group with dependencies among its units has.
    fn dependency_graph(&self) -> &Arc<Graph> {
        debug_assert!(self.dependencies_among_units, "a graph kept for a group without dependencies");
        self.graph.get_or_init(|| Arc::new(Graph::of(self.body().units())))
    }

    /// The members changed: the next look sorts them again, and the waits
    /// on the group look again.
    fn members_changed(&mut self) {
        self.graph.take();
        // A wait on the group may be about its members (how many are left).
        self.shared.changes.changed(&self.group);
    }

    /// The units that depend on `unit`, directly or not, in start order.
    fn dependents(&self, unit: &Arc<Unit>) -> Vec<Arc<Unit>> {
        if !self.dependencies_among_units {
            return Vec::new();
        }
        self.graph().dependents(unit)
    }

    /// What `unit` depends on, directly or not, in start order.
    fn needs(&self, unit: &Arc<Unit>) -> Vec<Arc<Unit>> {
        if unit.settings.depends_on.is_empty() {
            return Vec::new();
        }
        self.graph().needs(unit)
    }

    /// Whether `unit`, one of the group's, has not been removed.
    fn is_member(unit: &Unit) -> bool {
        !unit.record().removed
    }

    fn on_message(&mut self, msg: Msg) {
        if self.plan_runs() && self.waits_for_plan(&msg) {
            self.deferred.push_back(msg);
            return;
        }
        if let Msg::Ready { unit, ready: false, .. } = &msg
            && !self.deferred.is_empty()
        {
            // Heard at once, it is the last word on its unit's readiness:
            // what the unit said before, held back, is stale.
            self.deferred.retain(|held| !matches!(held, Msg::Ready { unit: of, .. } if Arc::ptr_eq(of, unit)));
        }
        match msg {
            Msg::Ended { unit, epoch, end } => self.on_ended(&unit, epoch, end),
            Msg::Ready { unit, epoch, ready, why } => self.set_ready(&unit, epoch, ready, why),
            Msg::StatusText { unit, epoch, text } => {
                let mut record = unit.record();
                if record.epoch == epoch {
                    // `STATUS=` with nothing clears it, as systemd does.
                    record.notes().status_text = (!text.is_empty()).then(|| text.into_boxed_str());
                    drop(record);
                    self.changed(&unit);
                }
            }
            Msg::Control { unit, op, reply } => self.on_control(unit, op, reply),
            Msg::Add { spec, reply } => {
                let _ = reply.send(self.add(*spec));
            }
            Msg::Remove { unit, reply } => self.on_remove(unit, reply),
            Msg::EndGroup => {
                // A shutdown whose time was up as it began (a timeout of
                // zero): no stop has a grace period, whichever of the two
                // words came first.
                self.killed |= self.shared.kill_now.is_cancelled();
                if self.ending.is_none() {
                    self.end_group(Ending::Stopped);
                }
            }
            Msg::KillNow => {
                if !self.killed {
                    self.kill();
                }
            }
        }
    }

    /// Whether `msg`, come while a strategy's or a call's plan runs, waits
    /// until the plan is over. Calls do, in their order. So does what a run
    /// says that could set off a plan of its own, or that concerns a unit
    /// the plan stops or starts again (until the plan asks it to stop: its
    /// end then answers that stop). What cannot touch the plan is heard at
    /// once, so that the group does not freeze for as long as a stop takes:
    /// a status text, a loss of readiness; and, in a `OneForOne` group
    /// (whose plans are calls that stop a unit with the units that depend
    /// on it), the end or the readiness of a unit that takes no part in the
    /// plan, which its policy acts on alone, as at any other time. A unit
    /// the plan is to stop, released meanwhile by such a readiness, waits
    /// for the plan (`release`).
    fn waits_for_plan(&self, msg: &Msg) -> bool {
        let Some(plan) = &self.plan else { return false };
        match msg {
            // Never held back: an ending drops a strategy's plan. Nor is a
            // unit's loss of readiness, which starts nothing: a unit found
            // hung is not ready from then on, whatever else goes on.
            Msg::EndGroup | Msg::KillNow | Msg::StatusText { .. } | Msg::Ready { ready: false, .. } => false,
            Msg::Ended { unit, .. } if plan.in_flight.contains(unit) => false,
            Msg::Ended { unit, .. } | Msg::Ready { unit, .. } => {
                self.body().strategy != Strategy::OneForOne || plan.takes_part(unit)
            }
            Msg::Control { .. } | Msg::Add { .. } | Msg::Remove { .. } => true,
        }
    }

    /// Whether a strategy's or a call's plan runs (not the group's ending):
    /// what comes meanwhile is held back, in order, until it ends.
    fn plan_runs(&self) -> bool {
        self.plan.as_ref().is_some_and(|plan| !matches!(plan.then, After::End))
    }

    /// Whether the calls that come now wait: a plan runs, or what it held
    /// back is still to be handled.
    fn holds_calls(&self) -> bool {
        self.plan_runs() || !self.deferred.is_empty()
    }

    fn handle_deferred(&mut self) {
        while self.plan.is_none() {
            if let Some(Resume { waiter, outcome, took }) = self.resumes.pop_front() {
                self.resume(waiter.unit, waiter.wants, outcome, took);
            } else if let Some(msg) = self.deferred.pop_front() {
                self.on_message(msg);
            } else {
                return;
            }
        }
    }

    fn on_timer(&mut self, timer: Timer) {
        match timer {
            Timer::Restart { unit, epoch } => self.restart_due(&unit, epoch),
            Timer::Regroup { cause, set } => {
                if self.winds_down() {
                    return;
                }
                let now = Instant::now();
                for (unit, epoch) in set {
                    // A paused sibling waits for its resume, restarted by its own policy then.
                    self.restart_if_due(&unit, epoch, Arc::ptr_eq(&unit, &cause), now);
                }
            }
            Timer::Abort { unit, epoch } => {
                let mut record = unit.record();
                if record.epoch == epoch && record.stop.is_some() {
                    abort(&mut record);
                }
            }
            Timer::Abandon { unit, epoch } => self.abandon(&unit, epoch),
            Timer::PlanGrace => self.plan_grace_over(),
        }
    }

    /// The grace periods are over: aborts every task still stopping.
    fn kill(&mut self) {
        self.killed = true;
        let now = Instant::now();
        for unit in self.graph().order() {
            let mut record = unit.record();
            if record.stop.is_some() && record.run.as_ref().is_some_and(|run| run.abort.is_some()) {
                abort(&mut record);
                let epoch = record.epoch;
                drop(record);
                self.timers.insert(now + ABANDON_AFTER, Timer::Abandon { unit: unit.clone(), epoch });
            }
        }
    }

    /// The group's run is over: handles calls no more.
    fn close(&mut self) {
        self.body().set_owner(None);
        self.inbox.close();
        while let Ok(msg) = self.inbox.try_recv() {
            self.refuse(msg);
        }
    }

    /// Answers a call that came after the group's run was over, as a call
    /// to a group that is not running is answered.
    fn refuse(&self, msg: Msg) {
        let refusal = |action, unit: &str| self.shared.refusal(&self.group, action, unit.to_owned());
        match msg {
            // Every unit of a group that is not running is at rest.
            Msg::Control { op: Op::Stop, reply, .. } => {
                let _ = reply.send(Ok(()));
            }
            Msg::Control { unit, op, reply } => {
                let _ = reply.send(Err(refusal(op.as_str(), &unit.path)));
            }
            Msg::Add { spec, reply } => {
                let _ = reply.send(Err(refusal("add", &join(&self.group.path, spec.name()))));
            }
            Msg::Remove { unit, reply } => {
                let _ = reply.send(Err(refusal("remove", &unit.path)));
            }
            Msg::Ended { .. } | Msg::Ready { .. } | Msg::StatusText { .. } | Msg::EndGroup | Msg::KillNow => {}
        }
    }
}

/// Messages taken from the inbox in one wait, at most.
const RECEIVED_AT_ONCE: usize = 64;

/// How many units changed while a group was ready are kept, to look at
/// those alone whether it still is (see `Node::changed_while_ready`).
const CHANGES_KEPT_WHILE_READY: usize = 256;

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(forwarder) = &self.forwarder {
            forwarder.abort();
        }
    }
}

/// The event for a run that ended by itself with `reason`.
fn exit_event(reason: ExitReason) -> EventKind {
    match reason {
        ExitReason::Panic(message) => EventKind::Panicked { message },
        reason => EventKind::Exited { reason },
    }
}

fn group_body(group: &Unit) -> &GroupBody {
    group.group().expect("a group's owner owns a group")
}

/// Wakes the waits down the chain of units that depend on `group` within
/// `parent`, the group it belongs to (see [`wake_down_chain`]), as
/// [`Node::dependents_changed`] does for a unit that ended: a wait for one
/// of them to be ready ends once `group` is held back for good.
fn wake_dependents_of(shared: &Shared, parent: &Unit, group: &Arc<Unit>) {
    let Some(body) = parent.group() else { return };
    let graph = {
        let members = body.members();
        let named = |member: &Arc<Unit>| member.settings.depends_on.iter().any(|name| **name == *group.name());
        if !members.iter().any(named) {
            return;
        }
        Graph::of(members.iter().cloned().collect())
    };
    wake_down_chain(shared, &graph, group);
}

/// Wakes the waits on every unit down the chain of those that depend on
/// `unit` in `graph`, whatever their own state, and on the units inside
/// the groups among them, which wait in vain with their group.
fn wake_down_chain(shared: &Shared, graph: &Graph, unit: &Unit) {
    for dependent in graph.dependents(unit) {
        shared.changes.changed_around(&dependent);
        paths::walk(&dependent, &mut |inside| shared.changes.changed_around(inside));
    }
}

/// Marks the units of the groups below `group`'s own units `Starting`, down
/// the tree, as its run is about to begin: that run's launch starts them,
/// in its owner's first turn, and until then a status or a call finds each
/// about to start (a call waits for its group to start), not `Stopped` in
/// a group that does not run. A group never launched puts them back at
/// rest with it (see [`settle_unstarted`]). Nothing else writes their
/// records yet: their groups have no owner.
pub(crate) fn mark_starting_below(shared: &Shared, group: &GroupBody) {
    // Read in place: a flat tree of 10k units is looked over at each start.
    for nested in group.members().iter().filter_map(|unit| unit.group()) {
        for member in nested.members().iter() {
            member.record().state = UnitState::Starting;
            shared.changes.changed(member);
        }
        mark_starting_below(shared, nested);
    }
}

/// Puts the units of `group`, a group stopped before its run began, back
/// at rest, down the tree: those marked to start with it (see
/// [`mark_starting_below`]) never will.
fn settle_unstarted(shared: &Shared, group: &GroupBody) {
    for unit in group.units() {
        let was_starting = {
            let mut record = unit.record();
            let starting = record.state == UnitState::Starting;
            if starting {
                record.state = UnitState::Stopped;
            }
            starting
        };
        if was_starting {
            shared.changes.changed(&unit);
        }
        if let Some(nested) = unit.group() {
            settle_unstarted(shared, nested);
        }
    }
}
