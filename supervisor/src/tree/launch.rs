//! Starting one run of a task or a process in a tokio task of its own,
//! which reports to the group's owner how it ended, and, for a unit that
//! is watched, whether it is ready and whether it is still alive: readiness
//! probes, `ctx.ready()`, `READY=1`, an output line; liveness probes; the
//! watchdog (`ctx.heartbeat()`, `WATCHDOG=1`).

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::task::Poll;
use std::time::Duration;

use futures_util::FutureExt as _;
use tokio::task::{JoinHandle, coop};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::context::SignsOfLife;
use crate::panics::{log_contained, panic_message};
use crate::run::io_driver;
use crate::run::notify::{Notification, NotifySocket};
use crate::run::output::LineWatch;
use crate::run::probe;
use crate::run::process::{GroupSignaller, ProcessBody, ProcessRun};
use crate::run::task::TaskRun;
use crate::run::watchdog::Watchdog;
use crate::spec::probe::Watching;
use crate::tree::clock;
use crate::tree::unit::{Body, Msg, NextRun, OwnerLink, Reporter, RunEnd, RunHandle, Unit};
use crate::{Context, ExitReason, Probe, Readiness, Signal};

/// Notifications read at once from a process's socket, without waiting:
/// once its leader has exited, or its watchdog's deadline has come.
const QUEUED_AT_ONCE: usize = 64;

/// Notifications read at most from a process's socket once its group is
/// gone.
const LEFT_AT_EXIT: usize = 4096;

/// A run, started.
pub(crate) struct Launched {
    pub(crate) handle: RunHandle,
    pub(crate) pid: Option<u32>,
    /// Ready as soon as it runs.
    pub(crate) ready: bool,
    /// The run, to go on in the free task it was given.
    pub(crate) next: Option<NextRun>,
}

/// Starts a run of a task or process `unit`; `Err` when a process cannot
/// be spawned.
///
/// A task's `f` is called in the run's own tokio task, not here: the future
/// it makes is then made and dropped on one thread (freeing memory that
/// another thread allocated takes that thread's allocator lock, a contended
/// one while the owner stops thousands of runs), and a group of 10k units
/// makes them on every worker, not on its owner's alone. A panic in `f` is
/// a run that panicked at once. The future stays boxed for that reason too:
/// held inline in the run's task, it saved an allocation per run, but the
/// owner's loop then made and filled every larger task alone, and a start
/// of 10k took 15 % longer.
///
/// `free_task` is the tokio task of the unit's previous run, if that run
/// ended in the current turn: a task run with nothing watching it from
/// outside goes on in it, as [`Launched::next`], instead of a task of its
/// own (a restart then spawns nothing).
pub(crate) fn start(
    unit: &Arc<Unit>,
    epoch: u32,
    restarts: u32,
    owner: &Weak<dyn OwnerLink>,
    kill_now: &CancellationToken,
    free_task: Option<JoinHandle<()>>,
) -> Result<Launched, ExitReason> {
    let stop = CancellationToken::new();
    let watching = unit.settings.watching.as_deref();
    let ready = watching.is_none_or(|watching| matches!(watching.readiness, Readiness::Started));
    // Only a watched unit's run has anything to tell beyond how it ended.
    let tell = watching.map(|_| Arc::new(Tell::new(owner.clone(), unit.clone(), epoch)));
    // Made once the run has started: a reporter dropped reports an abort.
    let reporter = || Reporter::new(owner.clone(), unit.clone(), epoch);
    match &unit.body {
        Body::Task(_) => {
            let signs = tell.clone().map(|tell| tell as Arc<dyn SignsOfLife>);
            let ctx = Context::new(unit.path.clone(), restarts, stop.clone(), signs);
            let reporter = reporter();
            let join = match watching.zip(tell.as_ref()).and_then(|(watching, tell)| Watch::of(watching, tell)) {
                None => match free_task {
                    Some(abort) => {
                        return Ok(Launched {
                            handle: RunHandle { stop, abort: Some(abort), signaller: None },
                            pid: None,
                            ready,
                            next: Some(NextRun { ctx, reporter }),
                        });
                    }
                    None => tokio::spawn(TaskRuns::new(ctx, reporter)),
                },
                Some(watch) => {
                    let stopping = Stopping {
                        stop: stop.clone(),
                        kill_now: kill_now.clone(),
                        signal: Signal::TERM,
                        timeout: unit.settings.stop_timeout,
                    };
                    tokio::spawn(run_watched_task(ctx, watch, stopping, reporter))
                }
            };
            Ok(Launched {
                handle: RunHandle { stop, abort: Some(join), signaller: None },
                pid: None,
                ready,
                next: None,
            })
        }
        Body::Process(process) => {
            let stopping = Stopping {
                stop: stop.clone(),
                kill_now: kill_now.clone(),
                signal: process.spec().parts.stop_signal,
                timeout: unit.settings.stop_timeout,
            };
            let (pid, signaller) = start_process(unit, process, owner, stopping, tell.as_ref(), reporter)?;
            Ok(Launched { handle: RunHandle { stop, abort: None, signaller: Some(signaller) }, pid, ready, next: None })
        }
        Body::Group(_) => unreachable!("a group's run is started by its parent's owner"),
    }
}

