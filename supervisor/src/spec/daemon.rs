//! External OS processes as units: [`DaemonSpec`] and [`Output`].

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::spec::UnitOptions;
use crate::{Error, Probe, Readiness, RestartPolicy, Signal};

/// How long a process gets to exit after its stop signal, before its process
/// group is killed with `SIGKILL`.
pub const DEFAULT_DAEMON_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How many lines of output a daemon keeps for
/// [`tail`](crate::SupervisorHandle::tail) by default.
pub const DEFAULT_TAIL_LINES: usize = 1000;

/// How many bytes of output text a daemon keeps for its tail by default:
/// 1 MiB.
pub(crate) const DEFAULT_TAIL_BYTES: usize = 1024 * 1024;

/// Where a daemon's stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Output {
    /// Read line by line: each line becomes a `tracing` event (fields `unit`
    /// and `stream`) and is kept in the unit's bounded tail.
    #[default]
    Capture,
    /// Written straight to the supervisor's own stdout and stderr.
    Inherit,
    /// Thrown away (`/dev/null`).
    Discard,
}

/// An external program to supervise.
///
/// Each run is spawned directly (never through a shell: write
/// `DaemonSpec::new("x", "sh").args(["-c", "..."])` if you want one), with stdin
/// from `/dev/null`, as the leader of a new process group. It is stopped by
/// sending `SIGCONT` (a stopped process acts on no other signal), then
/// [`stop_signal`](Self::stop_signal) (default `SIGTERM`) to the whole group,
/// then, if the leader has not exited after
/// [`stop_timeout`](Self::stop_timeout), `SIGKILL` to the group. The grace
/// period is the leader's: once it has exited, by itself or on request, what
/// is left of its group is killed with `SIGKILL` at once. A wrapper shell
/// should therefore `exec` its program, or trap the stop signal and `wait`
/// for its workers, rather than exit at once and leave them no time.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use supervisor::{DaemonSpec, MaxRestarts, RestartPolicy, Signal};
///
/// let spec = DaemonSpec::new("web", "python3")
///     .args(["-m", "http.server", "8000"])
///     .env("PYTHONUNBUFFERED", "1")
///     .current_dir("/tmp")
///     .stop_signal(Signal::INT)
///     .stop_timeout(Duration::from_secs(5))
///     .restart(RestartPolicy::new().delay(Duration::from_secs(5)).max_restarts(MaxRestarts::AtMost(3)));
/// assert_eq!(spec.name(), "web");
/// ```
///
/// # Output
///
/// With [`Output::Capture`] (the default) stdout and stderr are read line by
/// line while the process runs, so it never blocks on a full pipe. Each line
/// becomes a `tracing` event (target `supervisor::output`, fields `unit`,
/// `stream`, `continued` and `progress`) and goes into the unit's tail, which
/// [`tail`](crate::SupervisorHandle::tail) returns in the order they were
/// read (each stream's in the order written; lines of the two pipes may
/// interleave otherwise than they were written). A line
/// ends at `\n` or `\r\n` (both removed). A line longer than 64 KiB is
/// split into pieces of 64 KiB (`continued = true` on all but the last);
/// invalid UTF-8 is replaced with `U+FFFD`. A run counts as ended once its
/// output has been read to the end.
///
/// A carriage return not followed by a newline ends a *progress* piece
/// (`progress = true`; the `\r` is removed, an empty piece is skipped): the
/// text a terminal would overwrite with the next piece, as progress bars
/// do. In the tail, a progress piece replaces the newest entry when that
/// entry is a progress piece of the same stream, so a progress bar takes one
/// entry, showing its latest state, and the line that ends it follows.
/// Every piece still reaches `tracing`. A `\r` that is the last byte written
/// so far ends its piece at once, so the tail shows a progress bar's
/// latest state while the process pauses; a `\n` written after it (a
/// `\r\n` written in two goes) makes that piece a line in the tail, which
/// replaces nothing, as when written at once (in `tracing`, it was told as
/// a progress piece already).
///
/// The tail keeps the newest lines within two bounds,
/// [`tail_lines`](Self::tail_lines) (default 1000) and
/// [`tail_bytes`](Self::tail_bytes) (default 1 MiB of text): older lines
/// are pushed out, and a single line over the byte bound is kept cut, with
/// a marker that says how many bytes were left out.
///
/// # Signal dispositions
///
/// A process inherits ignored signals from its parent across `exec` (a
/// shell's `trap '' CHLD TERM`, `nohup`, a background job of a
/// non-interactive shell), and so would every daemon. Before it spawns a
/// daemon, the supervisor therefore changes its own process as follows, and
/// in no other way:
///
/// - An ignored `SIGCHLD` gets tokio's signal handler (the one tokio
///   installs itself when it waits for children by signal), so that exit
///   statuses are kept for the supervisor, where an ignored `SIGCHLD` would
///   make the kernel reap children at once and lose them. Other code in the
///   same process that relied on an ignored `SIGCHLD` to have its own
///   children reaped must then wait for them.
/// - Each of `SIGHUP`, `SIGINT`, `SIGQUIT`, `SIGTERM`, `SIGUSR1`, `SIGUSR2`
///   and the daemon's [`stop_signal`](Self::stop_signal) that the process
///   ignores (read from `SigIgn` in `/proc/self/status`) gets tokio's
///   handler as well. The supervisor's process still does nothing when it
///   arrives, but a caught signal, unlike an ignored one, is reset to its
///   default on `exec`: each daemon starts with the default disposition and
///   stops on its stop signal instead of being killed after the timeout.
///
/// Signals that are not ignored keep their disposition; each signal is
/// looked at once, before the first spawn that needs it, and the handlers
/// stay for the life of the process (tokio never removes one).
///
/// # Caveats
///
/// - A descendant that leaves the process group (`setsid`, `setpgid`, a
///   double-forking daemon) is out of reach of the group signals: run programs
///   in the foreground. If it keeps stdout or stderr open, the run ends
///   0.5 s after the leader exits, with what was written so far in the tail
///   (a last line left without its newline too), and what it writes later
///   is still read. A leader that leaves its group gets each signal by its pid as well,
///   until it is reaped.
/// - Dropping the runtime (or aborting the supervisor's tasks) without a
///   shutdown kills every group with `SIGKILL`, without a grace period, and
///   reaps each leader on the dropping thread: microseconds, at most 0.5 s
///   for a process stuck in the kernel.
/// - If the supervisor's own process is killed with `SIGKILL`, nothing runs to
///   clean up; the children are then re-parented, as with any parent.
/// - The ignored signals are found through `/proc` (Linux). Elsewhere only
///   `SIGCHLD` is taken care of (caught whatever its disposition), and a
///   daemon inherits whatever other signal the supervisor's process ignores. A signal ignored only after
///   the first spawn is not looked at again.
/// - Other ignored signals (`SIGTSTP`, `SIGTTOU`, ...) are passed on to the
///   daemons as they are; as with any `std::process::Command`, a daemon
///   starts with an empty signal mask and `SIGPIPE` at its default.
#[must_use = "a spec does nothing until it is added to a supervisor with `.daemon(spec)`"]
#[derive(Clone)]
pub struct DaemonSpec {
    pub(crate) name: String,
    /// The rest, out of line: a builder keeps its units' specs in one list
    /// whose items are each as large as the largest kind of spec, and all
    /// of this would double the size of a task's.
    pub(crate) parts: Box<DaemonParts>,
}

