//! Nesting, escalation, strategies, critical units and the shutdown report,
//! attacked with hostile and careless input and timing: shutdowns that come
//! before the tree has begun, handles dropped where no runtime runs,
//! restart policies at the edge of floating point, groups restarted by their
//! parent, user code that panics or blocks its thread where the supervisor
//! least expects it, and intensities that trip at the same instant in
//! several groups.
//!
//! Every wait has a generous deadline, so that a hang fails the test
//! instead of hanging it; policy timing runs on tokio's paused clock.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use supervisor::{
    Context, DaemonSpec, Event, EventKind, ExitReason, GiveUpReason, GroupSpec, MaxRestarts, RestartOn, RestartPolicy,
    ShutdownCause, ShutdownOrder, ShutdownReport, StopOutcome, Strategy, Supervisor, SupervisorHandle, TaskSpec,
    UnitState,
};
use tokio::sync::broadcast;

#[path = "support/deadline.rs"]
mod deadline;
use deadline::within;
#[path = "support/specs.rs"]
mod specs;
use specs::{always_fails, idle, no_delay};

const SEC: Duration = Duration::from_secs(1);
const DEADLINE: Duration = Duration::from_secs(20);

/// Receives events until `done` accepts one; returns them all.
async fn events_until(events: &mut broadcast::Receiver<Event>, done: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        let event = events.recv().await.expect("no event lost");
        let last = done(&event);
        seen.push(event);
        if last {
            return seen;
        }
    }
}

/// Every event still queued.
fn drain(events: &mut broadcast::Receiver<Event>) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        match events.try_recv() {
            Ok(event) => seen.push(event),
            Err(broadcast::error::TryRecvError::Lagged(lost)) => panic!("{lost} events lost"),
            Err(_) => return seen,
        }
    }
}

/// What every report must hold: each unit of the tree once, each in an
/// end state, and an exit code that follows from the rest.
fn assert_consistent(report: &ShutdownReport, handle: &SupervisorHandle) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for line in &report.units {
        *counts.entry(line.name.as_str()).or_default() += 1;
        assert!(
            matches!(line.state, UnitState::Stopped | UnitState::Exited | UnitState::Failed),
            "{} ended in {:?}\n{report}",
            line.name,
            line.state
        );
    }
    let names = handle.unit_names();
    for name in &names {
        assert_eq!(counts.get(name.as_str()).copied(), Some(1), "{name} is not listed once\n{report}");
    }
    assert_eq!(report.units.len(), names.len(), "lines for units that do not exist\n{report}");
    let failed = report.cause.is_failure()
        || report.units.iter().any(|line| {
            matches!(line.outcome, StopOutcome::Forced | StopOutcome::Abandoned) || line.state == UnitState::Failed
        });
    assert_eq!(report.exit_code(), i32::from(failed), "{report}");
}

fn scratch_file(tag: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    std::env::temp_dir().join(format!("hostile-escalation-{tag}-{}-{nanos}", std::process::id()))
}

// ---------------------------------------------------------------------------
// A shutdown before the tree has begun.
// ---------------------------------------------------------------------------

/// "No unit is started or restarted once it has begun" (README, Status,
/// events and shutdown): a shutdown asked for right after `start()`, before
/// the root's task ever ran, must not start the units, let alone spawn a
/// process.
#[tokio::test]
async fn a_shutdown_asked_right_after_start_starts_no_unit() {
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let marker = scratch_file("spawned");
    let script = format!("touch '{}'; exec sleep 30", marker.display());
    let sup = Supervisor::builder()
        .task(TaskSpec::new("job", move |ctx: Context| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move { ctx.cancelled().await }
        }))
        .group(GroupSpec::new("g").task(idle("inner")))
        .daemon(DaemonSpec::new("proc", "sh").args(["-c", &script]))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    // Give a process that was spawned anyway the time to show itself.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started: Vec<(String, Option<u32>)> = drain(&mut events)
        .into_iter()
        .filter_map(|event| match event.kind {
            EventKind::Started { pid, .. } => Some((event.unit, pid)),
            _ => None,
        })
        .collect();
    let spawned = marker.exists() || started.iter().any(|(_, pid)| pid.is_some());
    let _ = std::fs::remove_file(&marker);
    let calls = calls.load(Ordering::SeqCst);
    assert!(
        calls == 0 && started.is_empty() && !spawned,
        "after the shutdown began: `f` called {calls} times, units started: {started:?}, process spawned: \
         {spawned}\n{report}"
    );
    assert_consistent(&report, &handle);
}

/// The same, when the shutdown comes from dropping the only handle.
#[tokio::test(start_paused = true)]
async fn dropping_the_only_handle_right_after_start_starts_no_unit() {
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let sup = Supervisor::builder()
        .task(TaskSpec::new("job", move |ctx: Context| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move { ctx.cancelled().await }
        }))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    drop(sup.start());
    let stopped = within(DEADLINE, "the background shutdown", async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if matches!(event.kind, EventKind::Stopped { .. }) {
                        return true;
                    }
                }
                // The supervisor ended without stopping anything.
                Err(_) => return false,
            }
        }
    });
    // Either way, nothing may have run.
    let _ = tokio::time::timeout(5 * SEC, stopped).await;
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the task's `f` was called after every handle was dropped");
}

// ---------------------------------------------------------------------------
// Dropping the last handle where no runtime runs.
// ---------------------------------------------------------------------------

/// "`.shutdown_timeout(d)` bounds the whole shutdown [...] Dropping every
/// handle runs the same shutdown in the background." Dropped on a thread
/// outside any runtime (a handle kept in a struct that a plain thread
/// drops), the shutdown must still be bounded by the timeout.
#[tokio::test(start_paused = true)]
async fn the_last_handle_dropped_outside_a_runtime_still_bounds_the_shutdown() {
    let sup = Supervisor::builder()
        .shutdown_timeout(SEC)
        .task(TaskSpec::new("stubborn", |_ctx| std::future::pending::<()>()).stop_timeout(3600 * SEC))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "stubborn runs", handle.wait_ready("stubborn")).await.unwrap();
    let began = tokio::time::Instant::now();
    std::thread::spawn(move || drop(handle)).join().unwrap();
    let stopped = within(DEADLINE, "the stubborn task is aborted at the shutdown timeout", async {
        events_until(&mut events, |event| event.unit == "stubborn" && matches!(event.kind, EventKind::Stopped { .. }))
            .await
    })
    .await;
    assert!(matches!(stopped.last().unwrap().kind, EventKind::Stopped { forced: true, .. }));
    assert_eq!(began.elapsed(), SEC, "the shutdown timeout, not the stop timeout");
}

/// Control: dropped on the runtime, the same shutdown is bounded.
#[tokio::test(start_paused = true)]
async fn the_last_handle_dropped_on_the_runtime_bounds_the_shutdown() {
    let sup = Supervisor::builder()
        .shutdown_timeout(SEC)
        .task(TaskSpec::new("stubborn", |_ctx| std::future::pending::<()>()).stop_timeout(3600 * SEC))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "stubborn runs", handle.wait_ready("stubborn")).await.unwrap();
    let began = tokio::time::Instant::now();
    drop(handle);
    within(DEADLINE, "the stubborn task is aborted at the shutdown timeout", async {
        events_until(&mut events, |event| event.unit == "stubborn" && matches!(event.kind, EventKind::Stopped { .. }))
            .await
    })
    .await;
    assert_eq!(began.elapsed(), SEC);
}

// ---------------------------------------------------------------------------
// Restart policies at the edge of floating point.
// ---------------------------------------------------------------------------

/// Restarting events of `name`, their delays, until `count` were seen.
async fn restart_delays(events: &mut broadcast::Receiver<Event>, name: &str, count: usize) -> Vec<Duration> {
    let mut delays = Vec::new();
    while delays.len() < count {
        let event = events.recv().await.expect("no event lost");
        if event.unit == name
            && let EventKind::Restarting { delay, .. } = event.kind
        {
            delays.push(delay);
        }
    }
    delays
}