/// Spawns a run of the process `unit` and the task that watches it and
/// reports how it ended; its pid and how to signal its group.
fn start_process(
    unit: &Arc<Unit>,
    process: &ProcessBody,
    owner: &Weak<dyn OwnerLink>,
    stopping: Stopping,
    tell: Option<&Arc<Tell>>,
    reporter: impl FnOnce() -> Reporter,
) -> Result<(Option<u32>, GroupSignaller), ExitReason> {
    if !io_driver::available() {
        let program = process.spec().parts.program.to_string_lossy();
        return Err(ExitReason::SpawnFailed(format!("cannot run `{program}`: {}", io_driver::MISSING)));
    }
    let watching = unit.settings.watching.as_deref();
    let notified = watching
        .is_some_and(|watching| matches!(watching.readiness, Readiness::Notified) || watching.watchdog.is_some());
    let socket = if notified {
        Some(NotifySocket::bind().map_err(|error| {
            ExitReason::SpawnFailed(format!("cannot make the notify socket for `{}`: {error}", unit.path))
        })?)
    } else {
        None
    };
    let env = match &socket {
        Some(socket) => socket.env(watching.and_then(|watching| watching.watchdog)),
        // Not the supervisor's own NOTIFY_SOCKET, if it runs under systemd.
        None => NotifySocket::unset_env(),
    };
    let line = match watching.map(|watching| &watching.readiness) {
        Some(Readiness::OutputLine(text)) => Some(Arc::new(LineWatch::new(text))),
        _ => None,
    };
    let mut run = process.start_with_env(&unit.path, &env, line.clone())?;
    let (owner, reaped) = (owner.clone(), unit.clone());
    run.when_reaped(move || {
        if let Some(owner) = owner.upgrade() {
            owner.changed_outside_turns(&reaped);
        }
    });
    let (pid, signaller) = (run.pid(), run.signaller());
    // Boxed: a run's future is a few KiB, which its task would otherwise
    // copy as it is spawned and again as it ends, within each stop.
    match (watching, tell) {
        (Some(watching), Some(tell)) => {
            let watch = Watch::of(watching, tell).unwrap_or_else(|| Watch::bare(tell));
            let signs = ProcessSigns { socket, line, watchdog: watching.watchdog };
            tokio::spawn(Box::pin(run_watched_process(run, watch, signs, stopping, reporter())));
        }
        _ => {
            tokio::spawn(Box::pin(run_process(run, stopping, reporter())));
        }
    }
    Ok((pid, signaller))
}

