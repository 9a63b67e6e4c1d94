//! Real processes meeting races in the engine: daemons stopped, removed or
//! restarted while they start, while a probe or a watchdog stops them,
//! while their group's strategy restarts them, while the supervisor shuts
//! down; process trees that outlive their leader, ignore the stop signal,
//! are stopped with `SIGSTOP` or flood their output as they are stopped.
//!
//! After each scenario every process the test saw is gone, no zombie is
//! left among the test's children, and what was reported is what happened.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use supervisor::{
    DaemonSpec, Error, EventKind, GroupSpec, Probe, Readiness, ShutdownReport, StopOutcome, Strategy, Supervisor,
    SupervisorHandle, UnitState,
};

#[path = "support/deadline.rs"]
mod deadline;
use deadline::{wait_for, wait_ready, wait_running, wait_state, within};
#[path = "support/specs.rs"]
mod specs;
use specs::{run_once, sh};

/// Far longer than any step takes when nothing hangs.
const DEADLINE: Duration = Duration::from_secs(20);

/// The fields of `/proc/<pid>/stat` after the command: state, ppid, pgrp, ...
fn stat(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat.rsplit_once(')')?.1.split_whitespace().map(str::to_owned).collect())
}

/// A process seen by the test: its pid and its start time, which tell it
/// from a later process given the same pid (pids are reused, and other
/// programs share the machine).
#[derive(Clone, Copy, Debug)]
struct Seen {
    pid: u32,
    /// `None` when it had already gone as it was seen.
    started: Option<u64>,
}

impl Seen {
    fn now(pid: u32) -> Seen {
        Seen { pid, started: start_time(pid) }
    }

    /// Whether the process is still there, zombie included.
    fn is_there(self) -> bool {
        self.started.is_some() && start_time(self.pid) == self.started
    }
}

/// The start time of `pid` (field 22 of its stat), if it exists.
fn start_time(pid: u32) -> Option<u64> {
    stat(pid)?.get(19)?.parse().ok()
}

/// This process's children that are zombies.
fn zombie_children() -> Vec<u32> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| stat(pid).is_some_and(|fields| fields[0] == "Z" && fields[1] == me))
        .collect()
}

/// The processes of every run started, read from the events.
struct Pids(Arc<Mutex<Vec<Seen>>>);

impl Pids {
    fn record(handle: &SupervisorHandle) -> Pids {
        let pids = Arc::new(Mutex::new(Vec::new()));
        let mut events = handle.subscribe();
        let seen = pids.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => {
                        if let EventKind::Started { pid: Some(pid), .. } = event.kind {
                            seen.lock().unwrap().push(Seen::now(pid));
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => panic!("events lost"),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        Pids(pids)
    }

    fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
}

/// Every process in `seen` is gone (a process of a unit's group ends within
/// moments of its leader's reap), and no child of this process stays a zombie.
async fn assert_all_gone(seen: &[Seen]) {
    for &process in seen {
        wait_for(DEADLINE, &format!("process {} to be gone", process.pid), || (!process.is_there()).then_some(()))
            .await;
    }
    // Another test's run may have just ended, its leader not reaped yet.
    wait_for(DEADLINE, "no zombie child", || zombie_children().is_empty().then_some(())).await;
}

/// The pids a script printed as `child <pid>` lines.
fn children_in(tail: &[String]) -> Vec<u32> {
    tail.iter().filter_map(|line| line.strip_prefix("child ")?.trim().parse().ok()).collect()
}

/// The processes a script printed as `child <pid>` lines, seen now.
fn seen_children(tail: &[String]) -> Vec<Seen> {
    children_in(tail).into_iter().map(Seen::now).collect()
}

async fn shut_down(handle: &SupervisorHandle) -> ShutdownReport {
    within(DEADLINE, "the shutdown", handle.shutdown()).await
}

// ---------------------------------------------------------------------------

/// A daemon stopped before its ready line came is `Stopped`, not ready,
/// without a pid or an error, and starts and becomes ready again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_stopped_before_its_ready_line_is_stopped_and_not_ready() {
    let handle = Supervisor::builder()
        .daemon(
            sh("web", "echo starting; sleep 0.5; echo up; exec sleep 100")
                .readiness(Readiness::OutputLine("up".into())),
        )
        .build()
        .unwrap()
        .start();
    let pids = Pids::record(&handle);
    let pid = Seen::now(wait_running(DEADLINE, &handle, "web").await);
    within(DEADLINE, "stop_unit", handle.stop_unit("web")).await.unwrap();
    let status = handle.status("web").unwrap();
    assert_eq!(status.state, UnitState::Stopped, "{status:?}");
    assert!(!status.ready && status.pid.is_none() && status.last_error.is_none(), "{status:?}");
    assert!(!pid.is_there(), "the leader {pid:?} was reaped before the stop returned");
    within(DEADLINE, "start_unit", handle.start_unit("web")).await.unwrap();
    wait_ready(DEADLINE, &handle, "web").await;
    shut_down(&handle).await;
    let mut all = pids.all();
    all.push(pid);
    assert_all_gone(&all).await;
}

/// A daemon removed before it sent `READY=1` stops gracefully and is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_removed_before_it_notifies_leaves_nothing() {
    let handle = Supervisor::builder()
        .daemon(sh("n", "sleep 0.5; systemd-notify --ready; exec sleep 100").readiness(Readiness::Notified))
        .build()
        .unwrap()
        .start();
    let pid = Seen::now(wait_running(DEADLINE, &handle, "n").await);
    let report = within(DEADLINE, "remove", handle.remove("n")).await.unwrap();
    assert_eq!(report.state, UnitState::Stopped, "{report:?}");
    assert_eq!(report.outcome, StopOutcome::Graceful, "{report:?}");
    assert!(handle.status("n").is_none());
    shut_down(&handle).await;
    assert_all_gone(&[pid]).await;
}

