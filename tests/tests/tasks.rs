//! Supervised async tasks: counting, policies, control calls, shutdown,
//! events and status JSON. Policy timing runs on tokio's paused clock, so
//! every delay here is exact and no test sleeps and hopes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use supervisor::{
    Context, Error, EventKind, ExitReason, GiveUpReason, MaxRestarts, RestartOn, RestartPolicy, StopOutcome,
    Supervisor, SupervisorHandle, TaskSpec, UnitKind, UnitState,
};
use tokio::sync::broadcast;
use tokio::time::Instant;

#[path = "support/specs.rs"]
mod specs;
use specs::idle;

const SEC: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

/// Waits (on the test's clock) until `name` is in `state`.
async fn wait_for(handle: &SupervisorHandle, name: &str, state: UnitState) {
    let reached = tokio::time::timeout(Duration::from_secs(3600), handle.wait_state(name, state)).await;
    assert!(
        matches!(reached, Ok(Ok(_))),
        "{name} never reached {state:?}: {reached:?}; last status {:?}",
        handle.status(name)
    );
}

/// A task that counts its runs and always fails.
fn failing(name: &str, runs: &Arc<AtomicU32>) -> TaskSpec {
    let runs = runs.clone();
    TaskSpec::new(name, move |_ctx| {
        let runs = runs.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>("boom")
        }
    })
}

fn policy(max: MaxRestarts) -> RestartPolicy {
    RestartPolicy::new().delay(SEC).max_restarts(max)
}

