//! Driving one run of a unit: an OS process and its captured output.

pub(crate) mod output;
pub(crate) mod process;
