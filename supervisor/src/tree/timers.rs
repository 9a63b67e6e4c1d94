//! A group owner's deadlines (restart delays, grace periods), on one timer.
//!
//! An entry that no longer applies (its unit was stopped or restarted
//! meanwhile) is not removed: its owner recognises it when it fires.

use std::collections::BTreeMap;
use std::pin::Pin;

use tokio::time::{Instant, Sleep};

/// Deadlines and what to do at each, earliest first; ties in insertion
/// order.
pub(crate) struct Timers<T> {
    queue: BTreeMap<(Instant, u64), T>,
    inserted: u64,
    /// Set for the earliest deadline; made on first use.
    sleep: Option<Pin<Box<Sleep>>>,
    armed_for: Option<Instant>,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers { queue: BTreeMap::new(), inserted: 0, sleep: None, armed_for: None }
    }
}

impl<T> Timers<T> {
    pub(crate) fn insert(&mut self, at: Instant, item: T) {
        self.inserted += 1;
        self.queue.insert((at, self.inserted), item);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Waits for the earliest deadline and returns its item; pending for
    /// ever while there is none. Cancel-safe: an item is taken only once its
    /// deadline has passed, and never across an await.
    pub(crate) async fn expired(&mut self) -> T {
        loop {
            let Some(&(at, _)) = self.queue.keys().next() else {
                return std::future::pending().await;
            };
            if at <= Instant::now()
                && let Some(entry) = self.queue.first_entry()
            {
                return entry.remove();
            }
            let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            if self.armed_for != Some(at) {
                sleep.as_mut().reset(at);
                self.armed_for = Some(at);
            }
            sleep.as_mut().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn items_come_out_at_their_deadlines_in_order() {
        let mut timers = Timers::default();
        let start = Instant::now();
        timers.insert(start + Duration::from_secs(3), "c");
        timers.insert(start + Duration::from_secs(1), "a");
        timers.insert(start + Duration::from_secs(1), "b");
        assert_eq!(timers.expired().await, "a");
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert_eq!(timers.expired().await, "b");
        timers.insert(start + Duration::from_secs(2), "earlier");
        assert_eq!(timers.expired().await, "earlier");
        assert_eq!(timers.expired().await, "c");
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        assert!(timers.is_empty());
        assert!(tokio::time::timeout(Duration::from_secs(60), timers.expired()).await.is_err());
    }
}
