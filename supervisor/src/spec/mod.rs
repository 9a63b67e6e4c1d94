//! What the user describes: tasks, daemons and their restart policies.

pub(crate) mod daemon;
pub(crate) mod policy;
pub(crate) mod task;
