//! A storm of control calls from several callers at once, racing units
//! that crash or panic, processes that exit, a missed watchdog, strategies
//! that regroup siblings, a group that gives up, dependencies, units and
//! groups added and removed at run time, and the end of the tree (a
//! shutdown after the storm or in its middle, or a critical unit giving
//! up). Whatever the interleaving:
//! - every call is answered, in time, with success or an allowed error;
//! - statuses stay consistent, and each unit's events tell one story (no
//!   run starts while one runs; nothing follows a removal);
//! - every wait ends with the supervisor;
//! - the shutdown reports each unit once, and no run outlives it: no task's
//!   future, no process.
//!
//! The callers' choices come from seeded generators, so a failure names the
//! seed that reproduces the same choices (the interleaving still varies).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[path = "support/calls.rs"]
mod calls;
#[path = "support/live.rs"]
mod live;

use calls::{ANSWER_WITHIN, answered};
use live::Live;
use supervisor::{
    Context, DaemonSpec, Error, Event, EventKind, GroupSpec, MaxRestarts, Probe, Readiness, RestartPolicy,
    ShutdownCause, ShutdownOrder, ShutdownReport, Signal, Spec, Strategy, Supervisor, SupervisorHandle, TaskOutput,
    TaskSpec, UnitState,
};

const CALLERS: u64 = 4;
const CALLS_EACH: usize = 2000;

fn quick_restarts() -> RestartPolicy {
    RestartPolicy::new().delay(Duration::from_millis(1)).max_restarts(MaxRestarts::Unlimited)
}

/// A task whose runs `live` counts, each made by `run`, restarted quickly.
fn counted<F, Fut>(name: &str, live: &Live, run: F) -> TaskSpec
where
    F: Fn(Context) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: TaskOutput,
{
    let live = live.clone();
    TaskSpec::new(name, move |ctx: Context| {
        let alive = live.enter();
        let run = run(ctx);
        async move {
            let _alive = alive;
            run.await
        }
    })
    .restart(quick_restarts())
}

/// Runs until asked to stop.
fn idle(name: &str, live: &Live) -> TaskSpec {
    counted(name, live, |ctx| async move { ctx.cancelled().await })
}

/// Fails after a few milliseconds, again and again.
fn crashy(name: &str, live: &Live) -> TaskSpec {
    counted(name, live, |ctx| async move {
        let lasts = Duration::from_millis(2 + u64::from(ctx.restart_count() % 5));
        tokio::select! {
            () = tokio::time::sleep(lasts) => Err::<(), _>("crashed"),
            () = ctx.cancelled() => Ok(()),
        }
    })
}

/// Takes a while to stop once asked.
fn slow_to_stop(name: &str, live: &Live) -> TaskSpec {
    counted(name, live, |ctx| async move {
        ctx.cancelled().await;
        tokio::time::sleep(Duration::from_millis(15)).await;
    })
}

/// Ready a moment after it starts.
fn ready_later(name: &str, live: &Live) -> TaskSpec {
    counted(name, live, |ctx| async move {
        tokio::time::sleep(Duration::from_millis(3)).await;
        ctx.ready();
        ctx.cancelled().await;
    })
    .readiness(Readiness::Notified)
}

/// Gives signs of life, but now and then misses its watchdog.
fn forgetful(name: &str, live: &Live) -> TaskSpec {
    counted(name, live, |ctx| async move {
        for beat in 0u32.. {
            ctx.heartbeat();
            let pause = if beat % 7 == 6 { 40 } else { 2 };
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(pause)) => {}
                () = ctx.cancelled() => break,
            }
        }
    })
    .watchdog(Duration::from_millis(20))
}

/// Panics now and then: in its factory, in its run, or when its run is
/// dropped; otherwise it fails after a few milliseconds.
fn panicky(name: &str, live: &Live) -> TaskSpec {
    struct PanicsOnDrop(bool);
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            if self.0 && !std::thread::panicking() {
                panic!("a run that panics when dropped");
            }
        }
    }
    let (live, calls) = (live.clone(), Arc::new(AtomicI64::new(0)));
    TaskSpec::new(name, move |ctx: Context| {
        let call = calls.fetch_add(1, Ordering::SeqCst);
        assert!(call % 5 != 4, "a factory that panics");
        let (alive, bomb) = (live.enter(), PanicsOnDrop(call % 4 == 3));
        async move {
            let (_alive, _bomb) = (alive, bomb);
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(3)) => {}
                () = ctx.cancelled() => return Ok(()),
            }
            assert!(call % 3 != 2, "a run that panics");
            Err("failed")
        }
    })
    .restart(quick_restarts())
}