/// A zero delay multiplied by any factor is zero: a huge (but finite and
/// valid) backoff factor must not turn a zero delay into "never".
#[tokio::test(start_paused = true)]
async fn a_zero_delay_stays_zero_under_a_huge_backoff_factor() {
    let runs = Arc::new(AtomicU32::new(0));
    let sup = Supervisor::builder()
        .event_capacity(4096)
        .task(always_fails("flaky", &runs).restart(no_delay().backoff(1e300)))
        .task(idle("bystander"))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    // The third delay (a streak of 2: 1e300 squared) is the first past a float.
    let delays = within(DEADLINE, "three restarts", restart_delays(&mut events, "flaky", 3)).await;
    assert_eq!(delays, [Duration::ZERO; 3], "0 s times 1e300^n");
    handle.shutdown().await;
}

/// The same with an ordinary factor, once the streak is long enough for
/// 2^n to overflow a float (after 1024 restarts of a unit that fails at
/// once with no delay, a few milliseconds of work).
#[tokio::test(start_paused = true)]
async fn a_zero_delay_stays_zero_after_a_thousand_doublings() {
    let runs = Arc::new(AtomicU32::new(0));
    let sup = Supervisor::builder()
        .event_capacity(1 << 16)
        .task(always_fails("flaky", &runs).restart(no_delay().backoff(2.0)))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    // The 1025th restart comes after a streak of 1024: 2^1024 is past a float.
    let delays = within(DEADLINE, "1025 restarts", restart_delays(&mut events, "flaky", 1025)).await;
    let late: Vec<(usize, Duration)> =
        delays.iter().copied().enumerate().filter(|(_, delay)| !delay.is_zero()).take(3).collect();
    assert!(late.is_empty(), "(restart, delay) that are not zero: {late:?}");
    handle.shutdown().await;
}

/// Extreme but valid policies side by side: jitter 1.0, a backoff that
/// saturates, max 0. Nothing panics, the others keep running, the delays
/// only grow up to their cap, and the shutdown ends. (A unit failing at
/// once without delay or limit would keep a paused clock from ever
/// advancing: see `tasks.rs` for it on a real clock.)
#[tokio::test(start_paused = true)]
async fn extreme_policies_side_by_side_panic_nothing_and_starve_nobody() {
    let (saturating, once) = (Arc::default(), Arc::default());
    let cap = Duration::from_secs(3);
    let sup = Supervisor::builder()
        .random_seed(7)
        .event_capacity(1 << 16)
        .task(
            always_fails("saturating", &saturating)
                .restart(RestartPolicy::new().delay(SEC).backoff(f64::MAX).jitter(1.0).max_delay(cap)),
        )
        .task(always_fails("once", &once).restart(no_delay().max_restarts(0)))
        .task(idle("bystander"))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let once_status = within(DEADLINE, "`once` fails", handle.wait_state("once", UnitState::Failed)).await.unwrap();
    assert_eq!(once_status.restart_count, 0);
    let delays = within(DEADLINE, "saturating restarts", restart_delays(&mut events, "saturating", 4)).await;
    assert!(delays[0] >= SEC && delays[0] <= 2 * SEC, "jitter 1.0 at most doubles: {delays:?}");
    assert!(delays[1..].iter().all(|delay| *delay == cap), "capped: {delays:?}");
    assert_eq!(handle.status("bystander").unwrap().state, UnitState::Running);
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    assert_consistent(&report, &handle);
    assert_eq!(once.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------
// Escalation.
// ---------------------------------------------------------------------------

/// A group restarted by its parent's policy is a new run of the group: as
/// in OTP, its units begin again with their restart limits whole (a unit
/// with `max = 1` runs twice in each run of its group, "`max = 3` lets a
/// unit that keeps failing run four times").
#[tokio::test(start_paused = true)]
async fn a_group_restarted_by_its_parent_gives_its_units_their_restarts_again() {
    let runs = Arc::new(AtomicU32::new(0));
    let group = GroupSpec::new("g")
        .restart(no_delay().max_restarts(MaxRestarts::AtMost(1)))
        .task(always_fails("vital", &runs).restart(no_delay().max_restarts(MaxRestarts::AtMost(1))).critical())
        .task(idle("helper"));
    let sup = Supervisor::builder().group(group).task(idle("bystander")).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let g = within(DEADLINE, "g gives up", handle.wait_state("g", UnitState::Failed)).await.unwrap();
    assert_eq!(g.restart_count, 1);
    let started: Vec<u32> = drain(&mut events)
        .into_iter()
        .filter(|event| event.unit == "g/vital")
        .filter_map(|event| match event.kind {
            EventKind::Started { restart_count, .. } => Some(restart_count),
            _ => None,
        })
        .collect();
    assert_eq!(started, [0, 1, 0, 1], "g/vital's restart counts at each start, two runs of g");
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    handle.shutdown().await;
}

/// The same after a restart of the group by hand ("`restart` [...] resets
/// its restart count"; "On a group, stops its units and starts them all
/// again"): a unit that had given up gets its restarts again.
#[tokio::test(start_paused = true)]
async fn a_group_restarted_by_hand_gives_its_units_their_restarts_again() {
    let runs = Arc::new(AtomicU32::new(0));
    let group = GroupSpec::new("g")
        .task(always_fails("flaky", &runs).restart(no_delay().max_restarts(MaxRestarts::AtMost(2))))
        .task(idle("helper"));
    let handle = Supervisor::builder().group(group).build().unwrap().start();
    let flaky = within(DEADLINE, "flaky gives up", handle.wait_state("g/flaky", UnitState::Failed)).await.unwrap();
    assert_eq!((flaky.restart_count, runs.load(Ordering::SeqCst)), (2, 3));
    within(DEADLINE, "the restart of g", handle.restart("g")).await.unwrap();
    let flaky =
        within(DEADLINE, "flaky gives up again", handle.wait_state("g/flaky", UnitState::Failed)).await.unwrap();
    assert_eq!(
        (runs.load(Ordering::SeqCst), flaky.restart_count),
        (6, 2),
        "(runs in all, restart count): three runs again after the restart by hand"
    );
    handle.shutdown().await;
}

/// A restart by hand of a whole group, still stopping a stubborn unit when
/// the shutdown begins: the call is answered, the group is not started
/// again, and the shutdown does not wait for the grace period twice.
#[tokio::test(start_paused = true)]
async fn a_restart_of_a_group_by_hand_overtaken_by_the_shutdown() {
    let starts = Arc::new(AtomicU32::new(0));
    let counted = starts.clone();
    let stubborn = TaskSpec::new("stubborn", move |_ctx: Context| {
        counted.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<()>()
    })
    .stop_timeout(2 * SEC);
    let handle = Supervisor::builder()
        .group(GroupSpec::new("g").task(stubborn).task(idle("calm")))
        .task(idle("last"))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "g is ready", handle.wait_ready("g")).await.unwrap();
    let restart = tokio::spawn({
        let handle = handle.clone();
        async move { handle.restart("g").await }
    });
    within(DEADLINE, "the restart begins", handle.wait_state("g", UnitState::Stopping)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let began = tokio::time::Instant::now();
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    assert_eq!(began.elapsed(), Duration::from_millis(1500), "the rest of stubborn's grace period");
    let answered = within(DEADLINE, "the restart is answered", restart).await.unwrap();
    assert!(matches!(answered, Err(supervisor::Error::ShuttingDown { .. })), "{answered:?}");
    assert_eq!(starts.load(Ordering::SeqCst), 1, "g started again after the shutdown began");
    assert_consistent(&report, &handle);
}

/// An error type whose `Drop` panics (after its `Display` was read): the
/// run is a failure, restarted by its policy, and nothing else moves.
struct ErrorThatPanicsWhenDropped;

impl std::fmt::Display for ErrorThatPanicsWhenDropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an error that panics when dropped")
    }
}