/// Tells the group's owner what a run says of itself.
struct Tell {
    owner: Weak<dyn OwnerLink>,
    unit: Arc<Unit>,
    epoch: u32,
    told_ready: AtomicBool,
    /// Why the run stops itself, once found unhealthy or hung: what it or
    /// its probe says of its readiness no longer counts.
    condemned: OnceLock<String>,
    /// When the run started, and its last heartbeat since, in microseconds
    /// (rounded up): nanoseconds would stop at 584 years, which a paused
    /// clock reaches, and a run that beat on was judged hung there.
    started: Instant,
    beat: AtomicU64,
}

impl Tell {
    fn new(owner: Weak<dyn OwnerLink>, unit: Arc<Unit>, epoch: u32) -> Self {
        Tell {
            owner,
            unit,
            epoch,
            told_ready: AtomicBool::new(false),
            condemned: OnceLock::new(),
            started: Instant::now(),
            beat: AtomicU64::new(0),
        }
    }

    fn readiness(&self, ready: bool, why: Option<String>) {
        if self.condemned.get().is_some() {
            return;
        }
        // Units waiting for this one start in a turn taken here, without a
        // wake of the owner's task on the way (a chain of dependent units
        // starts 5 to 10 % sooner). Otherwise the message is queued: from
        // 10k units at once (a gated start), reports batched by the owner's
        // task measured faster than turns contended for from both workers.
        self.tell_readiness(ready, why, self.unit.awaited.load(Ordering::Relaxed));
        // Found failing on another thread meanwhile: whichever word reached
        // the owner first, the last one says it is not ready.
        if ready && let Some(why) = self.condemned.get() {
            self.tell_readiness(false, Some(why.clone()), true);
        }
    }

    /// The run is found unhealthy or hung and stops itself: it is not
    /// ready from now on, whatever it or its readiness probe says later,
    /// so that nothing starts on it and the probes say so during its grace
    /// period. Told in a turn taken here when the owner is idle, so that
    /// it holds before the stop signal goes out.
    fn failing(&self, reason: &ExitReason) {
        // The reason of a run stopped for it begins "stopped: ".
        let reason = reason.to_string();
        let why = format!("being stopped: {}", reason.strip_prefix("stopped: ").unwrap_or(&reason));
        let _ = self.condemned.set(why.clone());
        self.tell_readiness(false, Some(why), true);
    }

    /// Tells the owner whether the run is ready: in a turn taken here if
    /// `in_turn` and the owner is idle, by message otherwise.
    fn tell_readiness(&self, ready: bool, why: Option<String>, in_turn: bool) {
        self.told_ready.store(ready, Ordering::Release);
        // `None` only once the owner has gone, with its runtime.
        let Some(owner) = self.owner.upgrade() else { return };
        let msg = Msg::Ready { unit: self.unit.clone(), epoch: self.epoch, ready, why };
        let msg = if in_turn { owner.try_turn_for_caller(msg).err() } else { Some(msg) };
        if let Some(msg) = msg {
            owner.send(msg);
        }
    }

    fn status_text(&self, text: String) {
        if let Some(owner) = self.owner.upgrade() {
            owner.send(Msg::StatusText { unit: self.unit.clone(), epoch: self.epoch, text });
        }
    }

    fn last_beat(&self) -> Instant {
        self.started + Duration::from_micros(self.beat.load(Ordering::Acquire))
    }

    /// Whether the run's own word (`ctx.ready()`, `READY=1`, `RELOADING=1`)
    /// sets its readiness: only under `Readiness::Notified`. Otherwise a
    /// probe or an output line decides it, and a daemon that has a notify
    /// socket for its watchdog must neither stand in for them nor undo
    /// what they found.
    fn readiness_is_notified(&self) -> bool {
        self.unit.settings.watching.as_deref().is_some_and(|watching| matches!(watching.readiness, Readiness::Notified))
    }

