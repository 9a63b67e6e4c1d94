//! The verdict of a probe from its attempts, by Kubernetes' rules: the
//! state changes only after `success_threshold` successes in a row (to
//! passing) or `failure_threshold` failures in a row (to failing).

/// The state of one probe over a run, fed one attempt at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    passing: bool,
    success_threshold: u32,
    failure_threshold: u32,
    /// The outcome of the last attempt and how many attempts in a row had it.
    streak: Option<(bool, u32)>,
}

impl Verdict {
    /// A readiness verdict: not ready until `success_threshold` successes in
    /// a row, then not ready again after `failure_threshold` failures in a
    /// row. Thresholds of 0 count as 1.
    pub(crate) fn readiness(success_threshold: u32, failure_threshold: u32) -> Self {
        Verdict::starting(false, success_threshold, failure_threshold)
    }

    /// A liveness verdict: live until `failure_threshold` failures in a row;
    /// one success makes it live again (Kubernetes' success threshold of a
    /// liveness probe is 1).
    pub(crate) fn liveness(failure_threshold: u32) -> Self {
        Verdict::starting(true, 1, failure_threshold)
    }

    fn starting(passing: bool, success_threshold: u32, failure_threshold: u32) -> Self {
        Verdict {
            passing,
            success_threshold: success_threshold.max(1),
            failure_threshold: failure_threshold.max(1),
            streak: None,
        }
    }

    /// Whether the probe passes (ready, or live) now.
    #[cfg(test)]
    pub(crate) fn passing(&self) -> bool {
        self.passing
    }

    /// While not passing, after a success: how many successes in a row it
    /// has, and how many it needs.
    pub(crate) fn successes_short(&self) -> Option<(u32, u32)> {
        match self.streak {
            Some((true, run)) if !self.passing => Some((run, self.success_threshold)),
            _ => None,
        }
    }

    /// Counts one attempt; returns the new state when it changed.
    pub(crate) fn record(&mut self, success: bool) -> Option<bool> {
        let run = match self.streak {
            Some((last, run)) if last == success => run.saturating_add(1),
            _ => 1,
        };
        self.streak = Some((success, run));
        let threshold = if success { self.success_threshold } else { self.failure_threshold };
        if success != self.passing && run >= threshold {
            self.passing = success;
            Some(success)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transitions of `verdict` over `attempts` (`+` a success, `-` a
    /// failure): the state after each attempt that changed it, else `.`.
    fn run(mut verdict: Verdict, attempts: &str) -> String {
        attempts
            .chars()
            .map(|attempt| match verdict.record(attempt == '+') {
                Some(true) => 'R',
                Some(false) => 'N',
                None => '.',
            })
            .collect()
    }

    #[test]
    fn readiness_starts_not_ready_and_needs_one_success_by_default() {
        let verdict = Verdict::readiness(1, 3);
        assert!(!verdict.passing());
        assert_eq!(run(verdict, "--+"), "..R");
    }

    #[test]
    fn readiness_needs_success_threshold_successes_in_a_row() {
        assert_eq!(run(Verdict::readiness(3, 3), "++-+++"), ".....R");
        assert_eq!(run(Verdict::readiness(2, 1), "+-++"), "...R");
    }

    #[test]
    fn ready_becomes_not_ready_after_failure_threshold_failures_in_a_row() {
        assert_eq!(run(Verdict::readiness(1, 3), "+--+---"), "R.....N");
        assert_eq!(run(Verdict::readiness(1, 1), "+-+-"), "RNRN");
    }

    #[test]
    fn a_state_is_reported_once_however_long_it_lasts() {
        assert_eq!(run(Verdict::readiness(1, 2), "++++----++"), "R....N..R.");
    }

    #[test]
    fn liveness_starts_live_and_fails_after_failure_threshold_failures_in_a_row() {
        let verdict = Verdict::liveness(3);
        assert!(verdict.passing());
        assert_eq!(run(verdict, "--+---"), ".....N");
        assert_eq!(run(Verdict::liveness(1), "+-+"), ".NR");
    }

    #[test]
    fn zero_thresholds_count_as_one_and_long_streaks_do_not_overflow() {
        assert_eq!(run(Verdict::readiness(0, 0), "+-"), "RN");
        let mut verdict = Verdict::liveness(u32::MAX);
        verdict.streak = Some((false, u32::MAX - 1));
        assert_eq!(verdict.record(false), Some(false));
        assert_eq!(verdict.record(false), None);
        assert_eq!(verdict.streak, Some((false, u32::MAX)));
    }
}
