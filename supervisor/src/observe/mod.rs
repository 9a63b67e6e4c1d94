//! What can be seen of a running supervisor: status snapshots and events.

pub(crate) mod event;
pub(crate) mod report;
pub(crate) mod status;
