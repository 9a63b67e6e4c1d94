//! The API docs of the handle, the supervisor, the context, the errors and
//! the reports, taken at their word: each test quotes one concrete claim
//! (an `# Errors` line, a caveat, a default, what a call returns or waits
//! for) and checks it against what really happens.
//!
//! A claim found false keeps its test asserting what the docs say, ignored
//! with the mismatch in one line.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use supervisor::{
    Context, DEFAULT_EVENT_CAPACITY, DEFAULT_TASK_STOP_TIMEOUT, DaemonSpec, Error, EventKind, GroupSpec,
    MAX_EVENT_CAPACITY, MaxRestarts, Readiness, RestartOn, RestartPolicy, ShutdownCause, Signal, StopOutcome, Strategy,
    Supervisor, SupervisorHandle, TaskSpec, UnitKind, UnitState,
};
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::time::Instant;

#[path = "support/deadline.rs"]
mod deadline;
use deadline::within;
#[path = "support/specs.rs"]
mod specs;
use specs::{idle, run_once, slow_to_stop};

/// Far longer than any call takes when nothing hangs.
const DEADLINE: Duration = Duration::from_secs(20);
const HOUR: Duration = Duration::from_secs(3600);

/// Fails its very first run at once, then idles in every later run (after
/// a restart by hand too); restarted after `delay`.
fn fails_first_run(name: &str, delay: Duration) -> TaskSpec {
    let failed = Arc::new(AtomicBool::new(false));
    TaskSpec::new(name, move |ctx: Context| {
        let first = !failed.swap(true, Ordering::SeqCst);
        async move {
            if first {
                return Err("first run fails");
            }
            ctx.cancelled().await;
            Ok(())
        }
    })
    .restart(RestartPolicy::new().delay(delay))
}

/// Ignores cancellation; stopped only by an abort.
fn stubborn(name: &str) -> TaskSpec {
    TaskSpec::new(name, |_ctx: Context| std::future::pending::<()>())
}

// ---------------------------------------------------------------------------
// SupervisorHandle: errors of the control calls