/// A process that runs until stopped.
fn sleeper(name: &str) -> DaemonSpec {
    DaemonSpec::new(name, "sleep").arg("1000").restart(quick_restarts())
}

/// A process that exits with a failure after a few milliseconds.
fn quitter(name: &str) -> DaemonSpec {
    DaemonSpec::new(name, "sh").args(["-c", "sleep 0.01; exit 3"]).restart(quick_restarts())
}

/// How the storm's tree ends.
#[derive(Clone, Copy, PartialEq)]
enum Ending {
    /// Shut down after the storm.
    After,
    /// Shut down in the middle of the storm.
    Midway,
    /// A critical unit gives up in the middle of the storm, and the tree
    /// ends by itself.
    ByItself,
}

fn tree(live: &Live, order: ShutdownOrder, ending: Ending) -> Supervisor {
    let builder = if ending == Ending::ByItself {
        // Gives up after about 40 runs of a few milliseconds each.
        let last = RestartPolicy::new().delay(Duration::from_millis(5)).max_restarts(MaxRestarts::AtMost(40));
        Supervisor::builder().task(crashy("vital", live).restart(last).critical())
    } else {
        Supervisor::builder()
    };
    builder
        .shutdown_order(order)
        .group(
            GroupSpec::new("all")
                .strategy(Strategy::OneForAll)
                // Its crashing unit makes it give up now and then: its
                // parent restarts it.
                .intensity(3, Duration::from_millis(100))
                .restart(quick_restarts())
                .task(ready_later("a", live))
                .task(idle("b", live).depends_on(["a"]))
                .task(crashy("c", live))
                .task(slow_to_stop("d", live)),
        )
        .group(
            GroupSpec::new("rest")
                .strategy(Strategy::RestForOne)
                .restart(quick_restarts())
                .task(idle("x", live))
                .task(crashy("y", live).depends_on(["x"]))
                .task(slow_to_stop("z", live))
                .group(GroupSpec::new("procs").daemon(sleeper("p")).daemon(quitter("q"))),
        )
        .task(crashy("r1", live))
        .task(slow_to_stop("r2", live).depends_on(["rest"]))
        .task(ready_later("r3", live))
        .task(forgetful("w", live))
        .task(panicky("boom", live))
        .build()
        .expect("a valid tree")
}

const REGISTERED: [&str; 17] = [
    "all",
    "all/a",
    "all/b",
    "all/c",
    "all/d",
    "rest",
    "rest/x",
    "rest/y",
    "rest/z",
    "rest/procs",
    "rest/procs/p",
    "rest/procs/q",
    "r1",
    "r2",
    "r3",
    "w",
    "boom",
];

/// The errors a call may meet while others change the tree under it.
fn expected(error: &Error) -> bool {
    matches!(
        error,
        Error::UnknownUnit { .. }
            | Error::DuplicateName { .. }
            | Error::GroupNotRunning { .. }
            | Error::HasDependents { .. }
            | Error::ShuttingDown { .. }
            | Error::WrongKind { .. }
            | Error::NotRunning { .. }
    )
}

/// The units the callers added, which any of them may act on.
#[derive(Clone, Default)]
struct Added(Arc<Mutex<Vec<String>>>);

impl Added {
    fn push(&self, name: String) {
        self.0.lock().unwrap().push(name);
    }

    fn pick(&self, rng: &mut fastrand::Rng) -> Option<String> {
        let added = self.0.lock().unwrap();
        (!added.is_empty()).then(|| added[rng.usize(..added.len())].clone())
    }

    fn take(&self, rng: &mut fastrand::Rng) -> Option<String> {
        let mut added = self.0.lock().unwrap();
        let len = added.len();
        (len > 0).then(|| added.swap_remove(rng.usize(..len)))
    }
}

