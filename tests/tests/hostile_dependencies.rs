//! Dependencies, readiness, probes and watchdogs under hostile and careless
//! input and timing: a readiness that flaps, a dependency that is forgotten
//! or stopped while its dependents start, `READY=1` from a process that was
//! not asked for it, garbage on the notify socket, signs of life from runs
//! that are over, long chains, tiny watchdogs.
//!
//! Every wait has a generous deadline, so that a hang fails instead of
//! blocking the suite.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use supervisor::{
    Context, DaemonSpec, Error, Event, EventKind, ExitReason, MaxRestarts, Probe, Readiness, RestartOn, RestartPolicy,
    StopOutcome, Supervisor, SupervisorHandle, TaskSpec, UnitState, UnitStatus,
};
use tokio::sync::broadcast;

#[path = "support/deadline.rs"]
mod deadline;
use deadline::{events_until, shutdown, wait_ready, wait_status};
#[path = "support/specs.rs"]
mod specs;
use specs::{idle, python, sh, slow_to_stop};

const SEC: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);
/// How long anything may take before a test fails: long enough for a
/// loaded machine, short enough that a hang fails.
const DEADLINE: Duration = Duration::from_secs(20);

/// A Python daemon that sends `ready` (`READY=1`, and more lines if it
/// likes) to its notify socket, runs until `SIGTERM`, then runs the Python
/// lines `on_term` (with `s.sendto(..., to)` to notify) and exits 0.
fn notifying_python(name: &str, ready: &str, on_term: &[&str]) -> DaemonSpec {
    let on_term: String = on_term.iter().map(|line| format!("    {line}\n")).collect();
    let program = format!(
        "import os, signal, socket, sys, time\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         to = os.environ['NOTIFY_SOCKET']\n\
         def term(*_):\n\
         {on_term}    sys.exit(0)\n\
         signal.signal(signal.SIGTERM, term)\n\
         s.sendto(b'{ready}', to)\n\
         while True:\n\
         \x20   time.sleep(0.05)\n"
    );
    python(name, &program).readiness(Readiness::Notified)
}

/// Waits until a line of `name`'s output contains `text`. Output is no
/// change of status, which a wait could wake on: this looks every 10 ms.
async fn output_has(handle: &SupervisorHandle, name: &str, text: &str) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !handle.tail(name, 1000).unwrap().iter().any(|line| line.contains(text)) {
        assert!(tokio::time::Instant::now() < deadline, "no `{text}` from `{name}`: {:?}", handle.tail(name, 20));
        tokio::time::sleep(10 * MS).await;
    }
}

fn is_started(event: &Event) -> bool {
    matches!(event.kind, EventKind::Started { .. })
}

fn is_stopped(event: &Event) -> bool {
    matches!(event.kind, EventKind::Stopped { .. })
}

/// Each report line's unit, in the report's order; asserts that no unit is
/// listed twice.
fn report_names(report: &supervisor::ShutdownReport) -> Vec<String> {
    let names: Vec<String> = report.units.iter().map(|line| line.name.clone()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "a unit is listed twice: {names:?}");
    names
}

/// Whether the process `pid` still exists and runs `needle` (its command
/// line contains it): a pid reused by another process does not count.
fn runs(pid: u32, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(needle))
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------
// Readiness: who may make a unit ready.
// ---------------------------------------------------------------------------

/// A sender of `READY=1` on `$NOTIFY_SOCKET`, then `sent` on stdout, then
/// `WATCHDOG=1` every 50 ms for ever (the unit has a watchdog, which is
/// what gives it a notify socket).
const SENDS_READY_THEN_PINGS: &str = "import os, socket, time\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\nprint('sent', flush=True)\nwhile True:\n    s.sendto(b'WATCHDOG=1', os.environ['NOTIFY_SOCKET'])\n    time.sleep(0.05)\n";

/// A unit whose readiness is a probe is ready once the probe has passed
/// (`Readiness::Probe`: "ready once the probe has passed
/// `success_threshold` times in a row"). A process of such a unit that has
/// a watchdog gets a notify socket for its `WATCHDOG=1` pings; a `READY=1`
/// it sends there must not stand in for the probe: the probe here never
/// passes, so neither the unit nor the one that depends on it may become
/// ready.
#[tokio::test]
async fn ready_1_does_not_make_a_daemon_whose_readiness_is_a_probe_ready() {
    let handle = Supervisor::builder()
        .daemon(
            python("db", SENDS_READY_THEN_PINGS)
                .readiness(Readiness::Probe(
                    Probe::check(|| async { Err::<(), _>("the database is not up") }).period(50 * MS),
                ))
                .watchdog(5 * SEC),
        )
        .task(idle("api").depends_on(["db"]))
        .build()
        .unwrap()
        .start();
    output_has(&handle, "db", "sent").await;
    // The datagram is in the socket by now; give the reader time to act.
    let became_ready = tokio::time::timeout(SEC, handle.wait_ready("db")).await;
    let db = handle.status("db").unwrap();
    let api = handle.status("api").unwrap();
    shutdown(DEADLINE, &handle).await;
    assert!(
        became_ready.is_err() && !db.ready,
        "a probe that never passed, yet `db` is ready (READY=1 taken as readiness): {db:?}"
    );
    assert_eq!(api.state, UnitState::Waiting, "`api` started although `db`'s probe never passed: {api:?}");
}

/// The same with an output line: `Readiness::OutputLine` is "ready once a
/// line of the process's output contains this text", not on `READY=1`.
#[tokio::test]
async fn ready_1_does_not_make_a_daemon_waiting_for_an_output_line_ready() {
    let handle = Supervisor::builder()
        .daemon(
            python("db", SENDS_READY_THEN_PINGS)
                .readiness(Readiness::OutputLine("accepting connections".to_owned()))
                .watchdog(5 * SEC),
        )
        .task(idle("api").depends_on(["db"]))
        .build()
        .unwrap()
        .start();
    output_has(&handle, "db", "sent").await;
    let became_ready = tokio::time::timeout(SEC, handle.wait_ready("db")).await;
    let db = handle.status("db").unwrap();
    let api = handle.status("api").unwrap();
    shutdown(DEADLINE, &handle).await;
    assert!(
        became_ready.is_err() && !db.ready,
        "no line says `accepting connections`, yet `db` is ready (READY=1 taken as readiness): {db:?}"
    );
    assert_eq!(api.state, UnitState::Waiting, "`api` started before `db`'s ready line: {api:?}");
}

/// Garbage on the notify socket is ignored (the docs: "datagrams larger
/// than 4096 bytes ... empty ones and ones containing a NUL byte" are
/// ignored whole, `READY=0` means nothing): none of it makes the unit
/// ready, even where the garbage holds `READY=1`. Then a flood of `READY=1`
/// makes it ready once.
#[tokio::test]
async fn garbage_on_the_notify_socket_never_makes_a_unit_ready_and_a_flood_makes_it_ready_once() {
    let flag = std::env::temp_dir().join(format!("hostile-notify-flag-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let program = format!(
        "import os, socket, time\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         to = os.environ['NOTIFY_SOCKET']\n\
         for junk in [b'READY=1\\n' + b'x' * 8000, b'READY=1\\0', b'READY=0', b'ready=1', b' READY=1', b'READY=1 ', b'\\xff\\xfe', b'=', b'READY', b'\\n\\n\\n']:\n\
         \x20   s.sendto(junk, to)\n\
         print('junk sent', flush=True)\n\
         while not os.path.exists({flag:?}):\n\
         \x20   time.sleep(0.01)\n\
         for _ in range(500):\n\
         \x20   s.sendto(b'STATUS=flooding\\nREADY=1', to)\n\
         print('flood sent', flush=True)\n\
         time.sleep(60)\n",
        flag = flag.to_str().unwrap()
    );
    let sup = Supervisor::builder()
        .daemon(python("db", &program).readiness(Readiness::Notified))
        .task(idle("api").depends_on(["db"]))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    output_has(&handle, "db", "junk sent").await;
    let early = tokio::time::timeout(Duration::from_millis(500), handle.wait_ready("db")).await;
    assert!(early.is_err(), "garbage made `db` ready: {:?}", handle.status("db"));
    assert_eq!(handle.status("api").unwrap().state, UnitState::Waiting);
    std::fs::write(&flag, b"").unwrap();
    wait_ready(DEADLINE, &handle, "api").await;
    output_has(&handle, "db", "flood sent").await;
    let db = wait_status(DEADLINE, &handle, "db", |status| status.status_text.as_deref() == Some("flooding")).await;
    assert!(db.ready);
    let _ = std::fs::remove_file(&flag);
    shutdown(DEADLINE, &handle).await;
    let mut ready_events = 0;
    while let Ok(event) = events.try_recv() {
        ready_events += usize::from(event.unit == "db" && matches!(event.kind, EventKind::Ready));
    }
    assert_eq!(ready_events, 1, "500 READY=1 make one readiness");
}

/// A context kept past the end of its run (in a task of its own) cannot
/// make a later run ready, nor can another unit's context: the unit that
/// depends on it waits on.
#[tokio::test(start_paused = true)]
async fn ready_from_a_context_of_an_ended_run_or_of_another_unit_changes_nothing() {
    let kept: Arc<Mutex<Vec<Context>>> = Arc::default();
    let keep = kept.clone();
    let db = TaskSpec::new("db", move |ctx: Context| {
        let keep = keep.clone();
        async move {
            if ctx.restart_count() == 0 {
                keep.lock().unwrap().push(ctx.clone());
                return Err("first run fails before it is ready");
            }
            ctx.cancelled().await; // never says it is ready again
            Ok(())
        }
    })
    .readiness(Readiness::Notified)
    .restart(RestartPolicy::new().delay(SEC));
    let other_keep = kept.clone();
    let other = TaskSpec::new("other", move |ctx: Context| {
        other_keep.lock().unwrap().push(ctx.clone());
        async move { ctx.cancelled().await }
    })
    .readiness(Readiness::Notified);
    let handle =
        Supervisor::builder().task(db).task(other).task(idle("api").depends_on(["db"])).build().unwrap().start();
    wait_status(DEADLINE, &handle, "db", |status| status.restart_count == 1 && status.state == UnitState::Running)
        .await;
    wait_status(DEADLINE, &handle, "other", |status| status.state == UnitState::Running).await;
    // Both contexts, the old run's first: from this task, and from a thread.
    let contexts = kept.lock().unwrap().clone();
    assert_eq!(contexts.len(), 2);
    for ctx in &contexts {
        ctx.ready();
        let ctx = ctx.clone();
        std::thread::spawn(move || ctx.ready()).join().unwrap();
    }
    tokio::time::sleep(5 * SEC).await;
    let db = handle.status("db").unwrap();
    assert!(!db.ready, "the ended run's context made the new run ready: {db:?}");
    assert_eq!(handle.status("api").unwrap().state, UnitState::Waiting);
    assert!(handle.status("other").unwrap().ready, "`other`'s own context makes `other` ready");
    shutdown(DEADLINE, &handle).await;
}

// ---------------------------------------------------------------------------
// Dependencies under changes at run time.
// ---------------------------------------------------------------------------

/// `add` says what `build()` would say of a spec, and a dependency cycle is
/// a `build()` error. A temporary unit that others depend on, forgotten when
/// it ends for good, would let a unit added under its name that depends on
/// its old dependent close a cycle `api -> db -> api`. It stays at rest
/// instead, as `remove` would refuse it (`HasDependents`), and the add is
/// refused as a duplicate.
#[tokio::test(start_paused = true)]
async fn a_temporary_dependency_stays_while_others_depend_on_it_so_no_cycle_can_close() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let opened = gate.clone();
    let db = TaskSpec::new("db", move |_ctx: Context| {
        let opened = opened.clone();
        async move { opened.notified().await }
    })
    .restart(RestartPolicy::new().on(RestartOn::Never))
    .temporary();
    let sup = Supervisor::builder().task(db).task(idle("api").depends_on(["db"])).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    wait_ready(DEADLINE, &handle, "api").await;
    gate.notify_one();
    events_until(DEADLINE, &mut events, |event| event.unit == "db" && matches!(event.kind, EventKind::Finished)).await;
    assert_eq!(handle.status("db").map(|db| db.state), Some(UnitState::Exited));
    let added = handle.add(idle("db").depends_on(["api"])).await;
    let names = handle.unit_names();
    let report = shutdown(DEADLINE, &handle).await;
    report_names(&report);
    assert!(
        matches!(added, Err(Error::DuplicateName { ref name }) if name == "db"),
        "adding `db` depending on `api`, which depends on `db`, gave {added:?} (units then: {names:?})"
    );
}

