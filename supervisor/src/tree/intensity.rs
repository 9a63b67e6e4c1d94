//! A group's restart intensity: more than `max` restarts among its units
//! within `period`, and the group gives up. Pure: the caller passes `now`.

use std::collections::VecDeque;

use tokio::time::Instant;

use crate::spec::group::IntensityLimit;

/// The restarts a group has performed within its period.
#[derive(Debug)]
pub(crate) struct Intensity {
    limit: IntensityLimit,
    recent: VecDeque<Instant>,
}

impl Intensity {
    pub(crate) fn new(limit: IntensityLimit) -> Self {
        Intensity { limit, recent: VecDeque::new() }
    }

    /// Records a restart at `now`; `false` if it is one too many: more than
    /// `max` within the period.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        while self.recent.front().is_some_and(|&at| now.duration_since(at) >= self.limit.period) {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.limit.max as usize {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn allows_max_restarts_within_the_period_then_refuses() {
        let mut intensity = Intensity::new(IntensityLimit { max: 3, period: 10 * SEC });
        let start = Instant::now();
        assert!(intensity.allow(start));
        assert!(intensity.allow(start + SEC));
        assert!(intensity.allow(start + 2 * SEC));
        assert!(!intensity.allow(start + 3 * SEC), "a fourth restart within 10 s");
    }

    #[test]
    fn restarts_older_than_the_period_are_forgotten() {
        let mut intensity = Intensity::new(IntensityLimit { max: 2, period: 10 * SEC });
        let start = Instant::now();
        assert!(intensity.allow(start));
        assert!(intensity.allow(start + 5 * SEC));
        assert!(intensity.allow(start + 10 * SEC), "the first restart has left the window");
        assert!(!intensity.allow(start + 11 * SEC));
    }
}
