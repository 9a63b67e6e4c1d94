//! Plans: units stopped a batch at a time (a strategy's siblings, a unit
//! with its dependents, the whole group at its end), then what follows.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{
    ABANDON_AFTER, After, Asked, Ending, Exit, Grace, InFlight, Node, Plan, Resume, Timer, Waiter, Wants, exit_event,
};
use crate::observe::event::EventKind;
use crate::observe::report::StopOutcome;
use crate::panics::log_contained;
use crate::spec::policy::{Decision, RestartTracker};
use crate::tree::batches::{Batches, Gated, Stage};
use crate::tree::clock;
use crate::tree::paths;
use crate::tree::record::{PendingRestart, abort, record_no_exit, take_run};
use crate::tree::stop_gate::StopGate;
use crate::tree::strategy::restart_set;
use crate::tree::unit::{Body, Line, Msg, Op, RunEnd, Stop, Unit, address};
use crate::{ShutdownOrder, Strategy, UnitState};

impl Node {
    /// Stops the siblings `strategy` restarts with `cause` (the most
    /// recently started first), then starts them all again after `delay`.
    pub(super) fn regroup(&mut self, cause: &Arc<Unit>, strategy: Strategy, delay: Duration) {
        let graph = self.graph();
        let order = graph.order();
        let Some(position) = order.iter().position(|unit| Arc::ptr_eq(unit, cause)) else { return };
        let set: Vec<Arc<Unit>> = order[restart_set(strategy, position, order.len())]
            .iter()
            .filter(|unit| Arc::ptr_eq(unit, cause) || unit.state().is_active())
            .cloned()
            .collect();
        let siblings = || set.iter().filter(|unit| !Arc::ptr_eq(unit, cause));
        if let Some(intensity) = &mut self.intensity {
            // A sibling still waiting out a restart decided earlier (one its
            // own failure set off) is restarted with this set: its restart
            // counts, as it would have once performed. Stopped for the set,
            // it would count as one cancelled by a call, and a unit failing
            // while the rest_for_one restart of a unit after it waited out
            // its delay took that restart off the group's count.
            for sibling in siblings() {
                let epoch = {
                    let record = sibling.record();
                    (record.state == UnitState::Backoff).then_some(record.epoch)
                };
                if let Some(epoch) = epoch {
                    intensity.performed(&PendingRestart { unit: sibling.clone(), epoch });
                }
            }
        }
        if self.shared.events_seen() {
            for sibling in siblings() {
                self.shared.emit(sibling, EventKind::SiblingFailed { sibling: cause.path.to_string(), strategy });
            }
        }
        self.plan = Some(Plan {
            batches: Batches::one_at_a_time(siblings().rev().cloned()),
            gated: None,
            in_flight: InFlight::default(),
            grace: None,
            then: After::Regroup { cause: cause.clone(), set: set.clone(), delay },
        });
        self.advance();
    }