/// A unit waits for its dependency by name ("starts this unit only once
/// each of these units of its group is ready"). A temporary dependency that
/// a unit waits for ends for good without being ready: it stays, and the
/// unit keeps waiting however many units are added meanwhile, until the
/// dependency is started again and is ready.
#[tokio::test(start_paused = true)]
async fn a_unit_waiting_for_a_temporary_dependency_that_ended_starts_only_with_it() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let runs = Arc::new(AtomicU32::new(0));
    let (opened, counted) = (gate.clone(), runs.clone());
    let db = TaskSpec::new("db", move |ctx: Context| {
        let (opened, counted) = (opened.clone(), counted.clone());
        async move {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                opened.notified().await; // the first run never says it is ready
            } else {
                ctx.ready();
                ctx.cancelled().await;
            }
        }
    })
    .readiness(Readiness::Notified)
    .restart(RestartPolicy::new().on(RestartOn::Never))
    .temporary();
    let sup = Supervisor::builder().task(db).task(idle("api").depends_on(["db"])).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    wait_status(DEADLINE, &handle, "api", |status| status.state == UnitState::Waiting).await;
    gate.notify_one();
    events_until(DEADLINE, &mut events, |event| event.unit == "db" && matches!(event.kind, EventKind::Finished)).await;
    // Units added meanwhile, as a busy supervisor would add them.
    let mut early = Vec::new();
    for filler in ["filler-1", "filler-2", "filler-3"] {
        handle.add(idle(filler)).await.unwrap();
        wait_ready(DEADLINE, &handle, filler).await;
        let api = handle.status("api").unwrap();
        if api.state != UnitState::Waiting {
            early.push(format!("after `{filler}` was added: {:?}", api.state));
        }
    }
    handle.start_unit("db").await.unwrap();
    wait_ready(DEADLINE, &handle, "db").await;
    let started = tokio::time::timeout(DEADLINE, handle.wait_ready("api")).await;
    let api = handle.status("api").unwrap();
    shutdown(DEADLINE, &handle).await;
    assert!(early.is_empty(), "`api` started while `db` was not ready: {early:?}");
    assert!(matches!(started, Ok(Ok(_))), "`db` is back and ready, yet `api` still waits: {api:?}");
}

/// The README's `migrate`: a one-shot job (`RestartOn::Failure`) that a
/// unit depends on. It was ready, did its work and ended well (`Exited`):
/// its dependent, restarted by its own policy, runs again. It waited for
/// ever instead ("waiting for `migrate` (exited)"), so `/readyz` and
/// `wait_ready` never came back after the first crash of `api`. A job that
/// failed, and that its policy let rest, still holds its dependent back.
#[tokio::test(start_paused = true)]
async fn a_dependent_restarted_after_its_one_shot_dependency_finished_runs_again() {
    for job_fails in [false, true] {
        let api_runs = Arc::new(AtomicU32::new(0));
        let counted = api_runs.clone();
        let job = TaskSpec::new("migrate", move |_ctx: Context| async move {
            tokio::time::sleep(SEC).await;
            if job_fails { Err("no database") } else { Ok(()) }
        })
        .restart(RestartPolicy::new().on(if job_fails { RestartOn::Never } else { RestartOn::Failure }));
        let api = TaskSpec::new("api", move |ctx: Context| {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if run == 0 {
                    tokio::time::sleep(5 * SEC).await; // the job is done by then
                    return Err("crashed");
                }
                ctx.cancelled().await;
                Ok(())
            }
        })
        .depends_on(["migrate"])
        .restart(RestartPolicy::new().delay(SEC));
        let handle = Supervisor::builder().task(job).task(api).build().unwrap().start();
        let finished = wait_status(DEADLINE, &handle, "migrate", |status| status.state == UnitState::Exited).await;
        assert_eq!(finished.last_error.is_some(), job_fails, "{finished:?}");
        if job_fails {
            let api = wait_status(DEADLINE, &handle, "api", |status| status.state == UnitState::Waiting).await;
            assert_eq!(api.not_ready.as_deref(), Some("waiting for `migrate` (exited)"), "{api:?}");
            assert_eq!(api_runs.load(Ordering::SeqCst), 1, "`api` ran again on a job that failed");
        } else {
            let api = wait_status(DEADLINE, &handle, "api", |status| status.restarts_total == 1 && status.ready).await;
            assert_eq!((api.state, api_runs.load(Ordering::SeqCst)), (UnitState::Running, 2), "{api:?}");
        }
        shutdown(DEADLINE, &handle).await;
    }
}

/// "A unit being stopped is not ready: nothing starts on it." A task found
/// hung by its watchdog stops itself; its `ctx.ready()` during its grace
/// period made it ready again, and its dependent started on a run being
/// stopped. The same went for a liveness probe's stop.
#[tokio::test(start_paused = true)]
async fn a_run_found_hung_is_not_made_ready_by_its_own_word_while_it_stops() {
    let a = TaskSpec::new("a", |ctx: Context| async move {
        tokio::time::sleep(500 * MS).await; // a warm-up without heartbeats
        ctx.ready();
        ctx.cancelled().await;
        tokio::time::sleep(300 * MS).await;
    })
    .readiness(Readiness::Notified)
    .watchdog(300 * MS)
    .restart(RestartPolicy::new().delay(10 * SEC));
    let sup = Supervisor::builder().task(a).task(idle("b").depends_on(["a"])).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let seen = events_until(DEADLINE, &mut events, |event| {
        event.unit == "a" && matches!(event.kind, EventKind::Restarting { .. })
    })
    .await;
    assert!(seen.iter().any(|event| event.kind == EventKind::Exited { reason: ExitReason::Hung }), "{seen:#?}");
    assert!(!seen.iter().any(|event| event.kind == EventKind::Ready), "ready while being stopped: {seen:#?}");
    assert!(!seen.iter().any(|event| event.unit == "b" && is_started(event)), "`b` started on it: {seen:#?}");
    assert_eq!(handle.status("b").unwrap().state, UnitState::Waiting);
    shutdown(DEADLINE, &handle).await;
}

/// `OneForOne` "restarts the unit alone". While a `stop_unit` stopped a
/// unit with its dependent (a stop of 2 s), the group held back what every
/// other run said: a unit that crashed meanwhile stayed `Running` and
/// ready until the stop was over, then restarted late; one that said it
/// was ready was not, for as long.
#[tokio::test(start_paused = true)]
async fn a_stop_of_a_unit_with_dependents_does_not_freeze_the_other_units() {
    let crashes = TaskSpec::new("u", |_ctx: Context| async move {
        tokio::time::sleep(500 * MS).await;
        Err::<(), _>("boom")
    })
    .restart(RestartPolicy::new().delay(10 * MS));
    let says_ready = TaskSpec::new("n", |ctx: Context| async move {
        tokio::time::sleep(700 * MS).await;
        ctx.ready();
        ctx.cancelled().await;
    })
    .readiness(Readiness::Notified);
    let sup = Supervisor::builder()
        .task(slow_to_stop("d", 2 * SEC))
        .task(idle("dep").depends_on(["d"]))
        .task(crashes)
        .task(says_ready)
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    tokio::time::sleep(300 * MS).await;
    let stopping = tokio::spawn({
        let handle = handle.clone();
        async move { handle.stop_unit("d").await }
    });
    let seen = events_until(DEADLINE, &mut events, |event| event.unit == "n" && event.kind == EventKind::Ready).await;
    assert_eq!(handle.status("d").unwrap().state, UnitState::Stopping, "the stop is still under way");
    let restarted =
        seen.iter().any(|event| event.unit == "u" && matches!(event.kind, EventKind::Started { restart_count: 1, .. }));
    assert!(restarted, "`u` was not restarted during the stop: {seen:#?}");
    assert!(handle.status("n").unwrap().ready);
    stopping.await.unwrap().unwrap();
    assert_eq!(handle.status("dep").unwrap().state, UnitState::Stopped);
    shutdown(DEADLINE, &handle).await;
}

