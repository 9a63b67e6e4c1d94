//! Hostile re-entrancy and odd calling contexts: units that control
//! themselves, their siblings and their own group from inside their runs,
//! from their futures' `Drop`, from their factories, while a strategy
//! restarts them or a shutdown stops them; calls from a tracing layer, a
//! panic hook, a plain thread, a second runtime; the last outside handle
//! dropped while a unit keeps a clone; thousands of adds and removes of the
//! same names at once.
//!
//! Each test runs on a thread of its own under a hard deadline, so that a
//! deadlock on a lock (which no tokio timeout can see) fails the test
//! instead of hanging CI; every await inside is under a deadline too.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};
use std::time::Duration;

use supervisor::{
    Context, Error, Event, EventKind, GroupSpec, MaxRestarts, Readiness, ShutdownReport, StopOutcome, Strategy,
    Supervisor, SupervisorHandle, TaskSpec, UnitState,
};
use tokio::sync::{broadcast, mpsc, watch};

#[path = "support/deadline.rs"]
mod deadline;
use deadline::{events_until, within};
#[path = "support/specs.rs"]
mod specs;
#[path = "support/subscriber.rs"]
mod subscriber;
use specs::{idle, no_delay, run_once};

const SEC: Duration = Duration::from_secs(1);
/// Far longer than any call takes when nothing hangs.
const DEADLINE: Duration = Duration::from_secs(20);
/// The whole test, in real time.
const HARD_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Clone, Copy)]
enum Rt {
    /// A current-thread runtime with its clock paused.
    Paused,
    /// A current-thread runtime on the real clock.
    Current,
    /// A multi-thread runtime (real clock).
    Multi,
}

fn runtime(rt: Rt) -> tokio::runtime::Runtime {
    match rt {
        Rt::Paused => tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build(),
        Rt::Current => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        Rt::Multi => tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build(),
    }
    .unwrap()
}

/// Runs `test` on a runtime of its own, on a thread of its own, and fails
/// if it has not finished within [`HARD_DEADLINE`] (a thread blocked on a
/// lock is left behind).
fn guarded<F, Fut>(rt: Rt, test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let (done, finished) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime = runtime(rt);
        runtime.block_on(test());
        // Nothing is left to block the thread: drop it here, not after the deadline.
        drop(runtime);
        let _ = done.send(());
    });
    match finished.recv_timeout(HARD_DEADLINE) {
        Ok(()) => thread.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("the test did not finish within {HARD_DEADLINE:?}: a deadlock or a hang")
        }
    }
}

/// A handle for the units to use, given once the supervisor has started.
/// It keeps the supervisor's handle for as long as the units live (a cycle
/// that only the shutdown ends): the tests shut down explicitly.
#[derive(Clone)]
struct Slot(watch::Sender<Option<SupervisorHandle>>);

impl Slot {
    fn new() -> Self {
        Slot(watch::channel(None).0)
    }

    fn set(&self, handle: &SupervisorHandle) {
        self.0.send_replace(Some(handle.clone()));
    }

    async fn get(&self) -> SupervisorHandle {
        let mut receiver = self.0.subscribe();
        let handle = receiver.wait_for(Option::is_some).await.unwrap();
        handle.clone().unwrap()
    }

    fn try_get(&self) -> Option<SupervisorHandle> {
        self.0.borrow().clone()
    }

    /// Lets the handle go. Only where dropping it matters: a run that
    /// takes the handle after this waits for ever.
    fn clear(&self) {
        self.0.send_replace(None);
    }
}

fn counter() -> Arc<AtomicU32> {
    Arc::new(AtomicU32::new(0))
}

/// Every event until the channel closes (the supervisor has ended).
async fn all_events(events: &mut broadcast::Receiver<Event>) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        match within(DEADLINE, "the next event", events.recv()).await {
            Ok(event) => seen.push(event),
            Err(broadcast::error::RecvError::Closed) => return seen,
            Err(error) => panic!("{error:?}"),
        }
    }
}

fn assert_each_once(report: &ShutdownReport) {
    let mut seen = HashSet::new();
    for line in &report.units {
        assert!(seen.insert(line.name.clone()), "`{}` is reported twice: {report:#?}", line.name);
    }
}

fn line<'a>(report: &'a ShutdownReport, name: &str) -> &'a supervisor::UnitReport {
    report.units.iter().find(|line| line.name == name).unwrap_or_else(|| panic!("no `{name}` in {report:#?}"))
}

/// Lets the tasks that are ready run (the paused clock does not move).
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

// ---------------------------------------------------------------------------
// A unit that controls itself

/// A task restarts itself from its run, in a task of its own, and waits to
/// be stopped: the restart stops it gracefully and starts its next run.
fn self_restart_spawned(rt: Rt) {
    guarded(rt, || async {
        let slot = Slot::new();
        let runs = counter();
        // The next run's future is made as its own task first polls it,
        // which may come after its state reads `Running` (on another thread).
        let second_run = Arc::new(tokio::sync::Notify::new());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let spec = TaskSpec::new("me", {
            let (slot, runs, second_run) = (slot.clone(), runs.clone(), second_run.clone());
            move |ctx: Context| {
                let (slot, runs, tx, second_run) = (slot.clone(), runs.clone(), tx.clone(), second_run.clone());
                async move {
                    match runs.fetch_add(1, Ordering::SeqCst) {
                        0 => {
                            let handle = slot.get().await;
                            tokio::spawn(async move {
                                let _ = tx.send(handle.restart("me").await);
                            });
                        }
                        1 => second_run.notify_one(),
                        _ => {}
                    }
                    ctx.cancelled().await;
                }
            }
        });
        let handle = Supervisor::builder().task(spec).build().unwrap().start();
        slot.set(&handle);
        let answer = within(DEADLINE, "the restart's answer", rx.recv()).await.unwrap();
        assert!(answer.is_ok(), "{answer:?}");
        let status = within(DEADLINE, "running again", handle.wait_state("me", UnitState::Running)).await.unwrap();
        within(DEADLINE, "the second run", second_run.notified()).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(status.restart_count, 0);
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_eq!(line(&report, "me").outcome, StopOutcome::Graceful, "{report:#?}");
    });
}

#[test]
fn a_task_that_restarts_itself_runs_again() {
    self_restart_spawned(Rt::Paused);
}

#[test]
fn a_task_that_restarts_itself_runs_again_on_many_threads() {
    self_restart_spawned(Rt::Multi);
}

/// A task awaits its own restart in its run, without watching its
/// cancellation: the restart waits for that run's stop, which waits for the
/// run. The caveat of `shutdown` says the same of a shutdown: the run is
/// dropped at the end of its grace period, and the restart goes on.
#[test]
fn a_task_awaiting_its_own_restart_is_dropped_after_its_grace_and_runs_again() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let runs = counter();
        let spec = TaskSpec::new("me", {
            let (slot, runs) = (slot.clone(), runs.clone());
            move |ctx: Context| {
                let (slot, runs) = (slot.clone(), runs.clone());
                async move {
                    if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                        let handle = slot.get().await;
                        let _ = handle.restart("me").await;
                    }
                    ctx.cancelled().await;
                }
            }
        })
        .stop_timeout(2 * SEC);
        let sup = Supervisor::builder().task(spec).build().unwrap();
        let mut events = sup.subscribe();
        let handle = sup.start();
        slot.set(&handle);
        let log =
            events_until(DEADLINE, &mut events, |e| matches!(e.kind, EventKind::Started { .. }) && e.unit == "me")
                .await;
        assert_eq!(log.len(), 1);
        let log = events_until(DEADLINE, &mut events, |e| matches!(e.kind, EventKind::Started { .. })).await;
        assert!(
            log.iter().any(|e| matches!(e.kind, EventKind::Stopped { forced: true, .. })),
            "the first run is aborted: {log:#?}"
        );
        within(DEADLINE, "running again", handle.wait_state("me", UnitState::Running)).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

/// Ten restarts of itself, asked at once from its first run: each goes on
/// from where the one before left the unit, and all are answered.
#[test]
fn a_task_that_asks_for_ten_restarts_of_itself_gets_ten_answers() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let runs = counter();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let spec = TaskSpec::new("me", {
            let (slot, runs) = (slot.clone(), runs.clone());
            move |ctx: Context| {
                let (slot, runs, tx) = (slot.clone(), runs.clone(), tx.clone());
                async move {
                    if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                        let handle = slot.get().await;
                        for _ in 0..10 {
                            let (handle, tx) = (handle.clone(), tx.clone());
                            tokio::spawn(async move {
                                let _ = tx.send(handle.restart("me").await);
                            });
                        }
                    }
                    ctx.cancelled().await;
                }
            }
        });
        let handle = Supervisor::builder().task(spec).build().unwrap().start();
        slot.set(&handle);
        for _ in 0..10 {
            let answer = within(DEADLINE, "a restart's answer", rx.recv()).await.unwrap();
            assert!(answer.is_ok(), "{answer:?}");
        }
        within(DEADLINE, "running", handle.wait_state("me", UnitState::Running)).await.unwrap();
        settle().await;
        // The calls that came while the first stopped wait for that stop too.
        assert!(runs.load(Ordering::SeqCst) >= 2);
        assert_eq!(handle.status("me").unwrap().state, UnitState::Running);
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

/// A task stops itself (racing the call with its own cancellation): it
/// stays stopped; the policy does not restart it.
#[test]
fn a_task_that_stops_itself_stays_stopped() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let runs = counter();
        let spec = TaskSpec::new("me", {
            let (slot, runs) = (slot.clone(), runs.clone());
            move |ctx: Context| {
                let (slot, runs) = (slot.clone(), runs.clone());
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    let handle = slot.get().await;
                    tokio::select! {
                        _ = handle.stop_unit("me") => {}
                        () = ctx.cancelled() => {}
                    }
                }
            }
        })
        .restart(no_delay())
        .critical();
        let handle = Supervisor::builder().task(idle("other")).task(spec).build().unwrap().start();
        slot.set(&handle);
        within(DEADLINE, "stopped", handle.wait_state("me", UnitState::Stopped)).await.unwrap();
        tokio::time::sleep(10 * SEC).await;
        assert_eq!(handle.status("me").unwrap().state, UnitState::Stopped);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Stopped by hand is not an end for good: the critical unit does not end the tree.
        assert!(!handle.is_shutting_down());
        assert_eq!(handle.status("other").unwrap().state, UnitState::Running);
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

/// A task removes itself, in a task of its own: it is forgotten and the
/// removal reports a graceful stop.
#[test]
fn a_task_that_removes_itself_is_forgotten() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handle = Supervisor::builder().task(idle("other")).build().unwrap().start();
        slot.set(&handle);
        let spec = TaskSpec::new("me", {
            let slot = slot.clone();
            move |ctx: Context| {
                let (slot, tx) = (slot.clone(), tx.clone());
                async move {
                    let handle = slot.get().await;
                    tokio::spawn(async move {
                        let _ = tx.send(handle.remove("me").await);
                    });
                    ctx.cancelled().await;
                }
            }
        })
        .critical();
        within(DEADLINE, "add", handle.add(spec)).await.unwrap();
        let report = within(DEADLINE, "the removal's answer", rx.recv()).await.unwrap().unwrap();
        assert_eq!(report.name, "me");
        assert_eq!(report.outcome, StopOutcome::Graceful);
        assert!(handle.status("me").is_none());
        assert!(!handle.is_shutting_down());
        // The name is free again.
        within(DEADLINE, "add again", handle.add(idle("me"))).await.unwrap();
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

/// The same removal awaited in the run itself, raced with the run's
/// cancellation: the run ends when cancelled, and the unit is forgotten.
#[test]
fn a_task_that_removes_itself_inline_is_forgotten() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let handle = Supervisor::builder().build().unwrap().start();
        slot.set(&handle);
        let mut events = handle.subscribe();
        let spec = TaskSpec::new("me", {
            let slot = slot.clone();
            move |ctx: Context| {
                let slot = slot.clone();
                async move {
                    let handle = slot.get().await;
                    tokio::select! {
                        _ = handle.remove("me") => {}
                        () = ctx.cancelled() => {}
                    }
                }
            }
        });
        within(DEADLINE, "add", handle.add(spec)).await.unwrap();
        events_until(DEADLINE, &mut events, |e| e.unit == "me" && matches!(e.kind, EventKind::Removed)).await;
        assert!(handle.status("me").is_none());
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