impl Drop for ErrorThatPanicsWhenDropped {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("the error panicked when dropped");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_error_whose_drop_panics_is_still_a_failed_run() {
    let handle = Supervisor::builder()
        .task(idle("calm"))
        .task(
            TaskSpec::new("nasty", |_ctx| async { Err::<(), _>(ErrorThatPanicsWhenDropped) })
                .restart(no_delay().max_restarts(1)),
        )
        .build()
        .unwrap()
        .start();
    let nasty = within(DEADLINE, "nasty gives up", handle.wait_state("nasty", UnitState::Failed)).await.unwrap();
    assert_eq!(nasty.restart_count, 1);
    assert!(nasty.last_error.is_some());
    assert_eq!(handle.status("calm").unwrap().state, UnitState::Running);
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    assert_consistent(&report, &handle);
}

/// Three groups, each with a unit failing at once, trip their intensity at
/// the same instant; the root allows one group restart, then gives up.
/// The report lists every unit once, in an end state, exit code 1.
#[tokio::test(start_paused = true)]
async fn intensities_tripping_at_the_same_instant_in_three_groups_end_in_one_consistent_report() {
    let runs: Vec<Arc<AtomicU32>> = (0..3).map(|_| Arc::default()).collect();
    let group = |index: usize| {
        GroupSpec::new(format!("g{index}"))
            .intensity(1, Duration::from_secs(60))
            .restart(no_delay())
            .group(
                GroupSpec::new("inner")
                    .intensity(1, Duration::from_secs(60))
                    .restart(no_delay())
                    .task(always_fails("leaf", &runs[index]).restart(no_delay()))
                    .task(idle("calm")),
            )
            .task(idle("sibling"))
    };
    let sup = Supervisor::builder()
        .intensity(1, Duration::from_secs(60))
        .task(idle("first"))
        .group(group(0))
        .group(group(1))
        .group(group(2))
        .task(idle("last"))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let report = within(DEADLINE, "the root gives up", handle.wait()).await;
    assert_consistent(&report, &handle);
    let ShutdownCause::GaveUp { reason } = &report.cause else { panic!("{report}") };
    assert_eq!(reason, "more than 1 restarts within 1m");
    assert_eq!(report.exit_code(), 1);
    // Each escalation is told: the group's run ended as "gave up".
    let gave_up: Vec<String> = drain(&mut events)
        .into_iter()
        .filter(|event| {
            matches!(event.kind, EventKind::Exited { reason: ExitReason::GroupGaveUp(GiveUpReason::Intensity { .. }) })
        })
        .map(|event| event.unit)
        .collect();
    assert!(gave_up.iter().any(|unit| unit.ends_with("/inner")), "{gave_up:?}");
    assert!(gave_up.iter().any(|unit| !unit.contains('/')), "a top group gave up too: {gave_up:?}");
    for name in ["first", "last"] {
        let line = report.units.iter().find(|line| line.name == name).unwrap();
        assert_eq!(line.outcome, StopOutcome::Graceful, "{report}");
    }
}

/// A nested group gives up while its parent (one_for_all) is stopping it
/// because of a sibling's failure, at the same instant; nothing hangs,
/// the parent runs again and the report stays consistent.
#[tokio::test(start_paused = true)]
async fn a_group_giving_up_while_its_one_for_all_parent_stops_it() {
    let ticking = |name: &str, after: Duration| {
        TaskSpec::new(name, move |ctx: Context| async move {
            tokio::select! {
                () = ctx.cancelled() => Ok(()),
                () = tokio::time::sleep(after) => Err("tick"),
            }
        })
    };
    let inner = GroupSpec::new("inner")
        .intensity(1, Duration::from_secs(60))
        .restart(RestartPolicy::new().delay(SEC))
        .task(ticking("leaf", SEC).restart(no_delay()))
        .task(idle("calm"));
    let parent = GroupSpec::new("parent")
        .strategy(Strategy::OneForAll)
        .restart(RestartPolicy::new().delay(SEC))
        .group(inner)
        .task(ticking("sibling", 2 * SEC).restart(no_delay()));
    let sup = Supervisor::builder().group(parent).task(idle("bystander")).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    // At 2 s, `leaf` fails for the second time (inner gives up) and
    // `sibling` fails (parent stops everything): both at once.
    within(DEADLINE, "the collision", async {
        events_until(&mut events, |event| {
            event.unit == "parent/sibling" && matches!(event.kind, EventKind::Exited { .. })
        })
        .await
    })
    .await;
    within(DEADLINE, "parent runs again", handle.wait_status("parent/inner", |status| status.running && status.ready))
        .await
        .unwrap();
    within(DEADLINE, "the sibling runs again", handle.wait_ready("parent/sibling")).await.unwrap();
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    assert_consistent(&report, &handle);
    assert_eq!(report.cause, ShutdownCause::Requested);
}

/// The group that gave up is named, as the sibling that caused it, to
/// every unit its parent's one_for_all strategy stops; the group's own
/// events say why it ended (its intensity) and why it was given up on for
/// good (its policy's limit).
#[tokio::test(start_paused = true)]
async fn siblings_stopped_for_a_group_that_gave_up_are_told_which_and_why() {
    let runs = Arc::new(AtomicU32::new(0));
    let inner = GroupSpec::new("inner")
        .intensity(1, Duration::from_secs(60))
        .restart(RestartPolicy::new().delay(SEC).max_restarts(MaxRestarts::AtMost(1)))
        .task(always_fails("leaf", &runs).restart(no_delay()));
    let parent = GroupSpec::new("parent").strategy(Strategy::OneForAll).task(idle("a")).group(inner).task(idle("b"));
    let sup = Supervisor::builder().group(parent).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let inner = within(DEADLINE, "inner gives up for good", handle.wait_state("parent/inner", UnitState::Failed))
        .await
        .unwrap();
    assert_eq!(inner.last_error.as_deref(), Some("gave up: more than 1 restarts within 1m"));
    assert_eq!(runs.load(Ordering::SeqCst), 4, "two runs of inner, two runs of leaf each");
    let seen = drain(&mut events);
    let ended: Vec<&ExitReason> = seen
        .iter()
        .filter(|event| event.unit == "parent/inner")
        .filter_map(|event| match &event.kind {
            EventKind::Exited { reason } => Some(reason),
            _ => None,
        })
        .collect();
    let intensity = ExitReason::GroupGaveUp(GiveUpReason::Intensity { max: 1, period: Duration::from_secs(60) });
    assert_eq!(ended, [&intensity, &intensity]);
    assert!(seen.iter().any(|event| event.unit == "parent/inner"
        && event.kind == EventKind::GaveUp { reason: GiveUpReason::MaxRestarts { max: 1 } }));
    let told: Vec<(&str, &str, Strategy)> = seen
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::SiblingFailed { sibling, strategy } => Some((event.unit.as_str(), sibling.as_str(), *strategy)),
            _ => None,
        })
        .collect();
    assert_eq!(
        told,
        [("parent/a", "parent/inner", Strategy::OneForAll), ("parent/b", "parent/inner", Strategy::OneForAll)]
    );
    assert_eq!(handle.status("parent/a").unwrap().state, UnitState::Running);
    let report = handle.shutdown().await;
    assert_consistent(&report, &handle);
    assert_eq!(report.exit_code(), 1, "a group was given up on");
}

// ---------------------------------------------------------------------------
// Critical units.
// ---------------------------------------------------------------------------

/// A critical unit whose `f` panics before any future exists, three groups
/// deep, each group critical: the whole tree ends, saying which top unit
/// ended and that it failed; each level's last error names the one below.
#[tokio::test(start_paused = true)]
async fn a_critical_factory_panic_three_levels_deep_ends_the_tree_as_a_failure() {
    let never = || RestartPolicy::new().on(RestartOn::Never);
    let deepest = GroupSpec::new("c")
        .critical()
        .restart(never())
        .task(
            TaskSpec::new("vital", |_ctx: Context| -> std::future::Ready<()> { panic!("no future for you") })
                .critical()
                .restart(never()),
        )
        .task(idle("helper"));
    let middle = GroupSpec::new("b").critical().restart(never()).group(deepest).task(idle("helper"));
    let top = GroupSpec::new("a").critical().restart(never()).group(middle);
    let handle = Supervisor::builder().task(idle("server")).group(top).build().unwrap().start();
    let report = within(DEADLINE, "the tree ends", handle.wait()).await;
    assert_consistent(&report, &handle);
    assert_eq!(report.cause, ShutdownCause::CriticalEnded { unit: "a".to_owned(), failed: true });
    assert_eq!(report.cause.to_string(), "critical unit `a` failed");
    assert_eq!(report.exit_code(), 1);
    let vital = handle.status("a/b/c/vital").unwrap();
    assert_eq!(vital.last_error.as_deref(), Some("panicked: no future for you"));
    assert_eq!(handle.status("a/b/c").unwrap().last_error.as_deref(), Some("critical unit `a/b/c/vital` failed"));
    assert_eq!(handle.status("a/b").unwrap().last_error.as_deref(), Some("critical unit `a/b/c` failed"));
    assert_eq!(handle.status("a").unwrap().last_error.as_deref(), Some("critical unit `a/b` failed"));
}

