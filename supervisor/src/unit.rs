//! One supervised unit: its mutable state, and the loop that runs it, waits,
//! asks the policy, and runs it again.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use futures_util::future::Either;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::observe::event::{EventKind, ExitReason};
use crate::run::process::{ProcessBody, ProcessRun};
use crate::spec::policy::{Decision, RestartPolicy, RestartTracker};
use crate::spec::task::{TaskBody, TaskRun};
use crate::supervisor::Shared;
use crate::{Context, DaemonSpec, Signal, TaskSpec, UnitKind, UnitState, UnitStatus};

/// A registered unit. Lives as long as the supervisor.
pub(crate) struct Unit {
    pub(crate) name: Arc<str>,
    body: Body,
    policy: RestartPolicy,
    stop_timeout: Duration,
    state: Mutex<Runtime>,
}

enum Body {
    Task(TaskBody),
    Process(Box<ProcessBody>),
}

/// One run, started.
enum Run {
    Task(TaskRun),
    Process(Box<ProcessRun>),
}

/// How an activation of the unit loop ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ending {
    /// The state the loop left the unit in.
    pub(crate) state: UnitState,
    /// Whether a stop had to abort or kill the run.
    pub(crate) forced: bool,
    /// How long a stop took, from when it was asked (zero for a loop that
    /// ended by itself).
    pub(crate) took: Duration,
}

/// The unit's mutable state, behind a lock that is never held across an
/// `.await`.
struct Runtime {
    state: UnitState,
    pid: Option<NonZeroU32>,
    /// Restarts performed in this activation, and what the policy needs
    /// to know of them.
    tracker: RestartTracker,
    /// Restarts performed in every activation; never reset.
    restarts_total: u64,
    last_start: Option<SystemTime>,
    run_started: Option<Instant>,
    last_exit: Option<LastExit>,
    /// Boxed rather than a `String`: a word less in every unit.
    last_error: Option<Box<str>>,
    activation: Option<Activation>,
    /// Orders units for shutdown: the most recently started stops first.
    start_seq: u64,
    /// When the current stop was asked for.
    stop_asked: Option<Instant>,
    /// Whether a control call holds the unit (see `control`).
    controlled: bool,
}

impl Runtime {
    fn record_exit(&mut self, reason: &ExitReason) {
        self.pid = None;
        self.last_exit = LastExit::of(reason);
        if let Some(message) = reason.error_message() {
            self.last_error = Some(message.into_boxed_str());
        }
    }

    /// Like `record_exit`, for a run that a requested stop ended: a process
    /// killed by the stop signal (or by `SIGKILL` after the timeout) keeps
    /// that signal in its status, but it is not a failure.
    fn record_stop(&mut self, reason: Option<&ExitReason>) {
        match reason {
            Some(reason) if reason.signal().is_none() => self.record_exit(reason),
            Some(reason) => {
                self.pid = None;
                self.last_exit = LastExit::of(reason);
            }
            None => self.pid = None,
        }
    }
}

/// How the last run ended, as the status shows it.
#[derive(Debug, Clone, Copy)]
enum LastExit {
    Code(i32),
    Signal(i32),
}

impl LastExit {
    fn of(reason: &ExitReason) -> Option<Self> {
        match (reason.exit_code(), reason.signal()) {
            (Some(code), _) => Some(LastExit::Code(code)),
            (None, Some(signal)) => Some(LastExit::Signal(signal)),
            (None, None) => None,
        }
    }

    fn code(self) -> Option<i32> {
        match self {
            LastExit::Code(code) => Some(code),
            LastExit::Signal(_) => None,
        }
    }

    fn signal(self) -> Option<i32> {
        match self {
            LastExit::Signal(signal) => Some(signal),
            LastExit::Code(_) => None,
        }
    }
}

/// A stop asked of a unit: the state it was in, its loop if it had one, and
/// when (a task's grace period, and the stop's `took`, count from then).
pub(crate) struct StopAsked {
    pub(crate) state: UnitState,
    pub(crate) activation: Option<Activation>,
    pub(crate) at: Instant,
}

/// A running unit loop: its stop token and task.
pub(crate) struct Activation {
    pub(crate) stop: CancellationToken,
    pub(crate) task: JoinHandle<Ending>,
}

impl Unit {
    pub(crate) fn task(mut spec: TaskSpec) -> Self {
        let (name, policy, stop_timeout) = (std::mem::take(&mut spec.name), spec.policy.clone(), spec.stop_timeout);
        Unit::new(name, Body::Task(spec.into_body()), policy, stop_timeout)
    }