/// A task adds a sibling under its own name: `DuplicateName`, and nothing
/// changes.
#[test]
fn a_task_adding_a_sibling_under_its_own_name_gets_duplicate_name() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let spec = TaskSpec::new("me", {
            let slot = slot.clone();
            move |ctx: Context| {
                let (slot, tx) = (slot.clone(), tx.clone());
                async move {
                    let handle = slot.get().await;
                    let _ = tx.send(handle.add(idle("me")).await);
                    let _ = tx.send(handle.add_to("g", idle("me")).await);
                    let _ = tx.send(handle.add_to("g", idle("x")).await);
                    ctx.cancelled().await;
                }
            }
        });
        let handle =
            Supervisor::builder().group(GroupSpec::new("g").task(spec)).task(idle("me")).build().unwrap().start();
        slot.set(&handle);
        let first = within(DEADLINE, "answer", rx.recv()).await.unwrap();
        assert!(matches!(first, Err(Error::DuplicateName { ref name }) if name == "me"), "{first:?}");
        let second = within(DEADLINE, "answer", rx.recv()).await.unwrap();
        assert!(matches!(second, Err(Error::DuplicateName { ref name }) if name == "g/me"), "{second:?}");
        let third = within(DEADLINE, "answer", rx.recv()).await.unwrap();
        assert!(third.is_ok(), "{third:?}");
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

/// `wait_ready` on itself, from its own run: a task ready once started is
/// ready at once; a notified one once it says so, even when the wait began
/// before.
#[test]
fn a_task_waiting_for_its_own_readiness_gets_it() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let started = TaskSpec::new("started", {
            let (slot, tx) = (slot.clone(), tx.clone());
            move |ctx: Context| {
                let (slot, tx) = (slot.clone(), tx.clone());
                async move {
                    let handle = slot.get().await;
                    let _ = tx.send(("started", handle.wait_ready("started").await.map(|s| s.ready)));
                    ctx.cancelled().await;
                }
            }
        });
        let notified = TaskSpec::new("notified", {
            let slot = slot.clone();
            move |ctx: Context| {
                let (slot, tx) = (slot.clone(), tx.clone());
                async move {
                    let handle = slot.get().await;
                    let wait = handle.wait_ready("notified");
                    let tell = async {
                        tokio::time::sleep(SEC).await;
                        ctx.ready();
                    };
                    let (ready, ()) = tokio::join!(wait, tell);
                    let _ = tx.send(("notified", ready.map(|s| s.ready)));
                    ctx.cancelled().await;
                }
            }
        })
        .readiness(Readiness::Notified);
        let handle = Supervisor::builder().task(started).task(notified).build().unwrap().start();
        slot.set(&handle);
        let mut answers = vec![
            within(DEADLINE, "answer", rx.recv()).await.unwrap(),
            within(DEADLINE, "answer", rx.recv()).await.unwrap(),
        ];
        answers.sort_by_key(|(name, _)| *name);
        assert!(matches!(answers[0], ("notified", Ok(true))), "{answers:?}");
        assert!(matches!(answers[1], ("started", Ok(true))), "{answers:?}");
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

/// A task pauses its own restarts, then fails: it waits in `Backoff` until
/// resumed from outside, then runs again.
#[test]
fn a_task_that_pauses_its_own_restarts_then_fails_waits_for_the_resume() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let runs = counter();
        let spec = TaskSpec::new("me", {
            let (slot, runs) = (slot.clone(), runs.clone());
            move |ctx: Context| {
                let (slot, runs) = (slot.clone(), runs.clone());
                async move {
                    if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                        let handle = slot.get().await;
                        handle.pause_restarts("me").await.unwrap();
                        return Err("boom");
                    }
                    ctx.cancelled().await;
                    Ok(())
                }
            }
        })
        .restart(no_delay());
        let handle = Supervisor::builder().task(spec).build().unwrap().start();
        slot.set(&handle);
        within(DEADLINE, "backoff", handle.wait_state("me", UnitState::Backoff)).await.unwrap();
        tokio::time::sleep(10 * SEC).await;
        assert_eq!(handle.status("me").unwrap().state, UnitState::Backoff);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        within(DEADLINE, "resume", handle.resume_restarts("me")).await.unwrap();
        within(DEADLINE, "running", handle.wait_state("me", UnitState::Running)).await.unwrap();
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

// ---------------------------------------------------------------------------
// A unit that shuts the supervisor down

/// The caveat of `shutdown`: awaited from a unit's own run, it waits for
/// that run's stop, which waits for it: the run is dropped at the end of its
/// grace period and reported `Forced`; the shutdown ends all the same.
#[test]
fn a_task_awaiting_the_shutdown_is_forced_and_the_shutdown_ends() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let spec = TaskSpec::new("me", {
            let slot = slot.clone();
            move |_ctx: Context| {
                let slot = slot.clone();
                async move {
                    let handle = slot.get().await;
                    let _ = handle.shutdown().await;
                }
            }
        })
        .stop_timeout(3 * SEC);
        let handle = Supervisor::builder().task(idle("first")).task(spec).task(idle("last")).build().unwrap().start();
        slot.set(&handle);
        let report = within(DEADLINE, "the end", handle.wait()).await;
        assert_each_once(&report);
        assert_eq!(line(&report, "me").outcome, StopOutcome::Forced, "{report:#?}");
        assert_eq!(line(&report, "first").outcome, StopOutcome::Graceful, "{report:#?}");
        assert_eq!(line(&report, "last").outcome, StopOutcome::Graceful, "{report:#?}");
    });
}

/// The way the caveat recommends: spawn the shutdown and watch for the
/// cancellation. Every unit stops gracefully.
#[test]
fn a_task_that_spawns_the_shutdown_ends_the_supervisor_cleanly() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let spec = TaskSpec::new("me", {
            let slot = slot.clone();
            move |ctx: Context| {
                let slot = slot.clone();
                async move {
                    let handle = slot.get().await;
                    tokio::spawn(async move { handle.shutdown().await });
                    ctx.cancelled().await;
                }
            }
        });
        let handle = Supervisor::builder()
            .group(GroupSpec::new("g").task(idle("a")).task(spec))
            .task(idle("b"))
            .build()
            .unwrap()
            .start();
        slot.set(&handle);
        let report = within(DEADLINE, "the end", handle.wait()).await;
        assert_each_once(&report);
        assert!(report.is_clean(), "{report:#?}");
    });
}

/// `Supervisor::run()` gives its units no handle: a unit asks for the
/// shutdown the way `run()` listens for, a `SIGTERM` to the supervisor's
/// own process, and `run()` returns with a clean report.
#[test]
fn run_returns_when_a_unit_sends_sigterm_to_its_own_process() {
    guarded(Rt::Multi, || async {
        let sup = Supervisor::builder()
            .task(idle("other"))
            .task(TaskSpec::new("me", |ctx: Context| async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TERM).unwrap();
                ctx.cancelled().await;
            }))
            .build()
            .unwrap();
        let report = within(DEADLINE, "run", sup.run()).await;
        assert_each_once(&report);
        assert!(report.is_clean(), "{report:#?}");
    });
}

/// `Supervisor::run()` returns with the report when a critical unit ends.
#[test]
fn run_returns_when_a_critical_unit_ends() {
    guarded(Rt::Multi, || async {
        let sup = Supervisor::builder()
            .task(idle("other"))
            .task(
                TaskSpec::new("main", |_ctx: Context| async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                })
                .restart(run_once())
                .critical(),
            )
            .build()
            .unwrap();
        let report = within(DEADLINE, "run", sup.run()).await;
        assert_each_once(&report);
        assert!(matches!(report.cause, supervisor::ShutdownCause::CriticalEnded { failed: false, .. }), "{report:#?}");
    });
}

// ---------------------------------------------------------------------------
// A unit that controls its own group

/// A unit stops its own group (in a task of its own): the group and every
/// unit of it end stopped.
#[test]
fn a_task_that_stops_its_own_group_leaves_it_stopped() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let spec = TaskSpec::new("me", {
            let slot = slot.clone();
            move |ctx: Context| {
                let (slot, tx) = (slot.clone(), tx.clone());
                async move {
                    let handle = slot.get().await;
                    tokio::spawn(async move {
                        let _ = tx.send(handle.stop_unit("g").await);
                    });
                    ctx.cancelled().await;
                }
            }
        });
        let handle = Supervisor::builder()
            .group(GroupSpec::new("g").task(idle("a")).task(spec).task(idle("z")))
            .build()
            .unwrap()
            .start();
        slot.set(&handle);
        within(DEADLINE, "answer", rx.recv()).await.unwrap().unwrap();
        assert_eq!(handle.status("g").unwrap().state, UnitState::Stopped);
        for name in ["g/a", "g/me", "g/z"] {
            assert_eq!(handle.status(name).unwrap().state, UnitState::Stopped, "{name}");
        }
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_each_once(&report);
    });
}

/// A unit restarts its own group: the group runs again, with a new run of
/// the caller.
#[test]
fn a_task_that_restarts_its_own_group_runs_again() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let runs = counter();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let spec = TaskSpec::new("me", {
            let (slot, runs) = (slot.clone(), runs.clone());
            move |ctx: Context| {
                let (slot, runs, tx) = (slot.clone(), runs.clone(), tx.clone());
                async move {
                    if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                        let handle = slot.get().await;
                        tokio::spawn(async move {
                            let _ = tx.send(handle.restart("g").await);
                        });
                    }
                    ctx.cancelled().await;
                }
            }
        });
        let handle =
            Supervisor::builder().group(GroupSpec::new("g").task(idle("a")).task(spec)).build().unwrap().start();
        slot.set(&handle);
        within(DEADLINE, "answer", rx.recv()).await.unwrap().unwrap();
        within(DEADLINE, "g running", handle.wait_state("g", UnitState::Running)).await.unwrap();
        within(DEADLINE, "g/me running", handle.wait_state("g/me", UnitState::Running)).await.unwrap();
        within(DEADLINE, "g/a running", handle.wait_state("g/a", UnitState::Running)).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_each_once(&report);
    });
}

/// A unit removes its own group: the group and its units are forgotten.
#[test]
fn a_task_that_removes_its_own_group_is_forgotten_with_it() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let spec = TaskSpec::new("me", {
            let slot = slot.clone();
            move |ctx: Context| {
                let (slot, tx) = (slot.clone(), tx.clone());
                async move {
                    let handle = slot.get().await;
                    tokio::spawn(async move {
                        let _ = tx.send(handle.remove("g").await);
                    });
                    ctx.cancelled().await;
                }
            }
        });
        let handle = Supervisor::builder()
            .task(idle("other"))
            .group(GroupSpec::new("g").task(idle("a")).task(spec))
            .build()
            .unwrap()
            .start();
        slot.set(&handle);
        let report = within(DEADLINE, "answer", rx.recv()).await.unwrap().unwrap();
        assert_eq!(report.name, "g");
        assert_eq!(report.outcome, StopOutcome::Graceful);
        assert_eq!(handle.unit_names(), ["other"]);
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

/// A unit awaits the stop of its own group inline, raced with its own
/// cancellation: nothing hangs, and the group ends stopped.
#[test]
fn a_task_awaiting_the_stop_of_its_own_group_inline_does_not_hang() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let spec = TaskSpec::new("me", {
            let slot = slot.clone();
            move |ctx: Context| {
                let slot = slot.clone();
                async move {
                    let handle = slot.get().await;
                    tokio::select! {
                        _ = handle.stop_unit("g") => {}
                        () = ctx.cancelled() => {}
                    }
                }
            }
        });
        let handle =
            Supervisor::builder().group(GroupSpec::new("g").task(spec).task(idle("z"))).build().unwrap().start();
        slot.set(&handle);
        within(DEADLINE, "g stopped", handle.wait_state("g", UnitState::Stopped)).await.unwrap();
        assert_eq!(handle.status("g/me").unwrap().state, UnitState::Stopped);
        assert_eq!(handle.status("g/z").unwrap().state, UnitState::Stopped);
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

