//! Driving one run of a unit: a task's future, an OS process, its captured
//! output, its notify socket and its watchdog.

#[cfg_attr(not(test), allow(dead_code, reason = "for the engine's notify readiness and watchdog"))]
pub(crate) mod notify;
pub(crate) mod output;
pub(crate) mod probe;
pub(crate) mod process;
pub(crate) mod task;
#[cfg_attr(not(test), allow(dead_code, reason = "for the engine's watchdog of tasks and processes"))]
pub(crate) mod watchdog;
