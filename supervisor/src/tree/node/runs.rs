//! A unit's runs: launched once its dependencies are ready, their ends
//! heard, and what the restart policy, the intensity and the strategy
//! decide after each.

use std::collections::hash_map::Entry;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Ending, Exit, Node, ParentLink, Timer, exit_event};
use crate::observe::event::{EventKind, bounded_text};
use crate::observe::report::StopOutcome;
use crate::spec::policy::{Decision, GiveUpReason};
use crate::tree::clock::{self, Stamp};
use crate::tree::launch::{self, Launched};
use crate::tree::record::{PendingRestart, Settled, begin_run, due_restart, record_end, settle_stop, take_run};
use crate::tree::unit::{Body, Msg, Record, Reporter, RunEnd, RunHandle, Unit, address};
use crate::tree::waiting::Waiters;
use crate::{ExitReason, Strategy, UnitState};

/// How a run ended, as its report's look at the record found it.
enum Ended {
    /// Asked to stop.
    Stopped(Settled),
    /// By itself.
    Exited(Exit),
}

impl Node {
    /// Starts a run of `unit` once its dependencies are ready; until then
    /// it is `Waiting`.
    pub(super) fn launch(&mut self, unit: &Arc<Unit>) {
        self.launch_at(unit, Instant::now());
    }

    /// Like `launch`, with the time already read by the caller: the restart
    /// path reads the clock once for a run's end and the next run's start.
    pub(super) fn launch_at(&mut self, unit: &Arc<Unit>, now: Instant) {
        let first_blocker = if unit.settings.depends_on.is_empty() { None } else { self.first_blocker(unit) };
        let Some(first_blocker) = first_blocker else {
            self.launch_now(unit, now);
            return;
        };
        // The names are found and copied only for someone to see them.
        let on = self
            .shared
            .events_seen()
            .then(|| self.blockers(unit).iter().map(|blocker| blocker.path.to_string()).collect());
        {
            let mut record = unit.record();
            record.state = UnitState::Waiting;
            record.ready = false;
        }
        if let Some(group) = unit.group() {
            // Marked to start with it, its units rest while it waits, as
            // those of a group that waits again later do: a call on one is
            // refused at once, where it would wait for the group's start.
            super::settle_unstarted(&self.shared, group);
        }
        self.changed(unit);
        if let Some(on) = on {
            self.shared.emit(unit, EventKind::Waiting { on });
        }
        self.wait_for(&first_blocker, unit.clone());
    }

    /// The dependencies of `unit` that hold it back (not ready, and not
    /// done with their work; through one done, what it needs), in the
    /// order its `depends_on` names them.
    fn blockers(&self, unit: &Unit) -> Vec<Arc<Unit>> {
        unit.blockers(&self.body().members())
    }

