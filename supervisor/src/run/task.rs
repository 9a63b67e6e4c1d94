//! One run of a task: calling the user's factory and polling its future,
//! with panics caught.

use std::panic::AssertUnwindSafe;
use std::task::{self, Poll};

use tracing::Instrument;

use crate::panics::{log_contained, panic_message};
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

    /// Drops the factory and what it captured, for a unit that is being
    /// dropped: no run starts after. A panic there is logged in `span`.
    pub(crate) fn drop_factory(&mut self, span: impl FnOnce() -> tracing::Span) {
        self.factory.drop_now(span);
    }

    /// Starts a run inside `span`, so that the task's own log lines carry
    /// the unit's path. A panic while calling the user's `f` is a failed
    /// run, like a panic inside the future.
    // Inlined into the run's first poll: 1 % of a start's instructions went
    // to the call and the moves around it.
    #[inline]
    pub(crate) fn start(&self, ctx: Context, span: tracing::Span) -> Result<TaskRun, ExitReason> {
        let made = span.in_scope(|| std::panic::catch_unwind(AssertUnwindSafe(|| (self.factory)(ctx))));
        match made {
            Ok(run) if span.is_disabled() => Ok(TaskRun { run }),
            // Dropped inside the span too: a `Drop` of the user's that
            // panics is logged with the unit's path.
            Ok(run) => Ok(TaskRun { run: Box::pin(DroppedWithCare(run).instrument(span)) }),
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

    /// Drops the user's future now, as the run's drop would; the message
    /// of the panic its `Drop` raised, if it did (logged already).
    pub(crate) fn drop_future(&mut self) -> Option<String> {
        drop_with_care(&mut self.run)
    }
}

/// A run dropped before it ended (aborted after its grace period, hung,
/// unhealthy) drops the user's future here, under a guard: a `Drop` of
/// theirs that panics must not unwind through the run's task, which still
/// has to report how the run ended.
impl Drop for TaskRun {
    fn drop(&mut self) {
        drop_with_care(&mut self.run);
    }
}

/// A panic of the user's future's `Drop`, logged already in its unit's
/// span, on its way out to [`drop_with_care`] to say how the run ended.
struct LoggedDropPanic(String);

/// The user's future, inside the unit's span, dropped with care there.
struct DroppedWithCare(BoxedRun);

impl Future for DroppedWithCare {
    type Output = ExitReason;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<ExitReason> {
        self.0.as_mut().poll(cx)
    }
}

impl Drop for DroppedWithCare {
    fn drop(&mut self) {
        // Always dropped inside `drop_with_care`, which catches this. Not
        // a panic of its own (no hook runs), and never while unwinding.
        if let Some(message) = drop_with_care(&mut self.0)
            && !std::thread::panicking()
        {
            std::panic::resume_unwind(Box::new(LoggedDropPanic(message)));
        }
    }
}

/// Drops `run` where a panic of its `Drop` is caught and logged; the
/// panic's message, if there was one.
fn drop_with_care(run: &mut BoxedRun) -> Option<String> {
    // A future of no size stands in: boxing it allocates nothing.
    let run = std::mem::replace(run, Box::pin(std::future::pending()));
    let payload = std::panic::catch_unwind(AssertUnwindSafe(move || drop(run))).err()?;
    let payload = match payload.downcast::<LoggedDropPanic>() {
        Ok(logged) => return Some(logged.0),
        Err(payload) => payload,
    };
    let message = panic_message(payload);
    log_contained(|| tracing::error!(%message, "a task's future panicked when dropped"));
    Some(message)
}