/// Collects events of `unit` until (and including) the first that `last` accepts.
async fn events_until(
    events: &mut broadcast::Receiver<supervisor::Event>,
    unit: &str,
    last: impl Fn(&EventKind) -> bool,
) -> Vec<EventKind> {
    let mut seen = Vec::new();
    loop {
        let event = events.recv().await.expect("no event lost");
        if event.unit != unit {
            continue;
        }
        let done = last(&event.kind);
        seen.push(event.kind);
        if done {
            return seen;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn max_zero_runs_once_and_fails() {
    let runs = Arc::new(AtomicU32::new(0));
    let handle = Supervisor::builder()
        .task(failing("once", &runs).restart(policy(MaxRestarts::AtMost(0))))
        .build()
        .unwrap()
        .start();
    wait_for(&handle, "once", UnitState::Failed).await;
    let status = handle.status("once").unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(status.restart_count, 0);
    assert_eq!(status.exit_code, Some(1));
    assert_eq!(status.last_error.as_deref(), Some("boom"));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn max_three_runs_four_times_and_counts_three_restarts() {
    let runs = Arc::new(AtomicU32::new(0));
    let handle = Supervisor::builder()
        .task(failing("flaky", &runs).restart(policy(MaxRestarts::AtMost(3))))
        .build()
        .unwrap()
        .start();
    wait_for(&handle, "flaky", UnitState::Failed).await;
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    assert_eq!(handle.status("flaky").unwrap().restart_count, 3);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn unlimited_never_gives_up() {
    let runs = Arc::new(AtomicU32::new(0));
    let handle = Supervisor::builder()
        .task(failing("forever", &runs).restart(policy(MaxRestarts::Unlimited)))
        .build()
        .unwrap()
        .start();
    while handle.status("forever").unwrap().restart_count < 500 {
        assert_ne!(handle.status("forever").unwrap().state, UnitState::Failed);
        tokio::time::sleep(SEC).await;
    }
    assert!(runs.load(Ordering::SeqCst) >= 500);
    assert!(handle.status("forever").unwrap().state.is_active());
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_panic_is_a_failed_run_and_spares_the_others() {
    let sup = Supervisor::builder()
        .task(TaskSpec::new("calm", |ctx: Context| async move { ctx.cancelled().await }))
        .task(
            TaskSpec::new("panicky", |_ctx| async {
                panic!("kaboom");
                #[allow(unreachable_code)]
                Ok::<(), std::io::Error>(())
            })
            .restart(policy(MaxRestarts::AtMost(2))),
        )
        .task(
            TaskSpec::new("panics-early", |_ctx| -> std::future::Ready<()> { panic!("before the future") })
                .restart(policy(MaxRestarts::AtMost(0))),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let seen = events_until(&mut events, "panicky", |kind| matches!(kind, EventKind::GaveUp { .. })).await;
    assert!(seen.iter().any(|kind| matches!(kind, EventKind::Panicked { message } if message == "kaboom")));
    let status = handle.status("panicky").unwrap();
    assert_eq!(status.state, UnitState::Failed);
    assert_eq!(status.restart_count, 2);
    assert_eq!(status.last_error.as_deref(), Some("panicked: kaboom"));
    wait_for(&handle, "panics-early", UnitState::Failed).await;
    let early = handle.status("panics-early").unwrap();
    assert_eq!(early.last_error.as_deref(), Some("panicked: before the future"));
    assert_eq!(handle.status("calm").unwrap().state, UnitState::Running);
    assert!(handle.shutdown().await.units.iter().any(|u| u.name == "calm" && u.outcome == StopOutcome::Graceful));
}

/// Runs a task that returns `result` under `on`, and reports the unit's
/// settled state and how many runs it had.
async fn settle(on: RestartOn, succeed: bool) -> (UnitState, u32) {
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("unit", move |_ctx| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    if succeed { Ok(()) } else { Err("failed") }
                }
            })
            .restart(policy(MaxRestarts::AtMost(2)).on(on)),
        )
        .build()
        .unwrap()
        .start();
    let at_rest = handle.wait_status("unit", |status| !status.state.is_active());
    tokio::time::timeout(Duration::from_secs(60), at_rest).await.expect("at rest in time").unwrap();
    let state = handle.status("unit").unwrap().state;
    handle.shutdown().await;
    (state, runs.load(Ordering::SeqCst))
}

#[tokio::test(start_paused = true)]
async fn restart_on_decides_which_endings_restart() {
    assert_eq!(settle(RestartOn::Always, true).await, (UnitState::Exited, 3));
    assert_eq!(settle(RestartOn::Always, false).await, (UnitState::Failed, 3));
    assert_eq!(settle(RestartOn::Failure, true).await, (UnitState::Exited, 1));
    assert_eq!(settle(RestartOn::Failure, false).await, (UnitState::Failed, 3));
    assert_eq!(settle(RestartOn::Never, true).await, (UnitState::Exited, 1));
    assert_eq!(settle(RestartOn::Never, false).await, (UnitState::Exited, 1));
}

/// The delays of the `Restarting` events, and the time between run starts.
async fn restart_delays(spec: TaskSpec, restarts: usize) -> (Vec<Duration>, Vec<Duration>) {
    let sup = Supervisor::builder().task(spec).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let (mut announced, mut measured, mut last_start) = (Vec::new(), Vec::new(), None::<Instant>);
    while announced.len() < restarts || measured.len() < restarts {
        match events.recv().await.unwrap().kind {
            EventKind::Restarting { delay, .. } => announced.push(delay),
            EventKind::Started { .. } => {
                let now = Instant::now();
                if let Some(previous) = last_start.replace(now) {
                    measured.push(now - previous);
                }
            }
            _ => {}
        }
    }
    handle.shutdown().await;
    (announced, measured)
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_up_to_the_cap_and_is_really_waited() {
    let runs = Arc::new(AtomicU32::new(0));
    let spec = failing("backoff", &runs)
        .restart(RestartPolicy::new().delay(Duration::from_millis(100)).backoff(2.0).max_delay(Duration::from_secs(1)));
    let (announced, measured) = restart_delays(spec, 6).await;
    let ms = |ms| Duration::from_millis(ms);
    let expected = [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)];
    assert_eq!(announced[..6], expected);
    assert_eq!(measured[..6], expected, "the run starts are as far apart as the delays");
}

#[tokio::test(start_paused = true)]
async fn jitter_lengthens_within_its_fraction() {
    let runs = Arc::new(AtomicU32::new(0));
    let spec = failing("jitter", &runs).restart(RestartPolicy::new().delay(SEC).jitter(0.5));
    let (announced, _) = restart_delays(spec, 20).await;
    assert!(announced.iter().all(|&d| (SEC..=SEC.mul_f64(1.5)).contains(&d)), "{announced:?}");
    assert!(announced.iter().any(|&d| d != SEC), "jitter should vary the delays: {announced:?}");
}

#[tokio::test(start_paused = true)]
async fn a_stable_run_resets_the_backoff() {
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    let spec = TaskSpec::new("steady", move |_ctx| {
        let run = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if run == 2 {
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
            Err::<(), _>("boom")
        }
    })
    .restart(RestartPolicy::new().delay(SEC).backoff(2.0).reset_after(Duration::from_secs(5)));
    let (announced, _) = restart_delays(spec, 4).await;
    let secs = Duration::from_secs;
    assert_eq!(announced[..4], [secs(1), secs(2), secs(1), secs(2)]);
}

#[tokio::test(start_paused = true)]
async fn the_window_gives_up_on_too_many_restarts() {
    let runs = Arc::new(AtomicU32::new(0));
    let period = Duration::from_secs(10);
    let sup = Supervisor::builder()
        .task(failing("burst", &runs).restart(RestartPolicy::new().delay(SEC).window(3, period)))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let seen = events_until(&mut events, "burst", |kind| matches!(kind, EventKind::GaveUp { .. })).await;
    assert_eq!(seen.last(), Some(&EventKind::GaveUp { reason: GiveUpReason::Window { max: 3, period } }));
    let status = handle.status("burst").unwrap();
    assert_eq!((status.state, status.restart_count), (UnitState::Failed, 3));
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_window_forgets_old_restarts() {
    let runs = Arc::new(AtomicU32::new(0));
    // 3 restarts allowed per 10 s, one every 5 s: never more than 2 in a window.
    let handle = Supervisor::builder()
        .task(
            failing("slow", &runs)
                .restart(RestartPolicy::new().delay(Duration::from_secs(5)).window(3, Duration::from_secs(10))),
        )
        .build()
        .unwrap()
        .start();
    tokio::time::sleep(Duration::from_secs(300)).await;
    let status = handle.status("slow").unwrap();
    assert!(status.state.is_active(), "{status:?}");
    assert!(status.restart_count >= 50, "{status:?}");
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn stop_start_and_restart() {
    let cancelled_gracefully = Arc::new(AtomicU32::new(0));
    let counter = cancelled_gracefully.clone();
    let handle = Supervisor::builder()
        .task(TaskSpec::new("worker", move |ctx: Context| {
            let counter = counter.clone();
            async move {
                ctx.cancelled().await;
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }))
        .build()
        .unwrap()
        .start();
    wait_for(&handle, "worker", UnitState::Running).await;

    handle.stop_unit("worker").await.unwrap();
    let status = handle.status("worker").unwrap();
    assert_eq!(status.state, UnitState::Stopped);
    assert!(!status.running);
    assert_eq!(cancelled_gracefully.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(handle.status("worker").unwrap().state, UnitState::Stopped, "a stopped unit is not restarted");
    handle.stop_unit("worker").await.unwrap();

    handle.start_unit("worker").await.unwrap();
    wait_for(&handle, "worker", UnitState::Running).await;
    handle.start_unit("worker").await.unwrap();
    assert_eq!(cancelled_gracefully.load(Ordering::SeqCst), 1, "starting a running unit does nothing");

    handle.restart("worker").await.unwrap();
    wait_for(&handle, "worker", UnitState::Running).await;
    assert_eq!(cancelled_gracefully.load(Ordering::SeqCst), 2);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn restart_and_start_reset_the_count() {
    let runs = Arc::new(AtomicU32::new(0));
    let handle = Supervisor::builder()
        .task(failing("flaky", &runs).restart(policy(MaxRestarts::AtMost(2))))
        .build()
        .unwrap()
        .start();
    wait_for(&handle, "flaky", UnitState::Failed).await;
    assert_eq!(handle.status("flaky").unwrap().restart_count, 2);
    handle.start_unit("flaky").await.unwrap();
    assert_eq!(handle.status("flaky").unwrap().restart_count, 0);
    wait_for(&handle, "flaky", UnitState::Failed).await;
    assert_eq!(runs.load(Ordering::SeqCst), 6);
    handle.restart("flaky").await.unwrap();
    wait_for(&handle, "flaky", UnitState::Failed).await;
    assert_eq!(runs.load(Ordering::SeqCst), 9);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_one_unit_never_overlap() {
    let running = Arc::new(AtomicU32::new(0));
    let overlap = Arc::new(AtomicBool::new(false));
    let (r, o) = (running.clone(), overlap.clone());
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("single", move |ctx: Context| {
                let (running, overlap) = (r.clone(), o.clone());
                async move {
                    if running.fetch_add(1, Ordering::SeqCst) != 0 {
                        overlap.store(true, Ordering::SeqCst);
                    }
                    ctx.cancelled().await;
                    // Slow, cancellation-ignoring cleanup widens any overlap window.
                    tokio::task::yield_now().await;
                    running.fetch_sub(1, Ordering::SeqCst);
                }
            })
            .restart(RestartPolicy::new().delay(Duration::ZERO)),
        )
        .build()
        .unwrap()
        .start();
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let handle = handle.clone();
            tokio::spawn(async move {
                match i % 3 {
                    0 => handle.restart("single").await,
                    1 => handle.stop_unit("single").await,
                    _ => handle.start_unit("single").await,
                }
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    handle.shutdown().await;
    assert!(!overlap.load(Ordering::SeqCst), "two runs of one unit overlapped");
    assert_eq!(running.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn unknown_names_are_typed_errors_that_list_the_units() {
    let handle = Supervisor::builder().task(idle("alpha")).task(idle("beta")).build().unwrap().start();
    assert!(handle.status("gamma").is_none());
    for result in [
        handle.restart("gamma").await,
        handle.stop_unit("gamma").await,
        handle.start_unit("gamma").await,
        handle.tail("gamma", 10).map(drop),
    ] {
        let error = result.unwrap_err();
        assert!(matches!(&error, Error::UnknownUnit { name, .. } if name == "gamma"));
        assert_eq!(error.to_string(), "no unit named `gamma`; the units are: alpha, beta");
    }
    assert_eq!(handle.tail("alpha", 10).unwrap(), Vec::<String>::new());
    handle.shutdown().await;
}

#[test]
fn build_rejects_bad_specs_with_errors_that_say_what_is_right() {
    let empty = Supervisor::builder().task(idle("")).build().unwrap_err();
    assert!(matches!(empty, Error::EmptyName { kind: "task" }));
    assert!(empty.to_string().contains("non-empty"));

    let twice = Supervisor::builder().task(idle("a")).task(idle("a")).build().unwrap_err();
    assert_eq!(twice.to_string(), "unit name `a` is used twice; every unit needs a unique name");

    let program = Supervisor::builder().daemon(supervisor::DaemonSpec::new("d", "")).build().unwrap_err();
    assert!(matches!(program, Error::EmptyProgram { ref unit } if unit == "d"));

    let jitter = Supervisor::builder().task(idle("j").restart(RestartPolicy::new().jitter(2.0))).build().unwrap_err();
    assert!(jitter.to_string().starts_with("jitter of `j` is invalid"), "{jitter}");
}

#[tokio::test(start_paused = true)]
async fn shutdown_aborts_a_unit_that_ignores_cancellation_after_its_timeout() {
    let handle = Supervisor::builder()
        .task(idle("polite"))
        .task(TaskSpec::new("stubborn", |_ctx| std::future::pending::<()>()).stop_timeout(Duration::from_secs(2)))
        .build()
        .unwrap()
        .start();
    wait_for(&handle, "stubborn", UnitState::Running).await;
    let began = Instant::now();
    let report = handle.shutdown().await;
    assert_eq!(began.elapsed(), Duration::from_secs(2), "aborted exactly at its stop timeout");
    let names: Vec<_> = report.units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["stubborn", "polite"], "reverse start order");
    assert_eq!(report.units[0].outcome, StopOutcome::Forced);
    assert_eq!(report.units[0].took, Duration::from_secs(2));
    assert_eq!(report.units[1].outcome, StopOutcome::Graceful);
    assert_eq!(report.forced().count(), 1);
    assert_eq!(report.exit_code(), 1);
    assert_eq!(handle.status("stubborn").unwrap().state, UnitState::Stopped);
}

/// A restart with no delay goes on in the tokio task of the run before it:
/// the stop's abort must still reach the run it carries now.
#[tokio::test(start_paused = true)]
async fn a_run_restarted_at_once_is_still_aborted_after_its_timeout() {
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    let spec = TaskSpec::new("stubborn", move |_ctx| {
        let run = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if run < 3 {
                return Err::<(), _>("fails at once");
            }
            std::future::pending().await
        }
    })
    .restart(RestartPolicy::new().delay(Duration::ZERO))
    .stop_timeout(Duration::from_secs(2));
    let handle = Supervisor::builder().task(spec).build().unwrap().start();
    let status = handle.wait_status("stubborn", |status| status.restart_count == 3).await.unwrap();
    assert_eq!(status.state, UnitState::Running);
    let began = Instant::now();
    let report = handle.shutdown().await;
    assert_eq!(began.elapsed(), Duration::from_secs(2), "aborted at its stop timeout");
    assert_eq!(report.units[0].outcome, StopOutcome::Forced, "{report:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 4);
}

/// A task that fails at once, restarted with no delay and no limit, must
/// not hold its thread: on a runtime with one thread, everything else on
/// it still runs, the supervisor's own calls included.
#[test]
fn a_task_failing_in_a_tight_loop_leaves_its_thread_to_the_others() {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let spec = TaskSpec::new("spinner", |_ctx| async { Err::<(), _>("boom") })
                .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::Unlimited));
            let handle = Supervisor::builder().task(spec).build().unwrap().start();
            let other = tokio::spawn(async {
                for _ in 0..1000 {
                    tokio::task::yield_now().await;
                }
            });
            other.await.unwrap();
            handle.wait_status("spinner", |status| status.restart_count > 1000).await.unwrap();
            let report = handle.shutdown().await;
            let _ = done.send(report.units.len());
        });
    });
    let units = finished.recv_timeout(Duration::from_secs(60)).expect("the other tasks and the shutdown ran");
    assert_eq!(units, 1);
}

/// A run of `holder`: it panics while it holds the lock, which goes back
/// only when the run is dropped; `None` when the lock was not free.
struct HoldsTheLock(Option<tokio::sync::OwnedMutexGuard<()>>);

impl std::future::Future for HoldsTheLock {
    type Output = Result<(), &'static str>;

    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        if self.0.is_some() {
            panic!("fails while it holds the lock");
        }
        std::task::Poll::Ready(Err("the run before still held the lock"))
    }
}

/// A restarted run starts only once the run before it is dropped, with
/// what it held (a panicking future is dropped only by its owner).
#[tokio::test]
async fn a_run_is_dropped_before_the_next_one_starts() {
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    let overlapped = Arc::new(AtomicU32::new(0));
    let (held, overlaps) = (lock.clone(), overlapped.clone());
    let spec = TaskSpec::new("holder", move |_ctx| {
        let guard = held.clone().try_lock_owned().ok();
        if guard.is_none() {
            overlaps.fetch_add(1, Ordering::SeqCst);
        }
        HoldsTheLock(guard)
    })
    .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(100)));
    let handle = Supervisor::builder().task(spec).build().unwrap().start();
    let status = handle.wait_state("holder", UnitState::Failed).await.unwrap();
    assert_eq!(overlapped.load(Ordering::SeqCst), 0, "runs started while the one before held the lock");
    assert_eq!(status.restart_count, 100);
    assert!(lock.try_lock().is_ok(), "the last run was dropped too");
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_shutdown_timeout_caps_every_grace_period() {
    let handle = Supervisor::builder()
        .task(TaskSpec::new("a", |_ctx| std::future::pending::<()>()).stop_timeout(Duration::from_secs(3600)))
        .task(TaskSpec::new("b", |_ctx| std::future::pending::<()>()).stop_timeout(Duration::from_secs(3600)))
        .shutdown_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .start();
    wait_for(&handle, "b", UnitState::Running).await;
    let report = handle.shutdown().await;
    assert_eq!(report.took, Duration::from_secs(5));
    assert_eq!(report.forced().count(), 2);
}

#[tokio::test(start_paused = true)]
async fn shutdown_cuts_a_restart_delay_short() {
    let runs = Arc::new(AtomicU32::new(0));
    let handle = Supervisor::builder()
        .task(failing("waiting", &runs).restart(RestartPolicy::new().delay(Duration::from_secs(3600))))
        .build()
        .unwrap()
        .start();
    wait_for(&handle, "waiting", UnitState::Backoff).await;
    let began = Instant::now();
    let report = handle.shutdown().await;
    assert_eq!(began.elapsed(), Duration::ZERO);
    // The state it ended in, not the one the shutdown found (it was in backoff).
    assert_eq!(report.units[0].state, UnitState::Stopped);
    assert_eq!(report.units[0].outcome, StopOutcome::Graceful);
    assert_eq!(handle.status("waiting").unwrap().state, UnitState::Stopped);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_is_idempotent_and_refuses_later_starts() {
    let handle = Supervisor::builder().task(idle("a")).task(idle("b")).build().unwrap().start();
    let (first, second) = tokio::join!(handle.shutdown(), handle.shutdown());
    assert_eq!(first, second);
    assert_eq!(handle.shutdown().await, first);
    assert!(handle.is_shutting_down());
    let refused = handle.start_unit("a").await.unwrap_err();
    assert_eq!(refused.to_string(), "cannot start `a`: the supervisor is shutting down");
    assert!(matches!(handle.restart("a").await, Err(Error::ShuttingDown { .. })));
    assert!(handle.statuses().iter().all(|s| s.state == UnitState::Stopped));
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_stops_the_units() {
    let stopped = Arc::new(AtomicBool::new(false));
    let flag = stopped.clone();
    let handle = Supervisor::builder()
        .task(TaskSpec::new("worker", move |ctx: Context| {
            let flag = flag.clone();
            async move {
                ctx.cancelled().await;
                flag.store(true, Ordering::SeqCst);
            }
        }))
        .build()
        .unwrap()
        .start();
    wait_for(&handle, "worker", UnitState::Running).await;
    let clone = handle.clone();
    drop(handle);
    tokio::time::sleep(SEC).await;
    assert!(!stopped.load(Ordering::SeqCst), "a clone still holds the supervisor");
    drop(clone);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stopped.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the unit was not cancelled");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn events_tell_the_story_of_a_unit() {
    let runs = Arc::new(AtomicU32::new(0));
    let handle = Supervisor::builder()
        .task(failing("story", &runs).restart(policy(MaxRestarts::AtMost(1))))
        .task(idle("quiet"))
        .build()
        .unwrap();
    // Subscribing after start could miss the first events; start then
    // subscribe races, so restart the unit once we listen.
    let handle = handle.start();
    wait_for(&handle, "story", UnitState::Failed).await;
    let mut events = handle.subscribe();
    handle.start_unit("story").await.unwrap();
    let story = events_until(&mut events, "story", |kind| matches!(kind, EventKind::GaveUp { .. })).await;
    let failed = || EventKind::Exited { reason: ExitReason::Error("boom".into()) };
    assert_eq!(
        story,
        [
            EventKind::Started { restart_count: 0, pid: None },
            failed(),
            EventKind::Restarting { attempt: 1, delay: SEC },
            EventKind::Started { restart_count: 1, pid: None },
            failed(),
            EventKind::GaveUp { reason: GiveUpReason::MaxRestarts { max: 1 } },
        ]
    );
    handle.stop_unit("quiet").await.unwrap();
    let stopped = events_until(&mut events, "quiet", |kind| matches!(kind, EventKind::Stopped { .. })).await;
    assert!(matches!(stopped.as_slice(), [EventKind::Stopped { forced: false, .. }]), "{stopped:?}");
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn status_json_has_the_documented_shape() {
    let handle = Supervisor::builder().task(idle("ticker")).build().unwrap().start();
    wait_for(&handle, "ticker", UnitState::Running).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let json = serde_json::to_value(handle.status("ticker").unwrap()).unwrap();
    let object = json.as_object().unwrap();
    let mut keys: Vec<_> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "exitCode",
            "holdsBackReadiness",
            "lastError",
            "lastStart",
            "name",
            "notReady",
            "pid",
            "ready",
            "restartCount",
            "restartsPaused",
            "restartsTotal",
            "running",
            "signal",
            "state",
            "statusText",
            "type",
            "uptime"
        ]
    );
    assert_eq!(json["name"], "ticker");
    assert_eq!(json["type"], "task");
    assert_eq!(json["state"], "running");
    assert_eq!(json["running"], true);
    assert_eq!(json["restartCount"], 0);
    let uptime = json["uptime"].as_f64().unwrap();
    assert!((1.5..1.51).contains(&uptime), "uptime in seconds, got {uptime}");
    assert!(json["pid"].is_null() && json["exitCode"].is_null() && json["lastError"].is_null());
    let last_start = json["lastStart"].as_str().unwrap();
    assert_eq!(last_start.len(), "2026-01-01T00:00:00.000Z".len(), "{last_start}");
    assert!(last_start.ends_with('Z') && last_start.as_bytes()[10] == b'T', "{last_start}");
    assert_eq!(handle.status("ticker").unwrap().kind, UnitKind::Task);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn durations_too_long_for_the_clock_mean_never_and_panic_nothing() {
    let fails = TaskSpec::new("fails", |_ctx: Context| async { Err::<(), _>("boom") })
        .restart(RestartPolicy::new().delay(Duration::MAX));
    let strategy_group = supervisor::GroupSpec::new("g")
        .strategy(supervisor::Strategy::OneForAll)
        .task(
            TaskSpec::new("fails-too", |_ctx: Context| async { Err::<(), _>("boom") })
                .restart(RestartPolicy::new().delay(Duration::MAX)),
        )
        .task(idle("sibling"));
    let handle = Supervisor::builder()
        .task(fails)
        .task(idle("patient").stop_timeout(Duration::MAX))
        .group(strategy_group)
        .build()
        .unwrap()
        .start();
    // Each waits for a restart that never comes.
    let fails = handle.wait_state("fails", UnitState::Backoff).await.unwrap();
    assert_eq!(fails.restart_count, 0);
    handle.wait_state("g/fails-too", UnitState::Backoff).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(handle.status("fails").unwrap().state, UnitState::Backoff);
    // The owners are alive: control calls are answered.
    handle.restart("patient").await.expect("a restart by hand");
    handle.start_unit("fails").await.expect("a start by hand");
    let report = handle.shutdown().await;
    assert!(report.units.iter().all(|line| line.outcome != StopOutcome::Forced), "{report:?}");
}

#[tokio::test(start_paused = true)]
async fn last_start_moves_with_each_run_and_stays_once_stopped() {
    let handle = Supervisor::builder().task(idle("ticker")).build().unwrap().start();
    wait_for(&handle, "ticker", UnitState::Running).await;
    let first = handle.status("ticker").unwrap().last_start.expect("a start");
    tokio::time::advance(30 * SEC).await;
    handle.restart("ticker").await.unwrap();
    wait_for(&handle, "ticker", UnitState::Running).await;
    let second = handle.status("ticker").unwrap().last_start.expect("a start");
    assert_eq!(second.duration_since(first).unwrap(), 30 * SEC, "the restart's own time, on the test's clock");
    handle.stop_unit("ticker").await.unwrap();
    tokio::time::advance(30 * SEC).await;
    let stopped = handle.status("ticker").unwrap();
    assert_eq!((stopped.state, stopped.last_start, stopped.uptime), (UnitState::Stopped, Some(second), None));
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_units() {
    let names: Vec<String> = (0..2000).map(|i| format!("unit-{i:04}")).collect();
    let builder = names.iter().fold(Supervisor::builder(), |builder, name| builder.task(idle(name)));
    let handle = builder.build().unwrap().start();
    for name in &names {
        let running = tokio::time::timeout(Duration::from_secs(60), handle.wait_state(name, UnitState::Running));
        running.await.expect("every unit reaches Running in time").unwrap();
    }
    let listed: Vec<_> = handle.statuses().into_iter().map(|status| status.name).collect();
    assert_eq!(listed, names, "registration order");
    assert_eq!(handle.unit_names(), names);
    let report = handle.shutdown().await;
    assert_eq!(report.units.len(), 2000);
    assert!(report.units.iter().all(|unit| unit.outcome == StopOutcome::Graceful));
    let stop_order: Vec<_> = report.units.iter().rev().map(|unit| unit.name.clone()).collect();
    assert_eq!(stop_order, names, "reverse start order");
}

/// Sets its flag when dropped: shows that a future was aborted.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_aborts_a_stubborn_task_after_its_grace() {
    let aborted = Arc::new(AtomicBool::new(false));
    let flag = aborted.clone();
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("stubborn", move |_ctx| {
                let guard = SetOnDrop(flag.clone());
                async move {
                    let _guard = guard;
                    std::future::pending::<()>().await;
                }
            })
            .stop_timeout(Duration::from_secs(3)),
        )
        .build()
        .unwrap()
        .start();
    wait_for(&handle, "stubborn", UnitState::Running).await;
    let began = Instant::now();
    drop(handle);
    while !aborted.load(Ordering::SeqCst) {
        assert!(began.elapsed() <= Duration::from_secs(3), "not aborted at its stop timeout");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(began.elapsed() >= Duration::from_secs(3), "aborted before its grace period ran out");
}

fn stubborn(name: &str, stop_timeout: Duration) -> TaskSpec {
    TaskSpec::new(name, |_ctx| std::future::pending::<()>()).stop_timeout(stop_timeout)
}

#[tokio::test(start_paused = true)]
async fn each_unit_gets_its_own_grace_period_in_a_shutdown() {
    let secs = Duration::from_secs;
    let handle = Supervisor::builder()
        .task(stubborn("long", secs(10)))
        .task(stubborn("short", secs(3)))
        .task(idle("polite").stop_timeout(secs(3600)))
        .task(stubborn("shortest", secs(1)))
        .build()
        .unwrap()
        .start();
    wait_for(&handle, "shortest", UnitState::Running).await;
    let report = handle.shutdown().await;
    let stops: Vec<_> = report.units.iter().map(|unit| (unit.name.as_str(), unit.outcome, unit.took)).collect();
    assert_eq!(
        stops,
        [
            ("shortest", StopOutcome::Forced, secs(1)),
            ("polite", StopOutcome::Graceful, Duration::ZERO),
            ("short", StopOutcome::Forced, secs(3)),
            ("long", StopOutcome::Forced, secs(10)),
        ]
    );
    assert_eq!(report.took, secs(14));
}

#[tokio::test(start_paused = true)]
async fn a_concurrent_shutdown_takes_as_long_as_the_slowest_stop() {
    let secs = Duration::from_secs;
    let handle = Supervisor::builder()
        .task(stubborn("long", secs(10)))
        .task(stubborn("short", secs(3)))
        .task(idle("polite"))
        .shutdown_order(supervisor::ShutdownOrder::Concurrent)
        .build()
        .unwrap()
        .start();
    wait_for(&handle, "polite", UnitState::Running).await;
    let report = handle.shutdown().await;
    let stops: Vec<_> = report.units.iter().map(|unit| (unit.name.as_str(), unit.outcome, unit.took)).collect();
    assert_eq!(
        stops,
        [
            ("polite", StopOutcome::Graceful, Duration::ZERO),
            ("short", StopOutcome::Forced, secs(3)),
            ("long", StopOutcome::Forced, secs(10)),
        ]
    );
    assert_eq!(report.took, secs(10), "not 13 s: the stops overlapped");
}

#[tokio::test(start_paused = true)]
async fn restart_aborts_a_stubborn_run_before_the_next_one_starts() {
    let aborted = Arc::new(AtomicBool::new(false));
    let started_after_abort = Arc::new(AtomicU32::new(0));
    let (flag, after) = (aborted.clone(), started_after_abort.clone());
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("stubborn", move |ctx: Context| {
                if ctx.restart_count() == 0 && flag.load(Ordering::SeqCst) {
                    after.fetch_add(1, Ordering::SeqCst);
                }
                let guard = SetOnDrop(flag.clone());
                async move {
                    let _guard = guard;
                    std::future::pending::<()>().await;
                }
            })
            .stop_timeout(Duration::from_secs(2)),
        )
        .build()
        .unwrap()
        .start();
    wait_for(&handle, "stubborn", UnitState::Running).await;
    let mut events = handle.subscribe();
    let began = Instant::now();
    handle.restart("stubborn").await.unwrap();
    assert_eq!(began.elapsed(), Duration::from_secs(2), "the old run had its grace period, then was aborted");
    let stopped = events_until(&mut events, "stubborn", |kind| matches!(kind, EventKind::Stopped { .. })).await;
    assert_eq!(stopped.last(), Some(&EventKind::Stopped { forced: true, took: Duration::from_secs(2) }));
    wait_for(&handle, "stubborn", UnitState::Running).await;
    assert_eq!(started_after_abort.load(Ordering::SeqCst), 1, "the new run started after the old one was dropped");
    handle.shutdown().await;
}

/// The token a context hands out is a child of the run's: cancelling it
/// does not stop the run (or a later one), and it is cancelled when the
/// run is asked to stop.
#[tokio::test(start_paused = true)]
async fn a_handed_out_token_cancelled_by_the_task_leaves_the_run_running() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = Supervisor::builder()
        .task(TaskSpec::new("self-cancelling", move |ctx: Context| {
            let tx = tx.clone();
            async move {
                let token = ctx.cancellation_token();
                token.cancel();
                tx.send(("cancelled its own token", ctx.is_cancelled())).unwrap();
                let kept = ctx.cancellation_token();
                ctx.cancelled().await;
                tx.send(("asked to stop", kept.is_cancelled())).unwrap();
            }
        }))
        .build()
        .unwrap()
        .start();
    assert_eq!(rx.recv().await, Some(("cancelled its own token", false)));
    tokio::time::advance(SEC).await;
    assert_eq!(handle.status("self-cancelling").map(|status| status.state), Some(UnitState::Running));
    handle.stop_unit("self-cancelling").await.unwrap();
    assert_eq!(rx.recv().await, Some(("asked to stop", true)));
    assert_eq!(handle.status("self-cancelling").map(|status| status.state), Some(UnitState::Stopped));
    handle.shutdown().await;
}

/// A run restarted in the task of the run before it may go on with that
/// run's token when nobody cancelled it, and gets a new one after a stop:
/// no run starts cancelled, and a stopped run's context stays cancelled.
#[tokio::test(start_paused = true)]
async fn no_run_starts_cancelled_whether_its_token_is_new_or_reused() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("flaky", move |ctx: Context| {
                let (tx, run) = (tx.clone(), counter.fetch_add(1, Ordering::SeqCst));
                async move {
                    tx.send((run, ctx.is_cancelled(), ctx.clone())).unwrap();
                    if run < 3 {
                        return Err("not yet");
                    }
                    ctx.cancelled().await;
                    Ok(())
                }
            })
            .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::Unlimited)),
        )
        .build()
        .unwrap()
        .start();
    let mut contexts = Vec::new();
    for expected in 0..4 {
        let (run, cancelled_at_start, ctx) = rx.recv().await.unwrap();
        assert_eq!((run, cancelled_at_start), (expected, false));
        contexts.push(ctx);
    }
    handle.restart("flaky").await.unwrap();
    let (run, cancelled_at_start, _) = rx.recv().await.unwrap();
    assert_eq!((run, cancelled_at_start), (4, false), "the run after a stop starts uncancelled");
    assert!(contexts[3].is_cancelled(), "the stopped run's context");
    handle.shutdown().await;
}

