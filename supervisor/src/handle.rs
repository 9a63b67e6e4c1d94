//! [`SupervisorHandle`]: observing and controlling a running supervisor.

use std::fmt;
use std::sync::{Arc, Weak};

use tokio::sync::{broadcast, oneshot};
use tokio::time::Instant;

use crate::extensions::ShutdownHook;
use crate::observe::report::{ShutdownCause, ShutdownReport, UnitReport};
use crate::spec::Spec;
use crate::spec::validate;
use crate::tree::paths;
use crate::tree::shared::{Interest, Shared};
use crate::tree::unit::{GroupBody, Msg, Op, OwnerAddress, Unit};
use crate::{Error, Event, Signal, UnitKind, UnitState, UnitStatus};

/// Controls a started [`Supervisor`](crate::Supervisor). Cheap to clone;
/// `Send + Sync`.
///
/// Units are named by path: `"worker"` at the root, `"storage/db"` for the
/// unit `db` of the group `storage`. Calls that change a unit
/// (`start_unit`, `stop_unit`, `restart`, `add`, `remove`) are carried out
/// by the owner of the unit's group, one at a time: a new run never starts
/// before the previous one has fully stopped.
///
/// Dropping the last clone stops every unit in the background, so that no
/// process outlives its supervisor; call [`shutdown`](Self::shutdown) to stop
/// them and wait. A clone that a unit holds (captured by its closure)
/// counts too, and would keep the supervisor running for ever: give a unit
/// that controls its own supervisor a [`WeakSupervisorHandle`] instead
/// ([`downgrade`](Self::downgrade)).
///
/// # Caveats
///
/// The units and their groups' owners run on the runtime the supervisor
/// was started on. A call awaited elsewhere (a plain thread, another
/// runtime) is answered by that runtime's tasks: on a current_thread
/// runtime that nobody drives at the moment (its `block_on` has returned,
/// or its thread is blocked), a call that waits for a unit (`restart`,
/// `stop_unit`, `wait_ready`, `shutdown`, ...) waits until it is driven
/// again. Statuses and `status` read shared state, and answer at once.
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

/// A [`SupervisorHandle`] that does not keep the supervisor running, made
/// by [`SupervisorHandle::downgrade`]: for a unit that controls its own
/// supervisor. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct WeakSupervisorHandle {
    guard: Weak<ShutdownOnDrop>,
}

impl WeakSupervisorHandle {
    /// A handle, while the program holds another one; `None` once every
    /// handle has been dropped (and the supervisor shuts down, or has).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// let handle = supervisor::Supervisor::builder().build()?.start();
    /// let weak = handle.downgrade();
    /// assert!(weak.upgrade().is_some());
    /// drop(handle);
    /// assert!(weak.upgrade().is_none());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn upgrade(&self) -> Option<SupervisorHandle> {
        let guard = self.guard.upgrade()?;
        Some(SupervisorHandle { shared: guard.shared.clone(), _shutdown_on_drop: Some(guard) })
    }
}

impl fmt::Debug for WeakSupervisorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakSupervisorHandle").field("alive", &(self.guard.strong_count() > 0)).finish()
    }
}

/// Shuts the supervisor down when the last handle is dropped.
struct ShutdownOnDrop {
    shared: Arc<Shared>,
}

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        begin_shutdown(&self.shared);
    }
}

/// Asks the root group to stop; its owner does the rest, in its own task.
fn begin_shutdown(shared: &Shared) {
    shared.begin_shutdown(ShutdownCause::Requested);
    shared.root_stop.cancel();
}

