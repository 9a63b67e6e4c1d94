//! Which siblings a strategy stops and starts again when a unit's run ends
//! and its policy restarts it. Pure: positions in, positions out.

use crate::Strategy;

/// The positions, in start order, of the units that restart together when
/// the unit at `failed` (a position in a group of `len` units, in start
/// order) is restarted: the unit itself and the siblings the strategy
/// takes with it. They are stopped in the reverse of this order and
/// started in this order.
pub(crate) fn restart_set(strategy: Strategy, failed: usize, len: usize) -> std::ops::Range<usize> {
    debug_assert!(failed < len);
    match strategy {
        Strategy::OneForOne => failed..failed + 1,
        Strategy::OneForAll => 0..len,
        Strategy::RestForOne => failed..len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_for_one_takes_only_the_unit() {
        assert_eq!(restart_set(Strategy::OneForOne, 2, 5), 2..3);
    }

    #[test]
    fn one_for_all_takes_every_sibling() {
        assert_eq!(restart_set(Strategy::OneForAll, 2, 5), 0..5);
        assert_eq!(restart_set(Strategy::OneForAll, 0, 1), 0..1);
    }

    #[test]
    fn rest_for_one_takes_the_unit_and_those_started_after_it() {
        assert_eq!(restart_set(Strategy::RestForOne, 2, 5), 2..5);
        assert_eq!(restart_set(Strategy::RestForOne, 4, 5), 4..5);
        assert_eq!(restart_set(Strategy::RestForOne, 0, 5), 0..5);
    }
}
