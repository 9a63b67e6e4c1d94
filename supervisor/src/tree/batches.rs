//! The units a plan stops, batch after batch: each unit of a batch asked at
//! once, the next batch once they have all stopped. Most batches hold one
//! unit (OTP's order stops one at a time), and those cost no allocation.

use std::collections::VecDeque;

/// Batches, first to stop first.
pub(crate) struct Batches<T>(VecDeque<Batch<T>>);

/// Units asked to stop together.
pub(crate) enum Batch<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> Batches<T> {
    pub(crate) fn new() -> Self {
        Batches(VecDeque::new())
    }

    /// Each of `items` a batch of its own, in this order.
    pub(crate) fn one_at_a_time(items: impl IntoIterator<Item = T>) -> Self {
        let mut batches = Self::new();
        batches.push_each(items);
        batches
    }

    /// Adds each of `items` as a batch of its own.
    pub(crate) fn push_each(&mut self, items: impl IntoIterator<Item = T>) {
        self.0.extend(items.into_iter().map(Batch::One));
    }

    /// Adds `items` as one batch.
    pub(crate) fn push_together(&mut self, items: Vec<T>) {
        self.0.push_back(Batch::Many(items));
    }

    /// The next batch to stop.
    pub(crate) fn pop(&mut self) -> Option<Batch<T>> {
        self.0.pop_front()
    }

    /// Whether an item of the batches still to come is one `is` accepts.
    pub(crate) fn any(&self, mut is: impl FnMut(&T) -> bool) -> bool {
        self.0.iter().any(|batch| match batch {
            Batch::One(item) => is(item),
            Batch::Many(items) => items.iter().any(&mut is),
        })
    }
}

impl<T> Batch<T> {
    /// How many units the batch holds.
    pub(crate) fn len(&self) -> usize {
        match self {
            Batch::One(_) => 1,
            Batch::Many(items) => items.len(),
        }
    }
}

impl<T> IntoIterator for Batch<T> {
    type Item = T;
    type IntoIter = BatchIter<T>;

    fn into_iter(self) -> BatchIter<T> {
        match self {
            Batch::One(item) => BatchIter::One(Some(item).into_iter()),
            Batch::Many(items) => BatchIter::Many(items.into_iter()),
        }
    }
}

/// The units of a batch.
pub(crate) enum BatchIter<T> {
    One(std::option::IntoIter<T>),
    Many(std::vec::IntoIter<T>),
}

impl<T> Iterator for BatchIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match self {
            BatchIter::One(one) => one.next(),
            BatchIter::Many(many) => many.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn popped(batches: &mut Batches<u32>) -> Vec<Vec<u32>> {
        std::iter::from_fn(|| {
            batches.pop().map(|batch| {
                let len = batch.len();
                let items: Vec<u32> = batch.into_iter().collect();
                assert_eq!(items.len(), len);
                items
            })
        })
        .collect()
    }

    #[test]
    fn batches_come_out_in_the_order_they_went_in() {
        let mut batches = Batches::one_at_a_time([3, 2]);
        batches.push_together(vec![1, 0]);
        batches.push_together(Vec::new());
        batches.push_each([9]);
        assert_eq!(popped(&mut batches), vec![vec![3], vec![2], vec![1, 0], vec![], vec![9]]);
        assert!(batches.pop().is_none());
    }
}
