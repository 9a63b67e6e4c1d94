//! [`UnitRef`]: one unit of a running supervisor, named once.

use std::borrow::Cow;
use std::fmt;

use crate::{Error, Signal, Spec, SupervisorHandle, UnitReport, UnitState, UnitStatus};

/// One unit of a running supervisor: a [`SupervisorHandle`] and the unit's
/// path, so that calls need no name. The typed form of `supervise!` gives a
/// field of this type per unit, so that a misspelt unit is a compile error;
/// [`SupervisorHandle::unit`] makes one at run time.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), supervisor::Error> {
/// use supervisor::{Context, GroupSpec, Supervisor, TaskSpec};
///
/// let handle = Supervisor::builder()
///     .group(GroupSpec::new("storage").task(TaskSpec::new("db", |ctx: Context| async move { ctx.cancelled().await })))
///     .build()?
///     .start();
/// let db = handle.unit("storage/db");
/// db.wait_ready().await?;
/// db.restart().await?;
/// assert_eq!(db.status().unwrap().restart_count, 0);
/// handle.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct UnitRef {
    handle: SupervisorHandle,
    path: Cow<'static, str>,
}

impl UnitRef {
    pub(crate) fn new(handle: SupervisorHandle, path: Cow<'static, str>) -> Self {
        UnitRef { handle, path }
    }

