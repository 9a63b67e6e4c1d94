//! The watchdog's clock: when a run that must show signs of life (a task's
//! `ctx.heartbeat()`, a process's `WATCHDOG=1`) is due for its next one, and
//! whether it is overdue. Pure arithmetic on [`tokio::time::Instant`], so
//! that a paused clock drives it in tests; the caller sleeps until
//! [`Watchdog::deadline`] and then asks [`Watchdog::is_hung`].

use std::time::Duration;

use tokio::time::Instant;

use crate::tree::clock::{self, later_by};

/// A wake this much after the deadline says that the supervisor itself
/// was not running when the deadline came (stopped with `SIGSTOP`, its
/// machine suspended, its threads starved): the signs of life the run gave
/// meanwhile may not be heard yet.
const LATE: Duration = Duration::from_millis(50);
/// How long a late wake waits for them before it judges.
const CATCH_UP: Duration = Duration::from_millis(100);

/// The heartbeat deadline of one run: a heartbeat is due within `period` of
/// the start and of each heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Watchdog {
    period: Duration,
    /// `None`: never, a period past what the clock holds. A deadline put
    /// some way short of that would be reached, at once on a paused clock.
    deadline: Option<Instant>,
    /// The deadline was moved on for a late wake, and no heartbeat came
    /// since.
    caught_up: bool,
}

impl Watchdog {
    /// A watchdog started now: the first heartbeat is due within `period`.
    pub(crate) fn new(period: Duration) -> Self {
        Self::started_at(period, Instant::now())
    }

    /// A watchdog started at `start`.
    pub(crate) fn started_at(period: Duration, start: Instant) -> Self {
        Watchdog { period, deadline: clock::deadline(start, period), caught_up: false }
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
        let due = clock::deadline(now, self.period);
        // Never is later than any deadline, and stays.
        if self.deadline.is_some_and(|deadline| due.is_none_or(|due| due > deadline)) {
            self.deadline = due;
            self.caught_up = false;
        }
    }

    /// When the run is overdue unless a heartbeat comes first; `None`:
    /// never.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the deadline has passed at `now`: reached counts, so that a
    /// caller woken by a timer at the deadline itself sees the run overdue.
    #[cfg(test)]
    pub(crate) fn is_overdue(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|deadline| now >= deadline)
    }

    /// Whether the run is hung at `now`, woken for the deadline with every
    /// sign of life heard so far recorded. A wake that came late moves the
    /// deadline a moment on instead, once until the next heartbeat: what
    /// the run did while the supervisor was not running may still be on
    /// its way (a heartbeat woken with this wake, a `WATCHDOG=1` waiting in
    /// the socket). Without it, a supervisor stopped and continued judged
    /// every watched run hung at once.
    pub(crate) fn is_hung(&mut self, now: Instant) -> bool {
        // Reached counts, as in `is_overdue`.
        let Some(deadline) = self.deadline.filter(|&deadline| now >= deadline) else {
            return false;
        };
        if !self.caught_up && now.saturating_duration_since(deadline) > LATE {
            self.caught_up = true;
            self.deadline = Some(later_by(now, CATCH_UP));
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn a_run_without_heartbeats_is_overdue_at_its_period() {
        let start = Instant::now();
        let watchdog = Watchdog::new(PERIOD);
        assert_eq!(watchdog.period(), PERIOD);
        assert_eq!(watchdog.deadline(), Some(start + PERIOD));
        assert!(!watchdog.is_overdue(Instant::now()));
        tokio::time::sleep(PERIOD - Duration::from_millis(1)).await;
        assert!(!watchdog.is_overdue(Instant::now()));
        tokio::time::sleep_until(watchdog.deadline().expect("a deadline")).await;
        assert!(watchdog.is_overdue(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn each_heartbeat_in_time_moves_the_deadline() {
        let mut watchdog = Watchdog::new(PERIOD);
        for _ in 0..10 {
            tokio::time::sleep(PERIOD - Duration::from_secs(1)).await;
            assert!(!watchdog.is_overdue(Instant::now()));
            watchdog.beat(Instant::now());
            assert_eq!(watchdog.deadline(), Some(Instant::now() + PERIOD));
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
        assert_eq!(watchdog.deadline(), Some(start + Duration::from_secs(50)));
        assert!(!watchdog.is_overdue(start + Duration::from_secs(49)));
        assert!(watchdog.is_overdue(start + Duration::from_secs(50)));
    }

    #[test]
    fn a_late_wake_waits_a_moment_once_before_it_judges() {
        let start = Instant::now();
        let mut watchdog = Watchdog::started_at(PERIOD, start);
        // Woken on time at the deadline: hung.
        assert!(watchdog.clone().is_hung(start + PERIOD));
        // Woken 3 s late (the supervisor was stopped): a moment more.
        let woken = start + PERIOD + Duration::from_secs(3);
        assert!(!watchdog.is_hung(woken));
        assert_eq!(watchdog.deadline(), Some(woken + CATCH_UP));
        // Nothing came: hung then, late or not.
        assert!(watchdog.is_hung(woken + CATCH_UP + Duration::from_secs(1)));
        // A heartbeat heard in the moment: a whole period again, and the
        // next late wake waits a moment too.
        let mut beaten = Watchdog::started_at(PERIOD, start);
        assert!(!beaten.is_hung(woken));
        beaten.beat(woken + Duration::from_millis(10));
        assert!(!beaten.is_hung(woken + CATCH_UP));
        let late_again = woken + Duration::from_millis(10) + PERIOD + Duration::from_secs(1);
        assert!(!beaten.is_hung(late_again));
        assert!(beaten.is_hung(late_again + CATCH_UP));
    }

    #[test]
    fn extreme_periods_neither_panic_nor_expire_early() {
        let start = Instant::now();
        let mut never = Watchdog::started_at(Duration::MAX, start);
        assert_eq!(never.deadline(), None);
        assert!(!never.is_overdue(start + Duration::from_secs(86_400 * 365)));
        never.beat(start + Duration::from_secs(1));
        assert_eq!(never.deadline(), None);
        assert!(!never.is_hung(start + Duration::from_secs(86_400 * 365)));
        // A heartbeat after which the next is due past the clock's end: never.
        let mut then_never = Watchdog { period: Duration::MAX, ..Watchdog::started_at(PERIOD, start) };
        then_never.beat(start + Duration::from_secs(1));
        assert_eq!(then_never.deadline(), None);
        // A zero period is overdue at once: a build check refuses it first.
        let zero = Watchdog::started_at(Duration::ZERO, start);
        assert!(zero.is_overdue(start));
    }
}
