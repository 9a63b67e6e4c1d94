//! Hostile and careless use of the observation side: event subscribers that
//! lag or subscribe late, waits on units that go away, come back or can
//! never get where they are waited for, statuses read during churn, the
//! JSON of statuses and reports, daemons' output tails fed junk, the
//! shutdown report, metrics and health.
//!
//! Every await is under a generous deadline, so that a hang fails the test
//! instead of hanging CI.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use supervisor::{
    Context, DaemonSpec, Error, Event, EventKind, GroupSpec, MaxRestarts, RestartOn, RestartPolicy, ShutdownReport,
    StopOutcome, Strategy, Supervisor, SupervisorHandle, TaskSpec, UnitKind, UnitReport, UnitState,
    WeakSupervisorHandle,
};
use tokio::sync::broadcast;

#[path = "support/deadline.rs"]
mod deadline;
use deadline::{events_until, within};
#[path = "support/specs.rs"]
mod specs;
#[path = "support/subscriber.rs"]
mod subscriber;
use specs::{idle, run_once};

/// Far longer than any call takes when nothing hangs.
const DEADLINE: Duration = Duration::from_secs(20);

/// A daemon that runs `script` through `sh -c` once.
fn sh_once(name: &str, script: &str) -> DaemonSpec {
    DaemonSpec::new(name, "sh").args(["-c", script]).restart(run_once())
}

/// Every event already sent, without waiting.
fn drain(events: &mut broadcast::Receiver<Event>) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        match events.try_recv() {
            Ok(event) => seen.push(event),
            Err(broadcast::error::TryRecvError::Lagged(n)) => panic!("lagged by {n}"),
            Err(_) => return seen,
        }
    }
}

fn assert_each_once(report: &ShutdownReport) {
    let mut seen = HashSet::new();
    for line in &report.units {
        assert!(seen.insert(line.name.clone()), "`{}` is reported twice: {report:#?}", line.name);
    }
}

/// Runs a daemon `script` once, waits for it to exit, and returns its tail.
async fn tail_of(script: &str, n: usize) -> (Vec<String>, SupervisorHandle) {
    let handle = Supervisor::builder().daemon(sh_once("d", script)).build().unwrap().start();
    within(DEADLINE, "exit", handle.wait_state("d", UnitState::Exited)).await.unwrap();
    (handle.tail("d", n).unwrap(), handle)
}

// ---------------------------------------------------------------------------
// Events

/// `Supervisor::subscribe` before `start()` misses none: each unit's first
/// event is `Started` (or `Waiting`), for every unit, group ones included.
#[tokio::test]
async fn subscribed_before_start_sees_every_first_event() {
    let sup = Supervisor::builder()
        .task(idle("a"))
        .group(GroupSpec::new("g").task(idle("b")).task(idle("c").depends_on(["b"])))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    for name in ["a", "g", "g/b", "g/c"] {
        within(DEADLINE, "ready", handle.wait_ready(name)).await.unwrap();
    }
    let seen = drain(&mut events);
    for name in ["a", "g/b", "g/c"] {
        let first =
            seen.iter().find(|event| event.unit == name).unwrap_or_else(|| panic!("no event for {name}: {seen:#?}"));
        assert!(
            matches!(first.kind, EventKind::Started { .. } | EventKind::Waiting { .. }),
            "first event of {name}: {first:?}"
        );
    }
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// A subscriber that never reads does not hold the supervisor up; once it
/// reads, it learns it lagged, then gets the latest events.
#[tokio::test]
async fn a_subscriber_that_never_reads_holds_nothing_up() {
    let sup = Supervisor::builder()
        .event_capacity(4)
        .task(
            TaskSpec::new("flaky", |_ctx| async { Err::<(), _>("boom") })
                .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(200))),
        )
        .build()
        .unwrap();
    let mut lazy = sup.subscribe();
    let handle = sup.start();
    let status = within(DEADLINE, "failed", handle.wait_state("flaky", UnitState::Failed)).await.unwrap();
    assert_eq!(status.restart_count, 200);
    assert_eq!(status.restarts_total, 200);
    match lazy.try_recv() {
        Err(broadcast::error::TryRecvError::Lagged(n)) => assert!(n > 100, "lagged by {n}"),
        other => panic!("expected a lag, got {other:?}"),
    }
    let rest = drain(&mut lazy);
    assert!(rest.len() <= 4, "{rest:#?}");
    assert!(matches!(rest.last().unwrap().kind, EventKind::GaveUp { .. }), "{rest:#?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// A shutdown sends a `Stopped` for every running unit, a group's units
/// before the group, and nothing for a unit already at rest.
#[tokio::test]
async fn a_shutdown_sends_stopped_for_each_running_unit() {
    let sup = Supervisor::builder()
        .task(idle("a"))
        .task(TaskSpec::new("done", |_ctx| async {}).restart(run_once()))
        .group(GroupSpec::new("g").task(idle("b")).daemon(DaemonSpec::new("s", "sleep").arg("60")))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "exited", handle.wait_state("done", UnitState::Exited)).await.unwrap();
    for name in ["a", "g", "g/b", "g/s"] {
        within(DEADLINE, "ready", handle.wait_ready(name)).await.unwrap();
    }
    drain(&mut events);
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    let seen = drain(&mut events);
    let stopped: Vec<&str> = seen
        .iter()
        .filter(|event| matches!(event.kind, EventKind::Stopped { .. }))
        .map(|event| event.unit.as_str())
        .collect();
    for name in ["a", "g/b", "g/s"] {
        assert_eq!(stopped.iter().filter(|unit| **unit == name).count(), 1, "{name}: {seen:#?}");
    }
    assert!(!stopped.contains(&"done"), "{seen:#?}");
    let position = |name: &str| stopped.iter().position(|unit| *unit == name);
    if let Some(group) = position("g") {
        assert!(position("g/b").unwrap() < group && position("g/s").unwrap() < group, "{stopped:?}");
    }
    assert_each_once(&report);
    let done = report.units.iter().find(|line| line.name == "done").unwrap();
    assert_eq!((done.state, done.outcome), (UnitState::Exited, StopOutcome::NotRunning));
}

/// The event stream ends with the supervisor: a consumer's `recv` loop
/// reads every event sent, then `Closed`, rather than waiting for ever
/// while a handle lives; one who subscribes after the end gets `Closed` at
/// once.
#[tokio::test]
async fn the_event_stream_ends_once_the_supervisor_has_ended() {
    let sup = Supervisor::builder().task(idle("a")).daemon(DaemonSpec::new("s", "sleep").arg("60")).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let consumer = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            match events.recv().await {
                Ok(event) => seen.push(event),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return seen,
            }
        }
    });
    within(DEADLINE, "ready", handle.wait_ready("s")).await.unwrap();
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    let seen = within(DEADLINE, "the consumer's end", consumer).await.unwrap();
    let stopped =
        |name: &str| seen.iter().any(|event| event.unit == name && matches!(event.kind, EventKind::Stopped { .. }));
    assert!(stopped("a") && stopped("s"), "the last events were read before the end: {seen:#?}");
    let mut late = handle.subscribe();
    let late = within(DEADLINE, "a late subscriber's recv", late.recv()).await;
    assert!(matches!(late, Err(broadcast::error::RecvError::Closed)), "{late:?}");
}

/// One-for-all in a nested group: each sibling gets `SiblingFailed` naming
/// the failed unit by its path, and the failed unit itself gets none.
#[tokio::test]
async fn every_strategy_stop_names_the_sibling_by_path() {
    for (strategy, expected) in
        [(Strategy::OneForAll, vec!["outer/inner/a", "outer/inner/c"]), (Strategy::RestForOne, vec!["outer/inner/c"])]
    {
        let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let trigger = fail.clone();
        let sup = Supervisor::builder()
            .group(
                GroupSpec::new("outer").group(
                    GroupSpec::new("inner")
                        .strategy(strategy)
                        .task(idle("a"))
                        .task(TaskSpec::new("b", move |ctx: Context| {
                            let fail = trigger.clone();
                            async move {
                                if fail.swap(false, std::sync::atomic::Ordering::SeqCst) {
                                    return Err("boom");
                                }
                                ctx.cancelled().await;
                                Ok(())
                            }
                        }))
                        .task(idle("c")),
                ),
            )
            .build()
            .unwrap();
        let handle = sup.start();
        for name in ["outer/inner/a", "outer/inner/b", "outer/inner/c"] {
            within(DEADLINE, "ready", handle.wait_ready(name)).await.unwrap();
        }
        let mut events = handle.subscribe();
        fail.store(true, std::sync::atomic::Ordering::SeqCst);
        handle.restart("outer/inner/b").await.unwrap();
        let seen = events_until(DEADLINE, &mut events, |event| {
            event.unit == "outer/inner/b" && matches!(event.kind, EventKind::Exited { .. })
        })
        .await;
        let mut seen = seen;
        seen.extend(
            events_until(DEADLINE, &mut events, |event| {
                event.unit == "outer/inner/b" && matches!(event.kind, EventKind::Started { .. })
            })
            .await,
        );
        let mut named: Vec<&str> = seen
            .iter()
            .filter_map(|event| match &event.kind {
                EventKind::SiblingFailed { sibling, strategy: s } => {
                    assert_eq!(sibling, "outer/inner/b", "{event:?}");
                    assert_eq!(*s, strategy);
                    Some(event.unit.as_str())
                }
                _ => None,
            })
            .collect();
        named.sort_unstable();
        assert_eq!(named, expected, "{strategy:?}: {seen:#?}");
        // A restart with the group counts in the total, not in the count.
        for name in &expected {
            let status = within(DEADLINE, "back", handle.wait_ready(name)).await.unwrap();
            assert_eq!((status.restart_count, status.restarts_total), (0, 1), "{status:?}");
        }
        let b = within(DEADLINE, "back", handle.wait_ready("outer/inner/b")).await.unwrap();
        assert_eq!((b.restart_count, b.restarts_total), (1, 1), "{b:?}");
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    }
}