/// One caller: `CALLS_EACH` calls chosen by the generator seeded `seed`,
/// on registered units and on units any caller added.
async fn caller(handle: SupervisorHandle, live: Live, added: Added, seed: u64) -> Result<(), String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    for call in 0..CALLS_EACH {
        let picked = if rng.u8(..4) == 0 { added.pick(&mut rng) } else { None };
        let unit = picked.unwrap_or_else(|| REGISTERED[rng.usize(..REGISTERED.len())].to_owned());
        let unit = unit.as_str();
        let what = rng.u8(..11);
        let outcome = async {
            match what {
                0 => handle.stop_unit(unit).await,
                1 => handle.start_unit(unit).await,
                2 => handle.restart(unit).await,
                3 => handle.pause_restarts(unit).await,
                4 => handle.resume_restarts(unit).await,
                5 | 6 => {
                    let name = format!("dyn-{seed}-{call}");
                    // Into the root, a registered group, or a unit added
                    // before (a group of them, or a task: `WrongKind`).
                    let parent = match rng.u8(..3) {
                        0 => None,
                        1 => Some("rest".to_owned()),
                        _ => added.pick(&mut rng),
                    };
                    // Some depend on a registered sibling, which may then be
                    // refused removal, and holds them back while not ready.
                    let sibling = match parent.as_deref() {
                        None => Some(["r1", "r3", "w"][rng.usize(..3)]),
                        Some("rest") => Some(["x", "z"][rng.usize(..2)]),
                        Some(_) => None,
                    };
                    let spec: Spec = match rng.u8(..5) {
                        0 => GroupSpec::new(&name)
                            .strategy(Strategy::OneForAll)
                            .restart(quick_restarts())
                            .task(idle("i", &live))
                            .task(crashy("c", &live))
                            .into(),
                        1 => crashy(&name, &live).into(),
                        2 if sibling.is_some() => idle(&name, &live).depends_on(sibling).into(),
                        _ => idle(&name, &live).into(),
                    };
                    let outcome = match &parent {
                        Some(parent) => handle.add_to(parent, spec).await,
                        None => handle.add(spec).await,
                    };
                    if outcome.is_ok() {
                        added.push(parent.map_or_else(|| name.clone(), |parent| format!("{parent}/{name}")));
                    }
                    outcome
                }
                7 => match added.take(&mut rng) {
                    Some(name) => handle.remove(&name).await.map(drop),
                    None => Ok(()),
                },
                9 => handle.signal(unit, Signal::HUP),
                8 => {
                    let wait = handle.wait_state(unit, UnitState::Running);
                    // A wait may outlast this short look: that is not an error.
                    let _ = tokio::time::timeout(Duration::from_millis(5), wait).await;
                    Ok(())
                }
                _ => {
                    let statuses = handle.statuses();
                    assert!(statuses.len() >= REGISTERED.len(), "every registered unit is listed");
                    for status in &statuses {
                        let runs = matches!(status.state, UnitState::Running | UnitState::Stopping);
                        assert_eq!(status.running, runs, "{status:?}");
                        assert!(status.pid.is_none() || runs, "a pid without a run: {status:?}");
                        assert!(status.uptime.is_none() || runs, "an uptime without a run: {status:?}");
                    }
                    Ok(())
                }
            }
        };
        answered(|| format!("seed {seed}, call {call} ({what} on `{unit}`)"), outcome, expected).await?;
    }
    Ok(())
}

async fn shut_down(handle: &SupervisorHandle) -> ShutdownReport {
    tokio::time::timeout(ANSWER_WITHIN, handle.shutdown()).await.expect("the shutdown ends")
}

async fn join(callers: Vec<tokio::task::JoinHandle<Result<(), String>>>) {
    for caller in callers {
        caller.await.expect("no caller panics").unwrap_or_else(|problem| panic!("{problem}"));
    }
}

/// Waits with no deadline of their own, for states some units never reach
/// again: each on one unit, spread over the tree.
fn long_waits(handle: &SupervisorHandle) -> Vec<tokio::task::JoinHandle<()>> {
    let states = [UnitState::Failed, UnitState::Exited, UnitState::Waiting, UnitState::Stopped];
    REGISTERED
        .iter()
        .enumerate()
        .map(|(at, unit)| {
            let (handle, state) = (handle.clone(), states[at % states.len()]);
            tokio::spawn(async move {
                // Met, or not any more: either answer will do.
                let _ = handle.wait_state(unit, state).await;
                let _ = handle.wait_status(unit, |status| status.restart_count > 1_000_000).await;
            })
        })
        .collect()
}

