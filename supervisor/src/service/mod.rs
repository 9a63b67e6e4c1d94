//! Running as a service, built on the public handle: health checks, the
//! HTTP probes and control API (stand-alone, or as routes for an
//! application's own server), metrics (as text, or through the `metrics`
//! facade), systemd notifications and the PID file.

pub(crate) mod health;
#[cfg(feature = "http")]
pub mod http;
pub(crate) mod metrics;
#[cfg(feature = "metrics")]
pub(crate) mod metrics_facade;
pub(crate) mod pidfile;
pub(crate) mod signals;

#[cfg(feature = "systemd")]
pub(crate) mod systemd;