/// `Added` and `Removed` name the unit by its path, `Removed` after its
/// `Stopped`.
#[tokio::test]
async fn added_and_removed_name_the_path() {
    let handle = Supervisor::builder().group(GroupSpec::new("g").group(GroupSpec::new("h"))).build().unwrap().start();
    within(DEADLINE, "group", handle.wait_state("g/h", UnitState::Running)).await.unwrap();
    let mut events = handle.subscribe();
    within(DEADLINE, "add", handle.add_to("g/h", idle("x"))).await.unwrap();
    within(DEADLINE, "ready", handle.wait_ready("g/h/x")).await.unwrap();
    let report = within(DEADLINE, "remove", handle.remove("g/h/x")).await.unwrap();
    assert_eq!(report.name, "g/h/x");
    let seen = events_until(DEADLINE, &mut events, |event| event.kind == EventKind::Removed).await;
    let kinds: Vec<&EventKind> = seen.iter().filter(|event| event.unit == "g/h/x").map(|event| &event.kind).collect();
    assert_eq!(kinds.first(), Some(&&EventKind::Added), "{seen:#?}");
    assert_eq!(kinds.last(), Some(&&EventKind::Removed), "{seen:#?}");
    let stopped = kinds.iter().position(|kind| matches!(kind, EventKind::Stopped { .. }));
    assert!(stopped.is_some_and(|at| at + 1 == kinds.len() - 1), "{kinds:?}");
    assert!(seen.iter().all(|event| event.unit.starts_with("g")), "{seen:#?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `Removed`: "the unit was removed at run time". The units of a removed
/// group are removed with it: each has its `Removed`, a nested group's
/// units before it, and all before the group's. Only the group had one,
/// its units vanishing from `statuses()` with `Stopped` as their last
/// word (and the metrics facade kept them as they were).
#[tokio::test]
async fn the_units_of_a_removed_group_are_each_removed() {
    let group = GroupSpec::new("h").task(idle("y")).group(GroupSpec::new("inner").task(idle("x")));
    let handle = Supervisor::builder().task(idle("calm")).group(group).build().unwrap().start();
    within(DEADLINE, "ready", handle.wait_ready("h")).await.unwrap();
    let mut events = handle.subscribe();
    within(DEADLINE, "remove", handle.remove("h")).await.unwrap();
    let seen = events_until(DEADLINE, &mut events, |event| event.unit == "h" && event.kind == EventKind::Removed).await;
    let removed: Vec<&str> =
        seen.iter().filter(|event| event.kind == EventKind::Removed).map(|event| event.unit.as_str()).collect();
    assert_eq!(removed, ["h/y", "h/inner/x", "h/inner", "h"], "{seen:#?}");
    for path in ["h/y", "h/inner/x", "h/inner"] {
        let stopped =
            seen.iter().position(|event| event.unit == path && matches!(event.kind, EventKind::Stopped { .. }));
        let gone = seen.iter().position(|event| event.unit == path && event.kind == EventKind::Removed);
        assert!(stopped < gone, "{path}: stopped, then removed: {seen:#?}");
        assert!(handle.status(path).is_none(), "{path}");
    }
    assert_eq!(handle.unit_names(), ["calm"]);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `Added`, for a group added at run time: each of its units has its own,
/// after the group's, before any event of that unit. Only the group had
/// one: a subscriber that follows units by `Added` and `Removed` saw its
/// units start without ever being added, then be removed.
#[tokio::test]
async fn the_units_of_an_added_group_are_each_added() {
    let handle = Supervisor::builder().task(idle("calm")).build().unwrap().start();
    let mut events = handle.subscribe();
    let group = GroupSpec::new("h").task(idle("y")).group(GroupSpec::new("inner").task(idle("x")));
    within(DEADLINE, "add", handle.add(group)).await.unwrap();
    let seen = events_until(DEADLINE, &mut events, |event| {
        event.unit == "h/inner/x" && matches!(event.kind, EventKind::Started { .. })
    })
    .await;
    let added: Vec<&str> =
        seen.iter().filter(|event| event.kind == EventKind::Added).map(|event| event.unit.as_str()).collect();
    assert_eq!(added, ["h", "h/y", "h/inner", "h/inner/x"], "{seen:#?}");
    for path in added {
        let first = seen.iter().find(|event| event.unit == path).map(|event| &event.kind);
        assert_eq!(first, Some(&EventKind::Added), "{path}: {seen:#?}");
    }
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// Events with a lone receiver, the handle's subscribe during the
/// shutdown: the last events come, then the channel closes once the
/// supervisor has ended and its handles are gone.
#[tokio::test]
async fn the_last_events_arrive_and_the_channel_closes() {
    let sup = Supervisor::builder().task(idle("a")).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "ready", handle.wait_ready("a")).await.unwrap();
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    drop(handle);
    let mut seen = Vec::new();
    loop {
        match within(DEADLINE, "the channel to close", events.recv()).await {
            Ok(event) => seen.push(event),
            Err(broadcast::error::RecvError::Closed) => break,
            Err(error) => panic!("{error}"),
        }
    }
    assert!(matches!(seen.last().unwrap().kind, EventKind::Stopped { .. }), "{seen:#?}");
}

// ---------------------------------------------------------------------------
// Waits

/// A unit removed while waited on: the wait ends with `UnknownUnit`.
#[tokio::test]
async fn a_wait_on_a_removed_unit_ends() {
    let handle = Supervisor::builder().task(idle("x")).build().unwrap().start();
    within(DEADLINE, "ready", handle.wait_ready("x")).await.unwrap();
    let waiter = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.wait_state("x", UnitState::Failed).await })
    };
    let other = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.wait_status("x", |status| status.restart_count > 5).await })
    };
    tokio::task::yield_now().await;
    within(DEADLINE, "remove", handle.remove("x")).await.unwrap();
    let result = within(DEADLINE, "the wait", waiter).await.unwrap();
    assert!(matches!(result, Err(Error::UnknownUnit { .. })), "{result:?}");
    let result = within(DEADLINE, "the wait", other).await.unwrap();
    assert!(matches!(result, Err(Error::UnknownUnit { .. })), "{result:?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// Removed and re-added under the same name: a wait that began on the old
/// one either ends with `UnknownUnit` or follows the new one; either way
/// it ends when the new one gets there.
#[tokio::test]
async fn a_wait_across_remove_and_re_add() {
    let handle = Supervisor::builder().task(idle("x")).build().unwrap().start();
    within(DEADLINE, "ready", handle.wait_ready("x")).await.unwrap();
    let waiter = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.wait_state("x", UnitState::Exited).await })
    };
    tokio::task::yield_now().await;
    within(DEADLINE, "remove", handle.remove("x")).await.unwrap();
    within(DEADLINE, "add", handle.add(TaskSpec::new("x", |_ctx| async {}).restart(run_once()))).await.unwrap();
    let result = within(DEADLINE, "the wait", waiter).await.unwrap();
    match result {
        Ok(status) => assert_eq!(status.state, UnitState::Exited),
        Err(Error::UnknownUnit { .. }) => {}
        Err(error) => panic!("{error}"),
    }
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// A wait on a group path wakes for the group's own state.
#[tokio::test]
async fn a_wait_on_a_group() {
    let handle = Supervisor::builder().group(GroupSpec::new("g").task(idle("a"))).build().unwrap().start();
    let ready = within(DEADLINE, "group ready", handle.wait_ready("g")).await.unwrap();
    assert_eq!(ready.kind, UnitKind::Group);
    let waiter = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.wait_state("g", UnitState::Stopped).await })
    };
    tokio::task::yield_now().await;
    within(DEADLINE, "stop", handle.stop_unit("g")).await.unwrap();
    let status = within(DEADLINE, "the wait", waiter).await.unwrap().unwrap();
    assert_eq!(status.state, UnitState::Stopped);
    assert!(!status.ready && !status.running, "{status:?}");
    assert_eq!(handle.status("g/a").unwrap().state, UnitState::Stopped);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// Waits started after the end: an answer at once, never a hang.
#[tokio::test]
async fn waits_after_the_end_answer_at_once() {
    let handle = Supervisor::builder().task(idle("a")).build().unwrap().start();
    within(DEADLINE, "ready", handle.wait_ready("a")).await.unwrap();
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    let stopped = within(DEADLINE, "wait stopped", handle.wait_state("a", UnitState::Stopped)).await.unwrap();
    assert_eq!(stopped.state, UnitState::Stopped);
    let running = within(DEADLINE, "wait running", handle.wait_state("a", UnitState::Running)).await;
    assert!(matches!(running, Err(Error::WillNotHappen { .. })), "{running:?}");
    let ready = within(DEADLINE, "wait ready", handle.wait_ready("a")).await;
    assert!(matches!(ready, Err(Error::WillNotHappen { .. })), "{ready:?}");
    let any = within(DEADLINE, "wait status", handle.wait_status("a", |status| status.restart_count > 0)).await;
    assert!(matches!(any, Err(Error::WillNotHappen { .. })), "{any:?}");
    let unknown = within(DEADLINE, "wait unknown", handle.wait_state("nope", UnitState::Running)).await;
    assert!(matches!(unknown, Err(Error::UnknownUnit { .. })), "{unknown:?}");
    let report = within(DEADLINE, "wait", handle.wait()).await;
    assert_eq!(report, within(DEADLINE, "shutdown again", handle.shutdown()).await);
}

