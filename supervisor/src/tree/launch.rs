//! Starting one run of a task or a process in a tokio task of its own,
//! which reports to the group's owner how it ended.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::run::process::ProcessRun;
use crate::run::task::TaskRun;
use crate::tree::unit::{Body, Mailbox, Reporter, RunEnd, RunHandle, Unit};
use crate::{Context, ExitReason, Signal};

/// A run, started.
pub(crate) struct Launched {
    pub(crate) handle: RunHandle,
    pub(crate) pid: Option<u32>,
    /// Ready as soon as it runs.
    pub(crate) ready: bool,
}

/// Starts a run of a task or process `unit`; `Err` when it could not start
/// (a panic in the task's factory, a process that cannot be spawned).
pub(crate) fn start(
    unit: &Arc<Unit>,
    epoch: u32,
    restarts: u32,
    mailbox: Mailbox,
    kill_now: &CancellationToken,
) -> Result<Launched, ExitReason> {
    let stop = CancellationToken::new();
    // Made once the run has started: a reporter dropped reports an abort.
    let reporter = || Reporter::new(mailbox, unit.clone(), epoch);
    match &unit.body {
        Body::Task(task) => {
            let ctx = Context::new(unit.path.clone(), restarts, stop.clone());
            let span = tracing::info_span!("unit", unit = %unit.path);
            let run = task.start(ctx, span)?;
            let reporter = reporter();
            let join = tokio::spawn(run_task(run, reporter));
            Ok(Launched {
                handle: RunHandle { stop, abort: Some(join.abort_handle()), signaller: None },
                pid: None,
                ready: true,
            })
        }
        Body::Process(process) => {
            let run = process.start(&unit.path)?;
            let pid = run.pid();
            let signaller = Some(run.signaller());
            let stopping = Stopping {
                stop: stop.clone(),
                kill_now: kill_now.clone(),
                signal: process.spec().stop_signal,
                timeout: unit.stop_timeout,
            };
            tokio::spawn(run_process(run, stopping, reporter()));
            Ok(Launched { handle: RunHandle { stop, abort: None, signaller }, pid, ready: true })
        }
        Body::Group(_) => unreachable!("a group's run is started by its parent's owner"),
    }
}

/// Polls a task's run until it ends; an abort drops it here, and the
/// reporter then says so.
async fn run_task(mut run: TaskRun, reporter: Reporter) {
    let reason = run.wait().await;
    reporter.report(RunEnd::Exited(reason));
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
    let exited = tokio::select! {
        biased;
        reason = run.wait() => Some(reason),
        () = stopping.stop.cancelled() => None,
    };
    let end = match exited {
        Some(reason) => RunEnd::Exited(reason),
        None => {
            let (reason, forced) = run.stop(stopping.signal.to_rustix(), stopping.timeout, &stopping.kill_now).await;
            RunEnd::Stopped { reason: reason.unwrap_or(ExitReason::Success), forced }
        }
    };
    reporter.report(end);
}
