//! The README's concrete claims, from "The API at a glance" to "Running
//! under systemd", checked one by one against what the library does.
//!
//! Each test quotes the claim it checks. A claim found false keeps a test
//! that asserts what the README says, marked `#[ignore = "readme: ..."]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use supervisor::{
    Context, DaemonSpec, Error, Event, EventKind, ExitReason, GroupSpec, MaxRestarts, RestartOn, RestartPolicy,
    ShutdownCause, Signal, StopOutcome, Strategy, Supervisor, SupervisorHandle, TaskSpec, UnitState,
};

#[path = "support/deadline.rs"]
mod deadline;
use deadline::{events_until, within};
#[path = "support/specs.rs"]
mod specs;
use specs::{idle, run_once, sh};

/// Far longer than any call takes when nothing hangs.
const DEADLINE: Duration = Duration::from_secs(15);

/// The delay of each `Restarting` among `events`, in order.
fn restart_delays(events: &[Event]) -> Vec<Duration> {
    events
        .iter()
        .filter_map(|event| match event.kind {
            EventKind::Restarting { delay, .. } => Some(delay),
            _ => None,
        })
        .collect()
}

async fn running(handle: &SupervisorHandle, name: &str) {
    within(DEADLINE, name, handle.wait_state(name, UnitState::Running)).await.unwrap();
}

// ---------------------------------------------------------------------------
// The API at a glance