/// Waits pending when the supervisor ends all end with `WillNotHappen`
/// (or the state the shutdown put their unit in).
#[tokio::test]
async fn pending_waits_end_with_the_supervisor() {
    let handle = Supervisor::builder()
        .task(TaskSpec::new("once", |_ctx| async {}).restart(run_once()))
        .task(idle("a"))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "exited", handle.wait_state("once", UnitState::Exited)).await.unwrap();
    within(DEADLINE, "ready", handle.wait_ready("a")).await.unwrap();
    let mut waits = Vec::new();
    for state in [UnitState::Failed, UnitState::Backoff, UnitState::Waiting, UnitState::Starting] {
        for name in ["once", "a"] {
            let handle = handle.clone();
            waits.push(tokio::spawn(async move { (name, state, handle.wait_state(name, state).await) }));
        }
    }
    tokio::task::yield_now().await;
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    for wait in waits {
        let (name, state, result) = within(DEADLINE, "a wait", wait).await.unwrap();
        assert!(matches!(result, Err(Error::WillNotHappen { .. })), "{name} {state:?}: {result:?}");
    }
}

/// `wait_ready` on a unit that has exited for good: `WillNotHappen` at once.
#[tokio::test]
async fn wait_ready_on_an_exited_unit() {
    let handle = Supervisor::builder()
        .task(TaskSpec::new("once", |_ctx| async {}).restart(run_once()).readiness(supervisor::Readiness::Notified))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "exited", handle.wait_state("once", UnitState::Exited)).await.unwrap();
    let result = within(DEADLINE, "wait ready", handle.wait_ready("once")).await;
    assert!(matches!(result, Err(Error::WillNotHappen { .. })), "{result:?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// A thousand concurrent waits on one unit and on many: all wake.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_waits_all_wake() {
    let handle = Supervisor::builder().task(idle("a")).build().unwrap().start();
    within(DEADLINE, "ready", handle.wait_ready("a")).await.unwrap();
    let mut waits = Vec::new();
    for i in 0..1000 {
        let handle = handle.clone();
        waits.push(tokio::spawn(async move {
            if i % 2 == 0 {
                handle.wait_state("a", UnitState::Stopped).await.map(|_| ())
            } else {
                handle.wait_status("a", |status| status.state == UnitState::Stopped).await.map(|_| ())
            }
        }));
    }
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    within(DEADLINE, "stop", handle.stop_unit("a")).await.unwrap();
    for wait in waits {
        within(DEADLINE, "a wait", wait).await.unwrap().unwrap();
    }
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// Waits dropped midway (a `select!` or a timeout) leave nothing behind:
/// later waits on the same unit still wake.
#[tokio::test]
async fn a_wait_dropped_midway_is_harmless() {
    let handle = Supervisor::builder().task(idle("a")).build().unwrap().start();
    within(DEADLINE, "ready", handle.wait_ready("a")).await.unwrap();
    for _ in 0..100 {
        let timed_out =
            tokio::time::timeout(Duration::from_millis(1), handle.wait_state("a", UnitState::Stopped)).await;
        assert!(timed_out.is_err());
        tokio::select! {
            biased;
            () = std::future::ready(()) => {}
            _ = handle.wait_status("a", |_| false) => unreachable!(),
        }
    }
    let waiter = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.wait_state("a", UnitState::Stopped).await })
    };
    tokio::task::yield_now().await;
    within(DEADLINE, "stop", handle.stop_unit("a")).await.unwrap();
    within(DEADLINE, "the wait", waiter).await.unwrap().unwrap();
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

// ---------------------------------------------------------------------------
// Statuses

/// A daemon's status through its life: pid while it runs, none once
/// reaped; exit code, signal and last_error of each ending; counters.
#[tokio::test]
async fn a_daemons_status_through_its_life() {
    let handle = Supervisor::builder()
        .daemon(
            DaemonSpec::new("d", "sh")
                .args(["-c", "exit 3"])
                .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(2))),
        )
        .daemon(DaemonSpec::new("s", "sleep").arg("60").restart(run_once()))
        .build()
        .unwrap()
        .start();
    let failed = within(DEADLINE, "failed", handle.wait_state("d", UnitState::Failed)).await.unwrap();
    assert_eq!(failed.pid, None, "{failed:?}");
    assert_eq!(failed.exit_code, Some(3));
    assert_eq!(failed.signal, None);
    assert_eq!(failed.last_error.as_deref(), Some("exited with code 3"));
    assert_eq!((failed.restart_count, failed.restarts_total), (2, 2));
    assert!(!failed.running && !failed.ready && failed.uptime.is_none(), "{failed:?}");

    let running = within(DEADLINE, "ready", handle.wait_ready("s")).await.unwrap();
    let pid = running.pid.expect("a pid while it runs");
    assert!(running.uptime.is_some() && running.last_start.is_some(), "{running:?}");
    rustix::process::kill_process(rustix::process::Pid::from_raw(pid as i32).unwrap(), rustix::process::Signal::KILL)
        .unwrap();
    let exited = within(DEADLINE, "exited", handle.wait_state("s", UnitState::Exited)).await.unwrap();
    assert_eq!(exited.pid, None, "{exited:?}");
    assert_eq!((exited.exit_code, exited.signal), (None, Some(9)), "{exited:?}");
    assert_eq!(exited.last_error.as_deref(), Some("killed by signal 9"));
    assert!(exited.uptime.is_none(), "{exited:?}");

    // Started by hand: the count resets, the total does not, and the
    // last error stays until a run ends otherwise.
    within(DEADLINE, "start", handle.start_unit("d")).await.unwrap();
    let again = within(DEADLINE, "failed again", handle.wait_state("d", UnitState::Failed)).await.unwrap();
    assert_eq!((again.restart_count, again.restarts_total), (2, 4), "{again:?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `last_error` is cleared by a successful run, and by a stop asked for.
#[tokio::test]
async fn last_error_is_cleared_by_a_clean_ending() {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = count.clone();
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("t", move |ctx: Context| {
                let run = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    if run == 0 {
                        return Err("first run fails");
                    }
                    ctx.cancelled().await;
                    Ok(())
                }
            })
            .restart(RestartPolicy::new().delay(Duration::ZERO)),
        )
        .build()
        .unwrap()
        .start();
    let status =
        within(DEADLINE, "second run", handle.wait_status("t", |status| status.restarts_total == 1 && status.running))
            .await
            .unwrap();
    assert_eq!(status.last_error.as_deref(), Some("first run fails"), "kept while the next run runs: {status:?}");
    within(DEADLINE, "stop", handle.stop_unit("t")).await.unwrap();
    let stopped = handle.status("t").unwrap();
    assert_eq!(stopped.state, UnitState::Stopped);
    assert_eq!(stopped.last_error, None, "{stopped:?}");
    assert_eq!(stopped.exit_code, Some(0), "{stopped:?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `Waiting` says what for, in `not_ready`, by path.
#[tokio::test]
async fn not_ready_says_what_a_waiting_unit_waits_for() {
    let handle = Supervisor::builder()
        .group(
            GroupSpec::new("g")
                .task(
                    TaskSpec::new("db", |ctx: Context| async move { ctx.cancelled().await })
                        .readiness(supervisor::Readiness::Notified),
                )
                .task(idle("api").depends_on(["db"])),
        )
        .build()
        .unwrap()
        .start();
    let waiting = within(DEADLINE, "waiting", handle.wait_state("g/api", UnitState::Waiting)).await.unwrap();
    let why = waiting.not_ready.expect("a reason");
    assert!(why.contains("`g/db`"), "{why}");
    let health = within(DEADLINE, "health", handle.health()).await;
    assert!(!health.ready);
    assert!(
        health.reasons.iter().any(|reason| reason.starts_with("unit `g/api` (waiting)") && reason.contains("g/db")),
        "{:?}",
        health.reasons
    );
    assert!(health.reasons.iter().any(|reason| reason.starts_with("unit `g/db` (running)")), "{:?}", health.reasons);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// Statuses, names and single statuses read while other tasks add and
/// remove units in a loop: every list is consistent (no duplicate, the
/// same order as the names), and no read panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statuses_during_churn_are_consistent() {
    let handle = Supervisor::builder()
        .task(idle("fixed"))
        .group(GroupSpec::new("g").task(idle("inner")))
        .build()
        .unwrap()
        .start();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut churners = Vec::new();
    for worker in 0..4 {
        let (handle, stop) = (handle.clone(), stop.clone());
        churners.push(tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let name = format!("c{worker}-{}", i % 3);
                let group = if i.is_multiple_of(2) { "" } else { "g" };
                let path = if group.is_empty() { name.clone() } else { format!("g/{name}") };
                let added = if group.is_empty() {
                    handle.add(idle(&name)).await
                } else {
                    handle.add_to(group, idle(&name)).await
                };
                added.unwrap();
                handle.remove(&path).await.unwrap();
                i += 1;
            }
        }));
    }
    for _ in 0..300 {
        let statuses = handle.statuses();
        let mut seen = HashSet::new();
        for status in &statuses {
            assert!(seen.insert(status.name.clone()), "{} twice", status.name);
            assert!(status.restarts_total >= u64::from(status.restart_count), "{status:?}");
            if status.pid.is_some() {
                assert_eq!(status.kind, UnitKind::Process);
            }
            assert_eq!(status.running, matches!(status.state, UnitState::Running | UnitState::Stopping), "{status:?}");
        }
        let names = handle.unit_names();
        assert_eq!(names.iter().collect::<HashSet<_>>().len(), names.len(), "{names:?}");
        let fixed: Vec<&String> =
            names.iter().filter(|name| ["fixed", "g", "g/inner"].contains(&name.as_str())).collect();
        assert_eq!(fixed, ["fixed", "g", "g/inner"]);
        for name in &names {
            if let Some(status) = handle.status(name) {
                assert_eq!(&status.name, name);
            }
        }
        let _ = serde_json::to_string(&statuses).unwrap();
        let _ = handle.metrics_text();
        tokio::task::yield_now().await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for churner in churners {
        within(DEADLINE, "churner", churner).await.unwrap();
    }
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert_each_once(&report);
    assert_eq!(report.units.len(), 3, "{report:#?}");
}

