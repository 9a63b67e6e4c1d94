//! Daemons with real processes (`sh`, `sleep`, `seq`): exit reasons, restart
//! counting, stop and kill, process groups, output capture, and clean-up.
//!
//! Every wait has a deadline and checks a condition; nothing sleeps and hopes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use supervisor::{
    DaemonSpec, Event, EventKind, ExitReason, MaxRestarts, Output, Readiness, RestartOn, Signal, StopOutcome,
    Supervisor, SupervisorHandle, UnitState,
};
use tokio::sync::{RwLock, broadcast};

#[path = "support/deadline.rs"]
mod deadline;
use deadline::{wait_for, wait_running, wait_state, wait_status, wait_tail};
#[path = "support/specs.rs"]
mod specs;
use specs::{no_delay, run_once, sh, start};

/// How long any condition may take to come true before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);

/// Tests that count this process's file descriptors, children and memory
/// take it exclusively; every other test shares it.
static PROCESS_WIDE: RwLock<()> = RwLock::const_new(());

/// The next event that matches `pred`, skipping others.
async fn next_event(events: &mut broadcast::Receiver<Event>, pred: impl Fn(&Event) -> bool) -> Event {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) if pred(&event) => return event,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => panic!("missed {missed} events"),
                Err(broadcast::error::RecvError::Closed) => panic!("event channel closed"),
            }
        }
    };
    tokio::time::timeout(DEADLINE, wait).await.expect("the expected event came in time")
}

/// The state letter of `/proc/<pid>/stat` (`R`, `S`, `Z`, ...), if the pid exists.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Whether the process runs (a zombie has ended: it only waits to be reaped).
fn alive(pid: u32) -> bool {
    proc_state(pid).is_some_and(|state| state != 'Z' && state != 'X')
}

/// Whether the pid exists at all, zombie included.
fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

async fn wait_dead(pid: u32) {
    wait_for(DEADLINE, &format!("process {pid} to end"), || (!alive(pid)).then_some(())).await;
}

/// Zombie children of this test process.
fn zombie_children() -> Vec<u32> {
    let me = std::process::id();
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let mut fields = rest.split_whitespace();
        let (state, ppid) = (fields.next(), fields.next().and_then(|ppid| ppid.parse::<u32>().ok()));
        if state == Some("Z") && ppid == Some(me) {
            zombies.push(pid);
        }
    }
    zombies
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS in kB")
}

