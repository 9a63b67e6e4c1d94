//! Whether the tokio runtime a process or a probe would run on has its IO
//! driver.
//!
//! A child's exit, its output, its notify socket and a probe's connection
//! are all watched by that driver. Without it (a runtime built with
//! `enable_time()` alone), tokio panics once the child has been spawned,
//! and the child, in a process group of its own, is left running with no
//! one to stop it. Tokio tells whether a runtime has the driver only by
//! that panic: it is provoked once per runtime and thread, before anything
//! is spawned, and the run fails with [`MISSING`] instead.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::runtime::{Handle, Id};

/// Why a process or a probe cannot run on this runtime, and what to do.
pub(crate) const MISSING: &str = "the tokio runtime has no IO driver, which processes, their output and probes \
                                  need; build the runtime with `enable_all()` (or `enable_io()`)";

thread_local! {
    /// The last runtime looked at on this thread, and whether it has the
    /// driver: a thread serves one runtime, most of the time.
    static LAST_SEEN: Cell<Option<(Id, bool)>> = const { Cell::new(None) };
}

/// Whether the current runtime has tokio's IO driver; `false` outside a
/// runtime. The first look on each thread at a runtime without it makes
/// the panic hook print tokio's own message, which says the same.
pub(crate) fn available() -> bool {
    let Ok(handle) = Handle::try_current() else { return false };
    let id = handle.id();
    if let Some((seen, available)) = LAST_SEEN.get()
        && seen == id
    {
        return available;
    }
    match probe() {
        Some(available) => {
            LAST_SEEN.set(Some((id, available)));
            available
        }
        // Not known: what needs the driver will tell.
        None => true,
    }
}

/// Registers a pair of sockets with the driver: the cheapest IO resource
/// (no address, no file). `None` when the sockets could not be made (no
/// descriptor left), which says nothing of the driver.
fn probe() -> Option<bool> {
    match catch_unwind(AssertUnwindSafe(tokio::net::UnixDatagram::pair)) {
        Ok(Ok(_)) => Some(true),
        Ok(Err(_)) => None,
        Err(payload) => {
            drop(crate::panics::panic_message(payload));
            Some(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_with_io_has_it_and_one_without_does_not() {
        let with_io = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert!(with_io.block_on(async { available() }));
        let without = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        assert!(!without.block_on(async { available() }));
        // Looked at again, from the cache, and after another runtime.
        assert!(with_io.block_on(async { available() }));
        assert!(!without.block_on(async { available() }));
        assert!(!available(), "outside a runtime");
    }
}