// ---------------------------------------------------------------------------
// Calls from a future's `Drop`, from a factory, from a panic hook

/// Calls the handle when dropped: the synchronous calls at once, the
/// others in tasks of their own whose answers go to `answers`.
struct CallsOnDrop {
    handle: SupervisorHandle,
    me: &'static str,
    sibling: &'static str,
    answers: mpsc::UnboundedSender<(&'static str, Result<(), Error>)>,
}

impl Drop for CallsOnDrop {
    fn drop(&mut self) {
        let handle = &self.handle;
        let _ = handle.status(self.me);
        let _ = handle.statuses();
        let _ = handle.unit_names();
        let _ = handle.is_shutting_down();
        let _ = format!("{handle:?}");
        let calls: [(&'static str, Op); 4] = [
            ("restart sibling", Op::Restart),
            ("add", Op::Add),
            ("start me", Op::StartMe),
            ("remove sibling", Op::Remove),
        ];
        for (what, op) in calls {
            let (handle, answers, me, sibling) = (handle.clone(), self.answers.clone(), self.me, self.sibling);
            tokio::spawn(async move {
                let answer = match op {
                    Op::Restart => handle.restart(sibling).await,
                    Op::Add => handle.add(idle(&format!("{me}-heir"))).await,
                    Op::StartMe => handle.start_unit(me).await,
                    Op::Remove => handle.remove(sibling).await.map(drop),
                };
                let _ = answers.send((what, answer));
            });
        }
    }
}

#[derive(Clone, Copy)]
enum Op {
    Restart,
    Add,
    StartMe,
    Remove,
}

/// A task whose future calls the handle when dropped: after an abort (it
/// ignores its cancellation), every call is answered, nothing hangs, and
/// the calls take effect.
fn calls_from_drop(rt: Rt) {
    guarded(rt, || async {
        let slot = Slot::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let spec = TaskSpec::new("me", {
            let slot = slot.clone();
            move |_ctx: Context| {
                let (slot, answers) = (slot.clone(), tx.clone());
                async move {
                    let handle = slot.get().await;
                    let _guard = CallsOnDrop { handle, me: "me", sibling: "sibling", answers };
                    std::future::pending::<()>().await;
                }
            }
        })
        .stop_timeout(SEC)
        .restart(run_once());
        let handle = Supervisor::builder().task(idle("sibling")).task(spec).build().unwrap().start();
        slot.set(&handle);
        within(DEADLINE, "me ready", handle.wait_ready("me")).await.unwrap();
        settle().await;
        within(DEADLINE, "stop me", handle.stop_unit("me")).await.unwrap();
        let mut answers = Vec::new();
        for _ in 0..4 {
            answers.push(within(DEADLINE, "an answer from the drop's calls", rx.recv()).await.unwrap());
        }
        for (what, answer) in &answers {
            match *what {
                "remove sibling" => assert!(answer.is_ok() || matches!(answer, Err(Error::UnknownUnit { .. }))),
                "restart sibling" => {
                    assert!(answer.is_ok() || matches!(answer, Err(Error::UnknownUnit { .. })), "{answers:?}")
                }
                _ => assert!(answer.is_ok(), "{what}: {answers:?}"),
            }
        }
        within(DEADLINE, "heir", handle.wait_state("me-heir", UnitState::Running)).await.unwrap();
        within(DEADLINE, "me again", handle.wait_state("me", UnitState::Running)).await.unwrap();
        handle.skip_grace();
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_each_once(&report);
    });
}

#[test]
fn calls_from_a_dropped_future_are_answered() {
    calls_from_drop(Rt::Paused);
}

#[test]
fn calls_from_a_dropped_future_are_answered_on_many_threads() {
    calls_from_drop(Rt::Multi);
}

/// The same drop, in the shutdown: the calls that start something are
/// refused with `ShuttingDown`, the others answered; the shutdown ends.
#[test]
fn calls_from_a_future_dropped_in_the_shutdown_are_refused_or_answered() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let spec = TaskSpec::new("me", {
            let slot = slot.clone();
            move |_ctx: Context| {
                let (slot, answers) = (slot.clone(), tx.clone());
                async move {
                    let handle = slot.get().await;
                    let _guard = CallsOnDrop { handle, me: "me", sibling: "sibling", answers };
                    std::future::pending::<()>().await;
                }
            }
        })
        .stop_timeout(SEC);
        let handle = Supervisor::builder().task(idle("sibling")).task(spec).build().unwrap().start();
        slot.set(&handle);
        within(DEADLINE, "me ready", handle.wait_ready("me")).await.unwrap();
        settle().await;
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_each_once(&report);
        assert_eq!(line(&report, "me").outcome, StopOutcome::Forced);
        let mut answers = Vec::new();
        while let Ok(Some(answer)) = tokio::time::timeout(DEADLINE, rx.recv()).await {
            answers.push(answer);
            if answers.len() == 4 {
                break;
            }
        }
        assert_eq!(answers.len(), 4, "every call is answered: {answers:?}");
        for (what, answer) in &answers {
            match *what {
                "add" | "start me" | "restart sibling" => {
                    assert!(matches!(answer, Err(Error::ShuttingDown { .. })), "{what}: {answers:?}")
                }
                _ => assert!(
                    answer.is_ok() || matches!(answer, Err(Error::ShuttingDown { .. } | Error::UnknownUnit { .. })),
                    "{what}: {answers:?}"
                ),
            }
        }
    });
}

/// A factory that calls the handle: synchronous reads in the factory itself
/// and an `add` spawned from it, on every run of a task that fails at once
/// and is restarted with no delay (each next run made in the task of the
/// one before).
#[test]
fn a_factory_that_calls_the_handle_on_every_run() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let runs = counter();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let spec = TaskSpec::new("me", {
            let (slot, runs) = (slot.clone(), runs.clone());
            move |ctx: Context| {
                let run = runs.fetch_add(1, Ordering::SeqCst);
                let handle = slot.try_get();
                if let Some(handle) = &handle {
                    let status = handle.status("me").expect("me is known in its own factory");
                    assert_ne!(status.state, UnitState::Stopped);
                    let _ = handle.statuses();
                    let (handle, tx) = (handle.clone(), tx.clone());
                    tokio::spawn(async move {
                        let _ = tx.send(handle.add(idle(&format!("child-{run}"))).await);
                    });
                }
                async move {
                    if run < 5 {
                        return Err("again");
                    }
                    ctx.cancelled().await;
                    Ok(())
                }
            }
        })
        .restart(no_delay());
        let handle = Supervisor::builder().build().unwrap().start();
        slot.set(&handle);
        within(DEADLINE, "add", handle.add(spec)).await.unwrap();
        for _ in 0..6 {
            within(DEADLINE, "an add's answer", rx.recv()).await.unwrap().unwrap();
        }
        within(DEADLINE, "me running", handle.wait_state("me", UnitState::Running)).await.unwrap();
        for run in 0..6 {
            within(DEADLINE, "child", handle.wait_state(&format!("child-{run}"), UnitState::Running)).await.unwrap();
        }
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_each_once(&report);
    });
}

/// A factory that restarts its own unit (in a task of its own) on its
/// first run and stops it on its third: no hang; it ends stopped.
#[test]
fn a_factory_that_restarts_then_stops_its_own_unit() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let runs = counter();
        let spec = TaskSpec::new("me", {
            let (slot, runs) = (slot.clone(), runs.clone());
            move |ctx: Context| {
                let run = runs.fetch_add(1, Ordering::SeqCst);
                if let Some(handle) = slot.try_get() {
                    tokio::spawn(async move {
                        match run {
                            0 | 1 => handle.restart("me").await,
                            _ => handle.stop_unit("me").await,
                        }
                    });
                }
                async move { ctx.cancelled().await }
            }
        });
        let handle = Supervisor::builder().build().unwrap().start();
        slot.set(&handle);
        within(DEADLINE, "add", handle.add(spec)).await.unwrap();
        within(DEADLINE, "stopped", handle.wait_state("me", UnitState::Stopped)).await.unwrap();
        tokio::time::sleep(10 * SEC).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(handle.status("me").unwrap().state, UnitState::Stopped);
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

thread_local! {
    static HOOKED: std::cell::RefCell<Option<SupervisorHandle>> = const { std::cell::RefCell::new(None) };
}

/// A panic hook that reads the supervisor and spawns a restart of a
/// sibling, for the panics of this thread only (other tests share the
/// hook).
#[test]
fn a_panic_hook_that_calls_the_handle() {
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let previous = Arc::new(std::panic::take_hook());
    std::panic::set_hook({
        let previous = previous.clone();
        Box::new(move |info| {
            let hooked = HOOKED.with(|hooked| hooked.borrow().clone());
            match hooked {
                Some(handle) => {
                    CALLS.fetch_add(1, Ordering::SeqCst);
                    let _ = handle.statuses();
                    let _ = handle.status("panicky");
                    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                        runtime.spawn(async move { handle.restart("sibling").await });
                    }
                }
                None => previous(info),
            }
        })
    });
    guarded(Rt::Paused, || async {
        let runs = counter();
        let spec = TaskSpec::new("panicky", {
            let runs = runs.clone();
            move |ctx: Context| {
                let run = runs.fetch_add(1, Ordering::SeqCst);
                if run == 1 {
                    panic!("in the factory");
                }
                async move {
                    if run < 3 {
                        panic!("in the run");
                    }
                    ctx.cancelled().await;
                }
            }
        })
        .restart(no_delay());
        let handle = Supervisor::builder().task(idle("sibling")).build().unwrap().start();
        HOOKED.with(|hooked| *hooked.borrow_mut() = Some(handle.clone()));
        within(DEADLINE, "add", handle.add(spec)).await.unwrap();
        within(DEADLINE, "panicky running", handle.wait_status("panicky", |s| s.restart_count == 3 && s.running))
            .await
            .unwrap();
        settle().await;
        within(DEADLINE, "sibling running", handle.wait_state("sibling", UnitState::Running)).await.unwrap();
        HOOKED.with(|hooked| hooked.borrow_mut().take());
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_each_once(&report);
    });
    let _ = std::panic::take_hook();
    assert!(CALLS.load(Ordering::SeqCst) >= 3, "the hook ran for the three panics");
}

// ---------------------------------------------------------------------------
// Calls from a tracing layer and inside spans

/// A tracing layer that reads the supervisor on every event and every new
/// span (the supervisor's own included), and spawns a call on each event
/// that names a unit `sibling`.
struct ReadsTheSupervisor {
    slot: Slot,
    seen: Arc<AtomicU32>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ReadsTheSupervisor {
    fn on_event(&self, _event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        let Some(handle) = self.slot.try_get() else { return };
        self.seen.fetch_add(1, Ordering::Relaxed);
        let _ = handle.statuses();
        let _ = handle.status("g/a");
        let _ = handle.unit_names();
        let _ = handle.is_shutting_down();
    }

    fn on_new_span(
        &self,
        _attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if let Some(handle) = self.slot.try_get() {
            let _ = handle.statuses();
        }
    }
}

/// Everything the owner logs, with a layer that reads the supervisor from
/// inside those logs: restarts, stops, a strategy, adds, removes, a
/// failing unit, a shutdown. Nothing deadlocks.
#[test]
fn a_tracing_layer_that_reads_the_supervisor_on_every_event() {
    use tracing_subscriber::layer::SubscriberExt;
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let seen = counter();
        let reader = tracing_subscriber::registry().with(ReadsTheSupervisor { slot: slot.clone(), seen: seen.clone() });
        let _subscriber = subscriber::on_this_thread(reader);
        let fails = TaskSpec::new("fails", |_ctx: Context| async move {
            tokio::time::sleep(SEC).await;
            Err::<(), _>("boom")
        })
        .restart(no_delay().max_restarts(MaxRestarts::AtMost(3)));
        let handle = Supervisor::builder()
            .group(GroupSpec::new("g").strategy(Strategy::OneForAll).task(idle("a")).task(fails).task(idle("z")))
            .task(idle("sibling"))
            .build()
            .unwrap()
            .start();
        slot.set(&handle);
        within(DEADLINE, "g/fails failed", handle.wait_state("g/fails", UnitState::Failed)).await.unwrap();
        within(DEADLINE, "restart", handle.restart("g/a")).await.unwrap();
        within(DEADLINE, "stop", handle.stop_unit("sibling")).await.unwrap();
        within(DEADLINE, "start", handle.start_unit("sibling")).await.unwrap();
        within(DEADLINE, "add", handle.add_to("g", idle("b"))).await.unwrap();
        within(DEADLINE, "remove", handle.remove("g/b")).await.unwrap();
        within(DEADLINE, "restart g", handle.restart("g")).await.unwrap();
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_each_once(&report);
        assert!(seen.load(Ordering::Relaxed) > 0, "the layer saw the supervisor's events");
    });
}