/// A group as a one-shot dependency: its critical `migrate` says it is
/// ready and ends well, which ends the group well (`Exited`). Its ready and
/// its end reached the group's owner in one burst, so the group never told
/// its parent it was ready, and `api` waited for ever.
#[tokio::test(start_paused = true)]
async fn a_group_that_did_its_work_lets_its_dependents_start() {
    let migrate = TaskSpec::new("migrate", |ctx: Context| async move {
        ctx.ready();
    })
    .readiness(Readiness::Notified)
    .critical()
    .restart(RestartPolicy::new().on(RestartOn::Never));
    let group = supervisor::GroupSpec::new("g").task(migrate).restart(RestartPolicy::new().on(RestartOn::Failure));
    let handle = Supervisor::builder().group(group).task(idle("api").depends_on(["g"])).build().unwrap().start();
    let api = wait_ready(DEADLINE, &handle, "api").await;
    assert_eq!(api.state, UnitState::Running);
    assert_eq!(handle.status("g").unwrap().state, UnitState::Exited);
    shutdown(DEADLINE, &handle).await;
}

/// "`stop_unit(x)` and `restart(x)` first stop what depends on `x`." `w`
/// depends on `d` and on `x`, and waits for `x`. While a call stops `d`
/// with its dependents (`v` takes a second to stop), `x` becomes ready:
/// that started `w`, which the call was stopping (a restart ran it twice).
#[tokio::test(start_paused = true)]
async fn a_dependent_being_stopped_with_its_dependency_is_not_started_by_another_one() {
    for restart in [false, true] {
        let w_runs = Arc::new(AtomicU32::new(0));
        let counted = w_runs.clone();
        let x = TaskSpec::new("x", |ctx: Context| async move {
            tokio::time::sleep(500 * MS).await;
            ctx.ready();
            ctx.cancelled().await;
        })
        .readiness(Readiness::Notified);
        let w = TaskSpec::new("w", move |ctx: Context| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move { ctx.cancelled().await }
        })
        .depends_on(["x", "d"]);
        let handle = Supervisor::builder()
            .task(idle("d"))
            .task(x)
            .task(w)
            .task(slow_to_stop("v", SEC).depends_on(["d"]))
            .build()
            .unwrap()
            .start();
        wait_status(DEADLINE, &handle, "w", |status| status.state == UnitState::Waiting).await;
        if restart {
            handle.restart("d").await.unwrap();
            wait_ready(DEADLINE, &handle, "w").await;
            assert_eq!(w_runs.load(Ordering::SeqCst), 1, "`w` ran once, after the restart of `d`");
        } else {
            handle.stop_unit("d").await.unwrap();
            assert_eq!(handle.status("w").unwrap().state, UnitState::Stopped);
            assert_eq!(w_runs.load(Ordering::SeqCst), 0, "`w` ran although its dependency was being stopped");
        }
        shutdown(DEADLINE, &handle).await;
    }
}

/// A run found hung "is not ready from then on": also while its group's
/// strategy is stopping a slow sibling (`RestForOne` after `a` failed).
/// Its loss of readiness was held back with the rest until that stop was
/// over, 5 s later, the unit shown ready all along.
#[tokio::test(start_paused = true)]
async fn a_run_found_hung_while_a_strategy_stops_siblings_is_not_ready_at_once() {
    let began = tokio::time::Instant::now();
    let x = TaskSpec::new("x", move |ctx: Context| async move {
        while began.elapsed() < 2 * SEC {
            ctx.heartbeat();
            tokio::time::sleep(100 * MS).await;
        }
        ctx.cancelled().await;
        tokio::time::sleep(3 * SEC).await;
    })
    .watchdog(SEC)
    .stop_timeout(10 * SEC)
    .restart(RestartPolicy::new().delay(60 * SEC));
    let a = TaskSpec::new("a", |ctx: Context| async move {
        if ctx.restart_count() == 0 {
            tokio::time::sleep(1800 * MS).await;
            return Err("crash");
        }
        ctx.cancelled().await;
        Ok(())
    });
    let handle = Supervisor::builder()
        .strategy(supervisor::Strategy::RestForOne)
        .task(x)
        .task(a)
        .task(slow_to_stop("b", 5 * SEC).stop_timeout(10 * SEC))
        .build()
        .unwrap()
        .start();
    tokio::time::sleep_until(began + 3500 * MS).await;
    assert_eq!(handle.status("b").unwrap().state, UnitState::Stopping, "the strategy's stop goes on");
    let x = handle.status("x").unwrap();
    assert!(!x.ready, "{x:?}");
    assert!(x.not_ready.as_deref().is_some_and(|why| why.starts_with("being stopped")), "{x:?}");
    shutdown(DEADLINE, &handle).await;
}

/// "`STATUS=...` ... are read for the whole run, its stop included": also
/// when the stop is a call's that stops the unit's dependents first. Those
/// texts were held back until the stop was over, and a restart's lost.
#[tokio::test]
async fn status_texts_sent_while_a_unit_with_dependents_stops_are_shown_at_once() {
    let handle = Supervisor::builder()
        .daemon(
            notifying_python(
                "db",
                "READY=1\\nSTATUS=serving",
                &["s.sendto(b'STATUS=flushing', to)", "time.sleep(1.5)"],
            )
            .stop_timeout(10 * SEC),
        )
        .task(idle("api").depends_on(["db"]))
        .build()
        .unwrap()
        .start();
    wait_status(DEADLINE, &handle, "db", |status| status.status_text.as_deref() == Some("serving")).await;
    let stopping = tokio::spawn({
        let handle = handle.clone();
        async move { handle.stop_unit("db").await }
    });
    let db = wait_status(DEADLINE, &handle, "db", |status| status.status_text.as_deref() == Some("flushing")).await;
    assert_eq!(db.state, UnitState::Stopping, "shown only once the stop was over: {db:?}");
    stopping.await.unwrap().unwrap();
    shutdown(DEADLINE, &handle).await;
}

/// `stop_unit(db)` stops what depends on `db` first, and a unit starts
/// only once each dependency is ready. A dependent started by hand while
/// its dependency is being stopped must therefore not end up running
/// beside a stopped dependency: `start_unit` either waits for the stop and
/// starts `db` again ("starts what x depends on if it is not running"),
/// or leaves `api` waiting.
#[tokio::test(start_paused = true)]
async fn a_dependent_started_while_its_dependency_stops_does_not_run_without_it() {
    let sup = Supervisor::builder().task(slow_to_stop("db", SEC)).task(idle("api").depends_on(["db"])).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    wait_ready(DEADLINE, &handle, "api").await;
    handle.stop_unit("api").await.unwrap();
    let stopping = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.stop_unit("db").await })
    };
    wait_status(DEADLINE, &handle, "db", |status| status.state == UnitState::Stopping).await;
    handle.start_unit("api").await.unwrap();
    let api_then = handle.status("api").unwrap();
    let db_then = handle.status("db").unwrap();
    tokio::time::timeout(DEADLINE, stopping).await.expect("the stop ends").unwrap().unwrap();
    // Let whatever follows the stop happen (on the paused clock, this
    // returns once every task is idle).
    tokio::time::sleep(5 * SEC).await;
    let api = handle.status("api").unwrap();
    let db = handle.status("db").unwrap();
    let mut trace = Vec::new();
    loop {
        match events.try_recv() {
            Ok(event) => trace.push(format!("{} {:?}", event.unit, event.kind)),
            Err(broadcast::error::TryRecvError::Empty) => break,
            Err(other) => panic!("{other:?}"),
        }
    }
    shutdown(DEADLINE, &handle).await;
    assert!(
        !api.running || db.ready,
        "`api` runs beside its stopped dependency: api {:?}, db {:?} (when start_unit returned: api {:?}, db {:?} \
         ready={}); events: {trace:#?}",
        api.state,
        db.state,
        api_then.state,
        db_then.state,
        db_then.ready
    );
}

/// Units added at run time stop concurrently among themselves, but a unit
/// is stopped before what it depends on ("`depends_on`: ... and stops it
/// before them"; in the sequential order "a unit can rely on the ones
/// registered before it until it has stopped"). An added `api` that
/// depends on an added `db` must have stopped before `db` is asked to stop.
#[tokio::test(start_paused = true)]
async fn an_added_unit_stops_before_the_added_unit_it_depends_on() {
    let log: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let unit = |name: &'static str, asked: &'static str, done: &'static str| {
        let log = log.clone();
        TaskSpec::new(name, move |ctx: Context| {
            let log = log.clone();
            async move {
                ctx.cancelled().await;
                log.lock().unwrap().push(asked);
                tokio::time::sleep(SEC).await;
                log.lock().unwrap().push(done);
            }
        })
    };
    let handle = Supervisor::builder().task(idle("registered")).build().unwrap().start();
    handle.add(unit("db", "db asked", "db done")).await.unwrap();
    handle.add(unit("api", "api asked", "api done").depends_on(["db"])).await.unwrap();
    wait_ready(DEADLINE, &handle, "api").await;
    let report = shutdown(DEADLINE, &handle).await;
    let names = report_names(&report);
    let log = log.lock().unwrap().clone();
    let at = |entry| log.iter().position(|seen| *seen == entry).unwrap_or_else(|| panic!("no `{entry}` in {log:?}"));
    assert!(
        at("api done") < at("db asked"),
        "`db` was asked to stop while `api`, which depends on it, still ran: {log:?} (report order {names:?}, took {:?})",
        report.took
    );
}

/// The same with the dependent added at run time depending on a unit
/// added before it, in a nested group (`add_to`).
#[tokio::test(start_paused = true)]
async fn an_added_unit_in_a_group_stops_before_the_added_unit_it_depends_on() {
    let db_stopped = Arc::new(AtomicBool::new(false));
    let seen_by_api = Arc::new(Mutex::new(None::<bool>));
    let flag = db_stopped.clone();
    let db = TaskSpec::new("db", move |ctx: Context| {
        let flag = flag.clone();
        async move {
            ctx.cancelled().await;
            flag.store(true, Ordering::SeqCst);
        }
    });
    let (flag, seen) = (db_stopped.clone(), seen_by_api.clone());
    let api = TaskSpec::new("api", move |ctx: Context| {
        let (flag, seen) = (flag.clone(), seen.clone());
        async move {
            ctx.cancelled().await;
            // Flushes to the database on the way out.
            tokio::time::sleep(100 * MS).await;
            *seen.lock().unwrap() = Some(flag.load(Ordering::SeqCst));
        }
    })
    .depends_on(["db"]);
    let handle = Supervisor::builder().group(supervisor::GroupSpec::new("g")).build().unwrap().start();
    handle.add_to("g", db).await.unwrap();
    handle.add_to("g", api).await.unwrap();
    wait_ready(DEADLINE, &handle, "g/api").await;
    shutdown(DEADLINE, &handle).await;
    assert_eq!(*seen_by_api.lock().unwrap(), Some(false), "`g/db` had already stopped when `g/api` finished stopping");
}

