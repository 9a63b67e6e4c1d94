//! Running as a service, built on the public handle: health checks, the
//! HTTP probes, systemd notifications and the PID file.

pub(crate) mod health;
#[cfg(feature = "http")]
pub(crate) mod http;
pub(crate) mod metrics;
pub(crate) mod pidfile;
pub(crate) mod signals;

#[cfg(feature = "systemd")]
pub(crate) mod systemd;