/// Control calls made inside a span of the caller's (which keeps them off
/// the caller's task) and from inside a unit's own run, which runs in the
/// supervisor's `unit` span when a subscriber is installed: all answered.
#[test]
fn calls_inside_spans_are_answered() {
    guarded(Rt::Paused, || async {
        let _subscriber = subscriber::on_this_thread(tracing_subscriber::registry());
        let slot = Slot::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let runs = counter();
        let spec = TaskSpec::new("me", {
            let (slot, runs) = (slot.clone(), runs.clone());
            move |ctx: Context| {
                let (slot, tx, runs) = (slot.clone(), tx.clone(), runs.clone());
                async move {
                    if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                        let handle = slot.get().await;
                        let _ = tx.send(handle.restart("sibling").await);
                        let _ = tx.send(handle.add(idle("added")).await);
                        let _ = tx.send(handle.remove("added").await.map(drop));
                        let _ = tx.send(handle.stop_unit("sibling").await);
                        let _ = tx.send(handle.wait_ready("me").await.map(drop));
                        tokio::spawn(async move {
                            let _ = tx.send(handle.restart("me").await);
                        });
                    }
                    ctx.cancelled().await;
                }
            }
        });
        let handle = Supervisor::builder().task(idle("sibling")).task(spec).build().unwrap().start();
        slot.set(&handle);
        for _ in 0..6 {
            let answer = within(DEADLINE, "an answer", rx.recv()).await.unwrap();
            assert!(answer.is_ok(), "{answer:?}");
        }
        use tracing::Instrument;
        async {
            within(DEADLINE, "restart in a span", handle.restart("me")).await.unwrap();
            within(DEADLINE, "start in a span", handle.start_unit("sibling")).await.unwrap();
            within(DEADLINE, "add in a span", handle.add(idle("x"))).await.unwrap();
            within(DEADLINE, "remove in a span", handle.remove("x")).await.unwrap();
        }
        .instrument(tracing::info_span!("caller"))
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert!(report.is_clean(), "{report:#?}");
    });
}

// ---------------------------------------------------------------------------
// Calls from other threads and other runtimes

