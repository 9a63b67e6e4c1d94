//! A group owner's deadlines (restart delays, grace periods), on one timer.
//!
//! An entry that no longer applies (its unit was stopped or restarted
//! meanwhile) is not removed: its owner recognises it when it fires.

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use tokio::time::{Instant, Sleep};

/// Names an item of [`Timers`], to remove it before it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKey {
    at: Instant,
    inserted: u64,
    /// Its place in the queue, counted from the first item ever queued;
    /// `None` for an item of the tree.
    queued: Option<u64>,
}

/// Deadlines and what to do at each, earliest first; ties in insertion
/// order.
///
/// Most deadlines come in order: a grace period or a restart delay is
/// mostly the same span from a clock that only moves forward. Those go to
/// the back of a queue, which takes them and gives them back without a
/// search or an allocation (a tree did both for every stop, 2 % of the
/// instructions of a unit's removal); a deadline earlier than the queue's
/// last goes to a tree.
pub(crate) struct Timers<T> {
    /// In order of deadline, then insertion; an item removed before it was
    /// due leaves a hole, and none is left at the front.
    queue: VecDeque<Queued<T>>,
    /// The place of the queue's front item, counted as [`TimerKey`] does.
    queue_front: u64,
    /// The queue's holes: a long deadline in front (a unit that takes
    /// an hour to stop) would otherwise keep one for every stop behind it.
    holes: usize,
    tree: BTreeMap<(Instant, u64), T>,
    inserted: u64,
    /// Set for the earliest deadline; made on first use.
    sleep: Option<Pin<Box<Sleep>>>,
    armed_for: Option<Instant>,
}

/// Where an item of [`Timers`] is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    InQueue,
    InTree,
}

struct Queued<T> {
    at: Instant,
    inserted: u64,
    item: Option<T>,
}

/// A queue that held more than this many items at once is given its
/// memory back once it is empty, so that a burst of stops does not keep
/// it; a queue with more holes than this, and more holes than items, has
/// its items moved to the tree.
const QUEUE_KEPT: usize = 64;

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            queue: VecDeque::new(),
            queue_front: 0,
            holes: 0,
            tree: BTreeMap::new(),
            inserted: 0,
            sleep: None,
            armed_for: None,
        }
    }
}

impl<T> Timers<T> {
    /// Adds `item` for `at`; the key removes it again.
    pub(crate) fn insert(&mut self, at: Instant, item: T) -> TimerKey {
        self.inserted += 1;
        let inserted = self.inserted;
        if self.queue.back().is_none_or(|last| last.at <= at) {
            let queued = self.queue_front + self.queue.len() as u64;
            self.queue.push_back(Queued { at, inserted, item: Some(item) });
            return TimerKey { at, inserted, queued: Some(queued) };
        }
        self.tree.insert((at, inserted), item);
        TimerKey { at, inserted, queued: None }
    }

    /// Removes an item that is no longer needed, if it has not fired.
    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<T> {
        if let Some(item) = key.queued.and_then(|queued| self.take_queued(queued)) {
            return Some(item);
        }
        // Never queued, or moved to the tree with the rest of a queue of holes.
        self.tree.remove(&(key.at, key.inserted))
    }

    /// Takes the item at place `queued` out of the queue, if it is there.
    fn take_queued(&mut self, queued: u64) -> Option<T> {
        let index = usize::try_from(queued.checked_sub(self.queue_front)?).ok()?;
        let item = self.queue.get_mut(index)?.item.take()?;
        self.holes += 1;
        self.drop_holes_in_front();
        if self.holes > QUEUE_KEPT && self.holes * 2 > self.queue.len() {
            self.move_queue_to_tree();
        }
        Some(item)
    }

    /// Keeps the queue's front an item, so that it is the queue's earliest.
    fn drop_holes_in_front(&mut self) {
        while self.queue.front().is_some_and(|front| front.item.is_none()) {
            self.queue.pop_front();
            self.queue_front += 1;
            self.holes -= 1;
        }
        if self.queue.is_empty() && self.queue.capacity() > QUEUE_KEPT {
            self.queue = VecDeque::new();
        }
    }

    /// Moves the queue's items to the tree, where their keys still find
    /// them, and leaves the queue empty: its places are not used again.
    fn move_queue_to_tree(&mut self) {
        let queue = std::mem::take(&mut self.queue);
        self.queue_front += queue.len() as u64;
        self.holes = 0;
        let items = queue.into_iter().filter_map(|queued| Some(((queued.at, queued.inserted), queued.item?)));
        self.tree.extend(items);
    }

    /// The earliest deadline, and which holds its item.
    fn earliest(&self) -> Option<(Instant, Held)> {
        let queued = self.queue.front().map(|front| (front.at, front.inserted));
        let tree = self.tree.keys().next().copied();
        match (queued, tree) {
            (Some(queued), Some(tree)) if tree < queued => Some((tree.0, Held::InTree)),
            (Some(queued), _) => Some((queued.0, Held::InQueue)),
            (None, tree) => tree.map(|(at, _)| (at, Held::InTree)),
        }
    }

