//! One run of a daemon: spawning it as a process-group leader, waiting for
//! it, stopping the whole group, and reaping it.

use std::convert::Infallible;
use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustix::process::{Pid, Signal as RawSignal, kill_process_group};
use smol_str::SmolStr;
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::observe::event::ExitReason;
use crate::run::output::{Capture, LineWatch, OutputTail};
use crate::spec::daemon::{DaemonSpec, Output};
use crate::tree::clock;

pub(crate) mod dispositions;
pub(crate) mod strays;

/// How long to read, after the group is gone, until the output pipes reach
/// end-of-file. Only a descendant that left the group can hold them open
/// longer; they are then read in the background.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);
/// Pieces of output (lines, mostly) read at most from each pipe, without
/// waiting, as the leader's exit is heard: a full pipe (64 KiB, Linux's
/// default) of empty lines. With 4,096, a one-shot job that printed its
/// ready line after 5,000 short ones, then exited, was never ready.
const OUTPUT_READ_AT_EXIT: usize = 65_536;

/// How long dropping a running [`ProcessRun`] blocks, at most, to reap the
/// process it has just killed.
const REAP_ON_DROP_TIMEOUT: Duration = Duration::from_millis(500);

/// What a daemon unit keeps between runs: its spec and its output tail.
pub(crate) struct ProcessBody {
    spec: DaemonSpec,
    tail: Arc<OutputTail>,
}

impl ProcessBody {
    pub(crate) fn new(spec: DaemonSpec) -> Self {
        let tail = Arc::new(OutputTail::new(spec.parts.tail_lines, spec.parts.tail_bytes));
        ProcessBody { spec, tail }
    }

    pub(crate) fn spec(&self) -> &DaemonSpec {
        &self.spec
    }

    pub(crate) fn tail(&self, lines: usize) -> Vec<String> {
        self.tail.last(lines)
    }

    /// Spawns a run. A failure to spawn is a failed run whose reason names the
    /// program and the cause.
    #[cfg(test)]
    pub(crate) fn start(&self, unit: &SmolStr) -> Result<ProcessRun, ExitReason> {
        self.start_with_env(unit, &[], None)
    }

    /// Spawns a run (a failure to spawn is a failed run whose reason names
    /// the program and the cause), with `extra` applied to its environment
    /// after the spec's own variables (so they win): a value sets the
    /// variable, `None` removes it. For what a run needs beyond its spec, such as the notify socket's `NOTIFY_SOCKET` (see
    /// [`NotifySocket::env`](crate::run::notify::NotifySocket::env)).
    /// `ready_line` watches the output for the line that makes the run ready.
    pub(crate) fn start_with_env(
        &self,
        unit: &SmolStr,
        extra: &[(&str, Option<OsString>)],
        ready_line: Option<Arc<LineWatch>>,
    ) -> Result<ProcessRun, ExitReason> {
        dispositions::prepare(self.spec.parts.stop_signal.to_rustix());
        let mut child = self.command_with(extra).spawn().map_err(|error| self.spawn_failure(&error))?;
        self.tail.begin_run();
        let group = ProcessGroup::of(&child);
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let capture = (stdout.is_some() || stderr.is_some()).then(|| {
            let mut capture = Capture::new(unit.clone(), self.tail.clone(), stdout, stderr);
            if let Some(watch) = ready_line {
                capture.watch_for(watch);
            }
            capture
        });
        Ok(ProcessRun { child, group, capture, success_codes: self.spec.parts.success_codes.clone(), on_reaped: None })
    }

    /// The spec's command, with `extra` applied to its environment (see
    /// [`start_with_env`](Self::start_with_env)).
    fn command_with(&self, extra: &[(&str, Option<OsString>)]) -> Command {
        let mut command = self.command();
        for (key, value) in extra {
            match value {
                Some(value) => {
                    command.env(key, value);
                }
                None if self.would_inherit(&command, key) => {
                    command.env_remove(key);
                }
                // Removing what the child would not have anyway would make
                // the standard library copy this process's whole
                // environment at each spawn: 74k instructions, against 2k
                // for the rest of the spawn.
                None => {}
            }
        }
        command
    }

    /// Whether the child of `command` would have `key` in its environment:
    /// the spec sets it, or this process has it and the spec keeps it.
    fn would_inherit(&self, command: &Command, key: &str) -> bool {
        // Each variable the spec set or removed, once.
        match command.as_std().get_envs().find(|(name, _)| *name == key) {
            Some((_, value)) => value.is_some(),
            None => !self.spec.parts.env_clear && std::env::var_os(key).is_some(),
        }
    }