/// A leader that exits by itself leaves none of its background children.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_exits_leaves_no_child_behind() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let go = dir.path().join("go");
    let script = r#"sleep 100 & echo child $!; sleep 100 & echo child $!; while [ ! -e "$GO" ]; do sleep 0.01; done"#;
    let handle =
        Supervisor::builder().daemon(sh("p", script).env("GO", &go).restart(run_once())).build().unwrap().start();
    let tail = deadline::wait_tail(DEADLINE, &handle, "p", "two children", |tail| children_in(tail).len() == 2).await;
    let children = seen_children(&tail);
    std::fs::write(&go, "").expect("the leader's cue");
    let status = wait_state(DEADLINE, &handle, "p", UnitState::Exited).await;
    assert_eq!(status.exit_code, Some(0), "{status:?}");
    assert!(status.pid.is_none());
    assert_all_gone(&children).await;
    shut_down(&handle).await;
}

/// `sh -c 'sleep & sleep & wait'` restarted: the old leader and both of
/// its children are gone before the new run starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_that_waits_for_its_children_is_stopped_whole() {
    let handle = Supervisor::builder()
        .daemon(sh("p", "sleep 100 & echo child $!; sleep 100 & echo child $!; wait"))
        .build()
        .unwrap()
        .start();
    let pids = Pids::record(&handle);
    let leader = Seen::now(wait_running(DEADLINE, &handle, "p").await);
    let tail = deadline::wait_tail(DEADLINE, &handle, "p", "two children", |tail| children_in(tail).len() == 2).await;
    let mut all = seen_children(&tail);
    all.push(leader);
    within(DEADLINE, "restart", handle.restart("p")).await.unwrap();
    assert_all_gone(&all).await;
    let report = shut_down(&handle).await;
    assert_eq!(report.units[0].outcome, StopOutcome::Graceful, "{report:?}");
    assert_all_gone(&pids.all()).await;
}

/// A daemon flooding its output while it is stopped: what it prints as it
/// answers the stop is the last line of its tail once the stop returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_being_stopped_keeps_its_last_words() {
    let script = "trap 'echo bye; exit 0' TERM; while :; do echo x; done";
    let handle = Supervisor::builder().daemon(sh("flood", script)).build().unwrap().start();
    let pid = Seen::now(wait_running(DEADLINE, &handle, "flood").await);
    deadline::wait_tail(DEADLINE, &handle, "flood", "some output", |tail| !tail.is_empty()).await;
    within(DEADLINE, "stop_unit", handle.stop_unit("flood")).await.unwrap();
    let status = handle.status("flood").unwrap();
    assert_eq!(status.state, UnitState::Stopped, "{status:?}");
    assert_eq!(status.exit_code, Some(0), "{status:?}");
    assert_eq!(handle.tail("flood", 1).unwrap(), ["bye"]);
    shut_down(&handle).await;
    assert_all_gone(&[pid]).await;
}