/// A critical unit that succeeds when its policy would restart it but its
/// limit is reached has exited, not failed: the tree ends cleanly.
#[tokio::test(start_paused = true)]
async fn a_critical_unit_succeeding_at_its_restart_limit_ends_the_tree_cleanly() {
    let handle = Supervisor::builder()
        .task(idle("server"))
        .group(
            GroupSpec::new("batch")
                .critical()
                .restart(RestartPolicy::new().on(RestartOn::Failure))
                .task(TaskSpec::new("job", |_ctx| async {}).restart(no_delay().max_restarts(2)).critical()),
        )
        .build()
        .unwrap()
        .start();
    let report = within(DEADLINE, "the tree ends", handle.wait()).await;
    assert_consistent(&report, &handle);
    assert_eq!(report.cause, ShutdownCause::CriticalEnded { unit: "batch".to_owned(), failed: false });
    assert_eq!(report.cause.to_string(), "critical unit `batch` finished");
    assert_eq!(report.exit_code(), 0, "{report}");
    let job = handle.status("batch/job").unwrap();
    assert_eq!((job.state, job.restart_count), (UnitState::Exited, 2));
}

/// A critical daemon that cannot even be spawned, at the root: exit code 1,
/// the cause names it.
#[tokio::test]
async fn a_critical_daemon_that_cannot_be_spawned_ends_the_tree_as_a_failure() {
    let handle = Supervisor::builder()
        .task(idle("server"))
        .daemon(
            DaemonSpec::new("ghost", "/nonexistent/hostile-escalation-binary")
                .restart(no_delay().max_restarts(3))
                .critical(),
        )
        .build()
        .unwrap()
        .start();
    let report = within(DEADLINE, "the tree ends", handle.wait()).await;
    assert_consistent(&report, &handle);
    assert_eq!(report.cause, ShutdownCause::CriticalEnded { unit: "ghost".to_owned(), failed: true });
    let ghost = handle.status("ghost").unwrap();
    assert_eq!((ghost.state, ghost.restart_count), (UnitState::Failed, 3));
    assert!(ghost.last_error.unwrap().contains("nonexistent"));
}

// ---------------------------------------------------------------------------
// User code that panics where the supervisor least expects it.
// ---------------------------------------------------------------------------

/// An error type whose `Display` panics: the run is a failure all the
/// same, restarted by its policy, and nothing else is disturbed.
struct RudeError;

impl std::fmt::Display for RudeError {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("Display of the error panicked")
    }
}

#[tokio::test(start_paused = true)]
async fn an_error_whose_display_panics_is_still_a_failed_run() {
    let handle =
        Supervisor::builder()
            .group(GroupSpec::new("g").strategy(Strategy::OneForAll).task(idle("calm")).task(
                TaskSpec::new("rude", |_ctx| async { Err::<(), _>(RudeError) }).restart(no_delay().max_restarts(2)),
            ))
            .build()
            .unwrap()
            .start();
    let rude = within(DEADLINE, "rude gives up", handle.wait_state("g/rude", UnitState::Failed)).await.unwrap();
    assert_eq!(rude.restart_count, 2);
    assert!(rude.last_error.unwrap().contains("Display of the error panicked"));
    within(DEADLINE, "calm runs again", handle.wait_ready("g/calm")).await.unwrap();
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    assert_consistent(&report, &handle);
}

/// Panics when dropped, outside an unwinding.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("the run's future panicked when dropped");
        }
    }
}

/// Ignores its cancellation and panics when dropped.
fn bomb(name: &str) -> TaskSpec {
    TaskSpec::new(name, |_ctx: Context| async {
        let _bomb = PanicsOnDrop;
        std::future::pending::<()>().await;
    })
}

/// A run whose future panics when the shutdown aborts it, in each shutdown
/// order: aborted all the same, listed once, and the shutdown ends.
#[tokio::test(start_paused = true)]
async fn futures_that_panic_when_aborted_by_the_shutdown_are_reported_forced() {
    for order in [ShutdownOrder::Sequential, ShutdownOrder::Concurrent] {
        let handle = Supervisor::builder()
            .shutdown_order(order)
            .task(bomb("top").stop_timeout(SEC))
            .group(GroupSpec::new("g").task(bomb("inner").stop_timeout(SEC)).task(idle("calm")))
            .build()
            .unwrap()
            .start();
        within(DEADLINE, "g is ready", handle.wait_ready("g")).await.unwrap();
        within(DEADLINE, "top is ready", handle.wait_ready("top")).await.unwrap();
        let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
        assert_consistent(&report, &handle);
        let forced: Vec<&str> = report.forced().map(|line| line.name.as_str()).collect();
        assert_eq!(forced.len(), 2, "{order:?}: {report}");
        assert!(forced.contains(&"top") && forced.contains(&"g/inner"), "{order:?}: {report}");
    }
}

