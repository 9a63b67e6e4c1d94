//! The numeric ranges of the options, in one place. The runtime checks the
//! same ranges in `build()`; the tests of `policy` (restart policies) and of
//! `ast::unit` (exit codes, intensity, probe thresholds) build supervisors
//! at each bound to prove that both sides agree.

use std::ops::RangeInclusive;

/// `max = -1` is unlimited; anything below is an error.
pub(crate) const MAX_UNLIMITED: i128 = -1;

/// `backoff`: a finite factor of at least this.
pub(crate) const BACKOFF_MIN: f64 = 1.0;

/// `jitter`: a fraction of the delay.
pub(crate) const JITTER: RangeInclusive<f64> = 0.0..=1.0;

/// `success_codes`: process exit codes.
pub(crate) const EXIT_CODES: RangeInclusive<i128> = 0..=255;

/// `readiness_failures`, `liveness_successes` and the like: how many probe
/// results in a row count.
pub(crate) const PROBE_THRESHOLD_MIN: u32 = 1;

/// `liveness_successes`: the only value, as in Kubernetes.
pub(crate) const LIVENESS_SUCCESSES: u32 = 1;

/// `intensity`: restarts a group allows within its period; 0 would give up
/// at the first failure.
pub(crate) const INTENSITY_MIN: u32 = 1;

/// Levels of groups a manifest may nest: a group in the root is at level 1.
pub(crate) const MAX_GROUP_DEPTH: usize = 64;
