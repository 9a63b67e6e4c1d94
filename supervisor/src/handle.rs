//! [`SupervisorHandle`]: observing and controlling a running supervisor.

use std::fmt;
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::control;
use crate::extensions::ShutdownHook;
use crate::shutdown::{self, ShutdownReport};
use crate::supervisor::Shared;
use crate::unit::Unit;
use crate::{Error, Event, UnitStatus};

/// Controls a started [`Supervisor`](crate::Supervisor). Cheap to clone;
/// `Send + Sync`.
///
/// Calls that change a unit (`start_unit`, `stop_unit`, `restart`) are
/// serialised per unit: a new run never starts before the previous one has
/// fully stopped.
///
/// Dropping the last clone stops every unit in the background, so that no
/// process outlives its supervisor; call [`shutdown`](Self::shutdown) to stop
/// them and wait.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), supervisor::Error> {
/// use supervisor::{Context, Supervisor, TaskSpec, UnitState};
///
/// let handle = Supervisor::builder()
///     .task(TaskSpec::new("worker", |ctx: Context| async move { ctx.cancelled().await }))
///     .build()?
///     .start();
/// handle.stop_unit("worker").await?;
/// assert_eq!(handle.status("worker").unwrap().state, UnitState::Stopped);
/// handle.start_unit("worker").await?;
/// handle.restart("worker").await?;
/// assert!(handle.stop_unit("nope").await.is_err());
/// handle.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SupervisorHandle {
    shared: Arc<Shared>,
    /// `None` in the service layer's own handles (see `detached`), which
    /// must not keep the supervisor running.
    _shutdown_on_drop: Option<Arc<ShutdownOnDrop>>,
}

/// Shuts the supervisor down when the last handle is dropped.
struct ShutdownOnDrop {
    shared: Arc<Shared>,
}

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        let shared = self.shared.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    shutdown::shut_down_once(&shared).await;
                });
            }
            // No runtime to run a graceful shutdown on: ask every unit to
            // stop; a process left behind is killed when its run is dropped.
            Err(_) => shared.root.cancel(),
        }
    }
}

impl SupervisorHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let guard = Arc::new(ShutdownOnDrop { shared: shared.clone() });
        SupervisorHandle { shared, _shutdown_on_drop: Some(guard) }
    }

    /// For the service layer's background tasks: a handle that does not
    /// keep the supervisor running once the user's handles are dropped.
    #[cfg_attr(not(any(feature = "http", feature = "systemd")), allow(dead_code))]
    pub(crate) fn detached(&self) -> SupervisorHandle {
        SupervisorHandle { shared: self.shared.clone(), _shutdown_on_drop: None }
    }

    /// For the service layer: its value of type `T` kept on the supervisor
    /// (see `extensions`), created on first use.
    pub(crate) fn extension<T: std::any::Any + Default + Send + Sync>(&self) -> Arc<T> {
        self.shared.extensions.get_or_default()
    }

    /// For the service layer: something to do when a shutdown begins and ends.
    #[cfg_attr(not(feature = "systemd"), allow(dead_code))]
    pub(crate) fn add_shutdown_hook(&self, hook: Arc<dyn ShutdownHook>) {
        self.shared.shutdown_hooks.add(hook);
    }

    /// Whether the supervisor has ended: a shutdown has completed, or every
    /// handle was dropped.
    pub(crate) fn has_ended(&self) -> bool {
        self.shared.root.is_cancelled()
    }

    /// Completes once the supervisor has ended (see `has_ended`).
    #[cfg_attr(not(any(feature = "http", feature = "systemd")), allow(dead_code))]
    pub(crate) async fn ended(&self) {
        self.shared.root.cancelled().await;
    }

    /// A snapshot of one unit; `None` if no unit has that name.
    #[must_use]
    pub fn status(&self, name: &str) -> Option<UnitStatus> {
        self.shared.lookup(name).ok().map(|(_, unit)| unit.status())
    }

    /// Snapshots of every unit, in registration order.
    #[must_use]
    pub fn statuses(&self) -> Vec<UnitStatus> {
        self.shared.units.iter().map(Unit::status).collect()
    }

    /// The names of every unit, in registration order.
    #[must_use]
    pub fn unit_names(&self) -> Vec<String> {
        self.shared.unit_names()
    }

    /// Stops the unit gracefully if it runs (or waits in backoff), resets its
    /// restart count, and starts it again. The old run has ended before the
    /// new one starts.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownUnit`], or [`Error::ShuttingDown`] once a shutdown began.
    pub async fn restart(&self, name: &str) -> Result<(), Error> {
        let (index, unit) = self.shared.lookup(name)?;
        let _control = control::take(&self.shared, unit).await;
        self.refuse_during_shutdown("restart", unit)?;
        shutdown::stop_locked(&self.shared, unit).await;
        self.shared.activate(index);
        Ok(())
    }

    /// Stops the unit gracefully (cancellation, or the stop signal, then abort
    /// or `SIGKILL` after its stop timeout). It stays `Stopped`: the policy
    /// does not restart it. Stopping a unit at rest does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownUnit`].
    pub async fn stop_unit(&self, name: &str) -> Result<(), Error> {
        let (_, unit) = self.shared.lookup(name)?;
        let _control = control::take(&self.shared, unit).await;
        shutdown::stop_locked(&self.shared, unit).await;
        Ok(())
    }

    /// Starts a unit at rest (`Stopped`, `Exited` or `Failed`) with its restart
    /// count reset. Starting a unit that is active does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownUnit`], or [`Error::ShuttingDown`] once a shutdown began.
    pub async fn start_unit(&self, name: &str) -> Result<(), Error> {
        let (index, unit) = self.shared.lookup(name)?;
        let _control = control::take(&self.shared, unit).await;
        self.refuse_during_shutdown("start", unit)?;
        if unit.is_active() {
            return Ok(());
        }
        // The previous loop, if any, has ended: activating replaces it.
        self.shared.activate(index);
        Ok(())
    }

    /// Receives every [`Event`] from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.subscribe()
    }

    /// The last `lines` lines a daemon wrote to stdout and stderr, in arrival
    /// order. Empty for a task.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownUnit`].
    pub fn tail(&self, name: &str, lines: usize) -> Result<Vec<String>, Error> {
        Ok(self.shared.lookup(name)?.1.tail(lines))
    }

    /// Stops every unit gracefully, the most recently started first, and
    /// reports how each stop went. Idempotent: later and concurrent calls
    /// return the same report.
    pub async fn shutdown(&self) -> ShutdownReport {
        shutdown::shut_down_once(&self.shared).await.clone()
    }

    /// Cuts every grace period short: units still stopping, now or in a later
    /// shutdown, are aborted or killed at once.
    pub fn skip_grace(&self) {
        self.shared.kill_now.cancel();
    }

    /// Whether a shutdown has begun.
    #[must_use]
    pub fn is_shutting_down(&self) -> bool {
        self.shared.is_shutting_down()
    }

    fn refuse_during_shutdown(&self, action: &'static str, unit: &Unit) -> Result<(), Error> {
        if self.shared.is_shutting_down() {
            return Err(Error::ShuttingDown { action, unit: unit.name.to_string() });
        }
        Ok(())
    }
}

impl fmt::Debug for SupervisorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let states: Vec<_> = self.shared.units.iter().map(|unit| (unit.name.clone(), unit.state())).collect();
        f.debug_struct("SupervisorHandle")
            .field("units", &states)
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}