/// A stopped (`SIGSTOP`) group that ignores `SIGTERM` once resumed is
/// killed at its stop timeout, and the report and the event say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigstopped_stubborn_daemon_is_killed_at_its_timeout_and_said_forced() {
    let handle = Supervisor::builder()
        .daemon(sh("s", "trap '' TERM; sleep 100 & echo child $!; wait").stop_timeout(Duration::from_millis(300)))
        .build()
        .unwrap()
        .start();
    let leader = wait_running(DEADLINE, &handle, "s").await;
    let tail = deadline::wait_tail(DEADLINE, &handle, "s", "the child", |tail| children_in(tail).len() == 1).await;
    let mut all = seen_children(&tail);
    all.push(Seen::now(leader));
    rustix::process::kill_process_group(
        rustix::process::Pid::from_raw(leader.cast_signed()).unwrap(),
        rustix::process::Signal::STOP,
    )
    .unwrap();
    let mut events = handle.subscribe();
    let report = shut_down(&handle).await;
    assert_eq!(report.units[0].outcome, StopOutcome::Forced, "{report:?}");
    let stopped =
        deadline::next_event(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Stopped { .. })).await;
    assert!(matches!(stopped.kind, EventKind::Stopped { forced: true, .. }), "{stopped:?}");
    assert_all_gone(&all).await;
}

/// A daemon removed while its group's `RestForOne` restart stops it is
/// removed; the others run again, and nothing is left after the shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_for_one_daemons_restarted_while_one_is_removed() {
    let group = GroupSpec::new("g")
        .strategy(Strategy::RestForOne)
        .daemon(sh("a", "exec sleep 100"))
        .daemon(sh("b", "trap '' TERM; exec sleep 100").stop_timeout(Duration::from_millis(500)))
        .daemon(sh("c", "exec sleep 100"));
    let handle = Supervisor::builder().group(group).build().unwrap().start();
    let pids = Pids::record(&handle);
    let a = wait_running(DEADLINE, &handle, "g/a").await;
    wait_running(DEADLINE, &handle, "g/b").await;
    wait_running(DEADLINE, &handle, "g/c").await;
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(a.cast_signed()).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let removed = within(DEADLINE, "remove", handle.remove("g/b")).await.expect("removed");
    assert_eq!(removed.state, UnitState::Stopped, "{removed:?}");
    assert!(handle.status("g/b").is_none());
    wait_running(DEADLINE, &handle, "g/a").await;
    wait_running(DEADLINE, &handle, "g/c").await;
    let report = shut_down(&handle).await;
    let names: Vec<_> = report.units.iter().map(|line| line.name.as_str()).collect();
    assert_eq!(names, ["g/c", "g/a", "g"], "{report:#?}");
    assert_all_gone(&pids.all()).await;
}

/// A `restart` while a liveness probe stops a daemon that ignores `SIGTERM`
/// waits for that stop, then starts one new run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liveness_stop_overtaken_by_a_restart_starts_one_new_run() {
    let handle = Supervisor::builder()
        .daemon(
            sh("l", "trap '' TERM; exec sleep 100")
                .stop_timeout(Duration::from_millis(800))
                .liveness(Probe::exec(["false"]).period(Duration::from_millis(50)).failure_threshold(1)),
        )
        .build()
        .unwrap()
        .start();
    let pids = Pids::record(&handle);
    let mut events = handle.subscribe();
    let first = wait_running(DEADLINE, &handle, "l").await;
    deadline::next_event(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::NotReady { .. })).await;
    within(DEADLINE, "restart", handle.restart("l")).await.unwrap();
    let status = handle.status("l").unwrap();
    assert!(status.state.is_active() && status.pid != Some(first), "{status:?}");
    let report = shut_down(&handle).await;
    assert_eq!(report.units.len(), 1, "{report:#?}");
    assert_all_gone(&pids.all()).await;
}

/// Daemons of nested groups, one not ready yet and one waiting for it,
/// stopped with the outer group: all at rest, without a pid; started again,
/// all ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_daemons_stopped_with_their_group_while_they_start() {
    let inner = GroupSpec::new("inner")
        .daemon(sh("x", "sleep 0.5; echo up; exec sleep 100").readiness(Readiness::OutputLine("up".into())))
        .daemon(sh("y", "exec sleep 100").depends_on(["x"]));
    let outer = GroupSpec::new("outer").group(inner).daemon(sh("z", "exec sleep 100"));
    let handle = Supervisor::builder().group(outer).build().unwrap().start();
    let pids = Pids::record(&handle);
    wait_running(DEADLINE, &handle, "outer/inner/x").await;
    within(DEADLINE, "stop_unit", handle.stop_unit("outer")).await.unwrap();
    for status in handle.statuses() {
        assert!(!status.state.is_active(), "{status:?}");
        assert!(status.pid.is_none(), "{status:?}");
    }
    within(DEADLINE, "start_unit", handle.start_unit("outer")).await.unwrap();
    wait_ready(DEADLINE, &handle, "outer").await;
    wait_running(DEADLINE, &handle, "outer/inner/y").await;
    let report = shut_down(&handle).await;
    assert_eq!(report.units.len(), 5, "{report:#?}");
    assert_all_gone(&pids.all()).await;
}

