//! Hostile programs and careless specs against daemon supervision: programs
//! that leave their own process group, exit in a tight loop, fail to start in
//! a tight loop, close their output, flood it, split characters across the
//! 64 KiB line bound, exit with every code and signal; specs with programs
//! that cannot run, arguments and environments a shell would mangle, and
//! signals sent where no run is.
//!
//! Every wait has a deadline (a hang fails the test); after each scenario
//! the test checks that no process of the unit's group is left, that its
//! leader was reaped, and that the report names each unit once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Pid, test_kill_process_group};
use supervisor::{
    Context, DaemonSpec, Error, EventKind, ExitReason, MaxRestarts, Output, Probe, Readiness, RestartOn, RestartPolicy,
    ShutdownReport, Signal, Supervisor, SupervisorHandle, TaskSpec, UnitState,
};

#[path = "support/deadline.rs"]
mod deadline;
use deadline::{next_event, wait_for, wait_running, wait_state, wait_status, wait_tail, within};
#[path = "support/specs.rs"]
mod specs;
use specs::{no_delay, run_once, sh, start};

/// Far longer than any step takes when nothing hangs.
const DEADLINE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Helpers

/// The state letter of `/proc/<pid>/stat` (`R`, `S`, `Z`, ...), if the pid exists.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The process group of `pid`, if it exists.
fn proc_pgrp(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command: state, ppid, pgrp.
    stat.rsplit_once(')')?.1.split_whitespace().nth(2)?.parse().ok()
}

/// Whether the pid exists at all, zombie included.
fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether the process runs (a zombie has ended: it only waits to be reaped).
fn alive(pid: u32) -> bool {
    proc_state(pid).is_some_and(|state| state != 'Z' && state != 'X')
}

/// Whether any process is still in process group `pgid`.
fn group_exists(pgid: u32) -> bool {
    let pid = Pid::from_raw(i32::try_from(pgid).expect("a pid fits an i32")).expect("a pid is positive");
    test_kill_process_group(pid).is_ok()
}

/// A unit's run is over for good: its leader was reaped (no zombie, no
/// process) and nothing of its group lives on.
async fn assert_gone(pgid: u32) {
    wait_for(DEADLINE, &format!("group {pgid} to be empty"), || (!group_exists(pgid)).then_some(())).await;
    // A process at that pid that is not its group's leader is another one:
    // pids are reused (`pid_max` may be 32768, and these tests spawn many).
    assert!(proc_pgrp(pgid) != Some(pgid), "the leader {pgid} was not reaped: {:?}", proc_state(pgid));
}

fn send_signal(signal: &str, target: &str) {
    let status = std::process::Command::new("kill").args(["-s", signal, "--", target]).status().expect("run kill");
    assert!(status.success(), "kill -s {signal} -- {target} failed");
}

/// The report names each unit once.
fn assert_each_once(report: &ShutdownReport) {
    let mut seen = HashSet::new();
    for line in &report.units {
        assert!(seen.insert(line.name.clone()), "`{}` is reported twice: {report:#?}", line.name);
    }
}

async fn shut_down(handle: &SupervisorHandle, units: usize) -> ShutdownReport {
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    assert_each_once(&report);
    assert_eq!(report.units.len(), units, "{report:#?}");
    report
}

/// A fresh empty directory for one test, removed when dropped.
struct ScratchDir(PathBuf);