/// A run found hung by its watchdog is stopped and ends as `Hung`, even
/// when its future panics as it is dropped after its grace period.
#[tokio::test(start_paused = true)]
async fn a_hung_run_whose_future_panics_when_dropped_still_ends_as_hung() {
    let sup = Supervisor::builder()
        .task(
            bomb("hung")
                .watchdog(SEC)
                .stop_timeout(Duration::from_millis(100))
                .restart(RestartPolicy::new().on(RestartOn::Never)),
        )
        .task(idle("calm"))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let hung = within(DEADLINE, "the watchdog stops it", handle.wait_state("hung", UnitState::Exited)).await.unwrap();
    let exited = drain(&mut events)
        .into_iter()
        .find(|event| event.unit == "hung" && matches!(event.kind, EventKind::Exited { .. }))
        .expect("its run ended");
    assert!(matches!(exited.kind, EventKind::Exited { reason: ExitReason::Hung }), "{exited:?}");
    assert!(hung.last_error.unwrap().contains("hung"));
    assert_eq!(handle.status("calm").unwrap().state, UnitState::Running);
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------
// Tasks that block their thread while they are stopped.
// ---------------------------------------------------------------------------

async fn a_blocked_thread_in_a_nested_group_is_abandoned(order: ShutdownOrder) {
    let released = Arc::new(AtomicBool::new(false));
    let flag = released.clone();
    let blocker = TaskSpec::new("blocker", move |ctx: Context| {
        let flag = flag.clone();
        async move {
            ctx.cancelled().await;
            std::thread::sleep(Duration::from_millis(2500));
            flag.store(true, Ordering::SeqCst);
        }
    })
    .stop_timeout(Duration::from_millis(100));
    let group = GroupSpec::new("g").task(idle("a")).task(blocker).task(idle("b"));
    let handle = Supervisor::builder()
        .shutdown_order(order)
        .shutdown_timeout(Duration::from_millis(300))
        .task(idle("first"))
        .group(group)
        .task(idle("last"))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "g is ready", handle.wait_ready("g")).await.unwrap();
    within(DEADLINE, "last is ready", handle.wait_ready("last")).await.unwrap();
    let began = std::time::Instant::now();
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    let took = began.elapsed();
    assert!(!released.load(Ordering::SeqCst), "{order:?}: the shutdown waited for the blocked thread ({took:?})");
    let line = |name: &str| report.units.iter().find(|line| line.name == name).unwrap().clone();
    assert_eq!(line("g/blocker").outcome, StopOutcome::Abandoned, "{order:?}: {report}");
    assert_eq!(report.exit_code(), 1);
    // Those asked before the shutdown timeout stopped gracefully; those
    // asked after it (in sequential order) are aborted at once, by design.
    assert_eq!(line("last").outcome, StopOutcome::Graceful, "{order:?}: {report}");
    assert_eq!(line("g/b").outcome, StopOutcome::Graceful, "{order:?}: {report}");
    // Each other unit is listed once.
    assert_eq!(report.units.len(), handle.unit_names().len(), "{order:?}: {report}");
    // Once the blocked thread lets go, its run is over: the unit has
    // stopped, yet neither its line nor its status ever say so.
    let deadline = std::time::Instant::now() + DEADLINE;
    while !released.load(Ordering::SeqCst) {
        assert!(std::time::Instant::now() < deadline, "the blocked thread never let go");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = handle.status("g/blocker").unwrap();
    assert!(
        line("g/blocker").state == UnitState::Stopped && status.state == UnitState::Stopped && !status.running,
        "{order:?}: the report's line says {:?} (\"the state the unit ended in\"); the status after the end, its \
         thread free again, says {:?}, running: {}\n{report}",
        line("g/blocker").state,
        status.state,
        status.running
    );
    assert_consistent(&report, &handle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_thread_in_a_nested_group_is_abandoned_in_sequential_order() {
    a_blocked_thread_in_a_nested_group_is_abandoned(ShutdownOrder::Sequential).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_thread_in_a_nested_group_is_abandoned_in_concurrent_order() {
    a_blocked_thread_in_a_nested_group_is_abandoned(ShutdownOrder::Concurrent).await;
}

// ---------------------------------------------------------------------------
// Shutdowns racing the tree.
// ---------------------------------------------------------------------------

/// A supervisor with nothing in it, and one with only empty groups, shut
/// down at once and cleanly.
#[tokio::test(start_paused = true)]
async fn empty_trees_shut_down_cleanly() {
    let handle = Supervisor::builder().build().unwrap().start();
    let report = within(DEADLINE, "the empty shutdown", handle.shutdown()).await;
    assert!(report.units.is_empty() && report.is_clean(), "{report}");
    let handle = Supervisor::builder()
        .group(GroupSpec::new("empty"))
        .group(GroupSpec::new("nested").group(GroupSpec::new("empty")).critical())
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "empty groups are ready", handle.wait_ready("nested")).await.unwrap();
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    assert_consistent(&report, &handle);
    assert!(report.is_clean(), "{report}");
    let order: Vec<&str> = report.units.iter().map(|line| line.name.as_str()).collect();
    assert_eq!(order, ["nested/empty", "nested", "empty"]);
}

/// A shutdown that begins while a one_for_all strategy is stopping a
/// stubborn sibling: it neither waits for that grace period twice nor
/// starts anything again; every caller of `wait` gets the one report.
#[tokio::test(start_paused = true)]
async fn a_shutdown_during_a_strategy_restart_starts_nothing_again() {
    let starts = Arc::new(AtomicU32::new(0));
    let counted = starts.clone();
    let stubborn = TaskSpec::new("stubborn", move |_ctx: Context| {
        counted.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<()>()
    })
    .stop_timeout(5 * SEC);
    let failing = TaskSpec::new("failing", |ctx: Context| async move {
        tokio::select! {
            () = ctx.cancelled() => Ok(()),
            () = tokio::time::sleep(SEC) => Err("tick"),
        }
    })
    .restart(RestartPolicy::new().delay(2 * SEC));
    let group = GroupSpec::new("g").strategy(Strategy::OneForAll).task(stubborn).task(idle("calm")).task(failing);
    let sup = Supervisor::builder().group(group).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "the strategy begins", async {
        events_until(&mut events, |event| {
            event.unit == "g/stubborn" && matches!(event.kind, EventKind::SiblingFailed { .. })
        })
        .await
    })
    .await;
    // The strategy is stopping `calm` and then `stubborn` (5 s).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let handle = handle.clone();
            tokio::spawn(async move { handle.wait().await })
        })
        .collect();
    let began = tokio::time::Instant::now();
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    assert!(began.elapsed() <= 4 * SEC, "the stubborn sibling's grace was waited twice: {:?}", began.elapsed());
    for waiter in waiters {
        assert_eq!(within(DEADLINE, "a waiter", waiter).await.unwrap(), report);
    }
    // Past every delay of the strategy.
    tokio::time::sleep(10 * SEC).await;
    assert_eq!(starts.load(Ordering::SeqCst), 1, "started again after the shutdown began");
    let started_after: Vec<String> = drain(&mut events)
        .into_iter()
        .filter(|event| matches!(event.kind, EventKind::Started { .. }))
        .map(|event| event.unit)
        .collect();
    assert!(started_after.is_empty(), "{started_after:?}");
    assert_consistent(&report, &handle);
}

/// A one_for_all strategy that finishes its stops after the shutdown began,
/// before the shutdown reached its group: the siblings it stopped stay
/// stopped, as the units of a group that ends do. They were put in
/// `Backoff`, waiting for a restart that could never come, and stopped a
/// second time when the shutdown reached them (two `Stopped` events each).
/// A temporary one is listed in the report, as those of a group that ends
/// in a shutdown are; it was forgotten.
#[tokio::test(start_paused = true)]
async fn siblings_a_strategy_stopped_during_the_shutdown_are_not_put_back_to_wait_for_a_restart() {
    // `x` fails at 1 s: the strategy stops `s` (2 s), then `calm` and
    // `job`; the shutdown, begun meanwhile, stops `slow` (4 s) before it
    // reaches `g`.
    let g = GroupSpec::new("g")
        .strategy(Strategy::OneForAll)
        .task(idle("job").temporary())
        .task(idle("calm"))
        .task(specs::slow_to_stop("s", 2 * SEC))
        .task(fails_after("x", SEC));
    let sup = Supervisor::builder().group(g).task(specs::slow_to_stop("slow", 4 * SEC)).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "slow", handle.wait_ready("slow")).await.unwrap();
    within(DEADLINE, "the strategy's stop of s", handle.wait_state("g/s", UnitState::Stopping)).await.unwrap();
    let shutdown = tokio::spawn({
        let handle = handle.clone();
        async move { handle.shutdown().await }
    });
    // The strategy's stops are done at 3 s, while `slow` stops until 5 s.
    let job_stopped = |event: &Event| event.unit == "g/job" && matches!(event.kind, EventKind::Stopped { .. });
    let mut log = within(DEADLINE, "job stopped", events_until(&mut events, job_stopped)).await;
    tokio::time::sleep(SEC / 2).await;
    assert!(!shutdown.is_finished(), "the shutdown has not reached g yet");
    for unit in ["g/job", "g/calm", "g/s"] {
        assert_eq!(handle.status(unit).unwrap().state, UnitState::Stopped, "{unit}");
    }
    let report = within(DEADLINE, "the shutdown", shutdown).await.unwrap();
    log.extend(drain(&mut events));
    for unit in ["g/job", "g/calm", "g/s"] {
        let stops = log.iter().filter(|event| event.unit == unit && matches!(event.kind, EventKind::Stopped { .. }));
        assert_eq!(stops.count(), 1, "{unit} stopped more than once: {log:?}");
    }
    assert_eq!(started(&log).iter().filter(|unit| unit.starts_with("g/")).count(), 4, "{log:?}");
    assert!(report.units.iter().any(|line| line.name == "g/job"), "{report}");
    assert_consistent(&report, &handle);
}

/// A restart delay that runs out at the very instant the shutdown begins:
/// whichever comes first, the report is consistent, and a run that did
/// start is stopped gracefully.
#[tokio::test(start_paused = true)]
async fn a_restart_timer_firing_as_the_shutdown_begins() {
    for delay_ms in [999_u64, 1000, 1001] {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let flaky = TaskSpec::new("flaky", move |ctx: Context| {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if run == 0 {
                    return Err("first run fails");
                }
                ctx.cancelled().await;
                Ok(())
            }
        })
        .restart(RestartPolicy::new().delay(SEC));
        let handle = Supervisor::builder()
            .group(GroupSpec::new("g").strategy(Strategy::RestForOne).task(flaky).task(idle("after")))
            .build()
            .unwrap()
            .start();
        within(DEADLINE, "flaky backs off", handle.wait_state("g/flaky", UnitState::Backoff)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
        assert_consistent(&report, &handle);
        assert!(report.is_clean(), "{delay_ms} ms: {report}");
        assert!(runs.load(Ordering::SeqCst) <= 2, "{delay_ms} ms");
    }
}