/// Adding a unit that depends on a unit that does not exist, on itself, or
/// on a unit of another group is refused with the typed error, and nothing
/// is added; re-adding a removed dependency after its dependent was
/// removed works, and the new dependent waits for it.
#[tokio::test(start_paused = true)]
async fn bad_dependencies_added_at_run_time_are_typed_errors_and_leave_nothing_behind() {
    let handle = Supervisor::builder()
        .task(idle("db"))
        .group(supervisor::GroupSpec::new("g").task(idle("inner")))
        .build()
        .unwrap()
        .start();
    wait_ready(DEADLINE, &handle, "db").await;
    let err = handle.add(idle("me").depends_on(["me"])).await.unwrap_err();
    assert!(matches!(err, Error::SelfDependency { ref unit } if unit == "me"), "{err:?}");
    let err = handle.add(idle("ghost-user").depends_on(["ghost"])).await.unwrap_err();
    assert!(matches!(err, Error::UnknownDependency { ref dependency, .. } if dependency == "ghost"), "{err:?}");
    let err = handle.add(idle("outsider").depends_on(["inner"])).await.unwrap_err();
    assert!(matches!(err, Error::UnknownDependency { .. }), "{err:?}");
    let err = handle.add_to("g", idle("x").depends_on(["db"])).await.unwrap_err();
    assert!(matches!(err, Error::UnknownDependency { ref unit, .. } if unit == "g/x"), "{err:?}");
    // Told where a unit of that name is, rather than a sibling of a close
    // name ("did you mean `inner`?", "did you mean `db`?").
    assert!(err.to_string().contains("(`db` is in another group:"), "{err}");
    let err = handle.add(idle("outer").depends_on(["inner"])).await.unwrap_err();
    assert!(err.to_string().contains("(`g/inner` is in another group:"), "{err}");
    let err = handle.add(idle("both").depends_on(["both", "ghost", "db"])).await.unwrap_err();
    assert_eq!(err.problems().len(), 2, "{err}");
    for name in ["me", "ghost-user", "outsider", "g/x", "both"] {
        assert!(handle.status(name).is_none(), "`{name}` was added although refused");
    }

    // Removed and added again, in the order that `remove` allows.
    handle.add(idle("api").depends_on(["db"])).await.unwrap();
    wait_ready(DEADLINE, &handle, "api").await;
    let err = handle.remove("db").await.unwrap_err();
    assert!(matches!(err, Error::HasDependents { .. }), "{err:?}");
    // In words that read for one dependent as for many.
    assert_eq!(err.to_string(), "cannot remove `db`: the units that depend on it must be removed first: `api`");
    handle.remove("api").await.unwrap();
    handle.remove("db").await.unwrap();
    let gate = Arc::new(tokio::sync::Notify::new());
    let opened = gate.clone();
    let db = TaskSpec::new("db", move |ctx: Context| {
        let opened = opened.clone();
        async move {
            opened.notified().await;
            ctx.ready();
            ctx.cancelled().await;
        }
    })
    .readiness(Readiness::Notified);
    handle.add(db).await.unwrap();
    handle.add(idle("api").depends_on(["db"])).await.unwrap();
    tokio::time::sleep(SEC).await;
    assert_eq!(handle.status("api").unwrap().state, UnitState::Waiting, "the re-added `api` waits for the new `db`");
    gate.notify_one();
    wait_ready(DEADLINE, &handle, "api").await;
    let report = shutdown(DEADLINE, &handle).await;
    report_names(&report);
}

/// A chain of 1000 units, registered backwards (each depends on the one
/// registered after it), starts in dependency order; a restart of its root
/// stops every unit newest first and starts them all again in order; the
/// shutdown stops each unit once, every dependent before its dependency.
#[tokio::test(start_paused = true)]
async fn a_chain_of_a_thousand_units_starts_restarts_at_the_root_and_stops_in_order() {
    const UNITS: usize = 1000;
    let name = |i: usize| format!("u{i:04}");
    let mut builder = Supervisor::builder().event_capacity(1 << 16);
    for i in (0..UNITS).rev() {
        let spec = idle(&name(i));
        builder = builder.task(if i == 0 { spec } else { spec.depends_on([name(i - 1)]) });
    }
    let sup = builder.build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let last = name(UNITS - 1);
    let seen = events_until(DEADLINE, &mut events, |event| event.unit == last && is_started(event)).await;
    let order: Vec<&str> = seen.iter().filter(|event| is_started(event)).map(|event| event.unit.as_str()).collect();
    let expected: Vec<String> = (0..UNITS).map(name).collect();
    assert_eq!(order, expected, "start order");

    tokio::time::timeout(DEADLINE, handle.restart(&name(0))).await.expect("the restart ends").unwrap();
    wait_ready(DEADLINE, &handle, &last).await;
    let seen: Vec<Event> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    let stops: Vec<&str> = seen.iter().filter(|event| is_stopped(event)).map(|event| event.unit.as_str()).collect();
    let starts: Vec<&str> = seen.iter().filter(|event| is_started(event)).map(|event| event.unit.as_str()).collect();
    let reversed: Vec<String> = (0..UNITS).rev().map(name).collect();
    assert_eq!(stops, reversed, "a restart of the root stops the chain newest first");
    assert_eq!(starts, expected, "and starts it again in order");

    let report = shutdown(DEADLINE, &handle).await;
    assert_eq!(report_names(&report), reversed);
    assert!(report.units.iter().all(|line| line.outcome == StopOutcome::Graceful), "{report:?}");
}

/// A dependency whose readiness probe flips between passing and failing at
/// every attempt, while its dependent keeps failing and being restarted
/// with no delay: the dependent is never started while the dependency is
/// not ready (as the events, emitted in order by the group's owner, tell).
#[tokio::test]
async fn a_flapping_dependency_never_has_its_dependent_started_while_not_ready() {
    let attempts = Arc::new(AtomicU32::new(0));
    let counted = attempts.clone();
    let flapping = Probe::check(move || {
        let attempt = counted.fetch_add(1, Ordering::SeqCst);
        async move { if attempt.is_multiple_of(2) { Ok(()) } else { Err("flap") } }
    })
    .period(5 * MS)
    .failure_threshold(1);
    let api = TaskSpec::new("api", |_ctx: Context| async move {
        tokio::time::sleep(3 * MS).await;
        Err::<(), _>("crashes soon")
    })
    .depends_on(["db"])
    .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::Unlimited));
    let sup = Supervisor::builder()
        .event_capacity(1 << 20)
        .task(idle("db").readiness(Readiness::Probe(flapping)))
        .task(api)
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    wait_status(DEADLINE, &handle, "api", |status| status.restarts_total >= 50).await;
    let report = shutdown(DEADLINE, &handle).await;
    report_names(&report);
    let mut db_ready = false;
    let (mut checked, mut flips) = (0, 0);
    loop {
        match events.try_recv() {
            Ok(event) => match (event.unit.as_str(), &event.kind) {
                ("db", EventKind::Ready) => {
                    db_ready = true;
                    flips += 1;
                }
                ("db", EventKind::NotReady { .. } | EventKind::Started { .. } | EventKind::Stopped { .. })
                | ("db", EventKind::Exited { .. }) => db_ready = false,
                ("api", EventKind::Started { .. }) => {
                    checked += 1;
                    assert!(db_ready, "`api` started (start #{checked}) while `db` was not ready");
                }
                _ => {}
            },
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => break,
            Err(lagged) => panic!("events lost: {lagged:?}"),
        }
    }
    assert!(checked >= 50 && flips >= 2, "{checked} starts, {flips} readiness flips");
}

// ---------------------------------------------------------------------------
// Output-line readiness.
// ---------------------------------------------------------------------------

/// The ready line written in pieces (across several writes, with pauses)
/// counts once its line ends; a line that never ends, or that holds the
/// text only before a carriage return, does not make the unit ready.
#[tokio::test]
async fn a_ready_line_split_across_writes_counts_once_it_ends() {
    let handle = Supervisor::builder()
        .daemon(
            sh("split", "printf 'listen'; sleep 0.2; printf 'ing '; sleep 0.2; printf 'on :80\\n'; exec sleep 60")
                .readiness(Readiness::OutputLine("listening on".to_owned())),
        )
        .daemon(
            sh("endless", "printf 'listening on :81'; exec sleep 60")
                .readiness(Readiness::OutputLine("listening on".to_owned())),
        )
        .task(idle("api").depends_on(["split"]))
        .task(idle("web").depends_on(["endless"]))
        .build()
        .unwrap()
        .start();
    wait_ready(DEADLINE, &handle, "api").await;
    assert!(handle.tail("split", 5).unwrap().contains(&"listening on :80".to_owned()));
    let early = tokio::time::timeout(SEC, handle.wait_ready("endless")).await;
    assert!(early.is_err(), "a line that never ended made `endless` ready");
    assert_eq!(handle.status("web").unwrap().state, UnitState::Waiting);
    shutdown(DEADLINE, &handle).await;
}

/// `Readiness::OutputLine`: ready once "a line of the process's output
/// contains this text". A line longer than 64 KiB is read in pieces; the
/// text in it must still be found where it straddles two pieces.
#[tokio::test]
async fn a_ready_text_in_a_long_line_is_found_across_its_pieces() {
    let program = "import sys, time\nsys.stdout.write('x' * 65530 + 'READY-MARK' + 'y' * 100 + '\\n')\nsys.stdout.flush()\nprint('written', flush=True)\ntime.sleep(60)\n";
    let handle = Supervisor::builder()
        .daemon(python("long", program).readiness(Readiness::OutputLine("READY-MARK".to_owned())))
        .build()
        .unwrap()
        .start();
    output_has(&handle, "long", "written").await;
    let became = tokio::time::timeout(2 * SEC, handle.wait_ready("long")).await;
    let status = handle.status("long").unwrap();
    shutdown(DEADLINE, &handle).await;
    assert!(
        became.is_ok() && status.ready,
        "the 65,640-byte line contains `READY-MARK`, yet `long` is not ready: {status:?}"
    );
}

// ---------------------------------------------------------------------------
// Probes and watchdogs.
// ---------------------------------------------------------------------------