impl std::ops::Deref for ScratchDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for ScratchDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch_dir(test: &str) -> ScratchDir {
    let dir = std::env::temp_dir().join(format!("supervisor-hostile-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    ScratchDir(dir)
}

// ---------------------------------------------------------------------------
// The leader leaves its own process group

/// A leader that moves itself into another process group of its session: a
/// child of its own makes a group, the leader joins it, the child exits.
/// Every signal sent to the run's group then misses the leader, which is
/// the only process of the unit. Prints `moved <its new group>`.
const MOVER: &str = r#"
import os, time
ready_r, ready_w = os.pipe()
joined_r, joined_w = os.pipe()
child = os.fork()
if child == 0:
    os.setpgid(0, 0)
    os.write(ready_w, b"x")
    os.read(joined_r, 1)
    os._exit(0)
os.read(ready_r, 1)
os.setpgid(0, child)
os.write(joined_w, b"x")
os.waitpid(child, 0)
print("moved", os.getpgid(0), flush=True)
while True:
    time.sleep(1)
"#;

fn mover(stop_timeout: Duration) -> DaemonSpec {
    DaemonSpec::new("mover", "python3").args(["-c", MOVER]).stop_timeout(stop_timeout).restart(run_once())
}

/// Waits until the mover's leader has left its group; returns the leader's pid.
async fn moved(handle: &SupervisorHandle) -> u32 {
    let leader = wait_running(DEADLINE, handle, "mover").await;
    let tail =
        wait_tail(DEADLINE, handle, "mover", "the move", |tail| tail.iter().any(|line| line.starts_with("moved")))
            .await;
    let new_group: u32 = tail[0].split_whitespace().nth(1).and_then(|group| group.parse().ok()).expect("a group id");
    assert_ne!(new_group, leader);
    assert_eq!(proc_pgrp(leader), Some(new_group));
    assert!(!group_exists(leader), "the run's own group is empty");
    leader
}

/// The README: "wait up to `stop_timeout` for the leader to exit [...], then
/// send `SIGKILL` to the group. [...] the leader is always reaped: no process
/// of a unit outlives it". The caveat about leaving the group is about
/// *descendants*; here the leader itself left it, and the stop waits for it
/// for ever.
#[tokio::test]
async fn a_leader_that_moved_to_another_group_is_still_stopped_within_its_stop_timeout() {
    let stop_timeout = Duration::from_millis(300);
    let handle = start([mover(stop_timeout)]);
    let leader = moved(&handle).await;
    let stopping = tokio::spawn({
        let handle = handle.clone();
        async move { handle.stop_unit("mover").await }
    });
    // Generous: the stop should be over 300 ms after it was asked.
    let stopped_in_time = tokio::time::timeout(stop_timeout + Duration::from_secs(3), async {
        wait_state(DEADLINE, &handle, "mover", UnitState::Stopping).await;
        handle.wait_state("mover", UnitState::Stopped).await
    })
    .await
    .is_ok();
    let leader_left = alive(leader);
    // Clean up whatever the outcome, so that the supervisor can end.
    if leader_left {
        send_signal("KILL", &leader.to_string());
    }
    within(DEADLINE, "the stop", stopping).await.expect("no panic").expect("stop_unit succeeds");
    assert_gone(leader).await;
    shut_down(&handle, 1).await;
    assert!(
        stopped_in_time && !leader_left,
        "stop_unit had not ended the leader {stop_timeout:?} + 3 s after it was asked (state stopped: \
         {stopped_in_time}, leader alive: {leader_left}): it sends its signals to the empty group and waits for \
         the leader for ever"
    );
}

/// The README: "`.shutdown_timeout(d)` bounds the whole shutdown: what is
/// still stopping then is aborted or killed." With the same leader, the
/// shutdown never ends.
#[tokio::test]
async fn the_shutdown_timeout_bounds_the_shutdown_of_a_leader_that_moved_to_another_group() {
    let shutdown_timeout = Duration::from_millis(500);
    let handle = Supervisor::builder()
        .shutdown_timeout(shutdown_timeout)
        .daemon(mover(Duration::from_secs(3600)))
        .build()
        .unwrap()
        .start();
    let leader = moved(&handle).await;
    let shutting_down = tokio::spawn({
        let handle = handle.clone();
        async move { handle.shutdown().await }
    });
    let ended_in_time = tokio::time::timeout(shutdown_timeout + Duration::from_secs(3), handle.wait()).await.is_ok();
    let leader_left = alive(leader);
    if leader_left {
        send_signal("KILL", &leader.to_string());
    }
    let report = within(DEADLINE, "the shutdown", shutting_down).await.expect("no panic");
    assert_each_once(&report);
    assert_gone(leader).await;
    assert!(
        ended_in_time && !leader_left,
        "the shutdown had not ended {shutdown_timeout:?} + 3 s after it began (leader alive: {leader_left}): \
         report once the leader was killed by hand: {report}"
    );
}

// ---------------------------------------------------------------------------
// `last_error` says why the *last* run failed

/// The README: `success_codes` "makes those exit codes a success for the
/// restart policy and the report: no `last_error`", and `UnitStatus::last_error`
/// is "Why the last run failed". A run that succeeds after one that failed
/// must not keep the failure's message.
#[tokio::test]
async fn a_run_that_succeeds_after_a_failure_leaves_no_last_error() {
    let dir = scratch_dir("succeeds-after-failure");
    // First run: exit 1. Second run: exit with `$CODE`.
    let script = r#"if [ -e "$DIR/$UNIT" ]; then exit "$CODE"; fi; touch "$DIR/$UNIT"; exit 1"#;
    let unit = |name: &str, code: &str| {
        sh(name, script)
            .env("DIR", &dir)
            .env("UNIT", name)
            .env("CODE", code)
            .restart(no_delay().on(RestartOn::Failure).max_restarts(MaxRestarts::AtMost(3)))
    };
    let handle = start([unit("clean", "0"), unit("expected", "143").success_codes([0, 143])]);
    let mut problems = Vec::new();
    for (name, code) in [("clean", 0), ("expected", 143)] {
        let status = wait_state(DEADLINE, &handle, name, UnitState::Exited).await;
        assert_eq!((status.exit_code, status.restart_count), (Some(code), 1), "{status:?}");
        if status.last_error.is_some() {
            problems.push(format!("{name}: {:?}", status.last_error));
        }
    }
    shut_down(&handle, 2).await;
    assert!(problems.is_empty(), "the last run succeeded, yet last_error is kept: {problems:?}");
}

/// The README: "A stop the supervisor asked for ends in state `Stopped`
/// (with `signal` set to the signal that ended it, and no `last_error`)".
#[tokio::test]
async fn a_requested_stop_after_a_failed_run_leaves_no_last_error() {
    let dir = scratch_dir("stop-after-failure");
    let script = r#"if [ -e "$DIR/failed" ]; then echo up; exec sleep 1000; fi; touch "$DIR/failed"; exit 1"#;
    let handle = start([sh("flaky", script).env("DIR", &dir).restart(no_delay())]);
    wait_status(DEADLINE, &handle, "flaky", |status| status.state == UnitState::Running && status.restart_count == 1)
        .await;
    wait_tail(DEADLINE, &handle, "flaky", "the second run", |tail| tail.iter().any(|line| line == "up")).await;
    let pid = wait_running(DEADLINE, &handle, "flaky").await;
    within(DEADLINE, "stop_unit", handle.stop_unit("flaky")).await.unwrap();
    let status = handle.status("flaky").unwrap();
    assert_gone(pid).await;
    shut_down(&handle, 1).await;
    assert_eq!((status.state, status.signal, status.exit_code), (UnitState::Stopped, Some(15), None), "{status:?}");
    assert_eq!(status.last_error, None, "a requested stop keeps the error of the run before it: {status:?}");
}

/// The README: a requested stop ends "in state `Stopped` [...] and no
/// `last_error`". Many programs answer `SIGTERM` by exiting with 143 (a
/// shell's `trap 'exit 143' TERM`, the JVM).
#[tokio::test]
async fn a_requested_stop_that_the_program_answers_with_exit_143_leaves_no_last_error() {
    let script = "trap 'exit 143' TERM; echo ready; while :; do sleep 0.01; done";
    let handle = start([sh("polite", script)]);
    wait_tail(DEADLINE, &handle, "polite", "ready", |tail| tail.iter().any(|line| line == "ready")).await;
    let pid = wait_running(DEADLINE, &handle, "polite").await;
    let mut events = handle.subscribe();
    within(DEADLINE, "stop_unit", handle.stop_unit("polite")).await.unwrap();
    let stopped = next_event(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Stopped { .. })).await;
    assert!(matches!(stopped.kind, EventKind::Stopped { forced: false, .. }), "{stopped:?}");
    let status = handle.status("polite").unwrap();
    assert_gone(pid).await;
    shut_down(&handle, 1).await;
    assert_eq!((status.state, status.exit_code), (UnitState::Stopped, Some(143)), "{status:?}");
    assert_eq!(status.last_error, None, "a graceful requested stop is reported as a failure: {status:?}");
}

// ---------------------------------------------------------------------------
// Output

/// The README: "A line longer than 64 KiB is split into 64 KiB pieces
/// (`continued = true` on all but the last) [...]; invalid UTF-8 is replaced
/// with `U+FFFD`". Valid UTF-8 is not invalid: a character that straddles
/// the 64 KiB bound must not be replaced.
#[tokio::test]
async fn a_character_across_the_64_kib_bound_is_kept_whole() {
    // 65 535 bytes of `a`, then `é` (two bytes) and `€` (three): the bound
    // falls inside `é`.
    let script = r"head -c 65535 /dev/zero | tr '\000' a; printf '\303\251\342\202\254\n'; echo done";
    let handle = start([sh("utf8", script).restart(run_once())]);
    let status = wait_state(DEADLINE, &handle, "utf8", UnitState::Exited).await;
    assert_eq!(status.exit_code, Some(0));
    let tail = handle.tail("utf8", 100).unwrap();
    shut_down(&handle, 1).await;
    let (last, pieces) = tail.split_last().expect("lines");
    assert_eq!(last, "done");
    assert!(pieces.len() > 1, "split into pieces");
    let joined: String = pieces.concat();
    let expected = format!("{}é€", "a".repeat(65535));
    let replaced = joined.matches('\u{FFFD}').count();
    assert!(
        joined == expected,
        "valid UTF-8 mangled at the 64 KiB bound: {replaced} U+FFFD, piece ends {:?}",
        pieces.iter().map(|piece| piece.chars().rev().take(3).collect::<String>()).collect::<Vec<_>>()
    );
}

/// NUL bytes, invalid UTF-8, a `\r` progress bar and no newline at the
/// very end: nothing is lost, nothing stalls.
#[tokio::test]
async fn nul_bytes_invalid_utf8_and_progress_pieces_are_kept() {
    let script = r"printf 'a\000b\n\377\376x\n1%%\r2%%\r3%%\nout\n'; printf 'tail-no-newline'";
    let handle = start([sh("bytes", script).restart(run_once())]);
    wait_state(DEADLINE, &handle, "bytes", UnitState::Exited).await;
    let tail = handle.tail("bytes", 100).unwrap();
    shut_down(&handle, 1).await;
    assert_eq!(tail, ["a\0b", "\u{FFFD}\u{FFFD}x", "2%", "3%", "out", "tail-no-newline"]);
}

/// A program that closes both its output streams early and keeps running is
/// still running: the end of its output is not the end of its run.
#[tokio::test]
async fn a_program_that_closes_its_output_keeps_running_and_stops_gracefully() {
    let script = "echo bye; exec >&- 2>&-; exec sleep 1000";
    let handle = start([sh("mute", script)]);
    let pid = wait_running(DEADLINE, &handle, "mute").await;
    wait_tail(DEADLINE, &handle, "mute", "bye", |tail| tail.iter().any(|line| line == "bye")).await;
    // Nothing to read any more: the run goes on.
    wait_for(DEADLINE, "the pipes to be closed", || {
        let fds: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten().collect();
        (!fds.iter().any(|fd| fd.file_name() == "1" || fd.file_name() == "2")).then_some(())
    })
    .await;
    let status = handle.status("mute").unwrap();
    assert_eq!((status.state, status.pid), (UnitState::Running, Some(pid)), "{status:?}");
    let mut events = handle.subscribe();
    within(DEADLINE, "stop_unit", handle.stop_unit("mute")).await.unwrap();
    let stopped = next_event(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Stopped { .. })).await;
    assert!(matches!(stopped.kind, EventKind::Stopped { forced: false, .. }), "{stopped:?}");
    assert_gone(pid).await;
    shut_down(&handle, 1).await;
}

