//! What the user describes: tasks, daemons, groups and their restart
//! policies, and the checks they pass before anything runs.

pub(crate) mod daemon;
pub(crate) mod group;
pub(crate) mod policy;
pub(crate) mod probe;
pub(crate) mod task;
pub(crate) mod validate;

pub(crate) use group::Spec;