    fn command(&self) -> Command {
        let spec = &self.spec;
        let mut command = match self.found_on_path() {
            Some(found) => {
                let mut command = Command::new(found);
                command.arg0(&spec.parts.program);
                command
            }
            None => Command::new(&spec.parts.program),
        };
        command.args(&spec.parts.args).stdin(Stdio::null()).process_group(0).kill_on_drop(true);
        if spec.parts.env_clear {
            command.env_clear();
        }
        for (key, value) in &spec.parts.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        if let Some(dir) = &spec.parts.current_dir {
            command.current_dir(dir);
        }
        let (stdout, stderr) = match spec.parts.output {
            Output::Capture => (Stdio::piped(), Stdio::piped()),
            Output::Inherit => (Stdio::inherit(), Stdio::inherit()),
            Output::Discard => (Stdio::null(), Stdio::null()),
        };
        command.stdout(stdout).stderr(stderr);
        command
    }

    /// The program, if it is named without a `/` and the daemon's
    /// environment is not the supervisor's as to `PATH`: found on the
    /// `PATH` given with `env`, or on the supervisor's own when the daemon
    /// has none (`env_clear`, `env_remove("PATH")`), as the docs promise.
    ///
    /// Left to the standard library, the lookup goes through `execvp`, on
    /// the child's `PATH`: without one, glibc's default (`/bin:/usr/bin`),
    /// not the supervisor's; with one, a file that is no program (a script
    /// without `#!`) is run with `/bin/sh`, a shell the user did not ask
    /// for, and one that a lookup on the supervisor's own `PATH` does not
    /// use.
    fn found_on_path(&self) -> Option<std::path::PathBuf> {
        let parts = &self.spec.parts;
        if parts.program.as_encoded_bytes().contains(&b'/') {
            return None;
        }
        let untouched = !parts.env_clear && !parts.env.iter().any(|(key, _)| key == "PATH");
        if untouched {
            return None;
        }
        let path = self.lookup_path()?;
        let cwd = match &parts.current_dir {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().ok()?,
        };
        let found = which::which_in(&parts.program, Some(path), cwd).ok()?;
        // Found through a relative `PATH` entry from a relative working
        // directory, the path is relative to this process's directory: the
        // child, which changes into its own before the exec, would miss it.
        std::path::absolute(found).ok()
    }

    /// The `PATH` a program named without a `/` is looked up on: the one
    /// given with `env`, else the supervisor's own.
    fn lookup_path(&self) -> Option<OsString> {
        self.given_path().cloned().or_else(|| std::env::var_os("PATH"))
    }

    /// The `PATH` given with `env`, if one is (not removed).
    fn given_path(&self) -> Option<&OsString> {
        match self.spec.parts.env.iter().rev().find(|(key, _)| key == "PATH") {
            Some((_, Some(given))) => Some(given),
            _ => None,
        }
    }

    /// The first file or directory of the program's name (named without a
    /// `/`) in the directories of its lookup `PATH`, a relative one taken
    /// from the working directory the process starts in: what a spawn
    /// refused for want of permission, or "not found", found.
    fn named_on_path(&self) -> Option<std::path::PathBuf> {
        self.path_dirs().into_iter().map(|dir| dir.join(&self.spec.parts.program)).find(|candidate| candidate.exists())
    }

    /// The directories of the lookup `PATH`, a relative one taken from the
    /// working directory the process starts in.
    fn path_dirs(&self) -> Vec<std::path::PathBuf> {
        let Some(path) = self.lookup_path() else { return Vec::new() };
        let from = |dir: std::path::PathBuf| match &self.spec.parts.current_dir {
            Some(cwd) if dir.is_relative() => cwd.join(dir),
            _ => dir,
        };
        std::env::split_paths(&path).map(from).collect()
    }

    /// The hint for a program named without a `/` that no directory of its
    /// lookup `PATH` shows, where the spawn was refused for want of
    /// permission: the directories of that `PATH` this user may not search,
    /// each once, if there are any. The lookup (`execvp`) goes on past them,
    /// and says "permission denied" when no other holds the program: a
    /// program that is not installed, not one that is not executable.
    fn unsearchable_path_hint(&self) -> Option<String> {
        let mut unsearchable: Vec<String> = Vec::new();
        for dir in self.path_dirs().into_iter().filter(|dir| cannot_enter(dir)) {
            let shown = format!("`{}`", dir.display());
            if !unsearchable.contains(&shown) {
                unsearchable.push(shown);
            }
        }
        (!unsearchable.is_empty())
            .then(|| format!(" (not found on PATH; this user may not search {})", unsearchable.join(", ")))
    }

