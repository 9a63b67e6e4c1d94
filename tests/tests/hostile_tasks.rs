//! Hostile tasks: what a careless or hostile user writes as a task. Every
//! error type a run may return (errors whose `Display` panics, fails, is
//! huge or spans lines), panics of every payload, in the factory, in the
//! future's `Drop`, while being cancelled, twice; futures that block their
//! thread or ignore cancellation; runs that spawn tasks of their own and
//! keep their `Context` past their end; and the `tracing` side: the task's
//! own log lines, the supervisor's lines about it, a slow and a panicking
//! log writer.
//!
//! Policy timing runs on tokio's paused clock; every wait is under a
//! deadline, and the tests that could deadlock a thread run on a thread of
//! their own under a hard deadline.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use supervisor::{
    Context, Event, EventKind, ExitReason, GroupSpec, MaxRestarts, Readiness, RestartOn, RestartPolicy, ShutdownCause,
    StopOutcome, Supervisor, SupervisorHandle, TaskSpec, UnitState,
};
use tokio::sync::{broadcast, mpsc};

#[path = "support/deadline.rs"]
mod deadline;
use deadline::{events_until, within};
#[path = "support/specs.rs"]
mod specs;
use specs::idle;

const SEC: Duration = Duration::from_secs(1);
/// Far longer than anything takes when nothing hangs (on the paused clock,
/// it passes at once once everything idles).
const DEADLINE: Duration = Duration::from_secs(30);
/// A whole test, in real time, for the tests run on a thread of their own.
const HARD_DEADLINE: Duration = Duration::from_secs(20);

/// Waits until `name` is in `state`, and returns its status.
async fn wait_for(handle: &SupervisorHandle, name: &str, state: UnitState) -> supervisor::UnitStatus {
    let reached = tokio::time::timeout(DEADLINE, handle.wait_state(name, state)).await;
    match reached {
        Ok(Ok(status)) => status,
        other => panic!("{name} never reached {state:?}: {other:?}; last status {:?}", handle.status(name)),
    }
}

/// Runs `test` on a current-thread runtime (clock paused if `paused`) on a
/// thread of its own, and fails if it has not finished within
/// [`HARD_DEADLINE`]: a deadlock on a lock, which no tokio timeout sees,
/// fails the test instead of hanging it.
fn guarded<F, Fut>(paused: bool, test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let (done, finished) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(paused).build().unwrap();
        runtime.block_on(test());
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

/// Serialises the tests that read what `tracing` writes against all the
/// others: `tracing` caches per call site whether anything listens, across
/// threads, and a test without a subscriber on another thread can make a
/// span disabled for an instant in a test that has one.
static TRACING: RwLock<()> = RwLock::new(());

/// Runs `test` on a current-thread runtime with its clock paused, beside the
/// other tests that write no logs they read.
fn paused<Fut: Future<Output = ()>>(test: impl FnOnce() -> Fut) {
    let _shared = TRACING.read().unwrap_or_else(PoisonError::into_inner);
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(test());
}

/// Like [`paused`], alone: for a test that reads the logs it writes.
fn paused_alone<Fut: Future<Output = ()>>(test: impl FnOnce() -> Fut) {
    let _alone = TRACING.write().unwrap_or_else(PoisonError::into_inner);
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(test());
}

/// Runs `test` on a multi-thread runtime (real clock), beside the others.
fn multi<Fut: Future<Output = ()>>(test: impl FnOnce() -> Fut) {
    let _shared = TRACING.read().unwrap_or_else(PoisonError::into_inner);
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(test());
}

/// Runs once; a failure is `Failed` at once.
fn once() -> RestartPolicy {
    RestartPolicy::new().delay(SEC).max_restarts(MaxRestarts::AtMost(0))
}

/// A task that fails at once with the error `make` makes, and is not restarted.
fn failing_with<E, M>(name: &str, make: M) -> TaskSpec
where
    E: fmt::Display + Send + 'static,
    M: Fn() -> E + Send + Sync + 'static,
{
    let make = Arc::new(make);
    TaskSpec::new(name, move |_ctx| {
        let make = make.clone();
        async move { Err::<(), E>(make()) }
    })
    .restart(once())
}

/// A task that panics at once with `payload`, and is not restarted.
fn panicking_with<P, M>(name: &str, make: M) -> TaskSpec
where
    P: std::any::Any + Send + 'static,
    M: Fn() -> P + Send + Sync + 'static,
{
    let make = Arc::new(make);
    TaskSpec::new(name, move |_ctx| {
        let make = make.clone();
        async move { panic_with(make()) }
    })
    .restart(once())
}

/// Panics with `payload`; typed `()` so that a future ending in it is a task's.
fn panic_with<P: std::any::Any + Send + 'static>(payload: P) {
    std::panic::panic_any(payload)
}

/// Unwinds with `payload` without running the panic hook.
fn resume_with(payload: &'static str) {
    std::panic::resume_unwind(Box::new(payload))
}

/// Every event sent so far.
fn drain(events: &mut broadcast::Receiver<Event>) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        match events.try_recv() {
            Ok(event) => seen.push(event),
            Err(broadcast::error::TryRecvError::Lagged(n)) => panic!("{n} events lost"),
            Err(_) => return seen,
        }
    }
}

/// Panics when dropped, with `self.0` as the message.
struct Bomb(&'static str);

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.0);
        }
    }
}