/// Readiness probes that hang, panic (in the closure or in its future), or
/// answer at once: each fails or passes as it should, with its reason in
/// the dependent's status, and none holds up the shutdown.
#[tokio::test]
async fn probes_that_hang_or_panic_keep_dependents_waiting_with_the_reason() {
    let quick =
        |name: &str, probe: Probe| idle(name).readiness(Readiness::Probe(probe.period(20 * MS).timeout(50 * MS)));
    let handle = Supervisor::builder()
        .task(quick("hangs", Probe::check(std::future::pending::<Result<(), String>>)))
        .task(quick(
            "panics-in-future",
            Probe::check(|| async {
                if std::hint::black_box(true) {
                    panic!("probe future blew up");
                }
                Ok::<(), String>(())
            }),
        ))
        .task(quick(
            "panics-in-closure",
            Probe::check(|| -> std::future::Ready<Result<(), String>> { panic!("probe closure blew up") }),
        ))
        .task(quick("instant", Probe::check(|| std::future::ready(Ok::<(), String>(())))))
        .task(idle("a").depends_on(["hangs"]))
        .task(idle("b").depends_on(["panics-in-future"]))
        .task(idle("c").depends_on(["panics-in-closure"]))
        .task(idle("d").depends_on(["instant"]))
        .build()
        .unwrap()
        .start();
    wait_ready(DEADLINE, &handle, "d").await;
    for (dependent, reason) in
        [("a", "timed out after 50ms"), ("b", "probe future blew up"), ("c", "probe closure blew up")]
    {
        let status = wait_status(DEADLINE, &handle, dependent, |status| {
            status.not_ready.as_deref().is_some_and(|why| why.contains(reason))
        })
        .await;
        assert_eq!(status.state, UnitState::Waiting, "{status:?}");
    }
    let report = shutdown(DEADLINE, &handle).await;
    assert_eq!(report_names(&report).len(), 8);
}

/// A task whose liveness probe fails while the task is stopping (slowly,
/// as asked) during a shutdown: it is stopped once, gracefully, listed once,
/// and nothing is restarted.
#[tokio::test(start_paused = true)]
async fn a_liveness_probe_that_fails_during_a_shutdown_changes_nothing() {
    let stopping = Arc::new(AtomicBool::new(false));
    let (flag, probe_flag) = (stopping.clone(), stopping.clone());
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let worker = TaskSpec::new("worker", move |ctx: Context| {
        let flag = flag.clone();
        counted.fetch_add(1, Ordering::SeqCst);
        async move {
            ctx.cancelled().await;
            flag.store(true, Ordering::SeqCst);
            tokio::time::sleep(2 * SEC).await; // a long, graceful stop
        }
    })
    .liveness(
        Probe::check(move || {
            let sick = probe_flag.load(Ordering::SeqCst);
            async move { if sick { Err("sick while stopping") } else { Ok(()) } }
        })
        .period(100 * MS)
        .failure_threshold(1),
    )
    .restart(RestartPolicy::new().delay(Duration::ZERO));
    let sup = Supervisor::builder().task(worker).task(idle("api").depends_on(["worker"])).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    wait_ready(DEADLINE, &handle, "api").await;
    let report = shutdown(DEADLINE, &handle).await;
    assert_eq!(report_names(&report), ["api", "worker"]);
    let worker = report.units.iter().find(|line| line.name == "worker").unwrap();
    assert_eq!((worker.state, worker.outcome), (UnitState::Stopped, StopOutcome::Graceful), "{report:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "a unit was restarted during the shutdown");
    while let Ok(event) = events.try_recv() {
        assert!(
            !matches!(event.kind, EventKind::Restarting { .. } | EventKind::Exited { .. } | EventKind::GaveUp { .. }),
            "{event:?}"
        );
    }
}

/// Heartbeats from a context kept past the end of its run do not keep a
/// later run alive: each run has its own watchdog.
#[tokio::test(start_paused = true)]
async fn heartbeats_from_an_ended_runs_context_do_not_feed_the_next_runs_watchdog() {
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let sup = Supervisor::builder()
        .task(
            TaskSpec::new("poller", move |ctx: Context| {
                let run = counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    if run == 0 {
                        // A beater that outlives the run.
                        let kept = ctx.clone();
                        tokio::spawn(async move {
                            loop {
                                kept.heartbeat();
                                tokio::time::sleep(10 * MS).await;
                            }
                        });
                        return Err("first run ends at once");
                    }
                    ctx.cancelled().await; // no heartbeat of its own
                    Ok(())
                }
            })
            .watchdog(SEC)
            .restart(RestartPolicy::new().delay(Duration::ZERO)),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let began = tokio::time::Instant::now();
    let seen = events_until(DEADLINE, &mut events, |event| {
        matches!(event.kind, EventKind::Exited { reason: ExitReason::Hung })
    })
    .await;
    assert!(began.elapsed() <= 2 * SEC, "hung after {:?}", began.elapsed());
    assert!(seen.iter().any(|event| matches!(&event.kind, EventKind::Exited { reason: ExitReason::Error(_) })));
    shutdown(DEADLINE, &handle).await;
}

/// Watchdogs with tiny periods (a microsecond) on a task and a process,
/// restarted with no delay: they are found hung over and over, yet the
/// other units run undisturbed, the shutdown ends in time and lists each
/// unit once, and no process of theirs outlives the supervisor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_watchdogs_restarting_without_delay_let_the_shutdown_end_and_leave_no_process() {
    let marker = format!("{}.{}", 3000 + std::process::id() % 1000, std::process::id());
    let sup = Supervisor::builder()
        .event_capacity(1 << 20)
        .task(
            TaskSpec::new("beats-too-slowly", |ctx: Context| async move {
                loop {
                    ctx.heartbeat();
                    tokio::select! {
                        () = ctx.cancelled() => return,
                        () = tokio::time::sleep(MS) => {}
                    }
                }
            })
            .watchdog(Duration::from_micros(1))
            .restart(RestartPolicy::new().delay(Duration::ZERO)),
        )
        .daemon(
            DaemonSpec::new("silent", "sleep")
                .arg(&marker)
                .watchdog(Duration::from_micros(1))
                .restart(RestartPolicy::new().delay(Duration::ZERO)),
        )
        .task(idle("bystander"))
        .task(idle("dependent").depends_on(["bystander"]))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    wait_status(DEADLINE, &handle, "silent", |status| status.restarts_total >= 20).await;
    wait_status(DEADLINE, &handle, "beats-too-slowly", |status| status.restarts_total >= 20).await;
    assert_eq!(handle.status("dependent").unwrap().restarts_total, 0);
    let report = shutdown(DEADLINE, &handle).await;
    assert_eq!(report_names(&report).len(), 4);
    let mut pids = Vec::new();
    loop {
        match events.try_recv() {
            Ok(Event { unit, kind: EventKind::Started { pid: Some(pid), .. }, .. }) if unit == "silent" => {
                pids.push(pid);
            }
            Ok(_) => {}
            Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    assert!(!pids.is_empty());
    let alive: Vec<u32> = pids.into_iter().filter(|&pid| runs(pid, &marker)).collect();
    assert!(alive.is_empty(), "processes outlived the supervisor: {alive:?}");
}

/// A process that says `READY=1` only when asked to stop, and never on
/// its next run: the word that came during the stop makes neither run
/// ready, and its dependent waits on after the restart.
#[tokio::test]
async fn ready_1_sent_while_being_stopped_makes_nothing_ready() {
    let runs_file = std::env::temp_dir().join(format!("hostile-runs-{}", std::process::id()));
    let _ = std::fs::remove_file(&runs_file);
    let program = format!(
        "import os, signal, socket, sys, time\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         def term(*_):\n\
         \x20   for _ in range(5):\n\
         \x20       s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\n\
         \x20   time.sleep(0.3)\n\
         \x20   sys.exit(0)\n\
         signal.signal(signal.SIGTERM, term)\n\
         with open({path:?}, 'a') as f:\n\
         \x20   f.write('run\\n')\n\
         print('up', flush=True)\n\
         while True:\n\
         \x20   time.sleep(0.05)\n",
        path = runs_file.to_str().unwrap()
    );
    let handle = Supervisor::builder()
        .daemon(python("db", &program).readiness(Readiness::Notified))
        .task(idle("api").depends_on(["db"]))
        .build()
        .unwrap()
        .start();
    output_has(&handle, "db", "up").await;
    tokio::time::timeout(DEADLINE, handle.restart("db")).await.expect("the restart ends").unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !std::fs::read_to_string(&runs_file).is_ok_and(|runs| runs.lines().count() == 2) {
        assert!(tokio::time::Instant::now() < deadline, "no second run: {:?}", handle.status("db"));
        tokio::time::sleep(10 * MS).await;
    }
    let late = tokio::time::timeout(SEC, handle.wait_ready("db")).await;
    let db = handle.status("db").unwrap();
    let api = handle.status("api").unwrap();
    shutdown(DEADLINE, &handle).await;
    let _ = std::fs::remove_file(&runs_file);
    assert!(late.is_err() && !db.ready, "a READY=1 sent during the stop made a run ready: {db:?}");
    assert_eq!(api.state, UnitState::Waiting, "{api:?}");
}

/// The pids of every process whose command line contains `needle`.
fn processes_running(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok())
            && runs(pid, needle)
        {
            found.push(pid);
        }
    }
    found
}

/// Exec probes that hang (readiness cut at its timeout, liveness still
/// in its attempt when the shutdown comes, and one in a daemon's
/// dependency) leave no process behind: each attempt's process group is
/// killed at its timeout, and an attempt dropped mid-way kills its group
/// too.
#[tokio::test]
async fn hanging_exec_probes_leave_no_process_behind() {
    let marker = format!("{}.{}", 4000 + std::process::id() % 1000, std::process::id());
    let hang = |timeout: Duration| {
        Probe::exec(["sh", "-c", &format!("sleep {marker} & sleep {marker}")]).period(20 * MS).timeout(timeout)
    };
    let handle = Supervisor::builder()
        .task(idle("never-ready").readiness(Readiness::Probe(hang(100 * MS))))
        .task(idle("waits").depends_on(["never-ready"]))
        .daemon(
            DaemonSpec::new("probed", "sleep").arg("60").liveness(hang(Duration::from_secs(30)).failure_threshold(1)),
        )
        .build()
        .unwrap()
        .start();
    let why = wait_status(DEADLINE, &handle, "waits", |status| {
        status.not_ready.as_deref().is_some_and(|why| why.contains("timed out after 100ms"))
    })
    .await;
    assert_eq!(why.state, UnitState::Waiting);
    // The liveness attempt is in flight: its processes exist.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while processes_running(&marker).is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no probe ever ran");
        tokio::time::sleep(10 * MS).await;
    }
    let report = shutdown(DEADLINE, &handle).await;
    assert_eq!(report_names(&report).len(), 3);
    // Killed processes are reaped in the background: give them a moment.
    let deadline = tokio::time::Instant::now() + 5 * SEC;
    loop {
        let left = processes_running(&marker);
        if left.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "probe processes outlived the supervisor: {left:?}");
        tokio::time::sleep(10 * MS).await;
    }
}