impl SupervisorHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let guard = Arc::new(ShutdownOnDrop { shared: shared.clone() });
        SupervisorHandle { shared, _shutdown_on_drop: Some(guard) }
    }

    /// A handle that does not keep the supervisor running: for a unit that
    /// controls its own supervisor (an acceptor that adds a unit per
    /// connection), which would keep it running for ever by holding a
    /// clone of this handle. [`WeakSupervisorHandle::upgrade`] gives a
    /// handle back while the program still holds one.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder().build()?.start();
    /// let tree = handle.downgrade();
    /// handle
    ///     .add(TaskSpec::new("spawner", move |ctx: Context| {
    ///         let tree = tree.clone();
    ///         async move {
    ///             // A handle for the moment it is needed, if the program still runs the supervisor.
    ///             if let Some(tree) = tree.upgrade() {
    ///                 let _ = tree.add(TaskSpec::new("job", |_ctx: Context| async {})).await;
    ///             }
    ///             ctx.cancelled().await;
    ///         }
    ///     }))
    ///     .await?;
    /// let weak = handle.downgrade();
    /// drop(handle); // the last handle: the supervisor shuts down in the background
    /// assert!(weak.upgrade().is_none());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn downgrade(&self) -> WeakSupervisorHandle {
        let guard = self._shutdown_on_drop.as_ref().map_or_else(Weak::new, Arc::downgrade);
        WeakSupervisorHandle { guard }
    }

    /// For the service layer's background tasks: a handle that does not
    /// keep the supervisor running once the user's handles are dropped.
    #[cfg_attr(not(any(feature = "http", feature = "systemd")), allow(dead_code))]
    pub(crate) fn detached(&self) -> SupervisorHandle {
        SupervisorHandle { shared: self.shared.clone(), _shutdown_on_drop: None }
    }

    /// For the metrics publisher: the paths of units whose state changed
    /// with no event of its own (a unit asked to stop is `Stopping`).
    #[cfg(feature = "metrics")]
    pub(crate) fn listen_quietly(&self) -> broadcast::Receiver<smol_str::SmolStr> {
        self.shared.listen_quietly()
    }

    /// For the service layer: its value of type `T` kept on the supervisor
    /// (see `extensions`), created on first use.
    pub(crate) fn extension<T: std::any::Any + Default + Send + Sync>(&self) -> Arc<T> {
        self.shared.extensions.get_or_default()
    }

    /// For the service layer: something to do when a shutdown begins and ends.
    #[cfg_attr(not(any(feature = "systemd", feature = "http")), allow(dead_code))]
    pub(crate) fn add_shutdown_hook(&self, hook: Arc<dyn ShutdownHook>) {
        self.shared.shutdown_hooks.add(hook);
    }

    /// For the service layer: the runtime the supervisor was started on,
    /// for work asked from a thread of no runtime.
    pub(crate) fn runtime(&self) -> Option<tokio::runtime::Handle> {
        self.shared.runtime()
    }

    /// Whether the supervisor has ended (its report is out).
    pub(crate) fn has_ended(&self) -> bool {
        self.shared.has_ended()
    }

    /// Completes once the supervisor has ended.
    #[cfg_attr(not(any(feature = "http", feature = "systemd")), allow(dead_code))]
    pub(crate) async fn ended(&self) {
        self.shared.ended().await;
    }

    /// A snapshot of one unit; `None` if no unit has that path.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, GroupSpec, Supervisor, TaskSpec, UnitKind};
    ///
    /// let handle = Supervisor::builder()
    ///     .group(GroupSpec::new("jobs").task(TaskSpec::new("a", |ctx: Context| async move { ctx.cancelled().await })))
    ///     .build()?
    ///     .start();
    /// assert_eq!(handle.status("jobs").unwrap().kind, UnitKind::Group);
    /// assert_eq!(handle.status("jobs/a").unwrap().name, "jobs/a");
    /// assert!(handle.status("a").is_none());
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn status(&self, name: &str) -> Option<UnitStatus> {
        self.lookup(name).ok().map(|(group, unit)| unit.status_in(&group, &self.shared.clock))
    }

    /// Snapshots of every unit and group, depth first in registration order
    /// (a group, then its units).
    ///
    /// # Caveats
    ///
    /// Each group's list of units is read under its lock, while that
    /// group's statuses are taken: about 7 ms for 100k units on one core.
    /// An `add` or `remove` in that group waits for the read to end.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder().task(TaskSpec::new("a", |_ctx| async {})).build()?.start();
    /// let json = serde_json::to_string(&handle.statuses()).unwrap();
    /// assert!(json.starts_with("[{\"name\":\"a\""));
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn statuses(&self) -> Vec<UnitStatus> {
        // Room for the root's units at least: 100k statuses spent a tenth
        // of their time moving the list as it grew.
        let units_at_root = self.shared.root.group().map_or(0, |root| root.members().len());
        let mut statuses = Vec::with_capacity(units_at_root);
        let now = Instant::now();
        // Whether a group is at rest is read once for its units.
        let mut last_group: Option<(*const Unit, bool)> = None;
        paths::walk_in_groups(&self.shared.root, &mut |group, siblings, unit| {
            let at_rest = match last_group {
                Some((seen, at_rest)) if std::ptr::eq(seen, group) => at_rest,
                _ => {
                    let at_rest = group.is_group_at_rest();
                    last_group = Some((group, at_rest));
                    at_rest
                }
            };
            statuses.push(unit.status(siblings, at_rest, &self.shared.clock, now));
        });
        statuses
    }

    /// The paths of every unit and group, depth first in registration order.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{GroupSpec, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("a", |_ctx| async {}))
    ///     .group(GroupSpec::new("g").task(TaskSpec::new("b", |_ctx| async {})))
    ///     .build()?
    ///     .start();
    /// assert_eq!(handle.unit_names(), ["a", "g", "g/b"]);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn unit_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        paths::walk(&self.shared.root, &mut |unit| names.push(String::from(unit.path.as_str())));
        names
    }

    /// Stops the unit gracefully if it runs (or waits in backoff), resets its
    /// restart count, and starts it again, in its place in the start and
    /// stop order. The old run has ended before the new one starts. On a
    /// group, stops its units and starts them all again. Like
    /// [`start_unit`](Self::start_unit), it starts what the unit depends on
    /// if that is not running.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownUnit`], [`Error::GroupNotRunning`] when the unit's
    /// group is not running, or [`Error::ShuttingDown`] once a shutdown began.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("worker", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// handle.restart("worker").await?;
    /// assert_eq!(handle.status("worker").unwrap().restart_count, 0);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn restart(&self, name: &str) -> Result<(), Error> {
        self.control(name, Op::Restart).await
    }

    /// Stops the unit gracefully (cancellation, or the stop signal, then abort
    /// or `SIGKILL` after its stop timeout). It stays `Stopped`: the policy
    /// does not restart it, nor does a strategy that a sibling's failure
    /// sets off while it stops, nor a `restart` of a unit it depends on.
    /// Stopping a unit at rest does nothing. On a group, stops its units in
    /// reverse start order (a restarted unit keeps its place).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownUnit`]. (A unit of a group that is not running is at
    /// rest: stopping it does nothing.)
    ///
    /// # Caveats
    ///
    /// A new run of the unit's group (a `restart` of the group, its own
    /// policy, a strategy of the group above) starts its units afresh, this
    /// one too, as OTP restarts a supervisor's children: to keep a unit of
    /// a group down for good, [`remove`](Self::remove) it.
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
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn stop_unit(&self, name: &str) -> Result<(), Error> {
        self.control(name, Op::Stop).await
    }

    /// Starts a unit at rest (`Stopped`, `Exited` or `Failed`) with its restart
    /// count reset. Starting a unit that is active does nothing; one that is
    /// stopping starts once it has stopped.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownUnit`], [`Error::GroupNotRunning`], or
    /// [`Error::ShuttingDown`] once a shutdown began.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{RestartOn, RestartPolicy, Supervisor, TaskSpec, UnitState};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("once", |_ctx| async {}).restart(RestartPolicy::new().on(RestartOn::Never)))
    ///     .build()?
    ///     .start();
    /// handle.wait_state("once", UnitState::Exited).await?;
    /// handle.start_unit("once").await?; // runs it again
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start_unit(&self, name: &str) -> Result<(), Error> {
        self.control(name, Op::Start).await
    }

    /// Pauses the unit's restarts without stopping it: it keeps running, but
    /// when its run ends and its policy would restart it, it waits in
    /// `Backoff` until [`resume_restarts`](Self::resume_restarts). For
    /// maintenance: a daemon being fixed that must not be restarted in a
    /// loop meanwhile. Idempotent.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownUnit`], [`Error::GroupNotRunning`], or
    /// [`Error::ShuttingDown`] once a shutdown began.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("worker", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// handle.pause_restarts("worker").await?;
    /// assert!(handle.status("worker").unwrap().restarts_paused);
    /// handle.resume_restarts("worker").await?;
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn pause_restarts(&self, name: &str) -> Result<(), Error> {
        self.control(name, Op::PauseRestarts).await
    }

    /// Resumes the unit's restarts; a restart that came due while they were
    /// paused happens now.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownUnit`], [`Error::GroupNotRunning`], or
    /// [`Error::ShuttingDown`] once a shutdown began.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("worker", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// handle.pause_restarts("worker").await?;
    /// handle.resume_restarts("worker").await?;
    /// assert!(handle.resume_restarts("nope").await.is_err());
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn resume_restarts(&self, name: &str) -> Result<(), Error> {
        self.control(name, Op::ResumeRestarts).await
    }

    /// Adds a unit (a task, a daemon or a whole group) to the root group and
    /// starts it. It is like the registered units in every way, except that
    /// it comes after them in start order and, in a shutdown, units added at
    /// run time are stopped concurrently among themselves (each after the
    /// added units that depend on it), as OTP stops the children of a
    /// `simple_one_for_one` supervisor.
    ///
    /// # Errors
    ///
    /// What `build()` would say of the spec (an empty name or one with `/`,
    /// a bad policy...), [`Error::DuplicateName`] when the group has a unit
    /// of that name, or [`Error::ShuttingDown`].
    ///
    /// # Caveats
    ///
    /// Dropping the future (a timeout around it) does not take the request
    /// back: once sent, the unit may still be added, after the drop.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder().build()?.start();
    /// handle.add(TaskSpec::new("job-7", |ctx: Context| async move { ctx.cancelled().await })).await?;
    /// handle.wait_ready("job-7").await?;
    /// let report = handle.remove("job-7").await?;
    /// assert_eq!(report.name, "job-7");
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn add(&self, spec: impl Into<Spec>) -> Result<(), Error> {
        self.add_into(self.shared.root.clone(), spec.into()).await
    }

    /// Adds a unit to the group at `group` and starts it; see
    /// [`add`](Self::add).
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add), and [`Error::UnknownUnit`] or
    /// [`Error::WrongKind`] when `group` names no group,
    /// [`Error::GroupNotRunning`] when it is not running.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{DaemonSpec, GroupSpec, Supervisor};
    ///
    /// let handle = Supervisor::builder().group(GroupSpec::new("storage")).build()?.start();
    /// handle.add_to("storage", DaemonSpec::new("replica", "sleep").arg("60")).await?;
    /// assert!(handle.status("storage/replica").is_some());
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn add_to(&self, group: &str, spec: impl Into<Spec>) -> Result<(), Error> {
        let (_, unit) = self.lookup(group)?;
        if unit.kind() != UnitKind::Group {
            return Err(Error::WrongKind { action: "add a unit to", unit: unit.path.to_string(), kind: unit.kind() });
        }
        self.add_into(unit, spec.into()).await
    }

    async fn add_into(&self, group: Arc<Unit>, spec: Spec) -> Result<(), Error> {
        let depth = if group.path.is_empty() { 0 } else { group.path.split('/').count() };
        if let Err(too_deep) = validate::check_depth(&group.path, depth, std::slice::from_ref(&spec)) {
            validate::drop_flat(vec![spec]);
            return Err(too_deep);
        }
        let mut problems = Vec::new();
        validate::check_added(&group.path, &spec, &mut problems, |name| self.path_of_unit_named(name));
        Error::from_problems(problems)?;
        // The path is made only for an error: most adds need none.
        let path = |spec: &Spec| validate::join(&group.path, spec.name());
        if self.shared.is_shutting_down() {
            return Err(Error::ShuttingDown { action: "add", unit: path(&spec) });
        }
        // Added at once if the owner is idle: no boxed spec, no reply.
        let spec = match group.group().and_then(GroupBody::owner_link) {
            Some(owner) => match owner.try_add_for_caller(spec) {
                Ok(added) => return added,
                Err(spec) => spec,
            },
            None => spec,
        };
        let address = self.owner_address(&group, "add", || path(&spec)).await?;
        let unit = path(&spec);
        let (reply, answer) = oneshot::channel();
        if address.mailbox.send(Msg::Add { spec: Box::new(spec), reply }).is_err() {
            return Err(self.shared.refusal(&group, "add", unit));
        }
        answer.await.unwrap_or(Err(Error::ShuttingDown { action: "add", unit }))
    }

    /// The path of the first unit named `name` in the tree, to tell an
    /// unknown dependency where it is. Looked for on a refusal only.
    fn path_of_unit_named(&self, name: &str) -> Option<String> {
        let mut found = None;
        paths::walk(&self.shared.root, &mut |unit| {
            if found.is_none() && unit.name() == name {
                found = Some(unit.path.to_string());
            }
        });
        found
    }

    /// Stops a unit gracefully, then forgets it: its name is free again.
    /// Returns how its stop went.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownUnit`], [`Error::GroupNotRunning`],
    /// [`Error::ShuttingDown`], or [`Error::HasDependents`] when units of its
    /// group depend on it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, StopOutcome, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("job", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// let report = handle.remove("job").await?;
    /// assert_eq!(report.outcome, StopOutcome::Graceful);
    /// assert!(handle.status("job").is_none());
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn remove(&self, name: &str) -> Result<UnitReport, Error> {
        let (group, unit) = self.lookup(name)?;
        let (reply, answer) = oneshot::channel();
        self.send(&group, &unit.path, "remove", Msg::Remove { unit: unit.clone(), reply }).await?;
        answer.await.unwrap_or_else(|_| Err(Error::ShuttingDown { action: "remove", unit: unit.path.to_string() }))
    }

    /// Receives every [`Event`] from now on. To see the first events of a
    /// supervisor too, subscribe before it starts, with
    /// [`Supervisor::subscribe`](crate::Supervisor::subscribe).
    ///
    /// The stream ends with the supervisor: once it has ended (its report
    /// is out), `recv` returns what was sent before, then
    /// [`RecvError::Closed`](tokio::sync::broadcast::error::RecvError::Closed),
    /// so that a `while let Ok(event) = events.recv().await` loop ends. A
    /// subscriber that falls more than
    /// [`event_capacity`](crate::SupervisorBuilder::event_capacity) events
    /// behind gets `RecvError::Lagged` and misses the oldest.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, EventKind, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("worker", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// handle.wait_ready("worker").await?;
    /// let mut events = handle.subscribe();
    /// handle.restart("worker").await?;
    /// let event = events.recv().await.unwrap();
    /// assert_eq!(event.unit, "worker");
    /// assert!(matches!(event.kind, EventKind::Stopped { .. }));
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.subscribe()
    }

    /// The last `lines` lines a daemon wrote to stdout and stderr, in the
    /// order they were read: each stream's in the order written; the two
    /// pipes are read apart, so their lines may interleave otherwise than
    /// they were written. Empty for a task or a group.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownUnit`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{DaemonSpec, RestartOn, RestartPolicy, Supervisor, UnitState};
    ///
    /// let handle = Supervisor::builder()
    ///     .daemon(DaemonSpec::new("hello", "echo").arg("hello").restart(RestartPolicy::new().on(RestartOn::Never)))
    ///     .build()?
    ///     .start();
    /// handle.wait_state("hello", UnitState::Exited).await?;
    /// assert_eq!(handle.tail("hello", 10)?, ["hello"]);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn tail(&self, name: &str, lines: usize) -> Result<Vec<String>, Error> {
        Ok(self.lookup(name)?.1.tail(lines))
    }

    /// Sends `signal` to a running daemon's whole process group: `HUP` to
    /// reload, `USR1`, ... (a stop signal sent this way is an outside kill:
    /// the run's ending goes through the policy).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownUnit`], [`Error::WrongKind`] for a task or a group,
    /// [`Error::NotRunning`] when no run is in progress, [`Error::Io`] when
    /// the signal cannot be sent.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{DaemonSpec, Signal, Supervisor};
    ///
    /// let handle = Supervisor::builder()
    ///     .daemon(DaemonSpec::new("web", "sh").args(["-c", "trap 'echo reload' HUP; while :; do sleep 0.01; done"]))
    ///     .build()?
    ///     .start();
    /// handle.wait_ready("web").await?;
    /// handle.signal("web", Signal::HUP)?;
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn signal(&self, name: &str, signal: Signal) -> Result<(), Error> {
        let (_, unit) = self.lookup(name)?;
        if unit.kind() != UnitKind::Process {
            return Err(Error::WrongKind { action: "signal", unit: unit.path.to_string(), kind: unit.kind() });
        }
        let not_running = || Error::NotRunning { action: "signal", unit: unit.path.to_string() };
        let signaller = unit.signaller().ok_or_else(not_running)?;
        match signaller.signal(signal.to_rustix()) {
            Ok(()) => Ok(()),
            // The run ended meanwhile.
            Err(error) if error.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error()) => Err(not_running()),
            Err(source) => Err(Error::Io { context: format!("cannot send {signal} to `{}`", unit.path), source }),
        }
    }

    /// Waits until the unit is in `state`, and returns its status then.
    /// Nothing polls: the wait wakes when that unit gets to `state` (or is
    /// removed, or the supervisor ends), never for its other changes nor
    /// for the changes of other units: waiting for `Failed` costs nothing
    /// while the unit restarts a thousand times.
    ///
    /// # Caveats
    ///
    /// A state that lasts an instant may be gone when the wait wakes; see
    /// [`wait_status`](Self::wait_status).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownUnit`] (also when the unit is removed meanwhile), or
    /// [`Error::WillNotHappen`] once the supervisor has ended without the
    /// unit reaching `state`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{MaxRestarts, RestartPolicy, Supervisor, TaskSpec, UnitState};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("flaky", |_ctx| async { Err::<(), _>("boom") })
    ///         .restart(RestartPolicy::new().delay(std::time::Duration::ZERO).max_restarts(MaxRestarts::AtMost(2))))
    ///     .build()?
    ///     .start();
    /// let status = handle.wait_state("flaky", UnitState::Failed).await?;
    /// assert_eq!(status.restart_count, 2);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_state(&self, name: &str, state: UnitState) -> Result<UnitStatus, Error> {
        self.wait_until(
            name,
            state.as_str(),
            Interest::state(state),
            |_, status| status.state == state,
            |_, _, _| false,
        )
        .await
    }

    /// Waits until the unit is ready (as its [`Readiness`](crate::Readiness)
    /// says; a group, when every unit of it that should run is ready; a
    /// [`Completed`](crate::Readiness::Completed) one-shot job, once it is
    /// done, at rest), and returns its status then. The wait wakes when the unit becomes ready
    /// or gives up, not for its other changes.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownUnit`], or [`Error::WillNotHappen`] when the unit
    /// gave up (`Failed`), ended and will not restart (`Exited`, but for a
    /// `Completed` job that ended well), waits to start for a unit that did
    /// either (or waits in vain itself), is in a group that did either (or
    /// waits in vain), is a group held back by a unit of it that did
    /// either, or the supervisor ended: in each case only a start by hand
    /// could make it ready.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("api", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// let status = handle.wait_ready("api").await?;
    /// assert!(status.ready && status.running);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_ready(&self, name: &str) -> Result<UnitStatus, Error> {
        self.wait_until(
            name,
            "ready",
            Interest::ready_or(&[UnitState::Failed, UnitState::Exited]),
            // A one-shot job that is done is ready in its status.
            |_, status| status.ready,
            |unit, group, _| {
                group.group().is_some_and(|body| unit.is_stuck(&body.members())) || self.ended_above(&unit.path)
            },
        )
        .await
    }

    /// Whether a group above the unit at `path` gave up or ended for good
    /// (`Failed`, `Exited`), or waits in vain to start, for a dependency
    /// that did: its units rest with it, until it is started by hand.
    fn ended_above(&self, path: &str) -> bool {
        paths::groups_above(&self.shared.root, path).any(|group| match group.state() {
            UnitState::Failed | UnitState::Exited => true,
            UnitState::Waiting => self
                .lookup(&group.path)
                .is_ok_and(|(parent, _)| parent.group().is_some_and(|body| group.is_stuck(&body.members()))),
            _ => false,
        })
    }

    /// Waits until the unit's status satisfies `done`, and returns it then.
    /// Nothing polls: `done` is asked again whenever that unit changes (or
    /// one it depends on, or, for a group, when a unit is added to it or
    /// removed from it), and only then.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownUnit`] (also when the unit is removed meanwhile), or
    /// [`Error::WillNotHappen`] once the supervisor has ended without `done`
    /// being satisfied.
    ///
    /// # Caveats
    ///
    /// `done` sees the status when the wait wakes, not every status the unit
    /// went through: a state that lasts an instant (a run that fails at once
    /// is `Running` only briefly) may be gone by then. Wait for the
    /// [`Event`] to see every step.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{MaxRestarts, RestartPolicy, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("flaky", |_ctx| async { Err::<(), _>("boom") })
    ///         .restart(RestartPolicy::new().delay(std::time::Duration::ZERO).max_restarts(MaxRestarts::AtMost(3))))
    ///     .build()?
    ///     .start();
    /// let status = handle.wait_status("flaky", |status| status.restart_count >= 2).await?;
    /// assert!(status.restart_count >= 2);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_status(&self, name: &str, done: impl Fn(&UnitStatus) -> bool) -> Result<UnitStatus, Error> {
        self.wait_until(name, "as waited for", Interest::ANY, |_, status| done(status), |_, _, _| false).await
    }

    async fn wait_until(
        &self,
        name: &str,
        wanted: &str,
        interest: Interest,
        reached: impl Fn(&Unit, &UnitStatus) -> bool,
        hopeless: impl Fn(&Unit, &Unit, &UnitStatus) -> bool,
    ) -> Result<UnitStatus, Error> {
        let (_, mut waited_on) = self.lookup(name)?;
        loop {
            let outcome = self
                .shared
                .changes
                .wait_for(&waited_on, interest, || {
                    let (group, unit) = match self.lookup(name) {
                        Ok(found) => found,
                        Err(error) => return Some(Err(error)),
                    };
                    if !Arc::ptr_eq(&unit, &waited_on) {
                        // Removed, and another unit added under its name:
                        // the wait goes on with that one.
                        return Some(Ok(Looked::Replaced(unit)));
                    }
                    let status = unit.status_in(&group, &self.shared.clock);
                    if reached(&unit, &status) {
                        return Some(Ok(Looked::Reached(status)));
                    }
                    let why = if self.shared.has_ended() {
                        " and the supervisor has ended"
                    } else if hopeless(&unit, &group, &status) {
                        " and will not restart unless started by hand"
                    } else {
                        return None;
                    };
                    Some(Err(Error::WillNotHappen {
                        unit: name.to_owned(),
                        wanted: wanted.to_owned(),
                        state: status.state,
                        why,
                    }))
                })
                .await?;
            match outcome {
                Looked::Reached(status) => return Ok(status),
                Looked::Replaced(unit) => waited_on = unit,
            }
        }
    }

    /// Stops every unit gracefully (each group's units in reverse start
    /// order, see [`ShutdownOrder`](crate::ShutdownOrder)) and reports how
    /// each stop went. The shutdown runs once, in a task of its own:
    /// concurrent and later calls, and callers that gave up waiting before,
    /// all get the same report.
    ///
    /// # Caveats
    ///
    /// Awaited from inside one of the supervisor's own tasks, it waits for
    /// that task's stop too, which waits for it: the task is dropped at the
    /// end of its grace period and reported `Forced`. To end the supervisor
    /// from a task, let the task end and make it
    /// [`critical`](crate::TaskSpec::critical), or spawn the shutdown and
    /// return.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("worker", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// let report = handle.shutdown().await;
    /// assert!(report.is_clean());
    /// assert_eq!(handle.shutdown().await, report);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown(&self) -> ShutdownReport {
        begin_shutdown(&self.shared);
        self.wait().await
    }

    /// Waits for the supervisor to end, for whatever reason (a shutdown, the
    /// root group giving up, a critical unit ending), and returns the report.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{ShutdownCause, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("main-job", |_ctx| async {}).critical()
    ///         .restart(supervisor::RestartPolicy::new().on(supervisor::RestartOn::Failure)))
    ///     .build()?
    ///     .start();
    /// let report = handle.wait().await;
    /// assert!(matches!(report.cause, ShutdownCause::CriticalEnded { failed: false, .. }));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait(&self) -> ShutdownReport {
        self.shared.ended().await.report()
    }

    /// Cuts every grace period short, for good: units still stopping, now or
    /// later (in a shutdown, a `stop_unit`, a `restart`, a failed liveness
    /// probe), are aborted or killed at once.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use std::time::Duration;
    /// use supervisor::{StopOutcome, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("stubborn", |_ctx| std::future::pending::<()>()).stop_timeout(Duration::from_secs(60)))
    ///     .build()?
    ///     .start();
    /// handle.wait_ready("stubborn").await?;
    /// handle.skip_grace();
    /// let report = handle.shutdown().await; // at once, not after 60 s
    /// assert_eq!(report.units[0].outcome, StopOutcome::Forced);
    /// # Ok(())
    /// # }
    /// ```
    pub fn skip_grace(&self) {
        self.shared.kill_now.cancel();
    }

    /// Whether a shutdown has begun (or the supervisor has ended).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("worker", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// assert!(!handle.is_shutting_down());
    /// handle.shutdown().await;
    /// assert!(handle.is_shutting_down());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn is_shutting_down(&self) -> bool {
        self.shared.is_shutting_down()
    }

    fn lookup(&self, path: &str) -> Result<(Arc<Unit>, Arc<Unit>), Error> {
        paths::lookup(&self.shared.root, path)
    }

    async fn control(&self, name: &str, op: Op) -> Result<(), Error> {
        let (group, unit) = self.lookup(name)?;
        let action = op.as_str();
        // Once a shutdown began, only a stop is taken (the shutdown stops the unit
        // anyway); every other call is refused.
        if op != Op::Stop && self.shared.is_shutting_down() {
            return Err(Error::ShuttingDown { action, unit: unit.path.to_string() });
        }
        let (reply, answer) = oneshot::channel();
        match self.send(&group, &unit.path, action, Msg::Control { unit: unit.clone(), op, reply }).await {
            // A group that is not running has every unit at rest.
            Err(_) if op == Op::Stop => return Ok(()),
            sent => sent?,
        }
        match answer.await {
            Ok(result) => result,
            // The group's run ended with the call in its mailbox.
            Err(_) if op == Op::Stop => Ok(()),
            Err(_) => Err(Error::ShuttingDown { action, unit: unit.path.to_string() }),
        }
    }

    /// Hands `msg` to the owner of `group`, once the group's run has begun
    /// if it is about to.
    async fn send(&self, group: &Unit, unit: &str, action: &'static str, msg: Msg) -> Result<(), Error> {
        // Handled at once if the owner is idle, and the answer is ready
        // when awaited: no hand-off to the owner's task and back.
        let msg = match group.group().and_then(GroupBody::owner_link) {
            Some(owner) => match owner.try_turn_for_caller(msg) {
                Ok(()) => return Ok(()),
                Err(msg) => msg,
            },
            None => msg,
        };
        let address = self.owner_address(group, action, || unit.to_owned()).await?;
        address.mailbox.send(msg).map_err(|_| self.shared.refusal(group, action, unit.to_owned()))
    }

    /// Where the owner of `group` takes calls, once the group's run has
    /// begun if it is about to. `unit`: the path the call is about, for
    /// the error if the group is not running.
    async fn owner_address(
        &self,
        group: &Unit,
        action: &'static str,
        unit: impl FnOnce() -> String,
    ) -> Result<OwnerAddress, Error> {
        self.shared
            .changes
            .wait_for(group, Interest::ANY, || match group.group().and_then(|body| body.owner()) {
                Some(address) => Some(Some(address)),
                None if group.state() == UnitState::Starting => None,
                None => Some(None),
            })
            .await
            .ok_or_else(|| self.shared.refusal(group, action, unit()))
    }
}

/// What a wait found when it looked at its unit.
enum Looked {
    /// The unit got where the wait wanted.
    Reached(UnitStatus),
    /// Another unit has the name now.
    Replaced(Arc<Unit>),
}

impl fmt::Debug for SupervisorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut states = Vec::new();
        paths::walk(&self.shared.root, &mut |unit| states.push((unit.path.clone(), unit.state())));
        f.debug_struct("SupervisorHandle")
            .field("units", &states)
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}
