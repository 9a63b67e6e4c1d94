//! `SIGINT`, `SIGTERM` and `SIGHUP`: shutting down when the service
//! manager or the user asks, or when the terminal goes away.

use std::fmt;

use crate::run::process::dispositions;
use crate::{ShutdownReport, SupervisorHandle};

/// Waits for `SIGINT`, `SIGTERM` or `SIGHUP`, then shuts down gracefully; a
/// second `SIGINT` or `SIGTERM` during the shutdown skips what is left of
/// the grace periods (a terminal that closes sends `SIGHUP` twice: once
/// from the kernel, once from the shell).
pub(crate) async fn shutdown_on(handle: &SupervisorHandle, mut signals: Signals) -> ShutdownReport {
    // The tree may end by itself first: its root gave up, or a critical
    // unit ended.
    let ended = handle.wait();
    tokio::pin!(ended);
    tokio::select! {
        () = signals.recv() => {}
        report = &mut ended => return report,
    }
    tracing::info!("shutdown signal received; stopping every unit");
    let shutdown = handle.shutdown();
    tokio::pin!(shutdown);
    tokio::select! {
        report = &mut shutdown => report,
        () = signals.recv_insistence() => {
            tracing::warn!("second shutdown signal: killing what is left");
            handle.skip_grace();
            shutdown.await
        }
    }
}

impl SupervisorHandle {
    /// Waits for `SIGINT`, `SIGTERM` or `SIGHUP`, then shuts down gracefully,
    /// like [`Supervisor::run`](crate::Supervisor::run): a second `SIGINT` or `SIGTERM` during
    /// the shutdown skips what is left of the grace periods. Returns early,
    /// with the report, when the supervisor ends by itself (its root gave
    /// up, or a critical unit ended). For a `main`
    /// that needs the handle (to serve the HTTP endpoint, say) before it
    /// waits.
    ///
    /// # Caveats
    ///
    /// A launcher that sends its signal to this process and to its process
    /// group (GNU `timeout` without `--foreground`, `kill -- -PGID`)
    /// delivers it twice: the second is taken as insistence, and skips the
    /// grace periods.
    ///
    /// The signal handlers are installed when this is called (not when the
    /// future is first polled); a signal that arrives before that gets the
    /// default action, which ends the process. `Supervisor::run` installs
    /// them before the units start.
    ///
    /// `SIGHUP` (the terminal or the SSH session it runs in went away)
    /// shuts down as the others do, so that the daemons do not run on
    /// unsupervised, unless this process ignored it when it started (as
    /// under `nohup`): then it stays ignored. Other signals whose default
    /// action ends a process (`SIGUSR1`, `SIGUSR2`, `SIGQUIT`...) are left
    /// as they are: one that arrives ends this process, and its daemons
    /// run on.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or on one without its IO driver
    /// (`enable_io()` or `enable_all()` on its builder), which signals
    /// need.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("ticker", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// let report = handle.shutdown_on_signal().await;
    /// println!("{report}");
    /// std::process::exit(report.exit_code());
    /// # }
    /// ```
    pub fn shutdown_on_signal(&self) -> impl Future<Output = ShutdownReport> + Send + '_ {
        let signals = Signals::install();
        shutdown_on(self, signals)
    }
}

/// `SIGINT`, `SIGTERM` and `SIGHUP`, installed before the units start so
/// that none is missed.
pub(crate) struct Signals {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
    /// `None` also when `SIGHUP` was ignored at first (`nohup`).
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub(crate) fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(signal) => Some(signal),
            Err(error) => {
                tracing::error!(%error, "cannot listen for {name}; it will not shut the supervisor down");
                None
            }
        };
        let nohup = dispositions::ignored_at_first_look(rustix::process::Signal::HUP);
        Signals {
            interrupt: install(SignalKind::interrupt(), "SIGINT"),
            terminate: install(SignalKind::terminate(), "SIGTERM"),
            hangup: if nohup { None } else { install(SignalKind::hangup(), "SIGHUP") },
        }
    }

    /// Waits for the next `SIGINT`, `SIGTERM` or `SIGHUP`; for ever if none
    /// could be installed.
    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            () = next(&mut self.interrupt) => {}
            () = next(&mut self.terminate) => {}
            () = next(&mut self.hangup) => {}
        }
    }

    /// Waits for the next `SIGINT` or `SIGTERM`: someone insists on the
    /// shutdown. A `SIGHUP` does not count: a terminal that closes sends
    /// two at once, and the first already started the shutdown.
    pub(crate) async fn recv_insistence(&mut self) {
        tokio::select! {
            () = next(&mut self.interrupt) => {}
            () = next(&mut self.terminate) => {}
        }
    }
}

/// The next delivery of `signal`; never, if it could not be installed.
async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            if signal.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals").finish_non_exhaustive()
    }
}
