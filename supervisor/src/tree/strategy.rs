//! [`Strategy`]: which siblings a group stops and starts again when a
//! unit's run ends and its policy restarts it. Pure: positions in,
//! positions out.

use std::fmt;

/// What a group does with its other units when one of them ends and its own
/// policy restarts it, as in Erlang/OTP.
///
/// # Examples
///
/// ```
/// use supervisor::{GroupSpec, Strategy};
///
/// let group = GroupSpec::new("storage").strategy(Strategy::RestForOne);
/// assert_eq!(Strategy::default(), Strategy::OneForOne);
/// assert_eq!(Strategy::RestForOne.to_string(), "rest_for_one");
/// # let _ = group;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// Restart only the unit that ended.
    #[default]
    OneForOne,
    /// Stop every other running unit of the group (the most recently
    /// started first), then start them all again in start order.
    OneForAll,
    /// Stop the units started after the one that ended (the most recently
    /// started first), then start it and them again in start order.
    RestForOne,
}

impl Strategy {
    /// The name used in `supervise!` and in logs: `one_for_one`,
    /// `one_for_all` or `rest_for_one`.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::Strategy;
    ///
    /// assert_eq!(Strategy::OneForAll.as_str(), "one_for_all");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::OneForOne => "one_for_one",
            Strategy::OneForAll => "one_for_all",
            Strategy::RestForOne => "rest_for_one",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

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