/// Dropping every handle without a shutdown, while a dependent waits for
/// a daemon that never says it is ready, stops everything in the
/// background: no process of the supervisor's is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_while_dependents_wait_leaves_no_process() {
    let marker = format!("{}.{}", 5000 + std::process::id() % 1000, std::process::id());
    let handle = Supervisor::builder()
        .daemon(DaemonSpec::new("db", "sleep").arg(&marker).readiness(Readiness::Notified))
        .daemon(DaemonSpec::new("api", "sleep").arg(&marker).depends_on(["db"]))
        .build()
        .unwrap()
        .start();
    wait_status(DEADLINE, &handle, "api", |status| status.state == UnitState::Waiting).await;
    // `api` waits from the start, before `db` is spawned.
    wait_status(DEADLINE, &handle, "db", |status| status.running && status.pid.is_some()).await;
    assert_eq!(processes_running(&marker).len(), 1, "only `db` runs");
    drop(handle);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let left = processes_running(&marker);
        if left.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "processes outlived the dropped supervisor: {left:?}");
        tokio::time::sleep(10 * MS).await;
    }
}

/// Durations at their extremes (`Duration::MAX` periods, timeouts, delays
/// and watchdogs) and contexts used after the supervisor ended: nothing
/// panics, a probe that waits for ever keeps its dependent waiting, and
/// signs of life from a run that is over (from a task and from a plain
/// thread) do nothing.
#[tokio::test]
async fn extreme_durations_and_signs_of_life_after_the_end_do_not_panic() {
    let kept: Arc<Mutex<Option<Context>>> = Arc::default();
    let keep = kept.clone();
    let forever = |probe: Probe| {
        probe.period(Duration::MAX).timeout(Duration::MAX).initial_delay(Duration::MAX).failure_threshold(u32::MAX)
    };
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("told", move |ctx: Context| {
                *keep.lock().unwrap() = Some(ctx.clone());
                async move { ctx.cancelled().await }
            })
            .readiness(Readiness::Notified)
            .watchdog(Duration::MAX)
            .liveness(forever(Probe::check(|| async { Err::<(), _>("never asked") })))
            .stop_timeout(Duration::MAX),
        )
        .task(
            idle("probed")
                .readiness(Readiness::Probe(forever(Probe::tcp("127.0.0.1:9")).success_threshold(u32::MAX)))
                .restart(RestartPolicy::new().delay(Duration::MAX).max_delay(Duration::MAX)),
        )
        .task(idle("waits").depends_on(["probed", "told"]))
        .daemon(
            DaemonSpec::new("dog", "sleep").arg("60").watchdog(Duration::MAX).liveness(forever(Probe::exec(["false"]))),
        )
        .build()
        .unwrap()
        .start();
    wait_status(DEADLINE, &handle, "told", |status| status.running).await;
    let ctx = kept.lock().unwrap().clone().expect("the run kept its context");
    ctx.ready();
    ctx.heartbeat();
    wait_ready(DEADLINE, &handle, "told").await;
    wait_status(DEADLINE, &handle, "dog", |status| status.running).await;
    tokio::time::sleep(200 * MS).await;
    assert_eq!(handle.status("waits").unwrap().state, UnitState::Waiting);
    assert_eq!(handle.status("dog").unwrap().restarts_total, 0);
    let report = shutdown(DEADLINE, &handle).await;
    assert_eq!(report_names(&report).len(), 4);
    assert!(report.units.iter().all(|line| line.outcome == StopOutcome::Graceful), "{report:?}");
    // The supervisor has ended: these reach nobody.
    ctx.ready();
    ctx.heartbeat();
    let on_thread = ctx.clone();
    std::thread::spawn(move || {
        on_thread.ready();
        on_thread.heartbeat();
    })
    .join()
    .expect("signs of life after the end do not panic");
    assert!(ctx.is_cancelled());
}

/// The notify socket is "read for the whole run" (a sender such as
/// `systemd-notify` waits for its messages to be read). A daemon that,
/// asked to stop, reports its progress as it shuts down gracefully
/// (`STOPPING=1`, then a `STATUS=` per step, as systemd services do)
/// must be able to finish: its stop is graceful, not a `SIGKILL` after
/// the stop timeout because its notifications were no longer read and
/// its `sendto` blocked on the full socket.
#[tokio::test]
async fn a_daemon_that_reports_progress_while_it_stops_is_not_killed() {
    let on_term = [
        "s.sendto(b'STOPPING=1', to)",
        "for step in range(30):",
        "    s.sendto(b'STATUS=flushing %d/30' % step, to)",
        "print('clean exit', flush=True)",
    ];
    let sup = Supervisor::builder()
        .daemon(notifying_python("db", "READY=1", &on_term).stop_timeout(3 * SEC))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    wait_ready(DEADLINE, &handle, "db").await;
    let began = std::time::Instant::now();
    tokio::time::timeout(DEADLINE, handle.stop_unit("db")).await.expect("the stop ends").unwrap();
    let took = began.elapsed();
    let tail = handle.tail("db", 10).unwrap();
    shutdown(DEADLINE, &handle).await;
    let forced = std::iter::from_fn(|| events.try_recv().ok()).find_map(|event| match event.kind {
        EventKind::Stopped { forced, .. } if event.unit == "db" => Some(forced),
        _ => None,
    });
    assert!(
        forced == Some(false) && tail.iter().any(|line| line == "clean exit"),
        "the daemon blocked notifying during its stop and was killed after {took:?} (forced: {forced:?}, tail: {tail:?})"
    );
}

/// "A one-shot job has done its work, and its dependents restart without
/// it": a dependent started again by hand ran the done migration again
/// (`start_unit` started every need that was not running).
#[tokio::test(start_paused = true)]
async fn start_unit_of_a_dependent_does_not_run_a_done_job_again() {
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let migrate = TaskSpec::new("migrate", move |_ctx: Context| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<(), String>(()) }
    })
    .depends_on(["db"])
    .readiness(Readiness::Completed)
    .restart(RestartPolicy::new().on(RestartOn::Failure));
    let api = idle("api").depends_on(["db", "migrate"]);
    let handle = Supervisor::builder().task(idle("db")).task(migrate).task(api).build().unwrap().start();
    wait_ready(DEADLINE, &handle, "api").await;
    handle.stop_unit("api").await.unwrap();
    handle.start_unit("api").await.unwrap();
    wait_ready(DEADLINE, &handle, "api").await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the done migration ran again");
    assert_eq!(handle.status("migrate").unwrap().state, UnitState::Exited);
    // Its own need, stopped, is started again for the dependent.
    handle.stop_unit("db").await.unwrap();
    assert_eq!(handle.status("api").unwrap().state, UnitState::Stopped);
    handle.start_unit("api").await.unwrap();
    let api = wait_ready(DEADLINE, &handle, "api").await;
    assert!(api.ready);
    assert_eq!(handle.status("db").unwrap().state, UnitState::Running);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    shutdown(DEADLINE, &handle).await;
}

/// A task that is never ready on its own (`Readiness::Notified`) and fails
/// once `fail` says so.
fn fails_when_told(name: &str, fail: &tokio::sync::watch::Receiver<bool>) -> TaskSpec {
    let fail = fail.clone();
    TaskSpec::new(name, move |_ctx: Context| {
        let mut fail = fail.clone();
        async move {
            let _ = fail.wait_for(|fail| *fail).await;
            Err::<(), _>("no disk")
        }
    })
    .readiness(Readiness::Notified)
}

/// The answers of `wait_ready` on each of `names`, the waits begun before
/// `fail` is told (on this one thread, each runs up to its first look and
/// waits first): they are woken by the failure, not by a change of their
/// own unit.
async fn waits_across_a_failure(
    handle: &SupervisorHandle,
    names: &[&'static str],
    fail: &tokio::sync::watch::Sender<bool>,
) -> Vec<Result<UnitStatus, Error>> {
    let waits: Vec<_> = names
        .iter()
        .map(|&name| {
            let handle = handle.clone();
            tokio::spawn(async move { handle.wait_ready(name).await })
        })
        .collect();
    tokio::task::yield_now().await;
    fail.send_replace(true);
    let mut answers = Vec::new();
    for wait in waits {
        answers.push(tokio::time::timeout(DEADLINE, wait).await.expect("the wait ends").unwrap());
    }
    answers
}

/// A wait for a unit to be ready ends once only a start by hand could make
/// it so: its dependency gave up, directly or down a chain. The waits began
/// before (and are woken by the dependency's end, not by a change of their
/// own unit, which still waits) or after.
#[tokio::test]
async fn wait_ready_ends_once_a_dependency_gave_up() {
    let (fail, told) = tokio::sync::watch::channel(false);
    let db = fails_when_told("db", &told)
        .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(1)));
    let handle = Supervisor::builder()
        .task(db)
        .task(idle("api").depends_on(["db"]))
        .task(idle("web").depends_on(["api"]))
        .build()
        .unwrap()
        .start();
    let names = ["api", "web"];
    for (name, answer) in names.into_iter().zip(waits_across_a_failure(&handle, &names, &fail).await) {
        assert!(matches!(answer, Err(Error::WillNotHappen { .. })), "{name}: {answer:?}");
        assert_eq!(handle.status(name).unwrap().state, UnitState::Waiting, "{name}");
    }
    // Asked after: at once.
    let answer = tokio::time::timeout(DEADLINE, handle.wait_ready("web")).await.expect("at once");
    assert!(matches!(answer, Err(Error::WillNotHappen { .. })), "{answer:?}");
    shutdown(DEADLINE, &handle).await;
}

