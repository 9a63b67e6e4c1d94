//! Groups of units: [`GroupSpec`] and the [`Strategy`] its owner follows when
//! one of its units fails.

use std::fmt;
use std::time::Duration;

use crate::spec::UnitOptions;
use crate::{DaemonSpec, RestartPolicy, Strategy, TaskSpec};

/// How many levels of groups a tree may have: a group in the root group is
/// at level 1. Deeper trees are a build error ([`Error::TooDeep`](crate::Error::TooDeep)),
/// from `build()` and from `add_to` alike.
///
/// Each group's owner starts the groups nested in it on its own stack, and
/// the supervisor walks the tree for statuses and reports: a bound keeps
/// every walk far from the end of the smallest thread stack tokio gives.
///
/// # Examples
///
/// ```
/// use supervisor::{Error, GroupSpec, MAX_GROUP_DEPTH, Supervisor};
///
/// let nested = |levels: usize| (1..levels).fold(GroupSpec::new("g"), |inner, _| GroupSpec::new("g").group(inner));
/// assert!(Supervisor::builder().group(nested(MAX_GROUP_DEPTH)).build().is_ok());
/// let deeper = Supervisor::builder().group(nested(MAX_GROUP_DEPTH + 1)).build();
/// assert!(matches!(deeper, Err(Error::TooDeep { depth, .. }) if depth == MAX_GROUP_DEPTH + 1));
/// ```
pub const MAX_GROUP_DEPTH: usize = 64;

/// At most `max` restarts among a group's units within `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IntensityLimit {
    pub(crate) max: u32,
    pub(crate) period: Duration,
}

/// A group of units supervised together: a unit of its parent whose run is
/// the supervision of its own units.
///
/// Its units are named by path: the unit `postgres` in the group `storage`
/// is `"storage/postgres"` in every handle call, status, event and report.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use supervisor::{Context, DaemonSpec, GroupSpec, MaxRestarts, RestartPolicy, Strategy, Supervisor, TaskSpec};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), supervisor::Error> {
/// let storage = GroupSpec::new("storage")
///     .strategy(Strategy::RestForOne)
///     .intensity(3, Duration::from_secs(30))
///     .restart(RestartPolicy::new().delay(Duration::from_secs(5)).max_restarts(MaxRestarts::AtMost(2)))
///     .daemon(DaemonSpec::new("db", "sleep").arg("60"))
///     .task(TaskSpec::new("cache", |ctx: Context| async move { ctx.cancelled().await }));
/// let handle = Supervisor::builder().group(storage).build()?.start();
/// assert_eq!(handle.unit_names(), ["storage", "storage/db", "storage/cache"]);
/// handle.wait_ready("storage").await?;
/// handle.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[must_use = "a spec does nothing until it is added to a supervisor with `.group(spec)`"]
pub struct GroupSpec {
    pub(crate) name: String,
    pub(crate) units: Vec<Spec>,
    /// The rest, out of line, as a daemon's: a [`Spec`] is as large as the
    /// largest kind, and a builder keeps a list of them.
    pub(crate) parts: Box<GroupParts>,
}

/// A group's settings, apart from its name and units.
pub(crate) struct GroupParts {
    pub(crate) strategy: Strategy,
    pub(crate) intensity: Option<IntensityLimit>,
    pub(crate) policy: RestartPolicy,
    pub(crate) options: UnitOptions,
}

