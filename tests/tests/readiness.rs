//! Dependencies, readiness, liveness and watchdogs, with real processes
//! (`sh`, `python3`, `systemd-notify`) and real sockets: start and stop
//! orders, each readiness kind and probe kind, liveness and watchdog
//! restarts, control calls along dependencies, and every bad input.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use supervisor::{
    Context, DaemonSpec, Error, Event, EventKind, ExitReason, GroupSpec, Probe, Readiness, RestartOn, RestartPolicy,
    ShutdownOrder, StopOutcome, Strategy, Supervisor, TaskSpec, UnitState,
};

#[path = "support/deadline.rs"]
mod deadline;
use deadline::{events_until, wait_ready, wait_status, wait_tail, within};
#[path = "support/specs.rs"]
mod specs;
use specs::{idle, sh, slow_to_stop};

const SEC: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);
/// How long anything with real processes may take before a test fails.
const DEADLINE: Duration = Duration::from_secs(20);

/// A port nobody listens on (bound, then let go).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn started(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter(|event| matches!(event.kind, EventKind::Started { .. }))
        .map(|event| event.unit.as_str())
        .collect()
}

fn stopped(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter(|event| matches!(event.kind, EventKind::Stopped { .. }))
        .map(|event| event.unit.as_str())
        .collect()
}

/// `python3` listening on `port` after `delay` seconds, for ever.
fn listens_after(name: &str, port: u16, delay: &str) -> DaemonSpec {
    let program = format!(
        "import socket, time\ntime.sleep({delay})\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', {port}))\ns.listen()\nwhile True:\n    s.accept()[0].close()\n"
    );
    DaemonSpec::new(name, "python3").args(["-c", &program])
}

#[tokio::test(start_paused = true)]
async fn units_start_after_their_dependencies_and_stop_before_them() {
    let sup = Supervisor::builder()
        .task(idle("web").depends_on(["api"]))
        .task(idle("api").depends_on(["db", "cache"]))
        .task(idle("cache"))
        .task(idle("db"))
        .task(idle("lone"))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let seen = events_until(DEADLINE, &mut events, |event| {
        event.unit == "web" && matches!(event.kind, EventKind::Started { .. })
    })
    .await;
    let order = started(&seen);
    let at = |name| order.iter().position(|unit| *unit == name).unwrap();
    assert!(at("db") < at("api") && at("cache") < at("api") && at("api") < at("web"), "{order:?}");
    wait_ready(DEADLINE, &handle, "lone").await;
    let report = handle.shutdown().await;
    let stops: Vec<_> = report.units.iter().map(|unit| unit.name.as_str()).collect();
    let at = |name| stops.iter().position(|unit| *unit == name).unwrap();
    assert!(at("web") < at("api") && at("api") < at("db") && at("api") < at("cache"), "{stops:?}");
}

#[tokio::test(start_paused = true)]
async fn a_concurrent_shutdown_asks_a_unit_only_after_its_dependents_stopped() {
    let slow = |name: &str| {
        TaskSpec::new(name, |ctx: Context| async move {
            ctx.cancelled().await;
            tokio::time::sleep(SEC).await;
        })
    };
    let handle = Supervisor::builder()
        .shutdown_order(ShutdownOrder::Concurrent)
        .task(slow("db"))
        .task(slow("api").depends_on(["db"]))
        .task(slow("worker").depends_on(["db"]))
        .task(slow("metrics"))
        .build()
        .unwrap()
        .start();
    wait_ready(DEADLINE, &handle, "worker").await;
    let report = handle.shutdown().await;
    assert_eq!(report.took, 2 * SEC, "api, worker and metrics together, then db once its dependents stopped");
    assert_eq!(report.units.last().map(|unit| unit.name.as_str()), Some("db"));
}

/// When each unit was asked to stop (`"name"`) and when it had stopped
/// (`"name stopped"`), from a common start.
type AskLog = Arc<std::sync::Mutex<Vec<(String, Duration)>>>;

/// A task that logs when it is asked to stop, then takes `stall` to stop.
fn logs_its_stop(log: &AskLog, name: &'static str, stall: Duration) -> TaskSpec {
    let log = log.clone();
    let began = tokio::time::Instant::now();
    TaskSpec::new(name, move |ctx: Context| {
        let log = log.clone();
        async move {
            ctx.cancelled().await;
            log.lock().unwrap().push((name.to_owned(), began.elapsed()));
            tokio::time::sleep(stall).await;
            log.lock().unwrap().push((format!("{name} stopped"), began.elapsed()));
        }
    })
    .stop_timeout(60 * SEC)
}

/// When `name` was last asked to stop (or, for `"name stopped"`, had
/// stopped), counted from `from`.
fn asked_at(log: &AskLog, name: &str, from: Duration) -> Duration {
    let asked = log.lock().unwrap().iter().rev().find(|(unit, _)| unit == name).map(|(_, at)| *at);
    asked.unwrap_or_else(|| panic!("`{name}` is not in the log: {:?}", log.lock().unwrap())) - from
}

/// A slow unit that nothing depends on does not hold back an unrelated
/// one: `db` is asked as soon as `api`, its only dependent, has stopped,
/// not once `lone` has (a whole "layer").
#[tokio::test(start_paused = true)]
async fn a_concurrent_shutdown_asks_a_unit_as_soon_as_its_own_dependents_stopped() {
    let log = AskLog::default();
    let began = tokio::time::Instant::now();
    let handle = Supervisor::builder()
        .shutdown_order(ShutdownOrder::Concurrent)
        .task(logs_its_stop(&log, "db", 10 * SEC))
        .task(logs_its_stop(&log, "api", SEC).depends_on(["db"]))
        .task(logs_its_stop(&log, "lone", 10 * SEC))
        .build()
        .unwrap()
        .start();
    wait_ready(DEADLINE, &handle, "api").await;
    let asked = began.elapsed();
    let report = handle.shutdown().await;
    assert_eq!(asked_at(&log, "api", asked), Duration::ZERO);
    assert_eq!(asked_at(&log, "lone", asked), Duration::ZERO);
    assert_eq!(asked_at(&log, "db", asked), SEC, "once api stopped");
    assert_eq!(report.took, 11 * SEC);
    let order: Vec<_> = report.units.iter().map(|unit| unit.name.as_str()).collect();
    assert_eq!(order, ["api", "lone", "db"], "in the order they stopped");
}

/// The same shape within a shutdown timeout: `db`, asked at 1 s, stops
/// gracefully at 7 s, well within 15 s (asked only once `lone` had
/// stopped, at 10 s, it was cut off).
#[tokio::test(start_paused = true)]
async fn a_concurrent_shutdown_does_not_cut_off_a_unit_held_back_by_an_unrelated_one() {
    let log = AskLog::default();
    let handle = Supervisor::builder()
        .shutdown_order(ShutdownOrder::Concurrent)
        .shutdown_timeout(15 * SEC)
        .task(logs_its_stop(&log, "db", 6 * SEC))
        .task(logs_its_stop(&log, "api", SEC).depends_on(["db"]))
        .task(logs_its_stop(&log, "lone", 10 * SEC))
        .build()
        .unwrap()
        .start();
    wait_ready(DEADLINE, &handle, "api").await;
    let report = handle.shutdown().await;
    for unit in &report.units {
        assert_eq!(unit.outcome, StopOutcome::Graceful, "{unit:?}");
    }
    assert_eq!(report.took, 10 * SEC);
}

/// Units added at run time stop concurrently among themselves, each as
/// soon as its own dependents have stopped, in the default order too.
#[tokio::test(start_paused = true)]
async fn added_units_stop_as_soon_as_their_own_dependents_stopped() {
    let log = AskLog::default();
    let handle = Supervisor::builder().build().unwrap().start();
    handle.add(logs_its_stop(&log, "db", 10 * SEC)).await.unwrap();
    handle.add(logs_its_stop(&log, "api", SEC).depends_on(["db"])).await.unwrap();
    handle.add(logs_its_stop(&log, "lone", 10 * SEC)).await.unwrap();
    wait_ready(DEADLINE, &handle, "api").await;
    let began = tokio::time::Instant::now();
    let report = handle.shutdown().await;
    let since = |name| asked_at(&log, name, Duration::ZERO);
    let (db, api) = (since("db"), since("api"));
    assert_eq!(db - api, SEC, "db asked once api stopped");
    assert_eq!(report.took, began.elapsed());
    assert_eq!(report.took, 11 * SEC);
}