/// Checks each unit's events: a run starts only once the one before has
/// ended (`Exited`, `Panicked`, `Stopped`), and a removed unit has no run
/// and no event after its removal.
fn check_runs(log: &[Event]) {
    let mut running: HashMap<&str, bool> = HashMap::new();
    let mut removed: HashSet<&str> = HashSet::new();
    for (at, event) in log.iter().enumerate() {
        let unit = event.unit.as_str();
        assert!(!removed.contains(unit), "event {at} of `{unit}` after its removal: {:?}", event.kind);
        let runs = running.entry(unit).or_default();
        match &event.kind {
            EventKind::Started { .. } => {
                assert!(!*runs, "event {at}: `{unit}` started a run while one was running");
                *runs = true;
            }
            EventKind::Exited { .. } | EventKind::Panicked { .. } | EventKind::Stopped { .. } => *runs = false,
            EventKind::Removed => {
                assert!(!*runs, "event {at}: `{unit}` removed while a run was running");
                removed.insert(unit);
            }
            _ => {}
        }
    }
}

/// Runs the storm, ended as `ending` says.
async fn storm(order: ShutdownOrder, ending: Ending) {
    let live = Live::default();
    let sup = tree(&live, order, ending);
    let mut events = sup.subscribe();
    let handle = sup.start();
    // Every process the storm starts, to look for it once all is over.
    let log = tokio::spawn(async move {
        let mut log = Vec::new();
        while let Ok(event) = events.recv().await {
            log.push(event);
        }
        log
    });
    handle.wait_ready("r3").await.expect("the tree starts");
    let added = Added::default();
    let callers: Vec<_> = (0..CALLERS)
        .map(|seed| tokio::spawn(caller(handle.clone(), live.clone(), added.clone(), 1000 + seed)))
        .collect();
    let waits = long_waits(&handle);
    let report = match ending {
        Ending::After => {
            join(callers).await;
            shut_down(&handle).await
        }
        Ending::Midway => {
            tokio::time::sleep(Duration::from_millis(400)).await;
            let report = shut_down(&handle).await;
            join(callers).await;
            report
        }
        Ending::ByItself => {
            let report = tokio::time::timeout(ANSWER_WITHIN, handle.wait()).await.expect("the tree ends by itself");
            assert!(
                matches!(report.cause, ShutdownCause::CriticalEnded { ref unit, failed: true } if unit == "vital"),
                "{:?}",
                report.cause
            );
            join(callers).await;
            assert_eq!(shut_down(&handle).await.units.len(), report.units.len(), "the same report");
            report
        }
    };

    // Whatever they waited for, the supervisor's end ends them.
    for wait in waits {
        tokio::time::timeout(ANSWER_WITHIN, wait).await.expect("a wait ends with the supervisor").expect("no panic");
    }
    let names: Vec<&str> = report.units.iter().map(|line| line.name.as_str()).collect();
    let twice: Vec<_> =
        report.units.iter().filter(|line| names.iter().filter(|name| **name == line.name).count() > 1).collect();
    assert!(twice.is_empty(), "each unit is reported once: {twice:#?}");
    let members = handle.unit_names();
    assert!(REGISTERED.iter().all(|registered| members.iter().any(|member| member == registered)));
    for member in &members {
        assert!(names.contains(&member.as_str()), "`{member}` is in the report");
    }
    for status in handle.statuses() {
        assert!(!status.running, "nothing runs after the shutdown: {status:?}");
    }
    assert_eq!(live.count(), 0, "every run's future was dropped by the end of the shutdown");
    drop(handle);
    let log = log.await.expect("the event log");
    check_runs(&log);
    let pids: Vec<u32> = log
        .iter()
        .filter_map(|event| match event.kind {
            EventKind::Started { pid, .. } => pid,
            _ => None,
        })
        .collect();
    assert!(!pids.is_empty(), "the storm started processes");
    for pid in pids {
        let pid = rustix::process::Pid::from_raw(pid.cast_signed()).expect("a pid");
        // Reaped: not even a zombie is left (the supervisor waits for each).
        assert!(rustix::process::test_kill_process(pid).is_err(), "process {pid:?} outlived the shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_control_calls_is_answered_and_ends_in_a_clean_shutdown() {
    storm(ShutdownOrder::Sequential, Ending::After).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_in_the_middle_of_a_storm_answers_every_call_and_leaves_nothing() {
    storm(ShutdownOrder::Concurrent, Ending::Midway).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_that_ends_by_itself_in_a_storm_answers_every_call_and_leaves_nothing() {
    storm(ShutdownOrder::Sequential, Ending::ByItself).await;
}

// ---------------------------------------------------------------------------
// Dependencies and readiness

/// A chain `c0 <- c1 <- ... <- c5`, and `f0..f2` that need `c2`: `c0` is
/// ready while `healthy` holds (a probe), the others once they say so.
fn dependent_tree(healthy: &Arc<std::sync::atomic::AtomicBool>, live: &Live) -> Supervisor {
    let healthy = healthy.clone();
    let probe = Probe::check(move || {
        let healthy = healthy.load(Ordering::SeqCst);
        async move { if healthy { Ok(()) } else { Err("down") } }
    })
    .period(Duration::from_millis(5))
    .timeout(Duration::from_millis(100))
    .failure_threshold(1);
    let mut group = GroupSpec::new("deps").task(idle("c0", live).readiness(Readiness::Probe(probe)));
    for link in 1..=5 {
        group = group.task(ready_later(&format!("c{link}"), live).depends_on([format!("c{}", link - 1)]));
    }
    for fan in 0..3 {
        group = group.task(crashy(&format!("f{fan}"), live).depends_on(["c2"]));
    }
    Supervisor::builder().group(group).task(idle("api", live).depends_on(["deps"])).build().expect("a valid tree")
}

const DEPENDENT: [&str; 11] =
    ["deps/c0", "deps/c1", "deps/c2", "deps/c3", "deps/c4", "deps/c5", "deps/f0", "deps/f1", "deps/f2", "deps", "api"];

/// Stops, starts and restarts units of the chain while the probe flaps.
async fn flapper(
    handle: SupervisorHandle,
    healthy: Arc<std::sync::atomic::AtomicBool>,
    seed: u64,
) -> Result<(), String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    for call in 0..CALLS_EACH / 2 {
        let unit = DEPENDENT[rng.usize(..DEPENDENT.len())];
        let what = rng.u8(..5);
        let outcome = async {
            match what {
                0 => handle.stop_unit(unit).await,
                1 => handle.start_unit(unit).await,
                2 => handle.restart(unit).await,
                3 => {
                    healthy.store(rng.bool(), Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(rng.u64(..5))).await;
                    Ok(())
                }
                _ => {
                    let _ = tokio::time::timeout(Duration::from_millis(3), handle.wait_ready(unit)).await;
                    Ok(())
                }
            }
        };
        answered(|| format!("seed {seed}, call {call} ({what} on `{unit}`)"), outcome, expected).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_storm_on_dependencies_every_unit_becomes_ready_again() {
    let live = Live::default();
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let handle = dependent_tree(&healthy, &live).start();
    handle.wait_ready("api").await.expect("the tree starts");
    let callers: Vec<_> =
        (0..CALLERS).map(|seed| tokio::spawn(flapper(handle.clone(), healthy.clone(), 2000 + seed))).collect();
    join(callers).await;

    // Calm: the probe passes, and what the storm left stopped is started.
    healthy.store(true, Ordering::SeqCst);
    for unit in DEPENDENT {
        handle.start_unit(unit).await.unwrap_or_else(|error| panic!("start `{unit}`: {error}"));
    }
    for unit in DEPENDENT {
        let ready = tokio::time::timeout(ANSWER_WITHIN, handle.wait_ready(unit)).await;
        let status = handle.status(unit);
        assert!(matches!(ready, Ok(Ok(_))), "`{unit}` is ready again: {ready:?}, {status:?}");
    }
    let report = shut_down(&handle).await;
    assert_eq!(report.units.len(), DEPENDENT.len(), "{report:?}");
    assert_eq!(live.count(), 0, "every run's future was dropped by the end of the shutdown");
}

#[tokio::test(flavor = "current_thread")]
async fn a_storm_on_a_runtime_with_one_thread_ends_as_cleanly() {
    storm(ShutdownOrder::Sequential, Ending::After).await;
}
