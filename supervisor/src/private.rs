//! Support for the code the macros generate. Not public API: anything here
//! may change in any release.

#![allow(missing_docs, unreachable_pub)]

pub use core::panic;
pub use std::convert::Into;
pub use std::future::Future;
pub use std::option::Option::{self, None, Some};
pub use std::result::Result::{self, Err, Ok};
pub use std::string::String;
pub use std::time::Duration;
pub use std::vec::Vec;

pub use crate::{
    Context, DaemonSpec, GroupSpec, MaxRestarts, Output, Probe, Readiness, RestartOn, RestartPolicy, ShutdownOrder,
    Signal, Strategy, Supervisor, SupervisorBuilder, SupervisorHandle, TaskSpec, UnitRef,
};

/// Builds a supervisor whose names and programs the macro has already checked.
pub fn build_manifest(builder: SupervisorBuilder) -> Supervisor {
    builder.build_unchecked()
}

/// `http("...")` in a manifest: `Probe::http`, which needs the `http`
/// feature; without it, the bound of `http_probe` fails on the probe and
/// says so.
#[diagnostic::on_unimplemented(
    message = "`http(...)` probes need the `http` feature of the supervisor crate",
    label = "an HTTP probe",
    note = "enable it in Cargo.toml: `tokio-supervisor = {{ version = \"...\", features = [\"http\"] }}`, or probe with `tcp(...)` or `exec(...)`"
)]
pub trait HttpProbes {}

/// The type `http_probe` is called with: `HttpProbes` only with the `http`
/// feature.
#[derive(Debug)]
pub struct HttpProbe;

#[cfg(feature = "http")]
impl HttpProbes for HttpProbe {}

/// `Probe::http(url)`, for the types that say the feature is on.
#[cfg(feature = "http")]
pub fn http_probe<T: HttpProbes>(url: &str) -> Probe {
    Probe::http(url)
}

/// Never called: the bound fails without the `http` feature.
#[cfg(not(feature = "http"))]
pub fn http_probe<T: HttpProbes>(_url: &str) -> Probe {
    unreachable!("`HttpProbes` has no impl without the `http` feature")
}

/// The path of the unit `name` in the group at `group`, for the typed form
/// of `supervise!` when the name is a `#[supervised]` fn's `NAME`.
pub fn unit_path(group: &str, name: &str) -> String {
    let mut path = String::with_capacity(group.len() + 1 + name.len());
    path.push_str(group);
    path.push('/');
    path.push_str(name);
    path
}

/// What `#[supervised]` puts next to an fn, for `supervise!`'s `task path;`
/// entries: the unit name, the spec, and the attribute's policy alone (so
/// that a manifest's options can be set on top of it).
pub trait Supervised {
    /// The unit name.
    const NAME: &'static str;
    /// The spec with the attribute's policy and settings.
    fn spec() -> TaskSpec;
    /// The attribute's restart policy.
    fn policy() -> RestartPolicy;
}

/// A `task path;` entry of `supervise!`, reached through an alias of the
/// path: the `#[supervised]` fn's spec, or (for the fallback type the alias
/// names when the path is a plain fn) an error on the entry. `F` is the
/// type of the path's value, so that a path that names nothing is only
/// rustc's error.
#[diagnostic::on_unimplemented(
    message = "`task path;` needs an #[supervised] fn, and this one is a plain fn",
    label = "not an #[supervised] fn",
    note = "mark the fn `#[supervised]`, or run it as it is with `task name = path;`, e.g. `task cleanup = cleanup;`"
)]
pub trait SupervisedEntry<F> {
    /// The spec of the `#[supervised]` fn.
    fn spec(f: F) -> TaskSpec;
    /// The spec with `policy` applied to the attribute's policy.
    fn spec_with(f: F, policy: fn(RestartPolicy) -> RestartPolicy) -> TaskSpec;
}

#[diagnostic::do_not_recommend]
impl<T: Supervised, F> SupervisedEntry<F> for T {
    fn spec(_: F) -> TaskSpec {
        T::spec()
    }

    fn spec_with(_: F, policy: fn(RestartPolicy) -> RestartPolicy) -> TaskSpec {
        T::spec().restart(policy(T::policy()))
    }
}

/// `critical = false` on a `task path;` entry: the `#[supervised]` fn's
/// spec, not critical whatever its attribute says.
pub fn not_critical(mut spec: TaskSpec) -> TaskSpec {
    spec.options.critical = false;
    spec
}

/// What the alias of a `task path;` entry names when the path is not an
/// `#[supervised]` fn: its `SupervisedEntry` impl has a bound that fails,
/// on the entry, for any type of the path's value but the error type of a
/// path that names nothing (which rustc reports itself).
#[derive(Debug)]
pub struct PlainFn;

impl PlainFn {
    /// Never a unit name (names cannot contain `/`), nor compared.
    pub const NAME: &'static str = "/";
}

#[diagnostic::do_not_recommend]
impl<F: NotSupervised> SupervisedEntry<F> for PlainFn {
    fn spec(_: F) -> TaskSpec {
        unreachable!("a plain fn's entry does not compile")
    }

    fn spec_with(_: F, _: fn(RestartPolicy) -> RestartPolicy) -> TaskSpec {
        unreachable!("a plain fn's entry does not compile")
    }
}

/// A trait without impls: the bound that fails for a plain fn.
pub trait NotSupervised {}

/// The parameter of an `#[supervised]` fn, made from the `Context` of a run.
#[diagnostic::on_unimplemented(
    message = "the parameter of a #[supervised] fn must be a `supervisor::Context`, not `{Self}`",
    label = "not `supervisor::Context`",
    note = "the fn is called with the `Context` of its run: write `ctx: supervisor::Context` (or `use supervisor::Context;`); `std::task::Context`, for one, is the context a future is polled with"
)]
pub trait FromContext {
    fn from_context(ctx: Context) -> Self;
}

impl FromContext for Context {
    #[inline]
    fn from_context(ctx: Context) -> Self {
        ctx
    }
}

/// Whether two unit names are equal, in a constant: the check of names only known
/// after expansion (`task path;` takes its unit name from the `#[supervised]`
/// fn). The generated constant panics itself, so that the error is spanned
/// on the manifest's entry.
pub const fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    // `PlainFn::NAME`: a `task path;` entry that is already an error.
    if a.len() != b.len() || a.is_empty() || a[0] == b'/' {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_by_content() {
        const { assert!(same_name("worker", "worker")) };
        assert!(!same_name("worker", "worker2"));
        assert!(!same_name("a", "b"));
        assert!(!same_name(PlainFn::NAME, PlainFn::NAME));
    }
}