/// With `ShutdownOrder::Concurrent`, `stop_unit` and `restart` stop the
/// dependents of a unit as a shutdown would: `api` and `web`, which do not
/// depend on each other, together, then `db`.
#[tokio::test(start_paused = true)]
async fn a_concurrent_order_stops_a_units_dependents_together_for_a_call() {
    let handle = Supervisor::builder()
        .shutdown_order(ShutdownOrder::Concurrent)
        .task(slow_to_stop("db", SEC))
        .task(slow_to_stop("api", SEC).depends_on(["db"]))
        .task(slow_to_stop("web", SEC).depends_on(["db"]))
        .build()
        .unwrap()
        .start();
    wait_ready(DEADLINE, &handle, "web").await;
    let began = tokio::time::Instant::now();
    handle.stop_unit("db").await.unwrap();
    assert_eq!(began.elapsed(), 2 * SEC, "api and web together, then db");
    for name in ["db", "api", "web"] {
        assert_eq!(handle.status(name).unwrap().state, UnitState::Stopped, "{name}");
    }
    handle.start_unit("api").await.unwrap();
    handle.start_unit("web").await.unwrap();
    wait_ready(DEADLINE, &handle, "web").await;
    let began = tokio::time::Instant::now();
    handle.restart("db").await.unwrap();
    assert_eq!(began.elapsed(), 2 * SEC, "the restart's stops too");
    wait_ready(DEADLINE, &handle, "web").await;
    handle.shutdown().await;
}

/// A unit at rest between two running ones still links them: with
/// `ShutdownOrder::Concurrent`, `stop_unit(db)` stops `api` before `db`
/// though `api` depends on `db` only through `migrate`, a one-shot job
/// that has done its work; and `web` through `mid`, a unit that gave up.
/// `restart(db)` does the same.
#[tokio::test(start_paused = true)]
async fn a_concurrent_call_stops_dependents_through_a_unit_at_rest_first() {
    let log = AskLog::default();
    let handle = Supervisor::builder()
        .shutdown_order(ShutdownOrder::Concurrent)
        .task(logs_its_stop(&log, "db", Duration::ZERO))
        .task(
            TaskSpec::new("migrate", |_ctx: Context| async { Ok::<(), String>(()) })
                .depends_on(["db"])
                .readiness(Readiness::Completed)
                .restart(RestartPolicy::new().on(RestartOn::Failure)),
        )
        .task(logs_its_stop(&log, "api", 2 * SEC).depends_on(["migrate"]))
        .task(
            TaskSpec::new("mid", |_ctx: Context| async { Err::<(), _>("gave up") })
                .depends_on(["db"])
                .restart(RestartPolicy::new().max_restarts(supervisor::MaxRestarts::AtMost(0))),
        )
        .task(logs_its_stop(&log, "web", 3 * SEC).depends_on(["mid"]))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "migrate", handle.wait_state("migrate", UnitState::Exited)).await.unwrap();
    within(DEADLINE, "mid", handle.wait_state("mid", UnitState::Failed)).await.unwrap();
    wait_ready(DEADLINE, &handle, "api").await;
    wait_ready(DEADLINE, &handle, "web").await;
    within(DEADLINE, "stop_unit", handle.stop_unit("db")).await.unwrap();
    let db_asked = asked_at(&log, "db", Duration::ZERO);
    assert!(db_asked >= asked_at(&log, "api stopped", Duration::ZERO), "{:?}", log.lock().unwrap());
    assert!(db_asked >= asked_at(&log, "web stopped", Duration::ZERO), "{:?}", log.lock().unwrap());
    handle.start_unit("api").await.unwrap();
    handle.start_unit("web").await.unwrap();
    wait_ready(DEADLINE, &handle, "web").await;
    within(DEADLINE, "restart", handle.restart("db")).await.unwrap();
    let db_asked = asked_at(&log, "db", Duration::ZERO);
    assert!(db_asked >= asked_at(&log, "web stopped", Duration::ZERO), "{:?}", log.lock().unwrap());
    handle.shutdown().await;
}

/// A shutdown that overtakes a call's stops (`stop_unit(db)`, waiting for
/// `api` to stop) asks an unrelated unit at once: the stops carried over
/// do not hold back the concurrent stage.
#[tokio::test(start_paused = true)]
async fn a_concurrent_shutdown_overtaking_a_calls_stops_asks_the_rest_at_once() {
    let log = AskLog::default();
    let began = tokio::time::Instant::now();
    let handle = Supervisor::builder()
        .shutdown_order(ShutdownOrder::Concurrent)
        .task(logs_its_stop(&log, "db", Duration::ZERO))
        .task(logs_its_stop(&log, "api", 10 * SEC).depends_on(["db"]))
        .task(logs_its_stop(&log, "lone", Duration::ZERO))
        .build()
        .unwrap()
        .start();
    wait_ready(DEADLINE, &handle, "api").await;
    let stop = tokio::spawn({
        let handle = handle.clone();
        async move { handle.stop_unit("db").await }
    });
    tokio::time::sleep(SEC).await;
    let shutdown_at = began.elapsed();
    let report = handle.shutdown().await;
    within(DEADLINE, "stop_unit", stop).await.unwrap().unwrap();
    assert_eq!(asked_at(&log, "lone", shutdown_at), Duration::ZERO, "{:?}", log.lock().unwrap());
    let order: Vec<_> = report.units.iter().map(|unit| unit.name.as_str()).collect();
    assert_eq!(order, ["lone", "api", "db"]);
}

/// A shutdown that overtakes a strategy's stops (`OneForAll`, waiting for
/// `c` to stop) asks `b` at once, which then stops gracefully within a
/// shutdown timeout shorter than `c`'s stop.
#[tokio::test(start_paused = true)]
async fn a_concurrent_shutdown_overtaking_a_strategy_does_not_cut_off_the_rest() {
    let log = AskLog::default();
    let crash = Arc::new(tokio::sync::Notify::new());
    let handle = Supervisor::builder()
        .shutdown_order(ShutdownOrder::Concurrent)
        .strategy(supervisor::Strategy::OneForAll)
        .shutdown_timeout(2 * SEC)
        .task(
            TaskSpec::new("a", {
                let crash = crash.clone();
                move |ctx: Context| {
                    let crash = crash.clone();
                    async move {
                        tokio::select! {
                            () = crash.notified() => Err::<(), _>("boom"),
                            () = ctx.cancelled() => Ok(()),
                        }
                    }
                }
            })
            .restart(RestartPolicy::new().delay(SEC)),
        )
        .task(logs_its_stop(&log, "b", Duration::ZERO))
        .task(logs_its_stop(&log, "c", 10 * SEC))
        .build()
        .unwrap()
        .start();
    wait_ready(DEADLINE, &handle, "c").await;
    crash.notify_one();
    within(DEADLINE, "c stopping", handle.wait_state("c", UnitState::Stopping)).await.unwrap();
    let report = handle.shutdown().await;
    let b = report.units.iter().find(|unit| unit.name == "b").unwrap();
    assert_eq!(b.outcome, StopOutcome::Graceful, "{report}");
    let c = report.units.iter().find(|unit| unit.name == "c").unwrap();
    assert_eq!(c.outcome, StopOutcome::Forced, "{report}");
}

#[tokio::test]
async fn a_unit_waits_for_a_tcp_probe_of_its_dependency() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let handle = Supervisor::builder()
        .daemon(listens_after("db", port, "0.5").readiness(Readiness::Probe(Probe::tcp(addr.clone()))))
        .task(idle("api").depends_on(["db"]))
        .build()
        .unwrap()
        .start();
    let waiting = wait_status(DEADLINE, &handle, "api", |status| {
        status.not_ready.as_deref().is_some_and(|why| why.contains("refused"))
    })
    .await;
    assert_eq!(waiting.state, UnitState::Waiting);
    let why = waiting.not_ready.unwrap();
    assert!(why.starts_with("waiting for `db` (not ready: tcp 127.0.0.1:") && why.contains("refused"), "{why}");
    let readiness = handle.health().await;
    assert!(!readiness.ready);
    assert!(
        readiness.reasons.iter().any(|reason| reason.contains("api") && reason.contains("waiting for `db`")),
        "{:?}",
        readiness.reasons
    );
    let api = wait_ready(DEADLINE, &handle, "api").await;
    assert_eq!(api.state, UnitState::Running);
    assert!(handle.status("db").unwrap().ready);
    handle.shutdown().await;
}