/// Polls `future` to its end on the current thread, outside any runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let started = std::time::Instant::now();
    loop {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        assert!(started.elapsed() < DEADLINE, "no answer on a plain thread within {DEADLINE:?}");
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

/// Every call, made from a plain thread with no runtime: answered.
fn calls_from_a_plain_thread(rt: Rt) {
    guarded(rt, || async {
        let handle =
            Supervisor::builder().task(idle("a")).group(GroupSpec::new("g").task(idle("b"))).build().unwrap().start();
        within(DEADLINE, "a ready", handle.wait_ready("a")).await.unwrap();
        let outside = handle.clone();
        let thread = std::thread::spawn(move || {
            let handle = outside;
            assert_eq!(handle.unit_names(), ["a", "g", "g/b"]);
            let _ = handle.statuses();
            block_on(handle.restart("a")).unwrap();
            block_on(handle.stop_unit("g/b")).unwrap();
            block_on(handle.start_unit("g/b")).unwrap();
            block_on(handle.add(idle("c"))).unwrap();
            block_on(handle.add_to("g", idle("d"))).unwrap();
            block_on(handle.wait_ready("g/d")).unwrap();
            block_on(handle.pause_restarts("c")).unwrap();
            block_on(handle.resume_restarts("c")).unwrap();
            block_on(handle.remove("c")).unwrap();
            block_on(handle.restart("g")).unwrap();
            block_on(handle.wait_state("g/d", UnitState::Running)).unwrap();
            let report = block_on(handle.shutdown());
            assert!(report.is_clean(), "{report:#?}");
            // The last clone goes here, on a thread of no runtime.
            drop(handle);
        });
        let report = within(DEADLINE, "the end", handle.wait()).await;
        tokio::task::spawn_blocking(move || thread.join()).await.unwrap().unwrap();
        assert_each_once(&report);
    });
}

#[test]
fn calls_from_a_plain_thread_are_answered() {
    calls_from_a_plain_thread(Rt::Current);
}

#[test]
fn calls_from_a_plain_thread_are_answered_on_many_threads() {
    calls_from_a_plain_thread(Rt::Multi);
}

/// Health asked from a plain thread, with checks registered: answered, each
/// check run and judged (a passing one, a failing one, one that blocks past
/// the timeout), where the timer of the judging panicked for want of a
/// runtime on the caller's thread.
#[test]
fn health_asked_from_a_plain_thread_is_answered() {
    guarded(Rt::Multi, || async {
        let handle = Supervisor::builder()
            .task(idle("a"))
            .health_check_timeout(Duration::from_millis(300))
            .health_check("passes", || async { Ok::<_, String>(()) })
            .health_check("fails", || async { Err::<(), _>("refused") })
            .health_check("blocks", || async {
                std::thread::sleep(Duration::from_secs(2));
                Ok::<_, String>(())
            })
            .build()
            .unwrap()
            .start();
        within(DEADLINE, "a ready", handle.wait_ready("a")).await.unwrap();
        let outside = handle.clone();
        let thread = std::thread::spawn(move || block_on(outside.health()));
        let report = tokio::task::spawn_blocking(move || thread.join()).await.unwrap();
        let report = report.unwrap_or_else(|_| panic!("health() panicked on a plain thread"));
        let checks: Vec<_> =
            report.checks.iter().map(|check| (check.name.as_str(), check.ok, check.error.as_deref())).collect();
        assert_eq!(
            checks,
            [
                ("passes", true, None),
                ("fails", false, Some("refused")),
                ("blocks", false, Some("timed out after 300ms"))
            ],
            "{report:#?}"
        );
        assert!(!report.live, "{report:#?}");
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

/// The supervisor on one runtime, a unit's handle used from a second
/// runtime (current-thread or multi-thread) on another thread: every call is
/// answered, also while units of the supervisor call the same units.
fn calls_from_a_second_runtime(host: Rt, other: Rt) {
    guarded(host, move || async move {
        let slot = Slot::new();
        let spec = TaskSpec::new("churn", {
            let slot = slot.clone();
            move |ctx: Context| {
                let slot = slot.clone();
                async move {
                    let handle = slot.get().await;
                    let mut i = 0u32;
                    while !ctx.is_cancelled() && i < 200 {
                        let _ = handle.restart("a").await;
                        let _ = handle.add_to("g", idle("x")).await;
                        let _ = handle.remove("g/x").await;
                        i += 1;
                    }
                    ctx.cancelled().await;
                }
            }
        });
        let handle = Supervisor::builder()
            .task(idle("a"))
            .group(GroupSpec::new("g").task(idle("b")))
            .task(spec)
            .build()
            .unwrap()
            .start();
        slot.set(&handle);
        let outside = handle.clone();
        let thread = std::thread::spawn(move || {
            let runtime = runtime(other);
            runtime.block_on(async move {
                let handle = outside;
                for i in 0..100 {
                    within(DEADLINE, "restart a", handle.restart("a")).await.unwrap();
                    within(DEADLINE, "stop g/b", handle.stop_unit("g/b")).await.unwrap();
                    within(DEADLINE, "start g/b", handle.start_unit("g/b")).await.unwrap();
                    let name = format!("y{i}");
                    within(DEADLINE, "add", handle.add_to("g", idle(&name))).await.unwrap();
                    within(DEADLINE, "ready", handle.wait_ready(&format!("g/{name}"))).await.unwrap();
                    within(DEADLINE, "remove", handle.remove(&format!("g/{name}"))).await.unwrap();
                    match within(DEADLINE, "add x", handle.add_to("g", idle("x"))).await {
                        Ok(()) | Err(Error::DuplicateName { .. }) => {}
                        Err(error) => panic!("{error:?}"),
                    }
                }
                within(DEADLINE, "restart g", handle.restart("g")).await.unwrap();
                within(DEADLINE, "g running", handle.wait_state("g/b", UnitState::Running)).await.unwrap();
            });
        });
        tokio::task::spawn_blocking(move || thread.join()).await.unwrap().unwrap();
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_each_once(&report);
    });
}

#[test]
fn calls_from_a_current_thread_runtime_to_a_multi_thread_one() {
    calls_from_a_second_runtime(Rt::Multi, Rt::Current);
}

#[test]
fn calls_from_a_multi_thread_runtime_to_a_current_thread_one() {
    calls_from_a_second_runtime(Rt::Current, Rt::Multi);
}

#[test]
fn calls_from_a_current_thread_runtime_to_another() {
    calls_from_a_second_runtime(Rt::Current, Rt::Current);
}

// ---------------------------------------------------------------------------
// The last handle

/// The last outside handle is dropped while a unit keeps a clone: the
/// supervisor goes on (not every handle is gone); once the unit drops its
/// clone, the shutdown runs in the background and stops every unit.
#[test]
fn the_last_handle_held_by_a_unit_keeps_the_supervisor_until_dropped() {
    guarded(Rt::Paused, || async {
        let slot: Arc<Mutex<Option<SupervisorHandle>>> = Arc::default();
        let (let_go, told) = mpsc::unbounded_channel::<()>();
        let told = Arc::new(tokio::sync::Mutex::new(Some(told)));
        let keeper = TaskSpec::new("keeper", {
            let slot = slot.clone();
            move |ctx: Context| {
                let held = slot.lock().unwrap().take();
                let told = told.clone();
                async move {
                    let Some(told) = told.lock().await.take() else { return ctx.cancelled().await };
                    let mut told = told;
                    let _ = told.recv().await;
                    // Used once more, then dropped with the run's future.
                    let held = held.expect("the keeper holds a handle");
                    let _ = held.statuses();
                    drop(held);
                    ctx.cancelled().await;
                }
            }
        });
        let sup = Supervisor::builder().task(idle("other")).build().unwrap();
        let mut events = sup.subscribe();
        let handle = sup.start();
        *slot.lock().unwrap() = Some(handle.clone());
        within(DEADLINE, "add", handle.add(keeper)).await.unwrap();
        within(DEADLINE, "keeper ready", handle.wait_ready("keeper")).await.unwrap();
        settle().await;
        drop(handle);
        tokio::time::sleep(10 * SEC).await;
        let before: Vec<Event> = std::iter::from_fn(|| events.try_recv().ok()).collect();
        assert!(
            !before.iter().any(|e| matches!(e.kind, EventKind::Stopped { .. })),
            "a unit still holds a handle: nothing stops yet: {before:#?}"
        );
        let_go.send(()).unwrap();
        let log = all_events(&mut events).await;
        for name in ["other", "keeper"] {
            assert!(
                log.iter().any(|e| e.unit == name && matches!(e.kind, EventKind::Stopped { .. })),
                "{name} is stopped in the background: {log:#?}"
            );
        }
    });
}

/// The last handle is held by a unit that fails at once and restarts with
/// no delay: each run drops it and the next takes it back, in the run's own
/// task (made inside the report of the one before). Then the last clone
/// goes with a run, and the supervisor shuts down in the background.
#[test]
fn the_last_handle_dropped_by_a_run_restarted_in_its_own_task() {
    guarded(Rt::Paused, || async {
        let slot: Arc<Mutex<Option<SupervisorHandle>>> = Arc::default();
        let runs = counter();
        let spec = TaskSpec::new("flaky", {
            let (slot, runs) = (slot.clone(), runs.clone());
            move |_ctx: Context| {
                let run = runs.fetch_add(1, Ordering::SeqCst);
                let held = slot.lock().unwrap().take();
                let slot = slot.clone();
                async move {
                    if let Some(held) = held {
                        let _ = held.status("flaky");
                        if run < 20 {
                            *slot.lock().unwrap() = Some(held);
                        }
                    }
                    Err::<(), _>("again")
                }
            }
        })
        .restart(no_delay());
        let sup = Supervisor::builder().task(idle("other")).build().unwrap();
        let mut events = sup.subscribe();
        let handle = sup.start();
        within(DEADLINE, "add", handle.add(spec)).await.unwrap();
        *slot.lock().unwrap() = Some(handle.clone());
        drop(handle);
        events_until(DEADLINE, &mut events, |e| e.unit == "other" && matches!(e.kind, EventKind::Stopped { .. })).await;
        assert!(runs.load(Ordering::SeqCst) > 20);
    });
}

// ---------------------------------------------------------------------------
// Many callers

/// Thousands of tasks add and remove a few names at once, some from inside
/// units (which remove themselves): every call is answered with a documented
/// result, and what is left is consistent.
#[test]
fn thousands_of_adds_and_removes_of_the_same_names() {
    guarded(Rt::Multi, || async {
        let slot = Slot::new();
        let handle = Supervisor::builder().group(GroupSpec::new("g")).build().unwrap().start();
        slot.set(&handle);
        let names = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"];
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..3000usize {
            let handle = handle.clone();
            let slot = slot.clone();
            let name = names[i % names.len()];
            calls.spawn(async move {
                let in_group = i % 3 == 0;
                let path = if in_group { format!("g/{name}") } else { name.to_owned() };
                // Some units remove themselves from their run.
                let removes_itself = i % 7 == 0;
                let spec = TaskSpec::new(name, {
                    let (slot, path) = (slot.clone(), path.clone());
                    move |ctx: Context| {
                        let (slot, path) = (slot.clone(), path.clone());
                        async move {
                            if removes_itself {
                                let handle = slot.get().await;
                                tokio::select! {
                                    _ = handle.remove(&path) => {}
                                    () = ctx.cancelled() => {}
                                }
                            } else {
                                ctx.cancelled().await;
                            }
                        }
                    }
                });
                let added = if in_group { handle.add_to("g", spec).await } else { handle.add(spec).await };
                match added {
                    Ok(()) | Err(Error::DuplicateName { .. }) => {}
                    Err(error) => panic!("add {path}: {error:?}"),
                }
                if i % 2 == 0 {
                    tokio::task::yield_now().await;
                }
                match handle.remove(&path).await {
                    Ok(_) | Err(Error::UnknownUnit { .. }) => {}
                    Err(error) => panic!("remove {path}: {error:?}"),
                }
            });
        }
        within(DEADLINE, "every call", async {
            while let Some(done) = calls.join_next().await {
                done.unwrap();
            }
        })
        .await;
        // What is left runs (or is on its way), once each.
        let statuses = handle.statuses();
        let mut seen = HashSet::new();
        for status in &statuses {
            assert!(seen.insert(status.name.clone()), "{} twice: {statuses:#?}", status.name);
        }
        let names_now = handle.unit_names();
        assert_eq!(names_now, statuses.iter().map(|s| s.name.clone()).collect::<Vec<_>>());
        for name in names_now.iter().filter(|name| *name != "g") {
            match within(DEADLINE, "remove what is left", handle.remove(name)).await {
                Ok(_) | Err(Error::UnknownUnit { .. }) => {}
                Err(error) => panic!("remove {name}: {error:?}"),
            }
        }
        assert_eq!(handle.unit_names(), ["g"]);
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_each_once(&report);
        assert!(report.is_clean(), "{report:#?}");
    });
}

// ---------------------------------------------------------------------------
// Units that control their siblings while a strategy restarts them

/// In a `one_for_all` (or `rest_for_one`) group whose first unit keeps
/// failing, another unit restarts, stops and starts its siblings, adds
/// and removes one, on each of its runs, while the strategy stops and
/// starts them all. Every call is answered with a documented result, and a
/// shutdown ends it all.
fn siblings_controlled_during_a_strategy(strategy: Strategy, rt: Rt) {
    guarded(rt, move || async move {
        let slot = Slot::new();
        let answers = Arc::new(Mutex::new(Vec::new()));
        let fails = TaskSpec::new("fails", |_ctx: Context| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Err::<(), _>("boom")
        })
        .restart(no_delay());
        let controller = TaskSpec::new("controller", {
            let (slot, answers) = (slot.clone(), answers.clone());
            move |ctx: Context| {
                let (slot, answers) = (slot.clone(), answers.clone());
                async move {
                    let handle = slot.get().await;
                    // Each call is its own task: a run stopped by the strategy drops only itself.
                    let calls: [(&str, &str); 6] = [
                        ("restart", "g/idle"),
                        ("stop", "g/idle"),
                        ("start", "g/idle"),
                        ("add", "g/extra"),
                        ("remove", "g/extra"),
                        ("restart", "g/fails"),
                    ];
                    for (op, unit) in calls {
                        let (handle, answers) = (handle.clone(), answers.clone());
                        tokio::spawn(async move {
                            let answer = match op {
                                "restart" => handle.restart(unit).await,
                                "stop" => handle.stop_unit(unit).await,
                                "start" => handle.start_unit(unit).await,
                                "add" => handle.add_to("g", idle("extra")).await,
                                _ => handle.remove(unit).await.map(drop),
                            };
                            answers.lock().unwrap().push((op, answer));
                        });
                    }
                    ctx.cancelled().await;
                }
            }
        });
        let handle = Supervisor::builder()
            .group(GroupSpec::new("g").strategy(strategy).task(fails).task(controller).task(idle("idle")))
            .build()
            .unwrap()
            .start();
        slot.set(&handle);
        within(DEADLINE, "many restarts", handle.wait_status("g/controller", |s| s.restarts_total >= 30))
            .await
            .unwrap();
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_each_once(&report);
        assert!(report.is_clean(), "{report:#?}");
        // Some calls may still be on their way; wait for every answer there will be.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let answers = answers.lock().unwrap();
        assert!(!answers.is_empty());
        for (op, answer) in answers.iter() {
            match answer {
                Ok(())
                | Err(
                    Error::DuplicateName { .. }
                    | Error::UnknownUnit { .. }
                    | Error::GroupNotRunning { .. }
                    | Error::ShuttingDown { .. },
                ) => {}
                Err(error) => panic!("{op}: {error:?}"),
            }
        }
    });
}

#[test]
fn siblings_controlled_during_one_for_all_restarts() {
    siblings_controlled_during_a_strategy(Strategy::OneForAll, Rt::Paused);
}

#[test]
fn siblings_controlled_during_rest_for_one_restarts() {
    siblings_controlled_during_a_strategy(Strategy::RestForOne, Rt::Paused);
}

#[test]
fn siblings_controlled_during_one_for_all_restarts_on_many_threads() {
    siblings_controlled_during_a_strategy(Strategy::OneForAll, Rt::Multi);
}

// ---------------------------------------------------------------------------
// Units that call during the shutdown

/// Units that, once cancelled by the shutdown, call control methods on
/// their siblings and on themselves, and await the answers before
/// returning: each call is answered at once (within the grace period:
/// every unit stops gracefully), with what the docs say of a shutdown.
fn calls_during_the_shutdown(order: supervisor::ShutdownOrder) {
    guarded(Rt::Paused, move || async move {
        let slot = Slot::new();
        let answers = Arc::new(Mutex::new(Vec::new()));
        let caller = |name: &'static str, path: &'static str, others: [&'static str; 2]| {
            let (slot, answers) = (slot.clone(), answers.clone());
            TaskSpec::new(name, move |ctx: Context| {
                let (slot, answers) = (slot.clone(), answers.clone());
                async move {
                    let handle = slot.get().await;
                    ctx.cancelled().await;
                    let got = |op, other, answer| answers.lock().unwrap().push((name, op, other, answer));
                    for other in others.into_iter().chain([path]) {
                        got("restart", other, handle.restart(other).await);
                        got("start", other, handle.start_unit(other).await);
                        got("add", other, handle.add(idle("late")).await);
                        // A stop waits for the shutdown's stop of that unit
                        // (which may wait for this one): not awaited here.
                        let (handle, answers) = (handle.clone(), answers.clone());
                        tokio::spawn(async move {
                            let answer = handle.stop_unit(other).await;
                            answers.lock().unwrap().push((name, "stop", other, answer));
                        });
                    }
                }
            })
            .stop_timeout(5 * SEC)
        };
        let handle = Supervisor::builder()
            .shutdown_order(order)
            .task(caller("a", "a", ["b", "g/c"]))
            .task(caller("b", "b", ["a", "g/c"]))
            .group(GroupSpec::new("g").task(caller("c", "g/c", ["a", "b"])))
            .build()
            .unwrap()
            .start();
        slot.set(&handle);
        for name in ["a", "b", "g/c"] {
            within(DEADLINE, "ready", handle.wait_ready(name)).await.unwrap();
        }
        settle().await;
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_each_once(&report);
        settle().await;
        let answers = answers.lock().unwrap();
        for line in &report.units {
            assert_eq!(line.outcome, StopOutcome::Graceful, "every call answered at once: {report:#?} {answers:#?}");
        }
        assert_eq!(answers.len(), 36, "{answers:#?}");
        for (by, op, unit, answer) in answers.iter() {
            let ok = match *op {
                "restart" | "start" | "add" => matches!(answer, Err(Error::ShuttingDown { .. })),
                _ => answer.is_ok(),
            };
            assert!(ok, "{by}: {op} {unit}: {answer:?}");
        }
    });
}

#[test]
fn calls_from_units_during_a_sequential_shutdown() {
    calls_during_the_shutdown(supervisor::ShutdownOrder::Sequential);
}

#[test]
fn calls_from_units_during_a_concurrent_shutdown() {
    calls_during_the_shutdown(supervisor::ShutdownOrder::Concurrent);
}

// ---------------------------------------------------------------------------
// Readiness told from odd places

/// `ctx.ready()` from a plain thread, and from a second runtime: the unit
/// becomes ready and its dependents start.
#[test]
fn ready_told_from_a_plain_thread_and_a_second_runtime_starts_the_dependents() {
    guarded(Rt::Multi, || async {
        let from_thread = TaskSpec::new("a", |ctx: Context| async move {
            let told = ctx.clone();
            std::thread::spawn(move || told.ready()).join().unwrap();
            ctx.cancelled().await;
        })
        .readiness(Readiness::Notified);
        let from_runtime = TaskSpec::new("b", |ctx: Context| async move {
            let told = ctx.clone();
            std::thread::spawn(move || {
                runtime(Rt::Current).block_on(async move {
                    tokio::task::yield_now().await;
                    told.ready();
                })
            })
            .join()
            .unwrap();
            ctx.cancelled().await;
        })
        .readiness(Readiness::Notified);
        let handle = Supervisor::builder()
            .group(GroupSpec::new("g").task(from_thread).task(idle("c").depends_on(["a"])))
            .task(from_runtime)
            .task(idle("d").depends_on(["b", "g"]))
            .build()
            .unwrap()
            .start();
        within(DEADLINE, "d running", handle.wait_state("d", UnitState::Running)).await.unwrap();
        within(DEADLINE, "g/c running", handle.wait_state("g/c", UnitState::Running)).await.unwrap();
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert!(report.is_clean(), "{report:#?}");
    });
}

/// `ctx.ready()` from a task spawned by the run, on the supervisor's
/// runtime, after the run that owns it was restarted: the stale word is
/// ignored; the new run is not ready until it says so.
#[test]
fn ready_told_by_a_stale_run_is_ignored() {
    guarded(Rt::Paused, || async {
        let (tx, mut rx) = mpsc::unbounded_channel::<Context>();
        let spec = TaskSpec::new("a", move |ctx: Context| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(ctx.clone());
                ctx.cancelled().await;
            }
        })
        .readiness(Readiness::Notified);
        let handle = Supervisor::builder().task(spec).task(idle("b").depends_on(["a"])).build().unwrap().start();
        let first = within(DEADLINE, "first run", rx.recv()).await.unwrap();
        within(DEADLINE, "restart", handle.restart("a")).await.unwrap();
        let _second = within(DEADLINE, "second run", rx.recv()).await.unwrap();
        first.ready();
        settle().await;
        tokio::time::sleep(SEC).await;
        let a = handle.status("a").unwrap();
        assert!(!a.ready, "a stale run's word made the new run ready: {a:?}");
        assert_ne!(handle.status("b").unwrap().state, UnitState::Running);
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

// ---------------------------------------------------------------------------
// The supervisor's runtime goes away

/// The runtime the supervisor was started on is dropped (its tasks, the
/// owners' included, go with it) while another thread holds a handle. The
/// supervisor has ended then (its daemons are killed, `restart` already
/// answers `ShuttingDown`), but `wait()` never returns, nor does a wait for
/// a state, and the statuses say `Running` for ever.
#[test]
fn waits_after_the_supervisors_runtime_is_gone_do_not_hang() {
    guarded(Rt::Current, || async {
        let (handle, pid) = tokio::task::spawn_blocking(|| {
            let host = runtime(Rt::Current);
            let started = host.block_on(async {
                let handle = Supervisor::builder()
                    .task(idle("a"))
                    .daemon(supervisor::DaemonSpec::new("d", "sleep").arg("300"))
                    .group(supervisor::GroupSpec::new("g").task(idle("e")))
                    .build()
                    .unwrap()
                    .start();
                within(DEADLINE, "a ready", handle.wait_ready("a")).await.unwrap();
                within(DEADLINE, "g ready", handle.wait_ready("g")).await.unwrap();
                let pid = within(DEADLINE, "d ready", handle.wait_ready("d")).await.unwrap().pid.unwrap();
                (handle, pid)
            });
            drop(host);
            started
        })
        .await
        .unwrap();
        // What holds: the daemon is gone, and a restart is refused.
        let proc_dir = format!("/proc/{pid}");
        let gone = std::path::Path::new(&proc_dir);
        for _ in 0..100 {
            if !gone.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!gone.exists(), "the daemon outlived its supervisor's runtime");
        let restart = within(DEADLINE, "restart", handle.restart("a")).await;
        assert!(matches!(restart, Err(Error::ShuttingDown { .. })), "{restart:?}");
        // The waits answer: the supervisor ended with its runtime, and says so.
        let state = tokio::time::timeout(5 * SEC, handle.wait_state("a", UnitState::Stopped)).await;
        let report = tokio::time::timeout(5 * SEC, handle.wait()).await;
        assert!(
            state.is_ok() && report.is_ok(),
            "wait_state: {state:?}; wait: {report:?}; a: {:?}; shutting down: {}",
            handle.status("a"),
            handle.is_shutting_down()
        );
        let report = report.unwrap();
        assert_eq!(report.cause, supervisor::ShutdownCause::RuntimeDropped, "{report}");
        assert_eq!(report.exit_code(), 1, "{report}");
        // Listed as a shutdown stops them: the newest first, a group's
        // units before the group.
        let lines: Vec<_> = report.units.iter().map(|unit| (unit.name.as_str(), unit.outcome, unit.state)).collect();
        let forced = |name| (name, supervisor::StopOutcome::Forced, UnitState::Stopped);
        assert_eq!(lines, [forced("g/e"), forced("g"), forced("d"), forced("a")], "{report}");
        assert!(handle.is_shutting_down());
        assert_eq!(handle.status("d").unwrap().pid, None);
    });
}

/// The runtime is dropped while some units have no run: one waiting for a
/// dependency that never becomes ready, one waiting out its restart delay,
/// and, with a runtime dropped before the supervisor's task first ran,
/// units never started at all. Nothing of theirs was aborted or killed,
/// where the report said that each had been: the units between runs are
/// stopped gracefully, in no time, as a shutdown stops them, and those
/// never started were not running; the unit whose run was dropped is
/// listed forced.
#[test]
fn units_without_a_run_when_the_runtime_goes_are_not_listed_forced() {
    guarded(Rt::Current, || async {
        let report = tokio::task::spawn_blocking(|| {
            let host = runtime(Rt::Current);
            let handle = host.block_on(async {
                let never_ready = TaskSpec::new("never-ready", |ctx: Context| async move { ctx.cancelled().await })
                    .readiness(Readiness::Notified);
                let failing = TaskSpec::new("failing", |_ctx: Context| async { Err::<(), _>("boom") })
                    .restart(supervisor::RestartPolicy::new().delay(Duration::from_secs(3600)));
                let handle = Supervisor::builder()
                    .task(never_ready)
                    .daemon(supervisor::DaemonSpec::new("dependent", "sleep").arg("300").depends_on(["never-ready"]))
                    .task(failing)
                    .task(idle("running"))
                    .build()
                    .unwrap()
                    .start();
                within(DEADLINE, "running ready", handle.wait_ready("running")).await.unwrap();
                within(DEADLINE, "failing in backoff", handle.wait_state("failing", UnitState::Backoff)).await.unwrap();
                within(DEADLINE, "dependent waiting", handle.wait_state("dependent", UnitState::Waiting))
                    .await
                    .unwrap();
                handle
            });
            drop(host);
            let report = runtime(Rt::Current).block_on(within(DEADLINE, "wait", handle.wait()));
            // A runtime dropped before the supervisor's task first ran.
            let host = runtime(Rt::Current);
            let never_ran = host.block_on(async {
                Supervisor::builder()
                    .task(idle("task"))
                    .daemon(supervisor::DaemonSpec::new("daemon", "sleep").arg("300"))
                    .build()
                    .unwrap()
                    .start()
            });
            drop(host);
            let never_ran = runtime(Rt::Current).block_on(within(DEADLINE, "wait", never_ran.wait()));
            (report, never_ran)
        })
        .await
        .unwrap();
        let (report, never_ran) = report;
        let lines = |report: &ShutdownReport| -> Vec<_> {
            report.units.iter().map(|unit| (unit.name.clone(), unit.outcome, unit.state)).collect()
        };
        let line = |name: &str, outcome| (name.to_owned(), outcome, UnitState::Stopped);
        assert_eq!(
            lines(&report),
            [
                line("running", StopOutcome::Forced),
                line("failing", StopOutcome::Graceful),
                line("dependent", StopOutcome::Graceful),
                line("never-ready", StopOutcome::Forced),
            ],
            "{report}"
        );
        assert_eq!(
            lines(&never_ran),
            [line("daemon", StopOutcome::NotRunning), line("task", StopOutcome::NotRunning)],
            "{never_ran}"
        );
        assert_eq!(never_ran.cause, supervisor::ShutdownCause::RuntimeDropped, "{never_ran}");
    });
}

/// The runtime is dropped while a shutdown waits for a unit that takes its
/// time to stop: the unit's line says how long its stop took, from when it
/// was asked to the drop, as a shutdown's lines do, where it said 0 ns
/// whatever the wait (and the whole shutdown's took hundreds of times more).
#[test]
fn a_stop_cut_short_by_the_runtime_tells_how_long_it_took() {
    const STOPPING_FOR: Duration = Duration::from_millis(300);
    guarded(Rt::Current, || async {
        let report = tokio::task::spawn_blocking(|| {
            let host = runtime(Rt::Current);
            let handle = host.block_on(async {
                let stubborn = TaskSpec::new("stubborn", |ctx: Context| async move {
                    ctx.cancelled().await;
                    std::future::pending::<()>().await;
                })
                .stop_timeout(Duration::from_secs(3600));
                let handle = Supervisor::builder().task(stubborn).build().unwrap().start();
                within(DEADLINE, "stubborn ready", handle.wait_ready("stubborn")).await.unwrap();
                let shutdown = handle.clone();
                tokio::spawn(async move { shutdown.shutdown().await });
                within(DEADLINE, "stopping", handle.wait_state("stubborn", UnitState::Stopping)).await.unwrap();
                tokio::time::sleep(STOPPING_FOR).await;
                handle
            });
            drop(host);
            runtime(Rt::Current).block_on(within(DEADLINE, "wait", handle.wait()))
        })
        .await
        .unwrap();
        let stubborn = line(&report, "stubborn");
        assert_eq!(stubborn.outcome, StopOutcome::Forced, "{report}");
        assert!(stubborn.took >= STOPPING_FOR, "{report}");
        assert!(stubborn.took <= report.took, "{report}");
    });
}

/// `pause_restarts` and `resume_restarts` document `Error::ShuttingDown`
/// "once a shutdown began", as `start_unit` and `restart` do; called from a
/// unit's own stop in the shutdown, they answer `Ok`.
#[test]
fn pausing_restarts_in_the_shutdown_is_refused() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let answers = Arc::new(Mutex::new(Vec::new()));
        let spec = TaskSpec::new("me", {
            let (slot, answers) = (slot.clone(), answers.clone());
            move |ctx: Context| {
                let (slot, answers) = (slot.clone(), answers.clone());
                async move {
                    let handle = slot.get().await;
                    ctx.cancelled().await;
                    assert!(handle.is_shutting_down());
                    let start = handle.start_unit("other").await;
                    let pause = handle.pause_restarts("other").await;
                    let resume = handle.resume_restarts("other").await;
                    answers.lock().unwrap().extend([("start", start), ("pause", pause), ("resume", resume)]);
                }
            }
        });
        let handle = Supervisor::builder().task(idle("other")).task(spec).build().unwrap().start();
        slot.set(&handle);
        within(DEADLINE, "ready", handle.wait_ready("me")).await.unwrap();
        settle().await;
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert!(report.is_clean(), "{report:#?}");
        let answers = answers.lock().unwrap();
        assert_eq!(answers.len(), 3);
        for (what, answer) in answers.iter() {
            assert!(matches!(answer, Err(Error::ShuttingDown { .. })), "{what}: {answers:?}");
        }
    });
}

// ---------------------------------------------------------------------------
// More self-control: inline, with dependencies, racing the run's end

/// A task awaits its own removal in its run without watching its
/// cancellation: aborted at the end of its grace period, it is forgotten
/// all the same.
#[test]
fn a_task_awaiting_its_own_removal_is_aborted_and_forgotten() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let handle = Supervisor::builder().task(idle("other")).build().unwrap().start();
        slot.set(&handle);
        let mut events = handle.subscribe();
        let spec = TaskSpec::new("me", {
            let slot = slot.clone();
            move |_ctx: Context| {
                let slot = slot.clone();
                async move {
                    let handle = slot.get().await;
                    let _ = handle.remove("me").await;
                    std::future::pending::<()>().await;
                }
            }
        })
        .stop_timeout(2 * SEC);
        within(DEADLINE, "add", handle.add(spec)).await.unwrap();
        let log = events_until(DEADLINE, &mut events, |e| e.unit == "me" && matches!(e.kind, EventKind::Removed)).await;
        assert!(log.iter().any(|e| e.unit == "me" && matches!(e.kind, EventKind::Stopped { forced: true, .. })));
        assert!(handle.status("me").is_none());
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

/// A dependent restarts (or stops) its own dependency, raced with its own
/// cancellation: the call stops the dependent first, which lets the call go
/// on; both end as the call says.
#[test]
fn a_dependent_that_restarts_its_dependency() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let runs = counter();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let b = TaskSpec::new("b", {
            let (slot, runs) = (slot.clone(), runs.clone());
            move |ctx: Context| {
                let (slot, runs, tx) = (slot.clone(), runs.clone(), tx.clone());
                async move {
                    let run = runs.fetch_add(1, Ordering::SeqCst);
                    let handle = slot.get().await;
                    if run == 0 {
                        let _ = tx.send(("remove a", handle.remove("a").await.map(drop)));
                        let call = handle.restart("a");
                        tokio::select! {
                            answer = call => { let _ = tx.send(("restart a (answered in the run)", answer)); }
                            () = ctx.cancelled() => {}
                        }
                    } else if run == 1 {
                        tokio::select! {
                            _ = handle.stop_unit("a") => {}
                            () = ctx.cancelled() => {}
                        }
                    }
                    ctx.cancelled().await;
                }
            }
        })
        .depends_on(["a"]);
        let handle = Supervisor::builder().task(idle("a")).task(b).build().unwrap().start();
        slot.set(&handle);
        let (what, answer) = within(DEADLINE, "remove's answer", rx.recv()).await.unwrap();
        assert!(matches!(answer, Err(Error::HasDependents { .. })), "{what}: {answer:?}");
        // The restart of `a` stops `b` first, then starts both again.
        within(DEADLINE, "b's second run", handle.wait_status("b", |_| runs.load(Ordering::SeqCst) >= 2))
            .await
            .unwrap();
        // The second run stops `a` (and `b` with it).
        within(DEADLINE, "a stopped", handle.wait_state("a", UnitState::Stopped)).await.unwrap();
        within(DEADLINE, "b stopped", handle.wait_state("b", UnitState::Stopped)).await.unwrap();
        tokio::time::sleep(10 * SEC).await;
        assert_eq!(handle.status("a").unwrap().state, UnitState::Stopped);
        assert_eq!(handle.status("b").unwrap().state, UnitState::Stopped);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

/// A unit that asks for something on itself and returns at once, racing
/// the call with its run's end, restarted with no delay, many times and on
/// many threads: every call is answered, and the unit ends as the last call
/// says.
fn call_then_return(op: &'static str) {
    guarded(Rt::Multi, move || async move {
        let slot = Slot::new();
        let handle = Supervisor::builder().task(idle("other")).build().unwrap().start();
        slot.set(&handle);
        let (tx, mut rx) = mpsc::unbounded_channel();
        for i in 0..50 {
            let name: &'static str = Box::leak(format!("me{i}").into_boxed_str());
            let called = Arc::new(AtomicBool::new(false));
            let spec = TaskSpec::new(name, {
                let (slot, tx) = (slot.clone(), tx.clone());
                move |ctx: Context| {
                    let (slot, tx) = (slot.clone(), tx.clone());
                    let first = !called.swap(true, Ordering::SeqCst);
                    async move {
                        let handle = slot.get().await;
                        if first {
                            tokio::spawn(async move {
                                let answer = match op {
                                    "restart" => handle.restart(name).await.map(|()| None),
                                    "stop" => handle.stop_unit(name).await.map(|()| None),
                                    _ => handle.remove(name).await.map(Some),
                                };
                                let _ = tx.send((name, answer));
                            });
                            return Err("at once");
                        }
                        ctx.cancelled().await;
                        Ok(())
                    }
                }
            })
            .restart(no_delay());
            within(DEADLINE, "add", handle.add(spec)).await.unwrap();
        }
        for _ in 0..50 {
            let (name, answer) = within(DEADLINE, "an answer", rx.recv()).await.unwrap();
            assert!(answer.is_ok(), "{name}: {answer:?}");
            match op {
                "stop" => {
                    let status = handle.status(name).unwrap();
                    assert_eq!(status.state, UnitState::Stopped, "{status:?}")
                }
                "remove" => assert!(handle.status(name).is_none()),
                _ => {
                    let status =
                        within(DEADLINE, "running", handle.wait_state(name, UnitState::Running)).await.unwrap();
                    assert!(status.running);
                }
            }
        }
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_each_once(&report);
        assert!(report.is_clean(), "{report:#?}");
    });
}

#[test]
fn a_unit_that_restarts_itself_and_fails_at_once() {
    call_then_return("restart");
}

#[test]
fn a_unit_that_stops_itself_and_fails_at_once() {
    call_then_return("stop");
}

#[test]
fn a_unit_that_removes_itself_and_fails_at_once() {
    call_then_return("remove");
}

/// A temporary unit removes itself as it ends for good, and a critical one
/// stops itself: neither call fails, the temporary one is forgotten, and
/// the critical one, stopped by hand, does not end the tree.
#[test]
fn temporary_and_critical_units_controlling_themselves() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let temporary = TaskSpec::new("temp", {
            let (slot, tx) = (slot.clone(), tx.clone());
            move |_ctx: Context| {
                let (slot, tx) = (slot.clone(), tx.clone());
                async move {
                    let handle = slot.get().await;
                    tokio::spawn(async move {
                        let _ = tx.send(("temp", handle.remove("temp").await.map(drop)));
                    });
                }
            }
        })
        .restart(run_once())
        .temporary();
        let critical = TaskSpec::new("crit", {
            let slot = slot.clone();
            move |_ctx: Context| {
                let (slot, tx) = (slot.clone(), tx.clone());
                async move {
                    let handle = slot.get().await;
                    tokio::spawn(async move {
                        let _ = tx.send(("crit", handle.stop_unit("crit").await));
                    });
                    std::future::pending::<()>().await;
                }
            }
        })
        .critical();
        let handle = Supervisor::builder().task(idle("other")).build().unwrap().start();
        slot.set(&handle);
        within(DEADLINE, "add temp", handle.add(temporary)).await.unwrap();
        within(DEADLINE, "add crit", handle.add(critical)).await.unwrap();
        let mut answers = vec![
            within(DEADLINE, "answer", rx.recv()).await.unwrap(),
            within(DEADLINE, "answer", rx.recv()).await.unwrap(),
        ];
        answers.sort_by_key(|(name, _)| *name);
        assert!(answers[0].1.is_ok(), "{answers:?}");
        assert!(matches!(answers[1].1, Ok(()) | Err(Error::UnknownUnit { .. })), "{answers:?}");
        assert!(handle.status("temp").is_none());
        assert_eq!(handle.status("crit").unwrap().state, UnitState::Stopped);
        assert!(!handle.is_shutting_down());
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

// ---------------------------------------------------------------------------
// Supervisors inside supervisors, and blocking callers

/// A unit of supervisor `A` runs supervisor `B` and keeps its only handle;
/// a unit of `B` controls `A`'s units, and a unit of `A` controls `B`'s.
/// When `A` stops the unit that holds `B`, `B` shuts down in the
/// background (its last handle is dropped with the run).
#[test]
fn supervisors_controlling_each_other() {
    guarded(Rt::Multi, || async {
        let slot_a = Slot::new();
        let slot_b = Slot::new();
        let (b_events_tx, mut b_events_rx) = mpsc::unbounded_channel();
        let (answers_tx, mut answers_rx) = mpsc::unbounded_channel();
        let host = TaskSpec::new("host", {
            let (slot_a, slot_b, answers_tx) = (slot_a.clone(), slot_b.clone(), answers_tx.clone());
            move |ctx: Context| {
                let (slot_a, slot_b, b_events_tx, answers_tx) =
                    (slot_a.clone(), slot_b.clone(), b_events_tx.clone(), answers_tx.clone());
                async move {
                    let inner = TaskSpec::new("inner", move |ctx: Context| {
                        let (slot_a, answers_tx) = (slot_a.clone(), answers_tx.clone());
                        async move {
                            let a = slot_a.get().await;
                            let _ = answers_tx.send(("B restarts A's sibling", a.restart("sibling").await));
                            let _ = answers_tx.send(("B adds to A", a.add(idle("from-b")).await));
                            ctx.cancelled().await;
                        }
                    });
                    let sup = Supervisor::builder().task(inner).task(idle("b-idle")).build().unwrap();
                    let _ = b_events_tx.send(sup.subscribe());
                    let b = sup.start();
                    // `B`'s only lasting handle is this run's; the slot's is weak in effect: cleared below.
                    slot_b.set(&b);
                    ctx.cancelled().await;
                    slot_b.clear();
                    drop(b);
                }
            }
        });
        let controller = TaskSpec::new("controller", {
            let (slot_b, answers_tx) = (slot_b.clone(), answers_tx.clone());
            move |ctx: Context| {
                let (slot_b, answers_tx) = (slot_b.clone(), answers_tx.clone());
                async move {
                    let b = slot_b.get().await;
                    let _ = answers_tx.send(("A restarts B's unit", b.restart("b-idle").await));
                    let _ = answers_tx.send(("A adds to B", b.add(idle("from-a")).await));
                    drop(b);
                    ctx.cancelled().await;
                }
            }
        });
        let a = Supervisor::builder().task(idle("sibling")).task(host).build().unwrap().start();
        slot_a.set(&a);
        for _ in 0..2 {
            let (what, answer) = within(DEADLINE, "an answer from B", answers_rx.recv()).await.unwrap();
            assert!(answer.is_ok(), "{what}: {answer:?}");
        }
        within(DEADLINE, "add controller", a.add(controller)).await.unwrap();
        for _ in 0..2 {
            let (what, answer) = within(DEADLINE, "an answer from A", answers_rx.recv()).await.unwrap();
            assert!(answer.is_ok(), "{what}: {answer:?}");
        }
        within(DEADLINE, "from-b", a.wait_state("from-b", UnitState::Running)).await.unwrap();
        let mut b_events = within(DEADLINE, "B's events", b_events_rx.recv()).await.unwrap();
        // Let the controller reach `B`.
        let b = within(DEADLINE, "B", slot_b.get()).await;
        within(DEADLINE, "from-a", b.wait_state("from-a", UnitState::Running)).await.unwrap();
        drop(b);
        within(DEADLINE, "stop host", a.stop_unit("host")).await.unwrap();
        let log = all_events(&mut b_events).await;
        for name in ["inner", "b-idle", "from-a"] {
            assert!(
                log.iter().any(|e| e.unit == name && matches!(e.kind, EventKind::Stopped { forced: false, .. })),
                "{name} stopped when B's last handle went: {log:#?}"
            );
        }
        slot_a.clear();
        let report = within(DEADLINE, "shutdown A", a.shutdown()).await;
        assert!(report.is_clean(), "{report:#?}");
    });
}

/// A unit that blocks its thread on a control call of a sibling
/// (`block_in_place` and `Handle::block_on`), on a multi-thread runtime:
/// answered.
#[test]
fn a_unit_blocking_on_a_control_call() {
    guarded(Rt::Multi, || async {
        let slot = Slot::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let spec = TaskSpec::new("blocker", {
            let slot = slot.clone();
            move |ctx: Context| {
                let (slot, tx) = (slot.clone(), tx.clone());
                async move {
                    let handle = slot.get().await;
                    let answers = tokio::task::block_in_place(|| {
                        let runtime = tokio::runtime::Handle::current();
                        vec![
                            runtime.block_on(handle.restart("sibling")),
                            runtime.block_on(handle.add(idle("added"))),
                            runtime.block_on(handle.remove("added")).map(drop),
                            runtime.block_on(handle.wait_ready("sibling")).map(drop),
                        ]
                    });
                    let _ = tx.send(answers);
                    ctx.cancelled().await;
                }
            }
        });
        let handle = Supervisor::builder().task(idle("sibling")).task(spec).build().unwrap().start();
        slot.set(&handle);
        let answers = within(DEADLINE, "answers", rx.recv()).await.unwrap();
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert!(report.is_clean(), "{report:#?}");
    });
}

/// A `wait_status` predicate that reads the supervisor, and one that
/// panics: the panic goes to its caller only, and the waits on that unit
/// go on working.
#[test]
fn wait_status_predicates_that_call_the_handle_or_panic() {
    guarded(Rt::Paused, || async {
        let handle = Supervisor::builder().task(idle("a")).task(idle("b")).build().unwrap().start();
        within(DEADLINE, "a ready", handle.wait_ready("a")).await.unwrap();
        let panicking = tokio::spawn({
            let handle = handle.clone();
            async move {
                handle
                    .wait_status("a", |status| {
                        if status.state == UnitState::Stopping || status.state == UnitState::Stopped {
                            panic!("in the predicate");
                        }
                        false
                    })
                    .await
            }
        });
        let reading = tokio::spawn({
            let handle = handle.clone();
            let reader = handle.clone();
            async move {
                handle
                    .wait_status("a", move |status| {
                        let _ = reader.statuses();
                        let b = reader.status("b").unwrap();
                        status.state == UnitState::Stopped && b.state == UnitState::Running
                    })
                    .await
            }
        });
        settle().await;
        within(DEADLINE, "stop a", handle.stop_unit("a")).await.unwrap();
        assert!(within(DEADLINE, "the panicking wait", panicking).await.unwrap_err().is_panic());
        within(DEADLINE, "the reading wait", reading).await.unwrap().unwrap();
        within(DEADLINE, "start a", handle.start_unit("a")).await.unwrap();
        within(DEADLINE, "a running", handle.wait_state("a", UnitState::Running)).await.unwrap();
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert!(report.is_clean(), "{report:#?}");
    });
}

/// A unit two groups deep restarts the outer group, raced with its own
/// cancellation; another removes its own inner group, inline.
#[test]
fn units_deep_in_a_tree_controlling_their_ancestors() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let runs = counter();
        let restarter = TaskSpec::new("r", {
            let (slot, runs) = (slot.clone(), runs.clone());
            move |ctx: Context| {
                let (slot, runs) = (slot.clone(), runs.clone());
                async move {
                    if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                        let handle = slot.get().await;
                        tokio::select! {
                            _ = handle.restart("g") => {}
                            () = ctx.cancelled() => {}
                        }
                    }
                    ctx.cancelled().await;
                }
            }
        });
        let remover_runs = counter();
        let remover = TaskSpec::new("x", {
            let (slot, remover_runs) = (slot.clone(), remover_runs.clone());
            move |ctx: Context| {
                let (slot, remover_runs) = (slot.clone(), remover_runs.clone());
                async move {
                    // Only once the outer group has been restarted.
                    if remover_runs.fetch_add(1, Ordering::SeqCst) == 1 {
                        let handle = slot.get().await;
                        tokio::select! {
                            _ = handle.remove("g/k") => {}
                            () = ctx.cancelled() => {}
                        }
                    }
                    ctx.cancelled().await;
                }
            }
        });
        let sup = Supervisor::builder()
            .group(
                GroupSpec::new("g")
                    .group(GroupSpec::new("h").task(restarter).task(idle("y")))
                    .group(GroupSpec::new("k").task(remover)),
            )
            .build()
            .unwrap();
        let mut events = sup.subscribe();
        let handle = sup.start();
        slot.set(&handle);
        events_until(DEADLINE, &mut events, |e| e.unit == "g/k" && matches!(e.kind, EventKind::Removed)).await;
        within(DEADLINE, "g/h/r", handle.wait_state("g/h/r", UnitState::Running)).await.unwrap();
        within(DEADLINE, "g/h/y", handle.wait_state("g/h/y", UnitState::Running)).await.unwrap();
        assert_eq!(handle.unit_names(), ["g", "g/h", "g/h/r", "g/h/y"]);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_each_once(&report);
        assert!(report.is_clean(), "{report:#?}");
    });
}

