//! Faults and rough edges of the engine, each found when the library was
//! attacked or tried as a new user would: a shutdown whose first caller
//! gives up, control calls racing a unit's end, panicking panic payloads,
//! tasks that block their thread, restarts during a shutdown, the stop
//! order after a manual restart, events before `start()`, the unit's span
//! around a task's own logs, error chains, settings, signals, and pausing
//! restarts.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use supervisor::{
    Context, DaemonSpec, Error, EventKind, MaxRestarts, RestartOn, RestartPolicy, Signal, StopOutcome, Supervisor,
    TaskSpec, UnitState,
};

#[path = "support/specs.rs"]
mod specs;
#[path = "support/subscriber.rs"]
mod subscriber;
use specs::{idle, slow_to_stop};

const SEC: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn a_shutdown_whose_first_caller_gives_up_still_reports_the_truth_once() {
    let handle = Supervisor::builder()
        .task(idle("quick"))
        .task(TaskSpec::new("stubborn", |_ctx| std::future::pending::<()>()).stop_timeout(2 * SEC))
        .build()
        .unwrap()
        .start();
    handle.wait_ready("stubborn").await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(100), handle.shutdown()).await.is_err());
    let report = handle.shutdown().await;
    assert_eq!(report.exit_code(), 1, "{report}");
    let stubborn = report.units.iter().find(|unit| unit.name == "stubborn").unwrap();
    assert_eq!((stubborn.outcome, stubborn.took), (StopOutcome::Forced, 2 * SEC));
    assert_eq!(report.took, 2 * SEC);
    assert_eq!(report.units.len(), 2, "one shutdown, not two");
    assert_eq!(handle.shutdown().await, report);
}

#[tokio::test]
async fn start_unit_right_after_a_unit_ended_always_starts_it() {
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("once", move |_ctx| {
                counted.fetch_add(1, Ordering::SeqCst);
                async {}
            })
            .restart(RestartPolicy::new().on(RestartOn::Never)),
        )
        .build()
        .unwrap()
        .start();
    for round in 1..=300 {
        handle.wait_state("once", UnitState::Exited).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), round);
        handle.start_unit("once").await.unwrap();
        // The call has started a run: it ends, and the count has moved on.
        let mut events = handle.subscribe();
        if handle.status("once").unwrap().state != UnitState::Exited {
            while !matches!(events.recv().await.unwrap().kind, EventKind::Finished) {}
        }
    }
    handle.shutdown().await;
}

struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("the payload's drop panics too");
    }
}

#[tokio::test(start_paused = true)]
async fn a_panic_payload_whose_drop_panics_does_not_kill_the_unit() {
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("nasty", |_ctx| async {
                std::panic::panic_any(PanicsOnDrop);
                #[allow(unreachable_code)]
                ()
            })
            .restart(RestartPolicy::new().delay(SEC).max_restarts(MaxRestarts::AtMost(2))),
        )
        .task(idle("calm"))
        .build()
        .unwrap()
        .start();
    let nasty = handle.wait_state("nasty", UnitState::Failed).await.unwrap();
    assert_eq!(nasty.restart_count, 2, "it was restarted as its policy says");
    assert!(nasty.last_error.unwrap().contains("panicked when dropped"));
    handle.start_unit("nasty").await.unwrap();
    handle.stop_unit("nasty").await.unwrap();
    assert_eq!(handle.status("nasty").unwrap().state, UnitState::Stopped);
    assert_eq!(handle.status("calm").unwrap().state, UnitState::Running);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_blocks_its_thread_past_every_timeout_is_reported_abandoned() {
    let supervisor = Supervisor::builder()
        .shutdown_timeout(Duration::from_millis(200))
        .task(idle("polite"))
        .task(
            TaskSpec::new("blocker", |ctx: Context| async move {
                ctx.cancelled().await;
                std::thread::sleep(Duration::from_secs(3));
            })
            .stop_timeout(Duration::from_millis(100)),
        )
        .build()
        .unwrap();
    let mut events = supervisor.subscribe();
    let handle = supervisor.start();
    handle.wait_ready("blocker").await.unwrap();
    let began = std::time::Instant::now();
    let report = handle.shutdown().await;
    assert!(began.elapsed() < Duration::from_millis(2500), "the shutdown did not wait for the blocked thread");
    let blocker = report.units.iter().find(|unit| unit.name == "blocker").unwrap();
    assert_eq!(blocker.outcome, StopOutcome::Abandoned, "{report}");
    assert_eq!(report.exit_code(), 1);
    assert!(report.to_string().contains("abandoned"), "{report}");
    // Its subscribers learn that it stopped, by force, as they do of the
    // other (aborted too: the shutdown's time was up when its turn came).
    let mut stops = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let EventKind::Stopped { forced, .. } = event.kind {
            stops.push((event.unit, forced));
        }
    }
    assert_eq!(stops, [("blocker".to_owned(), true), ("polite".to_owned(), true)], "{report}");
}