/// A waiting unit's reason names the dependencies that are not ready yet,
/// as they are when asked: one that has become ready drops out of it.
#[tokio::test]
async fn a_waiting_unit_names_what_it_still_waits_for() {
    let told = |name: &str, gate: &Arc<tokio::sync::Notify>| {
        let gate = gate.clone();
        TaskSpec::new(name, move |ctx: Context| {
            let gate = gate.clone();
            async move {
                gate.notified().await;
                ctx.ready();
                ctx.cancelled().await;
            }
        })
        .readiness(Readiness::Notified)
    };
    let (cache_gate, db_gate) = (Arc::new(tokio::sync::Notify::new()), Arc::new(tokio::sync::Notify::new()));
    let handle = Supervisor::builder()
        .task(told("cache", &cache_gate))
        .task(told("db", &db_gate))
        .task(idle("api").depends_on(["cache", "db"]))
        .build()
        .unwrap()
        .start();
    let both = "waiting for `cache` (running), `db` (running)";
    let waiting = wait_status(DEADLINE, &handle, "api", |status| status.not_ready.as_deref() == Some(both)).await;
    assert_eq!(waiting.state, UnitState::Waiting);
    cache_gate.notify_one();
    wait_ready(DEADLINE, &handle, "cache").await;
    let waiting = wait_status(DEADLINE, &handle, "api", |status| {
        status.not_ready.as_deref() == Some("waiting for `db` (running)")
    })
    .await;
    assert_eq!(waiting.state, UnitState::Waiting);
    let listed = handle.statuses().into_iter().find(|status| status.name == "api").expect("api is listed");
    assert_eq!(listed.not_ready.as_deref(), Some("waiting for `db` (running)"));
    db_gate.notify_one();
    let api = wait_ready(DEADLINE, &handle, "api").await;
    assert_eq!((api.state, api.not_ready), (UnitState::Running, None));
    handle.shutdown().await;
}

/// A one-shot job (policy: restart on failure) that says it is ready and
/// exits in the same moment, its dependent waiting for it: the dependent
/// starts. The runtime's only thread is held while the job speaks and
/// exits, so that its run hears the exit and the word at once: the exit
/// won, the word went unread, the job rested `Exited` without ever being
/// ready, and its dependent waited for ever.
async fn a_one_shot_job_ready_as_it_exits(readiness: Readiness, script: &str) {
    let job = sh("job", script).readiness(readiness).restart(RestartPolicy::new().on(RestartOn::Failure));
    let sup = Supervisor::builder()
        .daemon(job)
        .daemon(DaemonSpec::new("app", "sleep").arg("60").depends_on(["job"]))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    wait_status(DEADLINE, &handle, "job", |status| status.state == UnitState::Running).await;
    // Not `sleep().await`: nothing of the supervisor's may run meanwhile.
    std::thread::sleep(Duration::from_millis(1500));
    let seen =
        events_until(DEADLINE, &mut events, |event| event.unit == "job" && event.kind == EventKind::Finished).await;
    let job_said: Vec<&EventKind> = seen.iter().filter(|event| event.unit == "job").map(|event| &event.kind).collect();
    assert!(job_said.contains(&&EventKind::Ready), "{seen:#?}");
    assert_eq!(handle.status("job").unwrap().state, UnitState::Exited);
    let app = wait_status(DEADLINE, &handle, "app", |status| status.state == UnitState::Running).await;
    assert!(app.ready, "{app:?}");
    handle.shutdown().await;
}

#[tokio::test]
async fn a_one_shot_job_that_prints_its_ready_line_as_it_exits_lets_its_dependent_start() {
    a_one_shot_job_ready_as_it_exits(Readiness::OutputLine("migrated".to_owned()), "sleep 0.2; echo migrated").await;
}

/// Its ready line after 5,000 short lines, more than the reads at its
/// exit take before its output is read to the end: it was ready all the same.
#[tokio::test]
async fn a_one_shot_job_that_prints_its_ready_line_after_much_output_as_it_exits_is_ready() {
    let script = "sleep 0.2; yes '' | head -n 5000; echo migrated";
    a_one_shot_job_ready_as_it_exits(Readiness::OutputLine("migrated".to_owned()), script).await;
}

/// `READY=1` after a datagram of 70 `STATUS=` lines, more notifications
/// than the read at its exit takes before its group is gone.
#[tokio::test]
async fn a_one_shot_job_that_notifies_ready_after_many_notifications_as_it_exits_is_ready() {
    let script = "sleep 0.2; python3 -c \"import os, socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); \
        to = os.environ['NOTIFY_SOCKET']; s.sendto(b'STATUS=migrating\\n' * 70, to); s.sendto(b'READY=1', to)\"";
    a_one_shot_job_ready_as_it_exits(Readiness::Notified, script).await;
}

#[tokio::test]
async fn a_one_shot_job_that_notifies_ready_as_it_exits_lets_its_dependent_start() {
    let script = "sleep 0.2; python3 -c \"import os, socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\"";
    a_one_shot_job_ready_as_it_exits(Readiness::Notified, script).await;
}

/// A one-shot job marked `Readiness::Completed` (a migration) is ready once
/// a run ends well, and stays so at rest: what depends on it, directly or
/// through its group, starts only then; `wait_ready` returns it at rest,
/// and its status says it is ready (it said not ready, for ever, of a job
/// done). With the default readiness, the same job let its dependents start
/// with it.
#[tokio::test]
async fn units_wait_for_a_completed_one_shot_job_to_finish() {
    let migrated = Arc::new(AtomicBool::new(false));
    let job = |migrated: &Arc<AtomicBool>| {
        let migrated = migrated.clone();
        TaskSpec::new("migrate", move |_ctx| {
            let migrated = migrated.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                migrated.store(true, Ordering::SeqCst);
                Ok::<(), String>(())
            }
        })
        .readiness(Readiness::Completed)
        .restart(RestartPolicy::new().on(RestartOn::Failure))
    };
    let seen = Arc::new(AtomicBool::new(true));
    let api = |name: &str, depends: &str, seen: &Arc<AtomicBool>, migrated: &Arc<AtomicBool>| {
        let (seen, migrated) = (seen.clone(), migrated.clone());
        TaskSpec::new(name, move |ctx: Context| {
            let (seen, migrated) = (seen.clone(), migrated.clone());
            async move {
                seen.fetch_and(migrated.load(Ordering::SeqCst), Ordering::SeqCst);
                ctx.cancelled().await;
            }
        })
        .depends_on([depends])
    };
    let handle = Supervisor::builder()
        .task(job(&migrated))
        .task(api("api", "migrate", &seen, &migrated))
        .group(GroupSpec::new("storage").task(job(&migrated)))
        .task(api("reports", "storage", &seen, &migrated))
        .build()
        .unwrap()
        .start();
    let status = wait_ready(DEADLINE, &handle, "migrate").await;
    assert_eq!((status.state, status.ready, &status.not_ready), (UnitState::Exited, true, &None), "{status:?}");
    assert!(handle.status("migrate").unwrap().ready, "ready at rest");
    wait_ready(DEADLINE, &handle, "storage/migrate").await;
    wait_ready(DEADLINE, &handle, "api").await;
    wait_ready(DEADLINE, &handle, "reports").await;
    assert!(seen.load(Ordering::SeqCst), "a dependent started before the migration was done");
    handle.shutdown().await;
}

/// A unit restarted by hand is not ready from its stop until its new run
/// is: its group, not ready either meanwhile, lets nothing that depends on
/// it start. A `Completed` job in a group, restarted while it runs, kept
/// the group ready during its stop, and the group's dependent started
/// before the job's new run had finished (every time on one thread).
#[tokio::test]
async fn a_group_is_not_ready_while_a_unit_of_it_restarts_by_hand() {
    let job = TaskSpec::new("job", |ctx: Context| async move {
        tokio::select! {
            () = ctx.cancelled() => {}
            () = tokio::time::sleep(Duration::from_millis(300)) => {}
        }
        Ok::<(), String>(())
    })
    .readiness(Readiness::Completed)
    .restart(RestartPolicy::new().on(RestartOn::Failure));
    let sup =
        Supervisor::builder().group(GroupSpec::new("g").task(job)).task(idle("top").depends_on(["g"])).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    wait_status(DEADLINE, &handle, "g/job", |status| status.running).await;
    tokio::time::timeout(DEADLINE, handle.restart("g/job")).await.expect("in time").unwrap();
    let seen = events_until(DEADLINE, &mut events, |event| {
        event.unit == "top" && matches!(event.kind, EventKind::Started { .. })
    })
    .await;
    let job_events: Vec<String> =
        seen.iter().filter(|event| event.unit == "g/job").map(|event| event.kind.to_string()).collect();
    assert_eq!(
        job_events.last().map(String::as_str),
        Some("finished: its policy does not restart it"),
        "{job_events:?}"
    );
    assert_eq!(started(&seen).iter().filter(|unit| **unit == "g/job").count(), 2, "{seen:#?}");
    handle.shutdown().await;
}

/// A readiness check's error is kept as why the unit is not ready, and
/// sent in its `NotReady` event: cut to 64 KiB with a note, as a run's
/// error is; a 5 MB one was kept and sent whole.
#[tokio::test]
async fn a_huge_readiness_error_is_cut() {
    let huge = "x".repeat(5 << 20);
    let probe = Probe::check(move || {
        let huge = huge.clone();
        async move { Err::<(), _>(huge) }
    });
    let sup = Supervisor::builder().task(idle("api").readiness(Readiness::Probe(probe))).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let status = wait_status(DEADLINE, &handle, "api", |status| status.not_ready.is_some()).await;
    let why = status.not_ready.unwrap();
    assert!(why.len() < 70_000 && why.ends_with("bytes left out)"), "{} bytes", why.len());
    let seen = events_until(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::NotReady { .. })).await;
    let Some(EventKind::NotReady { reason: Some(reason) }) = seen.last().map(|event| &event.kind) else { panic!() };
    assert!(reason.len() < 70_000, "{} bytes", reason.len());
    handle.shutdown().await;
}