// ---------------------------------------------------------------------------
// Calls polled once from inside the owner's turns, and after `skip_grace`

/// A tracing layer that, on the supervisor's own events (logged inside the
/// owners' turns), polls control calls once and drops them: the turns it
/// may take are nested in another owner's, or refused on the same one.
struct PollsCallsOnce {
    slot: Slot,
    polled: Arc<AtomicU32>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PollsCallsOnce {
    fn on_event(&self, _event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        use futures_util::FutureExt;
        let Some(handle) = self.slot.try_get() else { return };
        let n = self.polled.fetch_add(1, Ordering::Relaxed);
        if n > 2000 {
            return;
        }
        let name = format!("poked-{}", n % 4);
        match n % 6 {
            0 => drop(handle.add(idle(&name)).now_or_never()),
            1 => drop(handle.add_to("g", idle(&name)).now_or_never()),
            2 => drop(handle.restart("g/a").now_or_never()),
            3 => drop(handle.remove(&name).now_or_never()),
            4 => drop(handle.stop_unit("b").now_or_never()),
            _ => drop(handle.start_unit("b").now_or_never()),
        }
    }
}

#[test]
fn control_calls_polled_once_from_inside_the_owners_turns() {
    use tracing_subscriber::layer::SubscriberExt;
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let polled = counter();
        // No spans: the calls are not kept off the turns by a span of the caller's.
        let poller = tracing_subscriber::registry()
            .with(PollsCallsOnce { slot: slot.clone(), polled: polled.clone() })
            .with(tracing_subscriber::filter::filter_fn(|meta| meta.is_event()));
        let _subscriber = subscriber::on_this_thread(poller);
        let flaky = TaskSpec::new("flaky", |_ctx: Context| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Err::<(), _>("boom")
        })
        .restart(no_delay());
        let handle = Supervisor::builder()
            .group(GroupSpec::new("g").strategy(Strategy::OneForAll).task(idle("a")).task(flaky))
            .task(idle("b"))
            .build()
            .unwrap()
            .start();
        slot.set(&handle);
        within(DEADLINE, "pokes", handle.wait_status("g/flaky", |s| s.restarts_total > 100)).await.unwrap();
        within(DEADLINE, "restart g", handle.restart("g")).await.unwrap();
        within(DEADLINE, "add", handle.add(idle("late"))).await.unwrap();
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_each_once(&report);
        assert!(polled.load(Ordering::Relaxed) > 100, "the layer saw the events");
        // Every unit named in the report is one the statuses knew.
        let names: HashSet<String> = handle.unit_names().into_iter().collect();
        for line in &report.units {
            assert!(names.contains(&line.name), "{} reported but unknown", line.name);
        }
    });
}

