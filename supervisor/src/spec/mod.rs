//! What the user describes: tasks, daemons, groups and their restart
//! policies, and the checks they pass before anything runs.

pub(crate) mod daemon;
pub(crate) mod group;
pub(crate) mod policy;
pub(crate) mod probe;
pub(crate) mod task;
pub(crate) mod validate;

use crate::{DaemonSpec, GroupSpec, TaskSpec};

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
            Spec::Task(spec) => &spec.depends_on,
            Spec::Daemon(spec) => &spec.depends_on,
            Spec::Group(spec) => &spec.depends_on,
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