#[tokio::test(start_paused = true)]
async fn nothing_is_restarted_once_a_shutdown_has_begun() {
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("crasher", move |_ctx| {
                counted.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>("crash") }
            })
            .restart(RestartPolicy::new().delay(Duration::from_millis(100))),
        )
        .task(slow_to_stop("slow", Duration::from_millis(1500)))
        .build()
        .unwrap()
        .start();
    handle.wait_ready("slow").await.unwrap();
    let before = runs.load(Ordering::SeqCst);
    let report = handle.shutdown().await;
    assert_eq!(report.took, Duration::from_millis(1500));
    assert!(runs.load(Ordering::SeqCst) <= before + 1, "restarted during the shutdown");
    assert_eq!(handle.status("crasher").unwrap().state, UnitState::Stopped);
}

#[tokio::test(start_paused = true)]
async fn a_manual_restart_keeps_the_units_place_in_the_stop_order() {
    let handle = Supervisor::builder().task(idle("a")).task(idle("b")).task(idle("c")).build().unwrap().start();
    handle.wait_ready("c").await.unwrap();
    handle.restart("a").await.unwrap();
    handle.stop_unit("b").await.unwrap();
    handle.start_unit("b").await.unwrap();
    let report = handle.shutdown().await;
    let order: Vec<_> = report.units.iter().map(|unit| unit.name.as_str()).collect();
    assert_eq!(order, ["c", "b", "a"]);
}

#[tokio::test]
async fn a_subscriber_from_before_start_misses_no_event() {
    let mut builder = Supervisor::builder().event_capacity(4096);
    for i in 0..1000 {
        builder = builder.task(idle(&format!("t{i}")));
    }
    let sup = builder.build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let mut started = 0;
    while started < 1000 {
        if let EventKind::Started { .. } = events.recv().await.expect("no event lost").kind {
            started += 1;
        }
    }
    handle.shutdown().await;
}

/// Collects what `tracing` prints, for the span test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_tasks_own_logs_carry_its_units_path() {
    let captured = Captured::default();
    let writer = captured.clone();
    let lines = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).without_time().finish();
    let _subscriber = subscriber::on_this_thread(lines);
    let handle = Supervisor::builder()
        .group(
            supervisor::GroupSpec::new("jobs").task(
                TaskSpec::new("reporter", |_ctx| async {
                    tracing::info!("hello from inside the task");
                })
                .restart(RestartPolicy::new().on(RestartOn::Never)),
            ),
        )
        .build()
        .unwrap()
        .start();
    handle.wait_state("jobs/reporter", UnitState::Exited).await.unwrap();
    handle.shutdown().await;
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = text.lines().find(|line| line.contains("hello from inside the task")).expect("logged");
    assert!(line.contains("unit{unit=jobs/reporter}"), "{line}");
}

#[tokio::test(start_paused = true)]
async fn last_error_keeps_an_anyhow_errors_whole_chain() {
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("db", |_ctx| async {
                let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
                Err::<(), _>(anyhow::Error::new(refused).context("connecting to postgres"))
            })
            .restart(RestartPolicy::new().on(RestartOn::Never)),
        )
        .build()
        .unwrap()
        .start();
    let status = handle.wait_state("db", UnitState::Exited).await.unwrap();
    assert_eq!(status.last_error.as_deref(), Some("connecting to postgres: connection refused"));
    handle.shutdown().await;
}

#[test]
fn an_event_capacity_out_of_range_is_a_setting_error() {
    for capacity in [0, usize::MAX] {
        let err = Supervisor::builder().event_capacity(capacity).build().unwrap_err();
        assert!(matches!(err, Error::InvalidSetting { setting: "event_capacity", .. }), "{err}");
    }
}

