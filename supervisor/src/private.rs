//! Support for the code the macros generate. Not public API: anything here
//! may change in any release.

#![allow(missing_docs, unreachable_pub)]

pub use core::panic;
// The primitives the generated code names, through this path: a caller may
// have a type of its own called `str` or `bool` in scope.
pub use core::primitive::{bool, str, u32};
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

/// The first unit among the `at` before unit `at` of a group whose name is
/// the same as its own, in a constant; only pairs of which at least one is
/// a `task path;` entry (`supervised`) are compared: `valid` compared the
/// names written out. One constant per entry, each over the group's list
/// of names, keeps the expansion and its evaluation linear in the entries
/// where a constant per pair made both quadratic (400 entries: 29 s and
/// 2 GB to compile).
pub const fn earlier_same_name(names: &[&str], supervised: &[bool], at: usize) -> Option<usize> {
    let mut earlier = 0;
    while earlier < at {
        if (supervised[at] || supervised[earlier]) && same_name(names[earlier], names[at]) {
            return Some(earlier);
        }
        earlier += 1;
    }
    None
}

/// A panic message put together in a constant, which cannot format one:
/// the parts are copied one after the other, up to what fits.
#[derive(Debug)]
pub struct Message {
    bytes: [u8; Message::CAPACITY],
    len: usize,
}

impl Message {
    const CAPACITY: usize = 4096;

    pub const fn of(parts: &[&str]) -> Message {
        let mut message = Message { bytes: [0; Message::CAPACITY], len: 0 };
        let mut part = 0;
        while part < parts.len() {
            let bytes = parts[part].as_bytes();
            let mut at = 0;
            while at < bytes.len() && message.len < Message::CAPACITY {
                message.bytes[message.len] = bytes[at];
                message.len += 1;
                at += 1;
            }
            part += 1;
        }
        // Cut short: a character cut in the middle goes.
        while message.len > 0 && core::str::from_utf8(message.bytes.split_at(message.len).0).is_err() {
            message.len -= 1;
        }
        message
    }

    pub const fn as_str(&self) -> &str {
        match core::str::from_utf8(self.bytes.split_at(self.len).0) {
            Ok(text) => text,
            Err(_) => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_earlier_unit_of_the_same_name_is_found_where_a_task_path_takes_part() {
        const NAMES: &[&str] = &["a", "b", "a", "b", "c", "c"];
        const SUPERVISED: &[bool] = &[false, true, false, false, false, false];
        // "a" twice, written out both times: `valid`'s to compare.
        const { assert!(earlier_same_name(NAMES, SUPERVISED, 2).is_none()) };
        assert_eq!(earlier_same_name(NAMES, SUPERVISED, 3), Some(1));
        assert_eq!(earlier_same_name(NAMES, &[false, false, false, false, false, true], 5), Some(4));
        assert_eq!(earlier_same_name(NAMES, &[true; 6], 2), Some(0));
        assert_eq!(earlier_same_name(NAMES, &[true; 6], 1), None);
        assert_eq!(earlier_same_name(NAMES, &[true; 6], 0), None);
    }

    #[test]
    fn a_message_is_its_parts_one_after_the_other_and_cut_at_a_character() {
        const MESSAGE: Message = Message::of(&["`task a;` has", " the name", ""]);
        assert_eq!(MESSAGE.as_str(), "`task a;` has the name");
        let long = "é".repeat(Message::CAPACITY);
        let cut = Message::of(&["x", &long]);
        assert_eq!(cut.as_str().len(), Message::CAPACITY - 1, "the half of an `é` that fitted is left out");
        assert!(cut.as_str().starts_with("xé"));
    }

    #[test]
    fn names_compare_by_content() {
        const { assert!(same_name("worker", "worker")) };
        assert!(!same_name("worker", "worker2"));
        assert!(!same_name("a", "b"));
        assert!(!same_name(PlainFn::NAME, PlainFn::NAME));
    }
}