/// A unit stopped at once leaves its grace period's timer armed, to fire
/// for nothing. Once it had, a deadline armed later in a turn taken off the
/// owner's task (a run's end, a call) counted on that fired timer and never
/// came: a restart waited in `Backoff` for ever, and a stop never aborted
/// a task past its timeout.
#[tokio::test(start_paused = true)]
async fn deadlines_hold_after_a_timer_left_armed_has_fired() {
    let fail = Arc::new(AtomicBool::new(false));
    let failing = fail.clone();
    let flaky = TaskSpec::new("flaky", move |ctx: Context| {
        let failing = failing.clone();
        async move {
            loop {
                if failing.swap(false, Ordering::SeqCst) {
                    return Err("failed");
                }
                tokio::select! {
                    () = ctx.cancelled() => return Ok(()),
                    () = tokio::time::sleep(10 * MS) => {}
                }
            }
        }
    })
    .restart(RestartPolicy::new().delay(100 * MS));
    let stubborn = TaskSpec::new("stubborn", |_ctx: Context| std::future::pending::<()>()).stop_timeout(500 * MS);
    let quick = idle("quick").stop_timeout(100 * MS);
    let handle = Supervisor::builder().task(quick).task(flaky).task(stubborn).build().unwrap().start();
    handle.wait_ready("flaky").await.unwrap();
    // Stops at once: its grace period's timer stays armed, and fires.
    handle.stop_unit("quick").await.unwrap();
    tokio::time::sleep(300 * MS).await;
    fail.store(true, Ordering::SeqCst);
    handle.wait_state("flaky", UnitState::Backoff).await.unwrap();
    let began = Instant::now();
    let restarted = tokio::time::timeout(3 * SEC, handle.wait_state("flaky", UnitState::Running)).await;
    assert!(restarted.is_ok(), "still {:?} after 3 s, its delay 100 ms", handle.status("flaky").map(|s| s.state));
    assert!(began.elapsed() < 200 * MS, "restarted after {:?}", began.elapsed());
    let stopped = tokio::time::timeout(3 * SEC, handle.stop_unit("stubborn")).await;
    assert!(
        stopped.is_ok(),
        "still {:?} after 3 s, its stop timeout 500 ms",
        handle.status("stubborn").map(|s| s.state)
    );
    handle.shutdown().await;
}