/// A one-shot job whose run fails, and that its policy lets rest, is not
/// done: its dependents wait, and `wait_ready` says it will not happen.
/// One whose policy would restart a success is refused by `build()`.
#[tokio::test]
async fn a_completed_one_shot_job_that_fails_is_not_done() {
    let failing = TaskSpec::new("migrate", |_ctx| async { Err::<(), _>("schema mismatch") })
        .readiness(Readiness::Completed)
        .restart(RestartPolicy::new().on(RestartOn::Never));
    let handle = Supervisor::builder().task(failing).task(idle("api").depends_on(["migrate"])).build().unwrap().start();
    let waited = tokio::time::timeout(DEADLINE, handle.wait_ready("migrate")).await.expect("an answer in time");
    assert!(matches!(waited, Err(Error::WillNotHappen { state: UnitState::Exited, .. })), "{waited:?}");
    assert_eq!(handle.status("api").unwrap().state, UnitState::Waiting);
    handle.shutdown().await;

    let restarting = TaskSpec::new("migrate", |_ctx| async {}).readiness(Readiness::Completed);
    let error = Supervisor::builder().task(restarting).build().expect_err("a job that never rests is refused");
    let message = error.to_string();
    assert!(message.contains("Readiness::Completed") && message.contains("RestartOn::Failure"), "{message}");
}

#[tokio::test]
async fn a_daemon_says_it_is_ready_over_the_notify_socket() {
    let notify = if std::path::Path::new("/usr/bin/systemd-notify").exists() {
        "sleep 0.3; systemd-notify --ready --status='warmed up'; exec sleep 60"
    } else {
        "sleep 0.3; python3 -c \"import os, socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b'READY=1\\nSTATUS=warmed up', os.environ['NOTIFY_SOCKET'])\"; exec sleep 60"
    };
    let handle = Supervisor::builder()
        .daemon(sh("db", notify).readiness(Readiness::Notified))
        .daemon(sh("plain", "echo \"socket=${NOTIFY_SOCKET:-none}\"; exec sleep 60"))
        .build()
        .unwrap()
        .start();
    let running = wait_status(DEADLINE, &handle, "db", |status| status.state == UnitState::Running).await;
    assert!(!running.ready, "not ready before READY=1");
    let db = wait_ready(DEADLINE, &handle, "db").await;
    assert_eq!(db.status_text.as_deref(), Some("warmed up"));
    wait_status(DEADLINE, &handle, "plain", |_| handle.tail("plain", 1).unwrap().len() == 1).await;
    assert_eq!(handle.tail("plain", 1).unwrap(), ["socket=none"], "a daemon that does not notify gets no socket");
    handle.shutdown().await;
}