fn send_signal(signal: &str, pid: u32) {
    let status = Command::new("kill").args([signal, &pid.to_string()]).status().expect("run kill");
    assert!(status.success(), "kill {signal} {pid} failed");
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

impl AsRef<Path> for ScratchDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch_dir(test: &str) -> ScratchDir {
    let dir = std::env::temp_dir().join(format!("supervisor-daemons-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    ScratchDir(dir)
}

fn pids(lines: &[String]) -> Vec<u32> {
    lines.iter().map(|line| line.parse().unwrap_or_else(|_| panic!("a pid, not {line:?}"))).collect()
}

#[tokio::test]
async fn exit_code_is_kept_and_max_zero_runs_once() {
    let _shared = PROCESS_WIDE.read().await;
    let handle = start([sh("three", "echo run; exit 3").restart(no_delay().max_restarts(MaxRestarts::AtMost(0)))]);
    let status = wait_state(DEADLINE, &handle, "three", UnitState::Failed).await;
    assert_eq!(status.restart_count, 0);
    assert_eq!(status.exit_code, Some(3));
    assert_eq!(status.signal, None);
    assert_eq!(status.pid, None);
    assert!(status.last_error.as_deref().is_some_and(|error| error.contains("code 3")), "{status:?}");
    assert_eq!(handle.tail("three", 100).unwrap(), ["run"]);
    handle.shutdown().await;
}

#[tokio::test]
async fn max_three_restarts_runs_four_times_then_fails() {
    let _shared = PROCESS_WIDE.read().await;
    let handle = start([sh("flaky", "echo run; exit 7").restart(no_delay().max_restarts(MaxRestarts::AtMost(3)))]);
    let mut events = handle.subscribe();
    let gave_up = next_event(&mut events, |event| matches!(event.kind, EventKind::GaveUp { .. })).await;
    assert_eq!(gave_up.unit, "flaky");
    let status = handle.status("flaky").unwrap();
    assert_eq!(status.state, UnitState::Failed);
    assert_eq!(status.restart_count, 3);
    assert_eq!(status.exit_code, Some(7));
    assert_eq!(handle.tail("flaky", 100).unwrap(), ["run", "run", "run", "run"]);
    handle.shutdown().await;
}

#[tokio::test]
async fn clean_exit_is_not_restarted_on_failure_policy() {
    let _shared = PROCESS_WIDE.read().await;
    let handle = start([sh("done", "exit 0").restart(no_delay().on(RestartOn::Failure))]);
    let status = wait_state(DEADLINE, &handle, "done", UnitState::Exited).await;
    assert_eq!(status.exit_code, Some(0));
    assert_eq!(status.restart_count, 0);
    assert_eq!(status.last_error, None);
    handle.shutdown().await;
}

#[tokio::test]
async fn failures_to_spawn_name_the_program_and_follow_the_policy() {
    let _shared = PROCESS_WIDE.read().await;
    let dir = scratch_dir("spawn");
    let not_executable = dir.join("not-executable");
    std::fs::write(&not_executable, "#!/bin/sh\nexit 0\n").unwrap();
    let twice = || no_delay().max_restarts(MaxRestarts::AtMost(2));
    let handle = start([
        DaemonSpec::new("sleeper", "sleep").arg("1000"),
        DaemonSpec::new("missing", "supervisor-test-no-such-program").restart(twice()),
        DaemonSpec::new("absolute", "/nonexistent/dir/prog").restart(twice()),
        DaemonSpec::new("denied", &not_executable).restart(twice()),
        DaemonSpec::new("bad-dir", "sleep").arg("1").current_dir(dir.join("no-such-dir")).restart(twice()),
    ]);
    let sleeper = wait_running(DEADLINE, &handle, "sleeper").await;
    for (name, needles) in [
        ("missing", ["supervisor-test-no-such-program", "PATH"]),
        ("absolute", ["/nonexistent/dir/prog", "No such file"]),
        ("denied", ["not-executable", "ermission denied"]),
        ("bad-dir", ["sleep", "no-such-dir"]),
    ] {
        let status = wait_state(DEADLINE, &handle, name, UnitState::Failed).await;
        assert_eq!(status.restart_count, 2, "{name}");
        assert_eq!(status.pid, None, "{name}");
        let error = status.last_error.unwrap_or_else(|| panic!("{name} has a last_error"));
        for needle in needles {
            assert!(error.contains(needle), "{name}: {error:?} should mention {needle:?}");
        }
    }
    let status = handle.status("sleeper").unwrap();
    assert_eq!((status.state, status.pid, status.restart_count), (UnitState::Running, Some(sleeper), 0));
    assert!(alive(sleeper));
    handle.shutdown().await;
}

#[tokio::test]
async fn stopping_a_well_behaved_process_is_fast_and_not_a_failure() {
    let _shared = PROCESS_WIDE.read().await;
    let handle = start([DaemonSpec::new("sleeper", "sleep").arg("1000")]);
    let pid = wait_running(DEADLINE, &handle, "sleeper").await;
    let mut events = handle.subscribe();
    let began = Instant::now();
    handle.stop_unit("sleeper").await.unwrap();
    let took = began.elapsed();
    assert!(took < Duration::from_secs(1), "a SIGTERM stop took {took:?}");
    assert!(!exists(pid), "the process is reaped when stop_unit returns");
    let status = handle.status("sleeper").unwrap();
    assert_eq!(status.state, UnitState::Stopped);
    assert_eq!(status.pid, None);
    assert_eq!(status.signal, Some(Signal::TERM.number()), "how the run ended is kept");
    assert_eq!(status.last_error, None, "a requested stop is not a failure");
    let event = next_event(&mut events, |_| true).await;
    assert!(matches!(event.kind, EventKind::Stopped { forced: false, .. }), "{event:?}");
    // Stopped means stopped: nothing restarts it.
    handle.start_unit("sleeper").await.unwrap();
    let again = wait_running(DEADLINE, &handle, "sleeper").await;
    assert_ne!(again, pid);
    handle.shutdown().await;
}

#[tokio::test]
async fn configured_stop_signal_is_sent() {
    let _shared = PROCESS_WIDE.read().await;
    let script = "trap 'echo got INT; exit 0' INT; echo ready; while :; do sleep 0.01; done";
    let handle = start([sh("int", script).stop_signal(Signal::INT).stop_timeout(Duration::from_secs(5))]);
    wait_tail(DEADLINE, &handle, "int", "ready", |tail| tail.iter().any(|line| line == "ready")).await;
    let began = Instant::now();
    handle.stop_unit("int").await.unwrap();
    assert!(began.elapsed() < Duration::from_secs(4));
    assert!(handle.tail("int", 10).unwrap().iter().any(|line| line == "got INT"));
    let status = handle.status("int").unwrap();
    assert_eq!((status.state, status.exit_code), (UnitState::Stopped, Some(0)));
    handle.shutdown().await;
}

#[tokio::test]
async fn a_process_ignoring_sigterm_is_killed_after_the_timeout_and_not_before() {
    let _shared = PROCESS_WIDE.read().await;
    let timeout = Duration::from_millis(600);
    let script = "trap '' TERM; echo ready; exec sleep 1000";
    let handle = start([sh("stubborn", script).stop_timeout(timeout)]);
    let pid = wait_running(DEADLINE, &handle, "stubborn").await;
    wait_tail(DEADLINE, &handle, "stubborn", "ready", |tail| tail.iter().any(|line| line == "ready")).await;
    let mut events = handle.subscribe();
    let began = Instant::now();
    let stopping = tokio::spawn({
        let handle = handle.clone();
        async move { handle.stop_unit("stubborn").await }
    });
    wait_state(DEADLINE, &handle, "stubborn", UnitState::Stopping).await;
    assert!(alive(pid), "still alive during the grace period");
    stopping.await.unwrap().unwrap();
    let took = began.elapsed();
    assert!(took >= timeout, "killed before the timeout: {took:?}");
    assert!(took < timeout + Duration::from_secs(2), "killed long after the timeout: {took:?}");
    assert!(!exists(pid));
    let status = handle.status("stubborn").unwrap();
    assert_eq!(status.state, UnitState::Stopped);
    assert_eq!(status.signal, Some(Signal::KILL.number()));
    let event = next_event(&mut events, |event| matches!(event.kind, EventKind::Stopped { .. })).await;
    assert!(matches!(event.kind, EventKind::Stopped { forced: true, .. }), "{event:?}");
    handle.shutdown().await;
}

/// A shell that starts two grandchildren with `&` (the second ignores
/// SIGTERM), prints their pids, and waits.
const GRANDCHILDREN: &str = "sleep 1000 & echo $!; (trap '' TERM; exec sleep 1000) & echo $!; wait";

async fn grandchildren(handle: &SupervisorHandle, name: &str) -> Vec<u32> {
    let lines = wait_tail(DEADLINE, handle, name, "two grandchild pids", |tail| tail.len() == 2).await;
    let pids = pids(&lines);
    for &pid in &pids {
        assert!(alive(pid), "grandchild {pid} runs");
    }
    pids
}

#[tokio::test]
async fn grandchildren_are_gone_after_stop_unit() {
    let _shared = PROCESS_WIDE.read().await;
    let handle = start([sh("family", GRANDCHILDREN).stop_timeout(Duration::from_secs(5))]);
    let leader = wait_running(DEADLINE, &handle, "family").await;
    let grandchildren = grandchildren(&handle, "family").await;
    let began = Instant::now();
    handle.stop_unit("family").await.unwrap();
    assert!(began.elapsed() < Duration::from_secs(4), "the leader obeys SIGTERM: no need to wait for the timeout");
    assert!(!exists(leader));
    for pid in grandchildren {
        wait_dead(pid).await;
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn grandchildren_are_gone_after_shutdown() {
    let _shared = PROCESS_WIDE.read().await;
    let handle = start([sh("family", GRANDCHILDREN).stop_timeout(Duration::from_secs(5))]);
    let leader = wait_running(DEADLINE, &handle, "family").await;
    let grandchildren = grandchildren(&handle, "family").await;
    let report = handle.shutdown().await;
    assert_eq!(report.units[0].outcome, StopOutcome::Graceful);
    assert!(!exists(leader));
    for pid in grandchildren {
        wait_dead(pid).await;
    }
}

#[tokio::test]
async fn grandchildren_do_not_outlive_a_leader_that_exits() {
    let _shared = PROCESS_WIDE.read().await;
    let script = "sleep 1000 & echo $!; (trap '' TERM; exec sleep 1000) & echo $!; exit 0";
    let handle = start([sh("orphaner", script).restart(run_once())]);
    let status = wait_state(DEADLINE, &handle, "orphaner", UnitState::Exited).await;
    assert_eq!(status.exit_code, Some(0));
    for pid in pids(&handle.tail("orphaner", 10).unwrap()) {
        wait_dead(pid).await;
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn an_outside_sigkill_is_reported_as_signal_9_and_restarted() {
    let _shared = PROCESS_WIDE.read().await;
    let handle = start([DaemonSpec::new("victim", "sleep").arg("1000").restart(no_delay())]);
    let mut events = handle.subscribe();
    let first = wait_running(DEADLINE, &handle, "victim").await;
    send_signal("-KILL", first);
    let exited = next_event(&mut events, |event| matches!(event.kind, EventKind::Exited { .. })).await;
    assert_eq!(exited.kind, EventKind::Exited { reason: ExitReason::Signal(9) });
    let started = next_event(&mut events, |event| matches!(event.kind, EventKind::Started { .. })).await;
    let EventKind::Started { restart_count, pid: Some(second) } = started.kind else { panic!("{started:?}") };
    assert_eq!(restart_count, 1);
    assert_ne!(second, first);
    assert!(!exists(first));
    let status = wait_status(DEADLINE, &handle, "victim", |status| status.pid == Some(second)).await;
    assert_eq!(status.signal, Some(9));
    assert_eq!(status.exit_code, None);
    assert!(status.last_error.as_deref().is_some_and(|error| error.contains("signal 9")), "{status:?}");

    // A SIGTERM from outside is a failure too, not a requested stop.
    send_signal("-TERM", second);
    let exited = next_event(&mut events, |event| matches!(event.kind, EventKind::Exited { .. })).await;
    assert_eq!(exited.kind, EventKind::Exited { reason: ExitReason::Signal(15) });
    let status = wait_status(DEADLINE, &handle, "victim", |status| status.restart_count == 2).await;
    assert_ne!(status.state, UnitState::Stopped);
    handle.shutdown().await;
}

#[tokio::test]
async fn restart_gives_a_new_process_after_the_old_one_is_gone() {
    let _shared = PROCESS_WIDE.read().await;
    let handle = start([sh("family", GRANDCHILDREN).stop_timeout(Duration::from_secs(5))]);
    let old = wait_running(DEADLINE, &handle, "family").await;
    let old_grandchildren = grandchildren(&handle, "family").await;
    let mut events = handle.subscribe();
    handle.restart("family").await.unwrap();
    // The old run has been stopped and reaped before the new one is spawned.
    assert!(!exists(old), "the old leader is reaped when restart returns");
    let stopped = next_event(&mut events, |_| true).await;
    assert!(matches!(stopped.kind, EventKind::Stopped { .. }), "first the stop: {stopped:?}");
    let started = next_event(&mut events, |_| true).await;
    let EventKind::Started { restart_count: 0, pid: Some(new) } = started.kind else {
        panic!("then the start: {started:?}")
    };
    assert_ne!(new, old);
    for pid in old_grandchildren {
        wait_dead(pid).await;
    }
    assert_eq!(wait_running(DEADLINE, &handle, "family").await, new);
    handle.shutdown().await;
}

#[tokio::test]
async fn env_env_remove_and_current_dir() {
    let _shared = PROCESS_WIDE.read().await;
    let dir = scratch_dir("cwd");
    let script = r#"echo "FOO=$FOO"; echo "GONE=${GONE-unset}"; echo "HOME=${HOME:+set}"; pwd -P"#;
    let handle = start([sh("env", script)
        .env("FOO", "hello world")
        .env("GONE", "x")
        .env_remove("GONE")
        .current_dir(&dir)
        .restart(run_once())]);
    wait_state(DEADLINE, &handle, "env", UnitState::Exited).await;
    let expected_dir = dir.canonicalize().unwrap().display().to_string();
    assert_eq!(handle.tail("env", 10).unwrap(), ["FOO=hello world", "GONE=unset", "HOME=set", expected_dir.as_str()]);
    handle.shutdown().await;
}

#[tokio::test]
async fn env_clear_starts_from_an_empty_environment() {
    let _shared = PROCESS_WIDE.read().await;
    let handle =
        start([DaemonSpec::new("env", "env").env("DROPPED", "1").env_clear().env("ONLY", "1").restart(run_once())]);
    let status = wait_state(DEADLINE, &handle, "env", UnitState::Exited).await;
    assert_eq!(status.exit_code, Some(0), "{status:?}");
    assert_eq!(handle.tail("env", 10).unwrap(), ["ONLY=1"]);
    handle.shutdown().await;
}

#[tokio::test]
async fn tail_keeps_arrival_order_across_stdout_and_stderr() {
    let _shared = PROCESS_WIDE.read().await;
    let dir = scratch_dir("order");
    // Each line waits for the test to acknowledge the previous one, so the
    // arrival order is known whatever the scheduling.
    let script = r#"i=0
for stream in out err err out err out; do
  i=$((i+1))
  if [ "$stream" = out ]; then echo "$i $stream"; else echo "$i $stream" >&2; fi
  while [ ! -e "$ACKS/$i" ]; do sleep 0.005; done
done"#;
    let handle = start([sh("order", script).env("ACKS", &dir).restart(run_once())]);
    let expected = ["1 out", "2 err", "3 err", "4 out", "5 err", "6 out"];
    for (i, line) in expected.iter().enumerate() {
        wait_tail(DEADLINE, &handle, "order", line, |tail| tail.len() == i + 1).await;
        std::fs::write(dir.join((i + 1).to_string()), "").unwrap();
    }
    wait_state(DEADLINE, &handle, "order", UnitState::Exited).await;
    assert_eq!(handle.tail("order", 100).unwrap(), expected);
    assert_eq!(handle.tail("order", 2).unwrap(), ["5 err", "6 out"], "the last lines, oldest first");
    handle.shutdown().await;
}

#[tokio::test]
async fn output_is_decoded_lossily_and_line_endings_stripped() {
    let _shared = PROCESS_WIDE.read().await;
    let script = r"printf 'caf\351\n'; printf 'dos\r\n'; printf 'no newline at the end'";
    let handle = start([sh("bytes", script).restart(run_once())]);
    wait_state(DEADLINE, &handle, "bytes", UnitState::Exited).await;
    assert_eq!(handle.tail("bytes", 10).unwrap(), ["caf\u{FFFD}", "dos", "no newline at the end"]);
    handle.shutdown().await;
}

#[tokio::test]
async fn the_tail_is_bounded() {
    let _shared = PROCESS_WIDE.read().await;
    let handle = start([DaemonSpec::new("seq", "seq").args(["1", "50"]).tail_lines(5).restart(run_once())]);
    wait_state(DEADLINE, &handle, "seq", UnitState::Exited).await;
    assert_eq!(handle.tail("seq", 100).unwrap(), ["46", "47", "48", "49", "50"]);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_100k_lines_loses_none() {
    let _shared = PROCESS_WIDE.read().await;
    const LINES: usize = 100_000;
    let handle =
        start([DaemonSpec::new("burst", "seq").args(["1", &LINES.to_string()]).tail_lines(LINES).restart(run_once())]);
    let status = wait_state(DEADLINE, &handle, "burst", UnitState::Exited).await;
    assert_eq!(status.exit_code, Some(0));
    // The run has ended only once its output is read: the tail is complete now.
    let tail = handle.tail("burst", LINES).unwrap();
    assert_eq!(tail.len(), LINES);
    for (i, line) in tail.iter().enumerate() {
        assert_eq!(*line, (i + 1).to_string());
    }
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_3_mb_line_is_split_and_does_not_block_the_child() {
    let _shared = PROCESS_WIDE.read().await;
    const BYTES: usize = 3_000_000;
    let script = format!("head -c {BYTES} /dev/zero | tr '\\000' a; echo; echo done");
    let handle = start([sh("huge", &script).tail_bytes(4 << 20).restart(run_once())]);
    let status = wait_state(DEADLINE, &handle, "huge", UnitState::Exited).await;
    assert_eq!(status.exit_code, Some(0));
    let tail = handle.tail("huge", 1000).unwrap();
    let (last, pieces) = tail.split_last().expect("lines");
    assert_eq!(last, "done");
    assert!(pieces.len() > 1, "split into pieces");
    assert!(pieces.iter().all(|piece| piece.len() <= 64 * 1024 && piece.bytes().all(|byte| byte == b'a')));
    assert_eq!(pieces.iter().map(String::len).sum::<usize>(), BYTES);
    handle.shutdown().await;
}

#[tokio::test]
async fn output_can_be_inherited_or_discarded() {
    let _shared = PROCESS_WIDE.read().await;
    let dir = scratch_dir("output");
    // Each child records where its stdout and stderr point, without writing to them.
    let script = r#"readlink /proc/self/fd/3 3>&1 >"$DIR/$UNIT.1"; readlink /proc/self/fd/3 3>&2 >"$DIR/$UNIT.2""#;
    let unit = |name: &str, output: Output| {
        sh(name, script).env("DIR", &dir).env("UNIT", name).output(output).restart(run_once())
    };
    let handle = start([
        unit("captured", Output::Capture),
        unit("inherited", Output::Inherit),
        unit("discarded", Output::Discard),
    ]);
    for name in ["captured", "inherited", "discarded"] {
        let status = wait_state(DEADLINE, &handle, name, UnitState::Exited).await;
        assert_eq!(status.exit_code, Some(0), "{name}: {status:?}");
    }
    let target =
        |name: &str, fd: u8| std::fs::read_to_string(dir.join(format!("{name}.{fd}"))).unwrap().trim().to_owned();
    let ours = |fd: u8| std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap().display().to_string();
    for fd in [1, 2] {
        assert!(target("captured", fd).starts_with("pipe:"), "{}", target("captured", fd));
        assert_eq!(target("inherited", fd), ours(fd));
        assert_eq!(target("discarded", fd), "/dev/null");
    }
    handle.shutdown().await;
}

#[test]
fn dropping_the_runtime_kills_the_children() {
    let _shared = PROCESS_WIDE.blocking_read();
    for multi_thread in [false, true] {
        let runtime = if multi_thread {
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()
        } else {
            tokio::runtime::Builder::new_current_thread().enable_all().build()
        }
        .unwrap();
        let (handle, leaders, grandchildren) = runtime.block_on(async {
            let handle = start([
                DaemonSpec::new("sleeper", "sleep").arg("1000"),
                sh("family", GRANDCHILDREN).stop_timeout(Duration::from_secs(30)),
            ]);
            let leaders =
                [wait_running(DEADLINE, &handle, "sleeper").await, wait_running(DEADLINE, &handle, "family").await];
            let grandchildren = grandchildren(&handle, "family").await;
            (handle, leaders, grandchildren)
        });
        drop(runtime);
        // The direct children are killed and reaped by the time the runtime is gone.
        for pid in leaders {
            assert!(
                !exists(pid),
                "child {pid} ({:?}) outlived the runtime (multi_thread: {multi_thread})",
                proc_state(pid)
            );
        }
        // Grandchildren are killed; their new parent reaps them.
        let deadline = Instant::now() + DEADLINE;
        for pid in grandchildren {
            while alive(pid) {
                assert!(Instant::now() < deadline, "grandchild {pid} outlived the runtime");
                std::thread::sleep(Duration::from_millis(3));
            }
        }
        drop(handle);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_daemons_shut_down_in_well_under_a_second() {
    let _shared = PROCESS_WIDE.read().await;
    let names: Vec<String> = (0..20).map(|i| format!("sleeper-{i}")).collect();
    let handle = start(names.iter().map(|name| DaemonSpec::new(name, "sleep").arg("1000")));
    let mut pids = Vec::new();
    for name in &names {
        pids.push(wait_running(DEADLINE, &handle, name).await);
    }
    let began = Instant::now();
    let report = handle.shutdown().await;
    let took = began.elapsed();
    assert!(took < Duration::from_secs(1), "20 daemons took {took:?} to shut down");
    assert_eq!(report.units.len(), 20);
    assert!(report.units.iter().all(|unit| unit.outcome == StopOutcome::Graceful), "{report}");
    for pid in pids {
        assert!(!exists(pid));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_of_2000_restarts_leaks_nothing() {
    let _exclusive = PROCESS_WIDE.write().await;
    let crash_loop = |restarts: u32| {
        sh("crasher", "echo crash >&2; exit 1").restart(no_delay().max_restarts(MaxRestarts::AtMost(restarts)))
    };
    // Warm up: lazily created runtime resources are not leaks.
    let warm_up = start([crash_loop(50)]);
    wait_state(DEADLINE, &warm_up, "crasher", UnitState::Failed).await;
    warm_up.shutdown().await;
    let (fds, rss) = (open_fds(), rss_kib());

    let handle = start([crash_loop(2000)]);
    let mut events = handle.subscribe();
    let mut pids = HashSet::new();
    let wait = async {
        loop {
            match events.recv().await {
                Ok(Event { kind: EventKind::Started { pid: Some(pid), .. }, .. }) => {
                    pids.insert(pid);
                }
                Ok(Event { kind: EventKind::GaveUp { .. }, .. }) => break,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("event channel closed"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(50), wait).await.expect("2000 restarts in time");
    let status = handle.status("crasher").unwrap();
    assert_eq!((status.state, status.restart_count), (UnitState::Failed, 2000));
    assert!(pids.len() > 1000, "distinct processes ran: {}", pids.len());
    assert_eq!(handle.tail("crasher", 5000).unwrap().len(), 1000, "the tail stays bounded");
    handle.shutdown().await;

    assert_eq!(zombie_children(), Vec::<u32>::new(), "zombies left behind");
    let fds_after = open_fds();
    assert!(fds_after <= fds, "file descriptors leaked: {fds} before, {fds_after} after");
    let grown = rss_kib().saturating_sub(rss);
    assert!(grown < 16 * 1024, "memory grew by {grown} KiB over 2000 restarts");
}

#[tokio::test]
async fn a_process_that_left_the_group_does_not_hold_up_the_unit() {
    let _shared = PROCESS_WIDE.read().await;
    let dir = scratch_dir("escaper");
    // The escaped process keeps the output pipes open after the leader,
    // which waits until it has left the group, exits.
    let script = r#"setsid sh -c 'echo $$; touch "$DIR/left"; sleep 0.8; echo late; exec sleep 1000' &
while [ ! -e "$DIR/left" ]; do sleep 0.005; done"#;
    let handle = start([sh("escaper", script).env("DIR", &dir).restart(run_once())]);
    let escaped = wait_tail(DEADLINE, &handle, "escaper", "the escaped pid", |tail| !tail.is_empty()).await;
    let escaped = pids(&escaped[..1])[0];
    let status = wait_state(DEADLINE, &handle, "escaper", UnitState::Exited).await;
    assert_eq!(status.exit_code, Some(0));
    let still_running = alive(escaped);
    // What it writes later is still read, so it is never blocked on a full pipe.
    wait_tail(DEADLINE, &handle, "escaper", "the late line", |tail| tail.iter().any(|line| line == "late")).await;
    send_signal("-KILL", escaped);
    wait_dead(escaped).await;
    assert!(still_running, "the run ended while the escaped process was still running");
    handle.shutdown().await;
}

#[tokio::test]
async fn the_tail_is_bounded_in_bytes_too() {
    let _shared = PROCESS_WIDE.read().await;
    // 100 lines of 999 bytes in a 10 000-byte tail: the newest 10 lines.
    let lines = DaemonSpec::new("lines", "seq").args(["-f", "%0999g", "1", "100"]).tail_bytes(10_000);
    // One line longer than the whole tail: kept cut, and marked as such.
    let long = sh("long", "echo first; head -c 300 /dev/zero | tr '\\000' a").tail_bytes(100);
    let handle = start([lines.restart(run_once()), long.restart(run_once())]);
    wait_state(DEADLINE, &handle, "lines", UnitState::Exited).await;
    let tail = handle.tail("lines", 1000).unwrap();
    let numbers: Vec<u32> = tail.iter().map(|line| line.parse().expect("a number")).collect();
    assert_eq!(numbers, (91..=100).collect::<Vec<_>>());
    assert!(tail.iter().all(|line| line.len() == 999));
    wait_state(DEADLINE, &handle, "long", UnitState::Exited).await;
    let tail = handle.tail("long", 10).unwrap();
    assert_eq!(tail.len(), 1, "the cut line fills the tail: {tail:?}");
    let (kept, marker) = tail[0].split_once('[').expect("a marker");
    assert!(kept.bytes().all(|byte| byte == b'a'), "{tail:?}");
    assert_eq!(marker, format!("… {} bytes not kept in the tail]", 300 - kept.len()));
    assert!(tail[0].len() <= 100 && tail[0].len() > 90, "{tail:?}");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_tail_holds_at_most_a_mebibyte() {
    let _shared = PROCESS_WIDE.read().await;
    // 3 MB of text in 64 KiB pieces: fewer than the 1000 lines of the
    // default line bound, far more than the default byte bound.
    let script = "head -c 3000000 /dev/zero | tr '\\000' a; echo; echo done";
    let handle = start([sh("big", script).restart(run_once())]);
    wait_state(DEADLINE, &handle, "big", UnitState::Exited).await;
    let tail = handle.tail("big", 1000).unwrap();
    assert_eq!(tail.last().map(String::as_str), Some("done"));
    let kept: usize = tail.iter().map(String::len).sum();
    assert!((1024 * 1024 - 64 * 1024..=1024 * 1024).contains(&kept), "kept {kept} bytes");
    handle.shutdown().await;
}

#[tokio::test]
async fn carriage_returns_end_progress_pieces_that_do_not_pile_up() {
    let _shared = PROCESS_WIDE.read().await;
    // 20 000 progress updates without a newline (about 130 KB), then lines.
    let script = r#"i=0
while [ $i -lt 20000 ]; do i=$((i+1)); printf '\r%d%%' $i; done
printf '\rdone\n'; printf 'crlf\r\n'; printf 'a\rb\r\n'"#;
    let handle = start([sh("progress", script).restart(run_once())]);
    wait_state(DEADLINE, &handle, "progress", UnitState::Exited).await;
    // Each progress piece replaced the one before it; a `\r\n` still ends a line.
    assert_eq!(handle.tail("progress", 100).unwrap(), ["20000%", "done", "crlf", "a", "b"]);
    handle.shutdown().await;
}

/// A progress piece ended by a `\r` is in the tail at once, though the
/// process writes nothing more for a long while: the `\r` is all it takes.
#[tokio::test]
async fn a_progress_piece_is_in_the_tail_while_the_process_pauses() {
    let _shared = PROCESS_WIDE.read().await;
    let handle = start([sh("bar", r"printf '10%%\r50%%\r'; exec sleep 100")]);
    // Output sends no event: the tail is looked at until it holds `50%`.
    wait_tail(DEADLINE, &handle, "bar", "the latest progress piece", |tail| tail == ["50%"]).await;
    handle.shutdown().await;
}

/// A `\n` that comes after a pause following a `\r` ends a line: the
/// piece already shown is kept, and the next progress piece does not
/// replace it.
#[tokio::test]
async fn a_newline_after_a_pause_makes_the_progress_piece_a_line() {
    let _shared = PROCESS_WIDE.read().await;
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    // The process pauses after `50%\r` until the test has seen it.
    let script = r#"printf '50%%\r'; while [ ! -e "$1" ]; do sleep 0.05; done; printf '\n60%%\r'; exec sleep 100"#;
    let handle = start([DaemonSpec::new("bar", "sh").args(["-c", script, "sh", go.to_str().unwrap()])]);
    wait_tail(DEADLINE, &handle, "bar", "the progress piece before the pause", |tail| tail == ["50%"]).await;
    std::fs::write(&go, "").unwrap();
    let tail = wait_tail(DEADLINE, &handle, "bar", "the piece after the pause", |tail| {
        tail.last().is_some_and(|last| last == "60%")
    })
    .await;
    assert_eq!(tail, ["50%", "60%"]);
    handle.shutdown().await;
}

/// A progress bar that ends with `\r\n`, the `\n` written after a pause:
/// the tail is what it is when all is written at once, the bar's progress
/// piece and then its last state as a line (the last state, a progress
/// piece while the process paused, had replaced the one before it).
#[tokio::test]
async fn a_late_newline_leaves_the_tail_as_if_the_line_were_written_at_once() {
    let _shared = PROCESS_WIDE.read().await;
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let script = r#"printf '10%%\r100%%\r'; while [ ! -e "$1" ]; do sleep 0.05; done; printf '\ndone\n'"#;
    let handle =
        start([DaemonSpec::new("bar", "sh").args(["-c", script, "sh", go.to_str().unwrap()]).restart(run_once())]);
    wait_tail(DEADLINE, &handle, "bar", "the progress piece before the pause", |tail| tail == ["100%"]).await;
    std::fs::write(&go, "").unwrap();
    wait_state(DEADLINE, &handle, "bar", UnitState::Exited).await;
    assert_eq!(handle.tail("bar", 10).unwrap(), ["10%", "100%", "done"]);
    handle.shutdown().await;
}

/// Progress pieces, `\r\n`, empty lines, a NUL byte and characters cut
/// across writes, with pauses between the writes: the tail is that of the
/// same output written at once, whichever way the pauses fall.
#[tokio::test]
async fn output_written_in_pieces_with_pauses_is_told_as_if_written_at_once() {
    let _shared = PROCESS_WIDE.read().await;
    let writes = [
        r"10%%\r",
        r"50%%\r",
        r"\n",
        r"caf\303",
        r"\251 ok\r",
        r"\n\r",
        r"\n",
        r"x\000y\r\r\n",
        r"\342\202",
        r"\254\n",
        "end",
    ];
    let paused = writes.map(|write| format!("printf '{write}'")).join("; sleep 0.01; ");
    let at_once = format!("printf '{}'", writes.concat());
    let handle = start([sh("paused", &paused).restart(run_once()), sh("at-once", &at_once).restart(run_once())]);
    for unit in ["paused", "at-once"] {
        wait_state(DEADLINE, &handle, unit, UnitState::Exited).await;
    }
    let expected = ["10%", "50%", "café ok", "", "x\0y", "", "€", "end"];
    assert_eq!(handle.tail("at-once", 100).unwrap(), expected);
    assert_eq!(handle.tail("paused", 100).unwrap(), expected);
    handle.shutdown().await;
}

/// Both streams written in turns, each ending with a line left without its
/// newline as the process exits: every line of each is in the tail, in the
/// order its stream wrote them, the unfinished ones included.
#[tokio::test]
async fn interleaved_streams_that_end_unfinished_lose_nothing() {
    let _shared = PROCESS_WIDE.read().await;
    let script = r"printf 'o1\n'; printf 'e1\n' >&2; printf 'o2 '; printf 'e2 ' >&2; sleep 0.01
        printf 'end\n'; printf 'end\n' >&2; printf 'e50%%\r' >&2; printf 'o-last'; printf 'e-last' >&2; exit 3";
    let handle = start([sh("both", script).restart(run_once())]);
    let status = wait_state(DEADLINE, &handle, "both", UnitState::Exited).await;
    assert_eq!(status.exit_code, Some(3), "{status:?}");
    let tail = handle.tail("both", 100).unwrap();
    let of = |stream: char| tail.iter().filter(|line| line.starts_with(stream)).cloned().collect::<Vec<_>>();
    assert_eq!(of('o'), ["o1", "o2 end", "o-last"], "{tail:?}");
    assert_eq!(of('e'), ["e1", "e2 end", "e50%", "e-last"], "{tail:?}");
    assert_eq!(tail.len(), 7, "{tail:?}");
    handle.shutdown().await;
}

#[tokio::test]
async fn a_stopped_process_group_still_stops_gracefully() {
    let _shared = PROCESS_WIDE.read().await;
    let handle = start([DaemonSpec::new("frozen", "sleep").arg("1000").stop_timeout(Duration::from_secs(30))]);
    let pid = wait_running(DEADLINE, &handle, "frozen").await;
    let status = Command::new("kill").args(["-s", "STOP", "--", &format!("-{pid}")]).status().expect("run kill");
    assert!(status.success(), "kill -s STOP -{pid} failed");
    wait_for(DEADLINE, "the group to be stopped", || (proc_state(pid) == Some('T')).then_some(())).await;
    let mut events = handle.subscribe();
    let began = Instant::now();
    handle.stop_unit("frozen").await.unwrap();
    let took = began.elapsed();
    let stopped = next_event(&mut events, |event| matches!(event.kind, EventKind::Stopped { .. })).await;
    assert!(matches!(stopped.kind, EventKind::Stopped { forced: false, .. }), "{stopped:?}");
    assert!(took < DEADLINE, "the stop took {took:?}");
    let status = handle.status("frozen").unwrap();
    assert_eq!((status.state, status.signal), (UnitState::Stopped, Some(15)), "{status:?}");
    assert!(!exists(pid));
    handle.shutdown().await;
}

/// The stop signal reaches a process once, with `SIGCONT` before it. This
/// program takes a second `SIGTERM` as "quit now" (its handler restores the
/// default action), as some do, and would die of it; in five rounds, a
/// second signal sent after the first kills it at least once.
#[tokio::test]
async fn the_stop_signal_is_sent_once() {
    let _shared = PROCESS_WIDE.read().await;
    let program = "import signal, sys, time\n\
        def first(signum, frame):\n    signal.signal(signal.SIGTERM, signal.SIG_DFL)\n    print('stopping', flush=True)\n    time.sleep(0.5)\n    sys.exit(0)\n\
        signal.signal(signal.SIGTERM, first)\nprint('ready', flush=True)\nwhile True:\n    time.sleep(1)\n";
    let spec = DaemonSpec::new("graceful", "python3")
        .args(["-c", program])
        .readiness(Readiness::OutputLine("ready".to_owned()))
        .stop_timeout(DEADLINE);
    for round in 0..5 {
        let handle = start([spec.clone()]);
        tokio::time::timeout(DEADLINE, handle.wait_ready("graceful")).await.expect("ready in time").unwrap();
        handle.stop_unit("graceful").await.unwrap();
        let status = handle.status("graceful").unwrap();
        assert_eq!((status.exit_code, status.signal), (Some(0), None), "round {round}: {status:?}");
        assert_eq!(handle.tail("graceful", 10).unwrap(), ["ready", "stopping"], "round {round}");
        handle.shutdown().await;
    }
}

#[tokio::test]
async fn success_codes_count_as_success_and_keep_the_real_code() {
    let _shared = PROCESS_WIDE.read().await;
    let on_failure = || no_delay().on(RestartOn::Failure).max_restarts(MaxRestarts::AtMost(1));
    let handle = start([
        sh("expected", "exit 143").success_codes([0, 143]).restart(on_failure()),
        // The list replaces the default: without 0, exiting with 0 fails.
        sh("zero", "exit 0").success_codes([143]).restart(on_failure()),
        sh("other", "exit 3").success_codes([0, 143]).restart(on_failure()),
    ]);
    let mut events = handle.subscribe();
    let expected = wait_state(DEADLINE, &handle, "expected", UnitState::Exited).await;
    assert_eq!((expected.exit_code, expected.restart_count), (Some(143), 0), "{expected:?}");
    assert_eq!(expected.last_error, None);
    let exited =
        next_event(&mut events, |event| event.unit == "expected" && matches!(event.kind, EventKind::Exited { .. }))
            .await;
    assert_eq!(exited.kind, EventKind::Exited { reason: ExitReason::SuccessCode(143) });
    let zero = wait_state(DEADLINE, &handle, "zero", UnitState::Failed).await;
    assert_eq!((zero.exit_code, zero.restart_count), (Some(0), 1), "{zero:?}");
    assert_eq!(zero.last_error.as_deref(), Some("exited with code 0"));
    let other = wait_state(DEADLINE, &handle, "other", UnitState::Failed).await;
    assert_eq!((other.exit_code, other.restart_count), (Some(3), 1), "{other:?}");
    handle.shutdown().await;
}

#[test]
fn success_codes_are_validated() {
    let build = |spec: DaemonSpec| Supervisor::builder().daemon(spec).build().map(drop);
    for (codes, needle) in [(vec![], "empty"), (vec![0, 256], "256"), (vec![-1], "-1")] {
        let err = build(sh("job", "true").success_codes(codes)).unwrap_err();
        assert!(
            matches!(&err, supervisor::Error::InvalidSetting { unit, setting: "success_codes", reason }
                if unit == "job" && reason.contains(needle)),
            "{err:?}"
        );
        assert!(err.to_string().contains("success_codes of `job`"), "{err}");
    }
    assert!(build(sh("job", "true").success_codes([0, 1, 255])).is_ok());
}
