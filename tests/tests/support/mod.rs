//! Helpers shared by the integration tests that need them.

pub(crate) mod notify;