    /// Ends the group's run: stops every unit, then returns `ending` to the
    /// parent. At the root, this is the supervisor's shutdown.
    pub(super) fn end_group(&mut self, ending: Ending) {
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
                (plan.in_flight.without_gate(), plan.grace)
            }
            None => Default::default(),
        };
        // The calls held back go on as calls during the ending do; a unit
        // removed so is not among those the ending stops and reports.
        for Resume { waiter, outcome, took } in std::mem::take(&mut self.resumes) {
            self.resume(waiter.unit, waiter.wants, outcome, took);
        }
        let carries_stops = !in_flight.is_empty();
        self.plan = Some(Plan { batches: self.ending_batches(), gated: None, in_flight, grace, then: After::End });
        for msg in std::mem::take(&mut self.deferred) {
            self.on_message(msg);
        }
        // Units stopping concurrently do not wait for the stops carried
        // over from the interrupted plan: its stage begins now, and those
        // units take their places in it.
        if carries_stops
            && self.shared.settings.shutdown_order == ShutdownOrder::Concurrent
            && let Some(Plan { gated: None, batches, .. }) = &self.plan
            && !batches.is_empty()
        {
            self.take_next_stage(Instant::now());
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
    /// ones, one at a time or all at once (as far as their dependencies
    /// allow).
    fn ending_batches(&self) -> Batches<Arc<Unit>> {
        let graph = self.graph();
        let (order, deps) = (graph.order(), graph.positions());
        let mut batches = Batches::new();
        match self.shared.settings.shutdown_order {
            // Added units come last in start order, so first in the stop.
            ShutdownOrder::Concurrent => push_concurrent(&mut batches, order, &deps, (0..order.len()).collect()),
            _ => {
                // The added units stop first, together as far as their
                // dependencies allow. No registered unit depends on an added
                // one: it depends on units registered with it, and a unit
                // that others depend on is never removed or forgotten, so
                // its name cannot pass to a unit added later.
                let (added, registered): (Vec<usize>, Vec<usize>) = (0..order.len()).partition(|&at| order[at].added);
                push_concurrent(&mut batches, order, &deps, added);
                batches.push_each(registered.into_iter().rev().map(|at| order[at].clone()));
            }
        }
        batches
    }

    /// The stops of `dependents` (running, in start order), then of `unit`,
    /// for a call: one at a time, or with `ShutdownOrder::Concurrent`, each
    /// once the units that depend on it have stopped. The gate takes in
    /// the dependents at rest too (asked, they are done at once): a unit
    /// at rest between two running ones (a one-shot job that has done its
    /// work, a unit that gave up) still links them.
    pub(super) fn call_stops(&self, unit: &Arc<Unit>, dependents: &[Arc<Unit>]) -> Batches<Arc<Unit>> {
        if self.shared.settings.shutdown_order != ShutdownOrder::Concurrent {
            let mut batches = Batches::one_at_a_time(dependents.iter().rev().cloned());
            batches.push_each([unit.clone()]);
            return batches;
        }
        let graph = self.graph();
        let order = graph.order();
        let stopped: foldhash::HashSet<usize> =
            graph.dependents(unit).iter().chain([unit]).map(|unit| address(unit)).collect();
        let members = (0..order.len()).filter(|&at| stopped.contains(&address(&order[at]))).collect();
        let mut batches = Batches::new();
        push_concurrent(&mut batches, order, &graph.positions(), members);
        batches
    }

    /// Moves the plan on: asks the units its gated stage frees; once every
    /// unit of a stage has stopped, goes on to the next; once none is
    /// left, does what follows.
    pub(super) fn advance(&mut self) {
        self.advance_at(None);
    }

    /// Like `advance`, with the time already read by the caller, if it was.
    pub(super) fn advance_at(&mut self, mut now: Option<Instant>) {
        loop {
            let Some(plan) = &mut self.plan else { return };
            let freed = plan.gated.as_mut().map(Gated::take_free).unwrap_or_default();
            // One clock read for what is asked together.
            let at = *now.get_or_insert_with(Instant::now);
            if !freed.is_empty() {
                let count = freed.len();
                if !self.ask_plan_stops(freed.into_iter().map(|(gated_at, unit)| (Some(gated_at), unit)), count, at) {
                    return;
                }
                continue;
            }
            if !plan.in_flight.is_empty() {
                return;
            }
            // Nothing in flight and nothing freed: every unit of a gated
            // stage has stopped.
            plan.gated = None;
            if !self.take_next_stage(at) {
                return;
            }
        }
    }

    /// Starts the plan's next stage: a gated one becomes the stage under
    /// way (the units it frees are asked next), a batch is asked at once;
    /// with none left, the plan is done. False when nothing more is to be
    /// done now.
    fn take_next_stage(&mut self, at: Instant) -> bool {
        let Some(plan) = &mut self.plan else { return false };
        match plan.batches.pop() {
            Some(Stage::Gated(gated)) => {
                plan.gated = Some(gated);
                true
            }
            Some(Stage::Batch(batch)) => {
                let count = batch.len();
                self.ask_plan_stops(batch.into_iter().map(|unit| (None, unit)), count, at)
            }
            None => {
                self.plan_done();
                false
            }
        }
    }

    /// The plan has stopped every unit: what follows.
    fn plan_done(&mut self) {
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
            After::End => self.forget_temporary_units(),
        }
    }

    /// Asks each of `units` to stop for the plan (each with its index in
    /// the plan's gated stage, if it is one of it). False if a unit that
    /// had ended meanwhile ended the group, which dropped the plan.
    fn ask_plan_stops(
        &mut self,
        units: impl Iterator<Item = (Option<usize>, Arc<Unit>)>,
        count: usize,
        now: Instant,
    ) -> bool {
        if let Some(plan) = &mut self.plan {
            plan.in_flight.reserve(count);
        }
        let mut shortest_grace: Option<Duration> = None;
        for (gated_at, unit) in units {
            if self.ended_before_asked(&unit, now) {
                if self.ending.is_some() {
                    return false; // a critical unit ended the group: the plan is dropped
                }
                self.gated_stopped(gated_at);
                continue;
            }
            match self.ask_stop(&unit, now, Grace::Plan) {
                Asked::InFlight => {
                    if let Some(plan) = &mut self.plan {
                        plan.in_flight.insert(&unit, gated_at);
                        if matches!(plan.then, After::Regroup { .. } | After::Relaunch { .. }) {
                            unit.start_after_stop();
                            self.changed(&unit);
                        }
                    }
                    if matches!(unit.body, Body::Task(_)) {
                        shortest_grace = Some(
                            shortest_grace.map_or(unit.settings.stop_timeout, |d| d.min(unit.settings.stop_timeout)),
                        );
                    }
                    self.take_deferred_end(&unit);
                }
                Asked::Done(outcome) => {
                    self.stopped(&unit, outcome, Duration::ZERO);
                    self.gated_stopped(gated_at);
                }
            }
        }
        // A grace past what the clock holds never ends: no timer, which a
        // paused clock would jump to.
        if let Some(at) = shortest_grace.and_then(|grace| clock::deadline(now, grace)) {
            self.arm_plan_grace(at);
        }
        true
    }

    /// Tells the plan's gated stage that its unit at `gated_at` has
    /// stopped (or was not running).
    fn gated_stopped(&mut self, gated_at: Option<usize>) {
        if let (Some(at), Some(Plan { gated: Some(gated), .. })) = (gated_at, &mut self.plan) {
            gated.stopped(at);
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
    pub(super) fn plan_grace_over(&mut self) {
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
            let Some(deadline) = clock::deadline(stop.asked, unit.settings.stop_timeout) else { continue };
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
            let exit = self.decide_exit(&mut record, unit, end, now);
            if matches!(exit.decision, Some(Decision::Restart { .. })) {
                // Not restarted by its policy: the plan stops it.
                record.state = UnitState::Stopped;
            }
            // With no decision (the supervisor shuts down), it rests as
            // `decide_exit` left it: a run that failed then is `Failed`, and
            // the report says so, as when its end is heard at once.
            (run, exit)
        };
        if let Some(run) = run {
            run.stop.cancel();
        }
        let Exit { reason, succeeded, decision, .. } = exit;
        self.shared.emit(unit, exit_event(reason));
        match decision {
            Some(Decision::Restart { .. }) => {
                self.changed(unit);
                // `Stopped` in its policy's stead, as a unit the plan finds
                // in `Backoff`: its last event said only that its run ended,
                // and a restart, or a rest, was awaited in vain.
                self.shared.emit(unit, EventKind::Stopped { forced: false, took: Duration::ZERO });
            }
            None => self.changed(unit),
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
        // The supervisor began to shut down while the strategy stopped them:
        // nothing starts again, so nothing waits to. The siblings rest as
        // stopped, as the units of a group that ends do, until the shutdown
        // reaches the group (in `Backoff`, they were stopped a second time).
        if self.winds_down() {
            return;
        }
        let mut waiting = Vec::with_capacity(set.len());
        // A unit removed while the strategy stopped it is gone for good.
        for unit in set.into_iter().filter(|unit| Self::is_member(unit)) {
            let is_cause = Arc::ptr_eq(&unit, &cause);
            let state = unit.state();
            // The cause waits out its delay; a sibling was stopped by the
            // strategy (a stop by hand meanwhile was held back).
            let takes_part = if is_cause { state == UnitState::Backoff } else { state == UnitState::Stopped };
            if !takes_part {
                continue;
            }
            if !is_cause && self.is_forgotten_at_rest(&unit) {
                self.forget(&unit, StopOutcome::NotRunning, Duration::ZERO);
                continue;
            }
            let epoch = {
                let mut record = unit.record();
                record.state = UnitState::Backoff;
                record.epoch
            };
            self.changed(&unit);
            waiting.push((unit, epoch));
        }
        // As a unit's own restart: a delay past what the clock holds never ends.
        if let Some(at) = clock::deadline(Instant::now(), delay) {
            self.timers.insert(at, Timer::Regroup { cause, set: waiting });
        }
    }

    /// The group's run is over: its temporary units, stopped with it, are
    /// forgotten, and a new run of the group starts without them. Not in
    /// the supervisor's shutdown, whose report lists them.
    fn forget_temporary_units(&mut self) {
        if self.shared.is_shutting_down() {
            return;
        }
        let graph = self.graph();
        let mut units: Vec<&Arc<Unit>> = graph.order().iter().collect();
        if self.dependencies_among_units {
            // Dependents first: a temporary unit that only a temporary
            // dependent kept goes with it, and does not run again in the
            // group's next run.
            units.reverse();
        }
        for unit in units {
            if Self::is_member(unit) && self.is_forgotten_at_rest(unit) {
                self.forget(unit, StopOutcome::NotRunning, Duration::ZERO);
            }
        }
    }

    /// Asks `unit` to stop; `now` is when its grace period begins.
    pub(super) fn ask_stop(&mut self, unit: &Arc<Unit>, now: Instant, grace: Grace) -> Asked {
        let mut record = unit.record();
        if record.stop.is_some() {
            return Asked::InFlight;
        }
        let Some(run) = &record.run else {
            return match record.state {
                UnitState::Backoff | UnitState::Waiting | UnitState::Starting => {
                    // Marked to start and never launched (a shutdown as the
                    // tree starts), it ran nothing: it is not told it
                    // stopped, and is listed as not running, as the units
                    // of a group so marked are.
                    let launched = record.state != UnitState::Starting;
                    // Its entry among the waiting is stale from now on.
                    self.stopped_while_waiting |= record.state == UnitState::Waiting;
                    record.state = UnitState::Stopped;
                    // Whatever was scheduled for it no longer applies.
                    record.epoch = record.epoch.wrapping_add(1);
                    drop(record);
                    if let Some(group) = unit.group() {
                        // A group whose run never began: nor will its units'.
                        super::settle_unstarted(&self.shared, group);
                    }
                    self.changed(unit);
                    if !launched {
                        return Asked::Done(StopOutcome::NotRunning);
                    }
                    self.shared.emit(unit, EventKind::Stopped { forced: false, took: Duration::ZERO });
                    Asked::Done(StopOutcome::Graceful)
                }
                _ => Asked::Done(StopOutcome::NotRunning),
            };
        };
        run.stop.cancel();
        let is_task = run.abort.is_some();
        record.stop = Some(Box::new(Stop { asked: now, then_start: false, abort_timer: None, aborted: false }));
        record.state = UnitState::Stopping;
        // What depends on it must not start on it from now on.
        record.ready = false;
        let epoch = record.epoch;
        if is_task && self.killed {
            abort(&mut record);
        }
        let timer = if !is_task {
            None
        } else if self.killed {
            Some((now + ABANDON_AFTER, Timer::Abandon { unit: unit.clone(), epoch }))
        } else if grace == Grace::OwnTimer {
            // A stop timeout past what the clock holds never ends: no timer,
            // which a paused clock would jump to.
            clock::deadline(now, unit.settings.stop_timeout).map(|at| (at, Timer::Abort { unit: unit.clone(), epoch }))
        } else {
            None
        };
        if let Some((at, timer)) = timer {
            let key = self.timers.insert(at, timer);
            if let Some(stop) = &mut record.stop {
                // Removed when the stop completes: the timer holds the unit.
                stop.abort_timer = Some(key);
            }
        }
        drop(record);
        self.changed(unit);
        self.shared.changed_quietly(unit);
        Asked::InFlight
    }

    /// `unit`, stopped in the shutdown, is a group: the units it stopped
    /// before the shutdown began (all of them, if it was not running) have
    /// no line yet, and their owner is gone. They are listed here, where the
    /// group's own stop would have listed them: the newest first, a group's
    /// units before it.
    fn report_units_at_rest(&self, unit: &Unit) {
        paths::walk_newest_first(unit, &mut |member| self.report_stop(member, StopOutcome::NotRunning, Duration::ZERO));
    }

    /// Adds `unit`'s line to the shutdown's report, unless it has one (a
    /// group's unit may have stopped with its group during the shutdown, its
    /// group's owner listed it, or before, the parent lists it) or was
    /// removed (the ending's list of units to stop was made before a
    /// removal that the shutdown overtook was done).
    fn report_stop(&self, unit: &Arc<Unit>, outcome: StopOutcome, took: Duration) {
        let state = {
            let mut record = unit.record();
            if record.removed || std::mem::replace(&mut record.reported, true) {
                return;
            }
            record.state
        };
        self.shared.report_line(unit.clone(), Line { state, outcome, took });
    }

    /// A stop of `unit` is complete: its report line, its waiters, its plan.
    pub(super) fn stopped(&mut self, unit: &Arc<Unit>, outcome: StopOutcome, took: Duration) {
        // A unit whose removal waited for this stop is removed, not reported:
        // nothing restarts it during the ending.
        if self.ending.is_some() && self.shared.is_shutting_down() && !self.is_being_removed(unit) {
            self.report_units_at_rest(unit);
            self.report_stop(unit, outcome, took);
        }
        if let Some(plan) = &mut self.plan {
            let gated_at = plan.in_flight.remove(unit);
            self.gated_stopped(gated_at);
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
            hold |= plan_runs && matches!(waiter.wants, Wants::Start(..));
            if hold {
                if matches!(waiter.wants, Wants::Start(_, Op::Restart)) {
                    // The plan may start the unit again before the call
                    // resumes, which would then find it active and leave it
                    // as it is: its count is reset now, at rest, as the
                    // restart asks.
                    unit.record().tracker = RestartTracker::new();
                }
                self.resumes.push_back(Resume { waiter, outcome, took });
            } else {
                if matches!(waiter.wants, Wants::Stop(_)) {
                    self.leave_out_of_plan_restarts(unit);
                }
                self.resume(waiter.unit, waiter.wants, outcome, took);
            }
        }
    }

    /// `unit`, stopped by a call asked before the plan began, stays stopped,
    /// as `stop_unit` promises: the plan, which took its stop as one of its
    /// own, does not start it again. A unit stopped by hand a moment
    /// earlier was never in the plan; one still stopping then would
    /// otherwise be restarted by a strategy, or with its dependency.
    fn leave_out_of_plan_restarts(&mut self, unit: &Arc<Unit>) {
        let Some(plan) = &mut self.plan else { return };
        match &mut plan.then {
            After::Regroup { cause, set, .. } => {
                set.retain(|member| Arc::ptr_eq(member, cause) || !Arc::ptr_eq(member, unit));
            }
            // The first is the unit restarted by hand: its own stop was that call's.
            After::Relaunch { units, .. } => {
                if let Some(at) = units.iter().skip(1).position(|member| Arc::ptr_eq(member, unit)) {
                    units.remove(at + 1);
                }
            }
            After::Reply { .. } | After::End => {}
        }
    }

    /// Gives up waiting for an aborted task that does not go away: it
    /// blocks its thread. Its report, if it ever comes, is ignored.
    pub(super) fn abandon(&mut self, unit: &Arc<Unit>, epoch: u32) {
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
            record_no_exit(&mut record);
            stop.asked.elapsed()
        };
        self.changed(unit);
        log_contained(|| {
            tracing::error!(unit = %unit.path, ?took, "an aborted task did not end (does it block its thread?); abandoning it");
        });
        self.shared.emit(unit, EventKind::Stopped { forced: true, took });
        self.stopped(unit, StopOutcome::Abandoned, took);
        self.advance();
    }
}

/// Adds the units at `members` (positions in `order`, in start order) as
/// one concurrent stage: each asked once the units among them that depend
/// on it have stopped; all at once, the most recently started first, when
/// none depends on another.
fn push_concurrent(batches: &mut Batches<Arc<Unit>>, order: &[Arc<Unit>], deps: &[Vec<usize>], members: Vec<usize>) {
    if members.is_empty() {
        return;
    }
    let units = members.iter().map(|&at| order[at].clone());
    if members.iter().all(|&at| deps[at].is_empty()) {
        batches.push_together(units.rev().collect());
    } else {
        let gate = StopGate::among(deps, &members);
        batches.push_gated(units.collect(), gate);
    }
}
