//! The members of a killed process group that have become this process's
//! own children: when the supervisor is PID 1 (of a container) or a
//! subreaper (`PR_SET_CHILD_SUBREAPER`), the processes a run left behind
//! are re-parented to it as their leader exits. Nothing else waits for
//! them, so each would stay a zombie once killed. Elsewhere they are
//! init's, and the first look says so.
//!
//! While a run lasts, its leader's own children that exit leave theirs to
//! the supervisor too: a shell that runs `(job &)` does so each time. Those
//! that end are reaped as they end ([`reap_adopted`]), not only once the
//! run is over, or a long run would fill the process table with zombies.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, TryLockError};
use std::time::Duration;

use rustix::process::{Pid, WaitOptions, child_subreaper, getpgrp, getpid, waitpgid, waitpid};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::Instant;

/// How long the killed members of a group are waited for to end. `SIGKILL`
/// ends a process within microseconds, unless it is stuck in the kernel.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// Reaps the members of `group`, killed, that are this process's children,
/// now or, for those not ended yet, in the background.
///
/// Call it once the group's leader is reaped: it is the only process of
/// the group that another wait (tokio's) is for. The group's id stays
/// taken while any member lives, zombies included, so no other run's
/// processes can be in it.
pub(crate) fn reap(group: Pid) {
    if !reap_ended(group) {
        return;
    }
    tokio::spawn(async move {
        let began = Instant::now();
        let mut pause = Duration::from_millis(1);
        while began.elapsed() < REAP_TIMEOUT {
            tokio::time::sleep(pause).await;
            if !reap_ended(group) {
                return;
            }
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    });
}

/// Reaps the members of `group` that have ended; whether any child of this
/// process is still in it.
fn reap_ended(group: Pid) -> bool {
    loop {
        match waitpgid(group, WaitOptions::NOHANG) {
            Ok(Some(_)) => {}
            Ok(None) => return true,
            // ECHILD: no child of this process in the group.
            Err(_) => return false,
        }
    }
}

/// A stream of `SIGCHLD`, if the processes a run's group leaves behind
/// become this process's children: it is PID 1 or a subreaper (looked at
/// as each run starts: a program may become one at any time).
pub(crate) fn adoptions() -> Option<Signal> {
    let adopts = getpid().is_init() || child_subreaper().ok().flatten().is_some();
    adopts.then(|| signal(SignalKind::child()).ok()).flatten()
}

/// Reaps this process's children that have ended and lead no process
/// group of their own, outside this process's own group: members that
/// runs' groups left to it (a run's leader leads its group; a child the
/// program spawned itself, with tokio or std, is in the program's group or
/// leads one). Nothing else would reap them while their runs last.
///
/// One scan of `/proc` at a time serves every run: a run that hears
/// `SIGCHLD` while another scans marks the scan to be done again, so that
/// a child that ended meanwhile is not missed. `waitpid` on a group could
/// reap its leader, which tokio waits for: each zombie is waited for by
/// its own pid.
pub(crate) fn reap_adopted() {
    static SCAN_AGAIN: AtomicBool = AtomicBool::new(false);
    static SCANNING: Mutex<()> = Mutex::new(());
    SCAN_AGAIN.store(true, Ordering::Release);
    let _scanning = match SCANNING.try_lock() {
        Ok(scanning) => scanning,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return,
    };
    while SCAN_AGAIN.swap(false, Ordering::AcqRel) {
        scan_and_reap();
    }
}

fn scan_and_reap() {
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    let me = getpid().as_raw_nonzero().get();
    let own_group = getpgrp().as_raw_nonzero().get();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        if is_adopted_zombie(&stat, pid, me, own_group)
            && let Some(pid) = Pid::from_raw(pid)
        {
            let _ = waitpid(Some(pid), WaitOptions::NOHANG);
        }
    }
}

/// Whether `/proc/<pid>/stat` says a zombie child of `parent` that leads
/// no group and is not in `own_group`. Its fields are `pid (comm) state
/// ppid pgrp ...`, where `comm` may hold spaces and parentheses: the
/// fields after it follow the last `)`.
fn is_adopted_zombie(stat: &str, pid: i32, parent: i32, own_group: i32) -> bool {
    let Some((_, after_comm)) = stat.rsplit_once(')') else { return false };
    let mut fields = after_comm.split_whitespace();
    let (Some(state), Some(ppid), Some(pgrp)) = (fields.next(), fields.next(), fields.next()) else { return false };
    let Ok(pgrp) = pgrp.parse::<i32>() else { return false };
    state == "Z" && ppid.parse() == Ok(parent) && pgrp != pid && pgrp != own_group
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adopted_zombie_is_told_from_its_stat_line() {
        let line = "4242 (sleep) Z 17 99 99 0 -1 4194560 0 0";
        assert!(is_adopted_zombie(line, 4242, 17, 5));
        assert!(!is_adopted_zombie(line, 4242, 18, 5), "another's child");
        assert!(!is_adopted_zombie(line, 4242, 17, 99), "in the program's own group");
        assert!(!is_adopted_zombie("99 (sh) Z 17 99 99 0", 99, 17, 5), "a group's leader: tokio's");
        assert!(!is_adopted_zombie("4242 (sleep) S 17 99 99 0", 4242, 17, 5), "alive");
        // A name with spaces and a `)` of its own.
        assert!(is_adopted_zombie("4242 (a) Z 1 2 (b) Z 17 99 99 0", 4242, 17, 5));
        assert!(!is_adopted_zombie("4242 (sleep", 4242, 17, 5));
        assert!(!is_adopted_zombie("", 4242, 17, 5));
    }
}