    /// For a program named without a `/` that no directory of a `PATH`
    /// given with `env` holds: that `PATH`, which the user may take for the
    /// supervisor's, and, if it names a variable, that nothing expands it.
    fn given_path_hint(&self, named_by_path: bool, error: &io::Error) -> Option<String> {
        if named_by_path || error.kind() != io::ErrorKind::NotFound {
            return None;
        }
        let given = self.given_path()?.to_string_lossy();
        let unexpanded = if given.contains('$') { "; no shell runs to expand the `$` in it" } else { "" };
        Some(format!(" (not found on the PATH given with `env`: `{given}`{unexpanded})"))
    }

    fn spawn_failure(&self, error: &io::Error) -> ExitReason {
        let program = self.spec.parts.program.to_string_lossy();
        if let Some(dir) = self.spec.parts.current_dir.as_ref().filter(|dir| !dir.is_dir()) {
            return ExitReason::SpawnFailed(format!(
                "cannot run `{program}`: working directory {} does not exist or is not a directory",
                dir.display()
            ));
        }
        // A directory this user may not enter fails the spawn with
        // "permission denied" too, before the program is looked at: the
        // hints below would blame the program (not executable), which is
        // not at fault, and never name the directory.
        if error.kind() == io::ErrorKind::PermissionDenied
            && let Some(dir) = self.spec.parts.current_dir.as_ref().filter(|dir| cannot_enter(dir))
        {
            return ExitReason::SpawnFailed(format!(
                "cannot run `{program}`: working directory {} cannot be entered: {error}",
                dir.display()
            ));
        }
        let path = std::path::Path::new(&self.spec.parts.program);
        // A program named with a `/` is not looked up on PATH, and is found
        // from the working directory the process starts in.
        let named_by_path = path.components().count() > 1;
        let resolved = match &self.spec.parts.current_dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        };
        // What PATH found, where the spawn was refused for want of
        // permission, or found no file: a file that is there yet "not
        // found" names an interpreter that is missing.
        let found_on_path = (matches!(error.kind(), io::ErrorKind::PermissionDenied | io::ErrorKind::NotFound)
            && !named_by_path)
            .then(|| self.named_on_path())
            .flatten()
            // A directory is refused for want of permission, never "not found".
            .filter(|found| error.kind() != io::ErrorKind::NotFound || found.is_file())
            .map(|found| {
                let what = match (found.is_dir(), error.kind()) {
                    (true, _) => "a directory, not a program",
                    (false, io::ErrorKind::NotFound) => "a file: is the interpreter on its `#!` line installed?",
                    (false, _) => "not executable",
                };
                format!(" (`{}`, where PATH finds it, is {what})", found.display())
            });
        let given_path = self.given_path_hint(named_by_path, error);
        let unsearchable =
            (error.kind() == io::ErrorKind::PermissionDenied && !named_by_path && found_on_path.is_none())
                .then(|| self.unsearchable_path_hint())
                .flatten();
        let hint = match error.kind() {
            io::ErrorKind::PermissionDenied if names_a_directory(path, &resolved) => {
                " (it is a directory, not a program)"
            }
            io::ErrorKind::PermissionDenied | io::ErrorKind::NotFound if found_on_path.is_some() => {
                found_on_path.as_deref().unwrap_or_default()
            }
            // A file that exists yet is "not found" names an interpreter
            // that is missing.
            io::ErrorKind::NotFound if named_by_path && resolved.is_file() => {
                " (the file exists: is the interpreter on its `#!` line installed?)"
            }
            io::ErrorKind::NotFound if named_by_path => " (no such file)",
            io::ErrorKind::NotFound if given_path.is_some() => given_path.as_deref().unwrap_or_default(),
            io::ErrorKind::NotFound => " (is it installed and on PATH?)",
            io::ErrorKind::PermissionDenied if unsearchable.is_some() => unsearchable.as_deref().unwrap_or_default(),
            io::ErrorKind::PermissionDenied => " (is it executable?)",
            _ if error.raw_os_error() == Some(rustix::io::Errno::NOEXEC.raw_os_error()) => {
                " (not a program this system runs: does the script lack its `#!` line, e.g. `#!/bin/sh`?)"
            }
            _ => "",
        };
        ExitReason::SpawnFailed(format!("cannot run `{program}`: {error}{hint}"))
    }
}

