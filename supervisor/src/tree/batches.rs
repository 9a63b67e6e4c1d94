//! The units a plan stops, stage after stage: each unit of a batch asked
//! at once, or each unit of a gated stage as soon as the units that depend
//! on it have stopped; the next stage once they have all stopped. Most
//! batches hold one unit (OTP's order stops one at a time), and those cost
//! no allocation.

use std::collections::VecDeque;

use crate::tree::stop_gate::StopGate;

/// Stages, first to stop first.
pub(crate) struct Batches<T>(VecDeque<Stage<T>>);

/// One stage of a plan's stops.
pub(crate) enum Stage<T> {
    /// Asked together.
    Batch(Batch<T>),
    /// Asked as their dependents allow.
    Gated(Gated<T>),
}

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
        self.0.extend(items.into_iter().map(|item| Stage::Batch(Batch::One(item))));
    }

    /// Adds `items` as one batch.
    pub(crate) fn push_together(&mut self, items: Vec<T>) {
        self.0.push_back(Stage::Batch(Batch::Many(items)));
    }

    /// Adds `items`, to be asked as `gate` frees them (its indices are
    /// their places in `items`).
    pub(crate) fn push_gated(&mut self, items: Vec<T>, gate: StopGate) {
        self.0.push_back(Stage::Gated(Gated { items: items.into_iter().map(Some).collect(), gate }));
    }

    /// The next stage to stop.
    pub(crate) fn pop(&mut self) -> Option<Stage<T>> {
        self.0.pop_front()
    }

    /// Whether no stage is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an item of the stages still to come is one `is` accepts.
    pub(crate) fn any(&self, mut is: impl FnMut(&T) -> bool) -> bool {
        self.0.iter().any(|stage| match stage {
            Stage::Batch(Batch::One(item)) => is(item),
            Stage::Batch(Batch::Many(items)) => items.iter().any(&mut is),
            Stage::Gated(gated) => gated.any(&mut is),
        })
    }
}

/// Units asked to stop as soon as the units that depend on them have
/// stopped (see [`StopGate`]).
pub(crate) struct Gated<T> {
    /// Each unit until it is asked, by its index in the gate.
    items: Vec<Option<T>>,
    gate: StopGate,
}

impl<T> Gated<T> {
    /// Takes the units free to be asked now, each with its index, to say
    /// when it has [`stopped`](Self::stopped).
    pub(crate) fn take_free(&mut self) -> Vec<(usize, T)> {
        let free = self.gate.take_free();
        free.into_iter().filter_map(|at| Some((at, self.items[at].take()?))).collect()
    }

    /// The unit at `at` has stopped, or was not running when asked.
    pub(crate) fn stopped(&mut self, at: usize) {
        self.gate.stopped(at);
    }

    /// Whether a unit not asked yet is one `is` accepts.
    pub(crate) fn any(&self, is: impl FnMut(&T) -> bool) -> bool {
        self.items.iter().flatten().any(is)
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
            batches.pop().map(|stage| {
                let Stage::Batch(batch) = stage else { panic!("a gated stage") };
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

    /// A gated stage hands out each unit once, as its gate frees it, and
    /// counts the units not handed out yet among those to come.
    #[test]
    fn a_gated_stage_hands_out_units_as_their_dependents_stop() {
        // 10 db; 11 api needs db.
        let mut batches = Batches::new();
        batches.push_gated(vec![10, 11], StopGate::among(&[vec![], vec![0]], &[0, 1]));
        assert!(batches.any(|&unit| unit == 10));
        let Some(Stage::Gated(mut gated)) = batches.pop() else { panic!("the gated stage") };
        assert_eq!(gated.take_free(), vec![(1, 11)]);
        assert!(gated.any(|&unit| unit == 10) && !gated.any(|&unit| unit == 11));
        assert_eq!(gated.take_free(), vec![], "db waits for api");
        gated.stopped(1);
        assert_eq!(gated.take_free(), vec![(0, 10)]);
        gated.stopped(0);
        assert!(gated.take_free().is_empty() && !gated.any(|_| true));
    }
}
