//! A group owner's deadlines (restart delays, grace periods), on one timer.
//!
//! An entry that no longer applies (its unit was stopped or restarted
//! meanwhile) is not removed: its owner recognises it when it fires.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use tokio::time::{Instant, Sleep};

/// Names an item of [`Timers`], to remove it before it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKey(Instant, u64);

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
    /// Adds `item` for `at`; the key removes it again.
    pub(crate) fn insert(&mut self, at: Instant, item: T) -> TimerKey {
        self.inserted += 1;
        self.queue.insert((at, self.inserted), item);
        TimerKey(at, self.inserted)
    }

    /// Removes an item that is no longer needed, if it has not fired.
    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<T> {
        self.queue.remove(&(key.0, key.1))
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Returns the earliest item once its deadline has passed; `Pending`
    /// until then, with the task woken at that deadline, and without a
    /// wake while there is no item (whoever adds one outside a poll arms
    /// the sleep, see [`arm_for`](Self::arm_for)).
    ///
    /// The sleep is moved only to an earlier deadline: when the earliest
    /// item goes (a unit stopped before its grace period ran out, the usual
    /// case, many at a time in a shutdown), the sleep armed for it is left
    /// to wake the owner early once, rather than moved in the runtime's
    /// timer for every removal; nor is the clock read then. A new earliest
    /// item already due (a restart with no delay) comes out at once, not at
    /// the runtime timer's next tick.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<T> {
        loop {
            let Some(&(at, _)) = self.queue.keys().next() else { return Poll::Pending };
            let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            if self.armed_for.is_none_or(|armed| armed > at) {
                if at <= Instant::now()
                    && let Some(entry) = self.queue.first_entry()
                {
                    return Poll::Ready(entry.remove());
                }
                sleep.as_mut().reset(at);
                self.armed_for = Some(at);
            }
            ready!(sleep.as_mut().poll(cx));
            // Fired: armed for nothing until the next poll arms it again.
            self.armed_for = None;
            if let Some(entry) = self.queue.first_entry()
                && entry.key().0 <= Instant::now()
            {
                return Poll::Ready(entry.remove());
            }
        }
    }

    /// Arms the sleep for the earliest deadline, if it is armed for none or
    /// a later one, to wake `owner`: the task that polls these timers. A
    /// turn taken on another task arms it so, rather than waking the owner's
    /// task only for that (the usual case: a unit asked to stop gets a grace
    /// period's timer, and its run ends long before). `false` when only a
    /// poll of the owner's can take the item: it is due already.
    pub(crate) fn arm_for(&mut self, owner: &Waker) -> bool {
        let Some(&(at, _)) = self.queue.keys().next() else { return true };
        if self.armed_for.is_some_and(|armed| armed <= at) {
            return true;
        }
        if at <= Instant::now() {
            return false;
        }
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        sleep.as_mut().reset(at);
        // Polled with the owner's waker, the sleep wakes the owner. Out of
        // budget, it wakes the owner now, whose poll registers it.
        if sleep.as_mut().poll(&mut Context::from_waker(owner)).is_ready() {
            self.armed_for = None;
            return false;
        }
        self.armed_for = Some(at);
        true
    }

    /// Waits for the earliest item, as [`poll_expired`](Self::poll_expired)
    /// finds it.
    #[cfg(test)]
    async fn expired(&mut self) -> T {
        std::future::poll_fn(|cx| self.poll_expired(cx)).await
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
        let key = timers.insert(start + Duration::from_secs(5), "removed");
        assert_eq!(timers.remove(key), Some("removed"));
        assert_eq!(timers.remove(key), None);
        assert!(tokio::time::timeout(Duration::from_secs(60), timers.expired()).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn removing_the_earliest_neither_loses_nor_hastens_the_next() {
        let mut timers = Timers::default();
        let start = Instant::now();
        let first = timers.insert(start + Duration::from_secs(1), "removed");
        timers.insert(start + Duration::from_secs(3), "kept");
        // Armed for the first deadline, then that item goes.
        assert!(tokio::time::timeout(Duration::from_millis(500), timers.expired()).await.is_err());
        assert_eq!(timers.remove(first), Some("removed"));
        assert_eq!(timers.expired().await, "kept");
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_removes_its_own_item_once() {
        let mut timers = Timers::default();
        let start = Instant::now();
        let old = timers.insert(start + Duration::from_secs(1), "old");
        assert_eq!(timers.remove(old), Some("old"));
        timers.insert(start + Duration::from_secs(1), "new");
        assert_eq!(timers.remove(old), None);
        assert_eq!(timers.expired().await, "new");
        assert!(timers.is_empty());
    }

    #[tokio::test]
    async fn an_item_due_already_comes_out_without_waiting_for_the_timer() {
        use futures_util::FutureExt;
        let mut timers = Timers::default();
        timers.insert(Instant::now(), "due");
        assert_eq!(timers.expired().now_or_never(), Some("due"));
        // Also with the sleep armed for a later item.
        timers.insert(Instant::now() + Duration::from_secs(60), "later");
        assert_eq!(timers.expired().now_or_never(), None);
        timers.insert(Instant::now(), "due too");
        assert_eq!(timers.expired().now_or_never(), Some("due too"));
    }

    /// Counts the wakes of the task it stands for.
    #[derive(Default)]
    struct Owner(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Owner {
        fn wake(self: std::sync::Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    impl Owner {
        fn wakes(&self) -> usize {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_item_added_outside_a_poll_is_armed_to_wake_the_owner() {
        let owner = std::sync::Arc::new(Owner::default());
        let waker = Waker::from(owner.clone());
        let mut timers = Timers::default();
        let start = Instant::now();
        assert!(timers.arm_for(&waker), "nothing to wait for");
        timers.insert(start + Duration::from_secs(10), "armed");
        assert!(timers.arm_for(&waker));
        timers.insert(start + Duration::from_secs(20), "later");
        assert!(timers.arm_for(&waker), "the sleep fires first anyway");
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert_eq!(owner.wakes(), 0);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(owner.wakes(), 1, "the owner is woken at the deadline, though it never polled");
        assert_eq!(timers.expired().await, "armed");
        // Armed for "later"; an earlier item moves the sleep to its deadline.
        assert!(timers.arm_for(&waker));
        timers.insert(Instant::now() + Duration::from_secs(5), "earlier");
        assert!(timers.arm_for(&waker));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(owner.wakes(), 2);
        assert_eq!(timers.expired().await, "earlier");
        // Due already: only the owner's poll takes it out.
        timers.insert(Instant::now(), "due");
        assert!(!timers.arm_for(&waker));
        assert_eq!(timers.expired().await, "due");
        assert_eq!(timers.expired().await, "later");
        assert_eq!(start.elapsed(), Duration::from_secs(20));
    }

    #[tokio::test(start_paused = true)]
    async fn an_item_due_already_comes_out_at_once() {
        let mut timers = Timers::default();
        let start = Instant::now();
        timers.insert(start + Duration::from_secs(10), "later");
        assert!(tokio::time::timeout(Duration::from_millis(100), timers.expired()).await.is_err());
        timers.insert(Instant::now(), "now");
        assert_eq!(timers.expired().await, "now");
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }
}