    /// `READY=1` or `ctx.ready()`: ready, unless it already is.
    fn notified_ready(&self) {
        if self.readiness_is_notified() && !self.told_ready.swap(true, Ordering::AcqRel) {
            self.readiness(true, None);
        }
    }

    /// `RELOADING=1`: not ready until the next `READY=1`.
    fn notified_reloading(&self) {
        if self.readiness_is_notified() && self.told_ready.swap(false, Ordering::AcqRel) {
            self.readiness(false, Some("reloading (RELOADING=1)".to_owned()));
        }
    }
}

impl SignsOfLife for Tell {
    fn ready(&self) {
        self.notified_ready();
    }

    fn heartbeat(&self) {
        let since = u64::try_from(self.started.elapsed().as_nanos().div_ceil(1000)).unwrap_or(u64::MAX);
        self.beat.fetch_max(since, Ordering::AcqRel);
    }
}

/// What watches a run: its readiness probe, its liveness probe, its
/// watchdog (a task's; a process's comes by its notify socket).
struct Watch {
    tell: Arc<Tell>,
    readiness: Option<Probe>,
    liveness: Option<Probe>,
    watchdog: Option<Duration>,
}

impl Watch {
    /// `None` when nothing is to be watched from the outside.
    fn of(watching: &Watching, tell: &Arc<Tell>) -> Option<Watch> {
        let readiness = match &watching.readiness {
            Readiness::Probe(probe) => Some(probe.clone()),
            _ => None,
        };
        let watch =
            Watch { tell: tell.clone(), readiness, liveness: watching.liveness.clone(), watchdog: watching.watchdog };
        (watch.readiness.is_some() || watch.liveness.is_some() || watch.watchdog.is_some()).then_some(watch)
    }

    fn bare(tell: &Arc<Tell>) -> Watch {
        Watch { tell: tell.clone(), readiness: None, liveness: None, watchdog: None }
    }

    /// Runs the readiness probe, telling the owner of each change; for ever.
    async fn readiness(&self) {
        match &self.readiness {
            Some(probe) => probe::readiness(probe, |ready, why| self.tell.readiness(ready, why)).await,
            None => std::future::pending().await,
        }
    }

    /// Completes when the run is found unhealthy.
    async fn liveness(&self) -> ExitReason {
        match &self.liveness {
            Some(probe) => ExitReason::Unhealthy(probe::liveness(probe).await),
            None => std::future::pending().await,
        }
    }

    /// Completes when a task has given no heartbeat for a whole period.
    async fn task_watchdog(&self) -> ExitReason {
        let Some(period) = self.watchdog else { return std::future::pending().await };
        let mut watchdog = Watchdog::started_at(period, self.tell.started);
        loop {
            sleep_until(watchdog.deadline()).await;
            // A heartbeat due at the deadline itself, woken with it, comes
            // first: only a run that beats less often than the period is hung.
            tokio::task::yield_now().await;
            watchdog.beat(self.tell.last_beat());
            if watchdog.is_hung(Instant::now()) {
                return ExitReason::Hung;
            }
        }
    }
}

/// Makes a task's run with `ctx`; `Err` if its `f` panicked.
fn make_run(ctx: Context, reporter: &Reporter) -> Result<TaskRun, ExitReason> {
    let unit = reporter.unit();
    let Body::Task(task) = &unit.body else { unreachable!("a task run is started for a task") };
    task.start(ctx, unit.span())
}

/// A task's runs, one after another in one tokio task: the first, then
/// each next run that a run's report starts. An abort drops the run here,
/// and its reporter then says so.
///
/// Written out rather than as an `async fn`, whose state would keep the
/// context and the reporter beside the run: this one keeps one or the
/// other, and every running task holds one.
struct TaskRuns {
    step: Step,
}

enum Step {
    /// To make the run, with its context.
    Make(NextRun),
    /// The run, polled until it ends.
    Wait(InFlight),
    Done,
}

