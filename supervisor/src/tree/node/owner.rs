//! A group's owner: its node behind a lock, taken one turn at a time by
//! the owner's task, or by a run or a call that finds that task idle.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError, Weak};

use tokio_util::sync::CancellationToken;

use super::{Ending, FreeTask, Node, ParentLink};
use crate::Error;
use crate::spec::Spec;
use crate::tree::shared::Shared;
use crate::tree::unit::{Mailbox, Msg, NextRun, OwnerLink, Unit};

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
    pub(super) fn lock(&self) -> MutexGuard<'_, Node> {
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
            node.free_task = Some(FreeTask { unit: unit.clone(), epoch: *epoch, abort: None, next: None });
        }
        node.on_message(msg);
        node.end_turn();
        Ok(node.free_task.take().and_then(|free| free.next))
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
}
