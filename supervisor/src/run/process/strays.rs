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
//! They are told from every other child of the process by their group,
//! one of the runs' ([`run_began`]): a leader that moved to another group,
//! or a child the program spawned itself, is never reaped here, so that
//! its exit status stays for whoever waits for it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, TryLockError};
use std::time::Duration;

use rustix::process::{Pid, WaitOptions, child_subreaper, getpid, waitpgid, waitpid};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::Instant;

/// The process groups of the runs in progress, by id (their leaders'
/// pids): the only groups whose ended members [`reap_adopted`] reaps.
static RUN_GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// A run's process group `group` exists: its members may be reaped as they
/// end, its leader never (tokio waits for it).
pub(crate) fn run_began(group: Pid) {
    run_groups().insert(group.as_raw_nonzero().get());
}

/// The run's group `group` is killed and forgotten: its id may be reused.
pub(crate) fn run_ended(group: Pid) {
    run_groups().remove(&group.as_raw_nonzero().get());
}

fn run_groups() -> std::sync::MutexGuard<'static, BTreeSet<i32>> {
    RUN_GROUPS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

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
/// process is still in it (`false` at once where its members are not this
/// process's children).
pub(crate) fn reap_ended(group: Pid) -> bool {
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

/// Reaps this process's children that have ended in the group of a run in
/// progress, other than runs' leaders: members that runs' groups left to
/// it. Nothing else would reap them while their runs last. A child that is
/// in no run's group (the program's own, a leader that moved to another
/// group) or leads one is left to whoever waits for it.
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
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some(group) = zombie_child_group(&stat, me) else { continue };
        // Looked at for each zombie child, under the lock: a run that began
        // since the scan did is seen, and one that ended is not.
        let adopted = {
            let groups = run_groups();
            groups.contains(&group) && !groups.contains(&pid)
        };
        if adopted && let Some(pid) = Pid::from_raw(pid) {
            let _ = waitpid(Some(pid), WaitOptions::NOHANG);
        }
    }
}

/// The group of the process whose `/proc/<pid>/stat` this is, if it is a
/// zombie child of `parent`. The fields are `pid (comm) state ppid pgrp
/// ...`, where `comm` may hold spaces and parentheses: the fields after it
/// follow the last `)`.
fn zombie_child_group(stat: &str, parent: i32) -> Option<i32> {
    let (_, after_comm) = stat.rsplit_once(')')?;
    let mut fields = after_comm.split_whitespace();
    let (state, ppid, pgrp) = (fields.next()?, fields.next()?, fields.next()?);
    (state == "Z" && ppid.parse() == Ok(parent)).then(|| pgrp.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_child_and_its_group_are_told_from_its_stat_line() {
        let line = "4242 (sleep) Z 17 99 99 0 -1 4194560 0 0";
        assert_eq!(zombie_child_group(line, 17), Some(99));
        assert_eq!(zombie_child_group(line, 18), None, "another's child");
        assert_eq!(zombie_child_group("4242 (sleep) S 17 99 99 0", 17), None, "alive");
        // A name with spaces and a `)` of its own.
        assert_eq!(zombie_child_group("4242 (a) Z 1 2 (b) Z 17 99 99 0", 17), Some(99));
        assert_eq!(zombie_child_group("4242 (sleep", 17), None);
        assert_eq!(zombie_child_group("4242 (sleep) Z 17 x 99", 17), None);
        assert_eq!(zombie_child_group("", 17), None);
    }
}