/// A task's run in progress, with its reporter. Dropped before the run
/// ended (aborted after its grace period), it drops the user's future
/// first, then reports the abort, or the panic of that future's `Drop` as
/// how the run ended: a bug, kept as the unit's last error like a panic
/// while the run answered its cancellation.
struct InFlight {
    run: TaskRun,
    /// `None` once the end is reported.
    reporter: Option<Reporter>,
}

impl InFlight {
    fn new(run: TaskRun, reporter: Reporter) -> Self {
        InFlight { run, reporter: Some(reporter) }
    }

    /// Drops the run, then hands its reporter out to report how it ended:
    /// what the run held (a port, a file lock) is free for the next run,
    /// which may start within the report.
    fn end(mut self) -> Reporter {
        self.run.drop_future();
        self.reporter.take().unwrap_or_else(|| unreachable!("the end is reported once"))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let Some(reporter) = self.reporter.take() else { return };
        let end = match self.run.drop_future() {
            Some(message) => RunEnd::Exited(ExitReason::Panic(message)),
            None => RunEnd::Aborted,
        };
        reporter.report_dropped(end);
    }
}

impl TaskRuns {
    fn new(ctx: Context, reporter: Reporter) -> Self {
        TaskRuns { step: Step::Make(NextRun { ctx, reporter }) }
    }
}

impl Future for TaskRuns {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        loop {
            let ended = match std::mem::replace(&mut self.step, Step::Done) {
                Step::Make(next) => {
                    // A unit that fails at once, restarted with no delay,
                    // must still let the worker's other tasks run.
                    let Poll::Ready(budget) = coop::poll_proceed(cx) else {
                        self.step = Step::Make(next);
                        return Poll::Pending;
                    };
                    budget.made_progress();
                    let NextRun { ctx, reporter } = next;
                    match make_run(ctx, &reporter) {
                        Ok(run) => {
                            self.step = Step::Wait(InFlight::new(run, reporter));
                            continue;
                        }
                        Err(reason) => (reason, reporter),
                    }
                }
                Step::Wait(mut in_flight) => match in_flight.run.poll_wait(cx) {
                    Poll::Ready(reason) => (reason, in_flight.end()),
                    Poll::Pending => {
                        self.step = Step::Wait(in_flight);
                        return Poll::Pending;
                    }
                },
                Step::Done => return Poll::Ready(()),
            };
            // The run is dropped by now (see `InFlight::end`).
            let (reason, reporter) = ended;
            match reporter.report_and_go_on(RunEnd::Exited(reason)) {
                Some(next) => self.step = Step::Make(next),
                None => return Poll::Ready(()),
            }
        }
    }
}

/// A task's run with probes or a watchdog: found unhealthy or hung, it is
/// stopped like any stop (cancelled, then dropped after its grace period),
/// and ends as that failure.
async fn run_watched_task(ctx: Context, watch: Watch, stopping: Stopping, reporter: Reporter) {
    let mut in_flight = match make_run(ctx, &reporter) {
        Ok(run) => InFlight::new(run, reporter),
        Err(reason) => return reporter.report(RunEnd::Exited(reason)),
    };
    let run = &mut in_flight.run;
    // Once the run is asked to stop, its probes and its watchdog judge it
    // no more (an attempt in flight is dropped, its process killed): it
    // ends as it was asked, as a process's run does.
    let judged = async {
        tokio::select! {
            biased;
            () = stopping.stop.cancelled() => std::future::pending().await,
            () = watch.readiness() => unreachable!("readiness probes run for ever"),
            reason = watch.liveness() => reason,
            reason = watch.task_watchdog() => reason,
        }
    };
    // A run that has ended is judged no more, as a process whose leader
    // has exited is not: ended in the moment its probe fails (its server
    // gone with it), it ended as it did.
    let watched = tokio::select! {
        biased;
        reason = run.wait() => Ok(reason),
        reason = judged => Err(reason),
    };
    let end = match watched {
        Ok(reason) => RunEnd::Exited(reason),
        Err(failure) => {
            log_contained(|| tracing::warn!(unit = %watch.tell.unit.path, reason = %failure, "stopping the run"));
            watch.tell.failing(&failure);
            stopping.stop.cancel();
            // Whether it had to be dropped: a stop, a removal or a shutdown
            // that overtakes this one reports the run as forced then, as it
            // would have had it aborted the run itself.
            let forced = tokio::select! {
                _ = run.wait() => false,
                () = clock::sleep_from(Instant::now(), stopping.timeout) => true,
                () = stopping.kill_now.cancelled() => true,
            };
            // A task has no exit of its own to keep beside the failure.
            RunEnd::Judged { failure: failure.clone(), exit: failure, forced }
        }
    };
    // As in `TaskRuns`: the next run may start within the report.
    let reporter = in_flight.end();
    drop(watch);
    reporter.report(end);
}

