//! The members of a killed process group that have become this process's
//! own children: when the supervisor is PID 1 (of a container) or a
//! subreaper (`PR_SET_CHILD_SUBREAPER`), the processes a run left behind
//! are re-parented to it as their leader exits. Nothing else waits for
//! them, so each would stay a zombie once killed. Elsewhere they are
//! init's, and the first look says so.

use std::time::Duration;

use rustix::process::{Pid, WaitOptions, waitpgid};
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