// ---------------------------------------------------------------------------
// JSON

/// The status JSON has the documented camelCase keys, and odd names
/// (quotes, backslashes, an escape written out, non-ASCII) come out as
/// valid JSON. (A name with a control character in it, a newline or a tab,
/// is refused by `build()`: see `hostile_names`.)
#[tokio::test]
async fn status_json_has_the_documented_keys_and_survives_odd_names() {
    let odd = "we\"ird\\ näme\\n ✓";
    let handle =
        Supervisor::builder().task(idle(odd)).daemon(DaemonSpec::new("d", "sleep").arg("60")).build().unwrap().start();
    within(DEADLINE, "ready", handle.wait_ready("d")).await.unwrap();
    within(DEADLINE, "ready", handle.wait_ready(odd)).await.unwrap();
    let json = serde_json::to_value(handle.status("d").unwrap()).unwrap();
    let keys: HashSet<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
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
        "notReady",
        "statusText",
        "lastStart",
        "uptime",
        "exitCode",
        "signal",
        "lastError",
    ] {
        assert!(keys.contains(key), "no `{key}` in {json}");
    }
    assert_eq!(json["type"], "process");
    assert_eq!(json["state"], "running");
    assert!(json["pid"].is_u64(), "{json}");
    assert!(json["uptime"].is_f64(), "{json}");
    let start = json["lastStart"].as_str().unwrap();
    assert!(start.ends_with('Z') && start.contains('T'), "{start}");
    let all = serde_json::to_string(&handle.statuses()).unwrap();
    let back: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(back[0]["name"], odd);
    let metrics = handle.metrics_text();
    assert!(metrics.contains("unit=\"we\\\"ird\\\\ näme\\\\n ✓\""), "{metrics}");
    for line in metrics.lines() {
        assert!(!line.starts_with('\t') && !line.starts_with("✓"), "a name broke a line: {line:?}");
    }
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["cause"]["kind"], "requested", "{json}");
    assert!(json["took"].is_f64(), "{json}");
    let line = &json["units"][0];
    for key in ["name", "type", "state", "outcome", "took"] {
        assert!(line.get(key).is_some(), "no `{key}` in {line}");
    }
    assert_eq!(line["outcome"], "graceful", "{line}");
    assert!(report.to_string().contains(odd), "{report}");
}

// ---------------------------------------------------------------------------
// Tails

