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

use std::collections::VecDeque;
use std::collections::hash_map::Entry;
use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use smol_str::SmolStr;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::observe::event::EventKind;
use crate::observe::report::{ShutdownCause, StopOutcome, UnitReport};
use crate::panics::log_contained;
use crate::spec::Spec;
use crate::spec::policy::{Decision, GiveUpReason, RestartTracker};
use crate::spec::validate::{self, join};
use crate::tree::batches::Batches;
use crate::tree::build;
use crate::tree::clock::{Stamp, later_by};
use crate::tree::graph::Graph;
use crate::tree::intensity::Intensity;
use crate::tree::launch::{self, Launched, Reuse};
use crate::tree::order;
use crate::tree::round;
use crate::tree::shared::{Changes, Shared};
use crate::tree::strategy::restart_set;
use crate::tree::timers::{TimerKey, Timers};
use crate::tree::unit::{
    Body, GroupBody, LastExit, Line, Mailbox, Msg, NextRun, Op, OwnerAddress, OwnerLink, Record, Reporter, RunEnd,
    RunHandle, Stop, Unit, address,
};
use crate::{Error, ExitReason, RestartPolicy, ShutdownOrder, Strategy, UnitState};

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
/// address: a plan of 10k units finds each in constant time.
#[derive(Default)]
struct InFlight(foldhash::HashMap<usize, Arc<Unit>>);

impl InFlight {
    fn insert(&mut self, unit: &Arc<Unit>) {
        self.0.insert(address(unit), unit.clone());
    }

    fn contains(&self, unit: &Arc<Unit>) -> bool {
        self.0.contains_key(&address(unit))
    }

    fn remove(&mut self, unit: &Arc<Unit>) {
        self.0.remove(&address(unit));
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn reserve(&mut self, count: usize) {
        self.0.reserve(count);
    }

    fn units(&self) -> impl Iterator<Item = &Arc<Unit>> {
        self.0.values()
    }
}

/// Units to stop, a batch at a time, then what follows.
struct Plan {
    batches: Batches<Arc<Unit>>,
    /// Asked to stop, not stopped yet.
    in_flight: InFlight,
    /// The one timer for the grace periods of the plan's tasks, armed for
    /// the earliest: a plan of 10k stops arms one, not 10k.
    grace: Option<(Instant, TimerKey)>,
    then: After,
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
    Start(oneshot::Sender<Result<(), Error>>),
    Remove(oneshot::Sender<Result<UnitReport, Error>>),
}

/// A waiter whose unit has stopped, held until the plan in progress is
/// done (see [`Node::stopped`]).
struct Resume {
    waiter: Waiter,
    outcome: StopOutcome,
    took: Duration,
}

/// A group's owner: its [`Node`], one turn at a time. Its task takes a
/// turn for each burst of messages and each deadline; a run or a call that
/// finds that task idle takes the turn itself (see [`OwnerLink::try_turn`]).
pub(crate) struct Owner {
    /// The node's own mailbox, reachable without its lock.
    mailbox: Mailbox,
    shared: Arc<Shared>,
    node: Mutex<Node>,
}

impl Owner {
    fn lock(&self) -> MutexGuard<'_, Node> {
        self.node.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The node, for a turn taken now on the caller's task, if nobody holds
    /// it and it may be taken there (see [`OwnerLink::try_turn`]).
    fn begin_turn(&self) -> Option<MutexGuard<'_, Node>> {
        let node = match self.node.try_lock() {
            Ok(node) => node,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        // What is queued goes first (its sender may be this caller); the
        // registered units are launched, and a group whose run is over is
        // closed, by the owner's task alone.
        (node.launched && !node.run_is_over() && node.inbox.is_empty()).then_some(node)
    }

    /// Like [`begin_turn`](Self::begin_turn), for a caller that may be
    /// user code: only on the supervisor's runtime, and not inside a span
    /// of the caller's (the supervisor's own log lines would carry it).
    fn begin_caller_turn(&self) -> Option<MutexGuard<'_, Node>> {
        if !self.shared.on_own_runtime() || !tracing::Span::current().is_none() {
            return None;
        }
        self.begin_turn()
    }

    /// Starts the group's units, in start order, then supervises them until
    /// the group's run ends, and says why.
    pub(crate) async fn run(self: Arc<Self>) -> Ending {
        {
            self.lock().begin();
        }
        std::future::poll_fn(|cx| self.lock().poll_turns(cx)).await
    }
}

impl OwnerLink for Owner {
    fn try_turn(&self, msg: Msg, go_on: bool) -> Result<Option<NextRun>, Msg> {
        let Some(mut node) = self.begin_turn() else { return Err(msg) };
        if go_on && let Msg::Ended { unit, epoch, .. } = &msg {
            node.free_task = Some(FreeTask { unit: unit.clone(), epoch: *epoch, abort: None, stop: None, next: None });
        }
        node.on_message(msg);
        node.end_turn();
        Ok(node.free_task.take().and_then(FreeTask::into_next))
    }

    fn try_turn_for_caller(&self, msg: Msg) -> Result<(), Msg> {
        let Some(mut node) = self.begin_caller_turn() else { return Err(msg) };
        node.on_message(msg);
        node.end_turn();
        Ok(())
    }

    fn try_add_for_caller(&self, spec: Spec) -> Result<Result<(), Error>, Spec> {
        let Some(mut node) = self.begin_caller_turn() else { return Err(spec) };
        // While a plan runs, the calls that came meanwhile wait for it, in
        // their order: this one goes by message, after them.
        if node.holds_calls() {
            return Err(spec);
        }
        let added = node.add(spec);
        node.end_turn();
        Ok(added)
    }

    fn send(&self, msg: Msg) {
        // An error only means the owner has gone, with its runtime.
        let _ = self.mailbox.send(msg);
    }

    fn changed_outside_turns(&self, unit: &Unit) {
        self.shared.changes.changed(unit);
    }
}

/// The tokio task of a run that ended in the current turn, free to carry
/// its unit's next run if the turn starts one.
struct FreeTask {
    unit: Arc<Unit>,
    epoch: u32,
    /// The task's handle, once the run's end is recorded.
    abort: Option<JoinHandle<()>>,
    /// The run's stop token, if it was never cancelled: the next run in
    /// this task takes it rather than a new one.
    stop: Option<CancellationToken>,
    /// The next run, once started.
    next: Option<NextRun>,
}

impl FreeTask {
    /// The next run it carries, if the turn started one. A stop token no
    /// next run took is cancelled: its run has ended, and what still waits
    /// on it (a task the user spawned with a clone of its context) learns
    /// so.
    fn into_next(self) -> Option<NextRun> {
        if let Some(stop) = &self.stop {
            stop.cancel();
        }
        self.next
    }
}

/// The state of a group's owner, changed in its turns (see [`Owner`]).
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

/// The units waiting for one dependency: most often one, kept without a
/// list of its own.
enum Waiters {
    One(Arc<Unit>),
    More(Vec<Arc<Unit>>),
}