/// A unit stopped by hand, with the unit it depends on, can be started by
/// hand: the wait goes on, and ends ready once it is.
#[tokio::test]
async fn wait_ready_goes_on_while_a_unit_and_its_dependency_are_stopped_by_hand() {
    let handle = Supervisor::builder().task(idle("db")).task(idle("api").depends_on(["db"])).build().unwrap().start();
    wait_ready(DEADLINE, &handle, "api").await;
    // Its dependents go with it.
    handle.stop_unit("db").await.unwrap();
    assert_eq!(handle.status("api").unwrap().state, UnitState::Stopped);
    let mut wait = Box::pin(handle.wait_ready("api"));
    assert!(futures_util::FutureExt::now_or_never(wait.as_mut()).is_none(), "api, stopped by hand, can start again");
    // Its dependencies go with it.
    handle.start_unit("api").await.unwrap();
    let status = tokio::time::timeout(DEADLINE, wait).await.expect("the wait ends").unwrap();
    assert!(status.ready);
    shutdown(DEADLINE, &handle).await;
}

/// `restart` of a unit at rest starts it as `start_unit` does, with what
/// it depends on that is not running; what depends on it stays as it was.
/// It started the unit alone, which then waited for ever for a dependency
/// stopped by hand (and `wait_ready` with it). Also when a dependent waits
/// for the unit, which the restart stops first and starts again after it.
#[tokio::test(start_paused = true)]
async fn restart_of_a_unit_at_rest_starts_what_it_depends_on() {
    let handle = Supervisor::builder()
        .task(idle("db"))
        .task(idle("api").depends_on(["db"]))
        .task(idle("web").depends_on(["api"]))
        .build()
        .unwrap()
        .start();
    wait_ready(DEADLINE, &handle, "web").await;
    // Its dependents go with it.
    handle.stop_unit("db").await.unwrap();
    handle.restart("api").await.unwrap();
    assert!(wait_ready(DEADLINE, &handle, "api").await.running);
    assert!(handle.status("db").unwrap().ready);
    assert_eq!(handle.status("web").unwrap().state, UnitState::Stopped);

    handle.stop_unit("db").await.unwrap();
    handle.add(idle("cache").depends_on(["api"])).await.unwrap();
    assert_eq!(handle.status("cache").unwrap().state, UnitState::Waiting);
    handle.restart("api").await.unwrap();
    assert!(wait_ready(DEADLINE, &handle, "cache").await.running);
    assert!(handle.status("api").unwrap().ready && handle.status("db").unwrap().ready);
    shutdown(DEADLINE, &handle).await;
}

/// `start_unit` of a unit that waits for a dependency stopped by hand
/// starts that dependency, as for a unit at rest: the unit, active as it
/// waits, was otherwise left to wait for ever.
#[tokio::test(start_paused = true)]
async fn start_unit_of_a_waiting_unit_starts_what_it_waits_for() {
    let handle = Supervisor::builder().task(idle("db")).task(idle("api").depends_on(["db"])).build().unwrap().start();
    wait_ready(DEADLINE, &handle, "api").await;
    handle.stop_unit("db").await.unwrap();
    handle.add(idle("cache").depends_on(["api"])).await.unwrap();
    assert_eq!(handle.status("cache").unwrap().state, UnitState::Waiting);
    handle.start_unit("cache").await.unwrap();
    assert!(wait_ready(DEADLINE, &handle, "cache").await.running);
    assert!(handle.status("api").unwrap().ready && handle.status("db").unwrap().ready);
    shutdown(DEADLINE, &handle).await;
}

/// A wait for a unit of a group ends once the group gave up for good, as
/// the wait for the group does.
#[tokio::test]
async fn wait_ready_on_a_unit_ends_once_its_group_gave_up() {
    let (fail, told) = tokio::sync::watch::channel(false);
    let inner = supervisor::GroupSpec::new("inner")
        .intensity(1, Duration::from_secs(60))
        .restart(RestartPolicy::new().on(RestartOn::Never))
        .task(fails_when_told("x", &told).restart(RestartPolicy::new().delay(Duration::ZERO)));
    let outer = supervisor::GroupSpec::new("g").group(inner).task(idle("y"));
    let handle = Supervisor::builder().group(outer).task(idle("other")).build().unwrap().start();
    wait_ready(DEADLINE, &handle, "g/y").await;
    let answer = waits_across_a_failure(&handle, &["g/inner/x"], &fail).await.remove(0);
    assert!(matches!(answer, Err(Error::WillNotHappen { .. })), "{answer:?}");
    let group = tokio::time::timeout(DEADLINE, handle.wait_ready("g/inner")).await.expect("at once");
    assert!(matches!(group, Err(Error::WillNotHappen { .. })), "{group:?}");
    // Asked after: at once; the units beside the group run on.
    let answer = tokio::time::timeout(DEADLINE, handle.wait_ready("g/inner/x")).await.expect("at once");
    assert!(matches!(answer, Err(Error::WillNotHappen { .. })), "{answer:?}");
    assert!(handle.wait_ready("g/y").await.unwrap().ready);
    shutdown(DEADLINE, &handle).await;
}

/// A wait for a unit of a group ends once the group waits in vain, for a
/// dependency that gave up: the group's units rest until a start by hand,
/// as the wait for the group itself says. Two levels down, the waits begun
/// before (woken by the dependency's end) or after.
#[tokio::test]
async fn wait_ready_on_a_unit_ends_once_its_group_waits_in_vain() {
    let (fail, told) = tokio::sync::watch::channel(false);
    let db = fails_when_told("db", &told)
        .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(1)));
    let inner = supervisor::GroupSpec::new("inner").task(idle("y"));
    let app = supervisor::GroupSpec::new("app").depends_on(["db"]).task(idle("x")).group(inner);
    let handle = Supervisor::builder().task(db).group(app).build().unwrap().start();
    wait_status(DEADLINE, &handle, "app", |status| status.state == UnitState::Waiting).await;
    let names = ["app/x", "app/inner/y", "app/inner"];
    for (name, answer) in names.into_iter().zip(waits_across_a_failure(&handle, &names, &fail).await) {
        assert!(matches!(answer, Err(Error::WillNotHappen { .. })), "{name}: {answer:?}");
    }
    assert_eq!(handle.status("db").unwrap().state, UnitState::Failed);
    assert_eq!(handle.status("app").unwrap().state, UnitState::Waiting);
    // Asked after: at once.
    for name in names {
        let answer = tokio::time::timeout(DEADLINE, handle.wait_ready(name)).await.expect("at once");
        assert!(matches!(answer, Err(Error::WillNotHappen { .. })), "{name}: {answer:?}");
    }
    shutdown(DEADLINE, &handle).await;
}

/// A group that begins to wait in vain, restarted by its policy once its
/// dependency gave up, ends the waits for its units begun while it ran.
#[tokio::test]
async fn wait_ready_on_a_unit_ends_once_its_group_restarts_to_wait_in_vain() {
    let fails_once_told = |name: &str, told: &tokio::sync::watch::Receiver<bool>| {
        let told = told.clone();
        TaskSpec::new(name, move |_ctx: Context| {
            let mut told = told.clone();
            async move {
                let _ = told.wait_for(|fail| *fail).await;
                Err::<(), _>("no disk")
            }
        })
        .restart(RestartPolicy::new().max_restarts(MaxRestarts::AtMost(0)))
    };
    let (fail_db, db_told) = tokio::sync::watch::channel(false);
    let (fail_app, app_told) = tokio::sync::watch::channel(false);
    // Never ready: a wait on it is pending while the group runs.
    let never_ready = idle("x").readiness(Readiness::Notified);
    let app = supervisor::GroupSpec::new("app")
        .depends_on(["db"])
        .restart(RestartPolicy::new().delay(Duration::ZERO))
        .task(never_ready)
        .task(fails_once_told("job", &app_told).critical());
    let handle = Supervisor::builder().task(fails_once_told("db", &db_told)).group(app).build().unwrap().start();
    wait_status(DEADLINE, &handle, "app/x", |status| status.state == UnitState::Running).await;
    fail_db.send_replace(true);
    wait_status(DEADLINE, &handle, "db", |status| status.state == UnitState::Failed).await;
    let wait = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.wait_ready("app/x").await })
    };
    tokio::task::yield_now().await;
    // Its critical unit ends it, and its policy starts it again.
    fail_app.send_replace(true);
    let answer = tokio::time::timeout(DEADLINE, wait).await.expect("the wait ends").unwrap();
    assert!(matches!(answer, Err(Error::WillNotHappen { .. })), "{answer:?}");
    assert_eq!(handle.status("app").unwrap().state, UnitState::Waiting);
    shutdown(DEADLINE, &handle).await;
}

/// A wait for a group to be ready ends once a unit of it, down the tree,
/// gave up for good while the group runs on: the group would be ready only
/// once that unit is started by hand. A unit that its policy let end does
/// not hold the group back.
#[tokio::test]
async fn wait_ready_on_a_group_ends_once_a_unit_of_it_gave_up() {
    let (fail, told) = tokio::sync::watch::channel(false);
    let gives_up = RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(1));
    let inner = supervisor::GroupSpec::new("inner")
        .intensity(100, Duration::from_secs(60))
        .task(fails_when_told("x", &told).restart(gives_up))
        .task(idle("y"));
    let outer = supervisor::GroupSpec::new("outer").intensity(100, Duration::from_secs(60)).group(inner);
    let handle = Supervisor::builder().group(outer).task(idle("other")).build().unwrap().start();
    wait_ready(DEADLINE, &handle, "outer/inner/y").await;
    let names = ["outer", "outer/inner"];
    for (name, answer) in names.into_iter().zip(waits_across_a_failure(&handle, &names, &fail).await) {
        assert!(matches!(answer, Err(Error::WillNotHappen { .. })), "{name}: {answer:?}");
        assert_eq!(handle.status(name).unwrap().state, UnitState::Running, "{name} runs on");
    }
    assert_eq!(handle.status("outer/inner/x").unwrap().state, UnitState::Failed);
    shutdown(DEADLINE, &handle).await;
}

