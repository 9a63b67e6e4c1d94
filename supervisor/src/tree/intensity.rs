//! A group's restart intensity: more than `max` restarts among its units
//! within `period`, and the group gives up. Pure: the caller passes `now`,
//! and tells which of the restarts decided earlier are still to come.

use std::hash::Hash;

use tokio::time::Instant;

use crate::recent::Recent;
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
    /// When each performed restart was decided.
    performed: Recent,
    /// The restarts still to come, with when each was decided: at most one
    /// per unit, and those cancelled until the next look over them.
    pending: foldhash::HashMap<K, Instant>,
    /// How many were left at the last look: the next comes at the limit, or
    /// once they have doubled, so that units removed in their delays (each
    /// key holds its unit) cannot pile up, at a constant cost per restart.
    looked_over: usize,
}

impl<K: Eq + Hash> Intensity<K> {
    pub(crate) fn new(limit: IntensityLimit) -> Self {
        let performed = Recent::new(limit.max, limit.period);
        Intensity { limit, performed, pending: foldhash::HashMap::default(), looked_over: 0 }
    }

    /// Records a restart decided at `now`, to be known as `key` until it is
    /// performed; `false` if it is one too many: more than `max` within the
    /// period. `to_come` tells whether a restart decided earlier and not
    /// yet performed is still to come; one that is not was cancelled.
    pub(crate) fn allow(&mut self, now: Instant, key: K, to_come: impl Fn(&K) -> bool) -> bool {
        let period = self.limit.period;
        // A restart exactly `period` ago is still within it, as in OTP.
        self.performed.forget_older(now, period);
        let max = self.limit.max as usize;
        // The restarts still to come are looked over only now and then: the
        // look takes each one's unit, and under the limit the cancelled ones
        // can only count more.
        let at_limit = self.performed.len() + self.pending.len() >= max;
        if at_limit || self.pending.len() >= 2 * self.looked_over + 16 {
            self.pending.retain(|key, at| now.duration_since(*at) <= period && to_come(key));
            self.looked_over = self.pending.len();
            if self.performed.len() + self.pending.len() >= max {
                return false;
            }
        }
        self.pending.insert(key, now);
        true
    }

    /// The restart known as `key` has happened: it counts until it leaves
    /// the period, whatever follows.
    pub(crate) fn performed(&mut self, key: &K) {
        if let Some(decided) = self.pending.remove(key) {
            // Perhaps decided before others that happened first, after a
            // longer delay: it takes its place among them.
            self.performed.push(decided);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SEC: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    /// Every restart happens as soon as it is decided.
    fn at_once(intensity: &mut Intensity<u32>, now: Instant, key: u32) -> bool {
        let allowed = intensity.allow(now, key, |_| true);
        intensity.performed(&key);
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
        // Exactly 10 s after the first, it is still within the period (as in OTP).
        assert!(!at_once(&mut intensity, start + 10 * SEC, 3), "a third restart within 10 s");
        assert!(at_once(&mut intensity, start + 10 * SEC + MS, 3), "the first restart has left the window");
        assert!(!at_once(&mut intensity, start + 11 * SEC, 4));
    }

    #[test]
    fn a_restart_counts_from_its_decision_though_it_happens_later() {
        let mut intensity = Intensity::new(IntensityLimit { max: 1, period: 10 * SEC });
        let start = Instant::now();
        assert!(intensity.allow(start, 1, |_| true));
        intensity.performed(&1);
        assert!(!intensity.allow(start + 9 * SEC, 2, |_| true));
        assert!(!intensity.allow(start + 10 * SEC, 3, |_| true), "decided 10 s ago: still within the period");
        assert!(intensity.allow(start + 10 * SEC + MS, 4, |_| true), "decided over 10 s ago: out of the period");
    }

    #[test]
    fn cancelled_restarts_do_not_pile_up_under_the_limit() {
        let mut intensity = Intensity::new(IntensityLimit { max: u32::MAX, period: 10 * SEC });
        let start = Instant::now();
        for key in 0..10_000 {
            // Every earlier one was cancelled.
            assert!(intensity.allow(start, key, |_| false));
        }
        assert!(intensity.pending.len() <= 16, "{} kept", intensity.pending.len());
    }

    /// A limit too high to reach (`u32::MAX`) kept a time per restart
    /// within the period: a crash loop of the group's units grew by 16
    /// bytes a restart.
    #[test]
    fn a_limit_too_high_to_reach_keeps_bounded_memory() {
        let mut intensity = Intensity::new(IntensityLimit { max: u32::MAX, period: 60 * SEC });
        let start = Instant::now();
        for key in 0..400_000u32 {
            assert!(at_once(&mut intensity, start + Duration::from_micros(u64::from(key) * 500), key));
        }
        assert!(intensity.performed.steps_kept() <= 1026, "{} steps kept", intensity.performed.steps_kept());
        assert!(intensity.pending.is_empty());
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
        intensity.performed(&2);
        // Performed: it counts even though nothing is to come.
        assert!(!intensity.allow(start + 2 * SEC, 3, |_| false));
    }
}
