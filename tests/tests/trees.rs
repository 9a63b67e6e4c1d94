//! Supervision trees: strategies (which siblings stop, in which order, which
//! start again, in which order), intensity and escalation through three
//! levels, a root that gives up, critical units, paths, control calls on
//! groups, units added and removed at run time, and the wait helpers.
//!
//! Policy timing runs on tokio's paused clock; every wait is for an event or
//! a state, never a sleep.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use supervisor::{
    Context, Error, Event, EventKind, ExitReason, GiveUpReason, GroupSpec, MAX_GROUP_DEPTH, MaxRestarts, Readiness,
    RestartOn, RestartPolicy, ShutdownCause, ShutdownOrder, StopOutcome, Strategy, Supervisor, SupervisorHandle,
    TaskSpec, UnitKind, UnitState,
};
use tokio::sync::broadcast;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[path = "support/specs.rs"]
mod specs;
#[path = "support/subscriber.rs"]
mod subscriber;
use specs::{always_fails, idle, no_delay};

const SEC: Duration = Duration::from_secs(1);

/// Idle, except that its first `failures` runs fail at once.
fn fails_first(name: &str, failures: u32) -> TaskSpec {
    let runs = Arc::new(AtomicU32::new(0));
    TaskSpec::new(name, move |ctx: Context| {
        let run = runs.fetch_add(1, Ordering::SeqCst);
        async move {
            if run < failures {
                return Err("boom");
            }
            ctx.cancelled().await;
            Ok(())
        }
    })
    .restart(RestartPolicy::new().delay(SEC))
}

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

fn units_where(events: &[Event], pick: impl Fn(&EventKind) -> bool) -> Vec<&str> {
    events.iter().filter(|event| pick(&event.kind)).map(|event| event.unit.as_str()).collect()
}

/// Runs a group `g` of `a`, `b` (which fails once), `c` and `d` under
/// `strategy`; returns the events from `b`'s failure until the group runs
/// again.
async fn one_failure_under(strategy: Strategy) -> Vec<Event> {
    let group = GroupSpec::new("g")
        .strategy(strategy)
        .task(idle("a"))
        .task(fails_first("b", 1))
        .task(idle("c"))
        .task(idle("d"));
    let sup = Supervisor::builder().task(idle("outside")).group(group).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    events_until(&mut events, |event| event.unit == "g/b" && matches!(event.kind, EventKind::Exited { .. })).await;
    let restarted = events_until(&mut events, |event| {
        event.unit == "g/b" && matches!(event.kind, EventKind::Started { restart_count: 1, .. })
    })
    .await;
    // Everything the strategy restarts has started again once `d` has, or
    // at once under one_for_one.
    let mut seen = restarted;
    if strategy != Strategy::OneForOne {
        seen.extend(
            events_until(&mut events, |event| event.unit == "g/d" && matches!(event.kind, EventKind::Started { .. }))
                .await,
        );
    }
    let report = handle.shutdown().await;
    assert!(report.is_clean(), "{report}");
    seen
}

#[tokio::test(start_paused = true)]
async fn one_for_one_restarts_only_the_unit_that_ended() {
    let events = one_failure_under(Strategy::OneForOne).await;
    assert_eq!(units_where(&events, |kind| matches!(kind, EventKind::Stopped { .. })), Vec::<&str>::new());
    assert_eq!(units_where(&events, |kind| matches!(kind, EventKind::Started { .. })), ["g/b"]);
    assert_eq!(units_where(&events, |kind| matches!(kind, EventKind::SiblingFailed { .. })), Vec::<&str>::new());
}

#[tokio::test(start_paused = true)]
async fn one_for_all_stops_every_sibling_newest_first_then_starts_all_in_order() {
    let events = one_failure_under(Strategy::OneForAll).await;
    assert_eq!(units_where(&events, |kind| matches!(kind, EventKind::Stopped { .. })), ["g/d", "g/c", "g/a"]);
    assert_eq!(units_where(&events, |kind| matches!(kind, EventKind::Started { .. })), ["g/a", "g/b", "g/c", "g/d"]);
    let told: Vec<_> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::SiblingFailed { sibling, strategy } => Some((event.unit.as_str(), sibling.as_str(), *strategy)),
            _ => None,
        })
        .collect();
    assert_eq!(
        told,
        [("g/a", "g/b", Strategy::OneForAll), ("g/c", "g/b", Strategy::OneForAll), ("g/d", "g/b", Strategy::OneForAll)]
    );
    assert!(events.iter().all(|event| event.unit != "outside"), "a unit outside the group is left alone");
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_takes_the_units_started_after_it() {
    let events = one_failure_under(Strategy::RestForOne).await;
    assert_eq!(units_where(&events, |kind| matches!(kind, EventKind::Stopped { .. })), ["g/d", "g/c"]);
    assert_eq!(units_where(&events, |kind| matches!(kind, EventKind::Started { .. })), ["g/b", "g/c", "g/d"]);
    assert_eq!(units_where(&events, |kind| matches!(kind, EventKind::SiblingFailed { .. })), ["g/c", "g/d"]);
}