/// How a process is stopped.
struct Stopping {
    stop: CancellationToken,
    kill_now: CancellationToken,
    signal: Signal,
    timeout: Duration,
}

/// Waits for a process to exit or, once asked to stop, signals its group
/// and kills it after the grace period.
async fn run_process(mut run: ProcessRun, stopping: Stopping, reporter: Reporter) {
    let end = caught(async {
        let exited = tokio::select! {
            biased;
            status = run.wait_exit() => Some(status),
            () = stopping.stop.cancelled() => None,
        };
        // Once the leader has exited, the run has ended as it did: a stop
        // asked while its output is read to the end finds it over.
        match exited {
            Some(status) => RunEnd::Exited(run.finish(status, &stopping.kill_now).await),
            None => stop_process(&mut run, &stopping).await,
        }
    })
    .await;
    // As in `TaskRuns`: the next run may start within the report.
    drop(run);
    reporter.report(end);
}

/// How `run` ended, or, if it panicked (code of the supervisor's, or a
/// `tracing` subscriber of the user's that it called), a failed run that
/// says so: unwound, the run's reporter would say its task was dropped, as
/// by a runtime going away, and its unit would not be restarted.
async fn caught(run: impl Future<Output = RunEnd>) -> RunEnd {
    match AssertUnwindSafe(run).catch_unwind().await {
        Ok(end) => end,
        Err(payload) => {
            let message = panic_message(payload);
            RunEnd::Exited(ExitReason::Error(format!("the supervisor's task watching the run panicked: {message}")))
        }
    }
}

async fn stop_process(run: &mut ProcessRun, stopping: &Stopping) -> RunEnd {
    let (reason, forced) = answer_to_stop(run, stopping).await;
    RunEnd::Stopped { reason, forced }
}

/// Stops `run` (its stop signal, then `SIGKILL` after its grace period):
/// how the process ended, and whether it had to be killed.
async fn answer_to_stop(run: &mut ProcessRun, stopping: &Stopping) -> (ExitReason, bool) {
    let (reason, forced) = run.stop(stopping.signal.to_rustix(), stopping.timeout, &stopping.kill_now).await;
    (reason.unwrap_or(ExitReason::Success), forced)
}

/// What a process may say of itself: over its notify socket, or with a
/// line of output.
struct ProcessSigns {
    socket: Option<NotifySocket>,
    line: Option<Arc<LineWatch>>,
    watchdog: Option<Duration>,
}