/// `statusText`: "What the current run (or, between runs, the last one)
/// said of itself last". A run that said "fatal: disk full" and failed
/// left that text on the run after it, ready and well, until that one said
/// something else.
#[tokio::test]
async fn a_new_run_does_not_show_the_status_text_of_the_run_before() {
    let marker = std::env::temp_dir().join(format!("sup-status-text-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let send = |message: &str| {
        format!(
            "python3 -c \"import os, socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); \
             s.sendto(b'{message}', os.environ['NOTIFY_SOCKET'])\""
        )
    };
    let script = format!(
        "if [ ! -e '{marker}' ]; then touch '{marker}'; {fatal}; sleep 0.2; exit 1; fi; {ready}; exec sleep 60",
        marker = marker.display(),
        fatal = send("STATUS=fatal: disk full"),
        ready = send("READY=1"),
    );
    let restart = RestartPolicy::new().delay(Duration::from_millis(300));
    let handle = Supervisor::builder()
        .daemon(sh("db", &script).readiness(Readiness::Notified).restart(restart))
        .build()
        .unwrap()
        .start();
    let between = wait_status(DEADLINE, &handle, "db", |status| status.state == UnitState::Backoff).await;
    assert_eq!(between.status_text.as_deref(), Some("fatal: disk full"), "between runs, the last run's text");
    let db = wait_ready(DEADLINE, &handle, "db").await;
    assert_eq!((db.restart_count, db.status_text), (1, None), "the new run said nothing of itself");
    let _ = std::fs::remove_file(&marker);
    handle.shutdown().await;
}

#[tokio::test]
async fn a_line_of_output_makes_a_daemon_ready() {
    let handle = Supervisor::builder()
        .daemon(
            sh("web", "echo starting; sleep 0.3; echo 'listening on :8080'; exec sleep 60")
                .readiness(Readiness::OutputLine("listening on".to_owned())),
        )
        .build()
        .unwrap()
        .start();
    let web = wait_ready(DEADLINE, &handle, "web").await;
    assert!(
        handle.tail("web", 5).unwrap().iter().any(|line| line.contains("listening on")),
        "ready only after the line"
    );
    assert_eq!(web.state, UnitState::Running);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_task_says_it_is_ready() {
    let sup = Supervisor::builder()
        .task(
            TaskSpec::new("cache", |ctx: Context| async move {
                tokio::time::sleep(5 * SEC).await;
                ctx.ready();
                ctx.ready();
                ctx.cancelled().await;
            })
            .readiness(Readiness::Notified),
        )
        .task(idle("api").depends_on(["cache"]))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let began = tokio::time::Instant::now();
    wait_ready(DEADLINE, &handle, "api").await;
    assert_eq!(began.elapsed(), 5 * SEC);
    let seen = events_until(DEADLINE, &mut events, |event| {
        event.unit == "api" && matches!(event.kind, EventKind::Started { .. })
    })
    .await;
    let waiting: Vec<_> = seen
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::Waiting { on } => Some((event.unit.as_str(), on.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(waiting, [("api", vec!["cache".to_owned()])]);
    assert_eq!(seen.iter().filter(|event| matches!(event.kind, EventKind::Ready) && event.unit == "cache").count(), 1);
    handle.shutdown().await;
}

#[tokio::test]
async fn an_http_probe_waits_for_a_real_server() {
    let port = free_port();
    let dir = std::env::temp_dir();
    let handle = Supervisor::builder()
        .daemon(
            sh("web", &format!("sleep 0.3; exec python3 -m http.server {port} --bind 127.0.0.1"))
                .current_dir(&dir)
                .readiness(Readiness::Probe(Probe::http(format!("http://127.0.0.1:{port}/")))),
        )
        .build()
        .unwrap()
        .start();
    wait_ready(DEADLINE, &handle, "web").await;
    handle.shutdown().await;
}

#[tokio::test]
async fn an_exec_probe_and_a_check_decide_readiness() {
    let flag = std::env::temp_dir().join(format!("supervisor-exec-probe-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let open = Arc::new(AtomicBool::new(false));
    let seen = open.clone();
    let handle = Supervisor::builder()
        .task(idle("file").readiness(Readiness::Probe(Probe::exec([
            std::ffi::OsStr::new("test"),
            std::ffi::OsStr::new("-e"),
            flag.as_os_str(),
        ]))))
        .task(idle("gate").readiness(Readiness::Probe(Probe::check(move || {
            let open = seen.load(Ordering::SeqCst);
            async move { if open { Ok(()) } else { Err("the gate is closed") } }
        }))))
        .build()
        .unwrap()
        .start();
    let gate = wait_status(DEADLINE, &handle, "gate", |status| status.not_ready.is_some()).await;
    assert_eq!(gate.not_ready.as_deref(), Some("check: the gate is closed"));
    open.store(true, Ordering::SeqCst);
    wait_ready(DEADLINE, &handle, "gate").await;
    assert!(!handle.status("file").unwrap().ready);
    std::fs::write(&flag, b"").unwrap();
    wait_ready(DEADLINE, &handle, "file").await;
    let _ = std::fs::remove_file(&flag);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_liveness_probe_restarts_a_task_as_unhealthy() {
    let healthy = Arc::new(AtomicBool::new(true));
    let probe_sees = healthy.clone();
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let sup = Supervisor::builder()
        .task(
            TaskSpec::new("worker", move |ctx: Context| {
                counted.fetch_add(1, Ordering::SeqCst);
                async move { ctx.cancelled().await }
            })
            .liveness(
                Probe::check(move || {
                    let healthy = probe_sees.load(Ordering::SeqCst);
                    async move { if healthy { Ok(()) } else { Err("stuck") } }
                })
                .period(SEC)
                .failure_threshold(3),
            )
            .restart(RestartPolicy::new().delay(SEC)),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    wait_ready(DEADLINE, &handle, "worker").await;
    tokio::time::sleep(10 * SEC).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "a passing probe leaves it alone");
    healthy.store(false, Ordering::SeqCst);
    let seen = events_until(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Exited { .. })).await;
    let Some(EventKind::Exited { reason }) = seen.last().map(|event| &event.kind) else { unreachable!() };
    assert_eq!(reason, &ExitReason::Unhealthy("check: stuck".to_owned()));
    // Not ready from the moment it is found unhealthy, saying why once.
    let not_ready = seen.iter().find_map(|event| match &event.kind {
        EventKind::NotReady { reason } => reason.clone(),
        _ => None,
    });
    assert_eq!(not_ready.as_deref(), Some("being stopped: its liveness probe failed: check: stuck"));
    healthy.store(true, Ordering::SeqCst);
    let worker = wait_status(DEADLINE, &handle, "worker", |status| {
        status.restart_count == 1 && status.state == UnitState::Running
    })
    .await;
    assert!(worker.last_error.unwrap().contains("liveness probe failed: check: stuck"));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    handle.shutdown().await;
}

#[tokio::test]
async fn a_daemon_whose_liveness_probe_fails_is_killed_and_restarted() {
    let closed = free_port();
    let handle = Supervisor::builder()
        .daemon(
            DaemonSpec::new("zombie-ish", "sleep")
                .arg("60")
                .liveness(
                    Probe::tcp(format!("127.0.0.1:{closed}")).period(Duration::from_millis(50)).failure_threshold(2),
                )
                .restart(RestartPolicy::new().delay(Duration::from_secs(60))),
        )
        .build()
        .unwrap()
        .start();
    let first = wait_status(DEADLINE, &handle, "zombie-ish", |status| status.pid.is_some()).await.pid.unwrap();
    let backoff = wait_status(DEADLINE, &handle, "zombie-ish", |status| status.state == UnitState::Backoff).await;
    assert!(backoff.last_error.unwrap().contains("liveness probe failed: tcp 127.0.0.1:"));
    let gone =
        rustix::process::test_kill_process(rustix::process::Pid::from_raw(i32::try_from(first).unwrap()).unwrap());
    assert!(gone.is_err(), "the unhealthy process was stopped");
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_task_that_stops_its_heartbeats_is_hung() {
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let sup = Supervisor::builder()
        .task(
            TaskSpec::new("poller", move |ctx: Context| {
                let run = counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    for _ in 0..if run == 0 { 5 } else { u32::MAX } {
                        ctx.heartbeat();
                        tokio::select! {
                            () = ctx.cancelled() => return,
                            () = tokio::time::sleep(SEC) => {}
                        }
                    }
                    ctx.cancelled().await; // hangs: no more heartbeats
                }
            })
            .watchdog(3 * SEC)
            .restart(RestartPolicy::new().delay(SEC)),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let began = tokio::time::Instant::now();
    let seen = events_until(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Exited { .. })).await;
    assert!(matches!(seen.last().map(|event| &event.kind), Some(EventKind::Exited { reason: ExitReason::Hung })));
    assert_eq!(began.elapsed(), 7 * SEC, "the last heartbeat at 4 s, then a whole period");
    wait_status(DEADLINE, &handle, "poller", |status| status.restart_count == 1 && status.state == UnitState::Running)
        .await;
    tokio::time::sleep(60 * SEC).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2, "a run that beats in time is left alone");
    handle.shutdown().await;
}

/// A task that beats every `period` until it is asked to stop.
fn beating(name: &str, period: Duration) -> TaskSpec {
    TaskSpec::new(name, move |ctx: Context| async move {
        loop {
            ctx.heartbeat();
            tokio::select! {
                () = ctx.cancelled() => return,
                () = tokio::time::sleep(period) => {}
            }
        }
    })
}

/// `Context::heartbeat`: a run that calls it "less often than the
/// watchdog's period is hung"; one that calls it exactly that often is
/// not. The watchdog's timer and the task's, due at the same instant, were
/// heard watchdog first, and the run was judged hung at its first period.
#[tokio::test(start_paused = true)]
async fn a_task_that_beats_exactly_once_a_period_is_not_hung() {
    let sup = Supervisor::builder().task(beating("beats", SEC).watchdog(SEC)).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    tokio::time::sleep(60 * SEC).await;
    let status = handle.status("beats").unwrap();
    assert_eq!((status.state, status.restart_count, status.last_error), (UnitState::Running, 0, None));
    handle.shutdown().await;
    while let Ok(event) = events.try_recv() {
        assert!(!matches!(event.kind, EventKind::Exited { .. }), "{event:?}");
    }
}

/// The supervisor itself stopped for longer than a watchdog's period (here
/// its only thread blocked, as `SIGSTOP`, a suspended machine or a debugger
/// would stop it) while its runs went on beating: once it runs again, no
/// run is judged hung. The deadlines, past, were judged before the
/// `WATCHDOG=1`s waiting in the socket were read, or before the task's
/// heartbeat woken with them had run: both were restarted as hung.
#[tokio::test]
async fn runs_that_kept_beating_while_the_supervisor_was_stopped_are_not_hung() {
    let pinger = "import os, socket, time\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\nwhile True:\n    s.sendto(b'WATCHDOG=1', os.environ['NOTIFY_SOCKET'])\n    time.sleep(0.1)\n";
    let sup = Supervisor::builder()
        .daemon(DaemonSpec::new("daemon", "python3").args(["-c", pinger]).watchdog(SEC))
        .task(beating("task", SEC / 10).watchdog(SEC))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    wait_status(DEADLINE, &handle, "daemon", |status| status.running).await;
    tokio::time::sleep(SEC / 2).await;
    // Not `sleep().await`: nothing of the supervisor's runs meanwhile.
    std::thread::sleep(2 * SEC);
    tokio::time::sleep(2 * SEC).await;
    for name in ["daemon", "task"] {
        let status = handle.status(name).unwrap();
        assert_eq!((status.restart_count, status.last_error.as_deref()), (0, None), "{name}: {status:?}");
    }
    handle.shutdown().await;
    while let Ok(event) = events.try_recv() {
        assert!(!matches!(event.kind, EventKind::Exited { .. }), "{event:?}");
    }
}

#[tokio::test]
async fn a_daemon_is_hung_without_watchdog_pings_and_alive_with_them() {
    let pinger = "import os, socket, time\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\nprint('usec', os.environ['WATCHDOG_USEC'], flush=True)\nwhile True:\n    s.sendto(b'WATCHDOG=1', os.environ['NOTIFY_SOCKET'])\n    time.sleep(0.05)\n";
    // The pinger's period runs from the spawn: three seconds, since a
    // loaded machine can take more than a second to start Python and send
    // the first ping.
    let period = 3 * SEC;
    let handle = Supervisor::builder()
        .daemon(
            DaemonSpec::new("silent", "sleep")
                .arg("60")
                .watchdog(Duration::from_millis(300))
                .restart(RestartPolicy::new().on(RestartOn::Never)),
        )
        .daemon(DaemonSpec::new("pinger", "python3").args(["-c", pinger]).watchdog(period))
        .build()
        .unwrap()
        .start();
    let silent = wait_status(DEADLINE, &handle, "silent", |status| status.state == UnitState::Exited).await;
    assert!(silent.last_error.unwrap().contains("hung"), "{:?}", handle.status("silent"));
    // Once Python is up, past two more of the pinger's periods: its pings
    // keep it alive.
    wait_tail(DEADLINE, &handle, "pinger", "the pinger's first line", |tail| !tail.is_empty()).await;
    tokio::time::sleep(2 * period + SEC / 2).await;
    let pinger = handle.status("pinger").unwrap();
    assert_eq!((pinger.state, pinger.restart_count), (UnitState::Running, 0), "{pinger:?}");
    assert_eq!(handle.tail("pinger", 1).unwrap(), ["usec 3000000"]);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn control_calls_follow_the_dependencies() {
    let sup = Supervisor::builder()
        .task(idle("db"))
        .task(idle("api").depends_on(["db"]))
        .task(idle("web").depends_on(["api"]))
        .task(idle("other"))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    wait_ready(DEADLINE, &handle, "web").await;
    while events.try_recv().is_ok() {}

    handle.stop_unit("db").await.unwrap();
    let seen: Vec<Event> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert_eq!(stopped(&seen), ["web", "api", "db"]);
    assert_eq!(handle.status("other").unwrap().state, UnitState::Running);

    handle.start_unit("web").await.unwrap();
    wait_ready(DEADLINE, &handle, "web").await;
    let seen: Vec<Event> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert_eq!(started(&seen), ["db", "api", "web"], "start_unit starts what a unit needs");

    handle.restart("api").await.unwrap();
    wait_ready(DEADLINE, &handle, "web").await;
    let seen: Vec<Event> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert_eq!(stopped(&seen), ["web", "api"]);
    assert_eq!(started(&seen), ["api", "web"]);
    assert_eq!(handle.status("db").unwrap().restarts_total, 0, "what api needs is left running");

    let err = handle.remove("db").await.unwrap_err();
    assert!(matches!(err, Error::HasDependents { .. }), "{err}");
    assert!(err.to_string().contains("`api`"), "{err}");
    let report = handle.remove("web").await.unwrap();
    assert_eq!(report.outcome, StopOutcome::Graceful);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_dependency_restarted_by_its_policy_leaves_its_dependents_running_under_one_for_one() {
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let db = TaskSpec::new("db", move |ctx: Context| {
        let run = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            if run == 0 {
                tokio::time::sleep(SEC).await;
                return Err("crashed");
            }
            ctx.cancelled().await;
            Ok(())
        }
    });
    let handle = Supervisor::builder()
        .task(db.restart(RestartPolicy::new().delay(SEC)))
        .task(idle("api").depends_on(["db"]))
        .build()
        .unwrap()
        .start();
    wait_status(DEADLINE, &handle, "db", |status| status.restart_count == 1 && status.ready).await;
    let api = handle.status("api").unwrap();
    assert_eq!((api.state, api.restarts_total), (UnitState::Running, 0));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn units_added_at_run_time_may_depend_on_their_siblings() {
    let handle = Supervisor::builder().group(GroupSpec::new("g").task(idle("db"))).build().unwrap().start();
    handle.add_to("g", idle("api").depends_on(["db"])).await.unwrap();
    wait_ready(DEADLINE, &handle, "g/api").await;
    let err = handle.add_to("g", idle("web").depends_on(["apy"])).await.unwrap_err();
    assert!(err.to_string().contains("did you mean `api`?"), "{err}");
    handle.shutdown().await;
}

#[test]
fn every_bad_dependency_and_probe_is_reported_at_once() {
    let err = Supervisor::builder()
        .task(idle("a").depends_on(["b"]))
        .task(idle("b").depends_on(["c"]))
        .task(idle("c").depends_on(["a"]))
        .task(idle("self").depends_on(["self"]))
        .task(idle("typo").depends_on(["lonely"]))
        .task(idle("lone"))
        .task(idle("outside").depends_on(["db"]))
        .group(GroupSpec::new("storage").task(idle("db")))
        .daemon(DaemonSpec::new("d1", "x").readiness(Readiness::Probe(Probe::tcp("localhost"))))
        .daemon(DaemonSpec::new("d2", "x").readiness(Readiness::Probe(Probe::http("not a url"))))
        .daemon(DaemonSpec::new("d3", "x").liveness(Probe::exec(Vec::<String>::new())))
        .daemon(DaemonSpec::new("d4", "x").liveness(Probe::tcp("127.0.0.1:1").period(Duration::ZERO)))
        .daemon(DaemonSpec::new("d5", "x").liveness(Probe::tcp("127.0.0.1:1").failure_threshold(0)))
        .daemon(DaemonSpec::new("d6", "x").watchdog(Duration::ZERO))
        .task(idle("t1").readiness(Readiness::OutputLine("x".to_owned())))
        .build()
        .unwrap_err();
    let problems: Vec<String> = err.problems().iter().map(ToString::to_string).collect();
    let has = |needle: &str| {
        assert!(problems.iter().any(|problem| problem.contains(needle)), "no `{needle}` in {problems:#?}")
    };
    has("dependency cycle: a -> b -> c -> a");
    has("`self` depends on itself");
    has("`typo` depends on `lonely`, which is not a unit of its group (did you mean `lone`?)");
    has("`outside` depends on `db`, which is not a unit of its group (`storage/db` is in another group");
    has("readiness probe of `d1`");
    has("readiness probe of `d2`");
    has("liveness probe of `d3`");
    has("liveness probe period of `d4`");
    has("liveness probe failure_threshold of `d5`");
    has("watchdog of `d6`");
    has("readiness of `t1` is invalid: a task has no output to watch");
    assert_eq!(problems.len(), 11, "{problems:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_stop_by_hand_during_a_shutdown_does_not_cut_the_shutdown_short() {
    let slow = |name: &str| {
        TaskSpec::new(name, |ctx: Context| async move {
            ctx.cancelled().await;
            tokio::time::sleep(SEC).await;
        })
    };
    let handle = Supervisor::builder()
        .task(slow("db"))
        .task(slow("api").depends_on(["db"]))
        .task(slow("web").depends_on(["api"]))
        .build()
        .unwrap()
        .start();
    wait_ready(DEADLINE, &handle, "web").await;
    let shutting = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.shutdown().await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    handle.stop_unit("db").await.unwrap();
    let report = shutting.await.unwrap();
    let order: Vec<_> = report.units.iter().map(|unit| unit.name.as_str()).collect();
    assert_eq!(order, ["web", "api", "db"]);
    assert_eq!(report.took, 3 * SEC);
}

/// Checking dependencies finds each by name in constant time: a long chain
/// builds in about linear time (found quadratic: 1.4 s for 20k units in a
/// debug build, against 33 ms now).
#[test]
fn a_long_chain_of_dependencies_is_checked_in_linear_time() {
    const UNITS: usize = 50_000;
    let mut builder = Supervisor::builder();
    for i in 0..UNITS {
        let spec = idle(&format!("t{i}"));
        builder = builder.task(if i == 0 { spec } else { spec.depends_on([format!("t{}", i - 1)]) });
    }
    let began = std::time::Instant::now();
    let built = builder.build();
    let took = began.elapsed();
    assert!(built.is_ok());
    // Quadratic, this takes several seconds; linear, a few hundred ms at worst.
    assert!(took < Duration::from_secs(3), "{UNITS} chained units took {took:?} to check");
}

/// `ctx.ready()` may be called from anywhere, a thread outside the runtime
/// included: what it sets off (here, the start of a unit that waits for
/// it) still happens on the supervisor's runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_said_from_a_thread_outside_the_runtime_starts_what_waits() {
    let cache = TaskSpec::new("cache", |ctx: Context| async move {
        let told = ctx.clone();
        std::thread::spawn(move || told.ready()).join().expect("ready() from a plain thread");
        ctx.cancelled().await;
    })
    .readiness(Readiness::Notified);
    let handle = Supervisor::builder().task(cache).task(idle("api").depends_on(["cache"])).build().unwrap().start();
    let api = tokio::time::timeout(DEADLINE, handle.wait_ready("api")).await.expect("api started").unwrap();
    assert!(api.running);
    assert!(handle.status("cache").unwrap().ready);
    let report = handle.shutdown().await;
    assert!(report.units.iter().all(|line| line.outcome == StopOutcome::Graceful), "{report:?}");
}

/// A unit that others wait for says it is ready in a turn of its group's
/// owner taken on its own task, unless it says so inside a span of its own
/// code (the supervisor's log lines would carry that span): then it is told
/// by message. Either way, what waits for it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_said_inside_a_span_of_the_caller_starts_what_waits() {
    let cache = TaskSpec::new("cache", |ctx: Context| async move {
        {
            let _default = tracing::subscriber::set_default(tracing_subscriber::registry());
            let _warming = tracing::info_span!("warming").entered();
            assert!(!tracing::Span::current().is_none(), "the span is entered");
            ctx.ready();
        }
        ctx.cancelled().await;
    })
    .readiness(Readiness::Notified);
    let api = TaskSpec::new("api", |ctx: Context| async move {
        ctx.ready();
        ctx.cancelled().await;
    })
    .readiness(Readiness::Notified)
    .depends_on(["cache"]);
    let handle =
        Supervisor::builder().task(cache).task(api).task(idle("web").depends_on(["api"])).build().unwrap().start();
    let web = tokio::time::timeout(DEADLINE, handle.wait_ready("web")).await.expect("web started").unwrap();
    assert!(web.running);
    assert!(handle.status("api").unwrap().ready);
    let report = handle.shutdown().await;
    assert!(report.units.iter().all(|line| line.outcome == StopOutcome::Graceful), "{report:?}");
}

/// A group looks for a unit that holds it back from where it found one last
/// time: units that report ready one at a time cost
/// it one look each (found quadratic: 448 ms for 10k units in a release
/// build, against 9 ms now). On one worker, each report wakes the group's
/// owner at once, so that it sees them one at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_group_whose_units_become_ready_one_at_a_time_is_ready_in_linear_time() {
    const UNITS: usize = 20_000;
    let mut group = GroupSpec::new("many");
    for i in 0..UNITS {
        let spec = TaskSpec::new(format!("u{i}"), |ctx: Context| async move {
            ctx.ready();
            ctx.cancelled().await;
        });
        group = group.task(spec.readiness(Readiness::Notified));
    }
    let handle = Supervisor::builder().group(group).build().unwrap().start();
    let began = std::time::Instant::now();
    wait_ready(DEADLINE, &handle, "many").await;
    let took = began.elapsed();
    handle.shutdown().await;
    // Quadratic, this takes tens of seconds; linear, well under one.
    assert!(took < Duration::from_secs(5), "{UNITS} units took {took:?} to be ready");
}

/// A unit stopped and started again by hand while it waits is waiting more
/// than once under its dependency: it still starts once, when that
/// dependency becomes ready.
#[tokio::test(start_paused = true)]
async fn a_unit_stopped_and_started_while_it_waits_starts_once() {
    let (open, gate) = tokio::sync::watch::channel(false);
    let cache = TaskSpec::new("cache", move |ctx: Context| {
        let mut gate = gate.clone();
        async move {
            let _ = gate.wait_for(|open| *open).await;
            ctx.ready();
            ctx.cancelled().await;
        }
    })
    .readiness(Readiness::Notified);
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let api = TaskSpec::new("api", move |ctx: Context| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move { ctx.cancelled().await }
    })
    .depends_on(["cache"]);
    let sup = Supervisor::builder().task(cache).task(api).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    wait_status(DEADLINE, &handle, "api", |status| status.state == UnitState::Waiting).await;
    for _ in 0..3 {
        handle.stop_unit("api").await.unwrap();
        assert_eq!(handle.status("api").unwrap().state, UnitState::Stopped);
        handle.start_unit("api").await.unwrap();
        assert_eq!(handle.status("api").unwrap().state, UnitState::Waiting);
    }
    open.send(true).unwrap();
    wait_ready(DEADLINE, &handle, "api").await;
    // On the paused clock, this returns once every task has run.
    tokio::time::sleep(SEC).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "`api` started more than once");
    let mut starts = 0;
    while let Ok(event) = events.try_recv() {
        starts += usize::from(event.unit == "api" && matches!(event.kind, EventKind::Started { .. }));
    }
    assert_eq!(starts, 1);
    handle.shutdown().await;
}

/// A one-shot job: done after `took`; once cancelled it takes 3 s to stop.
fn one_shot(name: &str, took: Duration) -> TaskSpec {
    TaskSpec::new(name, move |ctx: Context| async move {
        tokio::select! {
            () = ctx.cancelled() => tokio::time::sleep(3 * SEC).await,
            () = tokio::time::sleep(took) => {}
        }
        Ok::<(), String>(())
    })
    .readiness(Readiness::Completed)
    .restart(RestartPolicy::new().on(RestartOn::Failure))
}

/// `/readyz` is ready when every unit that should run is ready, and a unit
/// restarted by hand is one that should run: an unfinished job being
/// stopped to start again made the supervisor ready during its stop (a
/// group holding the same job was not ready meanwhile).
#[tokio::test(start_paused = true)]
async fn a_unit_stopped_to_start_again_holds_readiness_back() {
    let handle = Supervisor::builder().task(one_shot("migrate", 10 * SEC)).build().unwrap().start();
    wait_status(DEADLINE, &handle, "migrate", |status| status.running).await;
    assert!(!handle.health().await.ready, "not ready while the job runs");
    let restarting = handle.clone();
    let restart = tokio::spawn(async move { restarting.restart("migrate").await });
    let stopping = wait_status(DEADLINE, &handle, "migrate", |status| status.state == UnitState::Stopping).await;
    assert!(stopping.holds_back_readiness, "{stopping:?}");
    let health = handle.health().await;
    assert!(!health.ready, "ready while the unfinished job is stopped to start again: {:?}", health.units);
    assert_eq!(health.units[0].reason, "being stopped to start again");
    restart.await.unwrap().unwrap();
    // A stop on request, not to start again, does not hold it back.
    let stopping = handle.clone();
    let stop = tokio::spawn(async move { stopping.stop_unit("migrate").await });
    let status = wait_status(DEADLINE, &handle, "migrate", |status| status.state == UnitState::Stopping).await;
    assert!(!status.holds_back_readiness, "{status:?}");
    assert!(handle.health().await.ready);
    stop.await.unwrap().unwrap();
    handle.shutdown().await;
}

/// A one-shot job that ended without completing, its policy running it no
/// more, holds `/readyz` back at the root as its group's readiness does
/// inside a group: the root said ready, the group not.
#[tokio::test(start_paused = true)]
async fn a_one_shot_job_that_failed_holds_readiness_back_at_the_root_as_in_a_group() {
    let failing = || {
        TaskSpec::new("migrate", |_ctx: Context| async { Err::<(), _>("schema mismatch") })
            .readiness(Readiness::Completed)
            .restart(RestartPolicy::new().on(RestartOn::Never))
    };
    let root = Supervisor::builder().task(failing()).build().unwrap().start();
    let status = wait_status(DEADLINE, &root, "migrate", |status| status.state == UnitState::Exited).await;
    assert!(status.holds_back_readiness, "{status:?}");
    let health = root.health().await;
    assert!(!health.ready, "{:?}", health.units);
    assert_eq!(health.units[0].reason, "ended without completing; its policy does not run it again");
    root.shutdown().await;
    let nested = Supervisor::builder().group(GroupSpec::new("db").task(failing())).build().unwrap().start();
    wait_status(DEADLINE, &nested, "db/migrate", |status| status.state == UnitState::Exited).await;
    assert!(!nested.health().await.ready);
    assert!(!nested.status("db").unwrap().ready);
    nested.shutdown().await;
}

/// A group "is ready when every unit of it that should run is ready": right
/// after a call started its done job again, `wait_ready` on the group
/// answered at once, ready, while the job ran (the group's record waits for
/// its parent's owner to hear of the change).
#[tokio::test(start_paused = true)]
async fn a_group_is_not_ready_from_the_moment_a_call_starts_its_job_again() {
    for call in ["restart", "start_unit"] {
        let group = GroupSpec::new("g").task(one_shot("job", 2 * SEC));
        let handle = Supervisor::builder().group(group).build().unwrap().start();
        wait_status(DEADLINE, &handle, "g/job", |status| status.state == UnitState::Exited).await;
        wait_ready(DEADLINE, &handle, "g").await;
        match call {
            "start_unit" => handle.start_unit("g/job").await.unwrap(),
            _ => handle.restart("g/job").await.unwrap(),
        }
        let group = handle.status("g").unwrap();
        assert!(!group.ready && group.holds_back_readiness, "{call}: {group:?}");
        let group = wait_ready(DEADLINE, &handle, "g").await;
        let job = handle.status("g/job").unwrap();
        assert_eq!(job.state, UnitState::Exited, "{call}: the group ready at {group:?} while its job is {job:?}");
        handle.shutdown().await;
    }
}

/// A unit being stopped on request, then asked to start again (`restart`,
/// `start_unit`) while its stop goes on, holds its group back from that
/// moment: its group's dependents, the events and the waits heard nothing
/// of it, and a dependent of the group started on it.
#[tokio::test(start_paused = true)]
async fn a_call_to_start_again_a_unit_being_stopped_holds_its_group_back_at_once() {
    for call in ["restart", "start_unit"] {
        let group = GroupSpec::new("g").task(slow_to_stop("x", 10 * SEC));
        let sup = Supervisor::builder().group(group).task(idle("d").depends_on(["g"])).build().unwrap();
        let mut events = sup.subscribe();
        let handle = sup.start();
        wait_ready(DEADLINE, &handle, "d").await;
        let stopping = handle.clone();
        let stop = tokio::spawn(async move { stopping.stop_unit("g/x").await });
        within(DEADLINE, "x stopping", handle.wait_state("g/x", UnitState::Stopping)).await.unwrap();
        let waiting = handle.clone();
        let held_back =
            tokio::spawn(async move { waiting.wait_status("g/x", |status| status.holds_back_readiness).await });
        let waiting = handle.clone();
        let group_not_ready = tokio::spawn(async move { waiting.wait_status("g", |status| !status.ready).await });
        tokio::time::sleep(10 * MS).await;
        let starting = handle.clone();
        let start = tokio::spawn(async move {
            match call {
                "restart" => starting.restart("g/x").await,
                _ => starting.start_unit("g/x").await,
            }
        });
        within(DEADLINE, "the wait on the unit", held_back).await.unwrap().unwrap();
        within(DEADLINE, "the wait on the group", group_not_ready).await.unwrap().unwrap();
        handle.stop_unit("d").await.unwrap();
        handle.start_unit("d").await.unwrap();
        tokio::time::sleep(100 * MS).await;
        assert_eq!(handle.status("d").unwrap().state, UnitState::Waiting, "{call}: `d` started on `g`, not ready");
        let seen = events_until(DEADLINE, &mut events, |event| {
            event.unit == "g" && matches!(event.kind, EventKind::NotReady { .. })
        })
        .await;
        assert!(!seen.is_empty(), "{call}");
        stop.await.unwrap().unwrap();
        start.await.unwrap().unwrap();
        wait_ready(DEADLINE, &handle, "d").await;
        handle.shutdown().await;
    }
}

/// A task ready on its first run only (`Readiness::Notified`).
fn ready_once(name: &str) -> TaskSpec {
    let first = Arc::new(AtomicBool::new(true));
    TaskSpec::new(name, move |ctx: Context| {
        let first = first.clone();
        async move {
            if first.swap(false, Ordering::SeqCst) {
                ctx.ready();
            }
            ctx.cancelled().await;
        }
    })
    .readiness(Readiness::Notified)
}

/// Three levels deep, right after a unit of the innermost group was
/// restarted and is not ready: the outer group said ready while the
/// inner one did not (a group's status looked one level down only), and
/// a dependent of the outer group, restarted next, started on it (the
/// word went up the tree by message, after the call had returned).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_is_not_ready_while_a_group_inside_it_is_not() {
    for round in 0..100 {
        let outer = GroupSpec::new("a").group(GroupSpec::new("b").task(ready_once("leaf")));
        let handle = Supervisor::builder().group(outer).task(idle("d").depends_on(["a"])).build().unwrap().start();
        wait_ready(DEADLINE, &handle, "d").await;
        handle.restart("a/b/leaf").await.unwrap();
        let (inner, outer) = (handle.status("a/b").unwrap(), handle.status("a").unwrap());
        assert!(!inner.ready && !outer.ready, "round {round}: {outer:?}\n{inner:?}");
        handle.restart("d").await.unwrap();
        let d = handle.status("d").unwrap();
        assert_eq!(d.state, UnitState::Waiting, "round {round}: `d` started on `a`, not ready: {d:?}");
        handle.shutdown().await;
    }
}

/// "A unit stopped on purpose does not" keep `/readyz` from being ready,
/// nor do the units of a group stopped on purpose: a one-shot job that had
/// failed in it held `/readyz` back until the group was started again.
#[tokio::test(start_paused = true)]
async fn the_units_of_a_group_stopped_on_purpose_hold_nothing_back() {
    let failing = TaskSpec::new("migrate", |_ctx: Context| async { Err::<(), _>("schema mismatch") })
        .readiness(Readiness::Completed)
        .restart(RestartPolicy::new().on(RestartOn::Never));
    let group = GroupSpec::new("g").task(failing).task(idle("other"));
    let handle = Supervisor::builder().group(group).task(idle("api")).build().unwrap().start();
    within(DEADLINE, "the job's end", handle.wait_state("g/migrate", UnitState::Exited)).await.unwrap();
    assert!(handle.status("g/migrate").unwrap().holds_back_readiness);
    assert!(!handle.health().await.ready);
    handle.stop_unit("g").await.unwrap();
    assert!(!handle.status("g/migrate").unwrap().holds_back_readiness);
    assert!(handle.statuses().iter().all(|status| !status.holds_back_readiness), "{:#?}", handle.statuses());
    let health = handle.health().await;
    assert!(health.ready, "the group was stopped on purpose: {:?}", health.reasons);
    handle.start_unit("g").await.unwrap();
    within(DEADLINE, "the job's end", handle.wait_state("g/migrate", UnitState::Exited)).await.unwrap();
    assert!(!handle.health().await.ready, "the job failed again in the group's new run");
    handle.shutdown().await;
}

/// Fails at once while `flag` is set, then idles; restarted with no delay.
fn fails_while(name: &str, flag: &Arc<AtomicBool>) -> TaskSpec {
    let flag = flag.clone();
    TaskSpec::new(name, move |ctx: Context| {
        let failing = flag.load(Ordering::SeqCst);
        async move {
            if failing {
                return Err("boom");
            }
            ctx.cancelled().await;
            Ok(())
        }
    })
    .restart(RestartPolicy::new().delay(Duration::ZERO))
}

/// Two levels deep, a group that stayed ready for its parent though a unit
/// of it was not for an instant said so again one level up only: a
/// dependent at the root, parked on the outer group in that instant,
/// waited for ever on a group that was ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependent_parked_on_a_nested_group_that_stayed_ready_starts() {
    for round in 0..5 {
        let (inner_fails, dependent_fails) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicBool::new(true)));
        let outer = GroupSpec::new("A").group(GroupSpec::new("B").task(fails_while("u", &inner_fails)));
        let handle = Supervisor::builder()
            .group(outer)
            .task(fails_while("x", &dependent_fails).depends_on(["A"]))
            .build()
            .unwrap()
            .start();
        tokio::time::sleep(100 * MS).await;
        dependent_fails.store(false, Ordering::SeqCst);
        tokio::time::sleep(20 * MS).await;
        inner_fails.store(false, Ordering::SeqCst);
        let started =
            tokio::time::timeout(DEADLINE, handle.wait_status("x", |status| status.state == UnitState::Running)).await;
        assert!(started.is_ok(), "round {round}: `x` waits on a ready `A`: {:#?}", handle.statuses());
        within(DEADLINE, "wait_ready(A)", handle.wait_ready("A")).await.unwrap();
        handle.shutdown().await;
    }
}