    pub(crate) fn daemon(spec: DaemonSpec) -> Self {
        let (policy, stop_timeout) = (spec.policy.clone(), spec.stop_timeout);
        Unit::new(spec.name.clone(), Body::Process(Box::new(ProcessBody::new(spec))), policy, stop_timeout)
    }

    fn new(name: String, body: Body, policy: RestartPolicy, stop_timeout: Duration) -> Self {
        Unit {
            name: name.into(),
            body,
            policy,
            stop_timeout,
            state: Mutex::new(Runtime {
                state: UnitState::Stopped,
                pid: None,
                tracker: RestartTracker::new(),
                restarts_total: 0,
                last_start: None,
                run_started: None,
                last_exit: None,
                last_error: None,
                activation: None,
                start_seq: 0,
                stop_asked: None,
                controlled: false,
            }),
        }
    }

    pub(crate) fn kind(&self) -> UnitKind {
        match self.body {
            Body::Task(_) => UnitKind::Task,
            Body::Process(_) => UnitKind::Process,
        }
    }

    fn runtime(&self) -> MutexGuard<'_, Runtime> {
        // No code panics while holding this lock; recover rather than spread
        // a poison that cannot mean a broken invariant.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn status(&self) -> UnitStatus {
        let runtime = self.runtime();
        let running = matches!(runtime.state, UnitState::Running | UnitState::Stopping);
        UnitStatus {
            name: self.name.to_string(),
            kind: self.kind(),
            state: runtime.state,
            running,
            pid: runtime.pid.map(NonZeroU32::get),
            restart_count: runtime.tracker.restarts(),
            restarts_total: runtime.restarts_total,
            last_start: runtime.last_start,
            uptime: runtime.run_started.filter(|_| running).map(|at| at.elapsed()),
            exit_code: runtime.last_exit.and_then(LastExit::code),
            signal: runtime.last_exit.and_then(LastExit::signal),
            last_error: runtime.last_error.as_deref().map(String::from),
        }
    }

    pub(crate) fn state(&self) -> UnitState {
        self.runtime().state
    }

    pub(crate) fn start_seq(&self) -> u64 {
        self.runtime().start_seq
    }

    pub(crate) fn tail(&self, lines: usize) -> Vec<String> {
        match &self.body {
            Body::Task(_) => Vec::new(),
            Body::Process(process) => process.tail(lines),
        }
    }

    /// Prepares a new activation, before its loop is spawned (so that the
    /// loop's own state changes come after these). The caller holds `control`.
    pub(crate) fn begin_activation(&self, start_seq: u64) {
        let mut runtime = self.runtime();
        runtime.state = UnitState::Starting;
        runtime.tracker = RestartTracker::new();
        runtime.stop_asked = None;
        runtime.start_seq = start_seq;
    }

    /// Takes the control flag if it is free.
    pub(crate) fn try_take_control(&self) -> bool {
        let mut runtime = self.runtime();
        !std::mem::replace(&mut runtime.controlled, true)
    }

    pub(crate) fn release_control(&self) {
        self.runtime().controlled = false;
    }

    /// Keeps the spawned loop of an activation. The caller holds `control`.
    pub(crate) fn set_activation(&self, activation: Activation) {
        self.runtime().activation = Some(activation);
    }

    /// Takes the current activation, if any, to stop it. The caller holds
    /// `control`.
    pub(crate) fn take_activation(&self) -> StopAsked {
        let mut runtime = self.runtime();
        let state = runtime.state;
        if state == UnitState::Running || state == UnitState::Backoff {
            runtime.state = UnitState::Stopping;
        }
        let at = Instant::now();
        let activation = runtime.activation.take();
        if activation.is_some() {
            runtime.stop_asked = Some(at);
        }
        StopAsked { state, activation, at }
    }

    /// Whether a loop is running for this unit. The caller holds `control`.
    pub(crate) fn is_active(&self) -> bool {
        self.runtime().activation.as_ref().is_some_and(|activation| !activation.task.is_finished())
    }

    fn set_state(&self, state: UnitState) {
        self.runtime().state = state;
    }

    /// Marks a run starting; returns the restarts performed before it.
    fn mark_starting(&self) -> u32 {
        let mut runtime = self.runtime();
        runtime.state = UnitState::Starting;
        runtime.tracker.restarts()
    }

    fn mark_running(&self, pid: Option<u32>) {
        let mut runtime = self.runtime();
        runtime.state = UnitState::Running;
        runtime.pid = pid.and_then(NonZeroU32::new);
        runtime.last_start = Some(SystemTime::now());
        runtime.run_started = Some(Instant::now());
    }

    fn record_restart(&self) {
        let mut runtime = self.runtime();
        runtime.tracker.record_restart(&self.policy, Instant::now());
        runtime.restarts_total = runtime.restarts_total.saturating_add(1);
    }

    /// How long the current run has been running.
    fn ran_for(&self) -> Duration {
        self.runtime().run_started.map_or(Duration::ZERO, |started| started.elapsed())
    }

    fn record_exit(&self, reason: &ExitReason) {
        self.runtime().record_exit(reason);
    }

    fn start_run(&self, ctx: Context) -> Result<Run, ExitReason> {
        match &self.body {
            Body::Task(task) => task.start(ctx).map(Run::Task),
            Body::Process(process) => process.start(&self.name).map(|run| Run::Process(Box::new(run))),
        }
    }

    /// The grace period of a stop.
    pub(crate) fn stop_timeout(&self) -> Duration {
        self.stop_timeout
    }

    fn stop_signal(&self) -> Signal {
        match &self.body {
            Body::Task(_) => Signal::TERM,
            Body::Process(process) => process.spec().stop_signal,
        }
    }
}

