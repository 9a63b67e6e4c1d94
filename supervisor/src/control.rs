//! Serialising the control calls on a unit (`start_unit`, `stop_unit`,
//! `restart`, a shutdown's stop) so that two runs of a unit never overlap.
//!
//! A flag in the unit's state, rather than an async mutex per unit: every
//! unit has one, control calls are rare, and they seldom wait, so the
//! waiting is shared by the whole supervisor.

use crate::supervisor::Shared;
use crate::unit::Unit;

/// The right to change a unit, held until dropped.
pub(crate) struct Control<'a> {
    unit: &'a Unit,
    shared: &'a Shared,
}

/// Takes the control of `unit`, waiting while another call holds it.
pub(crate) async fn take<'a>(shared: &'a Shared, unit: &'a Unit) -> Control<'a> {
    if unit.try_take_control() {
        return Control { unit, shared };
    }
    loop {
        let released = shared.control_released.notified();
        tokio::pin!(released);
        // Listening before looking, so that a release in between is not missed.
        released.as_mut().enable();
        if unit.try_take_control() {
            return Control { unit, shared };
        }
        released.await;
    }
}

impl Drop for Control<'_> {
    fn drop(&mut self) {
        self.unit.release_control();
        self.shared.control_released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{Supervisor, TaskSpec};

    #[tokio::test(start_paused = true)]
    async fn a_second_taker_waits_for_the_first_to_release() {
        let sup = Supervisor::builder().task(TaskSpec::new("unit", |_ctx| async {})).build().unwrap();
        let shared = sup.shared();
        let unit = &shared.units[0];
        let first = super::take(shared, unit).await;
        let mut second = Box::pin(super::take(shared, unit));
        assert!(tokio::time::timeout(Duration::from_secs(1), &mut second).await.is_err(), "taken twice");
        // A waiter that gives up takes nothing with it.
        let mut given_up = Box::pin(super::take(shared, unit));
        assert!(tokio::time::timeout(Duration::from_secs(1), &mut given_up).await.is_err());
        drop(given_up);
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(1), second).await.expect("released to the waiter");
        drop(second);
        tokio::time::timeout(Duration::from_secs(1), super::take(shared, unit)).await.expect("free again");
    }
}