/// `migrate`, a one-shot job on `db` that is done once it exits well.
fn migration_on_db() -> DaemonSpec {
    sh("migrate", "exit 0")
        .depends_on(["db"])
        .readiness(Readiness::Completed)
        .restart(RestartPolicy::new().on(RestartOn::Failure))
}

/// A unit that depends on a database only through a migration that has
/// done its work needs that database all the same: restarted with it, by
/// hand or by `RestForOne` when the database dies, it waits for the
/// database to be ready again ("`restart` starts it again once `x` is
/// ready"), and says so. It started with the database's new run, before
/// that run listened, as if the migration done stood for the database.
#[tokio::test]
async fn a_unit_restarted_with_a_database_waits_for_it_through_a_migration_done() {
    for by_hand in [true, false] {
        let port = free_port();
        let sup = Supervisor::builder()
            .strategy(Strategy::RestForOne)
            .daemon(
                listens_after("db", port, "0.3")
                    .readiness(Readiness::Probe(Probe::tcp(format!("127.0.0.1:{port}"))))
                    .restart(RestartPolicy::new().delay(100 * MS)),
            )
            .daemon(migration_on_db())
            .daemon(sh("api", "exec sleep 60").depends_on(["migrate"]))
            .build()
            .unwrap();
        let mut events = sup.subscribe();
        let handle = sup.start();
        let api = wait_ready(DEADLINE, &handle, "api").await;
        let db = handle.status("db").unwrap();
        if by_hand {
            within(DEADLINE, "restart(db)", handle.restart("db")).await.unwrap();
        } else {
            let pid = rustix::process::Pid::from_raw(db.pid.unwrap().cast_signed()).unwrap();
            rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
        }
        let again = |event: &Event, name: &str, before: Option<u32>| {
            event.unit == name && matches!(event.kind, EventKind::Started { pid, .. } if pid != before)
        };
        let seen = events_until(DEADLINE, &mut events, |event| again(event, "api", api.pid)).await;
        let db_again = seen.iter().position(|event| again(event, "db", db.pid)).expect("db started again");
        let after: Vec<_> =
            seen[db_again..].iter().filter(|event| event.unit != "migrate").map(|event| &event.kind).collect();
        assert!(
            after.iter().any(|kind| matches!(kind, EventKind::Waiting { on } if on == &["db"]))
                && after.iter().any(|kind| matches!(kind, EventKind::Ready)),
            "by hand: {by_hand}; `api` started before `db` was ready: {after:#?}"
        );
        assert!(handle.status("db").unwrap().ready);
        assert_eq!(handle.status("migrate").unwrap().state, UnitState::Exited, "done, not run again");
        handle.shutdown().await;
    }
}

