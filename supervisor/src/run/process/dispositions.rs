//! Signal dispositions inherited by the supervisor's own process, and what
//! they would do to its children.
//!
//! A process inherits ignored signals across `exec` (a parent that ran
//! `trap '' CHLD TERM` first), and passes them on to the processes it
//! spawns. Two of them break supervision:
//!
//! - an ignored `SIGCHLD` makes the kernel reap children by itself, so their
//!   exit statuses are lost (`waitpid` fails with `ECHILD`);
//! - an ignored stop signal, inherited by a child, makes every graceful stop
//!   a forced kill.
//!
//! A caught signal, unlike an ignored one, is reset to its default on
//! `exec`. So before a process is spawned, each of these signals that is
//! ignored here gets tokio's handler instead: this process still does
//! nothing when it arrives (tokio only wakes whoever listens, and nobody
//! does), but the kernel keeps exit statuses for `waitpid`, and children
//! start with the default disposition. Signals that are not ignored are left
//! as they are: catching a signal whose default is to terminate would change
//! what this process does on it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use rustix::process::Signal as RawSignal;
use tokio::signal::unix::SignalKind;

/// The signals one sends a daemon to stop it or to make it act (reload,
/// reopen its logs...), besides the unit's own stop signal.
const CONTROL: [RawSignal; 6] =
    [RawSignal::HUP, RawSignal::INT, RawSignal::QUIT, RawSignal::TERM, RawSignal::USR1, RawSignal::USR2];

/// The signals already looked at, one bit each (`1 << (number - 1)`): each is
/// looked at once per process.
static CHECKED: AtomicU64 = AtomicU64::new(0);

/// Serialises the checks, so that no process is spawned while another
/// thread is still installing a handler it needs.
static CHECKING: Mutex<()> = Mutex::new(());

/// The signals this process ignored when first looked at, before any
/// ignored one was caught here (`None` if there is no `/proc` to tell).
static IGNORED_AT_FIRST_LOOK: OnceLock<Option<u64>> = OnceLock::new();

/// Whether `signal` was ignored by this process before the supervisor
/// changed any disposition: a process started under `nohup` ignores
/// `SIGHUP`, and means it to stay ignored. Not known yet (`/proc` could
/// not be read just now): not ignored, as far as anyone can tell.
pub(crate) fn ignored_at_first_look(signal: RawSignal) -> bool {
    first_look(look).flatten().is_some_and(|ignored| ignored & bit(signal) != 0)
}

/// The signals ignored at the first look, once there has been one; if
/// there has not, `looked` is that look (`None` while it could not read
/// `/proc` just now).
fn first_look(looked: impl FnOnce() -> Look) -> Option<Option<u64>> {
    if let Some(first) = IGNORED_AT_FIRST_LOOK.get() {
        return Some(*first);
    }
    let looked = match looked() {
        Look::Ignored(ignored) => Some(ignored),
        Look::NoProc => None,
        Look::NotNow => return None,
    };
    Some(*IGNORED_AT_FIRST_LOOK.get_or_init(|| looked))
}

fn bit(signal: RawSignal) -> u64 {
    u32::try_from(signal.as_raw() - 1).ok().and_then(|shift| 1_u64.checked_shl(shift)).unwrap_or(0)
}

/// Makes sure that this process collects its children's exit statuses and
/// that a child spawned next starts with the default disposition for
/// `stop_signal` and the [`CONTROL`] signals. Cheap once done: one atomic
/// load.
pub(crate) fn prepare(stop_signal: RawSignal) {
    let wanted = CONTROL.iter().fold(bit(RawSignal::CHILD) | bit(stop_signal), |mask, &signal| mask | bit(signal));
    if CHECKED.load(Ordering::Acquire) & wanted == wanted {
        return;
    }
    if tokio::runtime::Handle::try_current().is_err() {
        // Tokio's handlers need a runtime; so does spawning a process.
        return;
    }
    let _checking = CHECKING.lock().unwrap_or_else(PoisonError::into_inner);
    let checked = CHECKED.load(Ordering::Acquire);
    let unchecked = wanted & !checked;
    if unchecked == 0 {
        return;
    }
    // One look: kept as the first, if it is, before anything is caught below.
    let now = look();
    first_look(|| now);
    // Each signal is caught only if it is ignored here. A caught `SIGCHLD`
    // costs every child's exit a signal delivery and a wake of the I/O
    // driver (5 to 10 µs a stop, where tokio waits on a pidfd); left at its
    // default, it keeps exit statuses just as well.
    let done = match now {
        Look::Ignored(ignored) => {
            for signal in CONTROL.into_iter().chain([stop_signal, RawSignal::CHILD]) {
                if unchecked & ignored & bit(signal) != 0 {
                    catch(signal);
                }
            }
            unchecked
        }
        blind => {
            // Its default is to do nothing, exactly what tokio's handler
            // does: caught blindly, it keeps the exit statuses all the same.
            if unchecked & bit(RawSignal::CHILD) != 0 {
                catch(RawSignal::CHILD);
            }
            tracing::debug!(
                target: "supervisor::process",
                "cannot read the ignored signals of this process from /proc/self/status; children inherit them"
            );
            // Looked at again at the next spawn, unless there is no `/proc`
            // at all: out of file descriptors, say, for a moment.
            if matches!(blind, Look::NoProc) { unchecked } else { unchecked & bit(RawSignal::CHILD) }
        }
    };
    CHECKED.store(checked | done, Ordering::Release);
}

/// What `/proc/self/status` says of the ignored signals.
#[derive(Clone, Copy)]
enum Look {
    /// Its `SigIgn` mask (Linux): bit `n - 1` set when signal `n` is ignored.
    Ignored(u64),
    /// There is no `/proc` to tell, for good.
    NoProc,
    /// It cannot be read just now (out of file descriptors, say).
    NotNow,
}

/// Replaces the disposition of `signal` with tokio's handler, for good
/// (tokio never removes a handler it has installed).
fn catch(signal: RawSignal) {
    if let Err(error) = tokio::signal::unix::signal(SignalKind::from_raw(signal.as_raw())) {
        tracing::warn!(
            target: "supervisor::process",
            signal = signal.as_raw(),
            %error,
            "could not replace an inherited signal disposition"
        );
    }
}

/// Reads the ignored signals from `/proc/self/status`.
fn look() -> Look {
    match std::fs::read_to_string("/proc/self/status") {
        Ok(status) => parse_sig_ign(&status).map_or(Look::NoProc, Look::Ignored),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Look::NoProc,
        Err(_) => Look::NotNow,
    }
}

fn parse_sig_ign(status: &str) -> Option<u64> {
    let mask = status.lines().find_map(|line| line.strip_prefix("SigIgn:"))?;
    u64::from_str_radix(mask.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ignored_mask_is_read_from_the_status_text() {
        let status = "Name:\tx\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000014000\nSigCgt:\t0\n";
        let ignored = parse_sig_ign(status).unwrap();
        assert_eq!(ignored & bit(RawSignal::TERM), bit(RawSignal::TERM));
        assert_eq!(ignored & bit(RawSignal::CHILD), bit(RawSignal::CHILD));
        assert_eq!(ignored & bit(RawSignal::INT), 0);
        assert_eq!(parse_sig_ign("Name:\tx\n"), None);
        assert_eq!(parse_sig_ign("SigIgn:\tnot hex\n"), None);
    }

    #[test]
    fn bits_are_one_per_signal() {
        assert_eq!(bit(RawSignal::HUP), 1);
        assert_eq!(bit(RawSignal::TERM), 1 << 14);
    }
}
