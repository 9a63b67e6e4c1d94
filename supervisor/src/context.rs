//! [`Context`]: what a running task knows about itself.

use std::fmt;
use std::sync::Arc;

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// Handed to each run of a task: its name, how many restarts came before, and
/// a cancellation signal that fires when the unit is asked to stop.
///
/// A task that awaits [`cancelled`](Self::cancelled) (or checks
/// [`is_cancelled`](Self::is_cancelled)) stops gracefully; one that ignores it is
/// aborted after its [`stop_timeout`](crate::TaskSpec::stop_timeout).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use supervisor::{Context, TaskSpec};
///
/// let spec = TaskSpec::new("ticker", |ctx: Context| async move {
///     loop {
///         tokio::select! {
///             _ = ctx.cancelled() => return Ok::<_, std::io::Error>(()),
///             _ = tokio::time::sleep(Duration::from_secs(1)) => {
///                 println!("{} tick (restart #{})", ctx.name(), ctx.restart_count());
///             }
///         }
///     }
/// });
/// # let _ = spec;
/// ```
#[derive(Clone)]
pub struct Context {
    name: Arc<str>,
    restart_count: u32,
    cancel: CancellationToken,
}

impl Context {
    pub(crate) fn new(name: Arc<str>, restart_count: u32, cancel: CancellationToken) -> Self {
        Context { name, restart_count, cancel }
    }

    /// The unit's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Restarts performed before this run (0 for the first run).
    #[must_use]
    pub fn restart_count(&self) -> u32 {
        self.restart_count
    }

    /// Completes when the unit is asked to stop (by `stop_unit`, `restart` or
    /// shutdown). Cancel-safe: use it in `tokio::select!`.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }

    /// Whether the unit has been asked to stop.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// A token that is cancelled with this context, for handing to code that
    /// takes a [`CancellationToken`].
    #[must_use]
    pub fn cancellation_token(&self) -> CancellationToken {
        self.cancel.clone()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("name", &self.name)
            .field("restart_count", &self.restart_count)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
