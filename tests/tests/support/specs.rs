//! Small spec makers that many test files share.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use supervisor::{Context, DaemonSpec, RestartOn, RestartPolicy, Supervisor, SupervisorHandle, TaskSpec};

/// A task that waits for its stop and does nothing else.
#[allow(dead_code)]
pub(crate) fn idle(name: &str) -> TaskSpec {
    TaskSpec::new(name, |ctx: Context| async move { ctx.cancelled().await })
}

/// A task that, once asked to stop, takes `stall` to return.
#[allow(dead_code)]
pub(crate) fn slow_to_stop(name: &str, stall: Duration) -> TaskSpec {
    TaskSpec::new(name, move |ctx: Context| async move {
        ctx.cancelled().await;
        tokio::time::sleep(stall).await;
    })
}

/// A task that fails at once, every run, and counts its runs in `runs`.
#[allow(dead_code)]
pub(crate) fn always_fails(name: &str, runs: &Arc<AtomicU32>) -> TaskSpec {
    let runs = runs.clone();
    TaskSpec::new(name, move |_ctx| {
        runs.fetch_add(1, Ordering::SeqCst);
        async { Err::<(), _>("boom") }
    })
}

/// A daemon that runs `script` through `sh -c`.
#[allow(dead_code)]
pub(crate) fn sh(name: &str, script: &str) -> DaemonSpec {
    DaemonSpec::new(name, "sh").args(["-c", script])
}

/// A daemon that runs `program` through `python3 -u -c`.
#[allow(dead_code)]
pub(crate) fn python(name: &str, program: &str) -> DaemonSpec {
    DaemonSpec::new(name, "python3").args(["-u", "-c", program])
}

/// A restart policy that restarts at once.
#[allow(dead_code)]
pub(crate) fn no_delay() -> RestartPolicy {
    RestartPolicy::new().delay(Duration::ZERO)
}

/// A restart policy that never restarts: the unit runs once.
#[allow(dead_code)]
pub(crate) fn run_once() -> RestartPolicy {
    RestartPolicy::new().on(RestartOn::Never)
}

/// Starts a supervisor of the daemons `specs`.
#[allow(dead_code)]
pub(crate) fn start(specs: impl IntoIterator<Item = DaemonSpec>) -> SupervisorHandle {
    let builder = specs.into_iter().fold(Supervisor::builder(), |builder, spec| builder.daemon(spec));
    builder.build().expect("valid supervisor").start()
}
