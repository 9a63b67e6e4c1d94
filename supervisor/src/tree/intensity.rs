//! A group's restart intensity: more than `max` restarts among its units
//! within `period`, and the group gives up. Pure: the caller passes `now`,
//! and tells which of the restarts decided earlier are still to come.

use tokio::time::Instant;

use crate::spec::group::IntensityLimit;

/// The restarts a group has decided on within its period: those performed,
/// and those still waiting out their delays, each known by a `K` of the
/// caller's.
///
/// A restart counts from the time it is decided, so that restarts waiting
/// out their delays together cannot exceed the limit; one cancelled during
/// its delay (the unit stopped, started or removed by hand) stops counting.
#[derive(Debug)]
pub(crate) struct Intensity<K> {
    limit: IntensityLimit,
    /// When each restart was decided; `Some(key)` while it is still to come.
    decided: Vec<(Instant, Option<K>)>,
}

impl<K> Intensity<K> {
    pub(crate) fn new(limit: IntensityLimit) -> Self {
        Intensity { limit, decided: Vec::new() }
    }

    /// Records a restart decided at `now`, to be known as `key` until it is
    /// performed; `false` if it is one too many: more than `max` within the
    /// period. `to_come` tells whether a restart decided earlier and not
    /// yet performed is still to come; one that is not was cancelled.
    pub(crate) fn allow(&mut self, now: Instant, key: K, to_come: impl Fn(&K) -> bool) -> bool {
        let period = self.limit.period;
        self.decided.retain(|(at, pending)| now.duration_since(*at) < period && pending.as_ref().is_none_or(&to_come));
        if self.decided.len() >= self.limit.max as usize {
            return false;
        }
        self.decided.push((now, Some(key)));
        true
    }

    /// The restart known as the first key `is_it` matches has happened: it
    /// counts until it leaves the period, whatever follows.
    pub(crate) fn performed(&mut self, is_it: impl Fn(&K) -> bool) {
        let pending = self.decided.iter_mut().find(|(_, pending)| pending.as_ref().is_some_and(&is_it));
        if let Some((_, pending)) = pending {
            *pending = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    /// Every restart happens as soon as it is decided.
    fn at_once(intensity: &mut Intensity<u32>, now: Instant, key: u32) -> bool {
        let allowed = intensity.allow(now, key, |_| true);
        intensity.performed(|&pending| pending == key);
        allowed
    }

    #[test]
    fn allows_max_restarts_within_the_period_then_refuses() {
        let mut intensity = Intensity::new(IntensityLimit { max: 3, period: 10 * SEC });
        let start = Instant::now();
        assert!(at_once(&mut intensity, start, 1));
        assert!(at_once(&mut intensity, start + SEC, 2));
        assert!(at_once(&mut intensity, start + 2 * SEC, 3));
        assert!(!at_once(&mut intensity, start + 3 * SEC, 4), "a fourth restart within 10 s");
    }

    #[test]
    fn restarts_older_than_the_period_are_forgotten() {
        let mut intensity = Intensity::new(IntensityLimit { max: 2, period: 10 * SEC });
        let start = Instant::now();
        assert!(at_once(&mut intensity, start, 1));
        assert!(at_once(&mut intensity, start + 5 * SEC, 2));
        assert!(at_once(&mut intensity, start + 10 * SEC, 3), "the first restart has left the window");
        assert!(!at_once(&mut intensity, start + 11 * SEC, 4));
    }

    #[test]
    fn restarts_still_to_come_count() {
        let mut intensity = Intensity::new(IntensityLimit { max: 1, period: 10 * SEC });
        let start = Instant::now();
        assert!(intensity.allow(start, 1, |_| true));
        assert!(!intensity.allow(start + SEC, 2, |_| true), "the first one waits out its delay");
    }

    #[test]
    fn a_cancelled_restart_stops_counting_and_a_performed_one_does_not() {
        let mut intensity = Intensity::new(IntensityLimit { max: 1, period: 10 * SEC });
        let start = Instant::now();
        assert!(intensity.allow(start, 1, |_| true));
        // Restart 1 was cancelled during its delay.
        assert!(intensity.allow(start + SEC, 2, |&pending| pending != 1));
        intensity.performed(|&pending| pending == 2);
        // Performed: it counts even though nothing is to come.
        assert!(!intensity.allow(start + 2 * SEC, 3, |_| false));
    }
}