/// After `skip_grace` (and no shutdown), stops are aborts at once: a unit
/// that stops or restarts itself inline, ignoring its cancellation, is
/// aborted in the middle of its own call, and ends as the call says.
#[test]
fn self_control_after_skip_grace() {
    guarded(Rt::Paused, || async {
        let slot = Slot::new();
        let runs = counter();
        let restarter = TaskSpec::new("restarter", {
            let (slot, runs) = (slot.clone(), runs.clone());
            move |_ctx: Context| {
                let (slot, runs) = (slot.clone(), runs.clone());
                async move {
                    let handle = slot.get().await;
                    if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                        let _ = handle.restart("restarter").await;
                    }
                    std::future::pending::<()>().await;
                }
            }
        })
        .stop_timeout(60 * SEC);
        let stopper = TaskSpec::new("stopper", {
            let slot = slot.clone();
            move |_ctx: Context| {
                let slot = slot.clone();
                async move {
                    let handle = slot.get().await;
                    let _ = handle.stop_unit("stopper").await;
                    std::future::pending::<()>().await;
                }
            }
        })
        .stop_timeout(60 * SEC);
        let handle = Supervisor::builder().task(idle("other")).build().unwrap().start();
        slot.set(&handle);
        within(DEADLINE, "other ready", handle.wait_ready("other")).await.unwrap();
        handle.skip_grace();
        settle().await;
        let mut events = handle.subscribe();
        within(DEADLINE, "add restarter", handle.add(restarter)).await.unwrap();
        within(DEADLINE, "add stopper", handle.add(stopper)).await.unwrap();
        within(DEADLINE, "stopper stopped", handle.wait_state("stopper", UnitState::Stopped)).await.unwrap();
        within(
            DEADLINE,
            "restarter again",
            handle.wait_status("restarter", |s| s.running && runs.load(Ordering::SeqCst) == 2),
        )
        .await
        .unwrap();
        // Well within the 60 s grace periods that were skipped.
        let log: Vec<Event> = std::iter::from_fn(|| events.try_recv().ok()).collect();
        for event in &log {
            if let EventKind::Stopped { took, .. } = event.kind {
                assert!(took < SEC, "{event:?}");
            }
        }
        assert!(!handle.is_shutting_down());
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_each_once(&report);
    });
}