impl Run {
    fn pid(&self) -> Option<u32> {
        match self {
            Run::Task(_) => None,
            Run::Process(process) => process.pid(),
        }
    }

    /// Waits for the run to end. A task's run is stopped from outside (its
    /// context is cancelled, then, after its grace period, the unit's task
    /// is aborted: see `shutdown::stop_locked`), so waiting for it is all the
    /// loop does, and an idle task unit carries no stop waiter. A process
    /// must be signalled, so its wait also answers `stop`.
    fn wait<'a>(
        &'a mut self,
        shared: &'a Shared,
        unit: &'a Unit,
        stop: &'a CancellationToken,
    ) -> impl Future<Output = RunEnd> + Send + 'a {
        match self {
            Run::Task(task) => Either::Left(task.wait().map(RunEnd::Exited)),
            // Boxed so that a task unit's loop does not carry room for a
            // process's wait inline.
            Run::Process(process) => Either::Right(Box::pin(wait_process(process, shared, unit, stop))),
        }
    }
}

/// Waits for a process to exit or, when `stop` fires first, sends the stop
/// signal to its group, kills the group after the grace period, and records
/// the stop.
async fn wait_process(process: &mut ProcessRun, shared: &Shared, unit: &Unit, stop: &CancellationToken) -> RunEnd {
    let ended = tokio::select! {
        biased;
        reason = process.wait() => Some(reason),
        () = stop.cancelled() => None,
    };
    if let Some(reason) = ended {
        return RunEnd::Exited(reason);
    }
    unit.set_state(UnitState::Stopping);
    let signal = unit.stop_signal().to_rustix();
    let (reason, forced) = process.stop(signal, unit.stop_timeout, &shared.kill_now).await;
    RunEnd::Stopped(finish_stopped(shared, unit, reason.as_ref(), forced))
}

/// How a run ended.
enum RunEnd {
    /// By itself (or, if the stop token is cancelled, because it was asked to).
    Exited(ExitReason),
    /// A process stopped on request, gracefully or killed after its timeout.
    Stopped(Ending),
}

/// Spawns the loop of unit `index` on the current runtime.
///
/// The loop is not instrumented with the unit's span (that would cost every
/// unit's task a cache line): the supervisor's own events enter the span as
/// they are emitted.
pub(crate) fn spawn_loop(shared: &Arc<Shared>, index: usize, stop: CancellationToken) -> JoinHandle<Ending> {
    tokio::spawn(run_loop(shared.clone(), index, stop))
}

/// Runs the unit until the policy lets it rest or `stop` is cancelled.
///
/// Every unit keeps this loop's task alive, so its future is kept small:
/// each await is a call of its own, and what only a rare path needs is boxed.
async fn run_loop(shared: Arc<Shared>, index: usize, stop: CancellationToken) -> Ending {
    loop {
        if stop.is_cancelled() {
            return finish_stopped(&shared, &shared.units[index], None, false);
        }
        let delay = match run_once(&shared, index, &stop).await {
            Ok(delay) => delay,
            Err(ending) => return ending,
        };
        if !wait_restart_delay(delay, &stop).await {
            return finish_stopped(&shared, &shared.units[index], None, false);
        }
        shared.units[index].record_restart();
    }
}

