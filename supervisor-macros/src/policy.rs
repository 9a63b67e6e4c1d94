//! Restart policy options (`restart`, `max`, `on`, backoff and window), read
//! into a `RestartPolicy` description and expanded to its builder calls.

use crate::duration::{self, DurationValue};
use crate::errors::Errors;
use crate::limits;
use crate::options::{self, MaxRestarts, RawOption};
use crate::suggest;
use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

/// The keys that configure the restart policy.
pub(crate) const KEYS: &[&str] =
    &["restart", "max", "on", "backoff", "max_delay", "jitter", "reset_after", "window", "window_max"];

const RESTART_ON: &[&str] = &["always", "failure", "never"];

/// When a run's end leads to a restart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum RestartOn {
    Always,
    Failure,
    Never,
}

/// The policy options that were given; `None` keeps the runtime default.
#[derive(Default)]
pub(crate) struct Policy {
    pub(crate) delay: Option<DurationValue>,
    pub(crate) max: Option<MaxRestarts>,
    pub(crate) on: Option<RestartOn>,
    pub(crate) backoff: Option<(f64, Ident)>,
    pub(crate) max_delay: Option<(DurationValue, Ident)>,
    pub(crate) jitter: Option<f64>,
    pub(crate) reset_after: Option<DurationValue>,
    pub(crate) window: Option<(DurationValue, Ident)>,
    pub(crate) window_max: Option<(u32, Ident)>,
}

impl Policy {
    /// Reads `option` if it is a policy key; `false` if it is not one.
    pub(crate) fn apply(&mut self, option: &RawOption, errors: &mut Errors) -> bool {
        let key = option.key.clone();
        match option.name().as_str() {
            "restart" => self.delay = errors.take(duration::parse(option)),
            "max" => self.max = errors.take(options::max_restarts(option)),
            "on" => self.on = errors.take(restart_on(option)),
            "backoff" => {
                self.backoff = errors
                    .take(options::float_in(option, limits::BACKOFF_MIN, f64::INFINITY, "2.0"))
                    .map(|factor| (factor, key));
            }
            "max_delay" => self.max_delay = errors.take(duration::parse(option)).map(|d| (d, key)),
            "jitter" => {
                let (min, max) = limits::JITTER.into_inner();
                self.jitter = errors.take(options::float_in(option, min, max, "0.1"));
            }
            "reset_after" => self.reset_after = errors.take(duration::parse(option)),
            "window" => {
                self.window = errors
                    .take(duration::parse(option).and_then(|window| {
                        if window.value.is_zero() {
                            Err(syn::Error::new(
                                window.span,
                                "the restart window must be longer than zero, e.g. `window = \"30s\"`",
                            ))
                        } else {
                            Ok(window)
                        }
                    }))
                    .map(|d| (d, key));
            }
            "window_max" => self.window_max = errors.take(options::count(option)).map(|n| (n, key)),
            _ => return false,
        }
        true
    }

    /// Whether any policy option was given.
    pub(crate) fn is_default(&self) -> bool {
        self.delay.is_none()
            && self.max.is_none()
            && self.on.is_none()
            && self.backoff.is_none()
            && self.max_delay.is_none()
            && self.jitter.is_none()
            && self.reset_after.is_none()
            && self.window.is_none()
            && self.window_max.is_none()
    }