/// A task of a nested group that shuts its own supervisor down, in a task
/// it spawns, as the docs advise: no deadlock, and the shutdown is the
/// one requested.
#[tokio::test(start_paused = true)]
async fn a_task_deep_in_the_tree_shuts_its_own_supervisor_down() {
    let (give, handle_to_come) = tokio::sync::watch::channel(None::<SupervisorHandle>);
    let quitter = TaskSpec::new("quitter", move |ctx: Context| {
        let mut handle = handle_to_come.clone();
        async move {
            let handle = handle.wait_for(Option::is_some).await.expect("the handle").clone().expect("some");
            tokio::spawn(async move { handle.shutdown().await });
            ctx.cancelled().await;
        }
    });
    let tree = GroupSpec::new("a").group(GroupSpec::new("b").task(quitter).task(idle("calm"))).task(idle("other"));
    let handle = Supervisor::builder().group(tree).task(idle("server")).build().unwrap().start();
    within(DEADLINE, "quitter runs", handle.wait_ready("a/b/quitter")).await.unwrap();
    give.send_replace(Some(handle.clone()));
    let report = within(DEADLINE, "the tree ends", handle.wait()).await;
    assert_consistent(&report, &handle);
    assert_eq!(report.cause, ShutdownCause::Requested);
    assert!(report.is_clean(), "{report}");
}

/// A nested group gives up (its intensity) and is still stopping a
/// stubborn unit when the shutdown begins: the shutdown waits for that one
/// grace period, not two, nothing is started again, and each unit is
/// listed once.
#[tokio::test(start_paused = true)]
async fn a_group_still_giving_up_when_the_shutdown_begins_is_reported_once() {
    let runs = Arc::new(AtomicU32::new(0));
    let group = GroupSpec::new("g")
        .intensity(1, Duration::from_secs(60))
        .restart(no_delay())
        .task(TaskSpec::new("stubborn", |_ctx| std::future::pending::<()>()).stop_timeout(5 * SEC))
        .task(idle("calm"))
        .task(always_fails("leaf", &runs).restart(no_delay()));
    let sup = Supervisor::builder().task(idle("first")).group(group).task(idle("last")).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "g begins to give up", async {
        events_until(&mut events, |event| event.unit == "g/calm" && matches!(event.kind, EventKind::Stopped { .. }))
            .await
    })
    .await;
    tokio::time::sleep(SEC).await;
    let began = tokio::time::Instant::now();
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    assert_eq!(began.elapsed(), 4 * SEC, "the rest of stubborn's grace period");
    assert_consistent(&report, &handle);
    assert_eq!(report.cause, ShutdownCause::Requested);
    let stubborn = report.units.iter().find(|line| line.name == "g/stubborn").unwrap();
    assert_eq!((stubborn.outcome, stubborn.took), (StopOutcome::Forced, 5 * SEC), "{report}");
    let g_started = drain(&mut events)
        .iter()
        .filter(|event| event.unit == "g" && matches!(event.kind, EventKind::Started { .. }))
        .count();
    assert_eq!(g_started, 0, "g restarted after the shutdown began");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

/// A critical unit of a nested group fails at the very instant its
/// parent's one_for_all strategy stops the group for a sibling's failure:
/// nothing hangs, the story ends in one of the two ways, and the report is
/// consistent.
#[tokio::test(start_paused = true)]
async fn a_critical_unit_failing_as_the_parents_strategy_stops_its_group() {
    let fails_at = |name: &str, at: Duration| {
        TaskSpec::new(name, move |ctx: Context| async move {
            tokio::select! {
                () = ctx.cancelled() => Ok(()),
                () = tokio::time::sleep(at) => Err("tick"),
            }
        })
    };
    for (vital_at, sibling_at) in [(SEC, SEC), (SEC, 2 * SEC), (2 * SEC, SEC)] {
        let inner = GroupSpec::new("inner")
            .critical()
            .restart(RestartPolicy::new().delay(SEC).max_restarts(MaxRestarts::AtMost(1)))
            .task(fails_at("vital", vital_at).critical().restart(RestartPolicy::new().on(RestartOn::Never)))
            .task(idle("helper"));
        let parent = GroupSpec::new("parent")
            .strategy(Strategy::OneForAll)
            .intensity(5, Duration::from_secs(60))
            .restart(RestartPolicy::new().on(RestartOn::Never))
            .critical()
            .task(idle("a"))
            .group(inner)
            .task(fails_at("sibling", sibling_at).restart(no_delay()));
        let handle = Supervisor::builder().task(idle("server")).group(parent).build().unwrap().start();
        // `vital` fails on every run of `inner`: `inner` runs twice, then
        // gives up for good, and so does `parent`, and the tree.
        let report = within(DEADLINE, "the tree ends", handle.wait()).await;
        assert_consistent(&report, &handle);
        assert_eq!(
            report.cause,
            ShutdownCause::CriticalEnded { unit: "parent".to_owned(), failed: true },
            "{vital_at:?}/{sibling_at:?}: {report}"
        );
        assert_eq!(report.exit_code(), 1);
    }
}

/// A task that restarts its own group, awaiting the call: the call waits
/// for the task's own stop, which its grace period cuts; then the group
/// runs again. No deadlock, and the shutdown after it is clean.
#[tokio::test(start_paused = true)]
async fn a_task_that_restarts_its_own_group_from_inside() {
    let (give, handle_to_come) = tokio::sync::watch::channel(None::<SupervisorHandle>);
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let restarter = TaskSpec::new("restarter", move |ctx: Context| {
        let run = counted.fetch_add(1, Ordering::SeqCst);
        let mut handle = handle_to_come.clone();
        async move {
            if run == 0 {
                let handle = handle.wait_for(Option::is_some).await.expect("the handle").clone().expect("some");
                let _ = handle.restart("g").await;
            }
            ctx.cancelled().await;
        }
    })
    .stop_timeout(2 * SEC);
    let sup = Supervisor::builder().group(GroupSpec::new("g").task(idle("calm")).task(restarter)).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "g is ready", handle.wait_ready("g")).await.unwrap();
    give.send_replace(Some(handle.clone()));
    let stops = within(DEADLINE, "the restarter's own stop", async {
        events_until(&mut events, |event| {
            event.unit == "g/restarter" && matches!(event.kind, EventKind::Stopped { .. })
        })
        .await
    })
    .await;
    assert!(matches!(stops.last().unwrap().kind, EventKind::Stopped { forced: true, took } if took == 2 * SEC));
    within(DEADLINE, "g runs again", handle.wait_status("g/restarter", |status| status.running && runs_twice(&runs)))
        .await
        .unwrap();
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    assert_consistent(&report, &handle);
    assert!(report.is_clean(), "{report}");
}

fn runs_twice(runs: &AtomicU32) -> bool {
    runs.load(Ordering::SeqCst) >= 2
}

/// The runtime dropped while daemons of nested groups run, one of them in
/// the middle of a stop it ignores: every leader is killed and reaped.
#[test]
fn dropping_the_runtime_kills_the_daemons_of_nested_groups() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (handle, pids) = runtime.block_on(async {
        let deaf = || DaemonSpec::new("deaf", "sh").args(["-c", "trap '' TERM; while :; do sleep 0.05; done"]);
        let inner = GroupSpec::new("inner").daemon(DaemonSpec::new("sleeper", "sleep").arg("1000")).daemon(deaf());
        let outer = GroupSpec::new("outer")
            .strategy(Strategy::OneForAll)
            .group(inner)
            .daemon(DaemonSpec::new("sleeper", "sleep").arg("1000"));
        let handle = Supervisor::builder().group(outer).build().unwrap().start();
        let mut pids = Vec::new();
        for name in ["outer/inner/sleeper", "outer/inner/deaf", "outer/sleeper"] {
            let status = within(DEADLINE, name, handle.wait_ready(name)).await.unwrap();
            pids.push(status.pid.expect("a daemon that runs has a pid"));
        }
        // A stop that the daemon ignores, in flight as the runtime goes.
        let stopping = handle.clone();
        tokio::spawn(async move { stopping.stop_unit("outer/inner/deaf").await });
        within(DEADLINE, "the stop begins", handle.wait_state("outer/inner/deaf", UnitState::Stopping)).await.unwrap();
        (handle, pids)
    });
    drop(runtime);
    for pid in pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "leader {pid} outlived the runtime");
    }
    drop(handle);
}