    /// Takes the earliest item out, if its deadline is `due` or earlier.
    fn take_earliest(&mut self, due: Instant) -> Option<T> {
        let (at, held) = self.earliest()?;
        if at > due {
            return None;
        }
        if held == Held::InTree {
            return self.tree.first_entry().map(|entry| entry.remove());
        }
        let item = self.queue.pop_front().and_then(|front| front.item);
        self.queue_front += 1;
        self.drop_holes_in_front();
        item
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.tree.is_empty()
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
            let Some((at, _)) = self.earliest() else { return Poll::Pending };
            if self.armed_for.is_none_or(|armed| armed > at) {
                if let Some(item) = self.take_earliest(Instant::now()) {
                    return Poll::Ready(item);
                }
                self.sleep_until(at);
                self.armed_for = Some(at);
            }
            let Some(sleep) = self.sleep.as_mut() else { return Poll::Pending };
            ready!(sleep.as_mut().poll(cx));
            // Fired: armed for nothing until the next poll arms it again.
            self.armed_for = None;
            if let Some(item) = self.take_earliest(Instant::now()) {
                return Poll::Ready(item);
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
        let Some((at, _)) = self.earliest() else { return true };
        // A sleep left armed for an item that went has fired by now, if
        // its time has come, and wakes nobody again: armed for nothing.
        let fired = self.sleep.as_ref().is_some_and(|sleep| sleep.is_elapsed());
        if !fired && self.armed_for.is_some_and(|armed| armed <= at) {
            return true;
        }
        if at <= Instant::now() {
            return false;
        }
        let sleep = self.sleep_until(at);
        // Polled with the owner's waker, the sleep wakes the owner. Out of
        // budget, it wakes the owner now, whose poll registers it.
        if sleep.poll(&mut Context::from_waker(owner)).is_ready() {
            self.armed_for = None;
            return false;
        }
        self.armed_for = Some(at);
        true
    }

    /// The sleep, set for `at`; made on first use.
    fn sleep_until(&mut self, at: Instant) -> Pin<&mut Sleep> {
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        sleep.as_mut().reset(at);
        sleep.as_mut()
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

    #[tokio::test(start_paused = true)]
    async fn deadlines_out_of_order_come_out_in_order_ties_in_insertion_order() {
        let mut timers = Timers::default();
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        // In order (the queue), then earlier ones (the tree), then ties of both.
        for (secs, item) in [(2, "b"), (4, "d"), (1, "a"), (3, "c"), (4, "d2"), (2, "b2"), (5, "e")] {
            timers.insert(at(secs), item);
        }
        let mut out = Vec::new();
        while !timers.is_empty() {
            out.push((timers.expired().await, start.elapsed().as_secs()));
        }
        let expected = [("a", 1), ("b", 2), ("b2", 2), ("c", 3), ("d", 4), ("d2", 4), ("e", 5)];
        assert_eq!(out, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn items_removed_anywhere_in_the_queue_never_come_out() {
        let mut timers = Timers::default();
        let start = Instant::now();
        let keys: Vec<_> = (1..=6).map(|secs| timers.insert(start + Duration::from_secs(secs), secs)).collect();
        // A hole in the middle, then the front, then the last.
        assert_eq!(timers.remove(keys[2]), Some(3));
        assert_eq!(timers.remove(keys[0]), Some(1));
        assert_eq!(timers.remove(keys[5]), Some(6));
        assert_eq!(timers.remove(keys[2]), None, "removed once");
        assert_eq!(timers.expired().await, 2);
        assert_eq!(timers.remove(keys[1]), None, "fired already");
        assert_eq!(timers.expired().await, 4);
        assert_eq!(timers.expired().await, 5);
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        assert!(timers.is_empty());
        // Keys of items long gone name nothing among new ones.
        let new = timers.insert(Instant::now() + Duration::from_secs(1), 7);
        for key in keys {
            assert_eq!(timers.remove(key), None);
        }
        assert_eq!(timers.remove(new), Some(7));
    }

    #[test]
    fn a_burst_of_deadlines_does_not_keep_its_memory() {
        let mut timers = Timers::default();
        let start = Instant::now();
        let keys: Vec<_> =
            (0..10_000).map(|index| timers.insert(start + Duration::from_millis(index), index)).collect();
        assert!(timers.queue.capacity() >= 10_000);
        // Removed newest first, as a shutdown stops units: holes until the front goes.
        for key in keys.into_iter().rev() {
            assert!(timers.remove(key).is_some());
        }
        assert!(timers.is_empty());
        assert!(timers.queue.capacity() <= QUEUE_KEPT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_deadline_in_front_does_not_keep_the_holes_behind_it() {
        let mut timers = Timers::default();
        let start = Instant::now();
        let hour = timers.insert(start + Duration::from_secs(3600), "an hour");
        let kept: Vec<_> =
            (0..10).map(|index| timers.insert(start + Duration::from_secs(3600 + index), "kept")).collect();
        // A stop after another behind it, each done long before its deadline.
        for index in 0..100_000 {
            let key = timers.insert(start + Duration::from_secs(3610 + index), "short");
            assert_eq!(timers.remove(key), Some("short"));
            assert!(timers.queue.len() <= 2 * QUEUE_KEPT + 16, "{} places kept", timers.queue.len());
        }
        // Moved to the tree on the way, the first items are still found by their keys.
        for key in kept {
            assert_eq!(timers.remove(key), Some("kept"));
            assert_eq!(timers.remove(key), None);
        }
        assert_eq!(timers.expired().await, "an hour");
        assert_eq!(start.elapsed(), Duration::from_secs(3600));
        assert_eq!(timers.remove(hour), None);
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