/// A daemon's settings, apart from its name.
#[derive(Clone)]
pub(crate) struct DaemonParts {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    pub(crate) env: Vec<(OsString, Option<OsString>)>,
    pub(crate) env_clear: bool,
    pub(crate) current_dir: Option<PathBuf>,
    pub(crate) policy: RestartPolicy,
    pub(crate) stop_timeout: Duration,
    pub(crate) stop_signal: Signal,
    pub(crate) output: Output,
    pub(crate) tail_lines: usize,
    pub(crate) options: UnitOptions,
    pub(crate) tail_bytes: usize,
    /// `None`: only 0.
    pub(crate) success_codes: Option<Arc<[i32]>>,
}

impl DaemonSpec {
    /// A daemon named `name` that runs `program` (looked up in `PATH` unless
    /// it contains a `/`).
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::DaemonSpec;
    ///
    /// let spec = DaemonSpec::new("sleeper", "sleep").arg("30");
    /// assert_eq!(spec.name(), "sleeper");
    /// ```
    pub fn new(name: impl Into<String>, program: impl AsRef<OsStr>) -> Self {
        DaemonSpec {
            name: name.into(),
            parts: Box::new(DaemonParts {
                program: program.as_ref().to_owned(),
                args: Vec::new(),
                env: Vec::new(),
                env_clear: false,
                current_dir: None,
                policy: RestartPolicy::default(),
                stop_timeout: DEFAULT_DAEMON_STOP_TIMEOUT,
                stop_signal: Signal::TERM,
                output: Output::default(),
                tail_lines: DEFAULT_TAIL_LINES,
                options: UnitOptions::default(),
                tail_bytes: DEFAULT_TAIL_BYTES,
                success_codes: None,
            }),
        }
    }