#[tokio::test]
async fn tail_replaces_invalid_utf8_and_keeps_binary_junk_in_lines() {
    let (tail, handle) = tail_of(r"printf 'ok\n\377\376bad\nnul\000here\nlast'", 10).await;
    assert_eq!(tail, ["ok", "\u{fffd}\u{fffd}bad", "nul\0here", "last"]);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

#[tokio::test]
async fn tail_keeps_the_last_state_of_a_progress_bar() {
    let (tail, handle) = tail_of(r"printf 'start\n10%%\r50%%\r90%%\rdone\r\nend'", 10).await;
    // `90%` is the newest progress piece when `done` ends a line.
    assert_eq!(tail, ["start", "90%", "done", "end"]);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

#[tokio::test]
async fn tail_n_zero_huge_and_of_tasks_and_groups() {
    let handle = Supervisor::builder()
        .daemon(sh_once("d", "for i in 1 2 3; do echo $i; done"))
        .task(idle("t"))
        .group(GroupSpec::new("g").task(idle("u")))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "exit", handle.wait_state("d", UnitState::Exited)).await.unwrap();
    assert!(handle.tail("d", 0).unwrap().is_empty());
    assert_eq!(handle.tail("d", usize::MAX).unwrap(), ["1", "2", "3"]);
    assert_eq!(handle.tail("d", 2).unwrap(), ["2", "3"]);
    assert!(handle.tail("t", 10).unwrap().is_empty());
    assert!(handle.tail("g", 10).unwrap().is_empty());
    assert!(handle.tail("g/u", usize::MAX).unwrap().is_empty());
    assert!(matches!(handle.tail("nope", 1), Err(Error::UnknownUnit { .. })));
    assert!(matches!(handle.tail("", 1), Err(Error::UnknownUnit { .. })));
    assert!(matches!(handle.tail("g/", 1), Err(Error::UnknownUnit { .. })));
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// stdout and stderr both reach the tail, each in its order.
#[tokio::test]
async fn tail_has_both_streams() {
    let (tail, handle) =
        tail_of("for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done; printf 'no-newline' >&2", 100).await;
    let outs: Vec<&String> = tail.iter().filter(|line| line.starts_with("out")).collect();
    let errs: Vec<&String> = tail.iter().filter(|line| line.starts_with("err")).collect();
    assert_eq!(outs, ["out1", "out2", "out3", "out4", "out5"]);
    assert_eq!(errs, ["err1", "err2", "err3", "err4", "err5"]);
    // Across the two pipes, what is read in one wake-up may come in either
    // order: only each stream's own order is certain.
    assert!(tail.iter().any(|line| line == "no-newline"), "{tail:?}");
    assert_eq!(tail.len(), 11);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// A line longer than 64 KiB comes in 64 KiB pieces, the last holding the
/// rest: no empty piece, no lost byte.
#[tokio::test]
async fn tail_of_a_line_longer_than_the_limit() {
    let (tail, handle) = tail_of("head -c 150000 /dev/zero | tr '\\0' 'x'; echo; echo after", 10).await;
    let lengths: Vec<usize> = tail.iter().map(String::len).collect();
    assert_eq!(lengths, [65536, 65536, 150_000 - 2 * 65536, 5], "{lengths:?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// A line of exactly 64 KiB is not longer than the limit: one line, not a
/// piece followed by an empty line.
#[tokio::test]
async fn tail_of_a_line_of_exactly_the_limit() {
    let (tail, handle) = tail_of("head -c 65536 /dev/zero | tr '\\0' 'x'; echo; echo after", 10).await;
    let lengths: Vec<usize> = tail.iter().map(String::len).collect();
    assert_eq!(lengths, [65536, 5], "{lengths:?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// A multi-byte character across the 64 KiB bound is kept whole.
#[tokio::test]
async fn tail_keeps_a_character_cut_at_the_bound() {
    let (tail, handle) = tail_of("head -c 65535 /dev/zero | tr '\\0' 'x'; printf '\\342\\234\\223yz\\n'", 10).await;
    assert_eq!(tail.len(), 2, "{:?}", tail.iter().map(String::len).collect::<Vec<_>>());
    assert!(!tail.iter().any(|piece| piece.contains('\u{fffd}')));
    assert_eq!(tail[1], "✓yz");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// A tail bounded in bytes: a single line over it is cut with a marker
/// and the tail stays within its bound.
#[tokio::test]
async fn tail_bytes_bound_cuts_with_a_marker() {
    let handle = Supervisor::builder()
        .daemon(sh_once("d", "head -c 5000 /dev/zero | tr '\\0' 'y'; echo; echo short").tail_bytes(100))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "exit", handle.wait_state("d", UnitState::Exited)).await.unwrap();
    let tail = handle.tail("d", 10).unwrap();
    let total: usize = tail.iter().map(String::len).sum();
    assert!(total <= 100, "{tail:?}");
    assert_eq!(tail.last().map(String::as_str), Some("short"), "{tail:?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// The tail is read to the end once the state says `Exited`, even for a
/// process whose child left the group and keeps the pipe open a moment
/// longer (the README: "what it writes later is still read into the
/// tail").
#[tokio::test]
async fn tail_is_complete_at_exited() {
    // The leader waits until its child has left the group (a pause of
    // 0.1 s was not always enough on a loaded machine), so that the child
    // is not killed with the group; the child writes once the leader is
    // reaped, well within the half second its output is read for.
    let script = r#"leader=$$
left=$(mktemp -u)
setsid sh -c "touch $left; while kill -0 $leader 2>/dev/null; do sleep 0.01; done; echo late" &
while [ ! -e "$left" ]; do sleep 0.005; done
rm -f "$left"
echo early"#;
    for _ in 0..3 {
        let (tail, handle) = tail_of(script, 10).await;
        assert_eq!(tail, ["early", "late"]);
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    }
}

// ---------------------------------------------------------------------------
// The shutdown report

/// Each unit once, nested groups included, removed units absent, units
/// added at run time present; exit code and Display.
#[tokio::test]
async fn the_report_names_each_unit_once() {
    let handle = Supervisor::builder()
        .task(idle("a"))
        .group(GroupSpec::new("g").task(idle("b")).group(GroupSpec::new("h").task(idle("c"))))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "ready", handle.wait_ready("g")).await.unwrap();
    within(DEADLINE, "add", handle.add_to("g/h", idle("added"))).await.unwrap();
    within(DEADLINE, "add", handle.add(idle("gone"))).await.unwrap();
    within(DEADLINE, "remove", handle.remove("gone")).await.unwrap();
    within(DEADLINE, "stop", handle.stop_unit("g/h")).await.unwrap();
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert_each_once(&report);
    let mut names: Vec<&str> = report.units.iter().map(|line| line.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["a", "g", "g/b", "g/h", "g/h/added", "g/h/c"], "{report:#?}");
    for line in &report.units {
        if line.name.starts_with("g/h") {
            assert_eq!(line.outcome, StopOutcome::NotRunning, "{line:?}");
        }
        assert_eq!(line.state, UnitState::Stopped, "{line:?}");
    }
    let position = |name: &str| report.units.iter().position(|line| line.name == name).unwrap();
    assert!(position("g/b") < position("g") && position("g/h/c") < position("g/h"), "{report:#?}");
    assert_eq!(report.exit_code(), 0);
    let text = report.to_string();
    for name in names {
        assert!(text.lines().any(|line| line.starts_with(name)), "{name} not in\n{text}");
    }
    assert!(text.lines().last().unwrap().starts_with("shutdown requested"), "{text}");
}

/// A unit that gave up makes the exit code 1, a critical one ending
/// cleanly does not.
#[tokio::test]
async fn the_report_exit_code() {
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("doomed", |_ctx| async { Err::<(), _>("no") })
                .restart(RestartPolicy::new().max_restarts(MaxRestarts::AtMost(0))),
        )
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "failed", handle.wait_state("doomed", UnitState::Failed)).await.unwrap();
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert_eq!(report.exit_code(), 1);
    assert_eq!(report.units[0].state, UnitState::Failed);
    assert_eq!(report.units[0].outcome, StopOutcome::NotRunning);

    let handle = Supervisor::builder()
        .task(idle("bystander"))
        .task(TaskSpec::new("main", |_ctx| async {}).critical().restart(run_once()))
        .build()
        .unwrap()
        .start();
    let report = within(DEADLINE, "wait", handle.wait()).await;
    assert_eq!(report.exit_code(), 0, "{report:#?}");
    assert_each_once(&report);
    assert_eq!(report.units.len(), 2);
}

// ---------------------------------------------------------------------------
// Health

/// The health reasons name each state that makes it not ready.
#[tokio::test(start_paused = true)]
async fn health_reasons_for_each_state() {
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("backoff", |_ctx| async { Err::<(), _>("no") })
                .restart(RestartPolicy::new().delay(Duration::from_secs(3600))),
        )
        .task(
            TaskSpec::new("failed", |_ctx| async { Err::<(), _>("no") })
                .restart(RestartPolicy::new().max_restarts(MaxRestarts::AtMost(0))),
        )
        .task(
            TaskSpec::new("notified", |ctx: Context| async move { ctx.cancelled().await })
                .readiness(supervisor::Readiness::Notified),
        )
        .task(TaskSpec::new("exited", |_ctx| async {}).restart(run_once()))
        .task(idle("stopped"))
        .task(idle("fine"))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "backoff", handle.wait_state("backoff", UnitState::Backoff)).await.unwrap();
    within(DEADLINE, "failed", handle.wait_state("failed", UnitState::Failed)).await.unwrap();
    within(DEADLINE, "exited", handle.wait_state("exited", UnitState::Exited)).await.unwrap();
    within(DEADLINE, "stop", handle.stop_unit("stopped")).await.unwrap();
    within(DEADLINE, "running", handle.wait_state("notified", UnitState::Running)).await.unwrap();
    within(DEADLINE, "fine", handle.wait_ready("fine")).await.unwrap();
    let health = within(DEADLINE, "health", handle.health()).await;
    assert!(health.live && !health.ready, "{health:?}");
    assert_eq!(health.status, "not-ready");
    let reasons = &health.reasons;
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].starts_with("unit `backoff` (backoff): waiting to restart"), "{reasons:?}");
    assert!(reasons[1].starts_with("unit `failed` (failed): gave up"), "{reasons:?}");
    assert!(reasons[2].starts_with("unit `notified` (running): running, not ready yet"), "{reasons:?}");
    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json["status"], "not-ready");
    assert_eq!(json["units"][0]["type"], "task");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    let health = within(DEADLINE, "health", handle.health()).await;
    assert!(!health.live && !health.ready);
    assert_eq!(health.reasons, ["the supervisor has shut down"]);
}

// ---------------------------------------------------------------------------
// More events and readiness

/// A unit of a group stopped on request: while it stops (a task slow to
/// end), the group stays ready, and so does the supervisor, as for the
/// same unit at the root ("a unit stopped on purpose, `Stopping` or
/// `Stopped`, does not" make it not ready). The group was not ready for
/// the whole stop: `/readyz` said 503, though the unit itself read ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_stays_ready_while_one_of_its_units_is_stopped_on_request() {
    let (release, released) = tokio::sync::watch::channel(false);
    let slow = TaskSpec::new("slow", move |ctx: Context| {
        let mut released = released.clone();
        async move {
            ctx.cancelled().await;
            let _ = released.wait_for(|&done| done).await;
        }
    });
    let handle =
        Supervisor::builder().group(GroupSpec::new("g").task(slow).task(idle("calm"))).build().unwrap().start();
    within(DEADLINE, "ready", handle.wait_ready("g")).await.unwrap();
    let stopping = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.stop_unit("g/slow").await })
    };
    within(DEADLINE, "stopping", handle.wait_state("g/slow", UnitState::Stopping)).await.unwrap();
    let group = handle.status("g").unwrap();
    let health = within(DEADLINE, "health", handle.health()).await;
    release.send(true).unwrap();
    within(DEADLINE, "stopped", stopping).await.unwrap().unwrap();
    assert!(group.ready, "{group:?}");
    assert!(health.ready, "{:?}", health.reasons);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// A group becomes ready once its notified unit says so: the group, like
/// the unit, gets a `Ready` event ("The unit became ready").
#[tokio::test]
async fn a_group_that_becomes_ready_gets_a_ready_event() {
    let (tell, told) = tokio::sync::oneshot::channel::<()>();
    let told = std::sync::Mutex::new(Some(told));
    let sup = Supervisor::builder()
        .group(
            GroupSpec::new("g").task(
                TaskSpec::new("n", move |ctx: Context| {
                    let told = told.lock().unwrap().take();
                    async move {
                        if let Some(told) = told {
                            let _ = told.await;
                        }
                        ctx.ready();
                        ctx.cancelled().await;
                    }
                })
                .readiness(supervisor::Readiness::Notified),
            ),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "running", handle.wait_state("g/n", UnitState::Running)).await.unwrap();
    assert!(!handle.status("g").unwrap().ready);
    tell.send(()).unwrap();
    within(DEADLINE, "group ready", handle.wait_ready("g")).await.unwrap();
    let seen = drain(&mut events);
    assert!(seen.iter().any(|event| event.unit == "g/n" && event.kind == EventKind::Ready), "{seen:#?}");
    assert!(
        seen.iter().any(|event| event.unit == "g" && event.kind == EventKind::Ready),
        "no Ready for the group: {seen:#?}"
    );
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// The status's wall-clock times follow tokio's paused clock: uptime is
/// exactly the time advanced.
#[tokio::test(start_paused = true)]
async fn uptime_follows_the_paused_clock() {
    let handle = Supervisor::builder().task(idle("a")).build().unwrap().start();
    let first = within(DEADLINE, "ready", handle.wait_ready("a")).await.unwrap();
    let start = first.last_start.unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    let later = handle.status("a").unwrap();
    assert_eq!(later.last_start, Some(start));
    assert_eq!(later.uptime.unwrap() - first.uptime.unwrap(), Duration::from_secs(10), "{first:?} {later:?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `wait_ready` on a unit stopped by hand waits on (it may be started
/// again), and wakes when it is.
#[tokio::test]
async fn wait_ready_across_a_stop_and_a_start() {
    let handle = Supervisor::builder().task(idle("a")).build().unwrap().start();
    within(DEADLINE, "ready", handle.wait_ready("a")).await.unwrap();
    within(DEADLINE, "stop", handle.stop_unit("a")).await.unwrap();
    let waiter = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.wait_ready("a").await })
    };
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    within(DEADLINE, "start", handle.start_unit("a")).await.unwrap();
    let status = within(DEADLINE, "the wait", waiter).await.unwrap().unwrap();
    assert!(status.ready);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

// ---------------------------------------------------------------------------
// Metrics through the facade

fn rendered_has(recorder: &metrics_exporter_prometheus::PrometheusRecorder, line: &str) -> bool {
    recorder.handle().render().lines().any(|rendered| rendered == line)
}

/// A unit removed and added again under the same name as another kind:
/// its metrics carry the new kind. (The old unit is at rest, so that the
/// remove and the add are done before the publisher's task looks.)
#[tokio::test]
async fn metrics_of_a_name_reused_by_another_kind() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let handle =
        Supervisor::builder().task(TaskSpec::new("x", |_ctx| async {}).restart(run_once())).build().unwrap().start();
    within(DEADLINE, "exited", handle.wait_state("x", UnitState::Exited)).await.unwrap();
    let publisher = handle.publish_metrics();
    let exited = "supervisor_unit_state{unit=\"x\",type=\"task\",state=\"exited\"} 1";
    assert!(rendered_has(&recorder, exited), "{}", recorder.handle().render());
    within(DEADLINE, "remove", handle.remove("x")).await.unwrap();
    within(DEADLINE, "add", handle.add(DaemonSpec::new("x", "sleep").arg("60"))).await.unwrap();
    publisher.refresh();
    within(DEADLINE, "ready", handle.wait_ready("x")).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !rendered_has(&recorder, "supervisor_unit_up{unit=\"x\",type=\"process\"} 1") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no process `x` in the metrics:\n{}",
            recorder
                .handle()
                .render()
                .lines()
                .filter(|line| line.contains("unit=\"x\""))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        publisher.refresh();
    }
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    within(DEADLINE, "publisher", publisher.stopped()).await;
}