impl GroupSpec {
    /// An empty group named `name`, with the [`OneForOne`](Strategy::OneForOne)
    /// strategy, no intensity limit, and the default restart policy.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::{GroupSpec, Supervisor};
    ///
    /// let storage = GroupSpec::new("storage");
    /// assert_eq!(storage.name(), "storage");
    /// assert!(Supervisor::builder().group(storage).build().is_ok());
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        GroupSpec {
            name: name.into(),
            units: Vec::new(),
            parts: Box::new(GroupParts {
                strategy: Strategy::default(),
                intensity: None,
                policy: RestartPolicy::default(),
                options: UnitOptions::default(),
            }),
        }
    }

    /// Adds an async task.
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
    /// assert_eq!(handle.wait_ready("jobs/a").await?.kind, UnitKind::Task);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn task(mut self, spec: TaskSpec) -> Self {
        self.units.push(Spec::Task(spec));
        self
    }

    /// Adds an external process.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{DaemonSpec, GroupSpec, Supervisor, UnitKind};
    ///
    /// let handle = Supervisor::builder()
    ///     .group(GroupSpec::new("storage").daemon(DaemonSpec::new("db", "sleep").arg("30")))
    ///     .build()?
    ///     .start();
    /// assert_eq!(handle.wait_ready("storage/db").await?.kind, UnitKind::Process);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn daemon(mut self, spec: DaemonSpec) -> Self {
        self.units.push(Spec::Daemon(spec));
        self
    }

    /// Adds a nested group.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, GroupSpec, Supervisor, TaskSpec, UnitKind};
    ///
    /// let handle = Supervisor::builder()
    ///     .group(GroupSpec::new("outer").group(GroupSpec::new("inner").task(TaskSpec::new("a", |ctx: Context| async move { ctx.cancelled().await }))))
    ///     .build()?
    ///     .start();
    /// assert_eq!(handle.status("outer/inner").unwrap().kind, UnitKind::Group);
    /// handle.wait_ready("outer/inner/a").await?;
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn group(mut self, spec: GroupSpec) -> Self {
        self.units.push(Spec::Group(spec));
        self
    }

    /// What happens to the other units when one ends and is restarted
    /// (default [`Strategy::OneForOne`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::{GroupSpec, Strategy, Supervisor, TaskSpec};
    ///
    /// let pair = GroupSpec::new("pair")
    ///     .strategy(Strategy::OneForAll)
    ///     .task(TaskSpec::new("reader", |_ctx| async {}))
    ///     .task(TaskSpec::new("writer", |_ctx| async {}));
    /// assert!(Supervisor::builder().group(pair).build().is_ok());
    /// ```
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.parts.strategy = strategy;
        self
    }

    /// Gives up when more than `max_restarts` restarts happen among the
    /// group's units within `period` (a strategy's collective restart counts
    /// once; one exactly `period` earlier is within it, as in OTP): the
    /// group stops its units, and its run ends as a failure that its parent
    /// handles like any unit's. A restart counts from the time its unit's
    /// policy decides on it, so that restarts waiting out their delays
    /// together cannot exceed the limit; one cancelled during its delay (by
    /// `stop_unit`, `restart` or `remove`; `start_unit` leaves a unit that
    /// waits to restart as it is) does not count. `max_restarts` must be at least 1
    /// and `period` longer than zero; checked by `build()`.
    ///
    /// # Caveats
    ///
    /// Above 1,024 restarts, their times are kept in 1,024 steps of the
    /// period, as for [`RestartPolicy::window`](crate::RestartPolicy::window).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::{GroupSpec, Supervisor};
    ///
    /// let ok = GroupSpec::new("jobs").intensity(5, Duration::from_secs(60));
    /// assert!(Supervisor::builder().group(ok).build().is_ok());
    /// let never = GroupSpec::new("jobs").intensity(0, Duration::from_secs(60));
    /// assert!(Supervisor::builder().group(never).build().is_err());
    /// ```
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.parts.intensity = Some(IntensityLimit { max: max_restarts, period });
        self
    }

    /// How the parent restarts this group once its run has ended (it gave
    /// up, or a critical unit ended).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::{GroupSpec, RestartPolicy, Supervisor};
    ///
    /// let storage = GroupSpec::new("storage").restart(RestartPolicy::new().delay(Duration::from_secs(1)));
    /// assert!(Supervisor::builder().group(storage).build().is_ok());
    /// ```
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.parts.policy = policy;
        self
    }

    /// When this group ends for good, its parent ends too (see
    /// [`TaskSpec::critical`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{GroupSpec, RestartOn, RestartPolicy, ShutdownCause, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .group(GroupSpec::new("batch")
    ///         .task(TaskSpec::new("job", |_ctx| async {}).critical().restart(RestartPolicy::new().on(RestartOn::Never)))
    ///         .restart(RestartPolicy::new().on(RestartOn::Never))
    ///         .critical())
    ///     .build()?
    ///     .start();
    /// let report = handle.wait().await;
    /// assert!(matches!(report.cause, ShutdownCause::CriticalEnded { ref unit, failed: false } if unit == "batch"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn critical(mut self) -> Self {
        self.parts.options.critical = true;
        self
    }

    /// Forgets the group, with its units, once it ends for good; see
    /// [`TaskSpec::temporary`].
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::{GroupSpec, Supervisor, TaskSpec};
    ///
    /// let batch = GroupSpec::new("batch").task(TaskSpec::new("job", |_ctx| async {})).temporary();
    /// assert!(Supervisor::builder().group(batch).build().is_ok());
    /// ```
    pub fn temporary(mut self) -> Self {
        self.parts.options.temporary = true;
        self
    }

    /// Starts this group only once these units of its parent group are
    /// ready; see [`TaskSpec::depends_on`].
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::GroupSpec;
    ///
    /// let workers = GroupSpec::new("workers").depends_on(["storage"]);
    /// # let _ = workers;
    /// ```
    pub fn depends_on<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.parts.options.depends_on.extend(names.into_iter().map(Into::into));
        self
    }

    /// The group's name.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::GroupSpec;
    ///
    /// assert_eq!(GroupSpec::new("storage").name(), "storage");
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for GroupSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupSpec")
            .field("name", &self.name)
            .field("units", &self.units)
            .field("strategy", &self.parts.strategy)
            .field("intensity", &self.parts.intensity)
            .field("policy", &self.parts.policy)
            .field("options", &self.parts.options)
            .finish()
    }
}