/// A log writer whose lines the test reads.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The captured lines that contain `needle`.
    fn lines_with(&self, needle: &str) -> Vec<String> {
        self.text().lines().filter(|line| line.contains(needle)).map(str::to_owned).collect()
    }

    /// Checks that some line contains `needle`, and that each that does
    /// names `unit` too.
    fn assert_each_line_names(&self, needle: &str, unit: &str) {
        let lines = self.lines_with(needle);
        assert!(!lines.is_empty(), "no line with {needle:?} in:\n{}", self.text());
        for line in lines {
            assert!(line.contains(unit), "a line without `{unit}`: {line}\nin:\n{}", self.text());
        }
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A `fmt` subscriber at `level` writing to a [`Captured`], as the thread's default.
fn capture(level: tracing::Level) -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(level)
        .with_ansi(false)
        .without_time()
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

// ---------------------------------------------------------------------------
// What a run returns

/// Every error type a run may return: its `Display` (with an anyhow chain,
/// lines, NULs, nothing at all) is kept whole as `last_error`, with exit
/// code 1, in the `Exited` event, and the report counts the unit failed.
#[test]
fn every_error_type_is_kept_whole_with_exit_code_one() {
    paused(|| async {
        #[derive(Debug)]
        struct WithSource(std::io::Error);
        impl fmt::Display for WithSource {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("outer error")
            }
        }
        impl std::error::Error for WithSource {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let cases: Vec<(&str, TaskSpec, &str)> = vec![
            ("io", failing_with("io", || std::io::Error::other("disk full")), "disk full"),
            (
                "boxed",
                failing_with("boxed", || -> Box<dyn std::error::Error + Send + Sync> { "boxed failure".into() }),
                "boxed failure",
            ),
            (
                "boxed-with-source",
                failing_with("boxed-with-source", || -> Box<dyn std::error::Error + Send + Sync> {
                    Box::new(WithSource(std::io::Error::other("inner")))
                }),
                "outer error",
            ),
            ("string", failing_with("string", || String::from("owned message")), "owned message"),
            ("str", failing_with("str", || "static message"), "static message"),
            (
                "anyhow",
                failing_with("anyhow", || anyhow::anyhow!("root cause").context("middle").context("top")),
                "top: middle: root cause",
            ),
            (
                "anyhow-from-io",
                failing_with("anyhow-from-io", || anyhow::Error::from(std::io::Error::other("refused"))),
                "refused",
            ),
            (
                "multi-line",
                failing_with("multi-line", || "line one\nline two\r\n\tline three\n"),
                "line one\nline two\r\n\tline three\n",
            ),
            (
                "odd-chars",
                failing_with("odd-chars", || "nul \0 bell \x07 snow ☃ rtl \u{202e}"),
                "nul \0 bell \x07 snow ☃ rtl \u{202e}",
            ),
            ("empty", failing_with("empty", || ""), ""),
        ];
        let mut builder = Supervisor::builder().task(idle("calm"));
        let mut expected = Vec::new();
        for (name, spec, message) in cases {
            builder = builder.task(spec);
            expected.push((name, message));
        }
        let sup = builder.build().unwrap();
        let mut events = sup.subscribe();
        let handle = sup.start();
        for (name, message) in &expected {
            let status = wait_for(&handle, name, UnitState::Failed).await;
            assert_eq!(status.last_error.as_deref(), Some(*message), "{name}: {status:?}");
            assert_eq!(status.exit_code, Some(1), "{name}: {status:?}");
            assert_eq!(status.restart_count, 0, "{name}");
        }
        let seen = drain(&mut events);
        for (name, message) in &expected {
            assert!(
                seen.iter().any(|event| event.unit == *name
                    && event.kind == EventKind::Exited { reason: ExitReason::Error((*message).to_owned()) }),
                "{name}: no Exited event with its error in {seen:?}"
            );
        }
        assert_eq!(handle.status("calm").unwrap().state, UnitState::Running);
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        let mut failed: Vec<_> = report.failed().map(|unit| unit.name.clone()).collect();
        failed.sort();
        let mut names: Vec<_> = expected.iter().map(|(name, _)| (*name).to_owned()).collect();
        names.sort();
        assert_eq!(failed, names);
        assert_eq!(report.exit_code(), 1);
    });
}

/// An error whose `Display` panics, returns `fmt::Error`, or panics with a
/// payload that panics again when dropped: the run is a failure with a
/// message that says so; nothing else is touched.
#[test]
fn an_error_whose_display_panics_or_fails_is_a_failure_that_spares_the_rest() {
    paused(|| async {
        struct PanicsInDisplay;
        impl fmt::Display for PanicsInDisplay {
            fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
                panic!("display exploded")
            }
        }
        struct FailsInDisplay;
        impl fmt::Display for FailsInDisplay {
            fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
                Err(fmt::Error)
            }
        }
        struct PanicsAnyInDisplay;
        impl fmt::Display for PanicsAnyInDisplay {
            fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
                std::panic::panic_any(Bomb("the payload went off"))
            }
        }
        let handle = Supervisor::builder()
            .task(idle("calm"))
            .task(failing_with("panics", || PanicsInDisplay))
            .task(failing_with("fails", || FailsInDisplay))
            .task(failing_with("bomb", || PanicsAnyInDisplay))
            .build()
            .unwrap()
            .start();
        let panics = wait_for(&handle, "panics", UnitState::Failed).await;
        assert_eq!(panics.last_error.as_deref(), Some("panicked: display exploded"), "{panics:?}");
        let fails = wait_for(&handle, "fails", UnitState::Failed).await;
        let error = fails.last_error.unwrap_or_default();
        assert!(error.starts_with("panicked: ") && error.contains("error"), "{error}");
        let bomb = wait_for(&handle, "bomb", UnitState::Failed).await;
        let error = bomb.last_error.unwrap_or_default();
        assert!(error.contains("non-string payload") && error.contains("panicked when dropped"), "{error}");
        assert_eq!(handle.status("calm").unwrap().state, UnitState::Running);
        // The supervisor still works: a restart by hand runs the unit again.
        handle.restart("panics").await.unwrap();
        wait_for(&handle, "panics", UnitState::Failed).await;
        assert_eq!(within(DEADLINE, "shutdown", handle.shutdown()).await.exit_code(), 1);
    });
}

