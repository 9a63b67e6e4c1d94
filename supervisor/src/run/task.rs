//! One run of a task: calling the user's factory and polling its future,
//! with panics caught.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::task::{self, Poll};

use tracing::Instrument;

use crate::spec::task::{BoxedRun, Factory};
use crate::{Context, ExitReason};

/// What a task unit keeps to start runs.
pub(crate) struct TaskBody {
    factory: Factory,
}

impl TaskBody {
    pub(crate) fn new(factory: Factory) -> Self {
        TaskBody { factory }
    }

    /// Starts a run inside `span`, so that the task's own log lines carry
    /// the unit's path. A panic while calling the user's `f` is a failed
    /// run, like a panic inside the future.
    pub(crate) fn start(&self, ctx: Context, span: tracing::Span) -> Result<TaskRun, ExitReason> {
        let made = span.in_scope(|| std::panic::catch_unwind(AssertUnwindSafe(|| (self.factory)(ctx))));
        match made {
            Ok(run) if span.is_disabled() => Ok(TaskRun { run }),
            Ok(run) => Ok(TaskRun { run: Box::pin(run.instrument(span)) }),
            Err(payload) => Err(ExitReason::Panic(panic_message(payload))),
        }
    }
}

/// One run of a task, polled inside its run's own tokio task, so that
/// dropping it is the abort.
pub(crate) struct TaskRun {
    run: BoxedRun,
}

impl TaskRun {
    /// Polls the run; `Ready` with how it ended, a panic included.
    pub(crate) fn poll_wait(&mut self, cx: &mut task::Context<'_>) -> Poll<ExitReason> {
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.run.as_mut().poll(cx))) {
            Ok(polled) => polled,
            Err(payload) => Poll::Ready(ExitReason::Panic(panic_message(payload))),
        }
    }

    /// Waits for the run to end. Cancel-safe.
    pub(crate) fn wait(&mut self) -> impl Future<Output = ExitReason> + Send + '_ {
        std::future::poll_fn(|cx| self.poll_wait(cx))
    }
}

/// A run dropped before it ended (aborted after its grace period, hung,
/// unhealthy) drops the user's future here, under a guard: a `Drop` of
/// theirs that panics must not unwind through the run's task, which still
/// has to report how the run ended.
impl Drop for TaskRun {
    fn drop(&mut self) {
        // A future of no size stands in: boxing it allocates nothing.
        let run = std::mem::replace(&mut self.run, Box::pin(std::future::pending()));
        if let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(move || drop(run))) {
            let message = panic_message(payload);
            tracing::error!(%message, "a task's future panicked when dropped");
        }
    }
}

/// The message of a panic. The payload is dropped here, under a guard of
/// its own: a payload whose `Drop` panics again must not unwind through the
/// supervisor.
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let message = if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    };
    if let Err(second) = std::panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        // Dropping this one could panic again, and so on: leak it.
        std::mem::forget(second);
        return format!("{message} (and its payload panicked when dropped)");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    struct PanicsOnDrop;

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("dropping the payload");
        }
    }

    #[test]
    fn a_payload_whose_drop_panics_is_contained() {
        let payload = std::panic::catch_unwind(|| std::panic::panic_any(PanicsOnDrop)).unwrap_err();
        let message = panic_message(payload);
        assert!(message.contains("non-string payload") && message.contains("panicked when dropped"), "{message}");
    }

    #[test]
    fn string_payloads_give_their_message() {
        let payload = std::panic::catch_unwind(|| panic!("boom {}", 7)).unwrap_err();
        assert_eq!(panic_message(payload), "boom 7");
    }
}
