//! The user's values the supervisor holds (a task's factory, a probe's
//! check and the future of each of its attempts, and whatever they
//! captured), dropped under a guard.

use std::ops::{Deref, DerefMut};
use std::panic::AssertUnwindSafe;

/// Holds a value of the user's, and drops it under a guard: a `Drop` of the
/// user's that panics must not unwind through the supervisor's own tasks
/// (a group's owner that unwinds leaves its units unsupervised, and the
/// shutdown waiting for it for ever). Such a panic is logged and its
/// payload leaked: dropping the payload could panic again.
pub(crate) struct Guarded<T>(Option<T>);

impl<T> Guarded<T> {
    pub(crate) fn new(value: T) -> Self {
        Guarded(Some(value))
    }

    /// Drops the value now, as its drop would, and logs a panic of its
    /// `Drop` inside `span` (a unit's, for one), made only then. Used no
    /// more after.
    pub(crate) fn drop_now(&mut self, span: impl FnOnce() -> tracing::Span) {
        let value = self.0.take();
        if let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
            std::mem::forget(payload);
            crate::panics::log_contained(|| {
                span().in_scope(|| {
                    tracing::error!("a closure given to the supervisor panicked when dropped (in what it captured)");
                });
            });
        }
    }
}

impl<T> Deref for Guarded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // `None` only once dropped.
        self.0.as_ref().unwrap_or_else(|| unreachable!("a guarded value is used after its drop"))
    }
}

impl<T> DerefMut for Guarded<T> {
    fn deref_mut(&mut self) -> &mut T {
        // `None` only once dropped.
        self.0.as_mut().unwrap_or_else(|| unreachable!("a guarded value is used after its drop"))
    }
}

impl<T> Drop for Guarded<T> {
    fn drop(&mut self) {
        self.drop_now(tracing::Span::none);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct PanicsOnDrop(Arc<AtomicBool>);

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
            panic!("a capture that panics when dropped");
        }
    }

    #[test]
    fn a_value_whose_drop_panics_is_dropped_without_unwinding() {
        let dropped = Arc::new(AtomicBool::new(false));
        let bomb = PanicsOnDrop(dropped.clone());
        let guarded = Guarded::new(move || {
            let _ = &bomb;
            7
        });
        assert_eq!((*guarded)(), 7, "usable through the guard");
        drop(guarded);
        assert!(dropped.load(Ordering::SeqCst), "its drop ran");
    }
}