/// Starts a run, waits for it to end and asks the policy what follows: a
/// restart after the returned delay, or the unit's ending (at rest, or
/// stopped on request).
async fn run_once(shared: &Shared, index: usize, stop: &CancellationToken) -> Result<Duration, Ending> {
    let unit = &shared.units[index];
    let restarts = unit.mark_starting();
    let ctx = Context::new(unit.name.clone(), restarts, stop.clone());
    let mut run = match unit.start_run(ctx) {
        Ok(run) => run,
        Err(reason) => return decide(shared, unit, reason, Duration::ZERO),
    };
    unit.mark_running(run.pid());
    shared.emit(unit, EventKind::Started { restart_count: restarts, pid: run.pid() });
    // Each arm returns: a value carried past the await would sit in every
    // idle unit's future.
    match run.wait(shared, unit, stop).await {
        RunEnd::Exited(reason) if !stop.is_cancelled() => decide(shared, unit, reason, unit.ran_for()),
        // It ended because it was asked to: a stop, not an exit.
        RunEnd::Exited(reason) => Err(finish_stopped(shared, unit, Some(&reason), false)),
        RunEnd::Stopped(ending) => Err(ending),
    }
}

/// Records how a run ended and asks the policy what follows: a restart after
/// the returned delay, or rest (`Exited`, `Failed`).
fn decide(shared: &Shared, unit: &Unit, reason: ExitReason, ran_for: Duration) -> Result<Duration, Ending> {
    unit.record_exit(&reason);
    let succeeded = reason.is_success();
    report_exit(shared, unit, reason);
    let decision = unit.runtime().tracker.decide(&unit.policy, succeeded, ran_for, Instant::now(), fastrand::f64());
    match decision {
        Decision::Restart { attempt, delay } => {
            unit.set_state(UnitState::Backoff);
            shared.emit(unit, EventKind::Restarting { attempt, delay });
            Ok(delay)
        }
        Decision::Exit => {
            unit.set_state(UnitState::Exited);
            shared.emit(unit, EventKind::Finished);
            Err(Ending { state: UnitState::Exited, forced: false, took: Duration::ZERO })
        }
        Decision::GiveUp(reason) => {
            unit.set_state(UnitState::Failed);
            shared.emit(unit, EventKind::GaveUp { reason });
            Err(Ending { state: UnitState::Failed, forced: false, took: Duration::ZERO })
        }
    }
}

/// Waits out a restart delay; `false` if a stop came first.
async fn wait_restart_delay(delay: Duration, stop: &CancellationToken) -> bool {
    if delay.is_zero() {
        // No timer for a zero delay, but stay a good neighbour in a crash loop.
        tokio::task::consume_budget().await;
        return !stop.is_cancelled();
    }
    // Boxed: a timer and a stop waiter are large, and only a unit waiting out
    // a delay needs them.
    Box::pin(wait_delay(delay, stop)).await
}

fn report_exit(shared: &Shared, unit: &Unit, reason: ExitReason) {
    let kind = match reason {
        ExitReason::Panic(message) => EventKind::Panicked { message },
        reason => EventKind::Exited { reason },
    };
    shared.emit(unit, kind);
}

/// Waits out a restart delay; `false` if a stop came first.
async fn wait_delay(delay: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        biased;
        () = stop.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

/// Marks a task unit whose loop was aborted after its grace period.
pub(crate) fn mark_aborted(shared: &Shared, unit: &Unit) -> Ending {
    finish_stopped(shared, unit, None, true)
}

/// Records a stop on request that ended a run with `reason` (`None`: no run,
/// or one aborted), and tells of it.
fn finish_stopped(shared: &Shared, unit: &Unit, reason: Option<&ExitReason>, forced: bool) -> Ending {
    let took = {
        let mut runtime = unit.runtime();
        runtime.record_stop(reason);
        runtime.state = UnitState::Stopped;
        runtime.stop_asked.take().map_or(Duration::ZERO, |asked| asked.elapsed())
    };
    shared.emit(unit, EventKind::Stopped { forced, took });
    Ending { state: UnitState::Stopped, forced, took }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<F, Fut>(_: F) -> usize
    where
        F: Fn(Arc<Shared>, usize, CancellationToken) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// Every unit keeps its loop's task alive. A tokio task is the future
    /// plus about 104 bytes, rounded up to 128 (its alignment): within 152
    /// bytes the task takes 256, past that each unit costs 128 bytes more
    /// (see `benches/tasks.rs`). Box whatever state only a rare path needs.
    #[test]
    fn an_idle_unit_loop_fits_a_small_task() {
        let size = future_size(run_loop);
        assert!(size <= 152, "the unit loop's future grew to {size} bytes");
    }
}