/// A wait on a unit that waits for a database through a migration done
/// wakes when the database changes, as a wait on a unit that depends on
/// it directly does ("whenever that unit, or one it depends on, changes"):
/// the unit's reason, which tells how the database is, went stale, and a
/// wait for it hung.
#[tokio::test]
async fn a_wait_on_a_unit_waiting_through_a_migration_done_hears_of_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("up");
    std::fs::write(&up, "").unwrap();
    let probe = Probe::exec(["test", "-e", up.to_str().unwrap()]).period(100 * MS).failure_threshold(1);
    let handle = Supervisor::builder()
        .daemon(sh("db", "exec sleep 60").readiness(Readiness::Probe(probe)))
        .daemon(migration_on_db())
        .daemon(sh("api", "exec sleep 60").depends_on(["migrate"]))
        .build()
        .unwrap()
        .start();
    wait_ready(DEADLINE, &handle, "api").await;
    std::fs::remove_file(&up).unwrap();
    within(DEADLINE, "restart(db)", handle.restart("db")).await.unwrap();
    let api = wait_status(DEADLINE, &handle, "api", |status| {
        status.not_ready.as_deref().is_some_and(|why| why.contains("exited with code 1"))
    })
    .await;
    assert_eq!(api.state, UnitState::Waiting);
    assert!(api.not_ready.unwrap().starts_with("waiting for `db` (not ready: exec `test -e "));
    std::fs::write(&up, "").unwrap();
    wait_ready(DEADLINE, &handle, "api").await;
    handle.shutdown().await;
}