/// A publisher over a tiny event channel that lags still ends with the
/// units' true values.
#[tokio::test]
async fn metrics_after_a_lag_are_right() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let handle = Supervisor::builder()
        .event_capacity(1)
        .task(
            TaskSpec::new("flaky", |_ctx| async { Err::<(), _>("boom") })
                .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(50))),
        )
        .task(idle("steady"))
        .build()
        .unwrap()
        .start();
    let publisher = handle.publish_metrics();
    within(DEADLINE, "failed", handle.wait_state("flaky", UnitState::Failed)).await.unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !(rendered_has(&recorder, "supervisor_unit_restarts_total{unit=\"flaky\",type=\"task\"} 50")
        && rendered_has(&recorder, "supervisor_unit_state{unit=\"flaky\",type=\"task\",state=\"failed\"} 1"))
    {
        assert!(tokio::time::Instant::now() < deadline, "{}", recorder.handle().render());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    within(DEADLINE, "publisher", publisher.stopped()).await;
    assert!(rendered_has(&recorder, "supervisor_up 0"), "{}", recorder.handle().render());
    assert!(
        rendered_has(&recorder, "supervisor_unit_up{unit=\"steady\",type=\"task\"} 0"),
        "{}",
        recorder.handle().render()
    );
}

// ---------------------------------------------------------------------------
// More statuses, events and reports

/// The restart events count in step: `Started { restart_count }`,
/// `Restarting { attempt }` one more, then `GaveUp`, each run's `Exited`
/// carrying its error.
#[tokio::test]
async fn restart_events_count_in_step() {
    let sup = Supervisor::builder()
        .task(
            TaskSpec::new("flaky", |_ctx| async { Err::<(), _>("boom") })
                .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(5))),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let seen = events_until(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::GaveUp { .. })).await;
    let mut expected_start = 0;
    let mut last_start = None;
    for event in &seen {
        match &event.kind {
            EventKind::Started { restart_count, pid } => {
                assert_eq!(*restart_count, expected_start, "{seen:#?}");
                assert_eq!(*pid, None);
                last_start = Some(*restart_count);
            }
            EventKind::Restarting { attempt, .. } => {
                assert_eq!(Some(*attempt), last_start.map(|count| count + 1), "{seen:#?}");
                expected_start += 1;
            }
            EventKind::Exited { reason } => assert_eq!(reason, &supervisor::ExitReason::Error("boom".into())),
            EventKind::GaveUp { .. } => assert_eq!(last_start, Some(5)),
            other => panic!("unexpected {other:?}"),
        }
    }
    let times: Vec<_> = seen.iter().map(|event| event.time).collect();
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "event times go backwards");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// A task that panics while it is being stopped: the stop is asked for,
/// but the panic is kept as `last_error` (as `UnitStatus::last_error` says).
#[tokio::test]
async fn a_panic_during_a_stop_is_kept_as_last_error() {
    let handle = Supervisor::builder()
        .task(TaskSpec::new("p", |ctx: Context| async move {
            ctx.cancelled().await;
            if ctx.is_cancelled() {
                panic!("while stopping");
            }
        }))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "ready", handle.wait_ready("p")).await.unwrap();
    within(DEADLINE, "stop", handle.stop_unit("p")).await.unwrap();
    let status = handle.status("p").unwrap();
    assert_eq!(status.state, UnitState::Stopped);
    assert_eq!(status.last_error.as_deref(), Some("panicked: while stopping"), "{status:?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// A `remove` that a shutdown overtakes: the unit is either removed (and
/// not in the report) or refused (and in the report), never both nor
/// neither.
#[tokio::test]
async fn a_remove_overtaken_by_a_shutdown_is_reported_once() {
    for round in 0..10 {
        let handle = Supervisor::builder()
            .task(idle("keep"))
            .task(TaskSpec::new("slow", |ctx: Context| async move {
                ctx.cancelled().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }))
            .build()
            .unwrap()
            .start();
        within(DEADLINE, "ready", handle.wait_ready("slow")).await.unwrap();
        let remover = {
            let handle = handle.clone();
            tokio::spawn(async move { handle.remove("slow").await })
        };
        for _ in 0..round {
            tokio::task::yield_now().await;
        }
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        let removed = within(DEADLINE, "remove", remover).await.unwrap();
        assert_each_once(&report);
        let reported = report.units.iter().any(|line| line.name == "slow");
        match removed {
            Ok(line) => {
                assert!(!reported, "round {round}: removed ({line:?}) yet in the report: {report:#?}");
            }
            Err(Error::ShuttingDown { .. }) => assert!(reported, "round {round}: refused yet not in the report"),
            Err(error) => panic!("round {round}: {error}"),
        }
        assert!(report.units.iter().any(|line| line.name == "keep"));
    }
}

/// A group whose `remove` a shutdown overtakes: once removed, neither it
/// nor its units are in the report. Its units' owner, unaware of the
/// removal, stopped them as the shutdown's; and the root's list of units
/// to stop, made as the shutdown began, still held the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_removed_as_a_shutdown_overtakes_it_is_not_in_the_report() {
    for round in 0..40 {
        let handle = Supervisor::builder()
            .task(idle("keep"))
            .group(GroupSpec::new("g").task(idle("x")).task(idle("y")))
            .build()
            .unwrap()
            .start();
        within(DEADLINE, "ready", handle.wait_ready("g/x")).await.unwrap();
        let (removed, report) = tokio::join!(handle.remove("g"), async {
            tokio::task::yield_now().await;
            handle.shutdown().await
        });
        assert_removal_and_report_agree(round, "g", removed, &report);
    }
}