impl ProcessSigns {
    /// Reads the notify socket (a sender such as `systemd-notify` waits for
    /// its messages to be read) and the output for the ready line until the
    /// run is stopped, when [`listen_while_stopping`](Self::listen_while_stopping)
    /// takes over; completes when the process is hung.
    async fn listen(&mut self, tell: &Tell) -> ExitReason {
        let mut watchdog = self.watchdog.map(Watchdog::new);
        let line = async {
            if let Some(line) = &self.line {
                line.seen().await;
                tell.readiness(true, None);
            }
            std::future::pending::<()>().await;
        };
        tokio::pin!(line);
        let Some(socket) = &mut self.socket else {
            line.await;
            unreachable!("the line watch never completes");
        };
        loop {
            let deadline = watchdog.as_ref().and_then(Watchdog::deadline);
            let notification = tokio::select! {
                notification = socket.recv() => notification,
                () = sleep_until(deadline) => {
                    // What the socket holds counts before the deadline is
                    // judged: a supervisor that was stopped for a while has
                    // the run's `WATCHDOG=1`s waiting there.
                    if let Some(hung) = heed_queued(socket, &mut watchdog, tell) {
                        return hung;
                    }
                    if watchdog.as_mut().is_some_and(|watchdog| watchdog.is_hung(Instant::now())) {
                        return ExitReason::Hung;
                    }
                    continue;
                }
                () = &mut line => unreachable!("the line watch never completes"),
            };
            if let Some(hung) = heed(notification, &mut watchdog, tell) {
                return hung;
            }
        }
    }

    /// Reads what the notify socket holds when the leader has exited: a
    /// `READY=1` sent just before the exit, in the same moment, still
    /// counts.
    fn read_queued(&mut self, tell: &Tell) {
        if let Some(socket) = &mut self.socket {
            // No watchdog judges a run that has ended.
            let _ = heed_queued(socket, &mut None, tell);
        }
    }

    /// Reads what is left on the notify socket once the run's group is
    /// gone, up to [`LEFT_AT_EXIT`] notifications: the kernel bounds the
    /// queue, but a stranger may write to the socket too.
    fn read_left(&mut self, tell: &Tell) {
        let Some(socket) = &mut self.socket else { return };
        for _ in 0..LEFT_AT_EXIT {
            let Some(notification) = coop::unconstrained(socket.recv()).now_or_never() else { break };
            // No watchdog judges a run that has ended.
            let _ = heed(notification, &mut None, tell);
        }
    }

    /// Once the output a run's leader wrote before it exited has been
    /// read: a ready line found in it counts.
    fn look_for_line_read(&self, tell: &Tell) {
        if self.line.as_deref().is_some_and(LineWatch::is_seen) && !tell.told_ready.load(Ordering::Acquire) {
            tell.readiness(true, None);
        }
    }

    /// Reads the notify socket while the process is being stopped, until
    /// it is dropped: a daemon that reports its shutdown (`STOPPING=1`, a
    /// `STATUS=` per step) must not block on a full socket and be killed at
    /// its stop timeout. Only status texts count: a run being stopped is
    /// made ready by nothing, and its stop timeout stands in for its
    /// watchdog.
    async fn listen_while_stopping(&mut self, tell: &Tell) -> Infallible {
        let Some(socket) = &mut self.socket else { return std::future::pending().await };
        loop {
            if let Notification::Status(text) = socket.recv().await {
                tell.status_text(text);
            }
        }
    }
}

/// Acts on what a process says on its notify socket; the reason it is
/// hung, when it says so (`WATCHDOG=trigger`).
fn heed(notification: Notification, watchdog: &mut Option<Watchdog>, tell: &Tell) -> Option<ExitReason> {
    match notification {
        Notification::Ready => tell.notified_ready(),
        Notification::Reloading => tell.notified_reloading(),
        Notification::Watchdog => {
            if let Some(watchdog) = watchdog {
                watchdog.beat(Instant::now());
            }
        }
        Notification::WatchdogTrigger => return Some(ExitReason::Hung),
        Notification::Status(text) => tell.status_text(text),
        Notification::Stopping => {}
    }
    None
}