/// `SupervisorHandle::remove`, `# Errors`: "[`Error::UnknownUnit`],
/// [`Error::GroupNotRunning`], [`Error::ShuttingDown`], or
/// [`Error::HasDependents`] when units of its group depend on it." (The
/// last was once missing from the list.)
#[tokio::test(start_paused = true)]
async fn remove_answers_only_with_its_listed_errors() {
    let handle = Supervisor::builder().task(idle("db")).task(idle("api").depends_on(["db"])).build().unwrap().start();
    within(DEADLINE, "api ready", handle.wait_ready("api")).await.unwrap();
    let removed = within(DEADLINE, "remove db", handle.remove("db")).await;
    let listed = matches!(
        removed,
        Ok(_)
            | Err(Error::UnknownUnit { .. }
                | Error::GroupNotRunning { .. }
                | Error::ShuttingDown { .. }
                | Error::HasDependents { .. })
    );
    assert!(matches!(removed, Err(Error::HasDependents { .. })), "{removed:?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert!(listed, "remove answered with an error its docs do not list: {removed:?}");
}

/// `SupervisorHandle::stop_unit`, `# Errors`: "[`Error::UnknownUnit`]. (A
/// unit of a group that is not running is at rest: stopping it does
/// nothing.)" (The docs once listed `GroupNotRunning`, which never came.)
#[tokio::test(start_paused = true)]
async fn stop_unit_in_a_stopped_group_does_nothing() {
    let handle = Supervisor::builder().group(GroupSpec::new("g").task(idle("a"))).build().unwrap().start();
    within(DEADLINE, "g ready", handle.wait_ready("g")).await.unwrap();
    within(DEADLINE, "stop g", handle.stop_unit("g")).await.unwrap();
    let stopped = within(DEADLINE, "stop g/a", handle.stop_unit("g/a")).await;
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert!(matches!(stopped, Ok(())), "stop_unit in a stopped group: {stopped:?}");
}

/// `SupervisorHandle::restart`, `# Errors`: "[`Error::GroupNotRunning`]
/// when the unit's group is not running"; `start_unit`, `pause_restarts`,
/// `resume_restarts` and `remove` list it too; `GroupNotRunning::group` is
/// "The group that is not running."
#[tokio::test(start_paused = true)]
async fn calls_on_a_unit_of_a_stopped_group_say_group_not_running() {
    let handle = Supervisor::builder().group(GroupSpec::new("g").task(idle("a"))).build().unwrap().start();
    within(DEADLINE, "g ready", handle.wait_ready("g")).await.unwrap();
    within(DEADLINE, "stop g", handle.stop_unit("g")).await.unwrap();
    let answers = [
        ("restart", within(DEADLINE, "restart", handle.restart("g/a")).await),
        ("start_unit", within(DEADLINE, "start", handle.start_unit("g/a")).await),
        ("pause_restarts", within(DEADLINE, "pause", handle.pause_restarts("g/a")).await),
        ("resume_restarts", within(DEADLINE, "resume", handle.resume_restarts("g/a")).await),
        ("remove", within(DEADLINE, "remove", handle.remove("g/a")).await.map(|_| ())),
    ];
    for (call, answer) in answers {
        assert!(
            matches!(answer, Err(Error::GroupNotRunning { ref group, ref unit, .. }) if group == "g" && unit == "g/a"),
            "{call}(g/a) in a stopped group: {answer:?}"
        );
    }
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `SupervisorHandle::add`, `# Errors`: "What `build()` would say of the
/// spec (an empty name or one with `/`, a bad policy...),
/// [`Error::DuplicateName`] when the group has a unit of that name".
#[tokio::test(start_paused = true)]
async fn add_refuses_what_build_would_refuse() {
    let handle = Supervisor::builder().task(idle("a")).build().unwrap().start();
    let empty = within(DEADLINE, "add empty", handle.add(idle(""))).await;
    assert!(matches!(empty, Err(Error::EmptyName { kind: "task" })), "{empty:?}");
    let slash = within(DEADLINE, "add slash", handle.add(idle("x/y"))).await;
    assert!(matches!(slash, Err(Error::NameWithSlash { ref name }) if name == "x/y"), "{slash:?}");
    let policy =
        within(DEADLINE, "add bad policy", handle.add(idle("j").restart(RestartPolicy::new().jitter(1.5)))).await;
    assert!(matches!(policy, Err(Error::InvalidSetting { setting: "jitter", .. })), "{policy:?}");
    let both =
        within(DEADLINE, "add two problems", handle.add(idle("").restart(RestartPolicy::new().jitter(1.5)))).await;
    let both = both.unwrap_err();
    assert!(matches!(both, Error::Problems(ref list) if list.len() == 2), "{both:?}");
    let duplicate = within(DEADLINE, "add duplicate", handle.add(idle("a"))).await;
    assert!(matches!(duplicate, Err(Error::DuplicateName { ref name }) if name == "a"), "{duplicate:?}");
    let dependency = within(DEADLINE, "add unknown dependency", handle.add(idle("b").depends_on(["nope"]))).await;
    assert!(matches!(dependency, Err(Error::UnknownDependency { .. })), "{dependency:?}");
    assert_eq!(handle.unit_names(), ["a"], "nothing refused was added");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `SupervisorHandle::add_to`, `# Errors`: "As [`add`](Self::add), and
/// [`Error::UnknownUnit`] or [`Error::WrongKind`] when `group` names no
/// group, [`Error::GroupNotRunning`] when it is not running"; and
/// `DuplicateName::name` is "The repeated name, as a path".
#[tokio::test(start_paused = true)]
async fn add_to_refuses_a_name_that_is_no_running_group() {
    let handle = Supervisor::builder()
        .task(idle("a"))
        .group(GroupSpec::new("g").task(idle("b")))
        .group(GroupSpec::new("h"))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "g ready", handle.wait_ready("g")).await.unwrap();
    let unknown = within(DEADLINE, "add_to nope", handle.add_to("nope", idle("x"))).await;
    assert!(matches!(unknown, Err(Error::UnknownUnit { ref name, .. }) if name == "nope"), "{unknown:?}");
    let task = within(DEADLINE, "add_to a", handle.add_to("a", idle("x"))).await;
    assert!(matches!(task, Err(Error::WrongKind { kind: UnitKind::Task, .. })), "{task:?}");
    let duplicate = within(DEADLINE, "add_to g b", handle.add_to("g", idle("b"))).await;
    assert!(matches!(duplicate, Err(Error::DuplicateName { ref name }) if name == "g/b"), "{duplicate:?}");
    within(DEADLINE, "stop h", handle.stop_unit("h")).await.unwrap();
    let stopped = within(DEADLINE, "add_to h", handle.add_to("h", idle("x"))).await;
    assert!(
        matches!(stopped, Err(Error::GroupNotRunning { ref group, ref unit, .. }) if group == "h" && unit == "h/x"),
        "{stopped:?}"
    );
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `SupervisorHandle::signal`, `# Errors`: "[`Error::UnknownUnit`],
/// [`Error::WrongKind`] for a task or a group, [`Error::NotRunning`] when no
/// run is in progress".
#[tokio::test]
async fn signal_refuses_tasks_groups_and_daemons_at_rest() {
    let handle = Supervisor::builder()
        .task(idle("t"))
        .group(GroupSpec::new("g"))
        .daemon(DaemonSpec::new("d", "true").restart(run_once()))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "d exited", handle.wait_state("d", UnitState::Exited)).await.unwrap();
    let task = handle.signal("t", Signal::HUP);
    assert!(matches!(task, Err(Error::WrongKind { kind: UnitKind::Task, .. })), "{task:?}");
    let group = handle.signal("g", Signal::HUP);
    assert!(matches!(group, Err(Error::WrongKind { kind: UnitKind::Group, .. })), "{group:?}");
    let at_rest = handle.signal("d", Signal::HUP);
    assert!(matches!(at_rest, Err(Error::NotRunning { action: "signal", ref unit }) if unit == "d"), "{at_rest:?}");
    let unknown = handle.signal("nope", Signal::HUP);
    assert!(matches!(unknown, Err(Error::UnknownUnit { .. })), "{unknown:?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `SupervisorHandle::signal`: "(a stop signal sent this way is an outside
/// kill: the run's ending goes through the policy)"; `UnitStatus::signal`:
/// "The signal that ended the last run of a process", and its `exit_code`
/// is `None` (`ExitReason::exit_code`: "`None` for ... a signal").
#[tokio::test]
async fn a_kill_sent_with_signal_is_an_ending_for_the_policy() {
    let handle = Supervisor::builder()
        .daemon(DaemonSpec::new("d", "sleep").arg("1000").restart(run_once()))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "d ready", handle.wait_ready("d")).await.unwrap();
    handle.signal("d", Signal::KILL).unwrap();
    let status = within(DEADLINE, "d exited", handle.wait_state("d", UnitState::Exited)).await.unwrap();
    assert_eq!(status.signal, Some(9), "{status:#?}");
    assert_eq!(status.exit_code, None, "{status:#?}");
    assert_eq!(status.last_error.as_deref(), Some("killed by signal 9"), "{status:#?}");
    assert!(!status.running && status.pid.is_none() && status.uptime.is_none(), "{status:#?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `SupervisorHandle::tail`: "Empty for a task or a group." `# Errors`:
/// "[`Error::UnknownUnit`]."
#[tokio::test(start_paused = true)]
async fn tail_of_a_task_or_a_group_is_empty() {
    let handle = Supervisor::builder().task(idle("t")).group(GroupSpec::new("g")).build().unwrap().start();
    assert!(handle.tail("t", 10).unwrap().is_empty());
    assert!(handle.tail("g", 10).unwrap().is_empty());
    assert!(matches!(handle.tail("nope", 10), Err(Error::UnknownUnit { .. })));
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `SupervisorHandle::pause_restarts`: "when its run ends and its policy
/// would restart it, it waits in `Backoff` until `resume_restarts`...
/// Idempotent." `resume_restarts`: "a restart that came due while they
/// were paused happens now."
#[tokio::test(start_paused = true)]
async fn paused_restarts_wait_in_backoff_and_happen_on_resume() {
    let fail = Arc::new(Notify::new());
    let trigger = fail.clone();
    let spec = TaskSpec::new("w", move |ctx: Context| {
        let fail = trigger.clone();
        async move {
            if ctx.restart_count() == 0 {
                fail.notified().await;
                return Err("asked to fail");
            }
            ctx.cancelled().await;
            Ok(())
        }
    })
    .restart(RestartPolicy::new().delay(Duration::from_secs(1)));
    let handle = Supervisor::builder().task(spec).build().unwrap().start();
    within(DEADLINE, "w ready", handle.wait_ready("w")).await.unwrap();
    within(DEADLINE, "pause", handle.pause_restarts("w")).await.unwrap();
    within(DEADLINE, "pause again", handle.pause_restarts("w")).await.unwrap();
    assert!(handle.status("w").unwrap().restarts_paused);
    fail.notify_one();
    within(DEADLINE, "w in backoff", handle.wait_state("w", UnitState::Backoff)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let held = handle.status("w").unwrap();
    assert_eq!(held.state, UnitState::Backoff, "still held long after the delay: {held:#?}");
    let resumed_at = Instant::now();
    within(DEADLINE, "resume", handle.resume_restarts("w")).await.unwrap();
    let running = within(DEADLINE, "w running", handle.wait_state("w", UnitState::Running)).await.unwrap();
    assert!(resumed_at.elapsed() < Duration::from_secs(1), "the restart waited: {:?}", resumed_at.elapsed());
    assert!(!running.restarts_paused, "{running:#?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `SupervisorHandle::restart`: "Stops the unit gracefully if it runs (or
/// waits in backoff), resets its restart count, and starts it again".
#[tokio::test(start_paused = true)]
async fn restart_of_a_unit_in_backoff_starts_it_at_once_with_its_count_reset() {
    let handle = Supervisor::builder().task(fails_first_run("f", HOUR)).build().unwrap().start();
    within(DEADLINE, "f in backoff", handle.wait_state("f", UnitState::Backoff)).await.unwrap();
    let asked = Instant::now();
    within(DEADLINE, "restart", handle.restart("f")).await.unwrap();
    let status = within(DEADLINE, "f running", handle.wait_state("f", UnitState::Running)).await.unwrap();
    assert!(asked.elapsed() < HOUR, "the restart waited out the delay");
    assert_eq!(status.restart_count, 0, "{status:#?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `SupervisorHandle::restart` of a unit at rest starts it: "and starts it
/// again".
#[tokio::test(start_paused = true)]
async fn restart_of_a_stopped_unit_starts_it() {
    let handle = Supervisor::builder().task(idle("w")).build().unwrap().start();
    within(DEADLINE, "stop", handle.stop_unit("w")).await.unwrap();
    within(DEADLINE, "restart", handle.restart("w")).await.unwrap();
    let status = within(DEADLINE, "w running", handle.wait_state("w", UnitState::Running)).await.unwrap();
    assert!(status.running, "{status:#?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `SupervisorHandle::start_unit`: "Starting a unit that is active does
/// nothing".
#[tokio::test(start_paused = true)]
async fn start_unit_on_a_unit_in_backoff_does_nothing() {
    let handle = Supervisor::builder().task(fails_first_run("f", HOUR)).build().unwrap().start();
    let before = within(DEADLINE, "f in backoff", handle.wait_state("f", UnitState::Backoff)).await.unwrap();
    within(DEADLINE, "start", handle.start_unit("f")).await.unwrap();
    let after = handle.status("f").unwrap();
    assert_eq!(after.state, UnitState::Backoff, "{after:#?}");
    assert_eq!(after.restart_count, before.restart_count, "{after:#?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `SupervisorHandle::start_unit`: "one that is stopping starts once it has
/// stopped."
#[tokio::test(start_paused = true)]
async fn start_unit_on_a_stopping_unit_starts_it_after_the_stop() {
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let spec = TaskSpec::new("s", move |ctx: Context| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move {
            ctx.cancelled().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    let handle = Supervisor::builder().task(spec).build().unwrap().start();
    within(DEADLINE, "s ready", handle.wait_ready("s")).await.unwrap();
    let stopper = handle.clone();
    let stop = tokio::spawn(async move { stopper.stop_unit("s").await });
    within(DEADLINE, "s stopping", handle.wait_state("s", UnitState::Stopping)).await.unwrap();
    within(DEADLINE, "start", handle.start_unit("s")).await.unwrap();
    within(DEADLINE, "stop answered", stop).await.unwrap().unwrap();
    let status = within(DEADLINE, "s running", handle.wait_state("s", UnitState::Running)).await.unwrap();
    assert!(status.running, "{status:#?}");
    assert_eq!(runs.load(Ordering::SeqCst), 2, "a second run started");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

// ---------------------------------------------------------------------------
// SupervisorHandle: lookups, listings and waits

/// `SupervisorHandle::status`: "A snapshot of one unit; `None` if no unit
/// has that path": the root group is no unit, nor is a path with a
/// trailing `/`.
#[tokio::test(start_paused = true)]
async fn status_of_no_units_path_is_none() {
    let handle = Supervisor::builder().group(GroupSpec::new("g").task(idle("a"))).build().unwrap().start();
    for path in ["", "/", "g/", "/g", "a", "g/a/b", "g//a"] {
        assert!(handle.status(path).is_none(), "status({path:?}) = {:?}", handle.status(path));
    }
    assert!(handle.status("g/a").is_some());
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `SupervisorHandle::unit_names` and `statuses`: "depth first in
/// registration order (a group, then its units)", with units added at run
/// time after the registered ones of their group (`add`: "it comes after
/// them").
#[tokio::test(start_paused = true)]
async fn listings_are_depth_first_with_added_units_last_in_their_group() {
    let handle = Supervisor::builder()
        .task(idle("a"))
        .group(GroupSpec::new("g").task(idle("b")).group(GroupSpec::new("n").task(idle("c"))))
        .task(idle("z"))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "add_to g", handle.add_to("g", idle("d"))).await.unwrap();
    within(DEADLINE, "add", handle.add(idle("e"))).await.unwrap();
    let expected = ["a", "g", "g/b", "g/n", "g/n/c", "g/d", "z", "e"];
    assert_eq!(handle.unit_names(), expected);
    let statuses: Vec<String> = handle.statuses().into_iter().map(|status| status.name).collect();
    assert_eq!(statuses, expected);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `SupervisorHandle::wait_ready`, `# Errors`: "[`Error::WillNotHappen`]
/// when the unit gave up (`Failed`)"; `WillNotHappen::state`: "Its state
/// when the wait gave up."
#[tokio::test(start_paused = true)]
async fn wait_ready_on_a_failed_unit_will_not_happen() {
    let spec = TaskSpec::new("f", |_ctx: Context| async { Err::<(), _>("boom") })
        .restart(RestartPolicy::new().max_restarts(MaxRestarts::AtMost(0)));
    let handle = Supervisor::builder().task(spec).build().unwrap().start();
    within(DEADLINE, "f failed", handle.wait_state("f", UnitState::Failed)).await.unwrap();
    let waited = within(DEADLINE, "wait_ready", handle.wait_ready("f")).await;
    assert!(
        matches!(waited, Err(Error::WillNotHappen { state: UnitState::Failed, ref unit, .. }) if unit == "f"),
        "{waited:?}"
    );
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `SupervisorHandle::wait_state`: "Waits until the unit is in `state`, and
/// returns its status then": a state already reached answers at once.
#[tokio::test(start_paused = true)]
async fn wait_state_for_the_current_state_answers_at_once() {
    let handle = Supervisor::builder().task(idle("w")).build().unwrap().start();
    within(DEADLINE, "w running", handle.wait_state("w", UnitState::Running)).await.unwrap();
    let again = within(DEADLINE, "again", handle.wait_state("w", UnitState::Running)).await.unwrap();
    assert_eq!(again.state, UnitState::Running);
    assert_eq!(again.name, "w");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `SupervisorHandle::is_shutting_down`: "Whether a shutdown has begun (or
/// the supervisor has ended)": also when it ended by itself.
#[tokio::test(start_paused = true)]
async fn is_shutting_down_once_the_supervisor_ended_by_itself() {
    let spec = TaskSpec::new("main", |_ctx: Context| async {}).critical().restart(run_once());
    let handle = Supervisor::builder().task(spec).build().unwrap().start();
    let report = within(DEADLINE, "wait", handle.wait()).await;
    assert!(matches!(report.cause, ShutdownCause::CriticalEnded { failed: false, .. }), "{report:#?}");
    assert!(handle.is_shutting_down());
}

// ---------------------------------------------------------------------------
// Shutdown: timeouts, skip_grace, the caveat, the report

/// `DEFAULT_TASK_STOP_TIMEOUT` and `TaskSpec::stop_timeout`: "How long a run
/// may take to finish after cancellation before it is aborted (default
/// 5 s)."
#[tokio::test(start_paused = true)]
async fn a_task_that_ignores_its_stop_is_aborted_after_five_seconds_by_default() {
    assert_eq!(DEFAULT_TASK_STOP_TIMEOUT, Duration::from_secs(5));
    let handle = Supervisor::builder().task(stubborn("s")).build().unwrap().start();
    within(DEADLINE, "s ready", handle.wait_ready("s")).await.unwrap();
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    let line = &report.units[0];
    assert_eq!(line.outcome, StopOutcome::Forced, "{report:#?}");
    assert!(
        line.took >= Duration::from_secs(5) && line.took < Duration::from_millis(5100),
        "stop took {:?}",
        line.took
    );
}

/// `SupervisorBuilder::shutdown_timeout`: "when it runs out, every unit
/// still stopping is aborted or killed at once, whatever its own stop
/// timeout."
#[tokio::test(start_paused = true)]
async fn the_shutdown_timeout_cuts_a_long_stop_timeout_short() {
    let handle = Supervisor::builder()
        .task(stubborn("s").stop_timeout(HOUR))
        .shutdown_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "s ready", handle.wait_ready("s")).await.unwrap();
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert_eq!(report.units[0].outcome, StopOutcome::Forced, "{report:#?}");
    assert!(report.took >= Duration::from_secs(2) && report.took < Duration::from_secs(3), "{report:#?}");
    assert_eq!(report.exit_code(), 1);
}

/// `RestartPolicy::delay`: "A wait too long for the clock to hold
/// (`Duration::MAX` ...) never ends: the unit stays in `Backoff` until a
/// call restarts or stops it, with `tokio::time::pause()` too." It was put
/// 30 years ahead, which a paused clock jumps to: the unit restarted.
#[tokio::test(start_paused = true)]
async fn a_restart_delay_of_duration_max_never_ends_even_on_a_paused_clock() {
    // A year at a time: tokio caps one sleep at about 2 years.
    let year = Duration::from_secs(86_400 * 365);
    for strategy in [Strategy::OneForOne, Strategy::OneForAll] {
        let handle = Supervisor::builder()
            .strategy(strategy)
            .task(idle("sibling"))
            .task(fails_first_run("a", Duration::MAX))
            .build()
            .unwrap()
            .start();
        within(DEADLINE, "a in backoff", handle.wait_state("a", UnitState::Backoff)).await.unwrap();
        for _ in 0..50 {
            tokio::time::sleep(year).await;
        }
        let status = handle.status("a").unwrap();
        assert_eq!((status.state, status.restart_count), (UnitState::Backoff, 0), "{strategy:?}: {status:?}");
        within(DEADLINE, "restart", handle.restart("a")).await.unwrap();
        within(DEADLINE, "a ready", handle.wait_ready("a")).await.unwrap();
        handle.shutdown().await;
    }
}

/// A timeout of zero leaves no grace period: "what is still stopping then
/// is aborted or killed". The same program was reported `Forced` (exit
/// code 1) in some runs and `Graceful` (0) in others, as the stop signal or
/// the cancellation won the race with the timer or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_of_zero_force_every_stop_in_every_run() {
    for round in 0..10 {
        let quick = TaskSpec::new("quick", |ctx: Context| async move { ctx.cancelled().await });
        let daemon = DaemonSpec::new("d", "sleep").arg("100");
        let handle =
            Supervisor::builder().task(quick).daemon(daemon).shutdown_timeout(Duration::ZERO).build().unwrap().start();
        within(DEADLINE, "d ready", handle.wait_ready("d")).await.unwrap();
        within(DEADLINE, "quick ready", handle.wait_ready("quick")).await.unwrap();
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert!(report.units.iter().all(|line| line.outcome == StopOutcome::Forced), "round {round}: {report:#?}");
        assert_eq!(report.exit_code(), 1, "round {round}");

        let daemon = DaemonSpec::new("d", "sleep").arg("100").stop_timeout(Duration::ZERO);
        let handle = Supervisor::builder().daemon(daemon).build().unwrap().start();
        within(DEADLINE, "d ready", handle.wait_ready("d")).await.unwrap();
        let mut events = handle.subscribe();
        within(DEADLINE, "stop", handle.stop_unit("d")).await.unwrap();
        let stopped = within(DEADLINE, "the event", async {
            loop {
                match events.recv().await {
                    Ok(event) if matches!(event.kind, EventKind::Stopped { .. }) => return event.kind,
                    Ok(_) => {}
                    Err(error) => panic!("{error}"),
                }
            }
        })
        .await;
        assert!(matches!(stopped, EventKind::Stopped { forced: true, .. }), "round {round}: {stopped:?}");
        handle.shutdown().await;
    }
}

/// `SupervisorHandle::skip_grace`: "Cuts every grace period short: units
/// still stopping, now or in a later shutdown, are aborted or killed at
/// once" — here, now: called while the shutdown waits for the unit.
#[tokio::test(start_paused = true)]
async fn skip_grace_during_a_shutdown_forces_the_unit_still_stopping() {
    let handle = Supervisor::builder().task(stubborn("s").stop_timeout(HOUR)).build().unwrap().start();
    within(DEADLINE, "s ready", handle.wait_ready("s")).await.unwrap();
    let stopper = handle.clone();
    let shutdown = tokio::spawn(async move { stopper.shutdown().await });
    within(DEADLINE, "s stopping", handle.wait_state("s", UnitState::Stopping)).await.unwrap();
    handle.skip_grace();
    let report = within(DEADLINE, "shutdown", shutdown).await.unwrap();
    assert_eq!(report.units[0].outcome, StopOutcome::Forced, "{report:#?}");
    assert!(report.took < HOUR, "{report:#?}");
}

/// `SupervisorHandle::shutdown`, `# Caveats`: "Awaited from inside one of
/// the supervisor's own tasks, it waits for that task's stop too, which
/// waits for it: the task is dropped at the end of its grace period and
/// reported `Forced`."
#[tokio::test(start_paused = true)]
async fn a_shutdown_awaited_inside_a_task_forces_that_task() {
    let (tx, rx) = watch::channel(None::<SupervisorHandle>);
    let spec = TaskSpec::new("ender", move |_ctx: Context| {
        let mut rx = rx.clone();
        async move {
            let handle = rx.wait_for(Option::is_some).await.unwrap().clone().unwrap();
            handle.shutdown().await;
        }
    })
    .stop_timeout(Duration::from_secs(3));
    let handle = Supervisor::builder().task(spec).build().unwrap().start();
    tx.send(Some(handle.clone())).unwrap();
    let report = within(DEADLINE, "wait", handle.wait()).await;
    let line = &report.units[0];
    assert_eq!(line.name, "ender");
    assert_eq!(line.outcome, StopOutcome::Forced, "{report:#?}");
    assert!(line.took >= Duration::from_secs(3), "{report:#?}");
}

/// `StopOutcome::Graceful`: "A unit between runs (waiting out a restart
/// delay, or for its dependencies) has nothing to stop: it is `Stopped` at
/// once, gracefully, in no time."
#[tokio::test(start_paused = true)]
async fn units_between_runs_stop_gracefully_in_no_time() {
    let handle = Supervisor::builder()
        .task(fails_first_run("f", HOUR))
        .task(
            TaskSpec::new("never", |ctx: Context| async move { ctx.cancelled().await }).readiness(Readiness::Notified),
        )
        .task(idle("dependent").depends_on(["never"]))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "f in backoff", handle.wait_state("f", UnitState::Backoff)).await.unwrap();
    within(DEADLINE, "dependent waiting", handle.wait_state("dependent", UnitState::Waiting)).await.unwrap();
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    for name in ["f", "dependent"] {
        let line = report.units.iter().find(|line| line.name == name).unwrap();
        assert_eq!(line.outcome, StopOutcome::Graceful, "{line:#?}");
        assert_eq!(line.state, UnitState::Stopped, "{line:#?}");
        assert_eq!(line.took, Duration::ZERO, "{line:#?}");
    }
}

/// `StopOutcome::NotRunning`: "It was not running (stopped, exited or failed
/// before the shutdown)"; `UnitReport::state`: "the state it was at rest in
/// (`Exited`, `Failed`) when the shutdown reached it".
#[tokio::test(start_paused = true)]
async fn units_at_rest_are_reported_not_running_in_their_state() {
    let handle = Supervisor::builder()
        .task(TaskSpec::new("done", |_ctx: Context| async {}).restart(run_once()))
        .task(
            TaskSpec::new("gave-up", |_ctx: Context| async { Err::<(), _>("no") })
                .restart(RestartPolicy::new().max_restarts(MaxRestarts::AtMost(0))),
        )
        .task(idle("stopped"))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "done", handle.wait_state("done", UnitState::Exited)).await.unwrap();
    within(DEADLINE, "gave-up", handle.wait_state("gave-up", UnitState::Failed)).await.unwrap();
    within(DEADLINE, "stop", handle.stop_unit("stopped")).await.unwrap();
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    for (name, state) in [("done", UnitState::Exited), ("gave-up", UnitState::Failed), ("stopped", UnitState::Stopped)]
    {
        let line = report.units.iter().find(|line| line.name == name).unwrap();
        assert_eq!(line.outcome, StopOutcome::NotRunning, "{line:#?}");
        assert_eq!(line.state, state, "{line:#?}");
    }
    assert_eq!(report.failed().map(|line| line.name.as_str()).collect::<Vec<_>>(), ["gave-up"]);
    assert_eq!(report.exit_code(), 1, "a unit given up on makes the end unclean");
}

/// `ShutdownReport`: "in the order the units were stopped (the reverse of
/// their start order, a group's units before the group)".
#[tokio::test(start_paused = true)]
async fn the_report_lists_units_in_reverse_start_order_group_units_first() {
    let handle = Supervisor::builder()
        .task(idle("a"))
        .group(GroupSpec::new("g").task(idle("b")).task(idle("c")))
        .task(idle("d"))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "d ready", handle.wait_ready("d")).await.unwrap();
    within(DEADLINE, "g ready", handle.wait_ready("g")).await.unwrap();
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    let names: Vec<&str> = report.units.iter().map(|line| line.name.as_str()).collect();
    assert_eq!(names, ["d", "g/c", "g/b", "g", "a"], "{report}");
}

/// `UnitReport` and `ShutdownReport` serialise to camelCase, `kind` under
/// the key `type`, `took` as seconds (`ShutdownReport::took`, "How long the
/// whole shutdown took", serialised with `seconds`), and `ShutdownCause`
/// tagged by `kind`.
#[tokio::test(start_paused = true)]
async fn the_report_json_has_its_documented_keys() {
    let spec = TaskSpec::new("main", |_ctx: Context| async { Err::<(), _>("broken") }).critical().restart(run_once());
    let handle = Supervisor::builder().task(spec).task(idle("w")).build().unwrap().start();
    let report = within(DEADLINE, "wait", handle.wait()).await;
    let json = serde_json::to_value(&report).unwrap();
    let mut keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["cause", "took", "units"], "{json}");
    assert!(json["took"].is_number(), "{json}");
    assert_eq!(json["cause"], serde_json::json!({"kind": "criticalEnded", "unit": "main", "failed": true}));
    let line = json["units"].as_array().unwrap().iter().find(|line| line["name"] == "w").unwrap();
    let mut keys: Vec<&String> = line.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["name", "outcome", "state", "took", "type"], "{line}");
    assert_eq!(line["type"], "task");
    assert_eq!(line["state"], "stopped");
    assert_eq!(line["outcome"], "graceful");
    assert!(line["took"].is_number(), "{line}");
    assert!(report.cause.is_failure());
    assert_eq!(report.exit_code(), 1);
}

/// `SupervisorBuilder::intensity`: "More than `max_restarts` restarts among
/// the root group's units within `period`, and the root gives up: the
/// supervisor shuts down with exit code 1, so that `run()` and `wait()`
/// return."
#[tokio::test(start_paused = true)]
async fn the_root_giving_up_ends_the_supervisor_with_exit_code_1() {
    let spec = TaskSpec::new("flaky", |_ctx: Context| async { Err::<(), _>("boom") })
        .restart(RestartPolicy::new().delay(Duration::from_millis(10)));
    let sup = Supervisor::builder().task(spec).intensity(2, Duration::from_secs(60)).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let report = within(DEADLINE, "wait", handle.wait()).await;
    assert!(matches!(report.cause, ShutdownCause::GaveUp { .. }), "{report:#?}");
    assert_eq!(report.exit_code(), 1);
    let mut restarts = 0;
    while let Ok(event) = events.try_recv() {
        if matches!(event.kind, EventKind::Restarting { .. }) {
            restarts += 1;
        }
    }
    assert!(restarts <= 3, "{restarts} restarts scheduled with an intensity of 2");
}

// ---------------------------------------------------------------------------
// Supervisor: start, run, subscribe, event capacity

/// `Supervisor::start`, `# Panics`: "Outside a tokio runtime, like
/// [`tokio::spawn`]."
#[test]
fn start_outside_a_runtime_panics() {
    let sup = Supervisor::builder().task(idle("w")).build().unwrap();
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _handle = sup.start();
    }));
    let payload = started.expect_err("start() outside a runtime did not panic");
    let message = payload.downcast_ref::<String>().map(String::as_str).or(payload.downcast_ref::<&str>().copied());
    // The way out, where tokio's own message named a reactor.
    assert!(message.is_some_and(|message| message.contains("must be called inside a tokio runtime")), "{message:?}");
}

/// `Supervisor::run`, `# Panics`: "As `start` does", which says so
/// outside a tokio runtime; polled on a thread of none, it panicked with
/// tokio's message on the signal handlers it installs first, which named a
/// reactor.
#[test]
fn run_outside_a_runtime_panics_saying_so() {
    use futures_util::FutureExt;
    let sup = Supervisor::builder().task(idle("w")).build().unwrap();
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || sup.run().now_or_never()));
    let payload = ran.expect_err("run() outside a runtime did not panic");
    let message = payload.downcast_ref::<String>().map(String::as_str).or(payload.downcast_ref::<&str>().copied());
    let says_so = |message: &str| message.contains("`Supervisor::run`") && message.contains("inside a tokio runtime");
    assert!(message.is_some_and(says_so), "{message:?}");
}

/// `Supervisor::run`: "Returns early, with the report, when the supervisor
/// ends by itself (the root group gave up, or a critical unit ended)."
#[tokio::test]
async fn run_returns_when_a_critical_unit_ends() {
    let spec = TaskSpec::new("main", |_ctx: Context| async {}).critical().restart(run_once());
    let report = within(DEADLINE, "run", Supervisor::builder().task(spec).task(idle("w")).build().unwrap().run()).await;
    assert!(matches!(report.cause, ShutdownCause::CriticalEnded { ref unit, failed: false } if unit == "main"));
    assert_eq!(report.exit_code(), 0, "{report:#?}");
}

/// `SupervisorBuilder::event_capacity`: "The capacity of the event channel
/// (default 1024...)"; `DEFAULT_EVENT_CAPACITY`: "How many events a slow
/// subscriber may fall behind before it misses some (it is then told how
/// many, by `RecvError::Lagged`)."
#[tokio::test(start_paused = true)]
async fn a_subscriber_keeps_the_last_1024_events_by_default() {
    assert_eq!(DEFAULT_EVENT_CAPACITY, 1024);
    let spec = TaskSpec::new("flaky", |_ctx: Context| async { Err::<(), _>("boom") })
        .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(600)));
    let sup = Supervisor::builder().task(spec).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "flaky failed", handle.wait_state("flaky", UnitState::Failed)).await.unwrap();
    let lost = match events.try_recv() {
        Err(broadcast::error::TryRecvError::Lagged(lost)) => lost,
        other => panic!("expected a lag first, got {other:?}"),
    };
    let mut kept = 0_u64;
    while events.try_recv().is_ok() {
        kept += 1;
    }
    assert_eq!(kept, 1024, "kept {kept} events after losing {lost}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `SupervisorBuilder::event_capacity`: "(default 1024, at most
/// [`MAX_EVENT_CAPACITY`])"; `build()`, `# Errors`: "[`Error::InvalidSetting`]
/// for ... a group setting out of range".
#[test]
fn an_event_capacity_out_of_range_is_refused() {
    for capacity in [0, MAX_EVENT_CAPACITY + 1] {
        let built = Supervisor::builder().event_capacity(capacity).build();
        assert!(
            matches!(built, Err(Error::InvalidSetting { setting: "event_capacity", .. })),
            "event_capacity({capacity}): {built:?}"
        );
    }
    assert!(Supervisor::builder().event_capacity(1).build().is_ok());
}

// ---------------------------------------------------------------------------
// build() and Error

/// `SupervisorBuilder::build`, `# Errors`: "Every problem found, at once
/// ([`Error::Problems`] when there are several): [`Error::EmptyName`],
/// [`Error::NameWithSlash`], [`Error::DuplicateName`] (within a group),
/// [`Error::EmptyProgram`], [`Error::InvalidSetting`] ...; then what a build
/// step (the PID file) says", with `UnknownDependency`, `SelfDependency`
/// and `DependencyCycle` in the list (they were once missing from it).
#[test]
fn build_answers_only_with_its_listed_errors() {
    let err = Supervisor::builder()
        .task(idle("a").depends_on(["nope"]))
        .task(idle("b").depends_on(["b"]))
        .task(idle("c").depends_on(["d"]))
        .task(idle("d").depends_on(["c"]))
        .task(idle("line\nbreak"))
        .build()
        .unwrap_err();
    let unlisted: Vec<&Error> = err
        .problems()
        .iter()
        .filter(|problem| {
            !matches!(
                problem,
                Error::EmptyName { .. }
                    | Error::NameWithSlash { .. }
                    | Error::NameWithControl { .. }
                    | Error::DuplicateName { .. }
                    | Error::EmptyProgram { .. }
                    | Error::InvalidSetting { .. }
                    | Error::UnknownDependency { .. }
                    | Error::SelfDependency { .. }
                    | Error::DependencyCycle { .. }
                    | Error::AlreadyRunning { .. }
                    | Error::Io { .. }
            )
        })
        .collect();
    assert!(unlisted.is_empty(), "build() answered with errors its docs do not list: {unlisted:#?}");
}

/// `Error::EmptyName::kind`: "`\"task\"`, `\"daemon\"` or `\"group\"`."
#[test]
fn an_empty_group_name_says_group() {
    let err = Supervisor::builder().group(GroupSpec::new("")).build().unwrap_err();
    assert!(matches!(err, Error::EmptyName { kind: "group" }), "{err:?}");
}

/// `Error::NameWithSlash::name`: "The name, as a path (`\"g/a/b\"` for
/// `a/b` in the group `g`)."
#[test]
fn name_with_slash_holds_the_path() {
    let err = Supervisor::builder().group(GroupSpec::new("g").task(idle("a/b"))).build().unwrap_err();
    assert!(matches!(err, Error::NameWithSlash { ref name } if name == "g/a/b"), "{err:?}");
}

/// `Error::EmptyProgram::unit`: "The daemon's path (`\"storage/db\"` in the
/// group `storage`)." Its message suggests a spec under the daemon's own
/// name: it once suggested `DaemonSpec::new("g/d", ...)`, which `build()`
/// refuses.
#[test]
fn empty_program_holds_the_daemons_path_and_suggests_its_name() {
    let err = Supervisor::builder().group(GroupSpec::new("g").daemon(DaemonSpec::new("d", ""))).build().unwrap_err();
    assert!(matches!(err, Error::EmptyProgram { ref unit } if unit == "g/d"), "{err:?}");
    assert!(err.to_string().contains("DaemonSpec::new(\"d\", \"sleep\")"), "{err}");
}

/// `Error::UnknownUnit::known`: "The registered paths, comma-separated:
/// the first 20, then how many more."
#[tokio::test(start_paused = true)]
async fn unknown_unit_lists_the_first_twenty_registered_names() {
    let mut builder = Supervisor::builder();
    let names: Vec<String> = (0..25).map(|n| format!("unit-{n}")).collect();
    for name in &names {
        builder = builder.task(idle(name));
    }
    let handle = builder.build().unwrap().start();
    let err = within(DEADLINE, "restart", handle.restart("nope")).await.unwrap_err();
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    let Error::UnknownUnit { known, .. } = err else { panic!("{err:?}") };
    let expected = format!("{} and 5 more", names[..20].join(", "));
    assert_eq!(known, expected);
}

/// `Error::problems`: "Every problem this error stands for: the list of
/// [`Error::Problems`], or the error itself."
#[test]
fn problems_is_the_list_or_the_error_itself() {
    let one = Supervisor::builder().task(idle("a")).task(idle("a")).build().unwrap_err();
    assert!(matches!(one.problems(), [Error::DuplicateName { name }] if name == "a"), "{one:?}");
    let two = Supervisor::builder().task(idle("")).task(idle("x/y")).build().unwrap_err();
    assert!(matches!(two, Error::Problems(_)), "{two:?}");
    assert!(matches!(two.problems(), [Error::EmptyName { .. }, Error::NameWithSlash { .. }]), "{:?}", two.problems());
    assert!(two.to_string().starts_with("2 problems: 1) "), "{two}");
}

// ---------------------------------------------------------------------------
// UnitStatus fields

/// `UnitStatus::running`: "Whether a run is in progress (`Running` or
/// `Stopping`...)"; `uptime`: "How long the current run has lasted; `None`
/// when not running."
#[tokio::test(start_paused = true)]
async fn a_stopping_unit_is_running_with_an_uptime() {
    let handle = Supervisor::builder().task(slow_to_stop("s", Duration::from_secs(2))).build().unwrap().start();
    within(DEADLINE, "s ready", handle.wait_ready("s")).await.unwrap();
    let stopper = handle.clone();
    let stop = tokio::spawn(async move { stopper.stop_unit("s").await });
    let stopping = within(DEADLINE, "s stopping", handle.wait_state("s", UnitState::Stopping)).await.unwrap();
    assert!(stopping.running, "{stopping:#?}");
    assert!(stopping.uptime.is_some(), "{stopping:#?}");
    within(DEADLINE, "stop", stop).await.unwrap().unwrap();
    let stopped = handle.status("s").unwrap();
    assert!(!stopped.running && stopped.uptime.is_none(), "{stopped:#?}");
    assert!(stopped.last_start.is_some(), "`lastStart`: when the current or last run started: {stopped:#?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `UnitStatus::running` is false between runs: in `Backoff` no run is in
/// progress, and `uptime` is `None`.
#[tokio::test(start_paused = true)]
async fn a_unit_in_backoff_is_not_running() {
    let handle = Supervisor::builder().task(fails_first_run("f", HOUR)).build().unwrap().start();
    let status = within(DEADLINE, "f in backoff", handle.wait_state("f", UnitState::Backoff)).await.unwrap();
    assert!(!status.running && status.uptime.is_none(), "{status:#?}");
    assert_eq!(status.exit_code, Some(1), "`exitCode`: 1 for a task that returned Err: {status:#?}");
    assert_eq!(status.last_error.as_deref(), Some("first run fails"), "{status:#?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `UnitStatus::last_error`: "`None` once a run has succeeded, or ended on
/// a stop that was asked for (unless it panicked)": a run that returns
/// `Err` when asked to stop leaves no `last_error`; one that panics does.
#[tokio::test(start_paused = true)]
async fn last_error_after_a_stop_asked_for() {
    let handle = Supervisor::builder()
        .task(TaskSpec::new("err", |ctx: Context| async move {
            ctx.cancelled().await;
            Err::<(), _>("bye")
        }))
        .task(TaskSpec::new("panics", |ctx: Context| async move {
            ctx.cancelled().await;
            if !ctx.name().is_empty() {
                panic!("on the way out");
            }
        }))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "err ready", handle.wait_ready("err")).await.unwrap();
    within(DEADLINE, "panics ready", handle.wait_ready("panics")).await.unwrap();
    within(DEADLINE, "stop err", handle.stop_unit("err")).await.unwrap();
    within(DEADLINE, "stop panics", handle.stop_unit("panics")).await.unwrap();
    let err = handle.status("err").unwrap();
    assert_eq!(err.last_error, None, "{err:#?}");
    let panicked = handle.status("panics").unwrap();
    assert!(panicked.last_error.as_deref().is_some_and(|error| error.contains("on the way out")), "{panicked:#?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `UnitStatus::restart_count`: "Restarts its policy performed since the
/// unit was (re)started by hand"; `restarts_total`: "...including before a
/// manual restart or start; never decreases."
#[tokio::test(start_paused = true)]
async fn a_manual_restart_resets_restart_count_but_not_restarts_total() {
    let handle = Supervisor::builder().task(fails_first_run("f", Duration::ZERO)).build().unwrap().start();
    let before =
        within(DEADLINE, "f restarted", handle.wait_status("f", |status| status.restart_count == 1 && status.running))
            .await
            .unwrap();
    assert_eq!(before.restarts_total, 1, "{before:#?}");
    within(DEADLINE, "restart", handle.restart("f")).await.unwrap();
    let after = within(DEADLINE, "f running", handle.wait_state("f", UnitState::Running)).await.unwrap();
    assert_eq!(after.restart_count, 0, "{after:#?}");
    assert!(after.restarts_total >= before.restarts_total, "{after:#?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `ExitReason::exit_code` and `UnitStatus::exit_code`: "Exit code of the
/// last run: a process's code"; `last_error`: "how a process ended".
#[tokio::test]
async fn a_daemons_exit_code_is_kept() {
    let handle = Supervisor::builder()
        .daemon(DaemonSpec::new("d", "sh").args(["-c", "exit 3"]).restart(run_once()))
        .build()
        .unwrap()
        .start();
    let status = within(DEADLINE, "d exited", handle.wait_state("d", UnitState::Exited)).await.unwrap();
    assert_eq!(status.exit_code, Some(3), "{status:#?}");
    assert_eq!(status.signal, None, "{status:#?}");
    assert_eq!(status.last_error.as_deref(), Some("exited with code 3"), "{status:#?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

// ---------------------------------------------------------------------------
// Context

/// `Context::cancellation_token`: "cancelling it cancels it and its
/// clones, not the context".
#[tokio::test(start_paused = true)]
async fn cancelling_the_contexts_token_does_not_cancel_the_context() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = TaskSpec::new("w", move |ctx: Context| {
        let tx = tx.clone();
        async move {
            let token = ctx.cancellation_token();
            let clone = token.clone();
            token.cancel();
            tx.send((clone.is_cancelled(), ctx.is_cancelled())).unwrap();
            ctx.cancelled().await;
        }
    });
    let handle = Supervisor::builder().task(spec).build().unwrap().start();
    let (clone, context) = within(DEADLINE, "report", rx.recv()).await.unwrap();
    assert!(clone, "the token's clone is cancelled with it");
    assert!(!context, "the context is not cancelled");
    let status = handle.status("w").unwrap();
    assert_eq!(status.state, UnitState::Running, "{status:#?}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `Context::cancelled`: "A context kept past the end of its run ...
/// completes once that run has ended, however it ended". Runs that end by
/// themselves and are restarted at once, three in a row: each kept context
/// is cancelled as its run ends, while the runs after it go on. A run
/// restarted at once handed its token on to the next, and a helper that a
/// flapping task spawned with its context lived on through every run.
#[tokio::test(start_paused = true)]
async fn a_kept_context_of_a_run_that_ended_is_cancelled_though_the_next_runs_at_once() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = TaskSpec::new("w", move |ctx: Context| {
        let tx = tx.clone();
        async move {
            tx.send(ctx.clone()).unwrap();
            if ctx.restart_count() < 3 {
                return Err("ends by itself");
            }
            ctx.cancelled().await;
            Ok(())
        }
    })
    .restart(RestartPolicy::new().delay(Duration::ZERO));
    let handle = Supervisor::builder().task(spec).build().unwrap().start();
    let mut kept = Vec::new();
    for run in 0..4 {
        kept.push(within(DEADLINE, &format!("context of run {run}"), rx.recv()).await.unwrap());
    }
    within(DEADLINE, "fourth run", handle.wait_status("w", |status| status.restart_count == 3 && status.running))
        .await
        .unwrap();
    for (run, context) in kept[..3].iter().enumerate() {
        within(DEADLINE, &format!("run {run}'s context cancelled"), context.cancelled()).await;
    }
    assert!(!kept[3].is_cancelled(), "the run in progress goes on");
    within(DEADLINE, "stop", handle.stop_unit("w")).await.unwrap();
    within(DEADLINE, "the last context cancelled", kept[3].cancelled()).await;
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `Context::restart_count`: "Restarts its policy performed before this
/// run: 0 for the first run, and again after a restart or start by hand,
/// which resets the count." After a restart by its policy (told 1) and one
/// by hand, the third run is told 0.
#[tokio::test(start_paused = true)]
async fn restart_count_counts_the_policys_restarts_since_the_last_by_hand() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = TaskSpec::new("w", move |ctx: Context| {
        let tx = tx.clone();
        async move {
            tx.send(ctx.restart_count()).unwrap();
            if ctx.restart_count() == 0 {
                return Err("first run fails");
            }
            ctx.cancelled().await;
            Ok(())
        }
    })
    .restart(RestartPolicy::new().delay(Duration::ZERO));
    let handle = Supervisor::builder().task(spec).build().unwrap().start();
    assert_eq!(within(DEADLINE, "run 1", rx.recv()).await, Some(0));
    assert_eq!(within(DEADLINE, "run 2", rx.recv()).await, Some(1));
    within(DEADLINE, "restart", handle.restart("w")).await.unwrap();
    let third = within(DEADLINE, "run 3", rx.recv()).await.unwrap();
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert_eq!(third, 0, "the third run, after a restart by hand");
}

// ---------------------------------------------------------------------------
// More of the handle: remove's report, groups, dropping the handle

/// `SupervisorHandle::remove`: "Stops a unit gracefully, then forgets it:
/// its name is free again. Returns how its stop went": for a unit at rest,
/// `NotRunning` in the state it rested in; for one waiting out a restart
/// delay, `Graceful` in no time (`StopOutcome::Graceful`).
#[tokio::test(start_paused = true)]
async fn remove_reports_how_the_stop_went_and_frees_the_name() {
    let handle = Supervisor::builder()
        .task(TaskSpec::new("done", |_ctx: Context| async {}).restart(run_once()))
        .task(fails_first_run("f", HOUR))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "done", handle.wait_state("done", UnitState::Exited)).await.unwrap();
    within(DEADLINE, "f in backoff", handle.wait_state("f", UnitState::Backoff)).await.unwrap();
    let done = within(DEADLINE, "remove done", handle.remove("done")).await.unwrap();
    assert_eq!((done.outcome, done.state), (StopOutcome::NotRunning, UnitState::Exited), "{done:#?}");
    let f = within(DEADLINE, "remove f", handle.remove("f")).await.unwrap();
    assert_eq!((f.outcome, f.state, f.took), (StopOutcome::Graceful, UnitState::Stopped, Duration::ZERO), "{f:#?}");
    assert!(handle.unit_names().is_empty());
    within(DEADLINE, "add done again", handle.add(idle("done"))).await.unwrap();
    within(DEADLINE, "done ready", handle.wait_ready("done")).await.unwrap();
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert_eq!(report.units.len(), 1, "{report:#?}");
}

/// `SupervisorHandle::stop_unit`: "On a group, stops its units, the most
/// recently started first." and it stays `Stopped`.
#[tokio::test(start_paused = true)]
async fn stop_unit_on_a_group_stops_its_units_last_started_first() {
    let sup = Supervisor::builder()
        .group(GroupSpec::new("g").task(idle("a")).task(idle("b")).task(idle("c")))
        .build()
        .unwrap();
    let handle = sup.start();
    within(DEADLINE, "g ready", handle.wait_ready("g")).await.unwrap();
    let mut events = handle.subscribe();
    within(DEADLINE, "stop g", handle.stop_unit("g")).await.unwrap();
    let mut stopped = Vec::new();
    while let Ok(event) = events.try_recv() {
        if matches!(event.kind, EventKind::Stopped { .. }) {
            stopped.push(event.unit);
        }
    }
    assert_eq!(stopped, ["g/c", "g/b", "g/a", "g"]);
    for name in ["g", "g/a", "g/b", "g/c"] {
        assert_eq!(handle.status(name).unwrap().state, UnitState::Stopped, "{name}");
    }
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `SupervisorHandle::restart`: "On a group, stops its units and starts
/// them all again."
#[tokio::test(start_paused = true)]
async fn restart_of_a_group_runs_each_of_its_units_again() {
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let counting = TaskSpec::new("a", move |ctx: Context| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move { ctx.cancelled().await }
    });
    let handle =
        Supervisor::builder().group(GroupSpec::new("g").task(counting).task(idle("b"))).build().unwrap().start();
    within(DEADLINE, "g ready", handle.wait_ready("g")).await.unwrap();
    within(DEADLINE, "restart g", handle.restart("g")).await.unwrap();
    within(DEADLINE, "g ready again", handle.wait_ready("g")).await.unwrap();
    within(DEADLINE, "g/b running", handle.wait_state("g/b", UnitState::Running)).await.unwrap();
    within(DEADLINE, "g/a running", handle.wait_state("g/a", UnitState::Running)).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `Supervisor::start`: "Dropping every clone of the returned handle stops
/// all units in the background (gracefully, as far as the runtime lives)".
#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_stops_the_units_gracefully() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = TaskSpec::new("w", move |ctx: Context| {
        let tx = tx.clone();
        async move {
            ctx.cancelled().await;
            let _ = tx.send("cleaned up");
        }
    });
    let handle = Supervisor::builder().task(spec).build().unwrap().start();
    within(DEADLINE, "w ready", handle.wait_ready("w")).await.unwrap();
    let clone = handle.clone();
    drop(handle);
    assert!(rx.try_recv().is_err(), "a clone still holds the supervisor");
    drop(clone);
    assert_eq!(within(DEADLINE, "cleanup", rx.recv()).await, Some("cleaned up"));
}

/// `UnitStatus::kind`: "Task, process or group."
#[tokio::test(start_paused = true)]
async fn a_status_kind_is_task_process_or_group() {
    let handle = Supervisor::builder()
        .group(GroupSpec::new("g").task(idle("t")).daemon(DaemonSpec::new("d", "sleep").arg("60")))
        .build()
        .unwrap()
        .start();
    let kinds = ["g", "g/t", "g/d"].map(|name| handle.status(name).unwrap().kind);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert!(matches!(kinds, [UnitKind::Group, UnitKind::Task, UnitKind::Process]), "{kinds:?}");
}

/// `SupervisorHandle::wait_status`: "`done` is asked again whenever that
/// unit changes (or ... for a group, when a unit is added to it or removed
/// from it)": a wait on a group for its temporary units to be gone wakes
/// when the last one is forgotten, though the group's own status is the
/// same (its other unit keeps it running and ready).
#[tokio::test(start_paused = true)]
async fn a_wait_on_a_group_wakes_when_its_members_change() {
    let go = Arc::new(Notify::new());
    let temporary = |name: &str| {
        let go = go.clone();
        TaskSpec::new(name, move |_ctx: Context| {
            let go = go.clone();
            async move { go.notified().await }
        })
        .temporary()
        .restart(RestartPolicy::new().on(RestartOn::Never))
    };
    let group = GroupSpec::new("g").task(idle("keep")).task(temporary("t1")).task(temporary("t2"));
    let handle = Supervisor::builder().group(group).build().unwrap().start();
    within(DEADLINE, "t2 runs", handle.wait_ready("g/t2")).await.unwrap();
    let left = |handle: &SupervisorHandle| handle.unit_names().iter().filter(|name| name.starts_with("g/t")).count();
    let waiter = handle.clone();
    let gone = tokio::spawn(async move { waiter.wait_status("g", |_| left(&waiter) == 0).await });
    tokio::task::yield_now().await;
    go.notify_waiters();
    let status = within(DEADLINE, "the wait", gone).await.unwrap().unwrap();
    assert_eq!((status.name.as_str(), status.state, status.ready), ("g", UnitState::Running, true));
    assert_eq!(left(&handle), 0);
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

/// `Error::GroupNotRunning` said "start `g` first", wrong advice while the
/// group is only between two runs (its parent restarting it): it names the
/// states the group may be in, and both ways on.
#[tokio::test]
async fn group_not_running_names_what_the_group_may_be_and_both_ways_on() {
    let handle = Supervisor::builder().group(GroupSpec::new("g").task(idle("a"))).build().unwrap().start();
    within(DEADLINE, "g ready", handle.wait_ready("g")).await.unwrap();
    within(DEADLINE, "stop g", handle.stop_unit("g")).await.unwrap();
    let err = within(DEADLINE, "restart g/a", handle.restart("g/a")).await.unwrap_err();
    assert!(matches!(err, Error::GroupNotRunning { .. }), "{err:?}");
    let text = err.to_string();
    assert!(!text.contains("first") && text.contains("between two runs") && text.contains("or start it"), "{text}");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}