impl Waiters {
    /// Adds `unit`; `prune`: some entries may be stale (see [`forget_stale`]).
    fn push(&mut self, unit: Arc<Unit>, prune: bool) {
        match self {
            Waiters::One(first) => *self = Waiters::More(vec![first.clone(), unit]),
            Waiters::More(units) => {
                if prune && units.len() == units.capacity() {
                    forget_stale(units);
                }
                units.push(unit);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        match self {
            Waiters::One(_) => 1,
            Waiters::More(units) => units.len(),
        }
    }
}

/// Keeps each unit that still waits, once. A unit stopped and started again
/// while it waits is listed again each time: pruned whenever the list would
/// grow, it stays at most twice as long as the units waiting, however often
/// that happens, for the price of one pass per doubling (paid only once a
/// unit was stopped while it waited: 10k units waiting for one pay
/// nothing at their start).
fn forget_stale(units: &mut Vec<Arc<Unit>>) {
    let mut seen = foldhash::HashSet::default();
    units.retain(|unit| unit.state() == UnitState::Waiting && seen.insert(address(unit)));
}

/// How a run ended, as its report's look at the record found it.
enum Ended {
    /// Asked to stop.
    Stopped(Settled),
    /// By itself.
    Exited(Exit),
}

/// A stop that ended, as recorded.
struct Settled {
    /// Aborted or killed after its grace period.
    forced: bool,
    took: Duration,
    /// Its own grace period's timer, if it had one.
    abort_timer: Option<TimerKey>,
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
    pub(crate) epoch: u32,
    /// What it told last.
    pub(crate) ready: bool,
}

impl Node {
    /// Makes the owner of `group`, its units about to start. Then
    /// [`run`](Owner::run) it.
    pub(crate) fn start(
        shared: Arc<Shared>,
        group: Arc<Unit>,
        stop: CancellationToken,
        parent: Option<ParentLink>,
    ) -> Arc<Owner> {
        Arc::new_cyclic(|owner| {
            let node = Node::new(shared, group, stop, parent, owner.clone() as Weak<dyn OwnerLink>);
            Owner { mailbox: node.mailbox.clone(), shared: node.shared.clone(), node: Mutex::new(node) }
        })
    }

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
        if ready != parent.ready {
            let why = (!ready).then(|| "a unit of the group is not ready".to_owned());
            let msg = Msg::Ready { unit: self.group.clone(), epoch: parent.epoch, ready, why };
            let _ = parent.mailbox.send(msg);
            if let Some(parent) = &mut self.parent {
                parent.ready = ready;
            }
        }
    }

    /// Whether every unit that should run is ready. The look starts at the
    /// unit that held the group back last time and goes round once, so that
    /// a group whose units become ready one at a time is looked over about
    /// once in all, not once per unit.
    fn all_ready(&mut self) -> bool {
        let members = self.body().members();
        let holds_back = |slot: &Option<Arc<Unit>>| slot.as_ref().is_some_and(|unit| !unit.counts_ready());
        let found = round::first_holding_back(members.slots(), self.ready_cursor, holds_back);
        drop(members);
        match found {
            Some(at) => {
                self.ready_cursor = at;
                false
            }
            None => true,
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
        for unit in graph.order() {
            if self.ending.is_none() {
                self.launch_at(unit, now);
            }
        }
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
    fn changed(&self, unit: &Unit) {
        let changes = &self.shared.changes;
        changes.changed(unit);
        self.unseen_changes.set(true);
        if self.dependencies_among_units && changes.anyone_waiting() {
            self.dependents_changed(unit);
        }
    }

    /// Wakes the waits on the units that depend on `unit`.
    fn dependents_changed(&self, unit: &Unit) {
        for dependent in self.dependency_graph().direct_dependents(unit) {
            self.shared.changes.changed(dependent);
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
        if self.plan_runs()
            && !matches!(&msg, Msg::Ended { unit, .. } if self.plan.as_ref().is_some_and(|plan| plan.in_flight.contains(unit)))
            // Never held back: an ending drops a strategy's plan.
            && !matches!(msg, Msg::EndGroup | Msg::KillNow)
        {
            self.deferred.push_back(msg);
            return;
        }
        match msg {
            Msg::Ended { unit, epoch, end } => self.on_ended(&unit, epoch, end),
            Msg::Ready { unit, epoch, ready, why } => self.set_ready(&unit, epoch, ready, why),
            Msg::StatusText { unit, epoch, text } => {
                let mut record = unit.record();
                if record.epoch == epoch {
                    record.notes().status_text = Some(text.into_boxed_str());
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

    /// Starts a run of `unit` once its dependencies are ready; until then
    /// it is `Waiting`.
    fn launch(&mut self, unit: &Arc<Unit>) {
        self.launch_at(unit, Instant::now());
    }

    /// Like `launch`, with the time already read by the caller: the restart
    /// path reads the clock once for a run's end and the next run's start.
    fn launch_at(&mut self, unit: &Arc<Unit>, now: Instant) {
        let first_blocker =
            if unit.settings.depends_on.is_empty() { None } else { self.blockers(unit).next().cloned() };
        let Some(first_blocker) = first_blocker else {
            self.launch_now(unit, now);
            return;
        };
        // The names are copied only for someone to see them.
        let on =
            self.shared.events_seen().then(|| self.blockers(unit).map(|blocker| blocker.path.to_string()).collect());
        {
            let mut record = unit.record();
            record.state = UnitState::Waiting;
            record.ready = false;
        }
        self.changed(unit);
        if let Some(on) = on {
            self.shared.emit(unit, EventKind::Waiting { on });
        }
        self.wait_for(&first_blocker, unit.clone());
    }

    /// The dependencies of `unit` that are not ready, in the order its
    /// `depends_on` names them.
    fn blockers<'a>(&'a self, unit: &'a Unit) -> impl Iterator<Item = &'a Arc<Unit>> + 'a {
        self.dependency_graph().dependencies(unit).filter(|dependency| !dependency.record().ready)
    }

    /// `unit` waits for `blocker` (and, once it is ready, for the next).
    fn wait_for(&mut self, blocker: &Unit, unit: Arc<Unit>) {
        blocker.awaited.store(true, Ordering::Relaxed);
        let prune = self.stopped_while_waiting;
        match self.waiting.entry(address(blocker)) {
            Entry::Occupied(mut waiting) => waiting.get_mut().push(unit, prune),
            Entry::Vacant(entry) => {
                entry.insert(Waiters::One(unit));
            }
        }
    }

    /// Marks `unit` ready or not, as its run `epoch` said, if that run is
    /// still the one running; a unit that becomes ready lets those waiting
    /// for it start.
    fn set_ready(&mut self, unit: &Arc<Unit>, epoch: u32, ready: bool, why: Option<String>) {
        {
            let mut record = unit.record();
            if record.epoch != epoch || record.state != UnitState::Running {
                return; // a late word from an older run, or a run being stopped
            }
            if record.ready == ready && (ready || record.not_ready() == why.as_deref()) {
                return;
            }
            record.ready = ready;
            let why_not = why.clone().map(String::into_boxed_str);
            if why_not.is_some() || record.notes.is_some() {
                record.notes().not_ready = why_not;
            }
        }
        self.changed(unit);
        if ready {
            self.shared.emit(unit, EventKind::Ready);
            self.release_waiting_on(unit);
        } else {
            self.shared.emit(unit, EventKind::NotReady { reason: why });
        }
    }

    /// `ready` has become ready: starts the units that waited for it and
    /// for nothing else; the others wait on for their next dependency.
    fn release_waiting_on(&mut self, ready: &Arc<Unit>) {
        if self.waiting.is_empty() || self.ending.is_some() {
            return;
        }
        let Some(waiting) = self.waiting.remove(&address(ready)) else { return };
        ready.awaited.store(false, Ordering::Relaxed);
        let waiting = match waiting {
            Waiters::One(unit) => {
                self.release(unit);
                return;
            }
            Waiters::More(units) => units,
        };
        for unit in waiting {
            self.release(unit);
        }
    }

    /// A dependency of `unit` became ready: it starts if it waited for
    /// nothing else, and waits for the next otherwise.
    fn release(&mut self, unit: Arc<Unit>) {
        if unit.state() != UnitState::Waiting {
            return; // stopped meanwhile
        }
        let next_blocker = self.blockers(&unit).next().cloned();
        match next_blocker {
            None => self.launch_now(&unit, Instant::now()),
            Some(blocker) => self.wait_for(&blocker, unit),
        }
    }

    /// Starts a run of `unit` now; `now` is its start time.
    fn launch_now(&mut self, unit: &Arc<Unit>, now: Instant) {
        let (epoch, restarts) = begin_run(&mut unit.record());
        self.start_run(unit, now, epoch, restarts);
    }

    /// Starts run `epoch` of `unit`, which [`begin_run`] made `Starting`.
    fn start_run(&mut self, unit: &Arc<Unit>, now: Instant, epoch: u32, restarts: u32) {
        let launched = match &unit.body {
            Body::Group(_) => Ok(self.launch_group(unit, epoch)),
            Body::Task(_) | Body::Process(_) => {
                let free_task = self.take_free_task(unit);
                launch::start(unit, epoch, restarts, &self.owner, &self.shared.kill_now, free_task)
            }
        };
        match launched {
            Ok(Launched { handle, pid, ready, next }) => {
                if let (Some(next), Some(free)) = (next, &mut self.free_task) {
                    free.next = Some(next);
                }
                let stamp = self.stamp(now);
                {
                    let mut record = unit.record();
                    record.state = UnitState::Running;
                    record.ready = ready;
                    record.pid = pid.and_then(NonZeroU32::new);
                    record.run_started = Some(stamp);
                    record.run = Some(handle);
                }
                self.changed(unit);
                self.shared.emit(unit, EventKind::Started { restart_count: restarts, pid });
                if ready {
                    self.release_waiting_on(unit);
                }
            }
            Err(reason) => {
                // Told through the mailbox like any ending, so that a unit
                // that cannot start is not restarted from within this call.
                unit.record().run = Some(RunHandle { stop: CancellationToken::new(), abort: None, signaller: None });
                let _ = self.mailbox.send(Msg::Ended { unit: unit.clone(), epoch, end: RunEnd::Exited(reason) });
                self.spawn_failed = true;
            }
        }
    }

    /// `now` as a unit's start time: a start of 10k units reads the clock
    /// once, and stamps it once too.
    fn stamp(&mut self, now: Instant) -> Stamp {
        match self.last_stamp {
            Some((at, stamp)) if at == now => stamp,
            _ => {
                let stamp = self.shared.clock.stamp(now);
                self.last_stamp = Some((now, stamp));
                stamp
            }
        }
    }

    /// The task free in this turn, if it is `unit`'s and carries no run
    /// yet: its abort handle, and the stop token its last run left.
    fn take_free_task(&mut self, unit: &Arc<Unit>) -> Option<Reuse> {
        let free = self.free_task.as_mut()?;
        if !Arc::ptr_eq(&free.unit, unit) || free.next.is_some() {
            return None;
        }
        // A run that ended by itself was never asked to stop: its token can
        // serve the next run. (A context hands out child tokens, so no code
        // of the user's can cancel it.)
        Some(Reuse { abort: free.abort.take()?, stop: free.stop.take() })
    }

    /// Starts a nested group's run: an owner of its own, whose units start
    /// before this call returns (a group has started once its units have).
    fn launch_group(&mut self, unit: &Arc<Unit>, epoch: u32) -> Launched {
        let stop = CancellationToken::new();
        let parent = ParentLink { mailbox: self.mailbox.clone(), epoch, ready: false };
        let owner = Node::start(self.shared.clone(), unit.clone(), stop.clone(), Some(parent));
        let ready = {
            let mut node = owner.lock();
            node.begin();
            let ready = node.all_ready();
            if let Some(parent) = &mut node.parent {
                parent.ready = ready;
            }
            ready
        };
        let reporter = Reporter::new(self.owner.clone(), unit.clone(), epoch);
        tokio::spawn(async move {
            let ending = owner.run().await;
            reporter.report(RunEnd::Exited(ending.exit_reason()));
        });
        Launched { handle: RunHandle { stop, abort: None, signaller: None }, pid: None, ready, next: None }
    }

    fn on_ended(&mut self, unit: &Arc<Unit>, epoch: u32, end: RunEnd) {
        // One clock read for the run's end and what follows it: the stop's
        // length, the policy's decision, the next run's start or the next
        // stop a plan asks for.
        let now = Instant::now();
        // One look at the record for the run's end and what follows from
        // it: the stop it answers, or the policy's decision.
        let (run, ended) = {
            let mut record = unit.record();
            if record.epoch != epoch || record.run.is_none() {
                return; // a late report from an older run
            }
            let mut run = take_run(&mut record);
            if let Some(free) = &mut self.free_task
                && Arc::ptr_eq(&free.unit, unit)
                && free.epoch == epoch
                && let Some(RunHandle { stop, abort, .. }) = run.take()
            {
                free.abort = abort;
                // A run asked to stop has its token cancelled: no next run
                // can take it.
                free.stop = record.stop.is_none().then_some(stop);
            }
            let ended = match record.stop.take() {
                Some(stop) => Ended::Stopped(settle_stop(&mut record, *stop, end, now)),
                None => Ended::Exited(self.decide_exit(&mut record, unit, end, now)),
            };
            (run, ended)
        };
        // Out of the lock: a run's handle takes locks of its own. A run that
        // ended by itself was never asked to stop: its token is cancelled
        // now, for what of the user's still waits on it (a task spawned with
        // a clone of its context). A stopped run's token is already.
        if let (Some(run), Ended::Exited(_)) = (&run, &ended) {
            run.stop.cancel();
        }
        drop(run);
        match ended {
            Ended::Stopped(settled) => self.finish_stop(unit, settled),
            Ended::Exited(exit) => self.on_exit(unit, exit),
        }
        self.advance_at(Some(now));
    }

    /// A stop settled: its timer, its event, its report line.
    fn finish_stop(&mut self, unit: &Arc<Unit>, settled: Settled) {
        let Settled { forced, took, abort_timer } = settled;
        if let Some(key) = abort_timer {
            // Its grace period no longer matters; the timer would hold the unit.
            self.timers.remove(key);
        }
        self.changed(unit);
        self.shared.emit(unit, EventKind::Stopped { forced, took });
        let outcome = if forced { StopOutcome::Forced } else { StopOutcome::Graceful };
        self.stopped(unit, outcome, took);
    }

    /// A run ended by itself: records how, and what its policy decides
    /// (nothing while the group ends). A restart makes it `Backoff` at once.
    fn decide_exit(&mut self, record: &mut Record, unit: &Unit, end: RunEnd, now: Instant) -> Exit {
        let reason = match end {
            RunEnd::Exited(reason) | RunEnd::Stopped { reason, .. } => reason,
            RunEnd::Aborted => ExitReason::Error("the run was dropped before it ended".to_owned()),
        };
        let succeeded = reason.is_success();
        let ending = self.ending.is_some();
        let random = if ending { 0.0 } else { self.rng.f64() };
        record_exit(record, &reason);
        let started = record.run_started.map(|at| self.shared.clock.instant(at));
        let ran_for = started.map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        // No restart while the group ends.
        let decision = (!ending).then(|| record.tracker.decide(&unit.settings.policy, succeeded, ran_for, now, random));
        if let Some(Decision::Restart { .. }) = decision {
            record.state = UnitState::Backoff;
        }
        Exit { reason, succeeded, decision, epoch: record.epoch, now }
    }

    /// A run ended by itself: the policy, the intensity and the strategy say
    /// what follows.
    fn on_exit(&mut self, unit: &Arc<Unit>, exit: Exit) {
        let Exit { reason, succeeded, decision, epoch, now } = exit;
        self.shared.emit(unit, exit_event(reason));
        let Some(decision) = decision else {
            self.set_state(unit, UnitState::Exited);
            return;
        };
        match decision {
            Decision::Restart { attempt, delay } => self.restart_later(unit, epoch, attempt, delay, now),
            rest => self.let_rest(unit, rest, succeeded),
        }
    }

    /// The policy lets `unit` rest after its run (`Decision::Exit` or
    /// `GiveUp`): `Exited` and `Finished`, or `Failed` and `GaveUp`; then
    /// what an end for good entails.
    fn let_rest(&mut self, unit: &Arc<Unit>, decision: Decision, succeeded: bool) {
        let failed = if let Decision::GiveUp(reason) = decision {
            self.set_state(unit, UnitState::Failed);
            self.shared.emit(unit, EventKind::GaveUp { reason });
            true
        } else {
            self.set_state(unit, UnitState::Exited);
            self.shared.emit(unit, EventKind::Finished);
            !succeeded
        };
        self.ended_for_good(unit, failed);
    }

    /// A unit's policy let it end: a critical unit ends its group, a
    /// temporary one is forgotten.
    fn ended_for_good(&mut self, unit: &Arc<Unit>, failed: bool) {
        if unit.settings.critical {
            self.end_group(Ending::Critical { unit: unit.path.clone(), failed });
        } else if unit.settings.temporary && !self.has_dependents(unit) {
            // One that others depend on stays, as `remove` would refuse it.
            self.forget(unit, StopOutcome::NotRunning, Duration::ZERO);
        }
    }

    fn set_state(&self, unit: &Unit, state: UnitState) {
        unit.record().state = state;
        self.changed(unit);
    }

    /// The policy restarts `unit` after `delay`, if the group's intensity
    /// allows one more restart, with the siblings its strategy takes along.
    fn restart_later(&mut self, unit: &Arc<Unit>, epoch: u32, attempt: u32, delay: Duration, now: Instant) {
        // `Backoff` already, since the decision.
        self.changed(unit);
        if let Some(intensity) = &mut self.intensity
            && !intensity.allow(now, PendingRestart { unit: unit.clone(), epoch }, PendingRestart::to_come)
        {
            let limit = self.body().intensity.expect("an intensity tracker has a limit");
            self.end_group(Ending::GaveUp(GiveUpReason::Intensity { max: limit.max, period: limit.period }));
            return;
        }
        self.shared.emit(unit, EventKind::Restarting { attempt, delay });
        match self.body().strategy {
            // No timer for no delay: the run's report already took this owner
            // round its loop once.
            Strategy::OneForOne if delay.is_zero() => self.restart_due_at(unit, epoch, now),
            Strategy::OneForOne => {
                self.timers.insert(later_by(now, delay), Timer::Restart { unit: unit.clone(), epoch });
            }
            strategy => self.regroup(unit, strategy, delay),
        }
    }

    /// Stops the siblings `strategy` restarts with `cause` (the most
    /// recently started first), then starts them all again after `delay`.
    fn regroup(&mut self, cause: &Arc<Unit>, strategy: Strategy, delay: Duration) {
        let graph = self.graph();
        let order = graph.order();
        let Some(position) = order.iter().position(|unit| Arc::ptr_eq(unit, cause)) else { return };
        let set: Vec<Arc<Unit>> = order[restart_set(strategy, position, order.len())]
            .iter()
            .filter(|unit| Arc::ptr_eq(unit, cause) || unit.state().is_active())
            .cloned()
            .collect();
        let siblings = || set.iter().filter(|unit| !Arc::ptr_eq(unit, cause));
        if self.shared.events_seen() {
            for sibling in siblings() {
                self.shared.emit(sibling, EventKind::SiblingFailed { sibling: cause.path.to_string(), strategy });
            }
        }
        self.plan = Some(Plan {
            batches: Batches::one_at_a_time(siblings().rev().cloned()),
            in_flight: InFlight::default(),
            grace: None,
            then: After::Regroup { cause: cause.clone(), set: set.clone(), delay },
        });
        self.advance();
    }

    /// Ends the group's run: stops every unit, then returns `ending` to the
    /// parent. At the root, this is the supervisor's shutdown.
    fn end_group(&mut self, ending: Ending) {
        if self.ending.is_some() {
            return;
        }
        if Arc::ptr_eq(&self.group, &self.shared.root) {
            self.shared.begin_shutdown(ending.cause());
            self.shared.expect_report_lines(self.body().members().len());
        }
        match &ending {
            Ending::Stopped => {}
            Ending::GaveUp(reason) => {
                log_contained(
                    || tracing::error!(group = %self.group.path, %reason, "group gave up; stopping its units"),
                );
            }
            Ending::Critical { unit, failed } => {
                log_contained(|| {
                    tracing::warn!(group = %self.group.path, %unit, failed, "critical unit ended; stopping the group");
                });
            }
        }
        self.ending = Some(ending);
        self.unseen_changes.set(true);
        // A plan in progress is dropped; the stops it asked for go on, and
        // the ending waits for them with the rest.
        let (in_flight, grace) = match self.plan.take() {
            Some(plan) => {
                self.interrupted(plan.then);
                (plan.in_flight, plan.grace)
            }
            None => Default::default(),
        };
        // The calls held back go on as calls during the ending do; a unit
        // removed so is not among those the ending stops and reports.
        for Resume { waiter, outcome, took } in std::mem::take(&mut self.resumes) {
            self.resume(waiter.unit, waiter.wants, outcome, took);
        }
        self.plan = Some(Plan { batches: self.ending_batches(), in_flight, grace, then: After::End });
        for msg in std::mem::take(&mut self.deferred) {
            self.on_message(msg);
        }
        self.advance();
    }

    /// What a plan that the group's ending interrupted still owes: a stop by
    /// hand answers once the ending has stopped its unit; a restart by hand
    /// cannot start it again.
    fn interrupted(&mut self, then: After) {
        match then {
            After::Reply { unit, reply } if unit.state().is_active() => {
                self.waiters.push(Waiter { unit, wants: Wants::Stop(reply) });
            }
            After::Reply { reply, .. } => {
                let _ = reply.send(Ok(()));
            }
            After::Relaunch { units, reply } => {
                if let Some(unit) = units.first() {
                    let _ = reply.send(self.refuse_while_ending(unit, Op::Restart.as_str()));
                }
            }
            After::Regroup { .. } | After::End => {}
        }
    }

    /// Every unit, in reverse start order: units added at run time first,
    /// together as far as their dependencies allow; then the registered
    /// ones, one at a time or all at once.
    fn ending_batches(&self) -> Batches<Arc<Unit>> {
        let graph = self.graph();
        let (order, deps) = (graph.order(), graph.positions());
        let (added, registered): (Vec<usize>, Vec<usize>) = (0..order.len()).partition(|&at| order[at].added);
        let units = |positions: Vec<usize>| positions.into_iter().map(|at| order[at].clone()).collect::<Vec<_>>();
        let mut batches = Batches::new();
        match self.shared.settings.shutdown_order {
            ShutdownOrder::Concurrent => {
                // Added units come last in start order: the first layers hold them.
                for layer in order::stop_layers(&deps, &(0..order.len()).collect::<Vec<_>>()) {
                    batches.push_together(units(layer));
                }
            }
            _ => {
                // The added units stop first, together as far as their
                // dependencies allow. No registered unit depends on an added
                // one: it depends on units registered with it, and a unit
                // that others depend on is never removed or forgotten, so
                // its name cannot pass to a unit added later.
                for layer in order::stop_layers(&deps, &added) {
                    batches.push_together(units(layer));
                }
                batches.push_each(registered.into_iter().rev().map(|at| order[at].clone()));
            }
        }
        batches
    }

    /// Moves the plan on: once every unit of a batch has stopped, asks the
    /// next batch; once none is left, does what follows.
    fn advance(&mut self) {
        self.advance_at(None);
    }

    /// Like `advance`, with the time already read by the caller, if it was.
    fn advance_at(&mut self, now: Option<Instant>) {
        loop {
            let Some(plan) = &mut self.plan else { return };
            if !plan.in_flight.is_empty() {
                return;
            }
            let Some(batch) = plan.batches.pop() else {
                let Some(plan) = self.plan.take() else { return };
                if let Some((_, key)) = plan.grace {
                    self.timers.remove(key);
                }
                match plan.then {
                    After::Regroup { cause, set, delay } => self.schedule_regroup(cause, set, delay),
                    After::Reply { reply, .. } => {
                        let _ = reply.send(Ok(()));
                    }
                    After::Relaunch { units, reply } => {
                        let _ = reply.send(self.relaunch(&units));
                    }
                    After::End => {}
                }
                return;
            };
            plan.in_flight.reserve(batch.len());
            // One clock read for the batch: its units are asked together.
            let now = now.unwrap_or_else(Instant::now);
            let mut shortest_grace: Option<Duration> = None;
            for unit in batch {
                if self.ended_before_asked(&unit, now) {
                    if self.ending.is_some() {
                        return; // a critical unit ended the group: the plan is dropped
                    }
                    continue;
                }
                match self.ask_stop(&unit, now, Grace::Plan) {
                    Asked::InFlight => {
                        if let Some(plan) = &mut self.plan {
                            plan.in_flight.insert(&unit);
                        }
                        if matches!(unit.body, Body::Task(_)) {
                            shortest_grace = Some(
                                shortest_grace
                                    .map_or(unit.settings.stop_timeout, |d| d.min(unit.settings.stop_timeout)),
                            );
                        }
                        self.take_deferred_end(&unit);
                    }
                    Asked::Done(outcome) => self.stopped(&unit, outcome, Duration::ZERO),
                }
            }
            if let Some(grace) = shortest_grace {
                self.arm_plan_grace(later_by(now, grace));
            }
        }
    }

    /// Arms the plan's grace timer for `at`, unless it is armed for then or
    /// earlier already (it fires early then, and is armed again).
    fn arm_plan_grace(&mut self, at: Instant) {
        let Some(plan) = &mut self.plan else { return };
        match plan.grace {
            Some((armed, _)) if armed <= at => {}
            armed => {
                if let Some((_, key)) = armed {
                    self.timers.remove(key);
                }
                plan.grace = Some((at, self.timers.insert(at, Timer::PlanGrace)));
            }
        }
    }

    /// The plan's grace timer fired: aborts each task of the plan whose
    /// grace period is over, and arms the timer for the next one.
    fn plan_grace_over(&mut self) {
        let Some(plan) = &mut self.plan else { return };
        plan.grace = None;
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for unit in plan.in_flight.units() {
            if !matches!(unit.body, Body::Task(_)) {
                continue;
            }
            let mut record = unit.record();
            let Some(stop) = record.stop.as_deref().filter(|stop| !stop.aborted) else { continue };
            let deadline = later_by(stop.asked, unit.settings.stop_timeout);
            if deadline <= now {
                abort(&mut record);
            } else {
                next = Some(next.map_or(deadline, |next| next.min(deadline)));
            }
        }
        if let Some(at) = next {
            self.arm_plan_grace(at);
        }
    }

    /// A unit asked to stop may have ended on its own while its report
    /// waited: that report answers the stop.
    fn take_deferred_end(&mut self, unit: &Arc<Unit>) {
        if let Some((epoch, end)) = self.take_held_end(unit, None) {
            self.on_ended(unit, epoch, end);
        }
    }

    /// Takes the report of how `unit`'s run ended out of the messages held
    /// back, if it is there: that of run `epoch`, or of any run if `None`.
    fn take_held_end(&mut self, unit: &Arc<Unit>, epoch: Option<u32>) -> Option<(u32, RunEnd)> {
        let found = self.deferred.iter().position(|msg| {
            matches!(msg, Msg::Ended { unit: ended, epoch: of, .. }
                if Arc::ptr_eq(ended, unit) && epoch.is_none_or(|epoch| *of == epoch))
        })?;
        match self.deferred.remove(found) {
            Some(Msg::Ended { epoch, end, .. }) => Some((epoch, end)),
            _ => None,
        }
    }

    /// Whether `unit`'s run had ended by itself before the plan came to ask
    /// it to stop (its report was held back meanwhile). If so, the run
    /// ended as it did: its event, its exit and its error are kept, and
    /// its policy is heard. A restart its policy would make is the plan's
    /// to make (a strategy restarts it with the others; a stop by hand
    /// leaves it stopped): for the plan, it has stopped. An end for good
    /// stands, as after any run: a critical unit ends the group, and a
    /// strategy does not restart it.
    fn ended_before_asked(&mut self, unit: &Arc<Unit>, now: Instant) -> bool {
        // Nothing held back, as in every shutdown: no record to look at.
        if self.deferred.is_empty() {
            return false;
        }
        let (run, exit) = {
            let mut record = unit.record();
            // A run asked to stop meanwhile (by hand): its report answers
            // that stop, once the plan has asked it too.
            if record.run.is_none() || record.stop.is_some() {
                return false;
            }
            let Some((_, end)) = self.take_held_end(unit, Some(record.epoch)) else { return false };
            let run = take_run(&mut record);
            (run, self.decide_exit(&mut record, unit, end, now))
        };
        if let Some(run) = run {
            run.stop.cancel();
        }
        let Exit { reason, succeeded, decision, .. } = exit;
        self.shared.emit(unit, exit_event(reason));
        match decision {
            Some(Decision::Restart { .. }) | None => self.set_state(unit, UnitState::Stopped),
            Some(rest) => self.let_rest(unit, rest, succeeded),
        }
        if self.ending.is_none() {
            self.stopped(unit, StopOutcome::NotRunning, Duration::ZERO);
        }
        true
    }

    /// The siblings a strategy stopped wait, with the unit that caused it,
    /// for its restart delay; then they all start again.
    fn schedule_regroup(&mut self, cause: Arc<Unit>, set: Vec<Arc<Unit>>, delay: Duration) {
        let mut waiting = Vec::with_capacity(set.len());
        // A unit removed while the strategy stopped it is gone for good.
        for unit in set.into_iter().filter(|unit| Self::is_member(unit)) {
            let mut record = unit.record();
            let takes_part = if Arc::ptr_eq(&unit, &cause) {
                record.state == UnitState::Backoff
            } else {
                // Stopped by the strategy; a stop by hand meanwhile was held back.
                record.state == UnitState::Stopped
            };
            if takes_part {
                record.state = UnitState::Backoff;
                let epoch = record.epoch;
                drop(record);
                self.changed(&unit);
                waiting.push((unit, epoch));
            }
        }
        self.timers.insert(later_by(Instant::now(), delay), Timer::Regroup { cause, set: waiting });
    }

    /// Asks `unit` to stop; `now` is when its grace period begins.
    fn ask_stop(&mut self, unit: &Arc<Unit>, now: Instant, grace: Grace) -> Asked {
        let mut record = unit.record();
        if record.stop.is_some() {
            return Asked::InFlight;
        }
        let Some(run) = &record.run else {
            return match record.state {
                UnitState::Backoff | UnitState::Waiting | UnitState::Starting => {
                    // Its entry among the waiting is stale from now on.
                    self.stopped_while_waiting |= record.state == UnitState::Waiting;
                    record.state = UnitState::Stopped;
                    // Whatever was scheduled for it no longer applies.
                    record.epoch = record.epoch.wrapping_add(1);
                    drop(record);
                    self.changed(unit);
                    self.shared.emit(unit, EventKind::Stopped { forced: false, took: Duration::ZERO });
                    Asked::Done(StopOutcome::Graceful)
                }
                _ => Asked::Done(StopOutcome::NotRunning),
            };
        };
        run.stop.cancel();
        let is_task = run.abort.is_some();
        record.stop = Some(Box::new(Stop { asked: now, aborted: false, abort_timer: None }));
        record.state = UnitState::Stopping;
        // What depends on it must not start on it from now on.
        record.ready = false;
        let epoch = record.epoch;
        if is_task && self.killed {
            abort(&mut record);
        }
        if is_task && (self.killed || grace == Grace::OwnTimer) {
            let (at, timer) = if self.killed {
                (now + ABANDON_AFTER, Timer::Abandon { unit: unit.clone(), epoch })
            } else {
                let at = later_by(now, unit.settings.stop_timeout);
                (at, Timer::Abort { unit: unit.clone(), epoch })
            };
            let key = self.timers.insert(at, timer);
            if let Some(stop) = &mut record.stop {
                // Removed when the stop completes: the timer holds the unit.
                stop.abort_timer = Some(key);
            }
        }
        drop(record);
        self.changed(unit);
        Asked::InFlight
    }

    /// `unit`, stopped in the shutdown, is a group: the units it stopped
    /// before the shutdown began (all of them, if it was not running) have
    /// no line yet, and their owner is gone. They are listed here, where the
    /// group's own stop would have listed them: the newest first, a group's
    /// units before it.
    fn report_units_at_rest(&self, unit: &Unit) {
        let Some(group) = unit.group() else { return };
        for member in group.units().iter().rev() {
            self.report_units_at_rest(member);
            self.report_stop(member, StopOutcome::NotRunning, Duration::ZERO);
        }
    }

    /// Adds `unit`'s line to the shutdown's report, unless it has one: a
    /// group's unit may have stopped with its group during the shutdown
    /// (its group's owner listed it) or before (the parent lists it).
    fn report_stop(&self, unit: &Arc<Unit>, outcome: StopOutcome, took: Duration) {
        let state = {
            let mut record = unit.record();
            if std::mem::replace(&mut record.reported, true) {
                return;
            }
            record.state
        };
        self.shared.report_line(unit.clone(), Line { state, outcome, took });
    }

    /// A stop of `unit` is complete: its report line, its waiters, its plan.
    fn stopped(&mut self, unit: &Arc<Unit>, outcome: StopOutcome, took: Duration) {
        // A unit whose removal waited for this stop is removed, not reported:
        // nothing restarts it during the ending.
        if self.ending.is_some() && self.shared.is_shutting_down() {
            if !self.is_being_removed(unit) {
                self.report_units_at_rest(unit);
                self.report_stop(unit, outcome, took);
            } else if unit.group().is_some() {
                // Its units went with it: their owner listed them, unaware.
                self.shared.unreport_units_under(&unit.path);
            }
        }
        if let Some(plan) = &mut self.plan {
            plan.in_flight.remove(unit);
        }
        // Taken out in place: the list keeps its room and the others their
        // order. A stop that one call waits for, the usual case, allocates
        // nothing, nor does one that nobody waits for.
        let waits_for = |waiter: &Waiter| Arc::ptr_eq(&waiter.unit, unit);
        let Some(at) = self.waiters.iter().position(waits_for) else { return };
        let first = self.waiters.remove(at);
        let others: Vec<Waiter> = if self.waiters[at..].iter().any(waits_for) {
            self.waiters.extract_if(at.., |waiter| waits_for(waiter)).collect()
        } else {
            Vec::new()
        };
        let ready = std::iter::once(first).chain(others);
        // While a strategy's or a call's plan runs, a call that would start
        // the unit again waits for the plan, as calls that came during it
        // do, and so do the calls after it on this unit (their order
        // holds). Stops and removals before it go on now: they leave the
        // unit at rest (a removal, before anything the plan would start
        // again).
        let plan_runs = self.plan_runs();
        let mut hold = false;
        for waiter in ready {
            hold |= plan_runs && matches!(waiter.wants, Wants::Start(_));
            if hold {
                self.resumes.push_back(Resume { waiter, outcome, took });
            } else {
                self.resume(waiter.unit, waiter.wants, outcome, took);
            }
        }
    }

    /// Whether a call waits to remove `unit` once it has stopped.
    fn is_being_removed(&self, unit: &Arc<Unit>) -> bool {
        let removes = |waiter: &Waiter| Arc::ptr_eq(&waiter.unit, unit) && matches!(waiter.wants, Wants::Remove(_));
        self.waiters.iter().any(removes) || self.resumes.iter().any(|resume| removes(&resume.waiter))
    }

    /// Carries on a control call that waited for its unit's stop. The calls
    /// that waited for one stop go on in the order they came, each from
    /// where the one before left the unit: a stop or a removal after a
    /// start stops the new run first; a start after a removal finds the
    /// unit gone.
    fn resume(&mut self, unit: Arc<Unit>, wants: Wants, outcome: StopOutcome, took: Duration) {
        // Removed by a call before: stopped for good, and not to be started.
        let gone = !Self::is_member(&unit);
        let restarted = !gone && unit.state().is_active();
        match wants {
            Wants::Stop(reply) if restarted => self.on_control(unit, Op::Stop, reply),
            Wants::Stop(reply) => {
                let _ = reply.send(Ok(()));
            }
            Wants::Start(reply) if gone => {
                let _ = reply.send(Err(self.unknown(&unit)));
            }
            Wants::Start(reply) => {
                let _ = reply.send(self.start_by_hand(&unit, "start"));
            }
            Wants::Remove(reply) if gone => {
                let _ = reply.send(Err(self.unknown(&unit)));
            }
            Wants::Remove(reply) if restarted => self.on_remove(unit, reply),
            Wants::Remove(reply) => {
                let _ = reply.send(Ok(self.forget(&unit, outcome, took)));
            }
        }
    }

    fn on_control(&mut self, unit: Arc<Unit>, op: Op, reply: oneshot::Sender<Result<(), Error>>) {
        if !Self::is_member(&unit) {
            let _ = reply.send(Err(self.unknown(&unit)));
            return;
        }
        // A unit already stopping: the call goes on once that stop is done,
        // from where the calls that waited for it before leave the unit.
        if matches!(op, Op::Stop | Op::Restart) && self.ending.is_none() && unit.record().stop.is_some() {
            let wants = if op == Op::Stop { Wants::Stop(reply) } else { Wants::Start(reply) };
            self.waiters.push(Waiter { unit, wants });
            return;
        }
        // While the group ends, its ending stops everything in order already.
        if matches!(op, Op::Stop | Op::Restart) && self.ending.is_none() {
            let dependents: Vec<Arc<Unit>> =
                self.dependents(&unit).into_iter().filter(|dependent| dependent.state().is_active()).collect();
            if !dependents.is_empty() {
                self.stop_with_dependents(unit, dependents, op, reply);
                return;
            }
        }
        if op == Op::Start && self.ending.is_none() {
            for need in self.needs(&unit) {
                if need.record().stop.is_some() {
                    // Stopping: it starts again once stopped, after the
                    // calls that wait for that stop already.
                    let (reply, _) = oneshot::channel();
                    self.waiters.push(Waiter { unit: need, wants: Wants::Start(reply) });
                } else if !need.state().is_active() {
                    need.record().tracker = RestartTracker::new();
                    self.launch(&need);
                }
            }
        }
        match op {
            // The ending stops it in its turn: the call waits for that.
            Op::Stop if self.ending.is_some() => {
                if unit.state().is_active() {
                    self.waiters.push(Waiter { unit, wants: Wants::Stop(reply) });
                } else {
                    let _ = reply.send(Ok(()));
                }
            }
            Op::Stop => match self.ask_stop(&unit, Instant::now(), Grace::OwnTimer) {
                Asked::InFlight => self.waiters.push(Waiter { unit, wants: Wants::Stop(reply) }),
                Asked::Done(_) => {
                    let _ = reply.send(Ok(()));
                }
            },
            // Nothing restarts in a shutdown: there is nothing to pause or resume.
            Op::PauseRestarts | Op::ResumeRestarts if self.shared.is_shutting_down() => {
                let _ = reply.send(Err(Error::ShuttingDown { action: op.as_str(), unit: unit.path.to_string() }));
            }
            Op::PauseRestarts => {
                unit.record().paused = true;
                self.changed(&unit);
                let _ = reply.send(Ok(()));
            }
            Op::ResumeRestarts => {
                let held = {
                    let mut record = unit.record();
                    record.paused = false;
                    std::mem::take(&mut record.held).then_some((record.epoch, record.held_by_policy))
                };
                self.changed(&unit);
                if let Some((epoch, by_policy)) = held
                    && self.ending.is_none()
                {
                    self.restart_if_due(&unit, epoch, by_policy, Instant::now());
                }
                let _ = reply.send(Ok(()));
            }
            Op::Start if unit.record().stop.is_some() => self.waiters.push(Waiter { unit, wants: Wants::Start(reply) }),
            Op::Start => {
                let _ = reply.send(self.start_by_hand(&unit, op.as_str()));
            }
            Op::Restart => {
                if let Err(error) = self.refuse_while_ending(&unit, op.as_str()) {
                    let _ = reply.send(Err(error));
                    return;
                }
                match self.ask_stop(&unit, Instant::now(), Grace::OwnTimer) {
                    Asked::InFlight => self.waiters.push(Waiter { unit, wants: Wants::Start(reply) }),
                    Asked::Done(_) => {
                        let _ = reply.send(self.start_by_hand(&unit, op.as_str()));
                    }
                }
            }
        }
    }

    /// Stops `unit` after the units that depend on it (the most recently
    /// started first); a restart then starts them all again, `unit` first.
    fn stop_with_dependents(
        &mut self,
        unit: Arc<Unit>,
        dependents: Vec<Arc<Unit>>,
        op: Op,
        reply: oneshot::Sender<Result<(), Error>>,
    ) {
        if op == Op::Restart
            && let Err(error) = self.refuse_while_ending(&unit, op.as_str())
        {
            let _ = reply.send(Err(error));
            return;
        }
        let mut batches = Batches::one_at_a_time(dependents.iter().rev().cloned());
        batches.push_each([unit.clone()]);
        let then = match op {
            Op::Restart => {
                let mut units = vec![unit];
                units.extend(dependents);
                After::Relaunch { units, reply }
            }
            _ => After::Reply { unit, reply },
        };
        self.plan = Some(Plan { batches, in_flight: InFlight::default(), grace: None, then });
        self.advance();
    }

    /// Starts `units` again after a restart by hand; the first, the one
    /// asked for, with its count reset.
    fn relaunch(&mut self, units: &[Arc<Unit>]) -> Result<(), Error> {
        let Some(first) = units.first() else { return Ok(()) };
        self.start_by_hand(first, "restart")?;
        for unit in &units[1..] {
            // A dependent removed meanwhile is gone for good.
            if !unit.state().is_active() && Self::is_member(unit) {
                self.launch(unit);
            }
        }
        Ok(())
    }

    /// Starts a unit at rest, its restart count reset; a unit already active
    /// is left as it is.
    fn start_by_hand(&mut self, unit: &Arc<Unit>, action: &'static str) -> Result<(), Error> {
        self.refuse_while_ending(unit, action)?;
        if unit.state().is_active() {
            return Ok(());
        }
        unit.record().tracker = RestartTracker::new();
        self.launch(unit);
        Ok(())
    }

    fn refuse_while_ending(&self, unit: &Unit, action: &'static str) -> Result<(), Error> {
        if self.ending.is_some() || self.shared.is_shutting_down() {
            return Err(self.shared.refusal(&self.group, action, unit.path.to_string()));
        }
        Ok(())
    }

    fn unknown(&self, unit: &Unit) -> Error {
        Error::UnknownUnit { name: unit.path.to_string(), known: "(it was removed)".to_owned() }
    }

    fn add(&mut self, spec: Spec) -> Result<(), Error> {
        let path = || join(&self.group.path, spec.name());
        // A group asked to stop learns it by message: its token says so first.
        if self.ending.is_some() || self.stop.is_cancelled() || self.shared.is_shutting_down() {
            return Err(self.shared.refusal(&self.group, "add", path()));
        }
        if self.body().members().get(spec.name()).is_some() {
            return Err(Error::DuplicateName { name: path() });
        }
        self.check_new_dependencies(&spec)?;
        // Units added one by one, as a server adds one per connection,
        // share their settings as registered ones do.
        let last = self.body().members().iter().next_back().map(|member| member.settings.clone());
        let unit = build::unit(&self.group.path, spec, true, last.as_ref());
        self.dependencies_among_units |= !unit.settings.depends_on.is_empty();
        // Its name was found free above.
        let added = self.body().change_members(|members| members.push(unit.clone()).is_ok());
        debug_assert!(added, "`{}` was added twice", unit.path);
        self.members_changed();
        self.shared.emit(&unit, EventKind::Added);
        self.launch(&unit);
        Ok(())
    }

    /// A unit added at run time may depend only on its siblings-to-be. No
    /// cycle can form: every member's dependencies name members (`remove`
    /// refuses a unit that others depend on, and a temporary one stays),
    /// so nothing depends on the new unit yet. A unit whose removal is
    /// under way counts as gone: that call came first.
    fn check_new_dependencies(&self, spec: &Spec) -> Result<(), Error> {
        if spec.depends_on().is_empty() {
            return Ok(());
        }
        let members = self.body().units();
        let mut names: Vec<&str> =
            members.iter().filter(|member| !self.is_being_removed(member)).map(|member| member.name()).collect();
        names.push(spec.name());
        let mut deps: Vec<&[String]> = vec![&[]; names.len() - 1];
        deps.push(spec.depends_on());
        let mut problems = Vec::new();
        validate::check_dependencies(&self.group.path, &names, &deps, &|_| None, &mut problems);
        Error::from_problems(problems)
    }

    fn on_remove(&mut self, unit: Arc<Unit>, reply: oneshot::Sender<Result<UnitReport, Error>>) {
        if !Self::is_member(&unit) {
            let _ = reply.send(Err(self.unknown(&unit)));
            return;
        }
        if let Err(error) = self.refuse_while_ending(&unit, "remove") {
            let _ = reply.send(Err(error));
            return;
        }
        let dependents = self.dependents_by_name(&unit);
        if !dependents.is_empty() {
            let _ = reply
                .send(Err(Error::HasDependents { unit: unit.path.to_string(), dependents: dependents.join(", ") }));
            return;
        }
        match self.ask_stop(&unit, Instant::now(), Grace::OwnTimer) {
            Asked::InFlight => self.waiters.push(Waiter { unit, wants: Wants::Remove(reply) }),
            Asked::Done(outcome) => {
                let _ = reply.send(Ok(self.forget(&unit, outcome, Duration::ZERO)));
            }
        }
    }

    /// The members that name `unit` among their dependencies, quoted.
    fn dependents_by_name(&self, unit: &Arc<Unit>) -> Vec<String> {
        self.named_dependents(unit).iter().map(|member| format!("`{}`", member.path)).collect()
    }

    /// Whether a member names `unit` among its dependencies.
    fn has_dependents(&self, unit: &Arc<Unit>) -> bool {
        !self.named_dependents(unit).is_empty()
    }

    /// The members that name `unit` among their dependencies: by name, so
    /// that those not running count too.
    fn named_dependents(&self, unit: &Arc<Unit>) -> Vec<Arc<Unit>> {
        if !self.dependencies_among_units {
            return Vec::new();
        }
        let members = self.body().members();
        members
            .iter()
            .filter(|member| !Arc::ptr_eq(member, unit))
            .filter(|member| member.settings.depends_on.iter().any(|name| **name == *unit.name()))
            .cloned()
            .collect()
    }

    /// Removes a stopped unit from the group.
    fn forget(&mut self, unit: &Arc<Unit>, outcome: StopOutcome, took: Duration) -> UnitReport {
        self.body().change_members(|members| members.remove(unit.name()));
        unit.record().removed = true;
        self.members_changed();
        self.shared.emit(unit, EventKind::Removed);
        self.changed(unit);
        self.shared.changes.removed(unit);
        // The units of a removed group are gone with it: their waits learn so.
        if let Some(group) = unit.group() {
            wake_units_of(&self.shared.changes, group);
        }
        unit.report_line(Line { state: unit.state(), outcome, took })
    }

    /// A unit's restart delay is over: it runs again, unless it was
    /// stopped or started meanwhile, or its restarts are paused.
    fn restart_due(&mut self, unit: &Arc<Unit>, epoch: u32) {
        self.restart_due_at(unit, epoch, Instant::now());
    }

    fn restart_due_at(&mut self, unit: &Arc<Unit>, epoch: u32, now: Instant) {
        if self.ending.is_none() {
            self.restart_if_due(unit, epoch, true, now);
        }
    }

    /// Restarts `unit` if the restart it waits for in `Backoff` since `epoch`
    /// is still due (see [`due_restart`]).
    fn restart_if_due(&mut self, unit: &Arc<Unit>, epoch: u32, by_policy: bool, now: Instant) {
        if !unit.settings.depends_on.is_empty() {
            if due_restart(&mut unit.record(), &unit.settings.policy, epoch, by_policy, now) {
                self.restart_performed(unit, epoch, by_policy);
                self.launch_at(unit, now);
            }
            return;
        }
        // Nothing to wait for: the restart's count and the run's beginning
        // under one look at the record.
        let begun = {
            let mut record = unit.record();
            due_restart(&mut record, &unit.settings.policy, epoch, by_policy, now).then(|| begin_run(&mut record))
        };
        if let Some((next_epoch, restarts)) = begun {
            self.restart_performed(unit, epoch, by_policy);
            self.start_run(unit, now, next_epoch, restarts);
        }
    }

    /// The restart of `unit` after its run `epoch` happens: if its policy
    /// decided it, the group's intensity keeps counting it.
    fn restart_performed(&mut self, unit: &Arc<Unit>, epoch: u32, by_policy: bool) {
        if by_policy && let Some(intensity) = &mut self.intensity {
            intensity.performed(&PendingRestart { unit: unit.clone(), epoch });
        }
    }

    fn on_timer(&mut self, timer: Timer) {
        match timer {
            Timer::Restart { unit, epoch } => self.restart_due(&unit, epoch),
            Timer::Regroup { cause, set } => {
                if self.ending.is_some() {
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

    /// Gives up waiting for an aborted task that does not go away: it
    /// blocks its thread. Its report, if it ever comes, is ignored.
    fn abandon(&mut self, unit: &Arc<Unit>, epoch: u32) {
        let took = {
            let mut record = unit.record();
            if record.epoch != epoch || record.run.is_none() {
                return;
            }
            let Some(stop) = record.stop.take() else { return };
            record.run = None;
            record.epoch = record.epoch.wrapping_add(1);
            // Stopped as far as the supervisor goes: its run is left behind.
            record.state = UnitState::Stopped;
            stop.asked.elapsed()
        };
        self.changed(unit);
        log_contained(|| {
            tracing::error!(unit = %unit.path, ?took, "an aborted task did not end (does it block its thread?); abandoning it");
        });
        self.stopped(unit, StopOutcome::Abandoned, took);
        self.advance();
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

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(forwarder) = &self.forwarder {
            forwarder.abort();
        }
    }
}

/// Wakes the waits on every unit of `group`, nested groups' too.
fn wake_units_of(changes: &Changes, group: &GroupBody) {
    for unit in group.units() {
        changes.removed(&unit);
        if let Some(nested) = unit.group() {
            wake_units_of(changes, nested);
        }
    }
}

/// The handle of a run that has ended, taken out of `record`, with what
/// only a running run has (its pid, its readiness).
fn take_run(record: &mut Record) -> Option<RunHandle> {
    record.pid = None;
    record.ready = false;
    record.clear_not_ready();
    record.run.take()
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

/// Whether the restart of `unit`'s run `epoch` is to happen now: the unit
/// is still in that backoff, and its restarts are not paused (if they are,
/// it is held for the resume). If so, counts it: by the unit's policy
/// (`by_policy`), or with a sibling's.
fn due_restart(record: &mut Record, policy: &RestartPolicy, epoch: u32, by_policy: bool, now: Instant) -> bool {
    if record.epoch != epoch || record.state != UnitState::Backoff {
        return false;
    }
    record.held = record.paused;
    if record.paused {
        record.held_by_policy = by_policy;
        return false;
    }
    if by_policy {
        record.tracker.record_restart(policy, now);
    }
    record.restarts_total += 1;
    true
}

/// A restart the group's intensity counts before it happens: the one
/// decided after `unit`'s run `epoch`.
struct PendingRestart {
    unit: Arc<Unit>,
    epoch: u32,
}

impl PendingRestart {
    /// Whether it is still to come: the unit waits for it, in `Backoff`
    /// (held there while restarts are paused). Stopped, started or removed
    /// by hand meanwhile, it is not.
    fn to_come(&self) -> bool {
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

/// A run asked to stop has ended: records it `Stopped`, and how.
fn settle_stop(record: &mut Record, stop: Stop, end: RunEnd, now: Instant) -> Settled {
    let (reason, forced) = match end {
        RunEnd::Exited(reason) => (Some(reason), stop.aborted),
        RunEnd::Stopped { reason, forced } => (Some(reason), forced),
        RunEnd::Aborted => (None, true),
    };
    record.state = UnitState::Stopped;
    if let Some(reason) = &reason {
        record_stop(record, reason);
    }
    Settled { forced, took: now.saturating_duration_since(stop.asked), abort_timer: stop.abort_timer }
}

/// Makes the unit's record ready for a new run: its epoch, `Starting`.
/// Returns the run's epoch and the unit's restart count.
fn begin_run(record: &mut Record) -> (u32, u32) {
    record.epoch = record.epoch.wrapping_add(1);
    record.state = UnitState::Starting;
    record.stop = None;
    record.ready = false;
    record.clear_not_ready();
    (record.epoch, record.tracker.restarts())
}

/// Drops a task's run, as far as its thread lets it.
fn abort(record: &mut Record) {
    if let Some(stop) = &mut record.stop {
        stop.aborted = true;
    }
    if let Some(abort) = record.run.as_ref().and_then(|run| run.abort.as_ref()) {
        abort.abort();
    }
}

/// Records how the last run ended: its exit code or signal, and its error
/// as `last_error` if it failed (a run that did not fail leaves none).
fn record_exit(record: &mut Record, reason: &ExitReason) {
    record.last_exit = LastExit::of(reason);
    set_last_error(record, reason.error_message());
}

/// Like `record_exit`, for a run that a requested stop ended: it keeps its
/// exit code or signal (a process's answer to the stop signal, or the
/// `SIGKILL` after the timeout), but that is no failure. Only a panic is
/// kept as the run's error: a bug, stopping or not.
fn record_stop(record: &mut Record, reason: &ExitReason) {
    record.last_exit = LastExit::of(reason);
    let panic = if matches!(reason, ExitReason::Panic(_)) { reason.error_message() } else { None };
    set_last_error(record, panic);
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
    use crate::{Context, TaskSpec};

    fn waiting_unit(name: &str) -> Arc<Unit> {
        let spec = TaskSpec::new(name, |ctx: Context| async move { ctx.cancelled().await });
        let unit = build::unit("", Spec::from(spec), false, None);
        unit.record().state = UnitState::Waiting;
        unit
    }

    #[test]
    fn a_unit_listed_again_and_again_does_not_grow_its_waiters() {
        let (again, other) = (waiting_unit("again"), waiting_unit("other"));
        let mut waiters = Waiters::One(other.clone());
        for _ in 0..1000 {
            waiters.push(again.clone(), true);
        }
        assert!(waiters.len() <= 4, "{} entries for two waiting units", waiters.len());
        // A unit that no longer waits goes at the next pruning.
        other.record().state = UnitState::Stopped;
        for _ in 0..10 {
            waiters.push(again.clone(), true);
        }
        let Waiters::More(units) = &waiters else { panic!("a list") };
        assert!(units.iter().all(|unit| Arc::ptr_eq(unit, &again)));
    }

    #[test]
    fn many_units_waiting_for_one_are_all_kept() {
        let units: Vec<_> = (0..100).map(|index| waiting_unit(&format!("u{index}"))).collect();
        let mut waiters = Waiters::One(units[0].clone());
        for unit in &units[1..] {
            waiters.push(unit.clone(), true);
        }
        assert_eq!(waiters.len(), 100);
    }

    /// Every run that ends has an exit code or a signal (a task's is 0 or
    /// 1): recording it, or a stop, must not make the notes kept for rarer
    /// things, which would cost each of 10k stopped units a block.
    #[test]
    fn a_run_that_ends_cleanly_keeps_its_exit_without_notes() {
        let unit = waiting_unit("job");
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
        let unit = waiting_unit("job");
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
}
