//! Support for the code the macros generate. Not public API: anything here
//! may change in any release.

#![allow(missing_docs, unreachable_pub)]

pub use std::convert::Into;
pub use std::future::Future;
pub use std::option::Option::{self, None, Some};
pub use std::result::Result::{self, Err, Ok};
pub use std::string::String;
pub use std::time::Duration;
pub use std::vec::Vec;

pub use crate::{
    Context, DaemonSpec, MaxRestarts, Output, RestartOn, RestartPolicy, ShutdownOrder, Signal, Supervisor,
    SupervisorBuilder, TaskSpec,
};

/// Builds a supervisor whose names and programs the macro has already checked.
pub fn build_manifest(builder: SupervisorBuilder) -> Supervisor {
    builder.build_unchecked()
}

/// Fails const evaluation with `message` when `a == b`: the check for names
/// only known after macro expansion (`task path;` takes its unit name from
/// the `#[supervised]` fn).
pub const fn assert_distinct_names(a: &str, b: &str, message: &str) {
    if str_eq(a, b) {
        panic!("{}", message);
    }
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
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
        assert!(str_eq("worker", "worker"));
        assert!(!str_eq("worker", "worker2"));
        assert!(!str_eq("a", "b"));
        assert_distinct_names("a", "b", "unused");
    }

    #[test]
    #[should_panic(expected = "`a` twice")]
    fn equal_names_fail_with_the_message() {
        assert_distinct_names("a", "a", "`a` twice");
    }
}
