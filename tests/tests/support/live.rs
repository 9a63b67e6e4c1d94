//! A count of the runs whose future is alive, for the tests that check that
//! no run outlives its supervisor.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Counts the runs whose future is alive.
#[derive(Clone, Default)]
pub(crate) struct Live(Arc<AtomicI64>);

/// One run counted by a [`Live`], until dropped with the run's future.
pub(crate) struct Alive(Live);

impl Live {
    /// Counts one more run, until the returned guard is dropped.
    pub(crate) fn enter(&self) -> Alive {
        self.0.fetch_add(1, Ordering::SeqCst);
        Alive(self.clone())
    }

    pub(crate) fn count(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}