/// A wait for a unit that waits for a group ends once a unit of that group,
/// down the tree, gave up for good and holds it back: only a start by hand
/// could make the group ready. The group was not ready before either, so
/// its parent heard nothing new, and these waits were never woken: on the
/// units that wait for the group, down their chain, on one added at run
/// time, and on a group among them and its unit.
#[tokio::test]
async fn wait_ready_on_a_unit_waiting_for_a_group_ends_once_a_unit_of_the_group_gave_up() {
    let (fail, told) = tokio::sync::watch::channel(false);
    let gives_up = RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(1));
    let inner = supervisor::GroupSpec::new("inner").task(fails_when_told("db", &told).restart(gives_up));
    let storage = supervisor::GroupSpec::new("storage").group(inner).task(idle("cache"));
    let app = supervisor::GroupSpec::new("app").depends_on(["storage"]).task(idle("x"));
    let handle = Supervisor::builder()
        .group(storage)
        .task(idle("api").depends_on(["storage"]))
        .task(idle("web").depends_on(["api"]))
        .group(app)
        .build()
        .unwrap()
        .start();
    handle.add(idle("jobs").depends_on(["storage"])).await.unwrap();
    wait_status(DEADLINE, &handle, "web", |status| status.state == UnitState::Waiting).await;
    let names = ["api", "web", "jobs", "app", "app/x"];
    for (name, answer) in names.into_iter().zip(waits_across_a_failure(&handle, &names, &fail).await) {
        assert!(matches!(answer, Err(Error::WillNotHappen { .. })), "{name}: {answer:?}");
    }
    assert_eq!(handle.status("storage/inner/db").unwrap().state, UnitState::Failed);
    assert_eq!(handle.status("storage").unwrap().state, UnitState::Running);
    assert_eq!(handle.status("api").unwrap().state, UnitState::Waiting);
    // Asked after: at once.
    for name in names {
        let answer = tokio::time::timeout(DEADLINE, handle.wait_ready(name)).await.expect("at once");
        assert!(matches!(answer, Err(Error::WillNotHappen { .. })), "{name}: {answer:?}");
    }
    shutdown(DEADLINE, &handle).await;
}

/// The same when the unit that ends lets its group be ready at rest (its
/// policy let a run that was never ready end well) but leaves a unit that
/// depends on it waiting in vain: that unit holds the group back for good.
#[tokio::test]
async fn wait_ready_on_a_unit_waiting_for_a_group_ends_once_a_unit_of_it_waits_in_vain() {
    let (end, told) = tokio::sync::watch::channel(false);
    let ends = TaskSpec::new("seed", move |_ctx: Context| {
        let mut told = told.clone();
        async move {
            let _ = told.wait_for(|end| *end).await;
        }
    })
    .readiness(Readiness::Notified)
    .restart(RestartPolicy::new().on(RestartOn::Never));
    let storage = supervisor::GroupSpec::new("storage").task(ends).task(idle("db").depends_on(["seed"]));
    let handle =
        Supervisor::builder().group(storage).task(idle("api").depends_on(["storage"])).build().unwrap().start();
    wait_status(DEADLINE, &handle, "api", |status| status.state == UnitState::Waiting).await;
    let answer = waits_across_a_failure(&handle, &["api"], &end).await.remove(0);
    assert!(matches!(answer, Err(Error::WillNotHappen { .. })), "{answer:?}");
    assert_eq!(handle.status("storage/seed").unwrap().state, UnitState::Exited);
    assert_eq!(handle.status("storage/db").unwrap().state, UnitState::Waiting);
    shutdown(DEADLINE, &handle).await;
}

/// A unit restarted after the unit it depends on gave up, by its own policy
/// or with its group's strategy, waits for it in vain: a wait for it to be
/// ready, begun while it waited out its restart delay, ends as one asked
/// afterwards does. It hung: `Waiting` is no state such a wait wakes for,
/// and the dependency's end, which ends the waits down its chain, was long
/// past.
#[tokio::test(start_paused = true)]
async fn wait_ready_ends_once_a_unit_restarts_to_wait_in_vain() {
    let (fail, told) = tokio::sync::watch::channel(false);
    let (crash, crash_told) = tokio::sync::watch::channel(false);
    let gives_up = RestartPolicy::new().max_restarts(MaxRestarts::AtMost(0));
    // Crashes once told, in its first run only.
    let crashes = |name: &str| {
        let (told, runs) = (crash_told.clone(), Arc::new(AtomicU32::new(0)));
        TaskSpec::new(name, move |ctx: Context| {
            let (mut told, first) = (told.clone(), runs.fetch_add(1, Ordering::SeqCst) == 0);
            async move {
                if first {
                    let _ = told.wait_for(|crash| *crash).await;
                    return Err("crashed");
                }
                ctx.cancelled().await;
                Ok(())
            }
        })
        .restart(RestartPolicy::new().delay(SEC))
    };
    let group = supervisor::GroupSpec::new("g")
        .strategy(supervisor::Strategy::RestForOne)
        .task(fails_when_told("db", &told).readiness(Readiness::Started).restart(gives_up.clone()))
        .task(crashes("x"))
        .task(idle("api").depends_on(["db"]));
    let handle = Supervisor::builder()
        .task(fails_when_told("db", &told).readiness(Readiness::Started).restart(gives_up))
        .task(crashes("api").depends_on(["db"]))
        .group(group)
        .build()
        .unwrap()
        .start();
    wait_ready(DEADLINE, &handle, "api").await;
    wait_ready(DEADLINE, &handle, "g/api").await;
    fail.send_replace(true);
    for db in ["db", "g/db"] {
        wait_status(DEADLINE, &handle, db, |status| status.state == UnitState::Failed).await;
    }
    // `api` crashes, and so does `g/x`, which `g/api` comes after: each
    // waits out a second before it starts again.
    crash.send_replace(true);
    for api in ["api", "g/api"] {
        wait_status(DEADLINE, &handle, api, |status| status.state == UnitState::Backoff).await;
    }
    let waits: Vec<_> = ["api", "g/api"]
        .into_iter()
        .map(|name| {
            let handle = handle.clone();
            tokio::spawn(async move { handle.wait_ready(name).await })
        })
        .collect();
    for (name, wait) in ["api", "g/api"].into_iter().zip(waits) {
        let answer = tokio::time::timeout(DEADLINE, wait).await.expect("the wait ends").unwrap();
        assert!(matches!(answer, Err(Error::WillNotHappen { state: UnitState::Waiting, .. })), "{name}: {answer:?}");
        // Asked after: at once, alike.
        let answer = tokio::time::timeout(DEADLINE, handle.wait_ready(name)).await.expect("at once");
        assert!(matches!(answer, Err(Error::WillNotHappen { .. })), "{name}: {answer:?}");
    }
    shutdown(DEADLINE, &handle).await;
}

/// A one-shot job that is done lets its dependents start once what it
/// needed is ready: they wait for that through it. When what it needed
/// gave up while the job ran, the job's end leaves them waiting in vain,
/// and a wait for one of them to be ready ends then, as one asked
/// afterwards does. It hung: the end of a job done with its work woke only
/// the waits that its dependents' own changes concern, and theirs had none
/// (they wait on, for another unit).
#[tokio::test]
async fn wait_ready_ends_once_a_done_job_leaves_its_dependents_waiting_for_a_unit_that_gave_up() {
    let (fail, told) = tokio::sync::watch::channel(false);
    let (finish, finish_told) = tokio::sync::watch::channel(false);
    let migrate = TaskSpec::new("migrate", move |_ctx: Context| {
        let mut finish = finish_told.clone();
        async move {
            let _ = finish.wait_for(|finish| *finish).await;
            Ok::<(), String>(())
        }
    })
    .depends_on(["db"])
    .readiness(Readiness::Completed)
    .restart(RestartPolicy::new().on(RestartOn::Failure));
    let handle = Supervisor::builder()
        .task(
            fails_when_told("db", &told)
                .readiness(Readiness::Started)
                .restart(RestartPolicy::new().max_restarts(MaxRestarts::AtMost(0))),
        )
        .task(migrate)
        .task(idle("api").depends_on(["migrate"]))
        .task(idle("web").depends_on(["api"]))
        .build()
        .unwrap()
        .start();
    wait_status(DEADLINE, &handle, "migrate", |status| status.state == UnitState::Running).await;
    fail.send_replace(true);
    wait_status(DEADLINE, &handle, "db", |status| status.state == UnitState::Failed).await;
    let names = ["api", "web"];
    for (name, answer) in names.into_iter().zip(waits_across_a_failure(&handle, &names, &finish).await) {
        assert!(matches!(answer, Err(Error::WillNotHappen { .. })), "{name}: {answer:?}");
    }
    assert_eq!(handle.status("migrate").unwrap().state, UnitState::Exited);
    let api = handle.status("api").unwrap();
    assert_eq!(api.not_ready.as_deref(), Some("waiting for `db` (failed)"), "{api:?}");
    shutdown(DEADLINE, &handle).await;
}

/// A unit that its policy let end (`Exited`) does not hold its group back:
/// the wait for the group ends ready.
#[tokio::test]
async fn wait_ready_on_a_group_whose_unit_ended_by_its_policy_is_ready() {
    let done = TaskSpec::new("done", |_ctx: Context| async { Ok::<(), String>(()) })
        .restart(RestartPolicy::new().on(RestartOn::Never));
    let group = supervisor::GroupSpec::new("g").task(done).task(idle("y"));
    let handle = Supervisor::builder().group(group).build().unwrap().start();
    wait_status(DEADLINE, &handle, "g/done", |status| status.state == UnitState::Exited).await;
    let status = tokio::time::timeout(DEADLINE, handle.wait_ready("g")).await.expect("the wait ends").unwrap();
    assert!(status.ready);
    shutdown(DEADLINE, &handle).await;
}

/// A unit inside a group added at run time that depends on a unit of
/// another group is told where that unit is, as `build()` tells it of the
/// same group registered, and as `add` tells it of the added unit itself:
/// in the added group, or among the units running. The hint was left out.
#[tokio::test]
async fn a_unit_inside_an_added_group_is_told_where_its_unknown_dependency_is() {
    let storage = || {
        supervisor::GroupSpec::new("storage")
            .task(idle("db"))
            .group(supervisor::GroupSpec::new("cache").task(idle("warm").depends_on(["db"])))
    };
    let built = Supervisor::builder().group(storage()).build().expect_err("refused");
    assert!(built.to_string().contains("(`storage/db` is in another group:"), "{built}");
    let handle = Supervisor::builder().task(idle("keep")).build().unwrap().start();
    let added = handle.add(storage()).await.unwrap_err();
    assert_eq!(added.to_string(), built.to_string());
    let running = supervisor::GroupSpec::new("jobs").task(idle("job").depends_on(["keep"]));
    let err = handle.add(running).await.unwrap_err();
    assert!(err.to_string().contains("(`keep` is in another group:"), "{err}");
    assert_eq!(handle.unit_names(), ["keep"]);
    shutdown(DEADLINE, &handle).await;
}