#[tokio::test]
async fn any_signal_reaches_a_running_daemons_group() {
    let script = "trap 'echo got HUP' HUP; echo ready; while :; do sleep 0.05; done";
    let handle = Supervisor::builder()
        .daemon(DaemonSpec::new("web", "sh").args(["-c", script]))
        .task(idle("task"))
        .build()
        .unwrap()
        .start();
    handle.wait_ready("web").await.unwrap();
    let deadline = std::time::Instant::now() + 10 * SEC;
    while !handle.tail("web", 10).unwrap().contains(&"ready".to_owned()) {
        assert!(std::time::Instant::now() < deadline, "the script never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    handle.signal("web", Signal::HUP).unwrap();
    while !handle.tail("web", 10).unwrap().contains(&"got HUP".to_owned()) {
        assert!(std::time::Instant::now() < deadline, "the signal never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(matches!(handle.signal("task", Signal::HUP), Err(Error::WrongKind { .. })));
    handle.stop_unit("web").await.unwrap();
    assert!(matches!(handle.signal("web", Signal::HUP), Err(Error::NotRunning { .. })));
    assert!(matches!(handle.signal("nope", Signal::HUP), Err(Error::UnknownUnit { .. })));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn paused_restarts_wait_for_the_resume_without_stopping_the_unit() {
    let (counted, mut runs) = tokio::sync::watch::channel(0u32);
    let sup = Supervisor::builder()
        .task(
            TaskSpec::new("flaky", move |ctx: Context| {
                counted.send_modify(|runs| *runs += 1);
                async move {
                    tokio::time::sleep(10 * SEC).await;
                    if ctx.is_cancelled() { Ok(()) } else { Err("boom") }
                }
            })
            .restart(RestartPolicy::new().delay(SEC)),
        )
        .build()
        .unwrap();
    let handle = sup.start();
    handle.wait_ready("flaky").await.unwrap();
    handle.pause_restarts("flaky").await.unwrap();
    assert_eq!(handle.status("flaky").unwrap().state, UnitState::Running, "pausing does not stop it");
    handle.wait_state("flaky", UnitState::Backoff).await.unwrap();
    tokio::time::sleep(60 * SEC).await;
    let held = handle.status("flaky").unwrap();
    assert_eq!((held.state, held.restarts_paused), (UnitState::Backoff, true));
    assert_eq!(*runs.borrow(), 1);
    handle.resume_restarts("flaky").await.unwrap();
    let resumed = handle.wait_ready("flaky").await.unwrap();
    assert_eq!((resumed.restart_count, resumed.restarts_paused), (1, false));
    // The run's `f` is called once its task is first polled.
    runs.wait_for(|runs| *runs == 2).await.unwrap();
    handle.shutdown().await;
    assert_eq!(*runs.borrow(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_a_task_awaits_from_inside_ends_after_that_tasks_grace_period() {
    let (give, handle_to_come) = tokio::sync::watch::channel(None::<supervisor::SupervisorHandle>);
    let quitter = TaskSpec::new("quitter", move |_ctx: Context| {
        let mut handle = handle_to_come.clone();
        async move {
            let handle = handle.wait_for(Option::is_some).await.expect("the handle").clone().expect("some");
            // Waits for its own stop, which waits for this: the grace
            // period cuts it.
            handle.shutdown().await;
        }
    })
    .stop_timeout(Duration::from_secs(2));
    let handle = Supervisor::builder().task(idle("worker")).task(quitter).build().unwrap().start();
    handle.wait_ready("quitter").await.unwrap();
    let began = tokio::time::Instant::now();
    give.send_replace(Some(handle.clone()));
    let report = handle.wait().await;
    assert_eq!(began.elapsed(), Duration::from_secs(2), "the quitter's grace period");
    let outcome = |name: &str| report.units.iter().find(|line| line.name == name).expect("in the report").outcome;
    assert_eq!((outcome("quitter"), outcome("worker")), (StopOutcome::Forced, StopOutcome::Graceful));
}

/// Panics when dropped: captured by a task's closure, it panics wherever
/// the supervisor lets go of the unit.
struct CaptureThatPanics(Arc<AtomicU32>);

impl Drop for CaptureThatPanics {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        if !std::thread::panicking() {
            panic!("a capture that panics when dropped");
        }
    }
}

fn bomb_carrier(name: &str, drops: &Arc<AtomicU32>) -> TaskSpec {
    let bomb = CaptureThatPanics(drops.clone());
    TaskSpec::new(name, move |_ctx: Context| {
        let _ = &bomb;
        async {}
    })
    .restart(RestartPolicy::new().on(RestartOn::Never))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closure_whose_capture_panics_when_dropped_does_not_bring_the_supervisor_down() {
    let drops = Arc::new(AtomicU32::new(0));
    let handle = Supervisor::builder().task(idle("worker")).build().unwrap().start();
    handle.wait_ready("worker").await.unwrap();
    // Forgotten by its group's owner once it ends.
    handle.add(bomb_carrier("temporary", &drops).temporary()).await.unwrap();
    // Refused by the owner, which drops it.
    handle.add(bomb_carrier("twice", &drops)).await.unwrap();
    let refused = handle.add(bomb_carrier("twice", &drops)).await;
    assert!(matches!(refused, Err(Error::DuplicateName { .. })), "{refused:?}");
    // Removed by hand.
    handle.remove("twice").await.expect("removed");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while drops.load(Ordering::SeqCst) < 3 {
        assert!(std::time::Instant::now() < deadline, "every bomb was dropped");
        tokio::task::yield_now().await;
    }
    // The owner is alive and well.
    handle.restart("worker").await.expect("a control call after the panics");
    handle.add(idle("after")).await.expect("an add after the panics");
    let report = tokio::time::timeout(Duration::from_secs(10), handle.shutdown()).await.expect("the shutdown ends");
    assert_eq!(report.units.len(), 2, "{report:?}");
}