    /// Adds one argument, passed as it is.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{DaemonSpec, RestartOn, RestartPolicy, Supervisor, UnitState};
    ///
    /// let handle = Supervisor::builder()
    ///     .daemon(DaemonSpec::new("hello", "echo").arg("hello").restart(RestartPolicy::new().on(RestartOn::Never)))
    ///     .build()?
    ///     .start();
    /// handle.wait_state("hello", UnitState::Exited).await?;
    /// assert_eq!(handle.tail("hello", 10)?, ["hello"]);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.parts.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments, passed as they are.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{DaemonSpec, RestartOn, RestartPolicy, Supervisor, UnitState};
    ///
    /// let handle = Supervisor::builder()
    ///     .daemon(DaemonSpec::new("greet", "echo").args(["hello", "world"]).restart(RestartPolicy::new().on(RestartOn::Never)))
    ///     .build()?
    ///     .start();
    /// handle.wait_state("greet", UnitState::Exited).await?;
    /// assert_eq!(handle.tail("greet", 10)?, ["hello world"]);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.parts.args.extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the process. A `PATH` set here is
    /// where a program named without a `/` is looked up; the process still
    /// gets the name it was given as its `argv[0]`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{DaemonSpec, RestartOn, RestartPolicy, Supervisor, UnitState};
    ///
    /// let handle = Supervisor::builder()
    ///     .daemon(DaemonSpec::new("greet", "sh").args(["-c", "echo $GREETING"]).env("GREETING", "hi").restart(RestartPolicy::new().on(RestartOn::Never)))
    ///     .build()?
    ///     .start();
    /// handle.wait_state("greet", UnitState::Exited).await?;
    /// assert_eq!(handle.tail("greet", 10)?, ["hi"]);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.parts.env.push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable, inherited or set earlier with
    /// [`env`](Self::env). Without `PATH`, the program is still looked up
    /// in the supervisor's `PATH`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{DaemonSpec, RestartOn, RestartPolicy, Supervisor, UnitState};
    ///
    /// let handle = Supervisor::builder()
    ///     .daemon(DaemonSpec::new("greet", "sh").args(["-c", "echo ${GREETING:-unset}"]).env("GREETING", "hi").env_remove("GREETING").restart(RestartPolicy::new().on(RestartOn::Never)))
    ///     .build()?
    ///     .start();
    /// handle.wait_state("greet", UnitState::Exited).await?;
    /// assert_eq!(handle.tail("greet", 10)?, ["unset"]);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.parts.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Starts from an empty environment instead of the supervisor's, and
    /// forgets the variables set so far with [`env`](Self::env); later calls
    /// add to the empty environment. The program is still looked up in the
    /// supervisor's `PATH`, unless a `PATH` is set with `env`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{DaemonSpec, RestartOn, RestartPolicy, Supervisor, UnitState};
    ///
    /// let handle = Supervisor::builder()
    ///     .daemon(DaemonSpec::new("greet", "sh").args(["-c", "echo ${HOME:-no home} $ONLY"]).env_clear().env("ONLY", "this").restart(RestartPolicy::new().on(RestartOn::Never)))
    ///     .build()?
    ///     .start();
    /// handle.wait_state("greet", UnitState::Exited).await?;
    /// assert_eq!(handle.tail("greet", 10)?, ["no home this"]);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn env_clear(mut self) -> Self {
        self.parts.env_clear = true;
        self.parts.env.clear();
        self
    }

    /// The working directory of the process.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{DaemonSpec, RestartOn, RestartPolicy, Supervisor, UnitState};
    ///
    /// let handle = Supervisor::builder()
    ///     .daemon(DaemonSpec::new("where", "pwd").current_dir("/").restart(RestartPolicy::new().on(RestartOn::Never)))
    ///     .build()?
    ///     .start();
    /// handle.wait_state("where", UnitState::Exited).await?;
    /// assert_eq!(handle.tail("where", 10)?, ["/"]);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.parts.current_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// The restart policy (default: [`RestartPolicy::new`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{DaemonSpec, RestartOn, RestartPolicy, Supervisor, UnitState};
    ///
    /// let handle = Supervisor::builder()
    ///     .daemon(DaemonSpec::new("once", "true").restart(RestartPolicy::new().on(RestartOn::Never)))
    ///     .build()?
    ///     .start();
    /// let status = handle.wait_state("once", UnitState::Exited).await?;
    /// assert_eq!(status.restart_count, 0);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.parts.policy = policy;
        self
    }

    /// How long the leader gets to exit after the stop signal before its
    /// group is killed with `SIGKILL` (default 10 s). Zero: killed at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::{DaemonSpec, Supervisor};
    ///
    /// let db = DaemonSpec::new("db", "sleep").arg("30").stop_timeout(Duration::from_secs(30));
    /// assert!(Supervisor::builder().daemon(db).build().is_ok());
    /// ```
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.parts.stop_timeout = timeout;
        self
    }

    /// The signal sent to the process group to ask it to stop (default
    /// `SIGTERM`).
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::{DaemonSpec, Signal, Supervisor};
    ///
    /// let web = DaemonSpec::new("web", "sleep").arg("30").stop_signal(Signal::INT);
    /// assert!(Supervisor::builder().daemon(web).build().is_ok());
    /// ```
    pub fn stop_signal(mut self, signal: Signal) -> Self {
        self.parts.stop_signal = signal;
        self
    }

    /// Where stdout and stderr go (default [`Output::Capture`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{DaemonSpec, Output, RestartOn, RestartPolicy, Supervisor, UnitState};
    ///
    /// let handle = Supervisor::builder()
    ///     .daemon(DaemonSpec::new("quiet", "echo").arg("hello").output(Output::Discard).restart(RestartPolicy::new().on(RestartOn::Never)))
    ///     .build()?
    ///     .start();
    /// handle.wait_state("quiet", UnitState::Exited).await?;
    /// assert!(handle.tail("quiet", 10)?.is_empty());
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn output(mut self, output: Output) -> Self {
        self.parts.output = output;
        self
    }

    /// How many captured lines the unit keeps for
    /// [`tail`](crate::SupervisorHandle::tail) (default 1000); `0` keeps
    /// none. The tail is bounded in bytes as well: see
    /// [`tail_bytes`](Self::tail_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::DaemonSpec;
    ///
    /// let spec = DaemonSpec::new("web", "python3").tail_lines(500);
    /// # let _ = spec;
    /// ```
    pub fn tail_lines(mut self, lines: usize) -> Self {
        self.parts.tail_lines = lines;
        self
    }

    /// How many bytes of captured text the unit keeps for
    /// [`tail`](crate::SupervisorHandle::tail) (default 1 MiB); `0` keeps
    /// none.
    ///
    /// The tail keeps the newest lines that fit both bounds, this one and
    /// [`tail_lines`](Self::tail_lines): once either is reached, each new
    /// line pushes out the oldest ones. Every line still reaches `tracing`
    /// in full, whatever the tail keeps.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::DaemonSpec;
    ///
    /// // Up to 200 lines, as long as they hold no more than 16 KiB of text.
    /// let spec = DaemonSpec::new("noisy", "noisy-tool").tail_lines(200).tail_bytes(16 * 1024);
    /// # let _ = spec;
    /// ```
    ///
    /// # Caveats
    ///
    /// - A single line (or 64 KiB piece of a longer line) larger than the
    ///   bound is kept cut, at a character boundary, so that with the
    ///   marker `[… N bytes not kept in the tail]` at its end it fits the
    ///   bound; a bound shorter than the marker (about 40 bytes) keeps the
    ///   marker alone.
    /// - The bound counts the text, not the bookkeeping around it (a few
    ///   dozen bytes per line, bounded by `tail_lines`).
    pub fn tail_bytes(mut self, bytes: usize) -> Self {
        self.parts.tail_bytes = bytes;
        self
    }

    /// The exit codes that count as a success (default: only `0`), like
    /// supervisord's `exitcodes` and process-compose's
    /// `success_exit_codes`.
    ///
    /// A run that exits with one of them is a success for the restart
    /// policy ([`RestartOn::Failure`](crate::RestartOn::Failure) does not
    /// restart it) and for the report (no `last_error`), while the status
    /// still shows the real `exit_code`; its event's reason is
    /// [`ExitReason::SuccessCode`](crate::ExitReason::SuccessCode). The list
    /// replaces the default: leave `0` out and an exit with code `0` is a
    /// failure.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{DaemonSpec, EventKind, RestartOn, RestartPolicy, Supervisor};
    ///
    /// // A program that exits with 143 when it is done.
    /// let sup = Supervisor::builder()
    ///     .daemon(DaemonSpec::new("job", "sh").args(["-c", "exit 143"])
    ///         .success_codes([0, 143])
    ///         .restart(RestartPolicy::new().on(RestartOn::Failure)))
    ///     .build()?;
    /// let mut events = sup.subscribe();
    /// let handle = sup.start();
    /// while !matches!(events.recv().await.expect("alive").kind, EventKind::Finished) {}
    /// let status = handle.status("job").expect("known unit");
    /// assert_eq!(status.exit_code, Some(143));
    /// assert_eq!(status.last_error, None);
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Caveats
    ///
    /// - Only exit codes: a process ended by a signal (`SIGTERM` not handled
    ///   by the program) is not a success, whatever the list says. A shell
    ///   reports a child killed by signal `n` as code `128 + n`, so `143`
    ///   covers a `SIGTERM` seen through `sh -c`.
    /// - An empty list, or a code outside `0..=255` (no process can exit
    ///   with it), is an [`Error::InvalidSetting`] from `build()`.
    pub fn success_codes(mut self, codes: impl IntoIterator<Item = i32>) -> Self {
        self.parts.success_codes = Some(codes.into_iter().collect());
        self
    }

    /// The unit's name.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::DaemonSpec;
    ///
    /// assert_eq!(DaemonSpec::new("web", "nginx").name(), "web");
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When this daemon ends for good, its group ends too; see
    /// [`TaskSpec::critical`](crate::TaskSpec::critical).
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::DaemonSpec;
    ///
    /// let spec = DaemonSpec::new("db", "postgres").critical();
    /// # let _ = spec;
    /// ```
    pub fn critical(mut self) -> Self {
        self.parts.options.critical = true;
        self
    }

    /// Forgets the daemon once it ends for good; see
    /// [`TaskSpec::temporary`](crate::TaskSpec::temporary).
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::{DaemonSpec, RestartOn, RestartPolicy};
    ///
    /// let spec = DaemonSpec::new("convert-42", "convert").args(["in.png", "out.jpg"])
    ///     .restart(RestartPolicy::new().on(RestartOn::Failure))
    ///     .temporary();
    /// # let _ = spec;
    /// ```
    pub fn temporary(mut self) -> Self {
        self.parts.options.temporary = true;
        self
    }

    /// Starts this daemon only once each of these units of its group is
    /// ready (until then its state is `Waiting`), and stops it before them.
    /// Names are siblings in the same group (a group counts as ready when
    /// every unit of it that should run is ready). A dependency that was
    /// ready, then ended well and rests by its policy (`Exited`: a one-shot
    /// job that did its work) counts as ready until it runs again. Unknown
    /// names, a unit depending on itself and cycles are `build()` errors.
    ///
    /// `stop_unit` and `restart` of a dependency first stop its dependents
    /// (and `restart` starts them again once it is ready); `start_unit`,
    /// and `restart` of a unit at rest, start what a unit depends on if it
    /// is not running. A dependency
    /// restarted by its own policy leaves its dependents running under
    /// `OneForOne`; `RestForOne` restarts them with it.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::DaemonSpec;
    ///
    /// let api = DaemonSpec::new("api", "api-server").depends_on(["db", "cache"]);
    /// # let _ = api;
    /// ```
    pub fn depends_on<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.parts.options.depends_on.extend(names.into_iter().map(Into::into));
        self
    }

    /// When a run counts as ready (default [`Readiness::Started`]): readiness
    /// gates the units that depend on this one, `/readyz` and `wait_ready`.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::{Probe, Readiness, DaemonSpec};
    ///
    /// let spec = DaemonSpec::new("db", "postgres").readiness(Readiness::Probe(Probe::tcp("127.0.0.1:5432")));
    /// # let _ = spec;
    /// ```
    pub fn readiness(mut self, readiness: Readiness) -> Self {
        self.parts.options.watching().readiness = readiness;
        self
    }

    /// A liveness probe: a run whose probe fails `failure_threshold` times
    /// in a row is stopped and ends as a failure
    /// ([`ExitReason::Unhealthy`](crate::ExitReason::Unhealthy)), which
    /// goes through the restart policy, the strategy and the intensity like
    /// any failure. It probes only while a run is in progress.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::{Probe, DaemonSpec};
    ///
    /// let spec = DaemonSpec::new("db", "postgres").liveness(Probe::tcp("127.0.0.1:8081").period(Duration::from_secs(10)).failure_threshold(3));
    /// # let _ = spec;
    /// ```
    pub fn liveness(mut self, probe: Probe) -> Self {
        self.parts.options.watching().liveness = Some(probe);
        self
    }

    /// A watchdog: a run that gives no sign of life for `period` is hung:
    /// it is stopped like any stop and ends as a failure
    /// ([`ExitReason::Hung`](crate::ExitReason::Hung)). The process gets `WATCHDOG_USEC` (and
    /// `NOTIFY_SOCKET`) and gives signs of life by sending `WATCHDOG=1`, as
    /// under systemd's `WatchdogSec=`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::DaemonSpec;
    ///
    /// let spec = DaemonSpec::new("db", "postgres").watchdog(Duration::from_secs(30));
    /// # let _ = spec;
    /// ```
    pub fn watchdog(mut self, period: Duration) -> Self {
        self.parts.options.watching().watchdog = Some(period);
        self
    }

    /// Every problem of this daemon's own settings, for the unit at `path`.
    pub(crate) fn validate(&self, path: &str, problems: &mut Vec<Error>) {
        let invalid = |setting, reason: String| Error::InvalidSetting { unit: path.to_owned(), setting, reason };
        if self.parts.program.is_empty() {
            problems.push(Error::EmptyProgram { unit: path.to_owned() });
        }
        self.validate_command(path, problems);
        if let Some(codes) = &self.parts.success_codes {
            if codes.is_empty() {
                let reason = "the list is empty, so no run could succeed; list at least one exit code, e.g. [0]";
                problems.push(invalid("success_codes", reason.to_owned()));
            }
            if let Some(code) = codes.iter().find(|code| !(0..=255).contains(*code)) {
                let reason = format!("{code} is not an exit code a process can have; use codes from 0 to 255");
                problems.push(invalid("success_codes", reason));
            }
        }
        let waits_for_output = self
            .parts
            .options
            .watching
            .as_ref()
            .is_some_and(|watching| matches!(watching.readiness, crate::Readiness::OutputLine(_)));
        if waits_for_output && self.parts.output != Output::Capture {
            let reason = format!(
                "it waits for a line of output, and the output is {:?}, so no line is read; keep the default Output::Capture",
                self.parts.output
            );
            problems.push(invalid("readiness", reason));
        }
    }

    /// What no process can be given, found before the first spawn rather
    /// than at each: a NUL byte in the program, an argument, the
    /// environment or the working directory; an empty variable name, or one
    /// with `=` in it; an empty working directory.
    fn validate_command(&self, path: &str, problems: &mut Vec<Error>) {
        let mut invalid =
            |setting, reason: String| problems.push(Error::InvalidSetting { unit: path.to_owned(), setting, reason });
        let nul = |text: &OsStr| text.as_encoded_bytes().contains(&0);
        if nul(&self.parts.program) {
            invalid("program", format!("{:?} contains a NUL byte, which no program path can", self.parts.program));
        }
        if let Some(at) = self.parts.args.iter().position(|arg| nul(arg)) {
            let reason =
                format!("argument {} ({:?}) contains a NUL byte, which no argument can", at + 1, self.parts.args[at]);
            invalid("args", reason);
        }
        for (key, value) in &self.parts.env {
            if key.is_empty() || key.as_encoded_bytes().contains(&b'=') || nul(key) {
                let reason =
                    format!("variable name {key:?} is empty or holds `=` or a NUL byte; use a name such as \"PORT\"");
                invalid("env", reason);
            } else if value.as_deref().is_some_and(nul) {
                invalid("env", format!("the value of {key:?} contains a NUL byte, which no variable can"));
            }
        }
        match self.parts.current_dir.as_deref() {
            Some(dir) if dir.as_os_str().is_empty() => {
                invalid("current_dir", "the path is empty; name the directory, e.g. \"/srv/app\"".to_owned());
            }
            Some(dir) if nul(dir.as_os_str()) => {
                invalid("current_dir", format!("{dir:?} contains a NUL byte, which no path can"));
            }
            _ => {}
        }
    }
}

/// Shows environment keys, never their values (they often hold secrets).
impl fmt::Debug for DaemonSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_keys: Vec<_> = self.parts.env.iter().map(|(key, _)| key).collect();
        f.debug_struct("DaemonSpec")
            .field("name", &self.name)
            .field("program", &self.parts.program)
            .field("args", &self.parts.args)
            .field("env_keys", &env_keys)
            .field("env_clear", &self.parts.env_clear)
            .field("current_dir", &self.parts.current_dir)
            .field("policy", &self.parts.policy)
            .field("stop_timeout", &self.parts.stop_timeout)
            .field("stop_signal", &self.parts.stop_signal)
            .field("output", &self.parts.output)
            .field("tail_lines", &self.parts.tail_lines)
            .field("options", &self.parts.options)
            .field("tail_bytes", &self.parts.tail_bytes)
            .field("success_codes", &self.parts.success_codes)
            .finish()
    }
}