/// A group of daemons of every kind: one that cannot be spawned, one that
/// prints its ready line, one that fails while ignoring `SIGTERM`, one that
/// notifies, with dependencies between them.
fn storm_tree(strategy: Strategy) -> GroupSpec {
    let quick = || supervisor::RestartPolicy::new().delay(Duration::from_millis(2));
    GroupSpec::new("g")
        .strategy(strategy)
        .daemon(sh("a", "exec sleep 100").restart(quick()))
        .daemon(DaemonSpec::new("b", "/nonexistent/program").restart(quick()))
        .daemon(
            sh("c", "sleep 0.05; echo up; exec sleep 100")
                .readiness(Readiness::OutputLine("up".into()))
                .restart(quick())
                .depends_on(["a"]),
        )
        .daemon(sh("d", "trap '' TERM; sleep 0.02; exit 1").stop_timeout(Duration::from_millis(30)).restart(quick()))
        .daemon(
            sh("e", "sleep 0.03; systemd-notify --ready; exec sleep 100")
                .readiness(Readiness::Notified)
                .restart(quick())
                .depends_on(["c"]),
        )
}

/// Callers that stop, start, restart, remove, add and wait on the units of
/// a `storm_tree` at random: every call is answered, with success or an
/// error the storm allows; the report names each unit once, and nothing
/// is left running after the shutdown.
async fn storm(strategy: Strategy, seed: u64) {
    let handle = Supervisor::builder().event_capacity(1 << 16).group(storm_tree(strategy)).build().unwrap().start();
    let pids = Pids::record(&handle);
    let names = ["g", "g/a", "g/b", "g/c", "g/d", "g/e"];
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut callers = Vec::new();
    for caller in 0..3 {
        let handle = handle.clone();
        let mut rng = fastrand::Rng::with_seed(rng.u64(..));
        callers.push(tokio::spawn(async move {
            for call in 0..60 {
                let name = names[rng.usize(..names.len())];
                let what = rng.u8(..6);
                let outcome = tokio::time::timeout(DEADLINE, async {
                    match what {
                        0 => handle.stop_unit(name).await.map(drop),
                        1 => handle.start_unit(name).await.map(drop),
                        2 => handle.restart(name).await.map(drop),
                        3 if name != "g" => handle.remove(name).await.map(drop),
                        3 => Ok(()),
                        4 => {
                            let spec: supervisor::Spec = match name {
                                "g/a" => sh("a", "exec sleep 100").into(),
                                "g/c" => sh("c", "echo up; exec sleep 100")
                                    .readiness(Readiness::OutputLine("up".into()))
                                    .into(),
                                _ => sh(name.trim_start_matches("g/"), "sleep 0.01; exit 2").into(),
                            };
                            if name == "g" { Ok(()) } else { handle.add_to("g", spec).await }
                        }
                        _ => {
                            let _ = tokio::time::timeout(Duration::from_millis(30), handle.wait_ready(name)).await;
                            Ok(())
                        }
                    }
                })
                .await;
                match outcome {
                    Err(_) => panic!("seed {seed} caller {caller} call {call}: {what} on {name} hangs"),
                    Ok(Err(error)) => assert!(
                        matches!(
                            error,
                            Error::UnknownUnit { .. }
                                | Error::GroupNotRunning { .. }
                                | Error::HasDependents { .. }
                                | Error::DuplicateName { .. }
                                | Error::NotRunning { .. }
                        ),
                        "seed {seed} caller {caller} call {call}: {what} on {name}: {error}"
                    ),
                    Ok(Ok(())) => {}
                }
            }
        }));
    }
    for caller in callers {
        caller.await.unwrap();
    }
    let report = shut_down(&handle).await;
    let mut seen = std::collections::HashSet::new();
    for line in &report.units {
        assert!(seen.insert(line.name.clone()), "twice: {report:#?}");
    }
    for status in handle.statuses() {
        assert!(status.pid.is_none() && !status.state.is_active(), "{status:?}");
    }
    assert_all_gone(&pids.all()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_one_for_all() {
    for seed in 0..5 {
        storm(Strategy::OneForAll, seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_rest_for_one() {
    for seed in 10..15 {
        storm(Strategy::RestForOne, seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_one_for_one() {
    for seed in 20..25 {
        storm(Strategy::OneForOne, seed).await;
    }
}
