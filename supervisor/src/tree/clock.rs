//! The supervisor's wall clock, which follows the runtime's clock, and
//! deadlines that a duration of the user's cannot overflow.

use std::num::NonZeroU64;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// How far ahead a deadline that would not fit in an [`Instant`] is put
/// instead: never, for any practical purpose.
pub(crate) const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `duration` after `instant`, or as far as an [`Instant`] goes: a delay or
/// a timeout of `Duration::MAX` means never, and must not panic.
pub(crate) fn later_by(instant: Instant, duration: Duration) -> Instant {
    deadline(instant, duration).or_else(|| instant.checked_add(FAR_FUTURE)).unwrap_or(instant)
}

/// `duration` after `instant`, if tokio's timer can wait for it; `None`
/// (never) past what the clock holds. The timer rounds a deadline up to
/// its next millisecond with an addition that panics within a millisecond
/// of the clock's end: such a deadline is never too.
pub(crate) fn deadline(instant: Instant, duration: Duration) -> Option<Instant> {
    instant.checked_add(duration).filter(|at| at.checked_add(Duration::from_millis(1)).is_some())
}

/// Waits `interval` from `start` (at once when that time has passed; for
/// ever past what the clock holds, where tokio's own sleep stops at some
/// 30 years, to which a paused clock jumps).
pub(crate) async fn sleep_from(start: Instant, interval: Duration) {
    match deadline(start, interval) {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Wall-clock time that follows the runtime's clock from the moment the
/// supervisor was built, so that timestamps move with
/// `tokio::time::pause()` and `advance()` in tests, and never backwards.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    wall: SystemTime,
    mono: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock { wall: SystemTime::now(), mono: Instant::now() }
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.at(Instant::now())
    }

    /// `at`, in a word: the time since the supervisor was built.
    pub(crate) fn stamp(&self, at: Instant) -> Stamp {
        let since = at.saturating_duration_since(self.mono).as_nanos();
        Stamp(NonZeroU64::MIN.saturating_add(u64::try_from(since).unwrap_or(u64::MAX)))
    }

    /// The instant of `stamp`.
    pub(crate) fn instant(&self, stamp: Stamp) -> Instant {
        later_by(self.mono, stamp.since_start())
    }

    /// The wall-clock time of `stamp`: [`at`](Self::at) of its instant,
    /// without making the instant (a status list reads two per unit).
    pub(crate) fn wall_time(&self, stamp: Stamp) -> SystemTime {
        self.wall + stamp.since_start()
    }

    /// How long before `now` `stamp` was, or zero.
    pub(crate) fn elapsed_since(&self, stamp: Stamp, now: Instant) -> Duration {
        now.saturating_duration_since(self.mono).saturating_sub(stamp.since_start())
    }

    /// The wall-clock time of `instant`, read from the runtime's clock.
    pub(crate) fn at(&self, instant: Instant) -> SystemTime {
        self.wall + instant.saturating_duration_since(self.mono)
    }
}

/// An instant after the supervisor was built, in 8 bytes where an
/// `Option<Instant>` takes 16: every unit keeps the start of its last run.
/// Exact to the nanosecond for 584 years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp(NonZeroU64);

impl Stamp {
    /// How long after the clock's start it is.
    fn since_start(self) -> Duration {
        Duration::from_nanos(self.0.get() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_past_what_an_instant_holds_is_far_off_not_a_panic() {
        let now = Instant::now();
        assert_eq!(later_by(now, Duration::from_secs(5)), now + Duration::from_secs(5));
        assert!(later_by(now, Duration::MAX) >= now + FAR_FUTURE);
    }

    #[tokio::test(start_paused = true)]
    async fn wall_time_moves_with_the_runtime_clock() {
        let clock = Clock::new();
        let then = clock.now();
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now().duration_since(then).expect("later"), Duration::from_secs(90));
        assert_eq!(clock.at(Instant::now() - Duration::from_secs(30)), then + Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stamp_gives_back_its_instant() {
        let clock = Clock::new();
        let built = Instant::now();
        assert_eq!(clock.instant(clock.stamp(built)), built);
        tokio::time::advance(Duration::from_nanos(1_234_567_891)).await;
        let later = Instant::now();
        assert_eq!(clock.instant(clock.stamp(later)), later);
        assert_ne!(clock.stamp(later), clock.stamp(built));
        // Before the clock was made: as early as it goes, not a panic.
        assert_eq!(clock.instant(clock.stamp(built - Duration::from_secs(1))), built);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stamp_gives_its_wall_time_and_age_as_its_instant_would() {
        let clock = Clock::new();
        tokio::time::advance(Duration::from_millis(1500)).await;
        let stamp = clock.stamp(Instant::now());
        tokio::time::advance(Duration::from_secs(42)).await;
        let now = Instant::now();
        assert_eq!(clock.wall_time(stamp), clock.at(clock.instant(stamp)));
        assert_eq!(clock.elapsed_since(stamp, now), Duration::from_secs(42));
        assert_eq!(clock.elapsed_since(stamp, clock.instant(stamp) - Duration::from_secs(1)), Duration::ZERO);
    }
}