/// `levels` groups, each in the one before, each with `shape` applied, an
/// idle sibling beside each nested group, and `leaf` in the innermost.
fn deep(levels: usize, leaf: TaskSpec, shape: impl Fn(GroupSpec) -> GroupSpec) -> GroupSpec {
    let innermost = shape(GroupSpec::new("g").task(leaf).task(idle("calm")));
    (1..levels).fold(innermost, |inner, _| shape(GroupSpec::new("g").group(inner).task(idle("calm"))))
}

/// Escalation through eight levels of one_for_all groups, each allowing
/// one restart of the level below: each level gives up once the level
/// below gave up twice, until the root does. The leaf runs exactly
/// 2^8 times per run of the top group, and the report is consistent.
#[tokio::test(start_paused = true)]
async fn escalation_through_eight_levels_of_one_for_all_groups() {
    let runs = Arc::new(AtomicU32::new(0));
    let shape = |group: GroupSpec| {
        group.strategy(Strategy::OneForAll).intensity(1, Duration::from_secs(3600)).restart(no_delay())
    };
    let tree = deep(8, always_fails("leaf", &runs).restart(no_delay()), shape);
    let handle = Supervisor::builder()
        .intensity(1, Duration::from_secs(3600))
        .task(idle("bystander"))
        .group(tree)
        .build()
        .unwrap()
        .start();
    let report = within(DEADLINE, "the root gives up", handle.wait()).await;
    assert_consistent(&report, &handle);
    assert!(matches!(report.cause, ShutdownCause::GaveUp { .. }), "{}", report.cause);
    assert_eq!(runs.load(Ordering::SeqCst), 2 * 256);
}

/// A critical chain as deep as allowed, whose leaf's `f` panics: the whole
/// tree ends as a failure, naming the top group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_chain_as_deep_as_allowed_ends_the_tree() {
    let never = || RestartPolicy::new().on(RestartOn::Never);
    let leaf = TaskSpec::new("leaf", |_ctx: Context| -> std::future::Ready<()> { panic!("deep down") })
        .critical()
        .restart(never());
    let tree = deep(supervisor::MAX_GROUP_DEPTH, leaf, |group| group.critical().restart(never()));
    let handle = Supervisor::builder().task(idle("bystander")).group(tree).build().unwrap().start();
    let report = within(DEADLINE, "the tree ends", handle.wait()).await;
    assert_consistent(&report, &handle);
    assert_eq!(report.cause, ShutdownCause::CriticalEnded { unit: "g".to_owned(), failed: true });
}

/// The deepest tree allowed, restarted by hand from the top, then shut
/// down: no stack overflow on the caller's task or the owners'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deepest_tree_allowed_restarted_by_hand_and_shut_down() {
    let tree = deep(supervisor::MAX_GROUP_DEPTH, idle("leaf"), |group| group.strategy(Strategy::OneForAll));
    let handle = Supervisor::builder().group(tree).build().unwrap().start();
    let leaf = format!("{}/leaf", vec!["g"; supervisor::MAX_GROUP_DEPTH].join("/"));
    within(DEADLINE, "the leaf runs", handle.wait_ready(&leaf)).await.unwrap();
    within(DEADLINE, "the restart", handle.restart("g")).await.unwrap();
    within(DEADLINE, "the leaf runs again", handle.wait_ready(&leaf)).await.unwrap();
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    assert_consistent(&report, &handle);
    assert!(report.is_clean(), "{report}");
}

/// `temporary()`: "Forgets the unit once it ends for good"; `critical()`:
/// its group then ends as well. A job both, added to a group that its
/// policy restarts, runs once: forgotten as it ends, it is not in the
/// group's next run. It used to stay, `Exited`, and run again with each
/// restart of its group, ending the group each time.
#[tokio::test(start_paused = true)]
async fn a_temporary_critical_unit_is_forgotten_and_its_group_runs_on_without_it() {
    let group = GroupSpec::new("g").task(idle("other")).restart(RestartPolicy::new().delay(SEC));
    let handle = Supervisor::builder().group(group).build().unwrap().start();
    within(DEADLINE, "g ready", handle.wait_ready("g")).await.unwrap();
    let mut events = handle.subscribe();
    let runs = Arc::new(AtomicU32::new(0));
    let job = TaskSpec::new("job", {
        let runs = runs.clone();
        move |_ctx: Context| {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(SEC / 10)
        }
    })
    .restart(RestartPolicy::new().on(RestartOn::Failure))
    .temporary()
    .critical();
    within(DEADLINE, "add", handle.add_to("g", job)).await.unwrap();
    // The job ends cleanly: it is forgotten, its group ends, and the
    // group's policy starts it again a second later.
    let seen = within(
        DEADLINE,
        "g started again",
        events_until(&mut events, |event| event.unit == "g" && matches!(event.kind, EventKind::Started { .. })),
    )
    .await;
    assert!(seen.iter().any(|event| event.unit == "g/job" && event.kind == EventKind::Removed), "{seen:#?}");
    tokio::time::sleep(10 * SEC).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the job ran again with its group");
    assert!(handle.status("g/job").is_none(), "{:?}", handle.status("g/job"));
    assert_eq!(handle.status("g").unwrap().state, UnitState::Running);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

// ---------------------------------------------------------------------------
// No unit of a nested group starts once the shutdown has begun: the
// shutdown reaches a nested group only when its parent stops it, and until
// then the group must not act on its units' policies, its intensity or its
// strategy.

/// A task that fails after `after`, restarted after a second.
fn fails_after(name: &str, after: Duration) -> TaskSpec {
    TaskSpec::new(name, move |_ctx: Context| async move {
        tokio::time::sleep(after).await;
        Err::<(), _>("fell over")
    })
    .restart(RestartPolicy::new().delay(SEC))
}

/// The units `Started` among `events`.
fn started(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter(|event| matches!(event.kind, EventKind::Started { .. }))
        .map(|event| event.unit.as_str())
        .collect()
}

/// A unit of a nested group waiting to restart is not restarted while a
/// slower root unit stops, in either shutdown order.
#[tokio::test(start_paused = true)]
async fn a_nested_unit_in_backoff_is_not_restarted_once_the_shutdown_began() {
    for order in [ShutdownOrder::Sequential, ShutdownOrder::Concurrent] {
        let runs = Arc::new(AtomicU32::new(0));
        let handle = Supervisor::builder()
            .shutdown_order(order)
            .group(GroupSpec::new("g").task(always_fails("x", &runs).restart(RestartPolicy::new().delay(SEC))))
            // Under Concurrent, `slow` holds `g` back until it has stopped.
            .task(specs::slow_to_stop("slow", 3 * SEC).depends_on(["g"]))
            .build()
            .unwrap()
            .start();
        within(DEADLINE, "x's backoff", handle.wait_state("g/x", UnitState::Backoff)).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{order:?}: g/x was restarted during the shutdown\n{report}");
    }
}

/// A nested unit that fails while the shutdown stops a root unit rests
/// failed, as a root unit does: not restarted, listed `Failed`, and the
/// report is not clean.
#[tokio::test(start_paused = true)]
async fn a_nested_unit_failing_during_the_shutdown_rests_failed_as_at_the_root() {
    let sup = Supervisor::builder()
        .group(GroupSpec::new("g").task(fails_after("x", 2 * SEC)))
        .task(specs::slow_to_stop("slow", 3 * SEC))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "slow", handle.wait_ready("slow")).await.unwrap();
    tokio::time::sleep(SEC).await;
    drain(&mut events);
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    let after = drain(&mut events);
    assert!(!after.iter().any(|event| matches!(event.kind, EventKind::Restarting { .. })), "{after:?}");
    assert_eq!(started(&after), Vec::<&str>::new());
    let x = report.units.iter().find(|unit| unit.name == "g/x").unwrap();
    assert_eq!((x.state, x.outcome), (UnitState::Failed, StopOutcome::NotRunning), "{report}");
    assert_eq!(report.exit_code(), 1, "{report}");
}

