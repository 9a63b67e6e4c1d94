//! The units of a group that wait for a dependency to become ready, under
//! the first dependency they wait for.

use std::sync::Arc;

use crate::UnitState;
use crate::tree::unit::{Unit, address};

/// The units waiting for one dependency: most often one, kept without a
/// list of its own.
pub(crate) enum Waiters {
    One(Arc<Unit>),
    More(Vec<Arc<Unit>>),
}

impl Waiters {
    /// Adds `unit`; `prune`: some entries may be stale (see [`forget_stale`]).
    pub(crate) fn push(&mut self, unit: Arc<Unit>, prune: bool) {
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
    pub(crate) fn len(&self) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::build::idle_unit;

    fn waiting_unit(name: &str) -> Arc<Unit> {
        let unit = idle_unit(name);
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
}
