//! The watchdog's clock: when a run that must show signs of life (a task's
//! `ctx.heartbeat()`, a process's `WATCHDOG=1`) is due for its next one, and
//! whether it is overdue. Pure arithmetic on [`tokio::time::Instant`], so
//! that a paused clock drives it in tests; the caller sleeps until
//! [`Watchdog::deadline`] and then asks [`Watchdog::is_overdue`].

use std::time::Duration;

use tokio::time::Instant;

use crate::tree::clock::later_by;

/// The heartbeat deadline of one run: a heartbeat is due within `period` of
/// the start and of each heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Watchdog {
    period: Duration,
    deadline: Instant,
}

impl Watchdog {
    /// A watchdog started now: the first heartbeat is due within `period`.
    pub(crate) fn new(period: Duration) -> Self {
        Self::started_at(period, Instant::now())
    }

    /// A watchdog started at `start`.
    pub(crate) fn started_at(period: Duration, start: Instant) -> Self {
        Watchdog { period, deadline: later_by(start, period) }
    }

    /// The period within which each heartbeat is due.
    #[cfg(test)]
    pub(crate) fn period(&self) -> Duration {
        self.period
    }

    /// Records a heartbeat at `now`: the next is due within the period.
    /// A heartbeat never moves the deadline back (one reported late, with
    /// an earlier `now` than one already recorded, changes nothing).
    pub(crate) fn beat(&mut self, now: Instant) {
        self.deadline = self.deadline.max(later_by(now, self.period));
    }

    /// When the run is overdue unless a heartbeat comes first.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed at `now`: reached counts, so that a
    /// caller woken by a timer at the deadline itself sees the run overdue.
    pub(crate) fn is_overdue(&self, now: Instant) -> bool {
        now >= self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::clock::FAR_FUTURE;

    const PERIOD: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn a_run_without_heartbeats_is_overdue_at_its_period() {
        let start = Instant::now();
        let watchdog = Watchdog::new(PERIOD);
        assert_eq!(watchdog.period(), PERIOD);
        assert_eq!(watchdog.deadline(), start + PERIOD);
        assert!(!watchdog.is_overdue(Instant::now()));
        tokio::time::sleep(PERIOD - Duration::from_millis(1)).await;
        assert!(!watchdog.is_overdue(Instant::now()));
        tokio::time::sleep_until(watchdog.deadline()).await;
        assert!(watchdog.is_overdue(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn each_heartbeat_in_time_moves_the_deadline() {
        let mut watchdog = Watchdog::new(PERIOD);
        for _ in 0..10 {
            tokio::time::sleep(PERIOD - Duration::from_secs(1)).await;
            assert!(!watchdog.is_overdue(Instant::now()));
            watchdog.beat(Instant::now());
            assert_eq!(watchdog.deadline(), Instant::now() + PERIOD);
        }
        tokio::time::sleep(PERIOD).await;
        assert!(watchdog.is_overdue(Instant::now()));
        // A heartbeat after the deadline starts a new period.
        watchdog.beat(Instant::now());
        assert!(!watchdog.is_overdue(Instant::now()));
    }

    #[test]
    fn a_late_reported_heartbeat_never_moves_the_deadline_back() {
        let start = Instant::now();
        let mut watchdog = Watchdog::started_at(PERIOD, start);
        watchdog.beat(start + Duration::from_secs(20));
        watchdog.beat(start + Duration::from_secs(10));
        assert_eq!(watchdog.deadline(), start + Duration::from_secs(50));
        assert!(!watchdog.is_overdue(start + Duration::from_secs(49)));
        assert!(watchdog.is_overdue(start + Duration::from_secs(50)));
    }

    #[test]
    fn extreme_periods_neither_panic_nor_expire_early() {
        let start = Instant::now();
        let mut never = Watchdog::started_at(Duration::MAX, start);
        assert!(never.deadline() > start + FAR_FUTURE / 2);
        assert!(!never.is_overdue(start + Duration::from_secs(86_400 * 365)));
        never.beat(start + Duration::from_secs(1));
        assert!(!never.is_overdue(start + Duration::from_secs(86_400 * 365)));
        // A zero period is overdue at once: a build check refuses it first.
        let zero = Watchdog::started_at(Duration::ZERO, start);
        assert!(zero.is_overdue(start));
    }
}
