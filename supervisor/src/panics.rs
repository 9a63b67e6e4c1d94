//! Panics of code that is not the supervisor's: the user's futures,
//! closures and panic payloads, and the `tracing` subscriber that writes
//! the supervisor's own lines. None of them may unwind through the engine.

use std::any::Any;
use std::panic::AssertUnwindSafe;

/// The message of a panic. The payload is dropped here, under a guard of
/// its own: a payload whose `Drop` panics again must not unwind through the
/// supervisor.
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let message = if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    };
    if let Err(second) = std::panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        // Dropping this one could panic again, and so on: leak it.
        std::mem::forget(second);
        return format!("{message} (and its payload panicked when dropped)");
    }
    message
}

/// Runs `write`, one of the supervisor's own `tracing` calls. A subscriber
/// that panics (its writer failed) loses that line, rather than unwind
/// through a group's owner halfway through a change; and while the thread
/// is already unwinding, nothing is written, as a second panic would abort
/// the process.
pub(crate) fn log_contained(write: impl FnOnce()) {
    if std::thread::panicking() {
        return;
    }
    if let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(write)) {
        drop(panic_message(payload));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct PanicsOnDrop;

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("dropping the payload");
        }
    }

    #[test]
    fn a_payload_whose_drop_panics_is_contained() {
        let payload = std::panic::catch_unwind(|| std::panic::panic_any(PanicsOnDrop)).unwrap_err();
        let message = panic_message(payload);
        assert!(message.contains("non-string payload") && message.contains("panicked when dropped"), "{message}");
    }

    #[test]
    fn a_log_call_that_panics_is_contained() {
        let mut after = false;
        log_contained(|| panic!("the writer failed"));
        log_contained(|| after = true);
        assert!(after);
    }

    #[test]
    fn string_payloads_give_their_message() {
        let payload = std::panic::catch_unwind(|| panic!("boom {}", 7)).unwrap_err();
        assert_eq!(panic_message(payload), "boom 7");
    }
}
