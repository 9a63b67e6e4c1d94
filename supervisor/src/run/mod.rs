//! Driving one run of a unit: a task's future, an OS process, its captured
//! output, its notify socket and its watchdog.

pub(crate) mod io_driver;
pub(crate) mod notify;
pub(crate) mod output;
pub(crate) mod probe;
pub(crate) mod process;
pub(crate) mod task;
pub(crate) mod watchdog;