    /// The unit's path.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::Supervisor;
    ///
    /// let handle = Supervisor::builder().build()?.start();
    /// assert_eq!(handle.unit("storage/db").path(), "storage/db");
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The handle of the unit's supervisor.
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
    /// let worker = handle.unit("worker");
    /// assert_eq!(worker.handle().unit_names(), ["worker"]);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn handle(&self) -> &SupervisorHandle {
        &self.handle
    }

    /// A snapshot of the unit; `None` once it has been removed.
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
    /// let worker = handle.unit("worker");
    /// worker.wait_ready().await?;
    /// assert_eq!(worker.status().unwrap().state, UnitState::Running);
    /// worker.remove().await?;
    /// assert!(worker.status().is_none());
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn status(&self) -> Option<UnitStatus> {
        self.handle.status(&self.path)
    }

    /// [`SupervisorHandle::restart`] for this unit.
    ///
    /// # Errors
    ///
    /// As [`SupervisorHandle::restart`].
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
    /// let worker = handle.unit("worker");
    /// worker.wait_ready().await?;
    /// worker.restart().await?;
    /// assert_eq!(worker.wait_ready().await?.state, UnitState::Running);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn restart(&self) -> Result<(), Error> {
        self.handle.restart(&self.path).await
    }

    /// [`SupervisorHandle::stop_unit`] for this unit.
    ///
    /// # Errors
    ///
    /// As [`SupervisorHandle::stop_unit`].
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
    /// let worker = handle.unit("worker");
    /// worker.wait_ready().await?;
    /// worker.stop().await?;
    /// assert_eq!(worker.status().unwrap().state, UnitState::Stopped);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn stop(&self) -> Result<(), Error> {
        self.handle.stop_unit(&self.path).await
    }

    /// [`SupervisorHandle::start_unit`] for this unit.
    ///
    /// # Errors
    ///
    /// As [`SupervisorHandle::start_unit`].
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
    /// let worker = handle.unit("worker");
    /// worker.stop().await?;
    /// worker.start().await?;
    /// assert_eq!(worker.wait_ready().await?.state, UnitState::Running);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start(&self) -> Result<(), Error> {
        self.handle.start_unit(&self.path).await
    }

    /// [`SupervisorHandle::remove`] for this unit.
    ///
    /// # Errors
    ///
    /// As [`SupervisorHandle::remove`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, StopOutcome, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("worker", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// let worker = handle.unit("worker");
    /// worker.wait_ready().await?;
    /// let report = worker.remove().await?;
    /// assert_eq!(report.outcome, StopOutcome::Graceful);
    /// assert!(handle.status("worker").is_none());
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn remove(&self) -> Result<UnitReport, Error> {
        self.handle.remove(&self.path).await
    }

    /// [`SupervisorHandle::pause_restarts`] for this unit.
    ///
    /// # Errors
    ///
    /// As [`SupervisorHandle::pause_restarts`].
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
    /// let worker = handle.unit("worker");
    /// worker.pause_restarts().await?;
    /// assert!(worker.status().unwrap().restarts_paused);
    /// worker.resume_restarts().await?;
    /// assert!(!worker.status().unwrap().restarts_paused);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn pause_restarts(&self) -> Result<(), Error> {
        self.handle.pause_restarts(&self.path).await
    }

    /// [`SupervisorHandle::resume_restarts`] for this unit; see
    /// [`pause_restarts`](Self::pause_restarts).
    ///
    /// # Errors
    ///
    /// As [`SupervisorHandle::resume_restarts`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::Supervisor;
    ///
    /// let handle = Supervisor::builder().build()?.start();
    /// assert!(handle.unit("nope").resume_restarts().await.is_err());
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn resume_restarts(&self) -> Result<(), Error> {
        self.handle.resume_restarts(&self.path).await
    }

    /// [`SupervisorHandle::add_to`] this unit, a group: adds a unit to it
    /// and starts it.
    ///
    /// # Errors
    ///
    /// As [`SupervisorHandle::add_to`]: [`Error::WrongKind`] when this unit
    /// is not a group.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, GroupSpec, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder().group(GroupSpec::new("jobs")).build()?.start();
    /// let jobs = handle.unit("jobs");
    /// jobs.add(TaskSpec::new("job-7", |ctx: Context| async move { ctx.cancelled().await })).await?;
    /// assert!(handle.unit("jobs/job-7").wait_ready().await?.running);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn add(&self, spec: impl Into<Spec>) -> Result<(), Error> {
        self.handle.add_to(&self.path, spec).await
    }

    /// [`SupervisorHandle::wait_ready`] for this unit.
    ///
    /// # Errors
    ///
    /// As [`SupervisorHandle::wait_ready`].
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
    /// let worker = handle.unit("worker");
    /// let status = worker.wait_ready().await?;
    /// assert!(status.ready && status.running);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_ready(&self) -> Result<UnitStatus, Error> {
        self.handle.wait_ready(&self.path).await
    }

    /// [`SupervisorHandle::wait_state`] for this unit.
    ///
    /// # Errors
    ///
    /// As [`SupervisorHandle::wait_state`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{DaemonSpec, RestartOn, RestartPolicy, Supervisor, UnitState};
    ///
    /// let handle = Supervisor::builder()
    ///     .daemon(DaemonSpec::new("hello", "true").restart(RestartPolicy::new().on(RestartOn::Never)))
    ///     .build()?
    ///     .start();
    /// let status = handle.unit("hello").wait_state(UnitState::Exited).await?;
    /// assert_eq!(status.state, UnitState::Exited);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_state(&self, state: UnitState) -> Result<UnitStatus, Error> {
        self.handle.wait_state(&self.path, state).await
    }

    /// [`SupervisorHandle::wait_status`] for this unit: until its status
    /// satisfies `done`.
    ///
    /// # Errors
    ///
    /// As [`SupervisorHandle::wait_status`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use std::time::Duration;
    /// use supervisor::{MaxRestarts, RestartPolicy, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("flaky", |_ctx| async { Err::<(), _>("boom") })
    ///         .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(3))))
    ///     .build()?
    ///     .start();
    /// let status = handle.unit("flaky").wait_status(|status| status.restart_count >= 2).await?;
    /// assert!(status.restart_count >= 2);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_status(&self, done: impl Fn(&UnitStatus) -> bool) -> Result<UnitStatus, Error> {
        self.handle.wait_status(&self.path, done).await
    }

    /// [`SupervisorHandle::tail`] for this unit.
    ///
    /// # Errors
    ///
    /// As [`SupervisorHandle::tail`].
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
    /// let hello = handle.unit("hello");
    /// hello.wait_state(UnitState::Exited).await?;
    /// assert_eq!(hello.tail(10)?, ["hello"]);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn tail(&self, lines: usize) -> Result<Vec<String>, Error> {
        self.handle.tail(&self.path, lines)
    }

    /// [`SupervisorHandle::signal`] for this unit.
    ///
    /// # Errors
    ///
    /// As [`SupervisorHandle::signal`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, DaemonSpec, Error, Signal, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .daemon(DaemonSpec::new("sleeper", "sleep").arg("30"))
    ///     .task(TaskSpec::new("worker", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// let sleeper = handle.unit("sleeper");
    /// sleeper.wait_ready().await?;
    /// sleeper.signal(Signal::CONT)?;
    /// assert!(matches!(handle.unit("worker").signal(Signal::CONT), Err(Error::WrongKind { .. })));
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn signal(&self, signal: Signal) -> Result<(), Error> {
        self.handle.signal(&self.path, signal)
    }
}

impl fmt::Debug for UnitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnitRef").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SupervisorHandle {
    /// A [`UnitRef`] for the unit at `path`, whether or not it exists (yet):
    /// its calls say [`Error::UnknownUnit`] when it does not.
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
    /// let api = handle.unit("api");
    /// assert_eq!(api.path(), "api");
    /// assert!(api.status().is_some());
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn unit(&self, path: impl Into<Cow<'static, str>>) -> UnitRef {
        UnitRef::new(self.clone(), path.into())
    }
}
