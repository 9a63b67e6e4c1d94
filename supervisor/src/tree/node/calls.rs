//! Control calls (stop, start, restart, pause, resume), additions and
//! removals, as the owner carries them out.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{After, Asked, Grace, InFlight, Node, Plan, Waiter, Wants};
use crate::observe::event::EventKind;
use crate::observe::report::{StopOutcome, UnitReport};
use crate::spec::Spec;
use crate::spec::policy::RestartTracker;
use crate::spec::validate::{self, join};
use crate::tree::build;
use crate::tree::paths;
use crate::tree::shared::Shared;
use crate::tree::unit::{GroupBody, Line, Op, Unit};
use crate::{Error, UnitState};

impl Node {
    /// Whether a call waits to remove `unit` once it has stopped.
    pub(super) fn is_being_removed(&self, unit: &Arc<Unit>) -> bool {
        let removes = |waiter: &Waiter| Arc::ptr_eq(&waiter.unit, unit) && matches!(waiter.wants, Wants::Remove(_));
        self.waiters.iter().any(removes) || self.resumes.iter().any(|resume| removes(&resume.waiter))
    }

    /// Carries on a control call that waited for its unit's stop. The calls
    /// that waited for one stop go on in the order they came, each from
    /// where the one before left the unit: a stop or a removal after a
    /// start stops the new run first; a start after a removal finds the
    /// unit gone.
    pub(super) fn resume(&mut self, unit: Arc<Unit>, wants: Wants, outcome: StopOutcome, took: Duration) {
        // Removed by a call before: stopped for good, and not to be started.
        let gone = !Self::is_member(&unit);
        let restarted = !gone && unit.state().is_active();
        match wants {
            Wants::Stop(reply) if restarted => self.on_control(unit, Op::Stop, reply),
            Wants::Stop(reply) => {
                let _ = reply.send(Ok(()));
            }
            Wants::Start(reply, _) if gone => {
                let _ = reply.send(Err(self.unknown(&unit)));
            }
            Wants::Start(reply, op) => {
                let _ = reply.send(self.start_by_hand(&unit, op.as_str()));
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

    pub(super) fn on_control(&mut self, unit: Arc<Unit>, op: Op, reply: oneshot::Sender<Result<(), Error>>) {
        if !Self::is_member(&unit) {
            let _ = reply.send(Err(self.unknown(&unit)));
            return;
        }
        // While the group ends, its ending stops everything in order
        // already. Otherwise, a stop waits for one in progress, and stops
        // what depends on the unit first.
        if matches!(op, Op::Stop | Op::Restart) && self.ending.is_none() {
            // A unit already stopping: the call goes on once that stop is
            // done, from where the calls that waited for it before leave
            // the unit.
            if unit.record().stop.is_some() {
                match op {
                    Op::Stop => self.waiters.push(Waiter { unit, wants: Wants::Stop(reply) }),
                    _ => self.start_once_stopped(unit, reply, op),
                }
                return;
            }
            let dependents: Vec<Arc<Unit>> =
                self.dependents(&unit).into_iter().filter(|dependent| dependent.state().is_active()).collect();
            if !dependents.is_empty() {
                self.stop_with_dependents(unit, dependents, op, reply);
                return;
            }
        }
        self.carry_out(unit, op, reply);
    }

    /// Has `unit`, being stopped, started by the call `op` once stopped;
    /// meanwhile it holds its group back, as a unit that is not ready.
    fn start_once_stopped(&mut self, unit: Arc<Unit>, reply: oneshot::Sender<Result<(), Error>>, op: Op) {
        unit.start_after_stop();
        // It now holds its group back: the group looks again, and so do
        // the waits on the unit.
        self.changed(&unit);
        self.waiters.push(Waiter { unit, wants: Wants::Start(reply, op) });
    }

    /// Starts what `unit` needs that is not running, for a start by hand,
    /// unless it has done its work: a one-shot job at rest after a run
    /// that ended well is not run again for a dependent's start.
    fn start_needs(&mut self, unit: &Arc<Unit>) {
        for need in self.needs(unit) {
            if need.record().stop.is_some() {
                // Stopping: it starts again once stopped, after the calls
                // that wait for that stop already.
                let (reply, _) = oneshot::channel();
                self.start_once_stopped(need, reply, Op::Start);
            } else if !need.state().is_active() && !need.record().lets_dependents_start(need.group().is_some()) {
                need.record().tracker = RestartTracker::new();
                self.launch(&need);
            }
        }
    }

    /// Carries out a control call on `unit`, its dependents and needs seen
    /// to.
    fn carry_out(&mut self, unit: Arc<Unit>, op: Op, reply: oneshot::Sender<Result<(), Error>>) {
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
            // Nothing restarts in a shutdown, nor in a group that ends: there
            // is nothing to pause or resume. Refused as the group's other
            // calls are then, and as they are once its run is over.
            Op::PauseRestarts | Op::ResumeRestarts if self.winds_down() => {
                let _ = reply.send(Err(self.shared.refusal(&self.group, op.as_str(), unit.path.to_string())));
            }
            Op::PauseRestarts => {
                unit.record().paused = true;
                self.changed(&unit);
                let _ = reply.send(Ok(()));
            }
            Op::ResumeRestarts => {
                self.resume_restarts(&unit);
                let _ = reply.send(Ok(()));
            }
            Op::Start if unit.record().stop.is_some() => self.start_once_stopped(unit, reply, op),
            Op::Start => {
                let _ = reply.send(self.start_by_hand(&unit, op.as_str()));
            }
            Op::Restart => {
                if let Err(error) = self.refuse_while_ending(&unit, op.as_str()) {
                    let _ = reply.send(Err(error));
                    return;
                }
                match self.ask_stop(&unit, Instant::now(), Grace::OwnTimer) {
                    Asked::InFlight => self.start_once_stopped(unit, reply, op),
                    Asked::Done(_) => {
                        let _ = reply.send(self.start_by_hand(&unit, op.as_str()));
                    }
                }
            }
        }
    }

    /// Lets `unit` restart again, with the restart that came due while
    /// paused, if one did.
    fn resume_restarts(&mut self, unit: &Arc<Unit>) {
        let held = {
            let mut record = unit.record();
            record.paused = false;
            std::mem::take(&mut record.held).then_some((record.epoch, record.policy_restart))
        };
        self.changed(unit);
        if let Some((epoch, by_policy)) = held
            && !self.winds_down()
        {
            self.restart_if_due(unit, epoch, by_policy, Instant::now());
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
        let batches = self.call_stops(&unit, &dependents);
        let then = match op {
            Op::Restart => {
                let mut units = vec![unit];
                units.extend(dependents);
                After::Relaunch { units, reply }
            }
            _ => After::Reply { unit, reply },
        };
        self.plan = Some(Plan { batches, gated: None, in_flight: InFlight::default(), grace: None, then });
        self.advance();
    }

    /// Starts `units` again after a restart by hand; the first, the one
    /// asked for, with its count reset.
    pub(super) fn relaunch(&mut self, units: &[Arc<Unit>]) -> Result<(), Error> {
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

    /// Starts a unit at rest, its restart count reset, with what it needs
    /// that is not running; a unit already active is left as it is, but
    /// for what it needs. A `restart` of a unit at rest is a start. Either
    /// would otherwise wait for ever for a dependency stopped by hand: a
    /// unit at rest, once started, and one that waits already.
    fn start_by_hand(&mut self, unit: &Arc<Unit>, action: &'static str) -> Result<(), Error> {
        self.refuse_while_ending(unit, action)?;
        self.start_needs(unit);
        if unit.state().is_active() {
            return Ok(());
        }
        unit.record().tracker = RestartTracker::new();
        self.launch(unit);
        Ok(())
    }

    pub(super) fn refuse_while_ending(&self, unit: &Unit, action: &'static str) -> Result<(), Error> {
        if self.ending.is_some() || self.shared.is_shutting_down() {
            return Err(self.shared.refusal(&self.group, action, unit.path.to_string()));
        }
        Ok(())
    }

    fn unknown(&self, unit: &Unit) -> Error {
        // Removed meanwhile: it is no longer among the units listed.
        paths::unknown_unit(&self.shared.root, &unit.path)
    }

    pub(super) fn add(&mut self, spec: Spec) -> Result<(), Error> {
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
        if let Some(group) = unit.group() {
            units_added(&self.shared, group);
        }
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
        validate::check_dependencies(&self.group.path, &names, &deps, &mut problems);
        let this_group = |unit: &Unit| paths::parent(&unit.path) == &*self.group.path;
        validate::hint_where_named(&mut problems, |name| {
            let mut found = None;
            paths::walk(&self.shared.root, &mut |unit| {
                if found.is_none() && unit.name() == name && !this_group(unit) {
                    found = Some(unit.path.to_string());
                }
            });
            found
        });
        Error::from_problems(problems)
    }

    pub(super) fn on_remove(&mut self, unit: Arc<Unit>, reply: oneshot::Sender<Result<UnitReport, Error>>) {
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

    /// Whether `unit`, at rest for good (its policy let it end, or its
    /// group's strategy or end stopped it), is forgotten: a temporary unit,
    /// which its group never runs again, as OTP never restarts a temporary
    /// child (its piece of work, a connection, is gone). One that others
    /// depend on stays, as `remove` would refuse it.
    pub(super) fn is_forgotten_at_rest(&self, unit: &Arc<Unit>) -> bool {
        unit.settings.temporary && !self.has_dependents(unit)
    }

    /// Whether a member names `unit` among its dependencies.
    pub(super) fn has_dependents(&self, unit: &Arc<Unit>) -> bool {
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
    pub(super) fn forget(&mut self, unit: &Arc<Unit>, outcome: StopOutcome, took: Duration) -> UnitReport {
        self.body().change_members(|members| members.remove(unit.name()));
        unit.record().removed = true;
        self.members_changed();
        // The units of a removed group are gone with it, before it: their
        // waits and their subscribers learn so.
        if let Some(group) = unit.group() {
            units_gone(&self.shared, group);
        }
        if self.shared.is_shutting_down() {
            // A shutdown overtook the removal: the unit's stop, or its units'
            // (their owner, unaware, stopped them as the shutdown's), may
            // have been listed in the report already.
            self.shared.unreport_removed();
        }
        self.shared.emit(unit, EventKind::Removed);
        self.changed(unit);
        self.shared.changes.removed(unit);
        let line = unit.report_line(Line { state: unit.state(), outcome, took });
        self.forget_needs_left_at_rest(unit);
        line
    }

    /// Forgets the temporary units that `unit`, just forgotten, depended on,
    /// that ended for good while it was there and that it alone kept (see
    /// [`is_forgotten_at_rest`](Self::is_forgotten_at_rest)): nothing keeps
    /// them now. A pair of temporary units per connection, the one ending
    /// after the one it depends on, left that one at rest for ever. Not
    /// while the group ends, which forgets its temporary units at rest
    /// itself (not in a shutdown, whose report lists them).
    fn forget_needs_left_at_rest(&mut self, unit: &Unit) {
        if unit.settings.depends_on.is_empty() || self.winds_down() {
            return;
        }
        let needs: Vec<Arc<Unit>> = {
            let members = self.body().members();
            unit.settings.depends_on.iter().filter_map(|name| members.get(name).cloned()).collect()
        };
        for need in needs {
            let ended = matches!(need.state(), UnitState::Exited | UnitState::Failed);
            if ended && self.is_forgotten_at_rest(&need) {
                self.forget(&need, StopOutcome::NotRunning, Duration::ZERO);
            }
        }
    }
}

/// Tells of each unit of an added `group`, a nested group before its
/// units, that it was added with it: a subscriber that follows units by
/// `Added` and `Removed` sees each begin and end.
fn units_added(shared: &Shared, group: &GroupBody) {
    for unit in group.units() {
        shared.emit(&unit, EventKind::Added);
        if let Some(nested) = unit.group() {
            units_added(shared, nested);
        }
    }
}

/// Tells of each unit of a removed `group`, a nested group's units before
/// it, that it is gone, and marks it removed as its group is.
fn units_gone(shared: &Shared, group: &GroupBody) {
    for unit in group.units() {
        if let Some(nested) = unit.group() {
            units_gone(shared, nested);
        }
        unit.record().removed = true;
        shared.emit(&unit, EventKind::Removed);
        shared.changes.removed(&unit);
    }
}