#[tokio::test(start_paused = true)]
async fn a_strategy_waits_the_failed_units_delay_and_counts_its_restart_once() {
    let group = GroupSpec::new("g").strategy(Strategy::OneForAll).task(idle("a")).task(fails_first("b", 1));
    let sup = Supervisor::builder().group(group).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    events_until(&mut events, |event| event.unit == "g/b" && matches!(event.kind, EventKind::Exited { .. })).await;
    let failed_at = tokio::time::Instant::now();
    handle.wait_state("g/a", UnitState::Backoff).await.unwrap();
    let a = handle.wait_ready("g/a").await.unwrap();
    assert_eq!(failed_at.elapsed(), SEC, "the siblings wait out b's delay");
    assert_eq!((a.restart_count, a.restarts_total), (0, 1), "a's own policy did not restart it");
    let b = handle.wait_ready("g/b").await.unwrap();
    assert_eq!((b.restart_count, b.restarts_total), (1, 1));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_strategy_gives_each_stubborn_sibling_its_own_grace_period() {
    let stubborn =
        |name: &str, grace: Duration| TaskSpec::new(name, |_ctx| std::future::pending::<()>()).stop_timeout(grace);
    let group = GroupSpec::new("g")
        .strategy(Strategy::OneForAll)
        .task(stubborn("slow", 3 * SEC))
        .task(stubborn("slower", 5 * SEC))
        .task(fails_first("b", 1).restart(no_delay()));
    let sup = Supervisor::builder().group(group).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    events_until(&mut events, |event| event.unit == "g/b" && matches!(event.kind, EventKind::Exited { .. })).await;
    let failed_at = tokio::time::Instant::now();
    // Newest first, one at a time: `slower` has 5 s, then `slow` 3 s.
    let slow_stopped = |event: &Event| event.unit == "g/slow" && matches!(event.kind, EventKind::Stopped { .. });
    let stops = tokio::time::timeout(60 * SEC, events_until(&mut events, slow_stopped))
        .await
        .expect("each sibling is aborted at the end of its grace period");
    let forced: Vec<(&str, Duration)> = stops
        .iter()
        .filter_map(|event| match event.kind {
            EventKind::Stopped { forced: true, took } => Some((event.unit.as_str(), took)),
            _ => None,
        })
        .collect();
    assert_eq!(forced, [("g/slower", 5 * SEC), ("g/slow", 3 * SEC)]);
    handle.wait_ready("g").await.unwrap();
    assert_eq!(failed_at.elapsed(), 8 * SEC);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn intensity_escalates_through_three_levels_until_the_root_gives_up() {
    let runs = Arc::new(AtomicU32::new(0));
    let mid = GroupSpec::new("mid")
        .intensity(2, Duration::from_secs(60))
        .restart(no_delay())
        .task(always_fails("leaf", &runs).restart(no_delay()));
    let top = GroupSpec::new("top").intensity(1, Duration::from_secs(60)).restart(no_delay()).group(mid);
    let sup =
        Supervisor::builder().intensity(1, Duration::from_secs(60)).task(idle("bystander")).group(top).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let report = handle.wait().await;
    // leaf runs 3 times per run of mid (2 restarts allowed), mid runs twice
    // per run of top, top runs twice before the root gives up.
    assert_eq!(runs.load(Ordering::SeqCst), 12);
    assert_eq!(report.exit_code(), 1);
    let ShutdownCause::GaveUp { reason } = &report.cause else { panic!("{:?}", report.cause) };
    assert_eq!(reason, "more than 1 restarts within 1m");
    assert!(report.units.iter().any(|unit| unit.name == "bystander" && unit.outcome == StopOutcome::Graceful));
    let mut gave_up = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let EventKind::Exited { reason: ExitReason::GroupGaveUp(GiveUpReason::Intensity { max, .. }) } = event.kind {
            gave_up.push((event.unit, max));
        }
    }
    let expected = [("top/mid", 2), ("top/mid", 2), ("top", 1), ("top/mid", 2), ("top/mid", 2), ("top", 1)];
    let expected: Vec<_> = expected.iter().map(|(unit, max)| ((*unit).to_owned(), *max)).collect();
    assert_eq!(gave_up, expected);
    assert_eq!(handle.status("top").unwrap().state, UnitState::Stopped);
}

#[tokio::test(start_paused = true)]
async fn intensity_counts_restarts_within_the_period_only() {
    let runs = Arc::new(AtomicU32::new(0));
    let group = GroupSpec::new("g")
        .intensity(2, Duration::from_secs(10))
        .restart(RestartPolicy::new().on(RestartOn::Never))
        .task(always_fails("slow", &runs).restart(RestartPolicy::new().delay(Duration::from_secs(6))));
    let sup = Supervisor::builder().group(group).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    // Restarts 6 s apart: never more than 2 within 10 s.
    events_until(&mut events, |event| matches!(event.kind, EventKind::Started { restart_count: 9, .. })).await;
    assert_eq!(runs.load(Ordering::SeqCst), 10);
    assert_eq!(handle.status("g").unwrap().state, UnitState::Running);
    handle.shutdown().await;
}

/// Idle until `fail` is notified, then fails; restarted after a second.
fn fails_when(name: &str, fail: &Arc<tokio::sync::Notify>) -> TaskSpec {
    let fail = fail.clone();
    TaskSpec::new(name, move |ctx: Context| {
        let fail = fail.clone();
        async move {
            tokio::select! {
                () = ctx.cancelled() => Ok(()),
                () = fail.notified() => Err("boom"),
            }
        }
    })
    .restart(RestartPolicy::new().delay(SEC))
}

/// Every restart decided within the period counts once, also one that a
/// strategy takes over: `a` fails while the rest_for_one restart that
/// `b`'s failure set off waits out `b`'s delay, and `a`'s restart takes
/// `b` along. `b`'s restart still counts (it used to be dropped from the
/// count, as one cancelled by a call), so with `c`'s failure that makes
/// three within the period: one too many for `intensity(2, ..)`, and no
/// more than `intensity(3, ..)` allows.
#[tokio::test(start_paused = true)]
async fn a_restart_taken_over_by_a_strategy_still_counts_toward_the_intensity() {
    for (max, gives_up) in [(2, true), (3, false)] {
        let (fail_a, fail_c) = (Arc::new(tokio::sync::Notify::new()), Arc::new(tokio::sync::Notify::new()));
        let group = GroupSpec::new("g")
            .strategy(Strategy::RestForOne)
            .intensity(max, Duration::from_secs(60))
            .restart(RestartPolicy::new().on(RestartOn::Never))
            .task(fails_when("a", &fail_a))
            .task(fails_first("b", 1).restart(RestartPolicy::new().delay(10 * SEC)))
            .task(fails_when("c", &fail_c));
        let handle = Supervisor::builder().group(group).build().unwrap().start();
        let deadline = Duration::from_secs(120);
        let waited = tokio::time::timeout(deadline, handle.wait_state("g/b", UnitState::Backoff)).await;
        waited.unwrap().unwrap();
        fail_a.notify_one();
        // `a`'s set, `b` and `c` with it, runs again after `a`'s delay.
        let b_again = handle.wait_status("g/b", |b| b.state == UnitState::Running && b.restart_count == 1);
        tokio::time::timeout(deadline, b_again).await.unwrap().unwrap();
        fail_c.notify_one();
        if gives_up {
            let g = tokio::time::timeout(deadline, handle.wait_state("g", UnitState::Exited)).await.unwrap().unwrap();
            assert_eq!(g.last_error.as_deref(), Some("gave up: more than 2 restarts within 1m"));
        } else {
            let c_again = handle.wait_status("g/c", |c| c.state == UnitState::Running && c.restart_count == 1);
            tokio::time::timeout(deadline, c_again).await.unwrap().unwrap();
            assert_eq!(handle.status("g").unwrap().state, UnitState::Running);
        }
        handle.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_lone_failing_unit_runs_intensity_plus_one_times() {
    let runs = Arc::new(AtomicU32::new(0));
    let group = GroupSpec::new("g")
        .intensity(3, Duration::from_secs(60))
        .restart(RestartPolicy::new().on(RestartOn::Never))
        .task(always_fails("x", &runs).restart(no_delay()));
    let handle = Supervisor::builder().group(group).build().unwrap().start();
    let g = handle.wait_state("g", UnitState::Exited).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    assert_eq!(g.last_error.as_deref(), Some("gave up: more than 3 restarts within 1m"));
    assert_eq!(handle.status("g/x").unwrap().state, UnitState::Stopped);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_critical_unit_that_fails_shuts_the_supervisor_down() {
    let runs = Arc::new(AtomicU32::new(0));
    let handle = Supervisor::builder()
        .task(idle("server"))
        .task(always_fails("vital", &runs).restart(no_delay().max_restarts(MaxRestarts::AtMost(2))).critical())
        .build()
        .unwrap()
        .start();
    let report = handle.wait().await;
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert_eq!(report.cause, ShutdownCause::CriticalEnded { unit: "vital".to_owned(), failed: true });
    assert_eq!(report.exit_code(), 1);
    let lines: Vec<_> = report.units.iter().map(|unit| (unit.name.as_str(), unit.state, unit.outcome)).collect();
    assert_eq!(
        lines,
        [("vital", UnitState::Failed, StopOutcome::NotRunning), ("server", UnitState::Stopped, StopOutcome::Graceful)]
    );
    assert!(matches!(handle.start_unit("server").await, Err(Error::ShuttingDown { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_critical_unit_that_finishes_ends_the_supervisor_cleanly() {
    let handle = Supervisor::builder()
        .task(idle("server"))
        .task(TaskSpec::new("job", |_ctx| async {}).restart(RestartPolicy::new().on(RestartOn::Failure)).critical())
        .build()
        .unwrap()
        .start();
    let report = handle.wait().await;
    assert_eq!(report.cause, ShutdownCause::CriticalEnded { unit: "job".to_owned(), failed: false });
    assert_eq!(report.exit_code(), 0);
    assert_eq!(handle.status("server").unwrap().state, UnitState::Stopped);
}

#[tokio::test(start_paused = true)]
async fn a_critical_unit_in_a_group_ends_only_its_group() {
    let group = GroupSpec::new("batch")
        .restart(RestartPolicy::new().on(RestartOn::Failure).max_restarts(MaxRestarts::AtMost(0)))
        .task(idle("helper"))
        .task(
            TaskSpec::new("main", |_ctx| async { Err::<(), _>("bad input") })
                .restart(RestartPolicy::new().on(RestartOn::Never))
                .critical(),
        );
    let handle = Supervisor::builder().task(idle("server")).group(group).build().unwrap().start();
    let batch = handle.wait_state("batch", UnitState::Failed).await.unwrap();
    assert_eq!(batch.last_error.as_deref(), Some("critical unit `batch/main` failed"));
    assert_eq!(handle.status("batch/helper").unwrap().state, UnitState::Stopped);
    assert_eq!(handle.status("server").unwrap().state, UnitState::Running);
    assert!(!handle.is_shutting_down());
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn paths_name_units_in_statuses_events_and_reports() {
    let tree = GroupSpec::new("storage").task(idle("db")).group(GroupSpec::new("cache").task(idle("redis")));
    let sup = Supervisor::builder().task(idle("api")).group(tree).task(idle("worker")).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let names = ["api", "storage", "storage/db", "storage/cache", "storage/cache/redis", "worker"];
    assert_eq!(handle.unit_names(), names);
    assert_eq!(handle.statuses().iter().map(|status| status.name.as_str()).collect::<Vec<_>>(), names);
    let redis = handle.wait_ready("storage/cache/redis").await.unwrap();
    assert_eq!(redis.name, "storage/cache/redis");
    assert_eq!(handle.status("storage/cache").unwrap().kind, UnitKind::Group);
    assert!(handle.status("redis").is_none() && handle.status("storage/redis").is_none());
    let err = handle.restart("storage/nope").await.unwrap_err();
    assert!(err.to_string().contains("no unit named `storage/nope`"), "{err}");
    let report = handle.shutdown().await;
    let stopped: Vec<_> = report.units.iter().map(|unit| unit.name.as_str()).collect();
    assert_eq!(stopped, ["worker", "storage/cache/redis", "storage/cache", "storage/db", "storage", "api"]);
    let mut started = Vec::new();
    while let Ok(event) = events.try_recv() {
        if matches!(event.kind, EventKind::Started { .. }) {
            started.push(event.unit);
        }
    }
    // A group has started once its units have.
    assert_eq!(started, ["api", "storage/db", "storage/cache/redis", "storage/cache", "storage", "worker"]);
}

#[tokio::test(start_paused = true)]
async fn control_calls_work_on_groups() {
    let group = GroupSpec::new("g").task(idle("a")).task(idle("b"));
    let handle = Supervisor::builder().group(group).build().unwrap().start();
    let g = handle.wait_ready("g").await.unwrap();
    assert!(g.ready && g.running && g.kind == UnitKind::Group);
    handle.stop_unit("g").await.unwrap();
    for name in ["g", "g/a", "g/b"] {
        assert_eq!(handle.status(name).unwrap().state, UnitState::Stopped, "{name}");
    }
    assert!(!handle.status("g").unwrap().ready);
    assert!(matches!(handle.start_unit("g/a").await, Err(Error::GroupNotRunning { ref group, .. }) if group == "g"));
    handle.stop_unit("g/a").await.expect("a stopped group's units are at rest");
    handle.start_unit("g").await.unwrap();
    handle.wait_ready("g").await.unwrap();
    assert_eq!(handle.status("g/b").unwrap().state, UnitState::Running);
    handle.stop_unit("g/a").await.unwrap();
    assert!(handle.status("g").unwrap().ready, "a unit stopped on purpose does not hold its group back");
    handle.restart("g").await.unwrap();
    let g = handle.wait_ready("g").await.unwrap();
    assert_eq!(g.restart_count, 0);
    assert_eq!(handle.status("g/a").unwrap().state, UnitState::Running, "a restart of the group starts all its units");
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_report_lists_the_units_of_a_group_that_was_not_running() {
    let inner = GroupSpec::new("cache").task(idle("redis"));
    let storage = GroupSpec::new("storage").task(idle("db")).group(inner).task(idle("backup"));
    let handle = Supervisor::builder().task(idle("api")).group(storage).build().unwrap().start();
    handle.wait_ready("storage").await.unwrap();
    handle.stop_unit("storage").await.unwrap();
    let report = handle.shutdown().await;
    let lines: Vec<_> = report.units.iter().map(|line| (line.name.as_str(), line.outcome, line.state)).collect();
    let at_rest = |name| (name, StopOutcome::NotRunning, UnitState::Stopped);
    // As the group's own stop would have listed them: newest first, a
    // group's units before it.
    assert_eq!(
        lines,
        [
            at_rest("storage/backup"),
            at_rest("storage/cache/redis"),
            at_rest("storage/cache"),
            at_rest("storage/db"),
            at_rest("storage"),
            ("api", StopOutcome::Graceful, UnitState::Stopped),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_report_lists_the_units_a_group_stopped_before_the_shutdown_began() {
    let runs = Arc::new(AtomicU32::new(0));
    let group = GroupSpec::new("g").task(slow_to_stop("a", SEC, &runs)).task(idle("b"));
    let handle = Supervisor::builder().group(group).build().unwrap().start();
    handle.wait_ready("g").await.unwrap();
    // `b` stops first, before the shutdown; `a` takes a second, after it.
    let stop = tokio::spawn({
        let handle = handle.clone();
        async move { handle.stop_unit("g").await }
    });
    handle.wait_state("g/b", UnitState::Stopped).await.unwrap();
    let report = handle.shutdown().await;
    stop.await.unwrap().unwrap();
    let lines: Vec<_> = report.units.iter().map(|line| (line.name.as_str(), line.outcome)).collect();
    assert_eq!(lines, [("g/a", StopOutcome::Graceful), ("g/b", StopOutcome::NotRunning), ("g", StopOutcome::Graceful)]);
}

/// Takes `stall` to stop once asked; counts its runs.
fn slow_to_stop(name: &str, stall: Duration, runs: &Arc<AtomicU32>) -> TaskSpec {
    let runs = runs.clone();
    TaskSpec::new(name, move |ctx: Context| {
        runs.fetch_add(1, Ordering::SeqCst);
        async move {
            ctx.cancelled().await;
            tokio::time::sleep(stall).await;
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_unit_removed_while_a_strategy_stops_it_is_not_started_again() {
    let fail = Arc::new(tokio::sync::Notify::new());
    let failing = {
        let fail = fail.clone();
        TaskSpec::new("a", move |ctx: Context| {
            let fail = fail.clone();
            async move {
                tokio::select! {
                    () = fail.notified() => Err("boom"),
                    () = ctx.cancelled() => Ok(()),
                }
            }
        })
        .restart(no_delay())
    };
    let b_runs = Arc::new(AtomicU32::new(0));
    let group = GroupSpec::new("g").strategy(Strategy::OneForAll).task(failing).task(slow_to_stop("b", SEC, &b_runs));
    let handle = Supervisor::builder().group(group).build().unwrap().start();
    handle.wait_ready("g").await.unwrap();
    // The removal's stop of `b` is under way when `a` fails, so that the
    // strategy finds `b` stopping and waits for it too.
    let removal = tokio::spawn({
        let handle = handle.clone();
        async move { handle.remove("g/b").await }
    });
    handle.wait_state("g/b", UnitState::Stopping).await.unwrap();
    fail.notify_one();
    let report = removal.await.unwrap().expect("b is removed");
    assert_eq!(report.outcome, StopOutcome::Graceful);
    let a = handle.wait_status("g/a", |a| a.running && a.restart_count == 1).await.unwrap();
    assert_eq!(a.state, UnitState::Running, "the strategy restarted `a`");
    tokio::time::sleep(10 * SEC).await;
    assert!(handle.status("g/b").is_none(), "b stays removed");
    assert_eq!(b_runs.load(Ordering::SeqCst), 1, "the strategy did not start the removed unit again");
    let report = handle.shutdown().await;
    assert!(report.units.iter().all(|line| line.name != "g/b"), "{report:?}");
}

#[tokio::test(start_paused = true)]
async fn a_dependent_removed_during_a_restart_of_what_it_needs_is_not_started_again() {
    let api_runs = Arc::new(AtomicU32::new(0));
    let handle = Supervisor::builder()
        .task(idle("db"))
        .task(slow_to_stop("api", SEC, &api_runs).depends_on(["db"]))
        .build()
        .unwrap()
        .start();
    handle.wait_ready("api").await.unwrap();
    let removal = tokio::spawn({
        let handle = handle.clone();
        async move { handle.remove("api").await }
    });
    handle.wait_state("api", UnitState::Stopping).await.unwrap();
    // The restart stops `api` first (it is stopping already), then `db`,
    // then starts them again: `api` is gone by then.
    handle.restart("db").await.unwrap();
    removal.await.unwrap().expect("api is removed");
    handle.wait_ready("db").await.unwrap();
    tokio::time::sleep(10 * SEC).await;
    assert!(handle.status("api").is_none(), "api stays removed");
    assert_eq!(api_runs.load(Ordering::SeqCst), 1, "the restart did not start the removed unit again");
    handle.shutdown().await;
}

/// Idle until asked to stop, then takes a second; counts the runs alive.
fn slow_job(alive: &Arc<AtomicU32>) -> TaskSpec {
    struct Alive(Arc<AtomicU32>);
    impl Drop for Alive {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let alive = alive.clone();
    TaskSpec::new("job", move |ctx: Context| {
        alive.fetch_add(1, Ordering::SeqCst);
        let guard = Alive(alive.clone());
        async move {
            let _guard = guard;
            ctx.cancelled().await;
            tokio::time::sleep(SEC).await;
        }
    })
}

/// A control call on `job`.
#[derive(Clone, Copy)]
enum Call {
    Restart,
    Stop,
    Remove,
}

/// Makes `call` in a task of its own, so that the test goes on while the
/// call waits.
fn in_background(handle: &SupervisorHandle, call: Call) -> tokio::task::JoinHandle<Result<(), Error>> {
    let handle = handle.clone();
    tokio::spawn(async move {
        match call {
            Call::Restart => handle.restart("job").await,
            Call::Stop => handle.stop_unit("job").await,
            Call::Remove => handle.remove("job").await.map(drop),
        }
    })
}

/// A supervisor running [`slow_job`] alone.
async fn running_slow_job(alive: &Arc<AtomicU32>) -> SupervisorHandle {
    let handle = Supervisor::builder().task(slow_job(alive)).build().unwrap().start();
    handle.wait_state("job", UnitState::Running).await.unwrap();
    handle
}

#[tokio::test(start_paused = true)]
async fn a_removal_after_a_restart_by_hand_stops_the_new_run_too() {
    let alive = Arc::new(AtomicU32::new(0));
    let handle = running_slow_job(&alive).await;
    let restart = in_background(&handle, Call::Restart);
    handle.wait_state("job", UnitState::Stopping).await.unwrap();
    let removal = in_background(&handle, Call::Remove);
    restart.await.unwrap().expect("the restart, first, is done");
    removal.await.unwrap().expect("then the removal");
    assert!(handle.status("job").is_none());
    assert_eq!(alive.load(Ordering::SeqCst), 0, "the run the restart started was stopped by the removal");
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_start_after_a_removal_finds_the_unit_gone() {
    let alive = Arc::new(AtomicU32::new(0));
    let handle = running_slow_job(&alive).await;
    let removal = in_background(&handle, Call::Remove);
    handle.wait_state("job", UnitState::Stopping).await.unwrap();
    let start = in_background(&handle, Call::Restart);
    removal.await.unwrap().expect("the removal, first, is done");
    let started = start.await.unwrap();
    assert!(matches!(started, Err(Error::UnknownUnit { .. })), "{started:?}");
    assert!(handle.status("job").is_none());
    assert_eq!(alive.load(Ordering::SeqCst), 0, "nothing runs for a removed unit");
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn calls_that_wait_for_a_removals_stop_find_the_unit_stopped_and_gone() {
    let alive = Arc::new(AtomicU32::new(0));
    let handle = running_slow_job(&alive).await;
    let removal = in_background(&handle, Call::Remove);
    handle.wait_state("job", UnitState::Stopping).await.unwrap();
    let (stop, second_removal) = (in_background(&handle, Call::Stop), in_background(&handle, Call::Remove));
    removal.await.unwrap().expect("the first removal");
    stop.await.unwrap().expect("a stop of a removed unit is done: it is stopped");
    let second = second_removal.await.unwrap();
    assert!(matches!(second, Err(Error::UnknownUnit { .. })), "{second:?}");
    assert_eq!(alive.load(Ordering::SeqCst), 0);
    handle.shutdown().await;
}

/// `levels` groups, each in the one before, named `g`, with a task in the
/// innermost.
fn nested(levels: usize) -> GroupSpec {
    (1..levels).fold(GroupSpec::new("g").task(idle("leaf")), |inner, _| GroupSpec::new("g").group(inner))
}

#[tokio::test(start_paused = true)]
async fn a_tree_at_the_depth_limit_runs_and_a_deeper_one_is_refused() {
    let handle = Supervisor::builder().group(nested(MAX_GROUP_DEPTH)).build().unwrap().start();
    let leaf = format!("{}/leaf", vec!["g"; MAX_GROUP_DEPTH].join("/"));
    handle.wait_ready(&leaf).await.unwrap();
    assert_eq!(handle.statuses().len(), MAX_GROUP_DEPTH + 1);
    // A group added into the deepest one, or a deep group added anywhere.
    let deepest = vec!["g"; MAX_GROUP_DEPTH].join("/");
    let refused = handle.add_to(&deepest, GroupSpec::new("one-more")).await;
    assert!(matches!(&refused, Err(Error::TooDeep { depth, .. }) if *depth == MAX_GROUP_DEPTH + 1), "{refused:?}");
    let refused = handle.add(nested(MAX_GROUP_DEPTH + 1)).await;
    assert!(matches!(&refused, Err(Error::TooDeep { group, .. }) if group == "g"), "{refused:?}");
    handle.add_to("g", GroupSpec::new("side").task(idle("t"))).await.expect("a shallow branch is fine");
    let report = handle.shutdown().await;
    assert_eq!(report.units.len(), MAX_GROUP_DEPTH + 3);
}

#[test]
fn a_tree_far_too_deep_is_an_error_not_a_stack_overflow() {
    // On a thread with a small stack: neither the check nor dropping the
    // refused tree may recurse through its levels.
    let levels = 100_000;
    let checked = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || Supervisor::builder().group(nested(levels)).build().err())
        .unwrap()
        .join()
        .expect("no stack overflow");
    let error = checked.expect("refused");
    assert!(matches!(&error, Error::TooDeep { depth, max, .. } if *depth == levels && *max == MAX_GROUP_DEPTH));
    let message = error.to_string();
    assert!(message.contains("100000 levels deep under `g`") && message.contains("at most 64"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn units_added_at_run_time_are_like_the_others() {
    let handle = Supervisor::builder().group(GroupSpec::new("jobs")).build().unwrap().start();
    handle.add(idle("job-1")).await.unwrap();
    handle.add_to("jobs", fails_first("job-2", 1)).await.unwrap();
    handle.add_to("jobs", GroupSpec::new("nested").task(idle("deep"))).await.unwrap();
    assert_eq!(handle.unit_names(), ["jobs", "jobs/job-2", "jobs/nested", "jobs/nested/deep", "job-1"]);
    handle.wait_ready("jobs/nested/deep").await.unwrap();
    // Ready as soon as it runs: its first run may not have failed yet.
    let job2 = handle.wait_status("jobs/job-2", |status| status.restart_count > 0 && status.ready).await.unwrap();
    assert_eq!(job2.restart_count, 1, "its policy restarted it");

    assert!(matches!(handle.add(idle("job-1")).await, Err(Error::DuplicateName { ref name }) if name == "job-1"));
    assert!(matches!(handle.add(idle("a/b")).await, Err(Error::NameWithSlash { .. })));
    assert!(matches!(handle.add_to("nope", idle("x")).await, Err(Error::UnknownUnit { .. })));
    assert!(matches!(handle.add_to("job-1", idle("x")).await, Err(Error::WrongKind { kind: UnitKind::Task, .. })));
    let both = handle.add(GroupSpec::new("").intensity(0, SEC)).await.unwrap_err();
    assert_eq!(both.problems().len(), 2, "{both}");

    let removed = handle.remove("jobs/nested").await.unwrap();
    assert_eq!((removed.name.as_str(), removed.outcome), ("jobs/nested", StopOutcome::Graceful));
    assert!(handle.status("jobs/nested/deep").is_none());
    assert!(matches!(handle.remove("jobs/nested").await, Err(Error::UnknownUnit { .. })));
    handle.add_to("jobs", idle("nested")).await.expect("the name is free again");
    handle.shutdown().await;
    assert!(matches!(handle.add(idle("late")).await, Err(Error::ShuttingDown { .. })));
    assert!(matches!(handle.remove("job-1").await, Err(Error::ShuttingDown { .. })));
}

#[tokio::test(start_paused = true)]
async fn units_added_at_run_time_stop_concurrently_and_first() {
    let slow = |name: &str| {
        TaskSpec::new(name, |ctx: Context| async move {
            ctx.cancelled().await;
            tokio::time::sleep(SEC).await;
        })
    };
    let handle = Supervisor::builder().task(slow("registered")).build().unwrap().start();
    for i in 0..3 {
        handle.add(slow(&format!("added-{i}"))).await.unwrap();
    }
    handle.wait_ready("added-2").await.unwrap();
    let report = handle.shutdown().await;
    assert_eq!(report.took, 2 * SEC, "the added units together, then the registered one");
    let order: Vec<_> = report.units.iter().map(|unit| unit.name.as_str()).collect();
    assert_eq!(order[3], "registered");
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_add_remove_cycles_leave_nothing_behind() {
    let handle = Supervisor::builder().task(idle("anchor")).build().unwrap().start();
    for round in 0..10 {
        for i in 0..1000 {
            handle.add(idle(&format!("job-{round}-{i}"))).await.unwrap();
        }
        for i in 0..1000 {
            let report = handle.remove(&format!("job-{round}-{i}")).await.unwrap();
            assert_eq!(report.outcome, StopOutcome::Graceful);
        }
    }
    assert_eq!(handle.unit_names(), ["anchor"]);
    let report = handle.shutdown().await;
    assert_eq!(report.units.len(), 1);
}

/// Counts the runs that began and those not dropped yet.
#[derive(Default)]
struct RunCount {
    began: AtomicU32,
    live: AtomicU32,
}

struct Live(Arc<RunCount>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Calls are handled at once when the group's owner is idle; right after
/// `start()` it has not launched the registered units yet, and a unit added
/// then must still run once, not once more when those are launched (the
/// extra run would belong to no one, and outlive the supervisor).
#[tokio::test]
async fn units_added_right_after_the_start_run_once() {
    let count = Arc::new(RunCount::default());
    let handle = Supervisor::builder().task(idle("registered")).build().unwrap().start();
    for i in 0..100 {
        let count = count.clone();
        let spec = TaskSpec::new(format!("added-{i}"), move |ctx: Context| {
            count.began.fetch_add(1, Ordering::SeqCst);
            count.live.fetch_add(1, Ordering::SeqCst);
            let live = Live(count.clone());
            async move {
                let _live = live;
                ctx.cancelled().await;
            }
        });
        handle.add(spec).await.unwrap();
    }
    // Every run spawned so far gets polled while this task waits.
    while count.began.load(Ordering::SeqCst) < 100 {
        tokio::task::yield_now().await;
    }
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(count.began.load(Ordering::SeqCst), 100, "each added unit started once");
    let report = handle.shutdown().await;
    assert_eq!(report.units.len(), 101);
    assert!(report.units.iter().all(|line| line.outcome == StopOutcome::Graceful), "{report:?}");
    assert_eq!(count.live.load(Ordering::SeqCst), 0, "no run outlives the supervisor");
}

/// A call made on another runtime is handled by the group's owner, never
/// on the caller's runtime: a run started there would end with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_added_from_another_runtime_runs_on_the_supervisors() {
    let (counter, mut runs) = tokio::sync::watch::channel(0u32);
    let handle = Supervisor::builder().task(idle("registered")).build().unwrap().start();
    handle.wait_ready("registered").await.unwrap();
    let caller = handle.clone();
    std::thread::spawn(move || {
        let other = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        other.block_on(async move {
            let spec = TaskSpec::new("guest", move |ctx: Context| {
                counter.send_modify(|runs| *runs += 1);
                async move { ctx.cancelled().await }
            });
            caller.add(spec).await.unwrap();
        });
        // The other runtime ends here, with any task it holds.
    })
    .join()
    .unwrap();
    let ran =
        tokio::time::timeout(Duration::from_secs(10), runs.wait_for(|runs| *runs > 0)).await.map(|ran| ran.is_ok());
    assert_eq!(ran, Ok(true), "the guest never ran");
    let status = handle.status("guest").unwrap();
    assert_eq!((status.state, status.restart_count), (UnitState::Running, 0));
    let report = handle.shutdown().await;
    let guest = report.units.iter().find(|line| line.name == "guest").unwrap();
    assert_eq!(guest.outcome, StopOutcome::Graceful, "{report:?}");
    assert_eq!(*runs.borrow(), 1);
}

/// A unit that manages its siblings from inside its own run (its calls take
/// the group's turn on its task while the owner is idle): it adds workers,
/// restarts, stops and starts one, removes them all, and ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_that_adds_and_removes_its_siblings_from_its_own_run() {
    manage_siblings_from_a_run().await;
}

#[tokio::test]
async fn a_unit_that_adds_and_removes_its_siblings_from_its_own_run_on_one_thread() {
    manage_siblings_from_a_run().await;
}

async fn manage_siblings_from_a_run() {
    let (give, handle_to_come) = tokio::sync::watch::channel(None::<SupervisorHandle>);
    let manager = TaskSpec::new("manager", move |_ctx: Context| {
        let mut handle = handle_to_come.clone();
        async move {
            let handle = handle.wait_for(Option::is_some).await.expect("the handle").clone().expect("some");
            for i in 0..100 {
                handle.add(idle(&format!("worker-{i}"))).await.map_err(|e| e.to_string())?;
            }
            handle.restart("worker-7").await.map_err(|e| e.to_string())?;
            handle.stop_unit("worker-8").await.map_err(|e| e.to_string())?;
            handle.start_unit("worker-8").await.map_err(|e| e.to_string())?;
            for i in 0..100 {
                let line = handle.remove(&format!("worker-{i}")).await.map_err(|e| e.to_string())?;
                if line.outcome != StopOutcome::Graceful {
                    return Err(format!("worker-{i} stopped {:?}", line.outcome));
                }
            }
            Ok::<_, String>(())
        }
    })
    .restart(RestartPolicy::new().on(RestartOn::Never));
    let handle = Supervisor::builder().task(manager).build().unwrap().start();
    give.send(Some(handle.clone())).unwrap();
    let done = tokio::time::timeout(Duration::from_secs(30), handle.wait_state("manager", UnitState::Exited)).await;
    let status = done.expect("the manager finished").unwrap();
    assert_eq!(status.last_error, None, "{status:?}");
    assert_eq!(handle.unit_names(), ["manager"]);
    let report = handle.shutdown().await;
    assert_eq!(report.units.len(), 1);
}

/// Records each log line's fields, and whether it was logged inside the
/// caller's `request` span.
struct SpanRecorder(Arc<std::sync::Mutex<Vec<(String, bool)>>>);

impl<S> tracing_subscriber::Layer<S> for SpanRecorder
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = String::new();
        event.record(&mut |field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
            fields.push_str(&format!("{}={value:?} ", field.name()));
        });
        let in_request = ctx.event_scope(event).is_some_and(|mut scope| scope.any(|span| span.name() == "request"));
        self.0.lock().unwrap().push((fields, in_request));
    }
}

/// The lines logged while `test` runs (on this thread, as a current-thread
/// runtime runs everything): each line's fields, and whether it was logged
/// inside the caller's `request` span.
async fn lines_logged_during(test: impl Future<Output = ()>) -> Vec<(String, bool)> {
    let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorder = tracing_subscriber::registry().with(SpanRecorder(lines.clone()));
    let _subscriber = subscriber::on_this_thread(recorder);
    test.await;
    lines.lock().unwrap().clone()
}

/// Asserts that `lines` hold one that contains `text`, and none logged
/// inside the caller's span.
fn assert_none_inside_the_span(lines: &[(String, bool)], text: &str) {
    assert!(lines.iter().any(|line| line.0.contains(text)), "the lines were logged: {lines:?}");
    let inside: Vec<_> = lines.iter().filter(|(_, in_span)| *in_span).collect();
    assert!(inside.is_empty(), "logged inside the caller's span: {inside:?}");
}

/// Inside a span of the caller's, a call goes to the owner's task, so that
/// the supervisor's log lines do not carry that span.
#[tokio::test]
async fn a_call_made_inside_a_span_leaves_the_span_off_the_supervisors_log_lines() {
    let lines = lines_logged_during(async {
        let handle = Supervisor::builder().task(idle("registered")).build().unwrap().start();
        handle.wait_ready("registered").await.unwrap();
        async {
            handle.add(idle("added")).await.unwrap();
            handle.stop_unit("added").await.unwrap();
        }
        .instrument(tracing::info_span!("request"))
        .await;
        handle.shutdown().await;
    })
    .await;
    assert_none_inside_the_span(&lines, "added");
}

/// A `start()` made inside a span of the caller's: the units' lines do not
/// carry that span.
#[tokio::test]
async fn a_start_made_inside_a_span_leaves_the_span_off_the_units_log_lines() {
    let lines = lines_logged_during(async {
        let handle = async {
            let tree = GroupSpec::new("g").task(idle("nested"));
            Supervisor::builder().task(idle("registered")).group(tree).build().unwrap().start()
        }
        .instrument(tracing::info_span!("request"))
        .await;
        handle.wait_ready("g/nested").await.unwrap();
        handle.shutdown().await;
    })
    .await;
    assert_none_inside_the_span(&lines, "started");
}

/// As `start()` returns, every unit of the tree is starting, down to the
/// nested groups, and a call made at once waits for its group to start: it
/// found the units of nested groups `Stopped`, in groups not running yet
/// (`add_to` was refused with `GroupNotRunning`, and a `stop_unit` answered
/// `Ok` was undone by the launch that followed).
#[tokio::test]
async fn units_of_nested_groups_answer_calls_made_as_soon_as_start_returns() {
    let nested = GroupSpec::new("g2").task(idle("u")).task(idle("v"));
    let handle =
        Supervisor::builder().group(GroupSpec::new("g1").task(idle("t")).group(nested)).build().unwrap().start();
    let stopped: Vec<_> =
        handle.statuses().into_iter().filter(|status| status.state == UnitState::Stopped).map(|s| s.name).collect();
    assert!(stopped.is_empty(), "stopped before anything stopped them: {stopped:?}");
    handle.add_to("g1/g2", idle("added")).await.unwrap();
    handle.stop_unit("g1/g2/u").await.unwrap();
    handle.restart("g1/g2/v").await.unwrap();
    handle.wait_ready("g1").await.unwrap();
    assert_eq!(handle.status("g1/g2/u").unwrap().state, UnitState::Stopped, "stop_unit holds");
    for name in ["g1/t", "g1/g2/v", "g1/g2/added"] {
        assert_eq!(handle.status(name).unwrap().state, UnitState::Running, "{name}");
    }
    handle.shutdown().await;
}

/// A shutdown asked as `start()` returns, before the tree's launch: the
/// units marked to start with their groups are put back at rest with them,
/// in the statuses and in the report.
#[tokio::test]
async fn units_of_nested_groups_stopped_before_the_launch_end_at_rest() {
    let nested = GroupSpec::new("g2").task(idle("u"));
    let handle =
        Supervisor::builder().group(GroupSpec::new("g1").task(idle("t")).group(nested)).build().unwrap().start();
    assert_eq!(handle.status("g1/g2/u").unwrap().state, UnitState::Starting);
    let report = handle.shutdown().await;
    let states: Vec<_> = report.units.iter().map(|unit| (unit.name.as_str(), unit.state)).collect();
    for name in ["g1", "g1/t", "g1/g2", "g1/g2/u"] {
        assert!(states.contains(&(name, UnitState::Stopped)), "{name} at rest in the report: {states:?}");
        assert_eq!(handle.status(name).unwrap().state, UnitState::Stopped, "{name}");
    }
}

/// A nested group that waits for its dependencies as the tree starts: its
/// units rest while it waits, as they do when it waits again later, and a
/// call on one of them is refused at once. (They stayed `Starting` for as
/// long as it waited, and `add_to` a group nested in it waited for it.)
#[tokio::test]
async fn units_of_a_group_that_waits_at_the_start_rest_meanwhile() {
    let never_ready = idle("dep").readiness(Readiness::Notified);
    let tree = GroupSpec::new("g").depends_on(["dep"]).task(idle("u")).group(GroupSpec::new("h").task(idle("v")));
    let handle = Supervisor::builder().task(never_ready).group(tree).build().unwrap().start();
    handle.wait_state("g", UnitState::Waiting).await.unwrap();
    for name in ["g/u", "g/h", "g/h/v"] {
        assert_eq!(handle.status(name).unwrap().state, UnitState::Stopped, "{name}");
    }
    let added = tokio::time::timeout(10 * SEC, handle.add_to("g/h", idle("w"))).await.expect("refused at once");
    assert!(matches!(added, Err(Error::GroupNotRunning { .. })), "{added:?}");
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn waits_end_with_an_error_when_they_cannot_be_met() {
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("once", |_ctx| async { Err::<(), _>("no") })
                .restart(RestartPolicy::new().max_restarts(MaxRestarts::AtMost(0))),
        )
        .task(idle("idle"))
        .build()
        .unwrap()
        .start();
    let err = handle.wait_ready("once").await.unwrap_err();
    assert!(matches!(err, Error::WillNotHappen { state: UnitState::Failed, .. }), "{err}");
    assert!(matches!(handle.wait_state("nope", UnitState::Running).await, Err(Error::UnknownUnit { .. })));
    let waiting = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.wait_state("idle", UnitState::Failed).await })
    };
    handle.shutdown().await;
    let err = waiting.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("the supervisor has ended"), "{err}");
    // wait() after the end returns at once, with the same report.
    assert_eq!(handle.wait().await, handle.shutdown().await);
}

#[tokio::test(start_paused = true)]
async fn a_wait_on_a_unit_of_a_removed_group_ends_with_the_group() {
    let handle = Supervisor::builder().group(GroupSpec::new("g").task(idle("x"))).build().unwrap().start();
    handle.wait_state("g/x", UnitState::Running).await.unwrap();
    let waiting = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.wait_status("g/x", |status| status.restart_count >= 1).await })
    };
    tokio::task::yield_now().await;
    handle.remove("g").await.unwrap();
    let ended = tokio::time::timeout(10 * SEC, waiting).await.expect("the wait ends with the group").unwrap();
    assert!(matches!(ended, Err(Error::UnknownUnit { .. })), "{ended:?}");
    handle.shutdown().await;
}

#[tokio::test]
async fn a_wait_on_one_unit_is_not_woken_by_the_changes_of_others() {
    const RESTARTS: u32 = 1000;
    let handle = Supervisor::builder()
        .task(idle("quiet"))
        .task(
            TaskSpec::new("busy", |_ctx| async { Err::<(), _>("boom") })
                .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(RESTARTS))),
        )
        .build()
        .unwrap()
        .start();
    let looks = Arc::new(AtomicU32::new(0));
    let waiting = {
        let (handle, looks) = (handle.clone(), looks.clone());
        tokio::spawn(async move {
            handle
                .wait_status("quiet", move |status| {
                    looks.fetch_add(1, Ordering::Relaxed);
                    status.state == UnitState::Stopped
                })
                .await
        })
    };
    // `busy` changes state some 3000 times meanwhile.
    handle.wait_state("busy", UnitState::Failed).await.unwrap();
    handle.stop_unit("quiet").await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap().state, UnitState::Stopped);
    let looks = looks.load(Ordering::Relaxed);
    assert!(looks <= 5, "the wait on `quiet` looked {looks} times while `busy` restarted {RESTARTS} times");
}

#[tokio::test(start_paused = true)]
async fn build_reports_every_tree_problem_at_once() {
    let err = Supervisor::builder()
        .intensity(3, Duration::ZERO)
        .task(idle("a/b"))
        .group(GroupSpec::new("g").intensity(0, SEC).task(idle("x")).task(idle("x")))
        .group(GroupSpec::new(""))
        .build()
        .unwrap_err();
    let problems: Vec<String> = err.problems().iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 5, "{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("`a/b` contains `/`")));
    assert!(problems.iter().any(|p| p.contains("`g/x` is used twice")));
    assert!(problems.iter().any(|p| p.contains("intensity of `g`")));
    assert!(problems.iter().any(|p| p.contains("intensity of `the root group`")));
    assert!(problems.iter().any(|p| p.contains("a group was registered with an empty name")));
    assert!(err.to_string().starts_with("5 problems: 1) "), "{err}");
}

#[tokio::test(start_paused = true)]
async fn concurrent_order_stops_each_groups_units_together() {
    let slow = |name: &str| {
        TaskSpec::new(name, |ctx: Context| async move {
            ctx.cancelled().await;
            tokio::time::sleep(SEC).await;
        })
    };
    let group = GroupSpec::new("g").task(slow("a")).task(slow("b"));
    let handle = Supervisor::builder()
        .shutdown_order(ShutdownOrder::Concurrent)
        .task(slow("x"))
        .group(group)
        .build()
        .unwrap()
        .start();
    handle.wait_ready("g").await.unwrap();
    let report = handle.shutdown().await;
    assert_eq!(report.took, SEC);
    assert_eq!(report.units.len(), 4);
}

#[tokio::test(start_paused = true)]
async fn run_returns_when_the_tree_ends_by_itself() {
    let sup = Supervisor::builder()
        .task(idle("server"))
        .task(TaskSpec::new("job", |_ctx| async {}).restart(RestartPolicy::new().on(RestartOn::Failure)).critical())
        .build()
        .unwrap();
    // No signal comes: the critical job's end is what ends `run()`.
    let report = tokio::time::timeout(Duration::from_secs(3600), sup.run()).await.expect("run() returned");
    assert_eq!(report.cause, ShutdownCause::CriticalEnded { unit: "job".to_owned(), failed: false });
    assert_eq!(report.exit_code(), 0);
}

/// A group's owner, and the task that tells it of its stop, end with the
/// group: adding and removing a group 200 times leaves no task behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_group_leaves_no_task_behind() {
    let handle = Supervisor::builder().task(idle("anchor")).build().unwrap().start();
    handle.wait_state("anchor", UnitState::Running).await.unwrap();
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    for _ in 0..200 {
        handle.add(GroupSpec::new("g").task(idle("t"))).await.unwrap();
        handle.wait_state("g/t", UnitState::Running).await.unwrap();
        handle.remove("g").await.unwrap();
    }
    // An aborted task goes away when the runtime next gets to it: there is
    // no event to wait for, so the count is looked at until the deadline.
    let deadline = tokio::time::Instant::now() + 10 * SEC;
    while metrics.num_alive_tasks() > before && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(metrics.num_alive_tasks(), before, "tasks left behind by 200 removed groups");
    handle.shutdown().await;
}

/// Calls that reach a group's owner in the same burst as the report that
/// ends its run are answered too: each `add` either lands (and its unit is
/// in the report) or is refused, none hangs and none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adds_racing_the_end_of_the_tree_are_each_answered() {
    let (finish, finished) = tokio::sync::oneshot::channel::<()>();
    let finished = Arc::new(tokio::sync::Mutex::new(Some(finished)));
    let job = TaskSpec::new("job", move |_ctx| {
        let finished = finished.clone();
        async move {
            if let Some(finished) = finished.lock().await.take() {
                let _ = finished.await;
            }
            Ok::<(), std::io::Error>(())
        }
    })
    .restart(RestartPolicy::new().on(RestartOn::Failure))
    .critical();
    let handle = Supervisor::builder().task(job).build().unwrap().start();
    handle.wait_state("job", UnitState::Running).await.unwrap();
    let adders: Vec<_> = (0..400)
        .map(|index| {
            let handle = handle.clone();
            tokio::spawn(async move {
                let name = format!("late-{index}");
                (handle.add(idle(&name)).await, name)
            })
        })
        .collect();
    finish.send(()).unwrap();
    let mut landed = Vec::new();
    for adder in adders {
        let (result, name) =
            tokio::time::timeout(Duration::from_secs(10), adder).await.expect("every add is answered").unwrap();
        match result {
            Ok(()) => landed.push(name),
            Err(Error::ShuttingDown { unit, .. }) => assert_eq!(unit, name),
            Err(other) => panic!("an add failed with {other}"),
        }
    }
    let report = tokio::time::timeout(Duration::from_secs(10), handle.wait()).await.expect("the tree ends");
    assert_eq!(report.cause, ShutdownCause::CriticalEnded { unit: "job".to_owned(), failed: false });
    for name in &landed {
        assert!(report.units.iter().any(|line| &line.name == name), "`{name}` landed but is not in the report");
    }
}

/// An `add` is handled in a turn taken on the caller's task when it can be,
/// and by message to the group's owner otherwise (inside a span of the
/// caller's, or from another runtime). Either way it answers alike: the unit
/// runs, a taken name is refused, and a group that is not running is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_answers_alike_in_a_turn_of_the_callers_or_by_message() {
    let handle = Supervisor::builder().group(GroupSpec::new("g")).group(GroupSpec::new("h")).build().unwrap().start();
    handle.wait_ready("h").await.unwrap();
    handle.add_to("g", idle("in-turn")).await.unwrap();
    assert!(
        matches!(handle.add_to("g", idle("in-turn")).await, Err(Error::DuplicateName { name }) if name == "g/in-turn")
    );
    {
        let _default = tracing::subscriber::set_default(tracing_subscriber::registry());
        let _caller = tracing::info_span!("caller").entered();
        assert!(!tracing::Span::current().is_none(), "the span is entered");
        handle.add_to("g", idle("in-span")).await.unwrap();
        let again = handle.add_to("g", idle("in-span")).await;
        assert!(matches!(again, Err(Error::DuplicateName { name }) if name == "g/in-span"));
    }
    let elsewhere = handle.clone();
    std::thread::spawn(move || {
        let other = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        other.block_on(elsewhere.add_to("g", idle("from-another-runtime")))
    })
    .join()
    .expect("the thread ends")
    .expect("added from another runtime");
    for name in ["g/in-turn", "g/in-span", "g/from-another-runtime"] {
        let status = tokio::time::timeout(10 * SEC, handle.wait_state(name, UnitState::Running)).await;
        assert!(status.expect("in time").is_ok(), "{name} runs");
    }
    handle.stop_unit("h").await.unwrap();
    match handle.add_to("h", idle("x")).await {
        Err(Error::GroupNotRunning { action, unit, group }) => {
            assert_eq!((action, unit.as_str(), group.as_str()), ("add", "h/x", "h"));
        }
        other => panic!("expected GroupNotRunning, got {other:?}"),
    }
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------
// A group of many units, added one at a time

/// Adds to a nested group cost the same however many units it has: each
/// looked at every unit of the group to tell its parent whether it was
/// ready (20k adds took 7.4 s, the last ones 1.9 ms each, where the root
/// took 0.2 s). The group still tells when a unit holds it back, among
/// thousands of changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adds_to_a_large_group_cost_the_same_as_it_grows_and_its_readiness_holds() {
    const UNITS: usize = 16_000;
    const TIMED: usize = 2_000;
    let handle = Supervisor::builder().group(GroupSpec::new("connections")).build().unwrap().start();
    handle.wait_ready("connections").await.unwrap();
    let connection = |i: usize| idle(&format!("c{i}")).restart(RestartPolicy::new().on(RestartOn::Never)).temporary();
    let (mut first, mut last) = (Vec::with_capacity(TIMED), Vec::with_capacity(TIMED));
    for i in 0..UNITS {
        let began = std::time::Instant::now();
        handle.add_to("connections", connection(i)).await.unwrap();
        match i {
            _ if i < TIMED => first.push(began.elapsed()),
            _ if i >= UNITS - TIMED => last.push(began.elapsed()),
            _ => {}
        }
    }
    // Medians: a busy machine's pauses, which can take any sum of adds
    // past a bound, leave them alone. A look at every unit per add made
    // the last adds a hundred times slower than the first.
    let median = |mut took: Vec<Duration>| {
        took.sort_unstable();
        took[took.len() / 2]
    };
    let (first, last) = (median(first), median(last));
    assert!(last < first * 8 + Duration::from_micros(50), "a median add took {first:?} at first, {last:?} last");
    handle.wait_ready("connections").await.unwrap();
    // A unit that is not ready holds the group back, then lets it go.
    let late = TaskSpec::new("late", |ctx: Context| async move {
        ctx.cancelled().await;
    })
    .readiness(Readiness::Notified);
    handle.add_to("connections", late).await.unwrap();
    let group_ready = |ready: bool| handle.wait_status("connections", move |status| status.ready == ready);
    tokio::time::timeout(10 * SEC, group_ready(false)).await.expect("held back").unwrap();
    handle.stop_unit("connections/late").await.unwrap();
    tokio::time::timeout(10 * SEC, group_ready(true)).await.expect("ready again").unwrap();
    // More changes than are kept one by one while it is ready, then one
    // that holds it back.
    for i in 0..300 {
        handle.stop_unit(&format!("connections/c{i}")).await.unwrap();
    }
    handle.start_unit("connections/late").await.unwrap();
    tokio::time::timeout(10 * SEC, group_ready(false)).await.expect("held back again").unwrap();
    handle.shutdown().await;
}

/// A temporary unit is never run again by its group, as OTP never restarts
/// a temporary child: one stopped by a strategy, or by its group's ending,
/// is forgotten. Its factory was called again, for a connection already
/// gone, when a sibling's failure restarted the group or its siblings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_units_stopped_by_a_strategy_or_their_groups_end_are_forgotten() {
    let runs = Arc::new(AtomicU32::new(0));
    let connection = |name: &str| {
        let runs = runs.clone();
        TaskSpec::new(name, move |ctx: Context| {
            runs.fetch_add(1, Ordering::SeqCst);
            async move { ctx.cancelled().await }
        })
        .restart(RestartPolicy::new().on(RestartOn::Never))
        .temporary()
    };
    let group = GroupSpec::new("connections").strategy(Strategy::OneForAll).task(idle("acceptor"));
    let handle = Supervisor::builder().group(group).build().unwrap().start();
    handle.wait_ready("connections").await.unwrap();
    let removed = |name: &'static str| {
        let mut events = handle.subscribe();
        async move {
            loop {
                let event = events.recv().await.expect("no lag");
                if event.unit == name && matches!(event.kind, EventKind::Removed) {
                    return;
                }
            }
        }
    };

    // The group restarted by hand.
    handle.add_to("connections", connection("c1")).await.unwrap();
    handle.wait_ready("connections/c1").await.unwrap();
    let gone = tokio::spawn(removed("connections/c1"));
    handle.restart("connections").await.unwrap();
    tokio::time::timeout(10 * SEC, gone).await.expect("c1 forgotten").unwrap();
    handle.wait_ready("connections/acceptor").await.unwrap();
    assert!(handle.status("connections/c1").is_none());

    // Its siblings restarted by the group's strategy.
    handle.add_to("connections", connection("c2")).await.unwrap();
    handle.wait_ready("connections/c2").await.unwrap();
    let gone = tokio::spawn(removed("connections/c2"));
    handle.add_to("connections", fails_first("flaky", 1)).await.unwrap();
    tokio::time::timeout(10 * SEC, gone).await.expect("c2 forgotten").unwrap();
    let flaky = handle.wait_status("connections/flaky", |status| status.restart_count == 1 && status.ready);
    tokio::time::timeout(10 * SEC, flaky).await.expect("flaky restarted").unwrap();
    assert!(handle.status("connections/c2").is_none());
    assert_eq!(runs.load(Ordering::SeqCst), 2, "each connection ran once");
    handle.shutdown().await;
}