/// A unit of a `one_for_all` (or `rest_for_one`) group fails and, as it
/// fails, asks for a stop, a restart or the removal of its own group: the
/// group's strategy and the call race. Many times, on many threads: every
/// call is answered and the group ends as the call says.
fn failing_unit_controls_its_group(strategy: Strategy, op: &'static str) {
    guarded(Rt::Multi, move || async move {
        let slot = Slot::new();
        let handle = Supervisor::builder().task(idle("other")).build().unwrap().start();
        slot.set(&handle);
        let (tx, mut rx) = mpsc::unbounded_channel();
        for i in 0..30 {
            let group: &'static str = Box::leak(format!("g{i}").into_boxed_str());
            let called = Arc::new(AtomicBool::new(false));
            let failing = TaskSpec::new("f", {
                let (slot, tx) = (slot.clone(), tx.clone());
                move |ctx: Context| {
                    let (slot, tx, called) = (slot.clone(), tx.clone(), called.clone());
                    async move {
                        let handle = slot.get().await;
                        if !called.swap(true, Ordering::SeqCst) {
                            tokio::spawn(async move {
                                let answer = match op {
                                    "stop" => handle.stop_unit(group).await,
                                    "restart" => handle.restart(group).await,
                                    _ => handle.remove(group).await.map(drop),
                                };
                                let _ = tx.send((group, answer));
                            });
                            return Err("failing as it calls");
                        }
                        ctx.cancelled().await;
                        Ok(())
                    }
                }
            })
            .restart(no_delay());
            let spec = GroupSpec::new(group).strategy(strategy).task(idle("a")).task(failing).task(idle("z"));
            within(DEADLINE, "add", handle.add(spec)).await.unwrap();
        }
        for _ in 0..30 {
            let (group, answer) = within(DEADLINE, "an answer", rx.recv()).await.unwrap();
            assert!(answer.is_ok(), "{group}: {answer:?}");
            match op {
                "stop" => {
                    assert_eq!(handle.status(group).unwrap().state, UnitState::Stopped);
                    for unit in ["a", "f", "z"] {
                        let status = handle.status(&format!("{group}/{unit}")).unwrap();
                        assert!(!status.running, "{status:?}");
                    }
                }
                "restart" => {
                    within(DEADLINE, "running", handle.wait_state(group, UnitState::Running)).await.unwrap();
                    for unit in ["a", "f", "z"] {
                        within(
                            DEADLINE,
                            "unit running",
                            handle.wait_state(&format!("{group}/{unit}"), UnitState::Running),
                        )
                        .await
                        .unwrap();
                    }
                }
                _ => assert!(handle.status(group).is_none()),
            }
        }
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_each_once(&report);
        assert!(report.is_clean(), "{report:#?}");
    });
}

#[test]
fn a_failing_unit_stops_its_one_for_all_group() {
    failing_unit_controls_its_group(Strategy::OneForAll, "stop");
}

#[test]
fn a_failing_unit_restarts_its_one_for_all_group() {
    failing_unit_controls_its_group(Strategy::OneForAll, "restart");
}

#[test]
fn a_failing_unit_removes_its_one_for_all_group() {
    failing_unit_controls_its_group(Strategy::OneForAll, "remove");
}

#[test]
fn a_failing_unit_stops_its_rest_for_one_group() {
    failing_unit_controls_its_group(Strategy::RestForOne, "stop");
}

#[test]
fn a_failing_unit_restarts_its_rest_for_one_group() {
    failing_unit_controls_its_group(Strategy::RestForOne, "restart");
}

/// "Dropping the last clone stops every unit in the background". A unit
/// that adds units to its own supervisor (an acceptor) held a clone of the
/// handle, and kept the supervisor running for ever once the program had
/// dropped its own. With a weak handle, the program's drop shuts it down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_with_a_weak_handle_lets_the_last_drop_shut_the_supervisor_down() {
    let handle = Supervisor::builder().build().unwrap().start();
    let (ended, mut told) = mpsc::unbounded_channel::<(bool, bool)>();
    let tree = handle.downgrade();
    let spawner = TaskSpec::new("spawner", move |ctx: Context| {
        let (tree, ended) = (tree.clone(), ended.clone());
        async move {
            let added = match tree.upgrade() {
                Some(tree) => {
                    tree.add(TaskSpec::new("job", |ctx: Context| async move { ctx.cancelled().await })).await.is_ok()
                }
                None => false,
            };
            ctx.cancelled().await;
            let _ = ended.send((added, tree.upgrade().is_none()));
        }
    });
    let mut events = handle.subscribe();
    handle.add(spawner).await.unwrap();
    // Added by the spawner's run, in its own time: until then it is unknown.
    loop {
        let event = within(DEADLINE, "the job added", events.recv()).await.unwrap();
        if event.unit == "job" && event.kind == EventKind::Added {
            break;
        }
    }
    within(DEADLINE, "the job", handle.wait_ready("job")).await.unwrap();
    let weak = handle.downgrade();
    drop(handle);
    let (added, gone) = within(DEADLINE, "the spawner's stop", told.recv()).await.expect("the spawner was stopped");
    assert!(added, "the weak handle gave a handle while the program held one");
    assert!(gone, "no handle once the program dropped its own");
    assert!(weak.upgrade().is_none());
}