/// A 10 MB error of 100k lines: its first 64 KiB kept, with a note of the
/// rest, served in the status (and its JSON) and the events, and the
/// supervisor goes on.
#[test]
fn a_huge_multi_line_error_is_kept_and_serialises() {
    paused(|| async {
        let huge: Arc<str> = "x".repeat(99).chars().chain(['\n']).cycle().take(10_000_000).collect::<String>().into();
        let message = huge.clone();
        let sup = Supervisor::builder()
            .task(idle("calm"))
            .task(failing_with("huge", move || message.to_string()))
            .build()
            .unwrap();
        let mut events = sup.subscribe();
        let handle = sup.start();
        let status = wait_for(&handle, "huge", UnitState::Failed).await;
        let error = status.last_error.as_deref().unwrap_or_default();
        let (kept, note) = error.split_once('…').expect("cut, with a note");
        assert!(huge.starts_with(kept) && kept.len() > 60_000 && kept.len() <= 64 * 1024, "{}", kept.len());
        assert_eq!(note, format!(" ({} bytes left out)", huge.len() - kept.len()));
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["lastError"].as_str(), Some(error));
        let seen = events_until(DEADLINE, &mut events, |event| {
            event.unit == "huge" && matches!(event.kind, EventKind::GaveUp { .. })
        })
        .await;
        assert!(
            seen.iter().any(
                |event| matches!(&event.kind, EventKind::Exited { reason: ExitReason::Error(m) } if m.len() > 1000)
            )
        );
        assert_eq!(handle.status("calm").unwrap().state, UnitState::Running);
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

// ---------------------------------------------------------------------------
// Panics

/// Panic payloads of every type: each is a failure, kept as
/// `panicked: ...` (a message where the payload is a string), with a
/// `Panicked` event, no exit code, and the report's exit code 1.
#[test]
fn panic_payloads_of_every_type_are_failures_with_a_message() {
    paused(|| async {
        let sup = Supervisor::builder()
            .task(idle("calm"))
            .task(panicking_with("str", || "a static str"))
            .task(panicking_with("string", || format!("formatted {}", 42)))
            .task(panicking_with("empty", String::new))
            .task(panicking_with("int", || 42_i32))
            .task(panicking_with("unit", || ()))
            .task(panicking_with("boxed-error", || -> Box<dyn std::error::Error + Send + Sync> { "an error".into() }))
            .task(panicking_with("anyhow", || anyhow::anyhow!("anyhow payload")))
            .task(panicking_with("bomb", || Bomb("payload dropped")))
            .task(
                TaskSpec::new("resumed", |_ctx| async {
                    resume_with("resumed without the hook");
                })
                .restart(once()),
            )
            .build()
            .unwrap();
        let mut events = sup.subscribe();
        let handle = sup.start();
        let expected = [
            ("str", "panicked: a static str"),
            ("string", "panicked: formatted 42"),
            ("empty", "panicked: "),
            ("int", "panicked: a panic with a non-string payload"),
            ("unit", "panicked: a panic with a non-string payload"),
            ("boxed-error", "panicked: a panic with a non-string payload"),
            ("anyhow", "panicked: a panic with a non-string payload"),
            ("bomb", "panicked: a panic with a non-string payload (and its payload panicked when dropped)"),
            ("resumed", "panicked: resumed without the hook"),
        ];
        for (name, message) in expected {
            let status = wait_for(&handle, name, UnitState::Failed).await;
            assert_eq!(status.last_error.as_deref(), Some(message), "{name}");
            assert_eq!(status.exit_code, None, "{name}");
        }
        let seen = drain(&mut events);
        for (name, message) in expected {
            let panicked = seen.iter().find_map(|event| match &event.kind {
                EventKind::Panicked { message } if event.unit == name => Some(message.clone()),
                _ => None,
            });
            assert_eq!(panicked.map(|m| format!("panicked: {m}")).as_deref(), Some(message), "{name}");
        }
        assert_eq!(handle.status("calm").unwrap().state, UnitState::Running);
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_eq!(report.failed().count(), expected.len());
        assert_eq!(report.exit_code(), 1);
        assert!(report.units.iter().any(|unit| unit.name == "calm" && unit.outcome == StopOutcome::Graceful));
    });
}

/// A factory that panics on every run (a non-string payload, then a
/// string): each is a failed run, counted, until the policy gives up.
#[test]
fn a_factory_that_panics_on_every_run_is_restarted_then_gives_up() {
    paused(|| async {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let handle = Supervisor::builder()
            .task(idle("calm"))
            .task(
                TaskSpec::new("factory", move |ctx: Context| -> std::future::Ready<()> {
                    counter.fetch_add(1, Ordering::SeqCst);
                    if ctx.restart_count() == 0 {
                        std::panic::panic_any(7_u8);
                    }
                    panic!("factory run {}", ctx.restart_count())
                })
                .restart(RestartPolicy::new().delay(SEC).max_restarts(MaxRestarts::AtMost(2))),
            )
            .build()
            .unwrap()
            .start();
        let status = wait_for(&handle, "factory", UnitState::Failed).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(status.restart_count, 2);
        assert_eq!(status.last_error.as_deref(), Some("panicked: factory run 2"));
        assert_eq!(handle.status("calm").unwrap().state, UnitState::Running);
        assert_eq!(within(DEADLINE, "shutdown", handle.shutdown()).await.exit_code(), 1);
    });
}

/// A future that panics when polled, and again when dropped afterwards:
/// the first panic is the run's error, the second is contained.
#[test]
fn a_future_that_panics_when_polled_and_again_when_dropped() {
    paused(|| async {
        struct Twice;
        impl Future for Twice {
            type Output = ();
            fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
                panic!("in poll")
            }
        }
        impl Drop for Twice {
            fn drop(&mut self) {
                if !std::thread::panicking() {
                    panic!("in drop");
                }
            }
        }
        let handle = Supervisor::builder()
            .task(idle("calm"))
            .task(
                TaskSpec::new("twice", |_ctx| Twice)
                    .restart(RestartPolicy::new().delay(SEC).max_restarts(MaxRestarts::AtMost(1))),
            )
            .build()
            .unwrap()
            .start();
        let status = wait_for(&handle, "twice", UnitState::Failed).await;
        assert_eq!(status.last_error.as_deref(), Some("panicked: in poll"));
        assert_eq!(status.restart_count, 1);
        assert_eq!(handle.status("calm").unwrap().state, UnitState::Running);
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

/// A value held across an await panics when dropped, as the run answers
/// its cancellation: the stop completes, the panic is `last_error`, and
/// the unit can be started again.
#[test]
fn a_value_that_panics_when_dropped_as_the_run_stops_gracefully() {
    paused(|| async {
        let handle = Supervisor::builder()
            .task(TaskSpec::new("holder", |ctx: Context| async move {
                let _bomb = Bomb("held across an await");
                ctx.cancelled().await;
            }))
            .task(idle("calm"))
            .build()
            .unwrap()
            .start();
        wait_for(&handle, "holder", UnitState::Running).await;
        within(DEADLINE, "stop", handle.stop_unit("holder")).await.unwrap();
        let status = handle.status("holder").unwrap();
        assert_eq!(status.state, UnitState::Stopped);
        assert_eq!(status.last_error.as_deref(), Some("panicked: held across an await"));
        within(DEADLINE, "start", handle.start_unit("holder")).await.unwrap();
        wait_for(&handle, "holder", UnitState::Running).await;
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert!(report.units.iter().all(|unit| unit.outcome == StopOutcome::Graceful), "{report:?}");
    });
}

/// A run that ignores its cancellation holds a value that panics when the
/// run is aborted (dropped): the abort completes, `Stopped { forced }`,
/// the unit starts again, and the shutdown ends with every unit.
#[test]
fn a_value_that_panics_when_the_run_is_aborted_is_contained() {
    paused(|| async {
        let sup = Supervisor::builder()
            .task(
                TaskSpec::new("stubborn", |_ctx| async move {
                    let _bomb = Bomb("dropped by the abort");
                    std::future::pending::<()>().await;
                })
                .stop_timeout(2 * SEC),
            )
            .task(idle("calm"))
            .build()
            .unwrap();
        let mut events = sup.subscribe();
        let handle = sup.start();
        wait_for(&handle, "stubborn", UnitState::Running).await;
        within(DEADLINE, "stop", handle.stop_unit("stubborn")).await.unwrap();
        assert_eq!(handle.status("stubborn").unwrap().state, UnitState::Stopped);
        let seen = events_until(DEADLINE, &mut events, |event| {
            event.unit == "stubborn" && matches!(event.kind, EventKind::Stopped { .. })
        })
        .await;
        assert_eq!(seen.last().unwrap().kind, EventKind::Stopped { forced: true, took: 2 * SEC });
        within(DEADLINE, "start", handle.start_unit("stubborn")).await.unwrap();
        wait_for(&handle, "stubborn", UnitState::Running).await;
        assert_eq!(handle.status("calm").unwrap().state, UnitState::Running);
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_eq!(report.units.len(), 2);
        assert!(report.units.iter().any(|unit| unit.name == "stubborn" && unit.outcome == StopOutcome::Forced));
        assert_eq!(report.exit_code(), 1, "a unit was aborted");
    });
}

/// A run aborted after its grace period whose future panics when dropped:
/// that panic is a bug in the run, as a panic while it answers its
/// cancellation is, and is kept as `last_error` like that one
/// (`record_stop`: "Only a panic is kept as the run's error: a bug,
/// stopping or not").
#[test]
fn a_panic_when_an_aborted_run_is_dropped_is_kept_as_last_error() {
    paused(|| async {
        let stubborn = TaskSpec::new("stubborn", |_ctx| async move {
            let _bomb = Bomb("dropped by the abort");
            std::future::pending::<()>().await;
        });
        assert_abort_panic_kept(stubborn.stop_timeout(SEC)).await;
    });
}

/// The same for a task with a watchdog, whose run goes its own way (it is
/// watched while it runs): stopped by hand and aborted, its drop's panic
/// is its last error too.
#[test]
fn a_panic_when_an_aborted_watched_run_is_dropped_is_kept_as_last_error() {
    paused(|| async {
        let watched = TaskSpec::new("watched", |ctx: Context| async move {
            let _bomb = Bomb("dropped by the abort");
            // Deaf to its cancellation: it lives until the abort.
            for _beat in 0_u64.. {
                ctx.heartbeat();
                tokio::time::sleep(SEC).await;
            }
        });
        assert_abort_panic_kept(watched.watchdog(10 * SEC).stop_timeout(SEC)).await;
    });
}

/// Runs `spec`, a task deaf to its cancellation whose future panics with
/// "dropped by the abort" when dropped, stops it by hand, and checks that
/// the panic is its last error.
async fn assert_abort_panic_kept(spec: TaskSpec) {
    let name = spec.name().to_owned();
    let handle = Supervisor::builder().task(spec).build().unwrap().start();
    wait_for(&handle, &name, UnitState::Running).await;
    within(DEADLINE, "stop", handle.stop_unit(&name)).await.unwrap();
    let status = handle.status(&name).unwrap();
    assert_eq!(status.state, UnitState::Stopped);
    assert_eq!(status.last_error.as_deref(), Some("panicked: dropped by the abort"), "{status:?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// The same under a subscriber, where the run's future is dropped inside
/// the unit's span: the panic is logged once, and every line of it names
/// the unit; it is still kept as `last_error`; the stop is forced, and the
/// unit starts again by hand.
#[test]
fn a_panic_when_an_aborted_run_is_dropped_is_logged_once_in_its_span_and_kept() {
    paused_alone(|| async {
        let (captured, _default) = capture(tracing::Level::INFO);
        let sup = Supervisor::builder()
            .task(
                TaskSpec::new("stubborn", |_ctx| async move {
                    let _bomb = Bomb("dropped by the abort");
                    std::future::pending::<()>().await;
                })
                .stop_timeout(SEC),
            )
            .build()
            .unwrap();
        let mut events = sup.subscribe();
        let handle = sup.start();
        wait_for(&handle, "stubborn", UnitState::Running).await;
        within(DEADLINE, "stop", handle.stop_unit("stubborn")).await.unwrap();
        let status = handle.status("stubborn").unwrap();
        assert_eq!(status.last_error.as_deref(), Some("panicked: dropped by the abort"), "{status:?}");
        let seen = events_until(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Stopped { .. })).await;
        assert_eq!(seen.last().unwrap().kind, EventKind::Stopped { forced: true, took: SEC });
        let lines = captured.lines_with("panicked when dropped");
        assert_eq!(lines.len(), 1, "{}", captured.text());
        assert!(lines[0].contains("stubborn") && lines[0].contains("dropped by the abort"), "{}", lines[0]);
        within(DEADLINE, "start", handle.start_unit("stubborn")).await.unwrap();
        wait_for(&handle, "stubborn", UnitState::Running).await;
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_eq!(report.units[0].outcome, StopOutcome::Forced);
        captured.assert_each_line_names("panicked when dropped", "stubborn");
    });
}

/// A panic in a unit of a group spares the group and its siblings; one
/// past its group's intensity takes the group down (and only it); a
/// critical unit that panics for good ends the supervisor with code 1.
#[test]
fn panics_take_a_group_down_only_as_its_policy_intensity_and_critical_say() {
    paused(|| async {
        let panicky = |name: &str, policy: RestartPolicy| {
            TaskSpec::new(name, |_ctx| async { panic_with("unit panic") }).restart(policy)
        };
        let handle = Supervisor::builder()
            .task(idle("calm"))
            .group(
                GroupSpec::new("tolerant")
                    .intensity(10, 60 * SEC)
                    .task(panicky("p", RestartPolicy::new().delay(SEC).max_restarts(MaxRestarts::AtMost(3))))
                    .task(idle("sibling")),
            )
            .group(
                GroupSpec::new("strict")
                    .intensity(1, 60 * SEC)
                    .restart(once())
                    .task(panicky("p", RestartPolicy::new().delay(SEC).max_restarts(MaxRestarts::Unlimited)))
                    .task(idle("sibling")),
            )
            .build()
            .unwrap()
            .start();
        let p = wait_for(&handle, "tolerant/p", UnitState::Failed).await;
        assert_eq!((p.restart_count, p.last_error.as_deref()), (3, Some("panicked: unit panic")));
        assert_eq!(handle.status("tolerant/sibling").unwrap().state, UnitState::Running);
        assert_eq!(handle.status("tolerant").unwrap().state, UnitState::Running);
        let strict = wait_for(&handle, "strict", UnitState::Failed).await;
        assert!(strict.last_error.is_some(), "{strict:?}");
        assert_ne!(handle.status("strict/sibling").unwrap().state, UnitState::Running);
        assert_eq!(handle.status("calm").unwrap().state, UnitState::Running);
        assert_eq!(handle.status("tolerant").unwrap().state, UnitState::Running);
        assert!(!handle.is_shutting_down());
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_eq!(report.cause, ShutdownCause::Requested);
        assert_eq!(report.exit_code(), 1);

        let handle = Supervisor::builder()
            .task(idle("calm"))
            .task(
                TaskSpec::new("vital", |_ctx| -> std::future::Ready<()> { std::panic::panic_any(3_u64) })
                    .restart(RestartPolicy::new().delay(SEC).max_restarts(MaxRestarts::AtMost(1)))
                    .critical(),
            )
            .build()
            .unwrap()
            .start();
        let report = within(DEADLINE, "the critical unit ends the supervisor", handle.wait()).await;
        assert_eq!(report.cause, ShutdownCause::CriticalEnded { unit: "vital".to_owned(), failed: true });
        assert_eq!(report.exit_code(), 1);
        let vital = handle.status("vital").unwrap();
        assert_eq!(vital.last_error.as_deref(), Some("panicked: a panic with a non-string payload"));
        assert!(report.units.iter().any(|unit| unit.name == "calm" && unit.outcome == StopOutcome::Graceful));
    });
}

// ---------------------------------------------------------------------------
// Blocking and stubborn futures

/// A run that never yields (a busy loop that ignores its cancellation)
/// cannot be aborted: the shutdown gives up on it at its timeout
/// (`Abandoned`, exit code 1) and stops the others gracefully.
#[test]
fn a_future_that_never_yields_is_abandoned_at_the_shutdown_timeout() {
    multi(|| async {
        let release = Arc::new(AtomicBool::new(false));
        let spinning = Arc::new(AtomicBool::new(false));
        let (flag, spin) = (release.clone(), spinning.clone());
        let handle = Supervisor::builder()
            .task(idle("calm"))
            .task(
                TaskSpec::new("spinner", move |_ctx| {
                    let (flag, spin) = (flag.clone(), spin.clone());
                    async move {
                        spin.store(true, Ordering::SeqCst);
                        while !flag.load(Ordering::SeqCst) {
                            std::hint::spin_loop();
                        }
                    }
                })
                .stop_timeout(Duration::from_millis(100)),
            )
            .shutdown_timeout(Duration::from_millis(500))
            .build()
            .unwrap()
            .start();
        within(DEADLINE, "running", async {
            while !spinning.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        let began = std::time::Instant::now();
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        let took = began.elapsed();
        release.store(true, Ordering::SeqCst);
        assert!(took < Duration::from_secs(5), "the shutdown waited {took:?} for a blocked thread");
        let spinner = report.units.iter().find(|unit| unit.name == "spinner").unwrap();
        assert_eq!(spinner.outcome, StopOutcome::Abandoned, "{report:?}");
        // What the shutdown timeout left no time for is aborted at once.
        let calm = report.units.iter().find(|unit| unit.name == "calm").unwrap();
        assert_eq!(calm.state, UnitState::Stopped, "{report:#?}");
        assert_eq!(report.exit_code(), 1);
    });
}

/// A run that blocks its thread with `std::thread::sleep` between checks
/// of `is_cancelled` (on a multi-thread runtime): its sibling keeps
/// running, it stops gracefully once it looks, and failures it returns
/// after blocking are counted like any.
#[test]
fn a_run_that_blocks_its_thread_between_checks_stops_gracefully() {
    multi(|| async {
        let handle = Supervisor::builder()
            .task(idle("calm"))
            .task(TaskSpec::new("sleeper", |ctx: Context| async move {
                while !ctx.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }))
            .task(
                TaskSpec::new("slow-failure", |_ctx| async {
                    std::thread::sleep(Duration::from_millis(20));
                    Err::<(), _>("failed after blocking")
                })
                .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(3))),
            )
            .build()
            .unwrap()
            .start();
        let failed = wait_for(&handle, "slow-failure", UnitState::Failed).await;
        assert_eq!((failed.restart_count, failed.last_error.as_deref()), (3, Some("failed after blocking")));
        wait_for(&handle, "sleeper", UnitState::Running).await;
        within(DEADLINE, "stop", handle.stop_unit("sleeper")).await.unwrap();
        assert_eq!(handle.status("sleeper").unwrap().state, UnitState::Stopped);
        assert_eq!(handle.status("calm").unwrap().state, UnitState::Running);
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert!(report.forced().next().is_none(), "{report:?}");
    });
}

// ---------------------------------------------------------------------------
// Tasks of their own, contexts kept past their run

/// A run that spawns a tokio task which panics, awaits it and returns its
/// `JoinError`: the inner panic's message is the run's error.
#[test]
fn a_panic_in_a_task_the_run_spawned_is_its_error_when_returned() {
    paused(|| async {
        let handle = Supervisor::builder()
            .task(
                TaskSpec::new("parent", |_ctx| async {
                    tokio::spawn(async { panic!("inner boom") }).await?;
                    Ok::<(), tokio::task::JoinError>(())
                })
                .restart(once()),
            )
            .task(
                TaskSpec::new("parent-anyhow", |_ctx| async {
                    let joined = tokio::spawn(async { Err::<(), _>(anyhow::anyhow!("inner failure")) }).await?;
                    joined.map_err(|error| error.context("the child"))
                })
                .restart(once()),
            )
            .build()
            .unwrap()
            .start();
        let status = wait_for(&handle, "parent", UnitState::Failed).await;
        let error = status.last_error.unwrap_or_default();
        assert!(error.contains("inner boom"), "{error}");
        let status = wait_for(&handle, "parent-anyhow", UnitState::Failed).await;
        assert_eq!(status.last_error.as_deref(), Some("the child: inner failure"));
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

/// A run hands its context to a task of its own and ends; what that old
/// context says once the unit has run again: its name and restart count
/// stay its own, its `ready()` does not make the new run ready, and its
/// `heartbeat()` does not feed the new run's watchdog... (the latter two
/// from a spawned task, on the supervisor's runtime, after a restart by the
/// policy, not by hand).
#[test]
fn a_context_kept_past_its_run_speaks_for_no_later_run() {
    paused(|| async {
        let (tx, mut rx) = mpsc::unbounded_channel::<Context>();
        let handle = Supervisor::builder()
            .task(
                TaskSpec::new("leaky", move |ctx: Context| {
                    let tx = tx.clone();
                    async move {
                        tx.send(ctx.clone()).unwrap();
                        if ctx.restart_count() == 0 {
                            return Err("first run fails");
                        }
                        ctx.cancelled().await;
                        Ok(())
                    }
                })
                .readiness(Readiness::Notified)
                .restart(RestartPolicy::new().delay(SEC)),
            )
            .task(idle("dependent").depends_on(["leaky"]))
            .build()
            .unwrap()
            .start();
        let first = within(DEADLINE, "first run", rx.recv()).await.unwrap();
        let second = within(DEADLINE, "second run", rx.recv()).await.unwrap();
        wait_for(&handle, "leaky", UnitState::Running).await;
        assert_eq!((first.name(), first.restart_count()), ("leaky", 0));
        assert_eq!((second.name(), second.restart_count()), ("leaky", 1));
        let stale = first.clone();
        tokio::spawn(async move { stale.ready() }).await.unwrap();
        tokio::time::sleep(SEC).await;
        let leaky = handle.status("leaky").unwrap();
        assert!(!leaky.ready, "the old run's ready() made the new one ready: {leaky:?}");
        assert_eq!(handle.status("dependent").unwrap().state, UnitState::Waiting);
        second.ready();
        wait_for(&handle, "dependent", UnitState::Running).await;
        assert!(format!("{first:?}").contains("leaky"));
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

/// A run spawns a helper that waits on its context's cancellation (or the
/// token it hands out) for its cleanup, then fails; the unit is restarted
/// after a delay, then shut down. Every context the unit handed out is
/// cancelled by then, and every helper has done its cleanup: a shutdown
/// leaves no helper of an earlier run waiting for ever.
#[test]
fn contexts_kept_past_their_run_are_cancelled_by_the_shutdown() {
    paused(|| async {
        let cleaned = Arc::new(AtomicU32::new(0));
        let (tx, mut rx) = mpsc::unbounded_channel::<Context>();
        let counter = cleaned.clone();
        let handle = Supervisor::builder()
            .task(
                TaskSpec::new("spawner", move |ctx: Context| {
                    let (tx, counter) = (tx.clone(), counter.clone());
                    async move {
                        tx.send(ctx.clone()).unwrap();
                        let (helper_ctx, token) = (ctx.clone(), ctx.cancellation_token());
                        tokio::spawn(async move {
                            helper_ctx.cancelled().await;
                            token.cancelled().await;
                            counter.fetch_add(1, Ordering::SeqCst);
                        });
                        if ctx.restart_count() < 2 {
                            return Err("fails, leaving its helper behind");
                        }
                        ctx.cancelled().await;
                        Ok(())
                    }
                })
                .restart(RestartPolicy::new().delay(SEC)),
            )
            .build()
            .unwrap()
            .start();
        let mut contexts = Vec::new();
        for _ in 0..3 {
            contexts.push(within(DEADLINE, "a run", rx.recv()).await.unwrap());
        }
        wait_for(&handle, "spawner", UnitState::Running).await;
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert!(report.is_clean(), "{report:?}");
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let cancelled: Vec<bool> = contexts.iter().map(Context::is_cancelled).collect();
        assert_eq!(cancelled, [true, true, true], "which contexts the shutdown cancelled");
        assert_eq!(cleaned.load(Ordering::SeqCst), 3, "helpers that did their cleanup");
    });
}

/// `ready()` called by the factory itself, before its future runs, makes
/// the run ready; `ready()` called while the run answers its cancellation
/// does not make a stopping unit ready again.
#[test]
fn ready_from_the_factory_counts_and_ready_while_stopping_does_not() {
    paused(|| async {
        let handle = Supervisor::builder()
            .task(
                TaskSpec::new("eager", |ctx: Context| {
                    ctx.ready();
                    async move { ctx.cancelled().await }
                })
                .readiness(Readiness::Notified),
            )
            .task(
                TaskSpec::new("late", |ctx: Context| async move {
                    ctx.ready();
                    ctx.cancelled().await;
                    ctx.ready();
                    ctx.heartbeat();
                    tokio::time::sleep(10 * SEC).await;
                })
                .readiness(Readiness::Notified)
                .stop_timeout(60 * SEC),
            )
            .build()
            .unwrap()
            .start();
        within(DEADLINE, "eager ready", handle.wait_ready("eager")).await.unwrap();
        within(DEADLINE, "late ready", handle.wait_ready("late")).await.unwrap();
        let stopping = {
            let handle = handle.clone();
            tokio::spawn(async move { handle.stop_unit("late").await })
        };
        let status = handle.wait_status("late", |status| status.state == UnitState::Stopping).await.unwrap();
        assert!(!status.ready, "{status:?}");
        tokio::time::sleep(SEC).await;
        let status = handle.status("late").unwrap();
        assert_eq!(status.state, UnitState::Stopping);
        assert!(!status.ready, "ready() while stopping made the unit ready: {status:?}");
        within(DEADLINE, "stop", stopping).await.unwrap().unwrap();
        assert_eq!(handle.status("late").unwrap().state, UnitState::Stopped);
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

/// `Context::name()` is the unit's path in a group (the name every handle
/// call takes), and `restart_count()` follows the policy and is reset by a
/// restart by hand.
#[test]
fn the_context_names_the_units_path_and_counts_its_restarts() {
    paused(|| async {
        let (tx, mut rx) = mpsc::unbounded_channel::<(String, u32)>();
        let handle = Supervisor::builder()
            .group(
                GroupSpec::new("jobs").task(
                    TaskSpec::new("w", move |ctx: Context| {
                        let tx = tx.clone();
                        async move {
                            tx.send((ctx.name().to_owned(), ctx.restart_count())).unwrap();
                            if ctx.restart_count() < 2 {
                                return Err("again");
                            }
                            ctx.cancelled().await;
                            Ok(())
                        }
                    })
                    .restart(RestartPolicy::new().delay(SEC)),
                ),
            )
            .build()
            .unwrap()
            .start();
        for expected in 0..3 {
            assert_eq!(within(DEADLINE, "a run", rx.recv()).await.unwrap(), ("jobs/w".to_owned(), expected));
        }
        within(DEADLINE, "restart", handle.restart("jobs/w")).await.unwrap();
        assert_eq!(within(DEADLINE, "a run", rx.recv()).await.unwrap(), ("jobs/w".to_owned(), 0));
        assert_eq!(handle.status("jobs/w").unwrap().restart_count, 0, "a restart by hand resets the count");
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

// ---------------------------------------------------------------------------
// Tracing

/// The supervisor's own lines about a task (started, run failed, run
/// panicked, restarting, gave up) and the lines the task writes, in its
/// factory and in its future, all carry the unit's path.
#[test]
fn the_supervisors_lines_and_the_tasks_own_name_the_unit() {
    paused_alone(|| async {
        let (captured, _default) = capture(tracing::Level::INFO);
        let handle = Supervisor::builder()
            .group(
                GroupSpec::new("g").task(
                    TaskSpec::new("flaky", |ctx: Context| {
                        tracing::info!("from the factory {}", ctx.restart_count());
                        async move {
                            tracing::info!("from the future {}", ctx.restart_count());
                            match ctx.restart_count() {
                                0 => Err("plain failure".to_owned()),
                                1 => panic!("panic failure"),
                                _ => Err("line one\nline two".to_owned()),
                            }
                        }
                    })
                    .restart(RestartPolicy::new().delay(SEC).max_restarts(MaxRestarts::AtMost(2))),
                ),
            )
            .build()
            .unwrap()
            .start();
        wait_for(&handle, "g/flaky", UnitState::Failed).await;
        within(DEADLINE, "shutdown", handle.shutdown()).await;
        for needle in ["from the factory 0", "from the factory 2", "from the future 0", "from the future 2"] {
            captured.assert_each_line_names(needle, "unit=g/flaky");
        }
        for needle in [
            "started restart_count=0",
            "started restart_count=2",
            "run failed",
            "run panicked",
            "restarting",
            "gave up",
        ] {
            let lines: Vec<_> =
                captured.lines_with(needle).into_iter().filter(|line| !line.contains("unit=g}")).collect();
            assert!(!lines.is_empty(), "no line with {needle:?} but the group's in:\n{}", captured.text());
            for line in lines {
                assert!(line.contains("unit=g/flaky"), "a line about the task without its path: {line}");
            }
        }
    });
}

/// Under a subscriber that keeps only warnings and errors (`RUST_LOG=warn`),
/// the task's own warnings and the supervisor's "run failed" still name
/// the unit: the `unit` span is at INFO level, so it is disabled there,
/// and the run is not even instrumented.
#[test]
fn at_warn_level_the_lines_about_a_task_still_name_it() {
    paused_alone(|| async {
        let (captured, _default) = capture(tracing::Level::WARN);
        let handle = Supervisor::builder()
            .task(
                TaskSpec::new("quiet", |_ctx| async {
                    tracing::warn!("trouble inside the task");
                    Err::<(), _>("it failed")
                })
                .restart(once()),
            )
            .build()
            .unwrap()
            .start();
        wait_for(&handle, "quiet", UnitState::Failed).await;
        within(DEADLINE, "shutdown", handle.shutdown()).await;
        for needle in ["trouble inside the task", "run failed", "gave up"] {
            captured.assert_each_line_names(needle, "quiet");
        }
    });
}

/// A unit whose factory captured a value that panics when dropped is
/// removed: the supervisor survives it, and its log line names the unit.
#[test]
fn the_line_for_a_factory_that_panics_when_dropped_names_the_unit() {
    paused_alone(|| async {
        let (captured, _default) = capture(tracing::Level::INFO);
        let bomb = Bomb("a capture went off");
        let handle = Supervisor::builder().task(idle("calm")).build().unwrap().start();
        within(
            DEADLINE,
            "add",
            handle.add(TaskSpec::new("capturer", move |ctx: Context| {
                let _ = &bomb;
                async move { ctx.cancelled().await }
            })),
        )
        .await
        .unwrap();
        wait_for(&handle, "capturer", UnitState::Running).await;
        let removed = within(DEADLINE, "remove", handle.remove("capturer")).await.unwrap();
        assert_eq!(removed.outcome, StopOutcome::Graceful);
        assert!(handle.status("capturer").is_none());
        assert_eq!(handle.status("calm").unwrap().state, UnitState::Running);
        within(DEADLINE, "shutdown", handle.shutdown()).await;
        captured.assert_each_line_names("panicked when dropped", "capturer");
    });
}

/// A log writer that takes 2 ms per line (on the real clock): the
/// supervisor is slower, and loses nothing: every restart is counted and
/// every event sent.
#[test]
fn a_slow_log_writer_loses_nothing() {
    #[derive(Clone)]
    struct Slow(Captured);
    impl Write for Slow {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            std::thread::sleep(Duration::from_millis(2));
            self.0.write(bytes)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let _alone = TRACING.write().unwrap_or_else(PoisonError::into_inner);
    guarded(false, || async {
        let captured = Captured::default();
        let writer = Slow(captured.clone());
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let sup = Supervisor::builder()
            .task(idle("calm"))
            .task(
                TaskSpec::new("chatty", |ctx: Context| async move {
                    tracing::info!("run {}", ctx.restart_count());
                    Err::<(), _>("again")
                })
                .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(10))),
            )
            .build()
            .unwrap();
        let mut events = sup.subscribe();
        let handle = sup.start();
        let status = wait_for(&handle, "chatty", UnitState::Failed).await;
        assert_eq!(status.restart_count, 10);
        let seen = drain(&mut events);
        let exits = seen.iter().filter(|e| e.unit == "chatty" && matches!(e.kind, EventKind::Exited { .. })).count();
        assert_eq!(exits, 11);
        within(DEADLINE, "shutdown", handle.shutdown()).await;
        let runs = captured.lines_with("chatty");
        assert!(runs.iter().any(|line| line.contains("run 10")), "{}", captured.text());
    });
}

/// A log writer that panics on every line: the task's own log call panics
/// (a failed run, like any panic), and the supervisor's lines about it
/// must not unwind through the supervisor: the failure is recorded, the
/// sibling runs, control calls answer and the shutdown completes.
///
/// The scenario runs in a child process (this test binary again), since a
/// panic that unwinds through the supervisor may abort the process.
#[test]
fn a_panicking_log_writer_does_not_take_the_supervisor_down() {
    const NAME: &str = "a_panicking_log_writer_does_not_take_the_supervisor_down";
    if std::env::var_os(CHILD).is_some() {
        return panicking_log_writer_scenario();
    }
    let _alone = TRACING.write().unwrap_or_else(PoisonError::into_inner);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let began = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if began.elapsed() > HARD_DEADLINE {
            child.kill().unwrap();
            panic!("the scenario did not finish within {HARD_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "the scenario ended with {status}:\n{stderr}");
}

/// Set in the child process that runs a scenario.
const CHILD: &str = "HOSTILE_TASKS_CHILD";

fn panicking_log_writer_scenario() {
    #[derive(Clone)]
    struct Exploding;
    impl Write for Exploding {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            panic!("the log writer exploded");
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    guarded(true, || async {
        let subscriber = tracing_subscriber::fmt().with_writer(|| Exploding).with_ansi(false).finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let handle = Supervisor::builder()
            .task(idle("calm"))
            .task(
                TaskSpec::new("logger", |_ctx| async {
                    tracing::info!("this line explodes");
                    Ok::<(), std::io::Error>(())
                })
                .restart(once()),
            )
            .build()
            .unwrap()
            .start();
        let status = wait_for(&handle, "logger", UnitState::Failed).await;
        assert!(status.last_error.unwrap_or_default().contains("the log writer exploded"));
        wait_for(&handle, "calm", UnitState::Running).await;
        within(DEADLINE, "restart", handle.restart("calm")).await.unwrap();
        wait_for(&handle, "calm", UnitState::Running).await;
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_eq!(report.units.len(), 2);
        assert!(report.units.iter().any(|unit| unit.name == "calm" && unit.outcome == StopOutcome::Graceful));
    });
}

/// `UnitStatus::last_error` is "`None` once a run ... ended on a stop that
/// was asked for"; `exit_code` is the last run's. A run that ignores its
/// cancellation and is aborted at its stop timeout ended on the stop asked
/// for, with no exit of its own: the error and the exit code of the failed
/// run before it are not kept as if they were its own.
#[test]
fn a_run_aborted_at_its_stop_timeout_keeps_nothing_of_the_run_before() {
    paused(|| async {
        let handle = Supervisor::builder()
            .task(
                TaskSpec::new("t", |ctx: Context| async move {
                    if ctx.restart_count() == 0 {
                        return Err("first run failed");
                    }
                    std::future::pending::<()>().await;
                    Ok(())
                })
                .stop_timeout(SEC)
                .restart(RestartPolicy::new().delay(SEC)),
            )
            .build()
            .unwrap()
            .start();
        let running = within(
            DEADLINE,
            "the second run",
            handle.wait_status("t", |status| status.restart_count == 1 && status.state == UnitState::Running),
        )
        .await
        .unwrap();
        assert_eq!((running.exit_code, running.last_error.as_deref()), (Some(1), Some("first run failed")));
        let mut events = handle.subscribe();
        within(DEADLINE, "stop", handle.stop_unit("t")).await.unwrap();
        let stopped =
            events_until(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Stopped { .. })).await;
        assert!(matches!(stopped.last().unwrap().kind, EventKind::Stopped { forced: true, .. }), "{stopped:?}");
        let status = handle.status("t").unwrap();
        assert_eq!(
            (status.state, status.exit_code, status.last_error.as_deref()),
            (UnitState::Stopped, None, None),
            "{status:?}"
        );
        handle.shutdown().await;
    });
}

/// An error of 16 MiB was kept whole as the unit's `last_error`, sent with
/// each event and written in each log line: 119 MB for a unit that failed
/// 20 times. Messages are cut at 64 KiB, with a note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_error_message_is_cut_with_a_note() {
    const LONG: usize = 4 << 20;
    let spec = TaskSpec::new("huge", |_ctx: Context| async { Err::<(), _>("E".repeat(LONG)) })
        .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(2)));
    let handle = Supervisor::builder().task(spec).build().unwrap().start();
    let mut events = handle.subscribe();
    let status = within(DEADLINE, "failed", handle.wait_state("huge", UnitState::Failed)).await.unwrap();
    let error = status.last_error.expect("the error");
    assert!(error.len() <= 65 * 1024, "last_error of {} bytes", error.len());
    assert!(
        error.starts_with("EEEE") && error.ends_with(&format!("({} bytes left out)", LONG - 64 * 1024)),
        "{}",
        &error[error.len() - 40..]
    );
    while let Ok(event) = events.try_recv() {
        if let EventKind::Exited { reason } = event.kind {
            assert!(reason.to_string().len() <= 65 * 1024, "an event's reason of {} bytes", reason.to_string().len());
        }
    }
    handle.shutdown().await;
}

/// A task found hung and deaf to its cancellation is dropped by what
/// watches it at the end of its grace period. A stop by hand, a removal or
/// a shutdown that comes meanwhile takes that stop over: the run had to be
/// dropped, and the event, the removal's report and the shutdown's report
/// say it was forced (they said graceful, and the shutdown's exit code was
/// 0), as they do for a daemon killed so.
#[test]
fn a_hung_task_deaf_to_its_stop_is_reported_forced_by_the_stop_that_overtakes_it() {
    for overtaken_by in ["stop_unit", "remove", "shutdown"] {
        paused(|| async move {
            let deaf = TaskSpec::new("deaf", |_ctx: Context| std::future::pending::<()>())
                .watchdog(SEC)
                .stop_timeout(10 * SEC)
                .restart(RestartPolicy::new().on(RestartOn::Never));
            let sup = Supervisor::builder().task(deaf).build().unwrap();
            let mut events = sup.subscribe();
            let handle = sup.start();
            events_until(
                DEADLINE,
                &mut events,
                |event| matches!(&event.kind, EventKind::NotReady { reason: Some(why) } if why.contains("hung")),
            )
            .await;
            tokio::time::sleep(SEC).await;
            let outcome = match overtaken_by {
                "stop_unit" => {
                    within(DEADLINE, "stop", handle.stop_unit("deaf")).await.unwrap();
                    None
                }
                "remove" => Some(within(DEADLINE, "removal", handle.remove("deaf")).await.unwrap().outcome),
                _ => None,
            };
            let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
            let outcome = outcome.unwrap_or_else(|| report.units[0].outcome);
            let seen = drain(&mut events);
            let forced = seen.iter().any(|event| matches!(event.kind, EventKind::Stopped { forced: true, .. }));
            assert!(forced, "{overtaken_by}: {seen:?}");
            match overtaken_by {
                "stop_unit" => assert_eq!(outcome, StopOutcome::NotRunning, "{report:?}"),
                _ => assert_eq!(outcome, StopOutcome::Forced, "{overtaken_by}: {report:?}"),
            }
            if overtaken_by == "shutdown" {
                assert_eq!(report.exit_code(), 1, "{report:?}");
            }
        });
    }
}

/// An error whose `Display` writes 64 MiB was formatted whole before it
/// was cut to 64 KiB, taking as much memory for a moment; one that writes
/// without end held its run's thread and grew until the process was
/// killed. It is cut as it is written: the run fails with the first 64 KiB
/// and a note, and the error is not read much past 16 MiB.
#[test]
fn an_error_whose_display_writes_without_end_is_cut_as_it_is_written() {
    paused(|| async {
        /// Writes until it has written `until` bytes, or is told to stop.
        struct Endless {
            written: Arc<AtomicUsize>,
            until: usize,
        }
        impl fmt::Display for Endless {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let piece = "spam é ✓\n".repeat(100);
                while self.written.load(Ordering::SeqCst) < self.until {
                    f.write_str(&piece)?;
                    self.written.fetch_add(piece.len(), Ordering::SeqCst);
                }
                Ok(())
            }
        }
        let written = Arc::new(AtomicUsize::new(0));
        let (read, until) = (written.clone(), 64 << 20);
        let handle = Supervisor::builder()
            .task(failing_with("endless", move || Endless { written: read.clone(), until }))
            .build()
            .unwrap()
            .start();
        let status = wait_for(&handle, "endless", UnitState::Failed).await;
        let read = written.load(Ordering::SeqCst);
        assert!(read < 17 << 20, "{read} bytes of the error were read");
        let error = status.last_error.unwrap_or_default();
        let (kept, note) = error.split_once('…').expect("cut, with a note");
        assert!(kept.len() <= 64 * 1024 && kept.len() > 60_000 && kept.starts_with("spam é ✓\nspam"), "{}", kept.len());
        assert!(note.starts_with(" (at least ") && note.ends_with(" bytes left out)"), "{note}");
        within(DEADLINE, "shutdown", handle.shutdown()).await;
    });
}

/// A task that beats on is never judged hung, however long it has run: its
/// heartbeats were counted in nanoseconds since its start, which stop at
/// 584 years (a paused clock gets there in a moment), and a task beating
/// every minute under a watchdog of an hour was judged hung and restarted
/// there.
#[tokio::test(start_paused = true)]
async fn heartbeats_go_on_counting_after_six_centuries() {
    const YEAR: Duration = Duration::from_secs(365 * 86_400);
    let task = TaskSpec::new("beats", |ctx: Context| async move {
        loop {
            ctx.heartbeat();
            tokio::select! {
                () = ctx.cancelled() => return,
                () = tokio::time::sleep(60 * SEC) => {}
            }
        }
    })
    .watchdog(3600 * SEC);
    let handle = Supervisor::builder().task(task).build().unwrap().start();
    within(DEADLINE, "running", handle.wait_state("beats", UnitState::Running)).await.unwrap();
    for year in 1..=700 {
        tokio::time::advance(YEAR).await;
        let status = handle.status("beats").unwrap();
        assert_eq!(status.restarts_total, 0, "judged hung in year {year}: {status:?}");
    }
    within(DEADLINE, "the shutdown", handle.shutdown()).await;
}
