//! The numeric ranges of the options, in one place. The runtime checks the
//! same ranges in `build()`; the tests build supervisors at each bound to
//! prove that both sides agree.

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

/// The runtime accepts exactly what the macros accept: each range is tried
/// at and beyond its bounds, on both sides.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::Errors;
    use crate::options::tests::option;
    use crate::policy::Policy;
    use proc_macro2::TokenStream;
    use quote::quote;
    use std::time::Duration;
    use supervisor::{MaxRestarts, RestartPolicy, Supervisor, TaskSpec};

    /// Whether the macros accept the policy option.
    fn macro_accepts(tokens: TokenStream) -> bool {
        let mut errors = Errors::default();
        assert!(Policy::default().apply(&option(tokens), &mut errors));
        errors.into_result().is_ok()
    }

    /// Whether `build()` accepts a task with the policy.
    fn runtime_accepts(policy: RestartPolicy) -> bool {
        let task = TaskSpec::new("task", |_ctx| async {}).restart(policy);
        Supervisor::builder().task(task).build().is_ok()
    }

    #[test]
    fn backoff() {
        for factor in [BACKOFF_MIN - 0.01, BACKOFF_MIN, BACKOFF_MIN + 1.0, 1e300] {
            let literal = proc_macro2::Literal::f64_unsuffixed(factor);
            assert_eq!(
                macro_accepts(quote!(backoff = #literal)),
                runtime_accepts(RestartPolicy::new().backoff(factor)),
                "backoff = {factor}"
            );
        }
        assert!(!runtime_accepts(RestartPolicy::new().backoff(f64::INFINITY)));
    }

    #[test]
    fn jitter() {
        let (min, max) = JITTER.into_inner();
        for fraction in [min - 0.01, min, (min + max) / 2.0, max, max + 0.01] {
            let literal = proc_macro2::Literal::f64_unsuffixed(fraction.abs());
            let tokens = if fraction < 0.0 { quote!(jitter = -#literal) } else { quote!(jitter = #literal) };
            assert_eq!(
                macro_accepts(tokens),
                runtime_accepts(RestartPolicy::new().jitter(fraction)),
                "jitter = {fraction}"
            );
        }
    }

    #[test]
    fn window() {
        assert!(!macro_accepts(quote!(window = "0s")));
        assert!(!runtime_accepts(RestartPolicy::new().window(3, Duration::ZERO)));
        assert!(macro_accepts(quote!(window = "1ns")));
        assert!(runtime_accepts(RestartPolicy::new().window(3, Duration::from_nanos(1))));
    }

    #[test]
    fn unlimited_restarts() {
        let max = i64::try_from(MAX_UNLIMITED).unwrap();
        assert_eq!(MaxRestarts::from(max), MaxRestarts::Unlimited);
        assert_eq!(MaxRestarts::from(max + 1), MaxRestarts::AtMost(0));
        assert!(macro_accepts(quote!(max = -1)) && !macro_accepts(quote!(max = -2)));
    }
}