    /// The first of [`blockers`](Self::blockers), found without the others,
    /// and through the group's graph: a lookup of each dependency by name
    /// made a chain of dependent units start 4 % slower. A job done with
    /// its work is looked through by name (see [`Unit::holding_back`]).
    fn first_blocker(&self, unit: &Unit) -> Option<Arc<Unit>> {
        for dependency in self.dependency_graph().dependencies(unit) {
            if !dependency.lets_dependents_start_now() {
                return Some(dependency.clone());
            }
            if dependency.state() == UnitState::Exited
                && let Some(blocker) = dependency.first_blocker(&self.body().members())
            {
                return Some(blocker);
            }
        }
        None
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
    pub(super) fn set_ready(&mut self, unit: &Arc<Unit>, epoch: u32, ready: bool, why: Option<String>) {
        // A check's error is the user's: kept and sent in events, it has a
        // bound, as a run's error does.
        let why = why.map(bounded_text);
        {
            let mut record = unit.record();
            if record.epoch != epoch || record.state != UnitState::Running {
                return; // a late word from an older run, or a run being stopped
            }
            if record.ready == ready && (ready || record.not_ready() == why.as_deref()) {
                drop(record);
                if ready {
                    // Said again by a nested group that was not ready for a
                    // while by its units, as its dependents saw it: those
                    // that wait look again, and so, up the tree, do those
                    // that wait on this group.
                    if unit.group().is_some() {
                        self.changed(unit);
                    }
                    self.release_waiting_on(unit);
                }
                return;
            }
            record.ready = ready;
            record.ready_in_run |= ready;
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
        if self.waiting.is_empty() || self.winds_down() {
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
        let next_blocker = self.first_blocker(&unit);
        match next_blocker {
            // A plan is to stop it (its `stop_unit` or `restart` of a unit
            // it depends on): it waits for the plan, which stops it, and
            // for a restart starts it again.
            None if self.plan.as_ref().is_some_and(|plan| plan.takes_part(&unit)) => {}
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
                    record.ready_in_run = ready;
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
    /// yet: its handle.
    fn take_free_task(&mut self, unit: &Arc<Unit>) -> Option<JoinHandle<()>> {
        let free = self.free_task.as_mut()?;
        if !Arc::ptr_eq(&free.unit, unit) || free.next.is_some() {
            return None;
        }
        free.abort.take()
    }

    /// Starts a nested group's run: an owner of its own, whose units start
    /// before this call returns (a group has started once its units have).
    fn launch_group(&mut self, unit: &Arc<Unit>, epoch: u32) -> Launched {
        let stop = CancellationToken::new();
        let parent = ParentLink { mailbox: self.mailbox.clone(), owner: self.owner.clone(), epoch, ready: false };
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

    pub(super) fn on_ended(&mut self, unit: &Arc<Unit>, epoch: u32, end: RunEnd) {
        let end = end.bounded();
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
                && let Some(handle) = &mut run
            {
                // Its task may carry the next run. Its stop token is not
                // handed on: cancelled below, it tells what the user kept
                // of the run's context (a task spawned with a clone) that
                // the run is over.
                free.abort = handle.abort.take();
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
    /// (nothing while the group ends or the supervisor shuts down). A
    /// restart makes it `Backoff` at once.
    pub(super) fn decide_exit(&mut self, record: &mut Record, unit: &Unit, end: RunEnd, now: Instant) -> Exit {
        // A run dropped that nobody asked to stop was dropped by its
        // runtime, which is shutting down: a new run would be dropped at
        // once too, after its process was spawned (a crash loop with no
        // delay ran the user's program 128 times in one drop).
        let (reason, dropped) = record_end(record, end);
        let succeeded = reason.is_success();
        let ending = self.winds_down() || dropped;
        let random = if ending { 0.0 } else { self.rng.f64() };
        // A spawn that failed began no run: the start time kept is of the
        // run before, and timed from it, each failed spawn after a long run
        // (or after failed spawns that went on as long) would count as a
        // stable run and reset the backoff.
        let started = record.run_started.filter(|_| !matches!(reason, ExitReason::SpawnFailed(_)));
        let ran_for = started.map_or(Duration::ZERO, |at| now.saturating_duration_since(self.shared.clock.instant(at)));
        // No restart while the group ends or the supervisor shuts down.
        let decision = (!ending).then(|| record.tracker.decide(&unit.settings.policy, succeeded, ran_for, now, random));
        // The state it rests in, set before the exit's event goes out: a
        // subscriber that looks at the status on that event sees the run over.
        record.policy_restart = matches!(decision, Some(Decision::Restart { .. }));
        record.state = match decision {
            Some(Decision::Restart { .. }) => UnitState::Backoff,
            Some(Decision::GiveUp(_)) => UnitState::Failed,
            // As the units of a runtime that was dropped rest.
            None if dropped => UnitState::Stopped,
            // A run that failed while its group ends (stopped by hand or by
            // its parent, given up, a critical unit ended, the shutdown)
            // rests failed: its policy would have restarted it, or given up
            // on it, and nothing will now; at the root the report, and the
            // exit code it gives, say so, and a nested group's unit rests
            // as it would at the root. A failure its policy lets rest
            // (`on(RestartOn::Never)`) is no give-up, as at any other time.
            None if !succeeded && unit.settings.policy.restart_on().restarts_after(false) => UnitState::Failed,
            Some(Decision::Exit) | None => UnitState::Exited,
        };
        // A one-shot job that ended well is done: what waits for it may
        // start, as after a run that was ready.
        if succeeded && record.state == UnitState::Exited && unit.settings.completes() {
            record.ready_in_run = true;
        }
        Exit { reason, succeeded, decision, epoch: record.epoch, now }
    }

    /// A run ended by itself: the policy, the intensity and the strategy say
    /// what follows.
    fn on_exit(&mut self, unit: &Arc<Unit>, exit: Exit) {
        let Exit { reason, succeeded, decision, epoch, now } = exit;
        // Settled before the exit's event goes out: a subscriber that looks
        // at the status on that event saw a unit whose restart was one too
        // many in `Backoff`, waiting for a restart that never came.
        let allowed = !matches!(decision, Some(Decision::Restart { .. })) || self.intensity_allows(unit, epoch, now);
        self.shared.emit(unit, exit_event(reason));
        let Some(decision) = decision else {
            // At rest since the decision: the group ends.
            self.changed(unit);
            return;
        };
        match decision {
            Decision::Restart { .. } if !allowed => self.give_up_on_intensity(unit),
            Decision::Restart { attempt, delay } => self.restart_later(unit, epoch, attempt, delay, now),
            rest => self.let_rest(unit, rest, succeeded),
        }
    }

    /// The policy lets `unit` rest after its run (`Decision::Exit` or
    /// `GiveUp`): `Exited` and `Finished`, or `Failed` and `GaveUp`; then
    /// what an end for good entails.
    pub(super) fn let_rest(&mut self, unit: &Arc<Unit>, decision: Decision, succeeded: bool) {
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
        if !failed {
            // Done with its work: what waited for it starts (unless it was
            // critical, and its group ends).
            self.release_waiting_on(unit);
        }
    }

    /// A unit's policy let it end: a temporary one is forgotten, a critical
    /// one ends its group; one both is forgotten first, or the group's next
    /// run would run it again, and end again.
    fn ended_for_good(&mut self, unit: &Arc<Unit>, failed: bool) {
        if self.is_forgotten_at_rest(unit) {
            self.forget(unit, StopOutcome::NotRunning, Duration::ZERO);
        }
        if unit.settings.critical {
            self.end_group(Ending::Critical { unit: unit.path.clone(), failed });
        }
    }

    pub(super) fn set_state(&self, unit: &Arc<Unit>, state: UnitState) {
        unit.record().state = state;
        self.changed(unit);
    }

    /// Whether the group's intensity allows the restart of `unit` its
    /// policy decided after run `epoch`. If not, its restart is one too
    /// many: none comes, and it is stopped now, its run over. Left in
    /// `Backoff`, waiting for nothing while the group stopped the others,
    /// it was then stopped as a unit between two runs, gracefully. The
    /// ending finds it at rest, as one that had ended before.
    fn intensity_allows(&mut self, unit: &Arc<Unit>, epoch: u32, now: Instant) -> bool {
        let Some(intensity) = &mut self.intensity else { return true };
        if intensity.allow(now, PendingRestart { unit: unit.clone(), epoch }, PendingRestart::to_come) {
            return true;
        }
        {
            let mut record = unit.record();
            record.policy_restart = false;
            record.state = UnitState::Stopped;
        }
        self.changed(unit);
        false
    }

    /// `unit`'s restart was one too many for the group's intensity (see
    /// [`intensity_allows`](Self::intensity_allows)): the group gives up
    /// and stops its units.
    fn give_up_on_intensity(&mut self, unit: &Arc<Unit>) {
        self.shared.emit(unit, EventKind::Stopped { forced: false, took: Duration::ZERO });
        let limit = self.body().intensity.expect("an intensity tracker has a limit");
        self.end_group(Ending::GaveUp(GiveUpReason::Intensity { max: limit.max, period: limit.period }));
    }

    /// The policy restarts `unit` after `delay`, which the group's
    /// intensity allows, with the siblings its strategy takes along.
    fn restart_later(&mut self, unit: &Arc<Unit>, epoch: u32, attempt: u32, delay: Duration, now: Instant) {
        // `Backoff` already, since the decision.
        self.changed(unit);
        self.shared.emit(unit, EventKind::Restarting { attempt, delay });
        match self.body().strategy {
            // No timer for no delay: the run's report already took this owner
            // round its loop once.
            Strategy::OneForOne if delay.is_zero() => self.restart_due_at(unit, epoch, now),
            // A delay past what the clock holds never ends: no timer, which
            // a paused clock would jump to.
            Strategy::OneForOne => {
                if let Some(at) = clock::deadline(now, delay) {
                    self.timers.insert(at, Timer::Restart { unit: unit.clone(), epoch });
                }
            }
            strategy => self.regroup(unit, strategy, delay),
        }
    }

    /// A unit's restart delay is over: it runs again, unless it was
    /// stopped or started meanwhile, or its restarts are paused.
    pub(super) fn restart_due(&mut self, unit: &Arc<Unit>, epoch: u32) {
        self.restart_due_at(unit, epoch, Instant::now());
    }

    fn restart_due_at(&mut self, unit: &Arc<Unit>, epoch: u32, now: Instant) {
        if !self.winds_down() {
            self.restart_if_due(unit, epoch, true, now);
        }
    }

    /// Restarts `unit` if the restart it waits for in `Backoff` since `epoch`
    /// is still due (see [`due_restart`]).
    pub(super) fn restart_if_due(&mut self, unit: &Arc<Unit>, epoch: u32, by_policy: bool, now: Instant) {
        // A plan in progress is to stop it (a call's stop of a unit it
        // depends on, or another strategy's restart), and asks it in its
        // turn, from `Backoff`: a run started now, its delay over while the
        // plan stopped the units before it, would only be stopped again
        // (a `stop_unit` of a unit in backoff ran it once more while its
        // dependents stopped).
        if self.plan.as_ref().is_some_and(|plan| plan.takes_part(unit)) {
            return;
        }
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
}