/// "handle.statuses() // Vec<UnitStatus>, depth first in registration order"
/// and "handle.unit_names() // Vec<String>, the same order", also when a
/// dependency makes the start order differ from the registration order.
#[tokio::test]
async fn statuses_and_names_are_in_registration_order() {
    let handle = Supervisor::builder()
        .task(idle("web").depends_on(["db"]))
        .group(GroupSpec::new("g").task(idle("b").depends_on(["a"])).task(idle("a")))
        .task(idle("db"))
        .build()
        .unwrap()
        .start();
    running(&handle, "web").await;
    let registered = ["web", "g", "g/b", "g/a", "db"];
    assert_eq!(handle.unit_names(), registered);
    let names: Vec<String> = handle.statuses().into_iter().map(|status| status.name).collect();
    assert_eq!(names, registered);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// "Every handle method that names a unit returns `Error::UnknownUnit`
/// (listing the units that exist) for a name it does not know".
#[tokio::test]
async fn every_method_naming_a_unit_says_unknown_unit() {
    let handle = Supervisor::builder().task(idle("alpha")).group(GroupSpec::new("beta")).build().unwrap().start();
    running(&handle, "alpha").await;
    let check = |what: &str, result: Result<(), Error>| match result {
        Err(Error::UnknownUnit { name, known }) => {
            assert_eq!(name, "nope", "{what}");
            assert!(known.contains("alpha") && known.contains("beta"), "{what}: {known}");
        }
        other => panic!("{what}: {other:?}"),
    };
    check("restart", handle.restart("nope").await);
    check("stop_unit", handle.stop_unit("nope").await);
    check("start_unit", handle.start_unit("nope").await);
    check("remove", handle.remove("nope").await.map(drop));
    check("add_to", handle.add_to("nope", idle("x")).await);
    check("wait_ready", handle.wait_ready("nope").await.map(drop));
    check("wait_state", handle.wait_state("nope", UnitState::Running).await.map(drop));
    check("wait_status", handle.wait_status("nope", |_| true).await.map(drop));
    check("signal", handle.signal("nope", Signal::HUP));
    check("pause_restarts", handle.pause_restarts("nope").await);
    check("resume_restarts", handle.resume_restarts("nope").await);
    check("tail", handle.tail("nope", 10).map(drop));
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// "`start_unit`, `restart` and `add` return `Error::ShuttingDown` once a
/// shutdown has begun."
#[tokio::test]
async fn start_restart_and_add_refuse_once_shutdown_began() {
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let held = release.clone();
    let handle = Supervisor::builder()
        .task(idle("other").restart(run_once()))
        .task(TaskSpec::new("slow", move |ctx: Context| {
            let held = held.clone();
            async move {
                ctx.cancelled().await;
                held.notified().await;
            }
        }))
        .build()
        .unwrap()
        .start();
    running(&handle, "slow").await;
    let stopping = tokio::spawn({
        let handle = handle.clone();
        async move { handle.shutdown().await }
    });
    within(DEADLINE, "shutdown begins", async {
        while !handle.is_shutting_down() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(matches!(handle.start_unit("other").await, Err(Error::ShuttingDown { .. })));
    assert!(matches!(handle.restart("slow").await, Err(Error::ShuttingDown { .. })));
    assert!(matches!(handle.add(idle("late")).await, Err(Error::ShuttingDown { .. })));
    release.notify_one();
    let report = within(DEADLINE, "shutdown", stopping).await.unwrap();
    assert!(report.is_clean(), "{report}");
}

/// "handle.remove("job-7").await? // stop it gracefully, then forget it:
/// UnitReport"
#[tokio::test]
async fn remove_returns_a_graceful_unit_report_and_forgets() {
    let handle = Supervisor::builder().build().unwrap().start();
    handle.add(idle("job-7")).await.unwrap();
    running(&handle, "job-7").await;
    let report = within(DEADLINE, "remove", handle.remove("job-7")).await.unwrap();
    assert_eq!(report.name, "job-7");
    assert_eq!(report.outcome, StopOutcome::Graceful);
    assert_eq!(report.state, UnitState::Stopped);
    assert!(handle.status("job-7").is_none());
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

// ---------------------------------------------------------------------------
// Trees

/// "nested up to 64 levels (`MAX_GROUP_DEPTH`; a deeper tree is an
/// `Error::TooDeep` from `build()` or `add_to`...)": 64 levels build, 65 do
/// not.
#[tokio::test]
async fn sixty_four_levels_build_and_sixty_five_do_not() {
    fn nest(levels: usize) -> GroupSpec {
        let mut group = GroupSpec::new("g").task(idle("leaf"));
        for _ in 1..levels {
            group = GroupSpec::new("g").group(group);
        }
        group
    }
    assert_eq!(supervisor::MAX_GROUP_DEPTH, 64);
    let handle = Supervisor::builder().group(nest(64)).build().expect("64 levels").start();
    let deepest = vec!["g"; 64].join("/");
    running(&handle, &format!("{deepest}/leaf")).await;
    match handle.add_to(&deepest, GroupSpec::new("one-more")).await {
        Err(Error::TooDeep { max: 64, .. }) => {}
        other => panic!("add_to a 65th level: {other:?}"),
    }
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    match Supervisor::builder().group(nest(65)).build() {
        Err(Error::TooDeep { max: 64, depth: 65, .. }) => {}
        other => panic!("65 levels: {:?}", other.map(drop)),
    }
}

/// "A root that gives up shuts the supervisor down with exit code 1, and
/// `run()` and `wait()` return."
#[tokio::test]
async fn a_root_that_gives_up_ends_with_exit_code_one() {
    tokio::time::pause();
    let sup = Supervisor::builder()
        .intensity(2, Duration::from_secs(60))
        .task(idle("steady"))
        .task(
            TaskSpec::new("crashy", |_ctx: Context| async { Err::<(), _>("boom") })
                .restart(RestartPolicy::new().delay(Duration::from_millis(10))),
        )
        .build()
        .unwrap();
    let report = within(DEADLINE, "run returns", sup.run()).await;
    assert!(matches!(report.cause, ShutdownCause::GaveUp { .. }), "{report}");
    assert_eq!(report.exit_code(), 1);
}

/// "`critical()` on any unit ... At the root this shuts the supervisor down,
/// exit code 1 or 0, with `ShutdownReport::cause` saying which unit"
#[tokio::test]
async fn a_critical_unit_ends_the_tree_with_its_own_verdict() {
    let clean = Supervisor::builder()
        .task(idle("steady"))
        .task(TaskSpec::new("main-job", |_ctx: Context| async {}).restart(run_once()).critical())
        .build()
        .unwrap()
        .start();
    let report = within(DEADLINE, "wait", clean.wait()).await;
    assert_eq!(report.cause, ShutdownCause::CriticalEnded { unit: "main-job".to_owned(), failed: false });
    assert_eq!(report.exit_code(), 0, "{report}");

    let failed = Supervisor::builder()
        .task(idle("steady"))
        .task(
            TaskSpec::new("vital", |_ctx: Context| async { Err::<(), _>("no") })
                .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(1)))
                .critical(),
        )
        .build()
        .unwrap()
        .start();
    let report = within(DEADLINE, "wait", failed.wait()).await;
    assert_eq!(report.cause, ShutdownCause::CriticalEnded { unit: "vital".to_owned(), failed: true });
    assert_eq!(report.exit_code(), 1, "{report}");
}

/// "`OneForAll` stops its running siblings (in reverse start order),
/// then ... starts them all again in start order ... Every unit so
/// stopped first gets an `Event` `SiblingFailed { sibling, strategy }`
/// naming the unit whose failure caused it."
#[tokio::test]
async fn one_for_all_stops_newest_first_after_sibling_failed() {
    let sup = Supervisor::builder()
        .group(
            GroupSpec::new("grp")
                .strategy(Strategy::OneForAll)
                .task(idle("a"))
                .task(idle("b"))
                .task(
                    TaskSpec::new("c", |ctx: Context| async move {
                        if ctx.restart_count() == 0 {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Err("first run fails")
                        } else {
                            ctx.cancelled().await;
                            Ok(())
                        }
                    })
                    .restart(RestartPolicy::new().delay(Duration::from_millis(10))),
                )
                .task(idle("d")),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let seen = events_until(DEADLINE, &mut events, |event| {
        event.unit == "grp/c" && matches!(event.kind, EventKind::Started { restart_count: 1, .. })
    })
    .await;
    let failed_at = seen.iter().position(|e| e.unit == "grp/c" && matches!(e.kind, EventKind::Exited { .. })).unwrap();
    let after: Vec<(&str, &EventKind)> = seen[failed_at..].iter().map(|e| (e.unit.as_str(), &e.kind)).collect();
    let sibling_failed: Vec<&str> = after
        .iter()
        .filter(|(_, kind)| {
            matches!(kind, EventKind::SiblingFailed { sibling, strategy: Strategy::OneForAll } if sibling == "grp/c")
        })
        .map(|(unit, _)| *unit)
        .collect();
    let mut sorted = sibling_failed.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["grp/a", "grp/b", "grp/d"], "{after:?}");
    let stopped: Vec<&str> =
        after.iter().filter(|(_, kind)| matches!(kind, EventKind::Stopped { .. })).map(|(unit, _)| *unit).collect();
    assert_eq!(stopped, ["grp/d", "grp/b", "grp/a"], "{after:?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

// ---------------------------------------------------------------------------
// Restart policies and counting, states, events

/// "`RestartPolicy::new()` is a fixed 1 s delay, unlimited restarts, restart
/// on any ending."
#[tokio::test]
async fn the_default_policy_restarts_any_ending_after_one_second() {
    tokio::time::pause();
    let sup = Supervisor::builder().task(TaskSpec::new("done", |_ctx: Context| async {})).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let seen =
        events_until(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Restarting { attempt: 3, .. }))
            .await;
    let delays = restart_delays(&seen);
    assert_eq!(delays, [Duration::from_secs(1); 3]);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// "`max = 3` lets a unit that keeps failing run **four** times; it then
/// ends `Failed` with `restart_count == 3`."
#[tokio::test]
async fn at_most_three_restarts_means_four_runs() {
    tokio::time::pause();
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = runs.clone();
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("flaky", move |_ctx: Context| {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { Err::<(), _>("boom") }
            })
            .restart(RestartPolicy::new().max_restarts(MaxRestarts::AtMost(3))),
        )
        .build()
        .unwrap()
        .start();
    let status = within(DEADLINE, "failed", handle.wait_state("flaky", UnitState::Failed)).await.unwrap();
    assert_eq!(status.restart_count, 3);
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 4);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// "A run that succeeds when the policy would restart it but the limit is
/// reached ends `Exited`, not `Failed`"
#[tokio::test]
async fn a_success_at_the_limit_ends_exited() {
    tokio::time::pause();
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("ok", |_ctx: Context| async {})
                .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(2))),
        )
        .build()
        .unwrap()
        .start();
    let status = within(DEADLINE, "at rest", handle.wait_status("ok", |s| !s.state.is_active())).await.unwrap();
    assert_eq!(status.state, UnitState::Exited);
    assert_eq!(status.restart_count, 2);
    assert_eq!(status.last_error, None);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// "A zero `delay` stays zero under any `backoff`."
#[tokio::test]
async fn a_zero_delay_stays_zero_under_backoff() {
    tokio::time::pause();
    let sup = Supervisor::builder()
        .task(
            TaskSpec::new("fast", |_ctx: Context| async { Err::<(), _>("x") }).restart(
                RestartPolicy::new()
                    .delay(Duration::ZERO)
                    .backoff(3.0)
                    .max_delay(Duration::from_secs(60))
                    .max_restarts(MaxRestarts::AtMost(5)),
            ),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let seen = events_until(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::GaveUp { .. })).await;
    let delays = restart_delays(&seen);
    assert_eq!(delays, [Duration::ZERO; 5]);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// "`jitter(fraction)` | lengthen each delay by up to `fraction` of itself,
/// at random"
#[tokio::test]
async fn jitter_only_lengthens_within_its_fraction() {
    tokio::time::pause();
    let sup = Supervisor::builder()
        .random_seed(7)
        .task(TaskSpec::new("j", |_ctx: Context| async { Err::<(), _>("x") }).restart(
            RestartPolicy::new().delay(Duration::from_millis(100)).jitter(0.5).max_restarts(MaxRestarts::AtMost(20)),
        ))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let seen = events_until(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::GaveUp { .. })).await;
    let delays = restart_delays(&seen);
    assert_eq!(delays.len(), 20);
    for delay in &delays {
        assert!(*delay >= Duration::from_millis(100) && *delay <= Duration::from_millis(150), "{delays:?}");
    }
    assert!(delays.iter().any(|delay| *delay > Duration::from_millis(100)), "no jitter at all: {delays:?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// "`restartsTotal` every restart its policy or its group's strategy made
/// since the supervisor started (a `restart` or `start_unit` by hand is not
/// counted)": two restarts by hand leave it at 0; one by the policy
/// counts, and stays counted after the next restart by hand.
#[tokio::test]
async fn restarts_total_counts_the_policys_restarts_not_those_by_hand() {
    let handle = Supervisor::builder().task(idle("w")).build().unwrap().start();
    running(&handle, "w").await;
    within(DEADLINE, "restart", handle.restart("w")).await.unwrap();
    running(&handle, "w").await;
    within(DEADLINE, "restart", handle.restart("w")).await.unwrap();
    running(&handle, "w").await;
    let status = handle.status("w").unwrap();
    assert_eq!((status.restart_count, status.restarts_total), (0, 0), "{status:?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;

    let fails_once = Arc::new(AtomicBool::new(true));
    let task = TaskSpec::new("f", move |ctx: Context| {
        let fail = fails_once.swap(false, Ordering::SeqCst);
        async move {
            if fail {
                return Err("once");
            }
            ctx.cancelled().await;
            Ok(())
        }
    })
    .restart(RestartPolicy::new().delay(Duration::ZERO));
    let handle = Supervisor::builder().task(task).build().unwrap().start();
    within(DEADLINE, "restarted", handle.wait_status("f", |status| status.restarts_total == 1 && status.running))
        .await
        .unwrap();
    within(DEADLINE, "restart", handle.restart("f")).await.unwrap();
    running(&handle, "f").await;
    let status = handle.status("f").unwrap();
    assert_eq!((status.restart_count, status.restarts_total), (0, 1), "{status:?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// "`Ok`/`()` is a success (exit code 0), `Err` a failure (exit code 1, its
/// message kept in `last_error`), a panic is caught and is a failure (its
/// message kept as `panicked: ...`), in `f` itself as in its future"
#[tokio::test]
async fn task_endings_give_exit_codes_and_errors() {
    let handle = Supervisor::builder()
        .task(TaskSpec::new("fine", |_ctx: Context| async { Ok::<(), std::io::Error>(()) }).restart(run_once()))
        .task(TaskSpec::new("err", |_ctx: Context| async { Err::<(), _>("disk full") }).restart(run_once()))
        .task(
            TaskSpec::new("in-future", |_ctx: Context| async {
                panic!("bad state");
                #[allow(unreachable_code)]
                ()
            })
            .restart(run_once()),
        )
        .task(
            TaskSpec::new("in-f", |_ctx: Context| -> std::future::Ready<()> { panic!("bad call") }).restart(run_once()),
        )
        .build()
        .unwrap()
        .start();
    let at_rest = |name: &'static str| {
        let handle = handle.clone();
        async move { within(DEADLINE, name, handle.wait_status(name, |s| !s.state.is_active())).await.unwrap() }
    };
    let fine = at_rest("fine").await;
    assert_eq!((fine.state, fine.exit_code, fine.last_error), (UnitState::Exited, Some(0), None));
    let err = at_rest("err").await;
    assert_eq!((err.state, err.exit_code), (UnitState::Exited, Some(1)));
    assert_eq!(err.last_error.as_deref(), Some("disk full"));
    for (name, message) in [("in-future", "bad state"), ("in-f", "bad call")] {
        let status = at_rest(name).await;
        assert_eq!(status.last_error, Some(format!("panicked: {message}")), "{name}");
    }
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// "A task is stopped by cancelling its `Context`; if it has not finished
/// after its `stop_timeout` (default 5 s), it is aborted."
#[tokio::test]
async fn a_task_that_ignores_cancellation_is_aborted_after_five_seconds() {
    tokio::time::pause();
    let sup = Supervisor::builder()
        .task(TaskSpec::new("deaf", |_ctx: Context| std::future::pending::<()>()))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    running(&handle, "deaf").await;
    within(DEADLINE, "stop", handle.stop_unit("deaf")).await.unwrap();
    let seen = events_until(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Stopped { .. })).await;
    match seen.last().unwrap().kind {
        EventKind::Stopped { forced, took } => {
            assert!(forced);
            assert!(took >= Duration::from_secs(5) && took < Duration::from_millis(5100), "{took:?}");
        }
        _ => unreachable!(),
    }
    assert_eq!(supervisor::DEFAULT_TASK_STOP_TIMEOUT, Duration::from_secs(5));
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// The event kinds the README names, in the order a failing task goes
/// through them: "`Started`, `Exited { reason }`, `Panicked`, `Restarting {
/// attempt, delay }`, `Finished`, `GaveUp { reason }`".
#[tokio::test]
async fn a_failing_task_goes_through_the_named_events() {
    tokio::time::pause();
    let sup = Supervisor::builder()
        .task(
            TaskSpec::new("p", |_ctx: Context| async {
                panic!("kaboom");
                #[allow(unreachable_code)]
                ()
            })
            .restart(RestartPolicy::new().delay(Duration::from_millis(5)).max_restarts(MaxRestarts::AtMost(1))),
        )
        .task(TaskSpec::new("once", |_ctx: Context| async {}).restart(run_once()))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "failed", handle.wait_state("p", UnitState::Failed)).await.unwrap();
    within(DEADLINE, "exited", handle.wait_state("once", UnitState::Exited)).await.unwrap();
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    let of = |unit: &str| -> Vec<String> {
        seen.iter()
            .filter(|event| event.unit == unit)
            .map(|event| {
                let debug = format!("{:?}", event.kind);
                debug.split([' ', '(', '{']).next().unwrap().to_owned()
            })
            .collect()
    };
    assert_eq!(of("p"), ["Started", "Panicked", "Restarting", "Started", "Panicked", "GaveUp"]);
    assert_eq!(of("once"), ["Started", "Exited", "Finished"]);
    let restarting = seen.iter().find(|event| matches!(event.kind, EventKind::Restarting { .. })).unwrap();
    assert_eq!(restarting.kind, EventKind::Restarting { attempt: 1, delay: Duration::from_millis(5) });
    let panicked = seen.iter().find(|event| matches!(event.kind, EventKind::Panicked { .. })).unwrap();
    assert_eq!(panicked.kind, EventKind::Panicked { message: "kaboom".to_owned() });
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// "`UnitStatus` is a plain struct with public fields; it serialises to
/// camelCase JSON" with the keys of the README's example, `type` being
/// `task`, `process` or `group`.
#[tokio::test]
async fn the_status_json_has_the_readme_keys() {
    let handle = Supervisor::builder()
        .group(GroupSpec::new("storage").daemon(DaemonSpec::new("db", "sleep").arg("30")).task(idle("t")))
        .build()
        .unwrap()
        .start();
    running(&handle, "storage/db").await;
    let json = serde_json::to_value(handle.statuses()).unwrap();
    let units = json.as_array().unwrap();
    let db = units.iter().find(|unit| unit["name"] == "storage/db").unwrap();
    for key in [
        "name",
        "type",
        "state",
        "running",
        "pid",
        "restartCount",
        "restartsTotal",
        "restartsPaused",
        "ready",
        "holdsBackReadiness",
        "lastStart",
        "uptime",
        "exitCode",
        "signal",
        "lastError",
    ] {
        assert!(db.get(key).is_some(), "no `{key}` in {db}");
    }
    assert_eq!(db["state"], "running");
    assert!(db["pid"].as_u64().is_some());
    assert!(db["uptime"].is_number());
    let last_start = db["lastStart"].as_str().unwrap();
    assert!(last_start.ends_with('Z') && last_start.len() == "2026-11-26T14:03:07.412Z".len(), "{last_start}");
    let kinds: Vec<&str> = units.iter().map(|unit| unit["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["group", "process", "task"]);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// "`handle.shutdown()` stops every unit gracefully and returns a
/// `ShutdownReport` naming each unit once (the units of a group stopped
/// before the shutdown too, as `NotRunning`)", in reverse start order.
#[tokio::test]
async fn the_report_names_each_unit_once_in_reverse_start_order() {
    let handle = Supervisor::builder()
        .task(idle("first"))
        .group(GroupSpec::new("grp").task(idle("x")).task(idle("y")))
        .task(idle("last"))
        .task(TaskSpec::new("gone", |_ctx: Context| async {}).restart(run_once()))
        .build()
        .unwrap()
        .start();
    running(&handle, "last").await;
    running(&handle, "grp/y").await;
    within(DEADLINE, "exited", handle.wait_state("gone", UnitState::Exited)).await.unwrap();
    within(DEADLINE, "stop group", handle.stop_unit("grp")).await.unwrap();
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    let lines: Vec<(&str, UnitState, StopOutcome)> =
        report.units.iter().map(|unit| (unit.name.as_str(), unit.state, unit.outcome)).collect();
    assert_eq!(
        lines,
        [
            ("gone", UnitState::Exited, StopOutcome::NotRunning),
            ("last", UnitState::Stopped, StopOutcome::Graceful),
            ("grp/y", UnitState::Stopped, StopOutcome::NotRunning),
            ("grp/x", UnitState::Stopped, StopOutcome::NotRunning),
            ("grp", UnitState::Stopped, StopOutcome::NotRunning),
            ("first", UnitState::Stopped, StopOutcome::Graceful),
        ]
    );
    assert_eq!(report.cause, ShutdownCause::Requested);
    assert_eq!(report.exit_code(), 0);
}

/// "A restart delay in progress is cut short by a stop or a shutdown."
#[tokio::test]
async fn a_long_restart_delay_does_not_hold_a_shutdown() {
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("sleepy", |_ctx: Context| async { Err::<(), _>("x") })
                .restart(RestartPolicy::new().delay(Duration::from_secs(3600))),
        )
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "backoff", handle.wait_state("sleepy", UnitState::Backoff)).await.unwrap();
    let started = std::time::Instant::now();
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(report.units[0].state, UnitState::Stopped);
    assert_eq!(report.units[0].outcome, StopOutcome::Graceful);
}

/// "Dropping every handle runs the same shutdown in the background."
#[tokio::test]
async fn dropping_every_handle_stops_the_units_gracefully() {
    let (sender, stopped) = tokio::sync::oneshot::channel::<()>();
    let sender = std::sync::Mutex::new(Some(sender));
    let handle = Supervisor::builder()
        .task(TaskSpec::new("w", move |ctx: Context| {
            let sender = sender.lock().unwrap().take();
            async move {
                ctx.cancelled().await;
                if let Some(sender) = sender {
                    let _ = sender.send(());
                }
            }
        }))
        .build()
        .unwrap()
        .start();
    running(&handle, "w").await;
    drop(handle);
    within(DEADLINE, "the task sees its cancellation", stopped).await.expect("cancelled, not dropped");
}

// ---------------------------------------------------------------------------
// Daemons

/// "A stop the supervisor asked for ends in state `Stopped` (with `signal`
/// set to the signal that ended it ... and no `last_error` ...)"
#[tokio::test]
async fn a_requested_stop_ends_stopped_with_the_signal_and_no_error() {
    let handle = Supervisor::builder().daemon(DaemonSpec::new("sleeper", "sleep").arg("30")).build().unwrap().start();
    running(&handle, "sleeper").await;
    within(DEADLINE, "stop", handle.stop_unit("sleeper")).await.unwrap();
    let status = handle.status("sleeper").unwrap();
    assert_eq!(status.state, UnitState::Stopped);
    assert_eq!(status.signal, Some(15));
    assert_eq!(status.last_error, None);
    assert_eq!(status.pid, None);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// "a process killed or stopped from outside is a failed run (an `Exited {
/// reason: Signal(9) }` event, `signal: Some(9)`) that goes through the
/// restart policy"
#[tokio::test]
async fn a_process_killed_from_outside_is_a_failed_run() {
    let sup = Supervisor::builder()
        .daemon(
            DaemonSpec::new("victim", "sleep").arg("30").restart(RestartPolicy::new().delay(Duration::from_secs(3600))),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let status = within(DEADLINE, "running", handle.wait_status("victim", |s| s.pid.is_some())).await.unwrap();
    let pid = rustix::process::Pid::from_raw(i32::try_from(status.pid.unwrap()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    let seen = events_until(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Restarting { .. })).await;
    assert!(seen.iter().any(|event| event.kind == EventKind::Exited { reason: ExitReason::Signal(9) }), "{seen:?}");
    let status = within(DEADLINE, "backoff", handle.wait_state("victim", UnitState::Backoff)).await.unwrap();
    assert_eq!(status.signal, Some(9));
    assert!(status.last_error.is_some());
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// "`success_codes([0, 143])` ... makes those exit codes a success for the
/// restart policy and the report: no `last_error`, an `Exited { reason:
/// SuccessCode(143) }` event, while `exit_code` still shows `143`."
#[tokio::test]
async fn a_success_code_is_a_success_that_keeps_its_code() {
    let sup = Supervisor::builder()
        .daemon(sh("quits", "exit 143").success_codes([0, 143]).restart(RestartPolicy::new().on(RestartOn::Failure)))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let status = within(DEADLINE, "exited", handle.wait_state("quits", UnitState::Exited)).await.unwrap();
    assert_eq!(status.exit_code, Some(143));
    assert_eq!(status.last_error, None);
    let seen = events_until(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Finished)).await;
    assert!(
        seen.iter().any(|event| event.kind == EventKind::Exited { reason: ExitReason::SuccessCode(143) }),
        "{seen:?}"
    );
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert!(report.is_clean(), "{report}");
}

/// "The list replaces the default `[0]`; an empty list, or a code outside
/// `0..=255`, is an `Error::InvalidSetting` from `build()`."
#[test]
fn empty_or_out_of_range_success_codes_do_not_build() {
    for codes in [vec![], vec![0, 256], vec![-1]] {
        let result = Supervisor::builder().daemon(DaemonSpec::new("d", "true").success_codes(codes.clone())).build();
        assert!(matches!(result, Err(Error::InvalidSetting { .. })), "{codes:?}: {:?}", result.map(drop));
    }
    // Replaces [0]: with [143] only, exit 0 is a failure.
    let result = Supervisor::builder().daemon(DaemonSpec::new("d", "true").success_codes([143])).build();
    assert!(result.is_ok());
}

/// "A program that cannot be started (not found ...) is a failed run with a
/// `last_error` naming the program and the cause, e.g. ``cannot run
/// `worker`: No such file or directory (os error 2) (is it installed and on
/// PATH?)``; it follows the restart policy and never disturbs other units."
#[tokio::test]
async fn a_missing_program_is_a_failed_run_with_the_readme_message() {
    let handle = Supervisor::builder()
        .task(idle("bystander"))
        .daemon(
            DaemonSpec::new("worker", "no-such-program-for-readme")
                .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(2))),
        )
        .daemon(DaemonSpec::new("lost", "sleep").arg("30").current_dir("/no/such/dir/anywhere").restart(run_once()))
        .build()
        .unwrap()
        .start();
    let status = within(DEADLINE, "failed", handle.wait_state("worker", UnitState::Failed)).await.unwrap();
    assert_eq!(status.restart_count, 2);
    assert_eq!(
        status.last_error.as_deref(),
        Some(
            "cannot run `no-such-program-for-readme`: No such file or directory (os error 2) \
             (is it installed and on PATH?)"
        )
    );
    let lost = within(DEADLINE, "lost", handle.wait_status("lost", |s| !s.state.is_active())).await.unwrap();
    let error = lost.last_error.unwrap_or_default();
    assert!(error.contains("sleep") && error.contains("/no/such/dir/anywhere"), "{error}");
    assert_eq!(handle.status("bystander").unwrap().state, UnitState::Running);
    assert_eq!(handle.status("bystander").unwrap().restarts_total, 0);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// "`.stop_timeout(Duration::from_secs(5)) // default 10 s, then SIGKILL`"
#[tokio::test]
async fn a_daemon_that_ignores_sigterm_is_killed_after_ten_seconds() {
    assert_eq!(supervisor::DEFAULT_DAEMON_STOP_TIMEOUT, Duration::from_secs(10));
    let sup = Supervisor::builder()
        .daemon(
            sh("stubborn", "trap '' TERM; echo armed; while :; do sleep 1; done")
                .readiness(supervisor::Readiness::OutputLine("armed".to_owned())),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "ready", handle.wait_ready("stubborn")).await.unwrap();
    // Paused, the clock jumps over the grace period; no tokio timeout
    // around the stop then, since it would jump as well.
    tokio::time::pause();
    handle.stop_unit("stubborn").await.unwrap();
    let mut seen = Vec::new();
    while !matches!(seen.last(), Some(Event { kind: EventKind::Stopped { .. }, .. })) {
        seen.push(events.recv().await.unwrap());
    }
    tokio::time::resume();
    match seen.last().unwrap().kind {
        EventKind::Stopped { forced, took } => {
            assert!(forced, "{seen:?}");
            assert!(took >= Duration::from_secs(10) && took < Duration::from_secs(11), "{took:?}");
        }
        _ => unreachable!(),
    }
    assert_eq!(handle.status("stubborn").unwrap().signal, Some(9));
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// "`.tail_lines(500) // default 1000`" and "`handle.tail("web", 100)`
/// returns the last lines of both streams in the order the supervisor read them".
#[tokio::test]
async fn the_tail_keeps_a_thousand_lines_of_both_streams_by_default() {
    let handle = Supervisor::builder()
        .daemon(sh("talker", "i=0; while [ $i -lt 1200 ]; do i=$((i+1)); echo out$i; done; sleep 0.2; echo err >&2; sleep 0.2; echo last").restart(run_once()))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "exited", handle.wait_state("talker", UnitState::Exited)).await.unwrap();
    let all = handle.tail("talker", 5000).unwrap();
    assert_eq!(all.len(), 1000);
    assert_eq!(all[0], "out203");
    assert_eq!(all[all.len() - 3..], ["out1200", "err", "last"]);
    assert_eq!(handle.tail("talker", 2).unwrap(), ["err", "last"]);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// "`.build()?; // an empty program is a build error`"
#[test]
fn an_empty_program_is_a_build_error() {
    let result = Supervisor::builder().daemon(DaemonSpec::new("nothing", "")).build();
    assert!(matches!(result, Err(Error::EmptyProgram { .. })), "{:?}", result.map(drop));
}

// ---------------------------------------------------------------------------
// Health, probes and signals: the HTTP endpoint and the control API

mod http {
    use std::net::SocketAddr;
    use std::path::Path;

    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    use hyper::header::HeaderMap;
    use hyper::{Method, Request, StatusCode};
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncRead, AsyncWrite};

    pub(crate) struct Answer {
        pub(crate) status: StatusCode,
        pub(crate) headers: HeaderMap,
        pub(crate) body: String,
    }

    async fn over<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
        stream: S,
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> Answer {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("HTTP/1.1 handshake");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut request = Request::builder().method(method).uri(path).header("host", "test");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response =
            super::within(super::DEADLINE, path, sender.send_request(request.body(Empty::<Bytes>::new()).unwrap()))
                .await
                .expect("an answer");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.expect("the body").to_bytes();
        Answer { status, headers, body: String::from_utf8(body.to_vec()).expect("UTF-8") }
    }

    pub(crate) async fn tcp(addr: SocketAddr, method: Method, path: &str) -> Answer {
        over(tokio::net::TcpStream::connect(addr).await.expect("connect"), method, path, None).await
    }

    pub(crate) async fn unix(socket: &Path, method: Method, path: &str, token: Option<&str>) -> Answer {
        over(tokio::net::UnixStream::connect(socket).await.expect("connect"), method, path, token).await
    }
}

fn endpoint() -> supervisor::HttpEndpoint {
    supervisor::HttpEndpoint::new().addr("127.0.0.1:0".parse().unwrap())
}

/// "Other paths answer 404, other methods 405 with `Allow: GET, HEAD`" and
/// the table's paths and aliases: "`GET /livez` (alias `/health`), `GET
/// /healthz`", "`GET /readyz` (alias `/ready`)", "`GET /status` | every
/// unit's status as a JSON array".
#[tokio::test]
async fn the_endpoint_answers_its_paths_and_refuses_the_rest() {
    use hyper::{Method, StatusCode};
    let handle = Supervisor::builder().task(idle("ticker")).build().unwrap().start();
    running(&handle, "ticker").await;
    let server = endpoint().serve(&handle).await.unwrap();
    let addr = server.local_addr();
    for path in ["/livez", "/health", "/healthz", "/readyz", "/ready"] {
        let answer = http::tcp(addr, Method::GET, path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
        let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(json["status"], "ok", "{path}");
        assert_eq!(answer.headers["content-type"], "application/json", "{path}");
    }
    let head = http::tcp(addr, Method::HEAD, "/readyz").await;
    assert_eq!(head.status, StatusCode::OK);
    let status = http::tcp(addr, Method::GET, "/status").await;
    let json: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["name"], "ticker");
    let missing = http::tcp(addr, Method::GET, "/nowhere").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let refused = http::tcp(addr, method.clone(), "/livez").await;
        assert_eq!(refused.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(refused.headers["allow"], "GET, HEAD", "{method}");
    }
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    drop(server);
}

/// The README's `/readyz` example: 503 with `{"status":"not-ready",
/// "live":true,"ready":false,"reasons":["unit `flaky` (backoff): waiting to
/// restart"],"checks":[{"name":..,"ok":..,"error":..,"took":..}],
/// "units":[{"name":..,"type":..,"state":..,"ready":..,"reason":..}]}`; and
/// "A unit waiting to restart does not make it dead."
#[tokio::test]
async fn readyz_explains_a_unit_in_backoff_and_livez_stays_up() {
    use hyper::{Method, StatusCode};
    let handle = Supervisor::builder()
        .daemon(DaemonSpec::new("worker", "sleep").arg("30"))
        .task(
            TaskSpec::new("flaky", |_ctx: Context| async { Err::<(), _>("crash") })
                .restart(RestartPolicy::new().delay(Duration::from_secs(3600))),
        )
        .health_check("temp-dir", || async { std::fs::metadata(std::env::temp_dir()).map(drop) })
        .build()
        .unwrap()
        .start();
    running(&handle, "worker").await;
    within(DEADLINE, "backoff", handle.wait_state("flaky", UnitState::Backoff)).await.unwrap();
    let server = endpoint().serve(&handle).await.unwrap();
    let ready = http::tcp(server.local_addr(), Method::GET, "/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{}", ready.body);
    let json: serde_json::Value = serde_json::from_str(&ready.body).unwrap();
    assert_eq!(json["status"], "not-ready");
    assert_eq!(json["live"], true);
    assert_eq!(json["ready"], false);
    assert_eq!(json["reasons"], serde_json::json!(["unit `flaky` (backoff): waiting to restart"]));
    let check = &json["checks"][0];
    assert_eq!((&check["name"], &check["ok"], &check["error"]), (&"temp-dir".into(), &true.into(), &().into()));
    assert!(check["took"].is_number());
    let worker = &json["units"][0];
    assert_eq!(worker["name"], "worker");
    assert_eq!(worker["type"], "process");
    assert_eq!(worker["state"], "running");
    assert_eq!(worker["ready"], true);
    assert_eq!(worker["reason"], "running");
    let live = http::tcp(server.local_addr(), Method::GET, "/livez").await;
    assert_eq!(live.status, StatusCode::OK, "{}", live.body);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// "Opt in to `.failed_units_fail_liveness(true)` on the builder and a unit
/// that has given up (`Failed`) makes it not live too, until it is started
/// again"; and by default "A unit that has given up (`Failed`) leaves
/// `/livez` at 200".
#[tokio::test]
async fn a_failed_unit_fails_liveness_only_when_asked() {
    use hyper::{Method, StatusCode};
    let doomed = || {
        let failed_once = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        TaskSpec::new("doomed", move |_ctx: Context| {
            let first = !failed_once.swap(true, std::sync::atomic::Ordering::SeqCst);
            async move { if first { Err("bad config") } else { Ok(()) } }
        })
        .restart(RestartPolicy::new().on(RestartOn::Failure).max_restarts(MaxRestarts::AtMost(0)))
    };
    for opted_in in [false, true] {
        let handle = Supervisor::builder()
            .task(idle("fine"))
            .task(doomed())
            .failed_units_fail_liveness(opted_in)
            .build()
            .unwrap()
            .start();
        within(DEADLINE, "failed", handle.wait_state("doomed", UnitState::Failed)).await.unwrap();
        let server = endpoint().serve(&handle).await.unwrap();
        let live = http::tcp(server.local_addr(), Method::GET, "/livez").await;
        let expected = if opted_in { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
        assert_eq!(live.status, expected, "opted in: {opted_in}: {}", live.body);
        let ready = http::tcp(server.local_addr(), Method::GET, "/readyz").await;
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
        within(DEADLINE, "start", handle.start_unit("doomed")).await.unwrap();
        within(DEADLINE, "exited", handle.wait_state("doomed", UnitState::Exited)).await.unwrap();
        let live = http::tcp(server.local_addr(), Method::GET, "/livez").await;
        assert_eq!(live.status, StatusCode::OK, "after start_unit: {}", live.body);
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    }
}

/// "`GET /metrics` | Prometheus text: `supervisor_up`, `supervisor_ready`,
/// and per unit `supervisor_unit_up`, `_state`, `_restarts_total` (a
/// counter), `_last_exit_code`, `_last_exit_signal`, `_start_time_seconds`,
/// `_uptime_seconds`", sent as `PROMETHEUS_CONTENT_TYPE`.
#[tokio::test]
async fn metrics_has_the_listed_series() {
    use hyper::{Method, StatusCode};
    let handle = Supervisor::builder()
        .daemon(sh("gone", "exit 3").restart(run_once()))
        .daemon(DaemonSpec::new("up", "sleep").arg("30"))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "exited", handle.wait_state("gone", UnitState::Exited)).await.unwrap();
    running(&handle, "up").await;
    within(DEADLINE, "stop", handle.stop_unit("up")).await.unwrap();
    let server = endpoint().serve(&handle).await.unwrap();
    let answer = http::tcp(server.local_addr(), Method::GET, "/metrics").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-type"], supervisor::PROMETHEUS_CONTENT_TYPE);
    let text = answer.body;
    assert!(text.contains("\nsupervisor_up 1\n") || text.starts_with("# HELP supervisor_up"), "{text}");
    for series in [
        "supervisor_ready ",
        "supervisor_unit_up{unit=\"up\",type=\"process\"} 0",
        "supervisor_unit_state{unit=\"gone\",type=\"process\",state=\"exited\"} 1",
        "# TYPE supervisor_unit_restarts_total counter",
        "supervisor_unit_last_exit_code{unit=\"gone\",type=\"process\"} 3",
        "supervisor_unit_last_exit_signal{unit=\"up\",type=\"process\"} 15",
        "supervisor_unit_start_time_seconds{unit=\"gone\",type=\"process\"} ",
        "supervisor_unit_uptime_seconds{unit=\"up\",type=\"process\"} 0",
    ] {
        assert!(text.contains(series), "no `{series}` in\n{text}");
    }
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// "Checks ... (`health_check_timeout`, 5 s by default, 1 ms to 1 h)"
#[test]
fn the_health_check_timeout_is_five_seconds_within_a_millisecond_and_an_hour() {
    assert_eq!(supervisor::DEFAULT_HEALTH_CHECK_TIMEOUT, Duration::from_secs(5));
    for (timeout, fine) in [
        (Duration::from_micros(999), false),
        (Duration::from_millis(1), true),
        (Duration::from_secs(3600), true),
        (Duration::from_secs(3601), false),
    ] {
        let result = Supervisor::builder().health_check_timeout(timeout).build();
        match (fine, result) {
            (true, Ok(_)) | (false, Err(Error::InvalidSetting { .. })) => {}
            (_, other) => panic!("{timeout:?}: {:?}", other.map(drop)),
        }
    }
}

/// "at most 64 connections are open (`max_connections`) ... A request's
/// headers must arrive within 5 s (`header_read_timeout` ...), a connection
/// lasts at most 30 s (`connection_timeout`) and a request at most 16 KiB
/// (`max_request_size`). `serve()` refuses a setting out of range with
/// `Error::InvalidSetting` naming it."
#[tokio::test]
async fn serve_refuses_settings_out_of_range_naming_them() {
    let handle = Supervisor::builder().build().unwrap().start();
    let debug = format!("{:?}", supervisor::HttpEndpoint::new());
    for default in
        ["max_connections: 64", "max_request_size: 16384", "header_read_timeout: 5s", "connection_timeout: 30s"]
    {
        assert!(debug.contains(default), "{default} in {debug}");
    }
    let cases: [(&str, supervisor::HttpEndpoint); 4] = [
        ("max_connections", endpoint().max_connections(0)),
        ("max_request_size", endpoint().max_request_size(1)),
        ("header_read_timeout", endpoint().header_read_timeout(Duration::ZERO)),
        ("connection_timeout", endpoint().connection_timeout(Duration::ZERO)),
    ];
    for (name, endpoint) in cases {
        match endpoint.serve(&handle).await {
            Err(Error::InvalidSetting { setting, .. }) => assert_eq!(setting, name),
            other => panic!("{name}: {:?}", other.map(drop)),
        }
    }
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// The control API: "`POST /units/{path}/restart`, `/stop`, `/start`,
/// `/signal/{SIG}`, `GET /units/{path}/tail?lines=N` and `GET
/// /units/{path}` (a path keeps its `/`)", "A missing or wrong token gets
/// one and the same 401, an unknown unit 404 (listing the units, to the
/// caller with the token), a bad signal or count 400", on "a Unix socket,
/// created `0600`".
#[tokio::test]
async fn the_control_api_answers_as_the_readme_says() {
    use std::os::unix::fs::PermissionsExt;

    use hyper::{Method, StatusCode};
    const TOKEN: &str = "0123456789abcdef-readme";
    assert!(supervisor::ControlApi::new("0123456789abcde").is_err(), "15 bytes");
    assert!(supervisor::ControlApi::new("0123456789abcdef").is_ok(), "16 bytes");
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let handle = Supervisor::builder()
        .group(GroupSpec::new("storage").daemon(sh("db", "echo hello; echo world; exec sleep 30")))
        .build()
        .unwrap()
        .start();
    running(&handle, "storage/db").await;
    // Output is no change of status, which a wait could wake on: this looks
    // every 10 ms until the line is in the tail.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !handle.tail("storage/db", 1).unwrap().iter().any(|line| line == "world") {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", handle.tail("storage/db", 10));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let server = supervisor::HttpEndpoint::new()
        .unix_socket(&socket)
        .control(supervisor::ControlApi::new(TOKEN).unwrap())
        .serve(&handle)
        .await
        .unwrap();
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");

    let none = http::unix(&socket, Method::POST, "/units/storage/db/restart", None).await;
    let wrong = http::unix(&socket, Method::POST, "/units/storage/db/restart", Some("not-the-token-at-all")).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!((wrong.status, &wrong.body), (none.status, &none.body));
    let unknown_unauthorized = http::unix(&socket, Method::GET, "/units/nope", None).await;
    assert_eq!(unknown_unauthorized.status, StatusCode::UNAUTHORIZED);

    let unknown = http::unix(&socket, Method::GET, "/units/nope", Some(TOKEN)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body.contains("storage/db"), "{}", unknown.body);
    let bad_signal = http::unix(&socket, Method::POST, "/units/storage/db/signal/NOPE", Some(TOKEN)).await;
    assert_eq!(bad_signal.status, StatusCode::BAD_REQUEST, "{}", bad_signal.body);
    let bad_count = http::unix(&socket, Method::GET, "/units/storage/db/tail?lines=many", Some(TOKEN)).await;
    assert_eq!(bad_count.status, StatusCode::BAD_REQUEST, "{}", bad_count.body);

    let status = http::unix(&socket, Method::GET, "/units/storage/db", Some(TOKEN)).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.body);
    assert!(status.body.contains("\"running\""), "{}", status.body);
    let tail = http::unix(&socket, Method::GET, "/units/storage/db/tail?lines=1", Some(TOKEN)).await;
    assert_eq!(tail.status, StatusCode::OK, "{}", tail.body);
    let json: serde_json::Value = serde_json::from_str(&tail.body).unwrap();
    assert_eq!(json["lines"], serde_json::json!(["world"]), "{}", tail.body);
    let pid = handle.status("storage/db").unwrap().pid;
    let restart = http::unix(&socket, Method::POST, "/units/storage/db/restart", Some(TOKEN)).await;
    assert_eq!(restart.status, StatusCode::OK, "{}", restart.body);
    let after =
        within(DEADLINE, "new run", handle.wait_status("storage/db", |s| s.pid.is_some() && s.pid != pid)).await;
    assert!(after.is_ok());
    let stop = http::unix(&socket, Method::POST, "/units/storage/db/stop", Some(TOKEN)).await;
    assert_eq!(stop.status, StatusCode::OK, "{}", stop.body);
    assert_eq!(handle.status("storage/db").unwrap().state, UnitState::Stopped);
    let start = http::unix(&socket, Method::POST, "/units/storage/db/start", Some(TOKEN)).await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    running(&handle, "storage/db").await;
    let hup = http::unix(&socket, Method::POST, "/units/storage/db/signal/HUP", Some(TOKEN)).await;
    assert_eq!(hup.status, StatusCode::OK, "{}", hup.body);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    drop(server);
}

// ---------------------------------------------------------------------------
// Signals and systemd: the supervisor runs in a child process (this test
// binary, running the ignored test `child`), so that `NOTIFY_SOCKET` is set
// in its environment only and the signals reach it alone.

/// Which supervisor `child` runs; unset, it does nothing.
const MODE_ENV: &str = "SUPERVISOR_README_CHILD";
/// For the `run` mode: a directory where its task leaves marks.
const MARKS_ENV: &str = "SUPERVISOR_README_MARKS";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the signal and systemd tests"]
async fn child() {
    match std::env::var(MODE_ENV).as_deref() {
        Ok("systemd") => {
            let handle = Supervisor::builder()
                .task(idle("a"))
                .task(idle("b"))
                .task(
                    TaskSpec::new("flaky", |_ctx: Context| async { Err::<(), _>("crash") })
                        .restart(RestartPolicy::new().delay(Duration::from_secs(3600))),
                )
                .build()
                .unwrap()
                .start();
            let shutdown = handle.shutdown_on_signal();
            assert!(handle.notify_systemd());
            let report = shutdown.await;
            assert_eq!(report.exit_code(), 0, "{report}");
        }
        Ok("run") => {
            let marks = std::path::PathBuf::from(std::env::var_os(MARKS_ENV).unwrap());
            let sup = Supervisor::builder()
                .task(TaskSpec::new("marker", move |ctx: Context| {
                    let marks = marks.clone();
                    async move {
                        std::fs::write(marks.join("started"), b"").unwrap();
                        ctx.cancelled().await;
                        std::fs::write(marks.join("cancelled"), b"").unwrap();
                    }
                }))
                .build()
                .unwrap();
            let report = sup.run().await;
            assert_eq!(report.cause, ShutdownCause::Requested);
            assert_eq!(report.exit_code(), 0, "{report}");
        }
        _ => {}
    }
}

fn spawn_child(mode: &str, envs: &[(&str, &std::ffi::OsStr)]) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "child", "--ignored", "--nocapture", "--test-threads=1"])
        .env(MODE_ENV, mode)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in envs {
        command.env(key, value);
    }
    command.spawn().unwrap()
}

fn signal_child(child: &tokio::process::Child, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap()).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

async fn exits_successfully(child: tokio::process::Child) {
    let output = within(DEADLINE, "the child exits", child.wait_with_output()).await.unwrap();
    assert!(
        output.status.success(),
        "the child failed: {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Receives notifications until a line equals `wanted`; returns all seen.
async fn notifications_until(socket: &tokio::net::UnixDatagram, wanted: &str, seen: &mut Vec<String>) {
    let mut buffer = vec![0; 4096];
    loop {
        let received = within(DEADLINE, wanted, socket.recv(&mut buffer)).await.unwrap();
        let message = String::from_utf8_lossy(&buffer[..received]).into_owned();
        let found = message.lines().any(|line| line == wanted);
        seen.push(message);
        if found {
            return;
        }
    }
}

/// "`STATUS=3 units: 2 running, 1 backoff` whenever the counts change",
/// "`STOPPING=1` when `systemctl stop` (`SIGTERM`) starts the shutdown", and
/// `READY=1` only "the first time it is ready (every unit that should run
/// is ready ...)": never while a unit waits to restart. (The unit that
/// fails at once is ready as soon as its run starts: the notifier may find
/// all three running before that run has failed, and say `READY=1` then,
/// but never once the counts have shown it waiting.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_the_status_counts_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&path).unwrap();
    let child = spawn_child("systemd", &[("NOTIFY_SOCKET", path.as_os_str())]);
    let mut seen = Vec::new();
    notifications_until(&socket, "STATUS=3 units: 2 running, 1 backoff", &mut seen).await;
    signal_child(&child, rustix::process::Signal::TERM);
    notifications_until(&socket, "STOPPING=1", &mut seen).await;
    exits_successfully(child).await;
    let lines: Vec<&str> = seen.iter().flat_map(|message| message.lines()).collect();
    let mut last_status = None;
    for line in &lines {
        if line.starts_with("STATUS=") {
            last_status = Some(*line);
        } else if *line == "READY=1" {
            assert_eq!(last_status, Some("STATUS=3 units: 3 running"), "READY=1 while a unit waited: {lines:?}");
        }
    }
}

/// "An abstract `NOTIFY_SOCKET` (`@name`) is reached as well."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abstract_notify_socket_is_reached() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("supervisor-readme-{}-{}", std::process::id(), fastrand::u64(..));
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = std::os::unix::net::UnixDatagram::bind_addr(&address).unwrap();
    socket.set_nonblocking(true).unwrap();
    let socket = tokio::net::UnixDatagram::from_std(socket).unwrap();
    let target = format!("@{name}");
    let child = spawn_child("systemd", &[("NOTIFY_SOCKET", std::ffi::OsStr::new(&target))]);
    let mut seen = Vec::new();
    notifications_until(&socket, "STATUS=3 units: 2 running, 1 backoff", &mut seen).await;
    signal_child(&child, rustix::process::Signal::TERM);
    notifications_until(&socket, "STOPPING=1", &mut seen).await;
    exits_successfully(child).await;
}

/// "`sup.run().await // start, wait for SIGINT/SIGTERM (or the tree's own
/// end), shut down`": on `SIGINT` the units are stopped gracefully (a task
/// sees its cancellation) and the report is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_shuts_down_gracefully_on_sigint() {
    let marks = tempfile::tempdir().unwrap();
    let child = spawn_child("run", &[(MARKS_ENV, marks.path().as_os_str())]);
    let started = marks.path().join("started");
    within(DEADLINE, "the task starts", async {
        while !started.exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    signal_child(&child, rustix::process::Signal::INT);
    exits_successfully(child).await;
    assert!(marks.path().join("cancelled").exists(), "the task was not stopped gracefully");
}