/// The same failure, held back while the group's one_for_all strategy
/// stops a slow sibling, and heard when the strategy asks the unit to stop
/// (after the shutdown began, before it reached the group): the unit rests
/// failed, as it does when the failure is heard at once. It was listed
/// `Stopped` and `Graceful`, and the report was clean with exit code 0.
#[tokio::test(start_paused = true)]
async fn a_nested_failure_held_by_a_strategy_during_the_shutdown_rests_failed() {
    // `x` fails at 1 s: the strategy stops `s` (2 s), then `y`, which
    // fails at 2 s meanwhile; the shutdown, begun at 1 s, stops `slow`
    // (4 s) before it reaches `g`.
    let g = GroupSpec::new("g")
        .strategy(Strategy::OneForAll)
        .task(fails_after("y", 2 * SEC))
        .task(specs::slow_to_stop("s", 2 * SEC))
        .task(fails_after("x", SEC));
    let sup = Supervisor::builder().group(g).task(specs::slow_to_stop("slow", 4 * SEC)).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "slow", handle.wait_ready("slow")).await.unwrap();
    within(DEADLINE, "the strategy's stop of s", handle.wait_state("g/s", UnitState::Stopping)).await.unwrap();
    drain(&mut events);
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    let after = drain(&mut events);
    assert!(
        after.iter().any(|event| event.unit == "g/y" && matches!(event.kind, EventKind::Exited { .. })),
        "y failed during the shutdown: {after:?}"
    );
    assert_eq!(started(&after), Vec::<&str>::new());
    let y = report.units.iter().find(|unit| unit.name == "g/y").unwrap();
    assert_eq!((y.state, y.outcome), (UnitState::Failed, StopOutcome::NotRunning), "{report}");
    assert_eq!(report.exit_code(), 1, "{report}");
    assert_consistent(&report, &handle);
}

/// Ends after `after`, well.
fn ends_well_after(name: &str, after: Duration) -> TaskSpec {
    TaskSpec::new(name, move |_ctx: Context| async move {
        tokio::time::sleep(after).await;
    })
    .restart(RestartPolicy::new().delay(SEC))
}

/// How a group's run ends while its units fail.
#[derive(Debug, Clone, Copy)]
enum GroupEnd {
    StoppedByHand,
    GaveUp,
    Shutdown,
}

/// A unit whose run fails while its group ends without a shutdown (stopped
/// by hand, or giving up on its intensity) rests `Failed`, as it does when
/// the shutdown ends the group and as it would at the root: it read
/// `Exited`, the state of a unit whose policy does not restart it, which
/// this one's does. A unit that ends well meanwhile rests `Exited`, and one
/// whose policy lets a failure rest (`RestartOn::Never`) rests `Exited` in
/// every ending, the shutdown's too, whose report stays clean for it, as
/// at any other time (it read `Failed`, with exit code 1, in a shutdown).
#[tokio::test(start_paused = true)]
async fn a_unit_failing_while_its_group_ends_rests_as_in_the_shutdown() {
    for end in [GroupEnd::StoppedByHand, GroupEnd::GaveUp, GroupEnd::Shutdown] {
        for restarted_failure in [true, false] {
            // `s`, started last, is stopped first and takes 3 s; the others
            // end by themselves at 2 s meanwhile. The ending begins at 1 s
            // (by hand, or the shutdown), or at 0.5 s when `y`'s second
            // failure is one restart too many for `intensity(1, ..)`.
            let runs = Arc::new(AtomicU32::new(0));
            let mut g = GroupSpec::new("g").restart(specs::run_once());
            if restarted_failure {
                g = g.task(fails_after("x", 2 * SEC));
            }
            g = g.task(fails_after("never", 2 * SEC).restart(specs::run_once())).task(ends_well_after("well", 2 * SEC));
            if let GroupEnd::GaveUp = end {
                let y = always_fails("y", &runs).restart(RestartPolicy::new().delay(Duration::from_millis(500)));
                g = g.intensity(1, Duration::from_secs(60)).task(y);
            }
            let g = g.task(specs::slow_to_stop("s", 3 * SEC));
            let handle = Supervisor::builder().group(g).build().unwrap().start();
            let case = format!("{end:?}, restarted failure: {restarted_failure}");
            let report = match end {
                GroupEnd::StoppedByHand => {
                    within(DEADLINE, "s", handle.wait_ready("g/s")).await.unwrap();
                    tokio::time::sleep(SEC).await;
                    within(DEADLINE, "the stop of g", handle.stop_unit("g")).await.unwrap();
                    None
                }
                GroupEnd::GaveUp => {
                    within(DEADLINE, "g gives up", handle.wait_state("g", UnitState::Exited)).await.unwrap();
                    None
                }
                GroupEnd::Shutdown => {
                    within(DEADLINE, "s", handle.wait_ready("g/s")).await.unwrap();
                    tokio::time::sleep(SEC).await;
                    Some(within(DEADLINE, "the shutdown", handle.shutdown()).await)
                }
            };
            let state = |name: &str| {
                let status = handle.status(name).unwrap();
                assert!(status.last_error.is_some() || name == "g/well", "{case}: {status:?}");
                status.state
            };
            if restarted_failure {
                assert_eq!(state("g/x"), UnitState::Failed, "{case}");
            }
            assert_eq!(state("g/never"), UnitState::Exited, "{case}");
            assert_eq!(state("g/well"), UnitState::Exited, "{case}");
            let report = match report {
                Some(report) => report,
                None => within(DEADLINE, "the shutdown", handle.shutdown()).await,
            };
            for line in report.units.iter().filter(|line| ["g/x", "g/never", "g/well"].contains(&line.name.as_str())) {
                assert_eq!(line.outcome, StopOutcome::NotRunning, "{case}\n{report}");
            }
            assert_consistent(&report, &handle);
            if let GroupEnd::Shutdown = end {
                assert_eq!(report.exit_code(), i32::from(restarted_failure), "{case}\n{report}");
            }
        }
    }
}

/// A crash-looping daemon in a nested group spawns no process once the
/// shutdown has begun (real processes).
#[tokio::test]
async fn a_nested_crash_looping_daemon_is_not_spawned_again_during_the_shutdown() {
    let crashy = DaemonSpec::new("crashy", "sh").args(["-c", "sleep 0.2; exit 1"]).restart(no_delay());
    let sup = Supervisor::builder()
        .group(GroupSpec::new("g").daemon(crashy))
        .task(specs::slow_to_stop("slow", 2 * SEC))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "slow", handle.wait_ready("slow")).await.unwrap();
    within(DEADLINE, "crashy", handle.wait_ready("g/crashy")).await.unwrap();
    drain(&mut events);
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    let after = drain(&mut events);
    assert_eq!(started(&after), Vec::<&str>::new(), "spawned after the shutdown began\n{report}");
}

/// A nested group that gives up during the shutdown is not restarted by
/// its parent, and the parent's strategy restarts none of its siblings.
#[tokio::test(start_paused = true)]
async fn a_nested_group_giving_up_during_the_shutdown_restarts_nothing() {
    let runs = Arc::new(AtomicU32::new(0));
    let inner = GroupSpec::new("inner")
        .intensity(1, Duration::from_secs(60))
        .restart(RestartPolicy::new().delay(SEC))
        .task(always_fails("x", &runs).restart(RestartPolicy::new().delay(Duration::from_millis(100))));
    let sup = Supervisor::builder()
        .group(GroupSpec::new("outer").strategy(Strategy::OneForAll).task(idle("o1")).group(inner))
        .task(specs::slow_to_stop("slow", 3 * SEC))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "slow", handle.wait_ready("slow")).await.unwrap();
    within(DEADLINE, "o1", handle.wait_ready("outer/o1")).await.unwrap();
    drain(&mut events);
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    let after = drain(&mut events);
    assert_eq!(started(&after), Vec::<&str>::new(), "{after:?}\n{report}");
    assert!(!after.iter().any(|event| matches!(event.kind, EventKind::SiblingFailed { .. })), "{after:?}");
}