/// Any unit: what [`SupervisorHandle::add`](crate::SupervisorHandle::add)
/// takes. Made with `.into()` from a [`TaskSpec`], a [`DaemonSpec`] or a
/// [`GroupSpec`].
///
/// # Examples
///
/// ```
/// use supervisor::{DaemonSpec, GroupSpec, Spec, TaskSpec};
///
/// let specs: Vec<Spec> = vec![
///     TaskSpec::new("job", |_ctx| async {}).into(),
///     DaemonSpec::new("sleeper", "sleep").arg("5").into(),
///     GroupSpec::new("batch").into(),
/// ];
/// assert_eq!(specs[1].name(), "sleeper");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Spec {
    /// An async task.
    Task(TaskSpec),
    /// An external process.
    Daemon(DaemonSpec),
    /// A group of units.
    Group(GroupSpec),
}

impl Spec {
    /// The unit's name (not its path).
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::{Spec, TaskSpec};
    ///
    /// let spec: Spec = TaskSpec::new("job", |_ctx| async {}).into();
    /// assert_eq!(spec.name(), "job");
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Spec::Task(spec) => spec.name(),
            Spec::Daemon(spec) => spec.name(),
            Spec::Group(spec) => spec.name(),
        }
    }
}

impl Spec {
    /// The names of the siblings this unit depends on.
    pub(crate) fn depends_on(&self) -> &[String] {
        match self {
            Spec::Task(spec) => &spec.options.depends_on,
            Spec::Daemon(spec) => &spec.parts.options.depends_on,
            Spec::Group(spec) => &spec.parts.options.depends_on,
        }
    }
}

impl From<TaskSpec> for Spec {
    fn from(spec: TaskSpec) -> Self {
        Spec::Task(spec)
    }
}

impl From<DaemonSpec> for Spec {
    fn from(spec: DaemonSpec) -> Self {
        Spec::Daemon(spec)
    }
}

impl From<GroupSpec> for Spec {
    fn from(spec: GroupSpec) -> Self {
        Spec::Group(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A builder keeps its units' specs in a list, each the size of the
    /// largest kind: a daemon's and a group's settings are boxed so that
    /// a list of 10k tasks is not twice as large as its tasks.
    #[test]
    fn a_spec_is_no_larger_than_a_task_spec() {
        let (spec, task) = (std::mem::size_of::<Spec>(), std::mem::size_of::<TaskSpec>());
        assert!(spec <= task, "a spec takes {spec} bytes, a task spec {task}");
        assert!(std::mem::size_of::<DaemonSpec>() <= task);
        assert!(std::mem::size_of::<GroupSpec>() <= task);
    }
}