    /// `.restart(RestartPolicy::new()...)`, or nothing for the defaults.
    pub(crate) fn expand(&self, private: &TokenStream) -> TokenStream {
        if self.is_default() {
            return TokenStream::new();
        }
        let setters = self.setters(private);
        quote!(.restart(#private::RestartPolicy::new() #setters))
    }

    /// The setter calls of the options given, to apply to a `RestartPolicy`.
    pub(crate) fn setters(&self, private: &TokenStream) -> TokenStream {
        let mut calls = TokenStream::new();
        if let Some(delay) = &self.delay {
            let delay = delay.expand(private);
            calls.extend(quote!(.delay(#delay)));
        }
        if let Some(max) = self.max {
            let max = match max {
                MaxRestarts::Unlimited => quote!(#private::MaxRestarts::Unlimited),
                MaxRestarts::AtMost(n) => quote!(#private::MaxRestarts::AtMost(#n)),
            };
            calls.extend(quote!(.max_restarts(#max)));
        }
        if let Some(on) = self.on {
            let on = match on {
                RestartOn::Always => quote!(Always),
                RestartOn::Failure => quote!(Failure),
                RestartOn::Never => quote!(Never),
            };
            calls.extend(quote!(.on(#private::RestartOn::#on)));
        }
        if let Some((factor, _)) = self.backoff {
            let factor = proc_macro2::Literal::f64_unsuffixed(factor);
            calls.extend(quote!(.backoff(#factor)));
        }
        if let Some((max_delay, _)) = &self.max_delay {
            let max_delay = max_delay.expand(private);
            calls.extend(quote!(.max_delay(#max_delay)));
        }
        if let Some(jitter) = self.jitter {
            let jitter = proc_macro2::Literal::f64_unsuffixed(jitter);
            calls.extend(quote!(.jitter(#jitter)));
        }
        if let Some(reset_after) = &self.reset_after {
            let reset_after = reset_after.expand(private);
            calls.extend(quote!(.reset_after(#reset_after)));
        }
        if let (Some((window, _)), Some((count, _))) = (&self.window, &self.window_max) {
            let window = window.expand(private);
            calls.extend(quote!(.window(#count, #window)));
        }
        calls
    }
}

/// `on = "always" | "failure" | "never"`.
fn restart_on(option: &RawOption) -> syn::Result<RestartOn> {
    let expected = "`on` takes \"always\", \"failure\" or \"never\", e.g. `on = \"failure\"`";
    let lit = options::string(option).map_err(|_| option.error(expected))?;
    match lit.value().as_str() {
        "always" => Ok(RestartOn::Always),
        "failure" => Ok(RestartOn::Failure),
        "never" => Ok(RestartOn::Never),
        other => {
            let hint = match suggest::closest(other, RESTART_ON) {
                Some(close) => format!(" (did you mean \"{close}\"?)"),
                None => String::new(),
            };
            Err(syn::Error::new(lit.span(), format!("unknown restart condition \"{other}\"{hint}; {expected}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::tests::options;
    use quote::quote;

    fn policy(tokens: TokenStream) -> (Policy, Errors) {
        let mut policy = Policy::default();
        let mut errors = Errors::default();
        for option in options(tokens) {
            assert!(policy.apply(&option, &mut errors), "{}", option.name());
        }
        (policy, errors)
    }

    fn expanded(tokens: TokenStream) -> String {
        let (policy, errors) = policy(tokens);
        errors.into_result().unwrap();
        policy.expand(&quote!(p)).to_string()
    }

    fn error(tokens: TokenStream) -> String {
        policy(tokens).1.into_result().unwrap_err().to_string()
    }

    #[test]
    fn defaults_expand_to_nothing() {
        assert_eq!(expanded(quote!()), "");
    }

    #[test]
    fn setters_apply_to_any_policy() {
        let (policy, _) = policy(quote!(on = "failure"));
        assert_eq!(policy.setters(&quote!(p)).to_string(), quote!(.on(p::RestartOn::Failure)).to_string());
    }

    #[test]
    fn expands_every_option() {
        assert_eq!(
            expanded(quote!(restart = "5s", max = -1, on = "failure")),
            quote!(.restart(p::RestartPolicy::new()
                .delay(p::Duration::new(5u64, 0u32))
                .max_restarts(p::MaxRestarts::Unlimited)
                .on(p::RestartOn::Failure)))
            .to_string()
        );
        assert_eq!(
            expanded(quote!(
                max = 3,
                backoff = 2,
                max_delay = "1m",
                jitter = 0.1,
                reset_after = "5m",
                window = "30s",
                window_max = 5,
                on = "never"
            )),
            quote!(.restart(p::RestartPolicy::new()
                .max_restarts(p::MaxRestarts::AtMost(3u32))
                .on(p::RestartOn::Never)
                .backoff(2.0)
                .max_delay(p::Duration::new(60u64, 0u32))
                .jitter(0.1)
                .reset_after(p::Duration::new(300u64, 0u32))
                .window(5u32, p::Duration::new(30u64, 0u32))))
            .to_string()
        );
        assert!(expanded(quote!(on = "always")).contains("RestartOn :: Always"));
    }

    #[test]
    fn rejects_bad_values() {
        assert!(error(quote!(on = "sometimes")).contains("unknown restart condition \"sometimes\""));
        assert!(error(quote!(on = "failed")).contains("did you mean \"failure\"?"));
        assert!(error(quote!(on = always)).contains("`on` takes \"always\", \"failure\" or \"never\""));
        assert!(error(quote!(window = "0s", window_max = 3)).contains("longer than zero"));
        assert!(error(quote!(backoff = 0.5)).contains("at least 1.0"));
        assert!(error(quote!(jitter = 2)).contains("from 0.0 to 1.0"));
    }

    #[test]
    fn ignores_other_keys() {
        let mut errors = Errors::default();
        let option = crate::options::tests::option(quote!(stop_timeout = "1s"));
        assert!(!Policy::default().apply(&option, &mut errors));
        assert!(errors.into_result().is_ok());
    }
}

/// The runtime accepts exactly what the macros accept: each range is tried
/// at and beyond its bounds, on both sides.
#[cfg(test)]
mod runtime_agrees {
    use crate::errors::Errors;
    use crate::limits::*;
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
