//! What the user describes: tasks, daemons, groups and their restart
//! policies, and the checks they pass before anything runs.

pub(crate) mod daemon;
pub(crate) mod group;
pub(crate) mod guarded;
pub(crate) mod policy;
pub(crate) mod probe;
pub(crate) mod task;
pub(crate) mod validate;

pub(crate) use group::Spec;

use probe::Watching;

/// What every kind of unit may be told of its place among its siblings,
/// apart from its restart policy: one set of fields for tasks, daemons and
/// groups (a group has no `watching`).
#[derive(Debug, Clone, Default)]
pub(crate) struct UnitOptions {
    pub(crate) critical: bool,
    pub(crate) temporary: bool,
    pub(crate) depends_on: Vec<String>,
    pub(crate) watching: Option<Box<Watching>>,
}

impl UnitOptions {
    pub(crate) fn watching(&mut self) -> &mut Watching {
        self.watching.get_or_insert_with(Box::default)
    }
}