/// Floods on both streams from several processes of the group, stopped in
/// the middle: the stop is quick and graceful, and the whole group is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_flooding_both_streams_is_stopped_quickly_and_completely() {
    let script = "yes out-out-out & yes err-err-err >&2 & head -c 100000000 /dev/zero & echo started; wait";
    let handle = start([sh("flood", script).tail_lines(50).stop_timeout(Duration::from_secs(10))]);
    let pid = wait_running(DEADLINE, &handle, "flood").await;
    wait_tail(DEADLINE, &handle, "flood", "both streams", |tail| {
        tail.iter().any(|line| line == "out-out-out") && tail.iter().any(|line| line == "err-err-err")
    })
    .await;
    let began = Instant::now();
    within(DEADLINE, "stop_unit", handle.stop_unit("flood")).await.unwrap();
    let took = began.elapsed();
    assert!(took < Duration::from_secs(5), "the stop of a flooding group took {took:?}");
    let status = handle.status("flood").unwrap();
    assert_eq!(status.state, UnitState::Stopped);
    assert_eq!(status.last_error, None, "{status:?}");
    assert!(handle.tail("flood", 100).unwrap().len() <= 50);
    assert_gone(pid).await;
    shut_down(&handle, 1).await;
}

/// `yes` writes two-byte lines as fast as the pipe takes them, 32k to a
/// read. Reading them gives the thread back every so many lines, not every
/// so many reads (128 reads were 4 million lines, seconds of work): on one
/// thread, a ticker beside the flood keeps its pace, and a stop is seen,
/// and its signal sent, at once.
#[tokio::test(flavor = "current_thread")]
async fn a_daemon_flooding_short_lines_leaves_its_thread_to_others_and_stops_at_once() {
    let stop_timeout = Duration::from_secs(3);
    let handle = start([DaemonSpec::new("flood", "yes").tail_lines(10).stop_timeout(stop_timeout)]);
    let pid = wait_running(DEADLINE, &handle, "flood").await;
    wait_tail(DEADLINE, &handle, "flood", "a line of the flood", |tail| tail.iter().any(|line| line == "y")).await;
    let (began, mut last, mut longest) = (Instant::now(), Instant::now(), Duration::ZERO);
    while began.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        longest = longest.max(last.elapsed());
        last = Instant::now();
    }
    assert!(longest < Duration::from_millis(500), "a 10 ms ticker beside the flood waited {longest:?} for a turn");
    let mut events = handle.subscribe();
    let began = Instant::now();
    within(DEADLINE, "stop_unit", handle.stop_unit("flood")).await.unwrap();
    let took = began.elapsed();
    let stopped = next_event(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Stopped { .. })).await;
    assert!(matches!(stopped.kind, EventKind::Stopped { forced: false, .. }), "{stopped:?} after {took:?}");
    assert!(took < stop_timeout, "the stop of a flood that obeys SIGTERM took {took:?}");
    assert_gone(pid).await;
    shut_down(&handle, 1).await;
}

// ---------------------------------------------------------------------------
// Tight loops

