//! [`Context`]: what a running task knows about itself.

use std::fmt;
use std::sync::Arc;

use smol_str::SmolStr;
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
    name: SmolStr,
    restart_count: u32,
    cancel: CancellationToken,
    /// Where `ready` and `heartbeat` go, for a unit that listens to them.
    signs: Option<Arc<dyn SignsOfLife>>,
}

/// What a run tells its supervisor: that it is ready, that it is alive.
pub(crate) trait SignsOfLife: Send + Sync {
    fn ready(&self);
    fn heartbeat(&self);
}

impl Context {
    pub(crate) fn new(
        name: SmolStr,
        restart_count: u32,
        cancel: CancellationToken,
        signs: Option<Arc<dyn SignsOfLife>>,
    ) -> Self {
        Context { name, restart_count, cancel, signs }
    }

    /// Tells the supervisor that this run is ready: for a unit with
    /// [`Readiness::Notified`](crate::Readiness::Notified), the units that
    /// depend on it may start, and `wait_ready` returns. A plain call; later
    /// calls in the same run do nothing, as does a call from a unit with
    /// another readiness.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Readiness, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("cache", |ctx: Context| async move {
    ///         // warm the cache, then:
    ///         ctx.ready();
    ///         ctx.cancelled().await;
    ///     })
    ///     .readiness(Readiness::Notified))
    ///     .build()?
    ///     .start();
    /// handle.wait_ready("cache").await?;
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn ready(&self) {
        if let Some(signs) = &self.signs {
            signs.ready();
        }
    }

    /// A sign of life, for a unit with a
    /// [`watchdog`](crate::TaskSpec::watchdog): a run that calls this less
    /// often than the watchdog's period is hung, and is stopped. A plain,
    /// cheap call (an atomic store); it does nothing for a unit without a
    /// watchdog.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::{Context, TaskSpec};
    ///
    /// let spec = TaskSpec::new("poller", |ctx: Context| async move {
    ///     while !ctx.is_cancelled() {
    ///         // poll something, then:
    ///         ctx.heartbeat();
    ///         tokio::time::sleep(Duration::from_secs(1)).await;
    ///     }
    /// })
    /// .watchdog(Duration::from_secs(30));
    /// # let _ = spec;
    /// ```
    pub fn heartbeat(&self) {
        if let Some(signs) = &self.signs {
            signs.heartbeat();
        }
    }

    /// The unit's path: its name after its groups' (`"storage/db"` for the
    /// unit `db` of the group `storage`), as statuses and events name it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("worker", move |ctx: Context| {
    ///         let tx = tx.clone();
    ///         async move {
    ///             tx.send(ctx.name().to_owned()).unwrap();
    ///             ctx.cancelled().await
    ///         }
    ///     }))
    ///     .build()?
    ///     .start();
    /// assert_eq!(rx.recv().await.unwrap(), "worker");
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Restarts its policy performed before this run: 0 for the first run,
    /// and again after a restart or start by hand, which resets the count
    /// (as [`UnitStatus::restart_count`](crate::UnitStatus::restart_count)).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use std::time::Duration;
    /// use supervisor::{Context, RestartPolicy, Supervisor, TaskSpec};
    ///
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("flaky", move |ctx: Context| {
    ///         let tx = tx.clone();
    ///         async move {
    ///             tx.send(ctx.restart_count()).unwrap();
    ///             if ctx.restart_count() == 0 {
    ///                 return Err("first run fails");
    ///             }
    ///             ctx.cancelled().await;
    ///             Ok(())
    ///         }
    ///     })
    ///     .restart(RestartPolicy::new().delay(Duration::ZERO)))
    ///     .build()?
    ///     .start();
    /// assert_eq!(rx.recv().await, Some(0));
    /// assert_eq!(rx.recv().await, Some(1));
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn restart_count(&self) -> u32 {
        self.restart_count
    }

    /// Completes when the unit is asked to stop (by `stop_unit`, `restart` or
    /// shutdown). Cancel-safe: use it in `tokio::select!`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("worker", move |ctx: Context| {
    ///         let tx = tx.clone();
    ///         async move {
    ///             ctx.cancelled().await;
    ///             tx.send("cleaned up").unwrap();
    ///         }
    ///     }))
    ///     .build()?
    ///     .start();
    /// handle.wait_ready("worker").await?;
    /// handle.stop_unit("worker").await?;
    /// assert_eq!(rx.recv().await, Some("cleaned up"));
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// A context kept past the end of its run (moved into a task of its
    /// own) completes once that run has ended, however it ended: a helper
    /// task spawned with a clone does not outlive its run.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }

    /// Whether the unit has been asked to stop.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use std::time::Duration;
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("poller", move |ctx: Context| {
    ///         let tx = tx.clone();
    ///         async move {
    ///             let mut polls = 0_u32;
    ///             while !ctx.is_cancelled() {
    ///                 polls += 1;
    ///                 tokio::time::sleep(Duration::from_millis(1)).await;
    ///             }
    ///             tx.send(polls).unwrap();
    ///         }
    ///     }))
    ///     .build()?
    ///     .start();
    /// handle.wait_ready("poller").await?;
    /// handle.stop_unit("poller").await?;
    /// assert!(rx.recv().await.is_some());
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// A token that is cancelled with this context, for handing to code that
    /// takes a [`CancellationToken`].
    ///
    /// It is a child of the run's own token: cancelling it cancels it and
    /// its clones, not the context (asking the run to stop is the
    /// supervisor's to do, with [`stop_unit`](crate::SupervisorHandle::stop_unit)
    /// or a shutdown).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("worker", move |ctx: Context| {
    ///         let tx = tx.clone();
    ///         let token = ctx.cancellation_token();
    ///         async move {
    ///             // Hand `token` to code that takes a `CancellationToken`.
    ///             token.cancelled().await;
    ///             tx.send(token.is_cancelled()).unwrap();
    ///         }
    ///     }))
    ///     .build()?
    ///     .start();
    /// handle.wait_ready("worker").await?;
    /// handle.stop_unit("worker").await?;
    /// assert_eq!(rx.recv().await, Some(true));
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn cancellation_token(&self) -> CancellationToken {
        self.cancel.child_token()
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
