//! The supervisor's wall clock, which follows the runtime's clock.

use std::time::SystemTime;

use tokio::time::Instant;

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

    /// The wall-clock time of `instant`, read from the runtime's clock.
    pub(crate) fn at(&self, instant: Instant) -> SystemTime {
        self.wall + instant.saturating_duration_since(self.mono)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn wall_time_moves_with_the_runtime_clock() {
        let clock = Clock::new();
        let then = clock.now();
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now().duration_since(then).expect("later"), Duration::from_secs(90));
        assert_eq!(clock.at(Instant::now() - Duration::from_secs(30)), then + Duration::from_secs(60));
    }
}