/// A spawned process, its process group, and its captured output.
pub(crate) struct ProcessRun {
    child: Child,
    group: ProcessGroup,
    /// Read while the run is awaited (`wait`, `stop`); `None` when the output
    /// is not captured.
    capture: Option<Capture>,
    /// The exit codes that count as a success; `None`: only 0.
    success_codes: Option<Arc<[i32]>>,
    /// Called once the leader is reaped (see [`when_reaped`](Self::when_reaped)).
    on_reaped: Option<Box<dyn FnOnce() + Send>>,
}

impl ProcessRun {
    /// Has `hook` called once the leader is reaped, before the output is
    /// drained: the run's end comes only after that, up to half a second
    /// later if a process that left the group holds the pipe, and the
    /// leader's pid is no longer the run's from the reap on.
    pub(crate) fn when_reaped(&mut self, hook: impl FnOnce() + Send + 'static) {
        self.on_reaped = Some(Box::new(hook));
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the leader to exit, reading its output meanwhile, then kills
    /// what is left of its group and reads the output to its end.
    #[cfg(test)]
    pub(crate) async fn wait(&mut self) -> ExitReason {
        let status = self.wait_exit().await;
        self.finish(status, &CancellationToken::new()).await
    }

    /// Waits for the leader to exit, reading its output meanwhile; its exit
    /// status, for [`finish`](Self::finish). Cancel-safe: once it has
    /// returned, the run has ended, whatever else happens before `finish`.
    pub(crate) async fn wait_exit(&mut self) -> io::Result<ExitStatus> {
        pumping(&mut self.capture, leader_exit(&mut self.child, &self.group)).await
    }

    /// What [`wait_exit`](Self::wait_exit) waits on, apart: the leader's
    /// exit, and the reading of its output, which never ends. For a caller
    /// that waits on more: it polls the pump last, as a flood of short lines
    /// (`yes`) spends the task's whole budget at each poll of the pump, and
    /// what is polled after it (a notify socket, a probe, a watchdog's
    /// timer) waited for as long as the flood lasted.
    pub(crate) fn exit_and_pump(
        &mut self,
    ) -> (impl Future<Output = io::Result<ExitStatus>> + '_, impl Future<Output = Infallible> + '_) {
        (leader_exit(&mut self.child, &self.group), pump(&mut self.capture))
    }

    /// Sends `signal` to every process of the run's group.
    ///
    /// Fails with `ESRCH` once the run has ended (its group is then
    /// forgotten, so a later signal can never reach a process that reused
    /// its id) and with the error of `kill` otherwise.
    #[cfg_attr(not(test), allow(dead_code, reason = "for the engine's signal control"))]
    pub(crate) fn signal(&self, signal: RawSignal) -> io::Result<()> {
        self.group.signal(signal)
    }

    /// A handle that signals the run's group from elsewhere (the run itself
    /// is borrowed while it is awaited), with the guarantees of
    /// [`signal`](Self::signal).
    pub(crate) fn signaller(&self) -> GroupSignaller {
        GroupSignaller(self.group.leader.clone())
    }

    /// Sends `SIGCONT` to the group (a stopped process would not act on
    /// `signal` otherwise), then `signal`, waits up to `timeout` (or until
    /// `kill_now` fires) for the leader to exit, then kills the group.
    /// Returns how the run ended and whether it had to be killed.
    pub(crate) async fn stop(
        &mut self,
        signal: RawSignal,
        timeout: Duration,
        kill_now: &CancellationToken,
    ) -> (Option<ExitReason>, bool) {
        // `SIGCONT` first: sent after a `SIGTERM`, it reaches a process
        // that is already exiting. In a process with a second, idle runtime
        // (woken by every `SIGCHLD` as well, where it is caught), each stop
        // then took about 30 µs longer; with one runtime, either order
        // measured the same.
        // A stopped process resumes, then gets `signal`, as it would the
        // other way round. ESRCH only means the group is already empty.
        let signals: &[RawSignal] = if [RawSignal::CONT, RawSignal::KILL, RawSignal::STOP].contains(&signal) {
            &[signal]
        } else {
            &[RawSignal::CONT, signal]
        };
        let _ = self.group.signal_each(signals);
        let child = &mut self.child;
        // No grace period (a timeout of zero, a shutdown's time up): killed,
        // whether or not the signal was quicker than the timer.
        let no_grace = timeout.is_zero() || kill_now.is_cancelled();
        let graceful = pumping(&mut self.capture, async {
            if no_grace {
                return None;
            }
            tokio::select! {
                status = child.wait() => Some(status),
                () = clock::sleep_from(Instant::now(), timeout) => None,
                () = kill_now.cancelled() => None,
            }
        })
        .await;
        let forced = graceful.is_none();
        let status = match graceful {
            Some(status) => status,
            None => {
                let _ = self.group.signal(RawSignal::KILL);
                pumping(&mut self.capture, self.child.wait()).await
            }
        };
        (Some(self.finish(status, kill_now).await), forced)
    }

    /// Reads the output already written, without waiting for more (see
    /// [`Capture::read_available`]): once the leader has exited, what it
    /// wrote before, before what the rest of its group may write after.
    pub(crate) fn read_written_output(&mut self) {
        if let Some(capture) = &mut self.capture {
            capture.read_available(OUTPUT_READ_AT_EXIT);
        }
    }

    /// Ends the run whose leader exited with `status`: kills what is left
    /// of its group and reads the output to its end, for a while at most,
    /// and not once `kill_now` fires (a shutdown's time is up); what is
    /// still to come is then read in the background. How the run ended.
    pub(crate) async fn finish(&mut self, status: io::Result<ExitStatus>, kill_now: &CancellationToken) -> ExitReason {
        // The leader is reaped; stragglers of its group must not outlive it.
        // While any of them lives, the group's id cannot be reused; once none
        // does, it could only be reused by a new group after the pid counter
        // wrapped around, in the microseconds since the reap.
        if let Some(group) = self.group.kill() {
            strays::reap(group);
        }
        if let Some(hook) = self.on_reaped.take() {
            hook();
        }
        let drained = match &mut self.capture {
            Some(capture) => tokio::select! {
                biased;
                drained = tokio::time::timeout(DRAIN_TIMEOUT, capture.drain()) => drained.is_ok(),
                () = kill_now.cancelled() => false,
            },
            None => true,
        };
        if !drained && let Some(mut rest) = self.capture.take() {
            // What is written already, to the last byte (a shutdown whose
            // time is up cut the drain short at once).
            rest.read_available(OUTPUT_READ_AT_EXIT);
            rest.hand_out_unfinished();
            // Only a process that left the group can hold a pipe open this
            // long: read what it writes in the background, so that it is
            // neither blocked nor killed by a closed pipe.
            tokio::spawn(async move { rest.drain().await });
        }
        match status {
            Ok(status) => exit_reason(status, self.success_codes.as_deref()),
            Err(error) => ExitReason::Error(format!("could not wait for the process: {error}")),
        }
    }
}

/// Whether `program`, found at `resolved`, is a directory: named by its
/// path, or `.` or `..` (which every directory on PATH holds). Running one
/// fails with "permission denied", whose usual fix (make it executable)
/// would mislead.
pub(crate) fn names_a_directory(program: &std::path::Path, resolved: &std::path::Path) -> bool {
    use std::path::Component;
    let mut parts = program.components();
    let names_a_place = match (parts.next(), parts.next()) {
        (Some(Component::CurDir | Component::ParentDir), None) => true,
        (_, second) => second.is_some() || program.is_absolute(),
    };
    names_a_place && resolved.is_dir()
}

/// Whether this process's user may not search `dir` (enter it), as the
/// kernel judges it for a process spawned with it as its working directory.
fn cannot_enter(dir: &std::path::Path) -> bool {
    use rustix::fs::{Access, AtFlags, CWD, accessat};
    // Only a refusal counts: another error (a kernel without the call) says
    // nothing of the directory.
    matches!(accessat(CWD, dir, Access::EXEC_OK, AtFlags::EACCESS), Err(rustix::io::Errno::ACCESS))
}

/// The leader's exit status, once it has exited, with `group` told that it
/// is reaped; meanwhile the strays this process adopted are reaped.
async fn leader_exit(child: &mut Child, group: &ProcessGroup) -> io::Result<ExitStatus> {
    let status = match strays::adoptions() {
        None => child.wait().await,
        Some(mut adoptions) => loop {
            tokio::select! {
                biased;
                status = child.wait() => break status,
                Some(()) = adoptions.recv() => strays::reap_adopted(),
            }
        },
    };
    group.leader_reaped();
    status
}

/// Reads the captured output, if any, for as long as it is polled.
async fn pump(capture: &mut Option<Capture>) -> Infallible {
    match capture {
        Some(capture) => capture.pump().await,
        None => std::future::pending().await,
    }
}

/// Awaits `future` while reading the captured output, so that the child is
/// never blocked on a full pipe while the supervisor waits for it.
async fn pumping<F: Future>(capture: &mut Option<Capture>, future: F) -> F::Output {
    tokio::select! {
        biased;
        value = future => value,
        never = pump(capture) => match never {},
    }
}

/// A run dropped before its process was reaped: the unit's task is being
/// dropped, most likely with its runtime, and nobody will ever wait for the
/// process. Kill the group and reap the leader here, so that neither a
/// process nor a zombie is left behind.
impl Drop for ProcessRun {
    /// A run dropped before it finished (aborted, or dropped with its
    /// runtime): its group is killed, its leader waited for a while, and
    /// the members the supervisor was left (as PID 1 or a subreaper)
    /// reaped here, where nothing runs in the background any more.
    fn drop(&mut self) {
        let leader_runs = matches!(self.child.try_wait(), Ok(None));
        let killed = self.group.kill();
        reap_dropped(&mut self.child, leader_runs, killed);
    }
}

/// Reaps, on this thread, the leader `child` of a process group dropped
/// before it was reaped (a run, an exec probe's attempt), and the members
/// of its group `killed`, if killed: tokio reaps a dropped child only
/// while a runtime still runs, and a runtime dropped leaves zombies.
/// `leader_runs`: the leader still ran before its group was killed.
pub(crate) fn reap_dropped(child: &mut Child, leader_runs: bool, killed: Option<Pid>) {
    // Killed processes end within microseconds unless stuck in the
    // kernel; past the bound, tokio's orphan reaping takes the leader.
    let deadline = std::time::Instant::now() + REAP_ON_DROP_TIMEOUT;
    if leader_runs {
        // The group's id may not be usable (see `ProcessGroup::of`):
        // kill the leader by its pid as well.
        let _ = child.start_kill();
        wait_on_this_thread(deadline, || matches!(child.try_wait(), Ok(None)));
    }
    // Only once the leader is reaped: a wait on the group could take it.
    if let Some(group) = killed
        && !matches!(child.try_wait(), Ok(None))
    {
        wait_on_this_thread(deadline, || strays::reap_ended(group));
    }
}

/// Asks `pending` again, with pauses that double from 20 µs up to 5 ms,
/// until it says no or `deadline` has passed: for a drop, where nothing
/// can be awaited.
fn wait_on_this_thread(deadline: std::time::Instant, mut pending: impl FnMut() -> bool) {
    let mut pause = Duration::from_micros(20);
    while pending() && std::time::Instant::now() < deadline {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// How a process that ended with `status` ended; `success_codes` are the
/// codes that count as a success (`None`: only 0).
fn exit_reason(status: ExitStatus, success_codes: Option<&[i32]>) -> ExitReason {
    let success = |code| success_codes.map_or(code == 0, |codes| codes.contains(&code));
    match (status.code(), status.signal()) {
        (Some(0), _) if success(0) => ExitReason::Success,
        (Some(code), _) if code != 0 && success(code) => ExitReason::SuccessCode(code),
        (Some(code), _) => ExitReason::Code(code),
        (None, Some(signal)) => ExitReason::Signal(signal),
        (None, None) => ExitReason::Error(format!("ended with an unknown status: {status}")),
    }
}

/// The process group of one run. Dropping it kills the group, so that no
/// process outlives its unit even when the supervisor or its runtime is
/// dropped without a shutdown.
struct ProcessGroup {
    /// The group's id while it may be signalled; shared with the run's
    /// [`GroupSignaller`]s, and forgotten (under the lock, so that no signal
    /// is in flight) once the group is killed.
    leader: Arc<Mutex<Option<Leader>>>,
}

/// The leader of a run's process group, whose pid is the group's id.
#[derive(Debug, Clone, Copy)]
struct Leader {
    pid: Pid,
    /// Reaped: its pid may be another process's from then on, so that only
    /// the group, which outlives it while any member lives, is signalled.
    reaped: bool,
}

impl ProcessGroup {
    fn of(child: &Child) -> Self {
        // The child called setpgid(0, 0) before exec, so its pid is the
        // group's id. Pid 1 would address every process: never signal it.
        let leader = child.id().and_then(|pid| i32::try_from(pid).ok()).filter(|&pid| pid > 1).and_then(Pid::from_raw);
        if let Some(leader) = leader {
            strays::run_began(leader);
        }
        ProcessGroup { leader: Arc::new(Mutex::new(leader.map(|pid| Leader { pid, reaped: false }))) }
    }

    fn signal(&self, signal: RawSignal) -> io::Result<()> {
        signal_group(&self.leader, signal)
    }

    fn signal_each(&self, signals: &[RawSignal]) -> io::Result<()> {
        signal_group_each(&self.leader, signals)
    }

    /// The leader has been reaped: from now on only its group is signalled,
    /// until the group is killed, where a leader that had left it was
    /// signalled by its pid, which another process may hold by then.
    fn leader_reaped(&self) {
        if let Some(leader) = self.leader.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            leader.reaped = true;
        }
    }

    /// Kills the group and forgets it: after this the group id may be
    /// reused. Returns it if the group had members left to kill.
    fn kill(&mut self) -> Option<Pid> {
        let leader = self.leader.lock().unwrap_or_else(PoisonError::into_inner).take()?.pid;
        strays::run_ended(leader);
        // ESRCH only means the group is already empty.
        kill_process_group(leader, RawSignal::KILL).ok().map(|()| leader)
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

fn signal_group(leader: &Mutex<Option<Leader>>, signal: RawSignal) -> io::Result<()> {
    signal_group_each(leader, &[signal])
}

/// Sends each of `signals` in turn to the group of `leader`, then, if the
/// leader has left the group, to the leader: one look at its group serves
/// them all (each look is a system call, and a stop sends two signals).
/// The result is the last signal's.
fn signal_group_each(leader: &Mutex<Option<Leader>>, signals: &[RawSignal]) -> io::Result<()> {
    let leader = leader.lock().unwrap_or_else(PoisonError::into_inner);
    let Leader { pid: leader, reaped } =
        leader.ok_or_else(|| io::Error::from_raw_os_error(rustix::io::Errno::SRCH.raw_os_error()))?;
    let mut to_group = Ok(());
    for &signal in signals {
        to_group = kill_process_group(leader, signal);
    }
    // A leader that moved to another group (`setpgid`) is out of the
    // group's reach: it gets the signals by its pid, which no other process
    // can hold until it is reaped. Otherwise its stop would wait for ever.
    if !reaped && rustix::process::getpgid(Some(leader)).is_ok_and(|group| group != leader) {
        let mut to_leader = Ok(());
        for &signal in signals {
            to_leader = rustix::process::kill_process(leader, signal);
        }
        return to_group.or(to_leader).map_err(io::Error::from);
    }
    to_group.map_err(io::Error::from)
}

/// Signals the process group of one run from outside the run: see
/// [`ProcessRun::signaller`].
#[derive(Clone)]
pub(crate) struct GroupSignaller(Arc<Mutex<Option<Leader>>>);

impl GroupSignaller {
    /// Sends `signal` to every process of the group; `ESRCH` once the run
    /// has ended.
    pub(crate) fn signal(&self, signal: RawSignal) -> io::Result<()> {
        signal_group(&self.0, signal)
    }

    /// Whether the run's leader has been reaped (its pid may be another
    /// process's from then on).
    pub(crate) fn is_reaped(&self) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).is_none_or(|leader| leader.reaped)
    }
}

impl std::fmt::Debug for GroupSignaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let leader = *self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_tuple("GroupSignaller").field(&leader.map(|leader| leader.pid.as_raw_pid())).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper() -> ProcessBody {
        ProcessBody::new(DaemonSpec::new("sleeper", "sleep").arg("1000"))
    }

    #[tokio::test]
    async fn a_run_and_its_signaller_signal_the_group_until_the_run_ends() {
        let body = sleeper();
        let mut run = body.start(&SmolStr::new("sleeper")).expect("sleep starts");
        let signaller = run.signaller();
        run.signal(RawSignal::CONT).expect("the group is there");
        signaller.signal(RawSignal::TERM).expect("the group is there");
        assert_eq!(run.wait().await, ExitReason::Signal(RawSignal::TERM.as_raw()));
        // The group is forgotten once the run has ended.
        let error = signaller.signal(RawSignal::TERM).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(rustix::io::Errno::SRCH.raw_os_error()));
        assert_eq!(run.signal(RawSignal::TERM).unwrap_err().raw_os_error(), error.raw_os_error());
        assert!(format!("{signaller:?}").contains("None"));
    }