/// Heeds what the socket holds now, without waiting for more: at most
/// [`QUEUED_AT_ONCE`] notifications, and no more reads than the task's
/// budget allows (a flood of garbage cannot hold the task). The reason
/// the run is hung, if one said so.
fn heed_queued(socket: &mut NotifySocket, watchdog: &mut Option<Watchdog>, tell: &Tell) -> Option<ExitReason> {
    let mut hung = None;
    for _ in 0..QUEUED_AT_ONCE {
        let Some(notification) = socket.recv().now_or_never() else { break };
        hung = hung.or(heed(notification, watchdog, tell));
    }
    hung
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A process's run with readiness or liveness checks: found unhealthy or
/// hung, it is stopped like any stop (its stop signal, then `SIGKILL`) and
/// ends as that failure.
async fn run_watched_process(
    mut run: ProcessRun,
    watch: Watch,
    mut signs: ProcessSigns,
    stopping: Stopping,
    reporter: Reporter,
) {
    enum Next {
        Exited(std::io::Result<std::process::ExitStatus>),
        Stop,
        Fail(ExitReason),
    }
    let end = caught(async {
        let next = {
            let (exit, pump) = run.exit_and_pump();
            tokio::select! {
                biased;
                status = exit => Next::Exited(status),
                () = stopping.stop.cancelled() => Next::Stop,
                () = watch.readiness() => unreachable!("readiness probes run for ever"),
                reason = watch.liveness() => Next::Fail(reason),
                reason = signs.listen(&watch.tell) => Next::Fail(reason),
                // Last (see `exit_and_pump`): a flood of short lines held
                // back the notify socket, the probes and the watchdog.
                never = pump => match never {},
            }
        };
        match next {
            // Nothing judges a run whose leader has exited: no probe or
            // watchdog while its output is read to the end. What it said
            // while it ran still counts, read only now: a one-shot job that
            // says it is ready, then exits at once, was ready in its run.
            Next::Exited(status) => {
                signs.read_queued(&watch.tell);
                run.read_written_output();
                signs.look_for_line_read(&watch.tell);
                let reason = run.finish(status, &stopping.kill_now).await;
                // And what it said on its socket past that first read (more
                // notifications than it takes), now that its group is gone.
                // Not its output read since: a line a process that left the
                // group printed after the leader's exit makes nothing ready.
                signs.read_left(&watch.tell);
                RunEnd::Exited(reason)
            }
            Next::Stop => {
                let (reason, forced) = stop_listening(&mut run, &stopping, &mut signs, &watch.tell).await;
                RunEnd::Stopped { reason, forced }
            }
            Next::Fail(failure) => {
                log_contained(|| tracing::warn!(unit = %watch.tell.unit.path, reason = %failure, "stopping the run"));
                watch.tell.failing(&failure);
                // Its answer to the stop is how it ended: its exit code or
                // signal is kept beside the failure.
                let (exit, forced) = stop_listening(&mut run, &stopping, &mut signs, &watch.tell).await;
                RunEnd::Judged { failure, exit, forced }
            }
        }
    })
    .await;
    drop((run, watch, signs));
    reporter.report(end);
}

/// Stops a watched process while its notify socket is still read (see
/// [`ProcessSigns::listen_while_stopping`]): how it ended, and whether it
/// had to be killed.
async fn stop_listening(
    run: &mut ProcessRun,
    stopping: &Stopping,
    signs: &mut ProcessSigns,
    tell: &Tell,
) -> (ExitReason, bool) {
    tokio::select! {
        biased;
        end = answer_to_stop(run, stopping) => end,
        never = signs.listen_while_stopping(tell) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every running task keeps its run's tokio task alive. A tokio task is
    /// the future plus about 104 bytes, rounded up to 128: within 152 bytes
    /// the task takes 256, past that each unit costs 128 bytes more.
    #[test]
    fn a_task_run_fits_a_small_task() {
        let size = std::mem::size_of::<TaskRuns>();
        assert!(size <= 152, "a task run future grew to {size} bytes");
    }
}