/// The same, with the shutdown asked by a unit of the group being removed,
/// as its stop begins (a server's last connection ending it, say).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_removed_whose_unit_asks_the_shutdown_is_not_in_the_report() {
    for round in 0..40 {
        let weak: Arc<Mutex<Option<WeakSupervisorHandle>>> = Arc::default();
        let asks = {
            let weak = weak.clone();
            TaskSpec::new("x", move |ctx: Context| {
                let weak = weak.clone();
                async move {
                    ctx.cancelled().await;
                    let handle = weak.lock().unwrap().as_ref().and_then(WeakSupervisorHandle::upgrade);
                    if let Some(handle) = handle {
                        tokio::spawn(async move { handle.shutdown().await });
                    }
                    for _ in 0..round % 3 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        };
        let handle =
            Supervisor::builder().group(GroupSpec::new("g").task(asks)).task(idle("keep")).build().unwrap().start();
        *weak.lock().unwrap() = Some(handle.downgrade());
        within(DEADLINE, "ready", handle.wait_ready("g/x")).await.unwrap();
        let removed = within(DEADLINE, "remove", handle.remove("g")).await;
        let report = within(DEADLINE, "the end", handle.wait()).await;
        assert_removal_and_report_agree(round, "g", removed, &report);
    }
}

/// `removed` (the answer to a `remove(path)` that raced a shutdown) and
/// `report` agree: a unit removed is not in the report, nor its units; one
/// refused is.
fn assert_removal_and_report_agree(
    round: usize,
    path: &str,
    removed: Result<UnitReport, Error>,
    report: &ShutdownReport,
) {
    assert_each_once(report);
    let listed = |name: &str| name == path || name.strip_prefix(path).is_some_and(|rest| rest.starts_with('/'));
    let lines: Vec<&str> = report.units.iter().map(|line| line.name.as_str()).filter(|name| listed(name)).collect();
    match removed {
        Ok(_) => assert!(lines.is_empty(), "round {round}: `{path}` removed, yet the report lists {lines:?}"),
        Err(Error::ShuttingDown { .. }) => assert!(lines.contains(&path), "round {round}: refused, yet not listed"),
        Err(error) => panic!("round {round}: {error}"),
    }
    assert!(report.units.iter().any(|line| line.name == "keep"), "round {round}: {report:#?}");
}

/// Reads the status of the unit `once` as each run's end is logged, in the
/// owner's turn, just before its event goes out.
struct StatusAtRunEnd {
    handle: Arc<Mutex<Option<SupervisorHandle>>>,
    seen: Arc<Mutex<Vec<(String, UnitState, bool)>>>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StatusAtRunEnd {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if !matches!(message.0.as_str(), "run ended" | "run failed") {
            return;
        }
        let Some(handle) = self.handle.lock().unwrap().clone() else { return };
        let status = handle.status("once").expect("the unit");
        self.seen.lock().unwrap().push((message.0, status.state, status.running));
    }
}

/// A subscriber that looks at the status when it hears a run's end sees
/// the run over: `Exited` (or `Failed`, if its policy gives up), not
/// running. The state was still `Running`, with the exit code already
/// shown, until a moment after the event.
#[tokio::test]
async fn the_status_shows_a_run_over_when_its_end_is_told() {
    use tracing_subscriber::layer::SubscriberExt;
    let (handle_slot, seen) = (Arc::new(Mutex::new(None)), Arc::new(Mutex::new(Vec::new())));
    let layer = StatusAtRunEnd { handle: handle_slot.clone(), seen: seen.clone() };
    let _subscriber = subscriber::on_this_thread(tracing_subscriber::registry().with(layer));
    let cases = [
        (RestartPolicy::new().on(RestartOn::Never), Ok(()), UnitState::Exited),
        (RestartPolicy::new().max_restarts(MaxRestarts::AtMost(0)), Err("boom"), UnitState::Failed),
    ];
    for (policy, ends, rests_in) in cases {
        let handle = Supervisor::builder()
            .task(TaskSpec::new("once", move |_ctx: Context| async move { ends }).restart(policy))
            .build()
            .unwrap()
            .start();
        *handle_slot.lock().unwrap() = Some(handle.clone());
        within(DEADLINE, "at rest", handle.wait_state("once", rests_in)).await.unwrap();
        *handle_slot.lock().unwrap() = None;
        let seen = std::mem::take(&mut *seen.lock().unwrap());
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!((seen[0].1, seen[0].2), (rests_in, false), "{seen:?}");
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    }
}

/// A failure one restart too many for its group's intensity: the status
/// read as the run's end is told shows the unit `Stopped`, as it rests, no
/// restart to come. It showed `Backoff`, where no `Restarting` followed,
/// as after the failure before, which the intensity let restart.
#[tokio::test]
async fn the_status_shows_no_backoff_when_the_intensity_gives_up() {
    use tracing_subscriber::layer::SubscriberExt;
    let (handle_slot, seen) = (Arc::new(Mutex::new(None)), Arc::new(Mutex::new(Vec::new())));
    let layer = StatusAtRunEnd { handle: handle_slot.clone(), seen: seen.clone() };
    let _subscriber = subscriber::on_this_thread(tracing_subscriber::registry().with(layer));
    let once = TaskSpec::new("once", |_ctx: Context| async { Err::<(), _>("boom") })
        .restart(RestartPolicy::new().delay(Duration::ZERO));
    let handle = Supervisor::builder().intensity(1, Duration::from_secs(60)).task(once).build().unwrap().start();
    *handle_slot.lock().unwrap() = Some(handle.clone());
    let report = within(DEADLINE, "the tree gives up", handle.wait()).await;
    *handle_slot.lock().unwrap() = None;
    assert!(matches!(report.cause, supervisor::ShutdownCause::GaveUp { .. }), "{report:#?}");
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let states: Vec<(UnitState, bool)> = seen.iter().map(|(_, state, running)| (*state, *running)).collect();
    assert_eq!(states, [(UnitState::Backoff, false), (UnitState::Stopped, false)], "{seen:?}");
}

/// A unit that fails by itself while the shutdown stops the units after it
/// (one slow to stop): its report line says `Failed`, and the report is
/// not clean (exit code 1). It read `Exited`, not running, and the
/// supervisor exited 0, as if the crash had not happened. One that ends
/// well meanwhile is `Exited`, and the report stays clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_that_fails_during_the_shutdown_makes_the_report_unclean() {
    for fails in [true, false] {
        let (end_early, early_ends) = tokio::sync::watch::channel(false);
        let (release, released) = tokio::sync::watch::channel(false);
        let early = TaskSpec::new("early", move |_ctx: Context| {
            let mut early_ends = early_ends.clone();
            async move {
                let _ = early_ends.wait_for(|&now| now).await;
                if fails { Err("crashed during the shutdown") } else { Ok(()) }
            }
        });
        let slow = TaskSpec::new("slow", move |ctx: Context| {
            let mut released = released.clone();
            async move {
                ctx.cancelled().await;
                let _ = released.wait_for(|&done| done).await;
            }
        });
        let handle = Supervisor::builder().task(early).task(slow).build().unwrap().start();
        within(DEADLINE, "ready", handle.wait_ready("slow")).await.unwrap();
        let shutdown = {
            let handle = handle.clone();
            tokio::spawn(async move { handle.shutdown().await })
        };
        within(DEADLINE, "slow stopping", handle.wait_state("slow", UnitState::Stopping)).await.unwrap();
        end_early.send(true).unwrap();
        let rests_in = if fails { UnitState::Failed } else { UnitState::Exited };
        within(DEADLINE, "early at rest", handle.wait_state("early", rests_in)).await.unwrap();
        release.send(true).unwrap();
        let report = within(DEADLINE, "the report", shutdown).await.unwrap();
        let line = report.units.iter().find(|line| line.name == "early").unwrap();
        assert_eq!((line.state, line.outcome), (rests_in, StopOutcome::NotRunning), "{report:#?}");
        assert_eq!(report.exit_code(), i32::from(fails), "{report:#?}");
    }
}

/// A daemon whose readiness probe never passes: status and health say why.
#[tokio::test]
async fn not_ready_of_a_failing_probe() {
    let handle = Supervisor::builder()
        .daemon(DaemonSpec::new("d", "sleep").arg("60").readiness(supervisor::Readiness::Probe(
            supervisor::Probe::exec(["sh", "-c", "echo nope >&2; exit 1"]).period(Duration::from_millis(20)),
        )))
        .build()
        .unwrap()
        .start();
    let status =
        within(DEADLINE, "a reason", handle.wait_status("d", |status| status.not_ready.is_some())).await.unwrap();
    assert_eq!(status.state, UnitState::Running);
    assert!(!status.ready);
    let health = within(DEADLINE, "health", handle.health()).await;
    assert!(health.reasons[0].starts_with("unit `d` (running): running, not ready yet ("), "{:?}", health.reasons);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// A group that gives up (intensity): its units get `Stopped`, the group
/// an `Exited` with the reason, then `Finished` under a policy that does
/// not restart it; its status keeps the reason as `last_error`.
#[tokio::test]
async fn a_group_that_gives_up_says_so() {
    let sup = Supervisor::builder()
        .task(idle("bystander"))
        .group(
            GroupSpec::new("g").intensity(2, Duration::from_secs(60)).restart(run_once()).task(idle("calm")).task(
                TaskSpec::new("flaky", |_ctx| async { Err::<(), _>("boom") })
                    .restart(RestartPolicy::new().delay(Duration::ZERO)),
            ),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let seen =
        events_until(DEADLINE, &mut events, |event| event.unit == "g" && event.kind == EventKind::Finished).await;
    let exited = seen
        .iter()
        .find(|event| event.unit == "g" && matches!(event.kind, EventKind::Exited { .. }))
        .unwrap_or_else(|| panic!("{seen:#?}"));
    assert!(matches!(&exited.kind, EventKind::Exited { reason: supervisor::ExitReason::GroupGaveUp(_) }), "{exited:?}");
    assert!(
        seen.iter().any(|event| event.unit == "g/calm" && matches!(event.kind, EventKind::Stopped { .. })),
        "{seen:#?}"
    );
    let group = handle.status("g").unwrap();
    assert_eq!(group.state, UnitState::Exited, "{group:?}");
    assert!(group.last_error.as_deref().is_some_and(|error| error.starts_with("gave up")), "{group:?}");
    assert_eq!(handle.status("g/calm").unwrap().state, UnitState::Stopped);
    let health = within(DEADLINE, "health", handle.health()).await;
    assert!(health.ready, "an exited group does not make it not ready: {:?}", health.reasons);
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert_each_once(&report);
    assert_eq!(report.units.len(), 4, "{report:#?}");
}

/// A unit that fails by itself while `stop_unit` stops its dependents
/// first (one slow to stop) rests `Stopped`, and its events end on
/// `Stopped`, as for a unit the stop finds in `Backoff`. They ended on its
/// `Exited`, with no restart nor rest to follow it, while its status and
/// the report said `Stopped`.
#[tokio::test(start_paused = true)]
async fn a_unit_that_fails_while_its_dependents_stop_ends_on_stopped() {
    let fail = Arc::new(tokio::sync::Notify::new());
    let db = {
        let fail = fail.clone();
        TaskSpec::new("db", move |_ctx: Context| {
            let fail = fail.clone();
            async move {
                fail.notified().await;
                Err::<(), _>("lost its disk")
            }
        })
    };
    let sup = Supervisor::builder()
        .task(db)
        .task(specs::slow_to_stop("api", Duration::from_secs(1)).depends_on(["db"]))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "api runs", handle.wait_state("api", UnitState::Running)).await.unwrap();
    let stop = tokio::spawn({
        let handle = handle.clone();
        async move { handle.stop_unit("db").await }
    });
    within(DEADLINE, "api stops", handle.wait_state("api", UnitState::Stopping)).await.unwrap();
    fail.notify_one();
    within(DEADLINE, "stop_unit", stop).await.unwrap().unwrap();
    assert_eq!(handle.status("db").unwrap().state, UnitState::Stopped);
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    let line = report.units.iter().find(|line| line.name == "db").unwrap();
    assert_eq!(line.state, UnitState::Stopped, "{report:#?}");
    let mut seen = Vec::new();
    while let Ok(event) = within(DEADLINE, "events", events.recv()).await {
        seen.push(event);
    }
    let kinds: Vec<&EventKind> = seen.iter().filter(|event| event.unit == "db").map(|event| &event.kind).collect();
    assert!(
        matches!(
            kinds[..],
            [EventKind::Started { .. }, EventKind::Exited { .. }, EventKind::Stopped { forced: false, .. }]
        ),
        "{seen:#?}"
    );
}

/// The runtime dropped under a running supervisor: each unit it stopped
/// (a task, a group and its unit, one waiting out a restart delay) has its
/// `Stopped` event, as in a shutdown, forced for a run that was dropped,
/// before the stream ends. The events ended on `Started`, while the statuses
/// and the report said `Stopped`, `Forced`.
#[test]
fn the_units_a_dropped_runtime_stops_are_told_stopped() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (handle, mut events) = runtime.block_on(async {
        let sup = Supervisor::builder()
            .task(idle("a"))
            .group(GroupSpec::new("g").task(idle("x")))
            .task(
                TaskSpec::new("f", |_ctx| async { Err::<(), _>("boom") }).restart(RestartPolicy::new().delay(DEADLINE)),
            )
            .build()
            .unwrap();
        let events = sup.subscribe();
        let handle = sup.start();
        within(DEADLINE, "backoff", handle.wait_state("f", UnitState::Backoff)).await.unwrap();
        (handle, events)
    });
    drop(runtime);
    let mut last = std::collections::HashMap::new();
    loop {
        match events.try_recv() {
            Ok(event) => {
                last.insert(event.unit.clone(), event.kind);
            }
            Err(broadcast::error::TryRecvError::Closed) => break,
            Err(other) => panic!("{other:?}"),
        }
    }
    let waiting = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report = waiting.block_on(within(DEADLINE, "wait", handle.wait()));
    for line in &report.units {
        let forced = line.outcome == StopOutcome::Forced;
        assert_eq!(line.state, UnitState::Stopped, "{report:#?}");
        assert!(
            matches!(last.get(&line.name), Some(EventKind::Stopped { forced: told, .. }) if *told == forced),
            "`{}`: {:?}, {report:#?}",
            line.name,
            last.get(&line.name)
        );
    }
    assert_eq!(report.units.len(), 4, "{report:#?}");
}

/// A shutdown asked as `start()` returns, before the launch: no unit ran,
/// so none is told `Stopped`, and each is listed `NotRunning`, a unit of
/// the root as a group's is. The root's units were each told `Stopped`
/// (their only event) and listed `Graceful`, as if a run had been stopped.
#[tokio::test]
async fn units_stopped_before_the_launch_are_told_nothing() {
    let sup = Supervisor::builder().task(idle("a")).group(GroupSpec::new("g").task(idle("x"))).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    assert_eq!(handle.status("a").unwrap().state, UnitState::Starting);
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    let mut seen = Vec::new();
    while let Ok(event) = within(DEADLINE, "events", events.recv()).await {
        seen.push(event);
    }
    assert!(seen.is_empty(), "{seen:#?}");
    let lines: Vec<_> = report.units.iter().map(|line| (line.name.as_str(), line.state, line.outcome)).collect();
    for name in ["a", "g", "g/x"] {
        assert!(lines.contains(&(name, UnitState::Stopped, StopOutcome::NotRunning)), "{name}: {lines:?}");
    }
}

/// Waits on the units of a group removed at run time (nested too) end with
/// `UnknownUnit`, as the group's own do.
#[tokio::test]
async fn waits_inside_a_removed_group_end() {
    let handle = Supervisor::builder().task(idle("keep")).build().unwrap().start();
    within(
        DEADLINE,
        "add",
        handle.add(GroupSpec::new("dyn").task(idle("u")).group(GroupSpec::new("deep").task(idle("v")))),
    )
    .await
    .unwrap();
    for name in ["dyn", "dyn/u", "dyn/deep/v"] {
        within(DEADLINE, "ready", handle.wait_ready(name)).await.unwrap();
    }
    let mut waits = Vec::new();
    for name in ["dyn", "dyn/u", "dyn/deep", "dyn/deep/v"] {
        let (first, second) = (handle.clone(), handle.clone());
        waits.push(tokio::spawn(async move { (name, first.wait_state(name, UnitState::Failed).await) }));
        waits.push(tokio::spawn(async move { (name, second.wait_status(name, |_| false).await) }));
    }
    tokio::task::yield_now().await;
    within(DEADLINE, "remove", handle.remove("dyn")).await.unwrap();
    for wait in waits {
        let (name, result) = within(DEADLINE, "a wait inside the removed group", wait).await.unwrap();
        assert!(matches!(result, Err(Error::UnknownUnit { .. })), "{name}: {result:?}");
    }
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `Output::Discard` and `Output::Inherit` keep no tail.
#[tokio::test]
async fn tail_of_uncaptured_output_is_empty() {
    let handle = Supervisor::builder()
        .daemon(sh_once("discard", "echo hidden").output(supervisor::Output::Discard))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "exit", handle.wait_state("discard", UnitState::Exited)).await.unwrap();
    assert!(handle.tail("discard", 10).unwrap().is_empty());
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// A unit ready as soon as it starts (`Readiness::Started`, the default),
/// and a group of such units, are ready with their `Started` event, as
/// `EventKind::Ready` documents: no `Ready` event follows. (A group of a
/// notified unit gets its `Ready` later, see
/// `a_group_that_becomes_ready_gets_a_ready_event`.)
#[tokio::test]
async fn a_unit_ready_at_start_is_ready_with_its_started_event() {
    let sup = Supervisor::builder().task(idle("a")).group(GroupSpec::new("g").task(idle("b"))).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    for name in ["a", "g", "g/b"] {
        within(DEADLINE, "ready", handle.wait_ready(name)).await.unwrap();
    }
    let seen = drain(&mut events);
    let kinds =
        |name: &str| seen.iter().filter(|event| event.unit == name).map(|event| &event.kind).collect::<Vec<_>>();
    for name in ["a", "g", "g/b"] {
        let kinds = kinds(name);
        assert!(matches!(kinds.as_slice(), [EventKind::Started { .. }]), "`{name}`: {kinds:?}");
    }
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// The fields of the supervisor's lines, as a structured layer (JSON logs)
/// is handed them: by name, a number as a number, text as text, and
/// anything else as its `Debug`.
#[derive(Clone, Default)]
struct Fields(Arc<Mutex<Vec<Line>>>);

/// A line's message and its fields, each a name and how it was recorded.
type Line = (String, Vec<(String, String)>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Fields {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Visit(String, Vec<(String, String)>);
        impl tracing::field::Visit for Visit {
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                self.1.push((field.name().to_owned(), format!("u64 {value}")));
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.1.push((field.name().to_owned(), format!("str {value}")));
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                match field.name() {
                    "message" => self.0 = format!("{value:?}"),
                    name => self.1.push((name.to_owned(), format!("debug {value:?}"))),
                }
            }
        }
        let mut visit = Visit::default();
        event.record(&mut visit);
        self.0.lock().unwrap().push((visit.0, visit.1));
    }
}

/// A daemon's `started` line carries its pid as a number and a task's
/// none, and a `not ready` line its reason as text: they were the `Debug`
/// of an `Option` (`pid=Some(4242)`, `pid=None`, `reason=Some("tcp ...")`),
/// a string that a JSON log or a `pid=4242` filter could not use.
#[tokio::test]
async fn the_lines_carry_a_pid_and_a_reason_as_values_not_options() {
    use supervisor::{Probe, Readiness};
    use tracing_subscriber::layer::SubscriberExt;
    let fields = Fields::default();
    let _subscriber = subscriber::on_this_thread(tracing_subscriber::registry().with(fields.clone()));
    // Nothing listens on a port this test bound and let go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let handle = Supervisor::builder()
        .daemon(
            DaemonSpec::new("d", "sleep")
                .arg("60")
                .readiness(Readiness::Probe(Probe::tcp(closed.to_string()).period(Duration::from_millis(20)))),
        )
        .task(idle("t"))
        .build()
        .unwrap()
        .start();
    let not_ready =
        within(DEADLINE, "not ready", handle.wait_status("d", |status| status.not_ready.is_some())).await.unwrap();
    let pid = not_ready.pid.expect("running");
    within(DEADLINE, "t", handle.wait_state("t", UnitState::Running)).await.unwrap();
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    let lines = fields.0.lock().unwrap().clone();
    let started: Vec<_> = lines.iter().filter(|(message, _)| message == "started").map(|(_, f)| f.clone()).collect();
    let field = |fields: &[(String, String)], name: &str| {
        fields.iter().filter(|(key, _)| key == name).map(|(_, value)| value.clone()).collect::<Vec<_>>()
    };
    // The daemon's line and the task's, in either order: one pid between them.
    assert_eq!(started.len(), 2, "{lines:#?}");
    let pids: Vec<_> = started.iter().flat_map(|fields| field(fields, "pid")).collect();
    assert_eq!(pids, [format!("u64 {pid}")], "the daemon's pid, and none for the task: {lines:#?}");
    let reasons: Vec<_> = lines
        .iter()
        .filter(|(message, _)| message == "not ready")
        .flat_map(|(_, fields)| field(fields, "reason"))
        .collect();
    assert!(!reasons.is_empty(), "{lines:#?}");
    for reason in reasons {
        assert!(reason.starts_with(&format!("str tcp {closed}: ")), "{reason}");
    }
}