    /// A variable a run must not have is removed whether it comes from this
    /// process or from the spec; one it would not have is left alone, so
    /// that the spawn passes this process's environment as it is.
    #[tokio::test]
    async fn variables_a_run_must_not_have_are_removed_wherever_they_come_from() {
        let unit = SmolStr::new("env");
        // One of this process's own variables that `sh` does not set itself.
        let inherited = std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .find(|name| {
                name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !["PATH", "PWD", "OLDPWD", "SHLVL", "IFS", "PS1", "PS2", "PS4", "OPTIND", "_"]
                        .contains(&name.as_str())
            })
            .expect("the test process has an environment");
        let print = format!("echo ${{{inherited}-no inherited}} ${{SPEC_VAR-no SPEC_VAR}}");
        let spec = |script: &str| DaemonSpec::new("env", "sh").args(["-c", script]);
        let body = ProcessBody::new(spec(&print).env("SPEC_VAR", "set"));
        let command = body.command();
        assert!(body.would_inherit(&command, &inherited));
        assert!(body.would_inherit(&command, "SPEC_VAR"));
        assert!(!body.would_inherit(&command, "SUPERVISOR_TEST_NEVER_SET"));
        let removed = [(inherited.as_str(), None), ("SPEC_VAR", None), ("SUPERVISOR_TEST_NEVER_SET", None)];
        let mut run = body.start_with_env(&unit, &removed, None).expect("sh starts");
        assert_eq!(run.wait().await, ExitReason::Success);
        assert_eq!(body.tail(1), ["no inherited no SPEC_VAR"]);
        // Nothing to remove: the spawn keeps this process's environment.
        let absent = [("SUPERVISOR_TEST_NEVER_SET", None)];
        assert!(ProcessBody::new(spec(&print)).command_with(&absent).as_std().get_envs().next().is_none());
        let cleared = ProcessBody::new(spec(&print).env_clear());
        assert!(!cleared.would_inherit(&cleared.command(), &inherited));
    }