/// The same, counted on one thread: a program that cannot be spawned gets
/// one attempt each time the group's owner is polled, and the runtime's
/// other tasks a turn between attempts (the runtime's budget used to allow
/// about 128 attempts in one poll).
#[tokio::test(flavor = "current_thread")]
async fn a_spawn_failure_loop_takes_one_attempt_per_turn_of_the_runtime() {
    let turns = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = turns.clone();
    let yielder = TaskSpec::new("yielder", move |ctx: Context| {
        let counter = counter.clone();
        async move {
            while !ctx.is_cancelled() {
                tokio::task::yield_now().await;
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    let handle = Supervisor::builder()
        .daemon(DaemonSpec::new("ghost", "supervisor-hostile-no-such-program").restart(no_delay()))
        .task(yielder)
        .build()
        .unwrap()
        .start();
    let status = wait_status(DEADLINE, &handle, "ghost", |status| status.restart_count >= 500).await;
    let turns = turns.load(std::sync::atomic::Ordering::Relaxed);
    assert!(turns + 10 >= status.restart_count, "{turns} turns of the sibling for {} attempts", status.restart_count);
    shut_down(&handle, 2).await;
}

/// A program that cannot be spawned, restarted with no delay and no limit,
/// must "never disturb other units": a task beside it keeps its pace, a
/// sibling daemon answers control calls, and the shutdown is prompt.
#[tokio::test(flavor = "current_thread")]
async fn a_spawn_failure_loop_with_no_delay_does_not_starve_the_others() {
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = ticks.clone();
    let ticker = TaskSpec::new("ticker", move |ctx: Context| {
        let counter = counter.clone();
        async move {
            while !ctx.is_cancelled() {
                tokio::time::sleep(Duration::from_millis(10)).await;
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    let handle = Supervisor::builder()
        .daemon(DaemonSpec::new("ghost", "supervisor-hostile-no-such-program").restart(no_delay()))
        .daemon(DaemonSpec::new("sleeper", "sleep").arg("1000"))
        .task(ticker)
        .build()
        .unwrap()
        .start();
    wait_status(DEADLINE, &handle, "ghost", |status| status.restart_count > 100).await;
    let first = wait_running(DEADLINE, &handle, "sleeper").await;
    let first_start = handle.status("sleeper").unwrap().last_start;
    let began = Instant::now();
    let before = ticks.load(std::sync::atomic::Ordering::Relaxed);
    within(DEADLINE, "restart of the sibling", handle.restart("sleeper")).await.unwrap();
    let second = wait_running(DEADLINE, &handle, "sleeper").await;
    // A new run (its pid may be the old one's again, reused meanwhile).
    assert_ne!(handle.status("sleeper").unwrap().last_start, first_start);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ticked = ticks.load(std::sync::atomic::Ordering::Relaxed) - before;
    let took = began.elapsed();
    let status = handle.status("ghost").unwrap();
    assert!(status.last_error.as_deref().is_some_and(|error| error.contains("supervisor-hostile-no-such-program")));
    within(DEADLINE, "remove of the looping unit", handle.remove("ghost")).await.unwrap();
    assert!(handle.status("ghost").is_none());
    let began_shutdown = Instant::now();
    shut_down(&handle, 2).await;
    let shutdown_took = began_shutdown.elapsed();
    assert_gone(first).await;
    assert_gone(second).await;
    // 10 ms ticks over `took`: at least a tenth of them.
    let expected = u32::try_from(took.as_millis() / 10 / 10).unwrap_or(u32::MAX);
    assert!(ticked >= expected, "the ticker ticked {ticked} times in {took:?}");
    assert!(shutdown_took < Duration::from_secs(5), "the shutdown took {shutdown_took:?}");
}

/// A program that exits at once, restarted with no delay and no limit, on a
/// runtime with one thread: the sibling's restart and the shutdown answer.
#[tokio::test(flavor = "current_thread")]
async fn an_exit_loop_with_no_delay_does_not_starve_the_others() {
    let handle = start([
        DaemonSpec::new("blink", "true").restart(no_delay()).output(Output::Discard),
        DaemonSpec::new("sleeper", "sleep").arg("1000"),
    ]);
    wait_status(DEADLINE, &handle, "blink", |status| status.restart_count > 50).await;
    let first = wait_running(DEADLINE, &handle, "sleeper").await;
    let began = Instant::now();
    within(DEADLINE, "restart of the sibling", handle.restart("sleeper")).await.unwrap();
    let took = began.elapsed();
    assert!(took < Duration::from_secs(5), "a restart beside an exit loop took {took:?}");
    let second = wait_running(DEADLINE, &handle, "sleeper").await;
    assert_gone(first).await;
    let blink = handle.status("blink").unwrap();
    assert_eq!(blink.last_error, None, "{blink:?}");
    shut_down(&handle, 2).await;
    assert_gone(second).await;
}

// ---------------------------------------------------------------------------
// Exit codes and signals

/// Every exit code from 0 to 255 is kept as it is, with `last_error` naming
/// the failures; `success_codes` picks some of them as successes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exit_code_is_reported_as_it_is() {
    let codes: Vec<i32> = (0..=255).collect();
    let handle = start(codes.iter().map(|code| {
        let spec = sh(&format!("code-{code}"), &format!("exit {code}")).restart(run_once()).output(Output::Discard);
        if code % 2 == 1 { spec.success_codes([0, *code]) } else { spec }
    }));
    for code in &codes {
        let name = format!("code-{code}");
        let status = wait_state(DEADLINE, &handle, &name, UnitState::Exited).await;
        assert_eq!((status.exit_code, status.signal, status.pid), (Some(*code), None, None), "{status:?}");
        if *code == 0 || code % 2 == 1 {
            assert_eq!(status.last_error, None, "{status:?}");
        } else {
            assert_eq!(status.last_error, Some(format!("exited with code {code}")), "{status:?}");
        }
    }
    shut_down(&handle, codes.len()).await;
}

/// A process that kills itself with a signal is reported with that signal
/// and no exit code, as a failure, even when `success_codes` holds 128 + n.
#[tokio::test]
async fn every_common_signal_is_reported_as_a_failure_whatever_the_success_codes() {
    let signals = ["HUP", "INT", "QUIT", "ILL", "ABRT", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM", "TERM"];
    let handle = start(signals.iter().map(|signal| {
        // `exec` so that the signal ends the leader itself, not a child of the shell.
        sh(signal, &format!("exec sh -c 'kill -s {signal} $$; sleep 10'"))
            .restart(no_delay().on(RestartOn::Failure).max_restarts(MaxRestarts::AtMost(0)))
            .success_codes((0..=255).collect::<Vec<_>>())
            .output(Output::Discard)
    }));
    for signal in signals {
        let number = Signal::from_name(signal).map_or_else(
            || match signal {
                "ILL" => 4,
                "ABRT" => 6,
                "FPE" => 8,
                "SEGV" => 11,
                _ => unreachable!(),
            },
            Signal::number,
        );
        let status = wait_state(DEADLINE, &handle, signal, UnitState::Failed).await;
        assert_eq!((status.exit_code, status.signal), (None, Some(number)), "{signal}: {status:?}");
        assert!(
            status.last_error.as_deref().is_some_and(|error| error.contains(&format!("signal {number}"))),
            "{signal}: {status:?}"
        );
    }
    shut_down(&handle, signals.len()).await;
}

/// `success_codes([0, 143])` and a requested stop by `SIGTERM`: a stop, not
/// a failure; the same signal from outside is a failure that restarts.
#[tokio::test]
async fn a_sigterm_is_a_stop_when_asked_and_a_failure_from_outside_whatever_the_success_codes() {
    let handle = start([DaemonSpec::new("sleeper", "sleep")
        .arg("1000")
        .success_codes([0, 143])
        .restart(no_delay().on(RestartOn::Failure))]);
    let mut events = handle.subscribe();
    let first = wait_running(DEADLINE, &handle, "sleeper").await;
    send_signal("TERM", &first.to_string());
    let exited = next_event(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Exited { .. })).await;
    assert_eq!(exited.kind, EventKind::Exited { reason: ExitReason::Signal(15) });
    let status =
        wait_status(DEADLINE, &handle, "sleeper", |status| status.restart_count == 1 && status.pid.is_some()).await;
    let second = status.pid.unwrap();
    assert_eq!(status.signal, Some(15));
    assert!(status.last_error.is_some(), "{status:?}");
    assert_gone(first).await;
    within(DEADLINE, "stop_unit", handle.stop_unit("sleeper")).await.unwrap();
    let status = handle.status("sleeper").unwrap();
    assert_eq!((status.state, status.signal, status.exit_code), (UnitState::Stopped, Some(15), None));
    assert_gone(second).await;
    shut_down(&handle, 1).await;
}

// ---------------------------------------------------------------------------
// Careless specs

/// Programs that cannot run, each a failed run whose `last_error` names the
/// program and the cause; nothing panics, the others run on.
#[tokio::test]
async fn programs_that_cannot_run_fail_with_a_reason_that_names_the_cause() {
    let dir = scratch_dir("cannot-run");
    let file = dir.join("file");
    std::fs::write(&file, "not a directory").unwrap();
    let no_shebang = dir.join("no-shebang");
    std::fs::write(&no_shebang, [0x7f, b'E', b'L', b'F', 0, 0, 0, 0]).unwrap();
    std::fs::set_permissions(&no_shebang, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let no_interpreter = dir.join("no-interpreter");
    std::fs::write(&no_interpreter, "#!/nonexistent/interpreter\n").unwrap();
    std::fs::set_permissions(&no_interpreter, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let once = || no_delay().max_restarts(MaxRestarts::AtMost(0));
    let huge = "x".repeat(200 * 1024);
    let handle = start([
        DaemonSpec::new("sleeper", "sleep").arg("1000"),
        DaemonSpec::new("directory", "/tmp").restart(once()),
        DaemonSpec::new("bad-format", &no_shebang).restart(once()),
        DaemonSpec::new("dir-is-a-file", "sleep").arg("1").current_dir(&file).restart(once()),
        DaemonSpec::new("huge-env", "true").env("HUGE", &huge).restart(once()),
        DaemonSpec::new("huge-arg", "true").arg(&huge).restart(once()),
        DaemonSpec::new("dot-slash", "./nothing-here").current_dir(&*dir).restart(once()),
        DaemonSpec::new("no-interpreter", "./no-interpreter").current_dir(&*dir).restart(once()),
        // A `PATH` set with `env` is the one the program is looked up in.
        DaemonSpec::new("own-path", "sleep").arg("1000").env("PATH", &*dir).restart(once()),
        DaemonSpec::new("no-interpreter-on-path", "no-interpreter").env("PATH", &*dir).restart(once()),
        // As a shell's profile would write it; nothing expands it here.
        DaemonSpec::new("dollar-path", "sleep").arg("1").env("PATH", "$PATH:/nonexistent").restart(once()),
    ]);
    let sleeper = wait_running(DEADLINE, &handle, "sleeper").await;
    for (name, needles) in [
        ("directory", vec!["/tmp", "ermission denied"]),
        ("bad-format", vec!["no-shebang", "format"]),
        ("dir-is-a-file", vec!["sleep", "not a directory"]),
        ("huge-env", vec!["`true`", "too long"]),
        ("huge-arg", vec!["`true`", "too long"]),
        // Named by a path: no word of PATH, and a missing interpreter is
        // told apart from a missing file.
        ("dot-slash", vec!["./nothing-here", "(no such file)"]),
        ("no-interpreter", vec!["./no-interpreter", "interpreter on its `#!` line"]),
        ("own-path", vec!["`sleep`", "No such file", "not found on the PATH given with `env`"]),
        ("dollar-path", vec!["`$PATH:/nonexistent`", "no shell runs to expand the `$` in it"]),
        // Found on PATH, yet "not found": its interpreter is missing.
        ("no-interpreter-on-path", vec!["`no-interpreter`", "where PATH finds it", "interpreter on its `#!` line"]),
    ] {
        let status = wait_state(DEADLINE, &handle, name, UnitState::Failed).await;
        assert_eq!(status.pid, None, "{name}");
        let error = status.last_error.unwrap_or_else(|| panic!("{name} has a last_error"));
        for needle in needles {
            assert!(error.contains(needle), "{name}: {error:?} should mention {needle:?}");
        }
    }
    assert!(alive(sleeper));
    shut_down(&handle, 11).await;
    assert_gone(sleeper).await;
}

/// A relative directory on a `PATH` given with `env` is taken from the
/// daemon's working directory, a relative one too, as an exec from that
/// directory would take it (the lookup made the path relative to the
/// supervisor's own directory, which the child had left: "No such file").
#[tokio::test]
async fn a_program_on_a_relative_path_entry_runs_from_a_relative_working_directory() {
    let dir = scratch_dir("relative-path");
    // The app's directory, by a relative path from this process's: up to
    // the root, then down, deeper than this directory is (a relative path
    // taken from the app's directory by mistake could then not climb back
    // to the root and find it all the same).
    let up = std::env::current_dir().unwrap().components().count() - 1;
    let absolute_app = dir.join("deeper/".repeat(up)).join("app");
    let app = PathBuf::from("../".repeat(up)).join(absolute_app.strip_prefix("/").unwrap());
    let bin = absolute_app.join("node_modules/.bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("tool"), "#!/bin/sh\necho \"tool ran in $(pwd)\"\n").unwrap();
    std::fs::set_permissions(bin.join("tool"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert!(app.is_relative() && app.is_dir(), "{}", app.display());
    let handle = start([DaemonSpec::new("tool", "tool")
        .env("PATH", "node_modules/.bin:/usr/bin:/bin")
        .current_dir(&app)
        .restart(run_once())]);
    let status = wait_status(DEADLINE, &handle, "tool", |status| !status.state.is_active()).await;
    let tail = handle.tail("tool", 10).unwrap();
    shut_down(&handle, 1).await;
    assert_eq!((status.state, status.exit_code), (UnitState::Exited, Some(0)), "{status:?}");
    let ran_in = absolute_app.canonicalize().unwrap();
    assert_eq!(tail, [format!("tool ran in {}", ran_in.display())]);
}

/// What the leader wrote last, without a newline, is in the tail as its run
/// ends, though a process that left its group holds the pipe open (it came
/// only once that process exited, or never).
#[tokio::test]
async fn the_leaders_last_words_without_a_newline_are_in_the_tail_as_it_ends() {
    let dir = scratch_dir("last-words");
    let script = r#"setsid sh -c 'echo $$ > "$DIR/holder"; exec sleep 60' &
        while [ ! -s "$DIR/holder" ]; do sleep 0.005; done
        echo starting; printf 'fatal: config error'; exit 1"#;
    let handle = start([sh("job", script).env("DIR", &*dir).restart(run_once())]);
    let status = wait_state(DEADLINE, &handle, "job", UnitState::Exited).await;
    let tail = handle.tail("job", 10).unwrap();
    let holder: i32 = std::fs::read_to_string(dir.join("holder")).unwrap().trim().parse().unwrap();
    let _ = rustix::process::kill_process(Pid::from_raw(holder).unwrap(), rustix::process::Signal::KILL);
    shut_down(&handle, 1).await;
    assert_eq!(status.exit_code, Some(1), "{status:?}");
    assert_eq!(tail, ["starting", "fatal: config error"]);
}

/// Last words that end in a byte that is not UTF-8 (`caf\351`, Latin-1),
/// with a process that left the group holding the pipe: the tail has them
/// whole, the byte decoded lossily, as the run ends.
#[tokio::test]
async fn last_words_ending_in_a_byte_that_is_not_utf8_are_in_the_tail_whole() {
    let dir = scratch_dir("last-byte");
    let script = r#"setsid sh -c 'echo $$ > "$DIR/holder"; exec sleep 60' &
        while [ ! -s "$DIR/holder" ]; do sleep 0.005; done
        printf 'no such file: caf\351'; exit 1"#;
    let handle = start([sh("job", script).env("DIR", &*dir).restart(run_once())]);
    wait_state(DEADLINE, &handle, "job", UnitState::Exited).await;
    let tail = handle.tail("job", 10).unwrap();
    let holder: i32 = std::fs::read_to_string(dir.join("holder")).unwrap().trim().parse().unwrap();
    let _ = rustix::process::kill_process(Pid::from_raw(holder).unwrap(), rustix::process::Signal::KILL);
    shut_down(&handle, 1).await;
    assert_eq!(tail, ["no such file: caf\u{FFFD}"]);
}

/// A run that ends on a progress piece (`50%\r`, then a crash) keeps it in
/// the tail as its last state: the next run's first progress piece replaced
/// it, though lines of earlier runs stay until pushed out.
#[tokio::test]
async fn the_last_progress_piece_of_a_run_stays_in_the_tail_after_the_next_run() {
    let policy = no_delay().max_restarts(MaxRestarts::AtMost(1));
    let handle = start([sh("bar", r#"printf 'run %s 50%%\r' "$$"; exit 1"#).restart(policy)]);
    wait_state(DEADLINE, &handle, "bar", UnitState::Failed).await;
    let tail = handle.tail("bar", 10).unwrap();
    shut_down(&handle, 1).await;
    assert_eq!(tail.len(), 2, "{tail:?}");
    assert!(tail.iter().all(|line| line.starts_with("run ") && line.ends_with(" 50%")), "{tail:?}");
    assert_ne!(tail[0], tail[1], "one piece of each run: {tail:?}");
}

/// Arguments are passed as they are, never through a shell: spaces, quotes,
/// globs, `$`, empty ones, newlines and non-UTF-8 bytes.
#[tokio::test]
async fn arguments_reach_the_program_exactly_as_given() {
    use std::os::unix::ffi::OsStrExt;
    let args = ["a b", "", "'single'", "\"double\"", "$HOME", "*", "a;b|c&&d", "back\\slash", "-n", "--"];
    let non_utf8 = std::ffi::OsStr::from_bytes(b"caf\xe9");
    let handle =
        start([DaemonSpec::new("printf", "printf").arg("[%s]\\n").args(args).arg(non_utf8).restart(run_once())]);
    let status = wait_state(DEADLINE, &handle, "printf", UnitState::Exited).await;
    assert_eq!(status.exit_code, Some(0), "{status:?}");
    let tail = handle.tail("printf", 100).unwrap();
    shut_down(&handle, 1).await;
    let mut expected: Vec<String> = args.iter().map(|arg| format!("[{arg}]")).collect();
    expected.push("[caf\u{FFFD}]".to_owned());
    assert_eq!(tail, expected);
}

/// What no process can be given is a typed error, from `build()` and from
/// `add()` alike, and never a panic.
#[tokio::test]
async fn impossible_environments_and_arguments_are_typed_errors_at_build_and_at_add() {
    let bad = || {
        [
            DaemonSpec::new("eq-name", "true").env("A=B", "1"),
            DaemonSpec::new("eq-remove", "true").env_remove("A=B"),
            DaemonSpec::new("empty-name", "true").env("", "1"),
            DaemonSpec::new("nul-name", "true").env("A\0B", "1"),
            DaemonSpec::new("nul-value", "true").env("A", "1\0x"),
            DaemonSpec::new("nul-arg", "true").arg("a\0b"),
            DaemonSpec::new("nul-program", "tr\0ue"),
            DaemonSpec::new("nul-dir", "true").current_dir("/tm\0p"),
        ]
    };
    for spec in bad() {
        let name = spec.name().to_owned();
        let error = Supervisor::builder().daemon(spec).build().map(drop).unwrap_err();
        assert!(matches!(&error, Error::InvalidSetting { unit, .. } if *unit == name), "{name}: {error:?}");
    }
    let handle = start([DaemonSpec::new("sleeper", "sleep").arg("1000")]);
    let sleeper = wait_running(DEADLINE, &handle, "sleeper").await;
    for spec in bad() {
        let name = spec.name().to_owned();
        let error = within(DEADLINE, "add", handle.add(spec)).await.unwrap_err();
        assert!(matches!(&error, Error::InvalidSetting { unit, .. } if unit.ends_with(&name)), "{name}: {error:?}");
        assert!(handle.status(&name).is_none(), "{name} was added");
    }
    assert_eq!(handle.unit_names(), ["sleeper"]);
    shut_down(&handle, 1).await;
    assert_gone(sleeper).await;
}

/// The README: "`env_clear()` starts from an empty environment [...]; the
/// program is still looked up in the supervisor's `PATH` unless you set one
/// with `env`". `git` lives in /usr/local/bin here, outside the default
/// search path of an exec with no `PATH`.
#[tokio::test]
async fn env_clear_still_finds_the_program_in_the_supervisors_path() {
    let Some(program) = ["git", "cargo", "rustc"].into_iter().find(|program| {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .unwrap_or_default();
        !found.is_empty() && !found.starts_with("/bin/") && !found.starts_with("/usr/bin/")
    }) else {
        panic!("no program outside /bin and /usr/bin to look up");
    };
    let dir = scratch_dir("env-clear");
    let handle = start([
        DaemonSpec::new("plain", program).arg("--version").env_clear().restart(run_once()),
        DaemonSpec::new("with-dir", program).arg("--version").env_clear().current_dir(&*dir).restart(run_once()),
    ]);
    let mut problems = Vec::new();
    for name in ["plain", "with-dir"] {
        let status = wait_status(DEADLINE, &handle, name, |status| !status.state.is_active()).await;
        if status.exit_code != Some(0) {
            problems.push(format!("{name}: {status:?}"));
        }
    }
    shut_down(&handle, 2).await;
    assert!(problems.is_empty(), "`{program}` not found with env_clear: {problems:#?}");
}

// ---------------------------------------------------------------------------
// Signals where no run is

/// `handle.signal` answers with the documented error wherever no run is: an
/// unknown unit, a task, a unit stopped, exited, in backoff, and a run whose
/// leader has exited while an escaped process still holds its output.
#[tokio::test]
async fn signals_where_no_run_is_are_typed_errors() {
    let dir = scratch_dir("signals");
    let escaper =
        r#"setsid sh -c 'touch "$DIR/left"; exec sleep 3' & while [ ! -e "$DIR/left" ]; do sleep 0.005; done"#;
    let handle = Supervisor::builder()
        .daemon(DaemonSpec::new("sleeper", "sleep").arg("1000"))
        .daemon(sh("once", "exit 0").restart(run_once()))
        .daemon(sh("backoff", "exit 1").restart(RestartPolicy::new().delay(Duration::from_secs(3600))))
        .daemon(sh("escaper", escaper).env("DIR", &dir).restart(run_once()))
        .task(TaskSpec::new("task", |ctx: Context| async move { ctx.cancelled().await }))
        .build()
        .unwrap()
        .start();
    let sleeper = wait_running(DEADLINE, &handle, "sleeper").await;
    assert!(matches!(handle.signal("nope", Signal::HUP), Err(Error::UnknownUnit { .. })));
    assert!(matches!(handle.signal("task", Signal::HUP), Err(Error::WrongKind { .. })));
    wait_state(DEADLINE, &handle, "once", UnitState::Exited).await;
    assert!(matches!(handle.signal("once", Signal::HUP), Err(Error::NotRunning { .. })));
    wait_state(DEADLINE, &handle, "backoff", UnitState::Backoff).await;
    assert!(matches!(handle.signal("backoff", Signal::HUP), Err(Error::NotRunning { .. })));
    // The escaper's leader has exited; its run drains for up to 0.5 s.
    wait_for(DEADLINE, "the escaper's leader to exit", || dir.join("left").exists().then_some(())).await;
    // Until the supervisor has reaped the leader (a zombie is not enough:
    // until then, the signal still goes to its group); the reap is a change
    // of the status, told to its waits, well before the run's end.
    let status = wait_status(DEADLINE, &handle, "escaper", |status| status.pid.is_none()).await;
    assert_eq!(status.state, UnitState::Running, "{status:?}");
    assert!(matches!(handle.signal("escaper", Signal::KILL), Err(Error::NotRunning { .. })));
    handle.signal("sleeper", Signal::CONT).unwrap();
    within(DEADLINE, "stop_unit", handle.stop_unit("sleeper")).await.unwrap();
    assert!(matches!(handle.signal("sleeper", Signal::HUP), Err(Error::NotRunning { .. })));
    assert_gone(sleeper).await;
    shut_down(&handle, 5).await;
}

/// Signals racing restarts: each call is `Ok` or `NotRunning`, a `SIGSTOP`
/// sent to a run never holds up the next stop, and no run outlives its
/// unit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_racing_restarts_reach_only_live_runs() {
    let script = "trap '' HUP USR1; echo up; while :; do sleep 0.01; done";
    let handle = start([sh("target", script).stop_timeout(Duration::from_secs(10))]);
    wait_running(DEADLINE, &handle, "target").await;
    // Sends until the restarts are over and the last run is up: on a busy
    // machine every one of a fixed number of rounds can fall between runs,
    // and the last round, sent to the run left up, is then still `Ok`.
    let restarted = Arc::new(AtomicBool::new(false));
    let signaller = tokio::spawn({
        let (handle, restarted) = (handle.clone(), restarted.clone());
        async move {
            let mut sent = 0_u32;
            for round in 0_u32.. {
                let last = restarted.load(Ordering::Acquire) && round >= 2000;
                let signal = [Signal::HUP, Signal::USR1, Signal::STOP, Signal::CONT][round as usize % 4];
                match handle.signal("target", signal) {
                    Ok(()) => sent += 1,
                    Err(Error::NotRunning { .. }) => {}
                    Err(other) => panic!("unexpected error: {other:?}"),
                }
                if last {
                    break;
                }
                tokio::task::yield_now().await;
            }
            sent
        }
    });
    let mut leaders = Vec::new();
    for _ in 0..10 {
        leaders.push(wait_running(DEADLINE, &handle, "target").await);
        let began = Instant::now();
        within(DEADLINE, "restart", handle.restart("target")).await.unwrap();
        assert!(began.elapsed() < Duration::from_secs(5), "a restart took {:?}", began.elapsed());
    }
    leaders.push(wait_running(DEADLINE, &handle, "target").await);
    restarted.store(true, Ordering::Release);
    let sent = within(DEADLINE, "the signaller", signaller).await.unwrap();
    assert!(sent > 0, "no signal reached a run");
    shut_down(&handle, 1).await;
    for leader in leaders {
        assert_gone(leader).await;
    }
}

/// Each run leads a process group of its own, and `exec` into another
/// program keeps it: the signal and the stop reach the new program.
#[tokio::test]
async fn a_program_that_execs_keeps_its_group_and_is_signalled_and_stopped() {
    let script = "exec sh -c 'trap \"echo hup\" HUP; echo ready; while :; do sleep 0.01; done'";
    let handle = start([sh("execer", script)]);
    let pid = wait_running(DEADLINE, &handle, "execer").await;
    wait_tail(DEADLINE, &handle, "execer", "ready", |tail| tail.iter().any(|line| line == "ready")).await;
    assert_eq!(proc_pgrp(pid), Some(pid), "the leader leads its own group");
    assert_ne!(proc_pgrp(pid), proc_pgrp(std::process::id()));
    handle.signal("execer", Signal::HUP).unwrap();
    wait_tail(DEADLINE, &handle, "execer", "hup", |tail| tail.iter().any(|line| line == "hup")).await;
    within(DEADLINE, "stop_unit", handle.stop_unit("execer")).await.unwrap();
    let status = handle.status("execer").unwrap();
    assert_eq!((status.state, status.signal), (UnitState::Stopped, Some(15)), "{status:?}");
    assert_gone(pid).await;
    shut_down(&handle, 1).await;
}

// ---------------------------------------------------------------------------
// PID reuse

/// Spawns `sleep 1000` as the leader of a new process group, trying to give
/// it the pid `wanted` through `/proc/sys/kernel/ns_last_pid` (root only; the
/// pid counter is shared, so it takes a few tries). `None` if it cannot.
fn spawn_with_pid(wanted: u32) -> Option<std::process::Child> {
    use std::os::unix::process::CommandExt;
    for _ in 0..200 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (wanted - 1).to_string()).ok()?;
        let mut child = std::process::Command::new("sleep").arg("1000").process_group(0).spawn().ok()?;
        if child.id() == wanted {
            return Some(child);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    None
}

/// A run whose leader has exited is not over until its output is read to the
/// end (up to 0.5 s more while an escaped process holds it). A process that
/// takes the leader's pid meanwhile, as the leader of a group of the same
/// id, must never get the signals sent to the unit.
#[tokio::test]
async fn a_signal_never_reaches_a_process_that_reused_a_finished_runs_pid() {
    let dir = scratch_dir("pid-reuse");
    let script = r#"setsid sh -c 'touch "$DIR/left"; exec sleep 2' & while [ ! -e "$DIR/left" ]; do sleep 0.005; done"#;
    let handle = start([sh("escaper", script).env("DIR", &dir).restart(run_once())]);
    let leader = wait_running(DEADLINE, &handle, "escaper").await;
    wait_for(DEADLINE, "the leader to be reaped", || (!exists(leader)).then_some(())).await;
    let Some(mut stranger) = spawn_with_pid(leader) else {
        eprintln!("cannot choose pids here (needs root and ns_last_pid): nothing to check");
        shut_down(&handle, 1).await;
        return;
    };
    assert_eq!(proc_pgrp(leader), Some(leader), "the stranger leads a group with the old run's id");
    let status = handle.status("escaper").unwrap();
    let answer = handle.signal("escaper", Signal::KILL);
    let stranger_alive = alive(leader);
    let _ = stranger.kill();
    let _ = stranger.wait();
    let status_after = wait_state(DEADLINE, &handle, "escaper", UnitState::Exited).await;
    shut_down(&handle, 1).await;
    assert!(matches!(answer, Err(Error::NotRunning { .. })), "{answer:?} (status then: {status:?})");
    assert!(stranger_alive, "the signal for the finished run reached the process that reused its pid");
    assert_eq!(status_after.pid, None);
}

/// The same window, seen in the status: the unit still counts as running
/// (its output is being read to the end), but the leader it names by its
/// `pid` has been reaped, and the pid now belongs to another process.
/// `UnitStatus::pid` is "The process ID of the current run"; `/status` and
/// the events hand it to whoever would signal or inspect the unit's process.
#[tokio::test]
async fn the_status_never_names_a_pid_that_another_process_reused() {
    let dir = scratch_dir("pid-reuse-status");
    let script = r#"setsid sh -c 'touch "$DIR/left"; exec sleep 2' & while [ ! -e "$DIR/left" ]; do sleep 0.005; done"#;
    let handle = start([sh("escaper", script).env("DIR", &dir).restart(run_once())]);
    let leader = wait_running(DEADLINE, &handle, "escaper").await;
    wait_for(DEADLINE, "the leader to be reaped", || (!exists(leader)).then_some(())).await;
    let Some(mut stranger) = spawn_with_pid(leader) else {
        eprintln!("cannot choose pids here (needs root and ns_last_pid): nothing to check");
        shut_down(&handle, 1).await;
        return;
    };
    let status = handle.status("escaper").unwrap();
    let _ = stranger.kill();
    let _ = stranger.wait();
    wait_state(DEADLINE, &handle, "escaper", UnitState::Exited).await;
    shut_down(&handle, 1).await;
    assert_ne!(
        status.pid,
        Some(leader),
        "the status names pid {leader}, the reaped leader's, now another process's: {status:?}"
    );
}

/// A group whose processes fork without pause while it is killed: the
/// group kill leaves none of them behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_keeps_forking_is_killed_whole() {
    let forker = "trap '' TERM; while :; do /bin/true; sleep 1000 & kill $! 2>/dev/null; done";
    let script = format!(
        "trap '' TERM; for i in 1 2 3 4; do sh -c \"{forker}\" & done; (trap '' TERM; exec sleep 1000) & echo up; wait"
    );
    let handle = start([sh("forker", &script).stop_timeout(Duration::from_millis(300))]);
    let pid = wait_running(DEADLINE, &handle, "forker").await;
    wait_tail(DEADLINE, &handle, "forker", "up", |tail| tail.iter().any(|line| line == "up")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut events = handle.subscribe();
    within(DEADLINE, "stop_unit", handle.stop_unit("forker")).await.unwrap();
    let stopped = next_event(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Stopped { .. })).await;
    assert!(matches!(stopped.kind, EventKind::Stopped { forced: true, .. }), "{stopped:?}");
    assert_gone(pid).await;
    shut_down(&handle, 1).await;
}

// ---------------------------------------------------------------------------
// The end of a run whose output an escaped process holds open

/// Pings the watchdog, then exits with 0 after [`PING_TO_EXIT`], leaving a
/// process of a session of its own that holds the output for 8 s: the run
/// ends once its output is read to the end, up to 0.5 s after the exit.
const PINGS_THEN_EXITS: &str = "import os, socket, subprocess, time\n\
subprocess.Popen(['sleep', '8'], start_new_session=True)\n\
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
s.sendto(b'WATCHDOG=1', os.environ['NOTIFY_SOCKET'])\n\
time.sleep(4.5)\n";

/// How long [`PINGS_THEN_EXITS`] waits between its ping and its exit.
const PING_TO_EXIT: Duration = Duration::from_millis(4500);

/// The watchdog's period runs out while the output of a run that exited
/// cleanly is read to its end: the run ended as it did, not as hung.
///
/// The period is counted from the ping, 0.4 s past the exit, within the
/// half second the output is read for; it also covers the interpreter's
/// start before the ping (more than a second on a loaded machine), which
/// a period shorter than the reading could not.
#[tokio::test]
async fn a_watchdog_that_runs_out_after_the_leader_exited_does_not_change_how_the_run_ended() {
    let period = PING_TO_EXIT + Duration::from_millis(400);
    let spec =
        DaemonSpec::new("pinger", "python3").args(["-u", "-c", PINGS_THEN_EXITS]).watchdog(period).restart(run_once());
    let started = Instant::now();
    let handle = start([spec]);
    let mut events = handle.subscribe();
    let ended = wait_status(DEADLINE, &handle, "pinger", |status| !status.state.is_active()).await;
    let exited = next_event(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Exited { .. })).await;
    // The reading outlasted the period: the watchdog had its chance to judge.
    assert!(started.elapsed() > period, "the run ended after {:?}", started.elapsed());
    shut_down(&handle, 1).await;
    assert_eq!((ended.state, ended.exit_code, ended.last_error.as_deref()), (UnitState::Exited, Some(0), None));
    assert_eq!(exited.kind, EventKind::Exited { reason: ExitReason::Success });
}

/// The ready line comes from an escaped process once the leader, which
/// failed, has been reaped: the unit was never ready, and what depends on
/// it never started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_line_printed_after_the_leader_exited_makes_nothing_ready() {
    // The escaped process says it left the group (else it goes with the
    // group once the leader is reaped), then prints once the leader is gone.
    let dir = scratch_dir("late-ready-line");
    let script = r#"leader=$$
setsid sh -c "touch '$DIR/left'; while kill -0 $leader 2>/dev/null; do sleep 0.01; done; echo listening; exec sleep 2" &
while [ ! -e "$DIR/left" ]; do sleep 0.005; done
exit 1"#;
    let db = sh("db", script)
        .env("DIR", &dir)
        .readiness(supervisor::Readiness::OutputLine("listening".into()))
        .restart(run_once());
    let started = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = started.clone();
    let api = TaskSpec::new("api", move |ctx: Context| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move { ctx.cancelled().await }
    })
    .depends_on(["db"]);
    let sup = Supervisor::builder().daemon(db).task(api).build().expect("valid supervisor");
    let mut events = sup.subscribe();
    let handle = sup.start();
    wait_status(DEADLINE, &handle, "db", |status| !status.state.is_active()).await;
    // The line is in the tail: it was read, and came too late to count.
    wait_tail(DEADLINE, &handle, "db", "the late ready line", |tail| tail.iter().any(|line| line == "listening")).await;
    shut_down(&handle, 2).await;
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    assert!(!seen.iter().any(|event| event.unit == "db" && event.kind == EventKind::Ready), "{seen:#?}");
    assert!(seen.iter().any(|event| event.kind == EventKind::Exited { reason: ExitReason::Code(1) }), "{seen:#?}");
    assert_eq!(started.load(std::sync::atomic::Ordering::SeqCst), 0, "`api` started on a dead dependency");
}

/// Once the shutdown's time is up, a stopped run's output is not read to
/// its end first: the shutdown timeout bounds the shutdown even when every
/// unit left an escaped process holding its output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shutdown_timeout_bounds_the_reading_of_output_that_escaped_processes_hold() {
    const UNITS: usize = 10;
    let script = "setsid sh -c 'echo up; exec sleep 6' & exec sleep 600";
    let builder = (0..UNITS).fold(Supervisor::builder().shutdown_timeout(Duration::from_secs(1)), |builder, i| {
        builder.daemon(sh(&format!("d{i}"), script))
    });
    let handle = builder.build().expect("valid supervisor").start();
    for i in 0..UNITS {
        wait_tail(DEADLINE, &handle, &format!("d{i}"), "the escaped process", |tail| {
            tail.iter().any(|line| line == "up")
        })
        .await;
    }
    let began = Instant::now();
    let report = shut_down(&handle, UNITS).await;
    let took = began.elapsed();
    // Each stop reads for up to 0.5 s: 5 s for the lot, unbounded.
    assert!(took < Duration::from_secs(3), "the shutdown took {took:?}: {report}");
}

/// The processes whose command line holds `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| String::from_utf8_lossy(&line).replace('\0', " ").contains(needle))
        })
        .collect()
}

/// "A program that cannot be started is a failed run with a `last_error`;
/// it follows the restart policy", and "no process of a unit outlives it".
/// On a runtime built without tokio's IO driver, the daemon was spawned,
/// then tokio panicked in the run's task: the process ran on, orphaned,
/// and the unit said `Stopped`, with no error, no event and no restart.
#[test]
fn a_daemon_on_a_runtime_without_io_fails_with_the_reason_and_leaves_no_process() {
    let needle = "1000.4242";
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap();
    let failed = runtime.block_on(async {
        let once = RestartPolicy::new().delay(Duration::from_millis(10)).max_restarts(MaxRestarts::AtMost(1));
        let handle = start([DaemonSpec::new("sleeper", "sleep").arg(needle).restart(once)]);
        let failed = wait_state(DEADLINE, &handle, "sleeper", UnitState::Failed).await;
        within(DEADLINE, "shutdown", handle.shutdown()).await;
        failed
    });
    drop(runtime);
    let error = failed.last_error.clone().unwrap_or_default();
    assert!(error.contains("cannot run `sleep`") && error.contains("no IO driver"), "{failed:?}");
    assert_eq!((failed.restarts_total, failed.pid), (1, None), "{failed:?}");
    let left = processes_with(&format!("sleep {needle}"));
    for pid in &left {
        let _ = rustix::process::kill_process(Pid::from_raw(*pid as i32).unwrap(), rustix::process::Signal::KILL);
    }
    assert!(left.is_empty(), "left running: {left:?}");
}

/// A shutdown asked while the supervisor still launches its daemons (300,
/// seconds of spawns on a slow machine): the launch stops there, and the
/// rest are never spawned. Every one was spawned after the request, only
/// to be stopped again, or killed once the shutdown's time was up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_during_the_launch_spawns_no_more_daemons() {
    const UNITS: usize = 300;
    let specs = (0..UNITS).map(|index| DaemonSpec::new(format!("d{index}"), "sleep").arg("47111020"));
    let sup = specs.fold(Supervisor::builder(), |builder, spec| builder.daemon(spec)).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "the first running", handle.wait_state("d0", UnitState::Running)).await.unwrap();
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    let mut started = 0;
    while let Ok(event) = events.try_recv() {
        started += usize::from(matches!(event.kind, EventKind::Started { .. }));
    }
    assert_eq!(report.units.len(), UNITS);
    assert!(report.is_clean(), "{report:#?}");
    assert!(started < UNITS / 2, "{started} of {UNITS} daemons spawned, the shutdown asked after the first");
}

/// "If the tokio runtime is shut down first, the units go with it (tasks
/// dropped, processes killed)". A runtime dropped while the root's first
/// turn ran: each run spawned into it was dropped at once, reported as a
/// failure, and restarted by a policy with no delay, its program spawned
/// anew each time, up to 128 times in one drop.
#[test]
fn a_runtime_dropped_at_the_start_restarts_nothing() {
    let dir = tempfile::tempdir().expect("a scratch dir");
    let log = dir.path().join("runs");
    let mut restarted = Vec::new();
    for round in 0..30 {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
        let script = format!("echo run >> {}; sleep 0.01; exit 1", log.display());
        let handle = runtime.block_on(async {
            let spec = DaemonSpec::new("crashy", "sh")
                .args(["-c", &script])
                .restart(RestartPolicy::new().delay(Duration::ZERO));
            Supervisor::builder().daemon(spec).build().expect("valid").start()
        });
        drop(runtime);
        let status = handle.status("crashy").expect("registered");
        if status.restart_count > 0 || status.state.is_active() {
            restarted.push((round, status.state, status.restart_count, status.last_error));
        }
    }
    assert!(restarted.is_empty(), "restarted while its runtime was dropped: {restarted:?}");
}

/// "No process of a unit outlives it, and no zombie is left", with its
/// runtime dropped too: an exec probe's process killed as its runtime was
/// dropped was left a zombie, which only a later runtime's process driver
/// would reap.
#[test]
fn an_exec_probe_in_progress_when_the_runtime_is_dropped_leaves_no_zombie() {
    for (marker, multi_thread) in [("7777.552", false), ("7777.551", true)] {
        let runtime = if multi_thread {
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()
        } else {
            tokio::runtime::Builder::new_current_thread().enable_all().build()
        }
        .expect("a runtime");
        let probe = Probe::exec(["sleep", marker]).timeout(Duration::from_secs(60));
        let (handle, probe_pid) = runtime.block_on(async {
            let spec = DaemonSpec::new("probed", "sleep").arg("1000").readiness(Readiness::Probe(probe));
            let handle = Supervisor::builder().daemon(spec).build().expect("valid").start();
            let began = Instant::now();
            loop {
                if let Some(&pid) = processes_with(marker).first() {
                    break (handle, pid);
                }
                assert!(began.elapsed() < DEADLINE, "the probe never ran");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        drop(runtime);
        let stat = std::fs::read_to_string(format!("/proc/{probe_pid}/stat")).ok();
        let state = stat.as_deref().and_then(|stat| stat.rsplit_once(')')).map(|(_, rest)| rest.trim_start());
        assert!(
            state.is_none(),
            "the probe's process {probe_pid} is left ({}): {state:?}",
            if multi_thread { "multi-thread" } else { "current-thread" }
        );
        drop(handle);
    }
}
