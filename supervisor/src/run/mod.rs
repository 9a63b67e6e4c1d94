//! Driving one run of a unit: a task's future, an OS process and its
//! captured output.

pub(crate) mod output;
pub(crate) mod probe;
pub(crate) mod process;
pub(crate) mod task;