    /// Whether `signal` waits, blocked, in the pending set of process `pid`
    /// (`ShdPnd` in `/proc/PID/status`): sent to it, where a handler would
    /// leave no trace to look at.
    fn is_pending(pid: u32, signal: RawSignal) -> bool {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process is there");
        let line = status.lines().find_map(|line| line.strip_prefix("ShdPnd:")).expect("a ShdPnd line");
        let pending = u64::from_str_radix(line.trim(), 16).expect("a mask");
        pending & (1 << (signal.as_raw() - 1)) != 0
    }

    /// A leader that left its group gets the group's signals by its pid
    /// until it is reaped, and not after: its pid may be another process's
    /// by then. A reaped leader was signalled by its pid until its group was
    /// killed, while its last output was read.
    #[tokio::test]
    async fn a_leader_out_of_its_group_is_signalled_by_its_pid_until_it_is_reaped() {
        let moved = std::env::temp_dir().join(format!("supervisor-moved-{}-{}", std::process::id(), fastrand::u64(..)));
        // Blocks SIGUSR1 and SIGTERM, so that what is sent to it stays
        // pending, then joins another group of its session (see the
        // mover of the integration tests).
        let script = format!(
            "import os, signal, time\n\
             signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1, signal.SIGTERM])\n\
             r, w = os.pipe()\n\
             child = os.fork()\n\
             if child == 0:\n    os.setpgid(0, 0)\n    os.write(w, b'x')\n    time.sleep(100)\n\
             os.read(r, 1)\n\
             os.setpgid(0, child)\n\
             open({moved:?}, 'w').close()\n\
             time.sleep(100)\n",
            moved = moved.display().to_string(),
        );
        let body = ProcessBody::new(DaemonSpec::new("mover", "python3").args(["-c", &script]));
        let run = body.start(&SmolStr::new("mover")).expect("python3 starts");
        let leader = run.child.id().expect("a pid");
        let leader_pid = Pid::from_raw(i32::try_from(leader).unwrap()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !moved.exists() {
            assert!(std::time::Instant::now() < deadline, "the leader never left its group");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = run.signal(RawSignal::USR1);
        assert!(is_pending(leader, RawSignal::USR1), "signalled by its pid while it is not reaped");
        run.group.leader_reaped();
        let _ = run.signal(RawSignal::TERM);
        assert!(!is_pending(leader, RawSignal::TERM), "signalled by its pid once reaped");
        assert!(run.signaller().is_reaped());
        // The leader's new group, out of the run's reach, ends here.
        let new_group = rustix::process::getpgid(Some(leader_pid)).expect("the leader's group");
        kill_process_group(new_group, RawSignal::KILL).expect("the group is there");
        drop(run);
        let _ = std::fs::remove_file(&moved);
    }

    #[test]
    fn success_codes_map_exit_statuses() {
        let status = |code: i32| ExitStatus::from_raw(code << 8);
        assert_eq!(exit_reason(status(0), None), ExitReason::Success);
        assert_eq!(exit_reason(status(143), None), ExitReason::Code(143));
        let codes: &[i32] = &[0, 143];
        assert_eq!(exit_reason(status(0), Some(codes)), ExitReason::Success);
        assert_eq!(exit_reason(status(143), Some(codes)), ExitReason::SuccessCode(143));
        assert_eq!(exit_reason(status(1), Some(codes)), ExitReason::Code(1));
        assert_eq!(exit_reason(status(0), Some(&[143])), ExitReason::Code(0));
        assert_eq!(exit_reason(ExitStatus::from_raw(15), Some(&[143, 15])), ExitReason::Signal(15));
    }
}
