//! The systemd notify protocol for supervised processes: a per-run datagram
//! socket whose path a daemon gets as `$NOTIFY_SOCKET`, and the parsing of
//! the `sd_notify` assignments it sends there (`READY=1`, `WATCHDOG=1`,
//! `STATUS=...`).
//!
//! A program written for systemd's `Type=notify` runs unchanged:
//! `systemd-notify --ready` and every `sd_notify` library write plain
//! newline-separated `KEY=VALUE` assignments to the socket named by
//! `$NOTIFY_SOCKET`, which is all this module reads.
//!
//! # Caveats
//!
//! - Who may send: the socket lives in a directory of its own, created with
//!   mode 0700, so only the supervisor's user (and root) can reach it. On
//!   Linux each datagram also carries its sender's credentials, checked by
//!   the kernel (`SO_PASSCRED`): a datagram from another user than the
//!   supervisor's or root is ignored, even if the directory's mode were
//!   changed. Datagrams are not restricted to the run's process group: the
//!   sender is often short-lived (`systemd-notify` run from a script exits,
//!   and may be reaped, before its datagram is read, so looking its group up
//!   afterwards would lose a genuine `READY=1`), and `systemd-notify` reports
//!   its parent's pid rather than its own. A daemon that drops its
//!   privileges to another user therefore cannot notify.
//! - Elsewhere than on Linux only the directory's mode guards the socket.
//! - Ignored: `EXTEND_TIMEOUT_USEC`, `MAINPID`, `ERRNO`, `FDSTORE` and every
//!   other key, file descriptors sent along (the kernel closes them), values
//!   other than the documented ones (`READY=0`), datagrams larger than
//!   [`MAX_DATAGRAM`] bytes, empty ones and ones containing a NUL byte (as
//!   systemd does).
//! - A supervisor killed with `SIGKILL` leaves its sockets' directories
//!   behind (empty but for the socket file): under `$XDG_RUNTIME_DIR`
//!   (cleared at logout) or the temporary directory.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::UnixDatagram;

use crate::text::truncate_at_char;

/// The largest datagram read, as systemd's own limit (`PIPE_BUF`): larger
/// ones are ignored whole.
pub(crate) const MAX_DATAGRAM: usize = 4096;

/// The longest `STATUS=` text kept, in bytes; longer texts are cut at a
/// character boundary.
pub(crate) const MAX_STATUS: usize = 1024;

/// How long [`NotifySocket::recv`] pauses after an unexpected error of the
/// socket, so that a lasting error does not spin.
const ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The name of the socket inside its private directory.
const SOCKET_NAME: &str = "notify";

/// One meaningful assignment received from a daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Notification {
    /// `READY=1`: start-up is finished.
    Ready,
    /// `RELOADING=1`: the daemon is reloading its configuration; it sends
    /// `READY=1` again when done.
    Reloading,
    /// `STOPPING=1`: the daemon is shutting down.
    Stopping,
    /// `WATCHDOG=1`: a heartbeat.
    Watchdog,
    /// `WATCHDOG=trigger`: the daemon asks to be treated as hung, as if its
    /// watchdog had expired.
    WatchdogTrigger,
    /// `STATUS=...`: a free-form status text, lossily decoded as UTF-8 and
    /// cut to [`MAX_STATUS`] bytes; empty clears the status.
    Status(String),
}

/// The notify socket of one run of a daemon.
///
/// Bound before the process is spawned; its [`env`](Self::env) goes into
/// the process's environment. Dropping it removes the socket file and its
/// directory. See the module's caveats for who may send to it.
pub(crate) struct NotifySocket {
    socket: UnixDatagram,
    /// The directory private to this socket (mode 0700).
    dir: PathBuf,
    /// `dir` joined with [`SOCKET_NAME`].
    path: PathBuf,
    /// The current datagram, `buf[pos..len]` its assignments not returned
    /// yet. One byte more than [`MAX_DATAGRAM`], to tell an oversized
    /// datagram where the kernel does not report its real length.
    buf: Box<[u8]>,
    len: usize,
    pos: usize,
    /// The supervisor's effective user, the only one (with root) whose
    /// datagrams are read.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    uid: rustix::process::Uid,
}

impl NotifySocket {
    /// Creates a private directory (mode 0700, a unique name under
    /// `$XDG_RUNTIME_DIR` when it is set, absolute and usable, else under
    /// [`std::env::temp_dir`], else under `/tmp`) and binds a datagram socket
    /// in it.
    ///
    /// # Errors
    ///
    /// When no place works: each place tried and why it failed (for
    /// example a path longer than a socket address allows), so that the
    /// unit's `last_error` says where to look.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (the socket is registered with its reactor).
    pub(crate) fn bind() -> io::Result<NotifySocket> {
        Self::bind_in_first(candidate_dirs())
    }

    /// Binds in the first of `bases` that works.
    fn bind_in_first(bases: Vec<PathBuf>) -> io::Result<NotifySocket> {
        let mut tried = Vec::new();
        let mut kind = io::ErrorKind::NotFound;
        for base in bases {
            match Self::bind_in(&base) {
                Ok(socket) => return Ok(socket),
                Err(error) => {
                    kind = error.kind();
                    tried.push(format!("in {}: {error}", base.display()));
                }
            }
        }
        let tried = if tried.is_empty() {
            "no directory to make it in ($XDG_RUNTIME_DIR, $TMPDIR and /tmp are missing or relative)".to_owned()
        } else {
            tried.join("; ")
        };
        Err(io::Error::new(kind, tried))
    }

    /// Binds in a new private directory under `base`.
    fn bind_in(base: &Path) -> io::Result<NotifySocket> {
        let dir = create_private_dir(base)?;
        let path = dir.join(SOCKET_NAME);
        match bind_socket(&path) {
            Ok(socket) => Ok(NotifySocket {
                socket,
                dir,
                path,
                buf: vec![0; MAX_DATAGRAM + 1].into_boxed_slice(),
                len: 0,
                pos: 0,
                #[cfg(any(target_os = "linux", target_os = "android"))]
                uid: rustix::process::geteuid(),
            }),
            Err(error) => {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_dir(&dir);
                Err(error)
            }
        }
    }

    /// The socket's path: the value of the daemon's `$NOTIFY_SOCKET`.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The environment of a run that notifies through this socket, for
    /// [`ProcessBody::start_with_env`](crate::run::process::ProcessBody::start_with_env):
    /// `NOTIFY_SOCKET`, `WATCHDOG_USEC` when `watchdog` is set (its whole
    /// period in microseconds, as systemd sets it; the daemon is expected to
    /// send `WATCHDOG=1` about twice as often), and neither an inherited
    /// `WATCHDOG_USEC` nor `WATCHDOG_PID`.
    ///
    /// # Caveats
    ///
    /// `WATCHDOG_PID` is never set: the pid is known only once the process
    /// is spawned. `sd_watchdog_enabled` takes a missing `WATCHDOG_PID` as
    /// "meant for this process", so the daemon sees its watchdog; but a
    /// process it starts would see it too (systemd's `WATCHDOG_PID` tells the
    /// two apart). An inherited `WATCHDOG_PID` (the supervisor's, when it
    /// runs under systemd with a watchdog) is removed: with it the daemon
    /// would think its watchdog is meant for another process.
    pub(crate) fn env(&self, watchdog: Option<Duration>) -> [(&'static str, Option<OsString>); 3] {
        [
            ("NOTIFY_SOCKET", Some(self.path.clone().into_os_string())),
            ("WATCHDOG_USEC", watchdog.map(|period| watchdog_usec(period).to_string().into())),
            ("WATCHDOG_PID", None),
        ]
    }

    /// The environment of a run that does not notify: `NOTIFY_SOCKET`,
    /// `WATCHDOG_USEC` and `WATCHDOG_PID` removed, so that a daemon does not
    /// inherit the supervisor's own (when it runs under systemd) and notify
    /// systemd in its name.
    pub(crate) fn unset_env() -> [(&'static str, Option<OsString>); 3] {
        [("NOTIFY_SOCKET", None), ("WATCHDOG_USEC", None), ("WATCHDOG_PID", None)]
    }

    /// The next meaningful assignment: from the datagram last read if it
    /// had more than one, else from the next datagrams. Ignores garbage (see
    /// the module's caveats) and datagrams from other users; waits as long
    /// as nothing meaningful comes. Memory stays fixed whatever is sent: one
    /// datagram is held at a time, and the kernel bounds the socket's queue
    /// (a sender blocks, or fails with `EAGAIN`, when it is full).
    ///
    /// Cancel-safe: a datagram is either left in the socket or fully held.
    pub(crate) async fn recv(&mut self) -> Notification {
        loop {
            if let Some(notification) = next_notification(&self.buf[..self.len], &mut self.pos) {
                return notification;
            }
            (self.len, self.pos) = (0, 0);
            // Each read takes from the task's tokio budget: a flood of
            // garbage does not starve a `select!` that waits on this and on
            // a stop request or a timer.
            match self.receive().await {
                Ok(Some(len)) => self.len = len,
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(socket = %self.path.display(), %error, "notify socket: receive failed");
                    tokio::time::sleep(ERROR_PAUSE).await;
                }
            }
        }
    }

    /// Reads one datagram into `buf`: its length when it is acceptable
    /// (`None` when it is ignored). Cancel-safe.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    async fn receive(&mut self) -> io::Result<Option<usize>> {
        use std::mem::MaybeUninit;

        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};

        let uid = self.uid;
        let NotifySocket { socket, buf, .. } = &mut *self;
        let (bytes, sender) = socket
            .async_io(tokio::io::Interest::READABLE, || {
                let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
                let mut control = RecvAncillaryBuffer::new(&mut space);
                // TRUNC: `bytes` is the datagram's real length, even when
                // larger than `buf`. Descriptors sent along do not fit in
                // `space`: the kernel closes them (any that did would be
                // closed with `control`).
                let message = recvmsg(
                    &*socket,
                    &mut [io::IoSliceMut::new(buf)],
                    &mut control,
                    RecvFlags::TRUNC | RecvFlags::CMSG_CLOEXEC,
                )?;
                let sender = control.drain().find_map(|message| match message {
                    RecvAncillaryMessage::ScmCredentials(credentials) => Some(credentials.uid),
                    _ => None,
                });
                Ok((message.bytes, sender))
            })
            .await?;
        if !sender.is_some_and(|sender| sender == uid || sender.is_root()) {
            tracing::debug!(socket = %self.path.display(), "notify socket: a datagram not from the supervisor's user ignored");
            return Ok(None);
        }
        Ok(Some(bytes).filter(|&bytes| acceptable(&self.buf[..bytes.min(self.buf.len())])))
    }

    /// Reads one datagram into `buf`: its length when it is acceptable
    /// (`None` when it is ignored). Cancel-safe.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    async fn receive(&mut self) -> io::Result<Option<usize>> {
        let bytes = self.socket.recv(&mut self.buf).await?;
        Ok(Some(bytes).filter(|&bytes| acceptable(&self.buf[..bytes.min(self.buf.len())])))
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

impl std::fmt::Debug for NotifySocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifySocket").field("path", &self.path).finish_non_exhaustive()
    }
}

/// `WATCHDOG_USEC` for a watchdog of `period`: whole microseconds, at least 1
/// and below `u64::MAX` (`sd_watchdog_enabled` rejects 0 and `u64::MAX`,
/// systemd's "infinity", as invalid).
pub(crate) fn watchdog_usec(period: Duration) -> u64 {
    u64::try_from(period.as_micros()).unwrap_or(u64::MAX).clamp(1, u64::MAX - 1)
}

/// Where a private directory may be created, best first; only absolute
/// paths (`$NOTIFY_SOCKET` must be one).
fn candidate_dirs() -> Vec<PathBuf> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    let mut dirs: Vec<PathBuf> = Vec::with_capacity(3);
    for dir in [runtime, Some(std::env::temp_dir()), Some(PathBuf::from("/tmp"))].into_iter().flatten() {
        if dir.is_absolute() && dir.is_dir() && !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// Creates a new directory with a unique name under `base`, mode 0700 (set
/// explicitly: the umask only ever narrows it in between). `mkdir` never
/// follows or reuses what is already there, so the directory is the
/// supervisor's own.
fn create_private_dir(base: &Path) -> io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};

    let mut last_error = None;
    for _ in 0..8 {
        let dir = base.join(format!("supervisor-notify-{}-{:016x}", std::process::id(), fastrand::u64(..)));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                if let Err(error) = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)) {
                    let _ = std::fs::remove_dir(&dir);
                    return Err(error);
                }
                return Ok(dir);
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => last_error = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

/// Binds a non-blocking datagram socket at `path`, asking the kernel for
/// its senders' credentials before anyone can know the path.
fn bind_socket(path: &Path) -> io::Result<UnixDatagram> {
    let socket = std::os::unix::net::UnixDatagram::bind(path)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    rustix::net::sockopt::set_socket_passcred(&socket, true)?;
    socket.set_nonblocking(true)?;
    UnixDatagram::from_std(socket)
}

/// Whether a datagram is worth parsing: not empty, not oversized (the
/// buffer holds one byte more than [`MAX_DATAGRAM`] to tell), no NUL byte.
fn acceptable(datagram: &[u8]) -> bool {
    !datagram.is_empty() && datagram.len() <= MAX_DATAGRAM && !datagram.contains(&0)
}

/// The next meaningful assignment of `datagram` from byte `pos` on; moves
/// `pos` past it (to the end when there is none).
fn next_notification(datagram: &[u8], pos: &mut usize) -> Option<Notification> {
    while let Some(rest) = datagram.get(*pos..).filter(|rest| !rest.is_empty()) {
        let line = rest.split(|&byte| byte == b'\n').next().unwrap_or(rest);
        *pos = (*pos + line.len() + 1).min(datagram.len());
        if let Some(notification) = assignment(line) {
            return Some(notification);
        }
    }
    None
}

/// One `KEY=VALUE` line; `None` when it is not one or means nothing here.
fn assignment(line: &[u8]) -> Option<Notification> {
    let equals = line.iter().position(|&byte| byte == b'=')?;
    let (key, value) = (&line[..equals], &line[equals + 1..]);
    match (key, value) {
        (b"READY", b"1") => Some(Notification::Ready),
        (b"RELOADING", b"1") => Some(Notification::Reloading),
        (b"STOPPING", b"1") => Some(Notification::Stopping),
        (b"WATCHDOG", b"1") => Some(Notification::Watchdog),
        (b"WATCHDOG", b"trigger") => Some(Notification::WatchdogTrigger),
        (b"STATUS", text) => Some(Notification::Status(status_text(text))),
        _ => None,
    }
}

/// A `STATUS=` value as text: lossy UTF-8, cut to [`MAX_STATUS`] bytes at a
/// character boundary.
fn status_text(value: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(value).into_owned();
    truncate_at_char(&mut text, MAX_STATUS);
    text
}

#[cfg(test)]
mod tests {
    use smol_str::SmolStr;

    use super::*;

    /// Every notification of one datagram, as `recv` returns them one by one.
    fn parse(datagram: &[u8]) -> Vec<Notification> {
        if !acceptable(datagram) {
            return Vec::new();
        }
        let mut pos = 0;
        std::iter::from_fn(|| next_notification(datagram, &mut pos)).collect()
    }

    #[test]
    fn every_key_is_parsed() {
        use Notification::*;
        assert_eq!(parse(b"READY=1"), [Ready]);
        assert_eq!(parse(b"RELOADING=1"), [Reloading]);
        assert_eq!(parse(b"STOPPING=1"), [Stopping]);
        assert_eq!(parse(b"WATCHDOG=1"), [Watchdog]);
        assert_eq!(parse(b"WATCHDOG=trigger"), [WatchdogTrigger]);
        assert_eq!(parse(b"STATUS=serving 3 clients"), [Status("serving 3 clients".into())]);
        assert_eq!(parse(b"STATUS="), [Status(String::new())]);
        assert_eq!(parse(b"STATUS=a=b"), [Status("a=b".into())]);
    }

    #[test]
    fn ignored_keys_and_values_yield_nothing() {
        for datagram in [
            &b"EXTEND_TIMEOUT_USEC=5000000"[..],
            b"MAINPID=42",
            b"ERRNO=2",
            b"FDSTORE=1",
            b"READY=0",
            b"READY=1 ",
            b"ready=1",
            b" READY=1",
            b"WATCHDOG=0",
            b"WATCHDOG_USEC=1000",
            b"STOPPING=yes",
        ] {
            assert_eq!(parse(datagram), [], "{}", String::from_utf8_lossy(datagram));
        }
    }

    #[test]
    fn a_datagram_carries_several_assignments_in_order() {
        use Notification::*;
        let datagram = b"STATUS=up\nMAINPID=7\nREADY=1\n\nWATCHDOG=1\nREADY=1\n";
        assert_eq!(parse(datagram), [Status("up".into()), Ready, Watchdog, Ready]);
        assert_eq!(parse(b"\n\nREADY=1"), [Ready]);
    }

    #[test]
    fn garbage_is_ignored() {
        use Notification::*;
        assert_eq!(parse(b""), []);
        assert_eq!(parse(b"\n\n\n"), []);
        assert_eq!(parse(b"no equals sign"), []);
        assert_eq!(parse(b"="), []);
        assert_eq!(parse(b"=1"), []);
        assert_eq!(parse(b"\xff\xfe=\x80\nREADY=1"), [Ready]);
        // A NUL anywhere: the whole datagram is ignored, as systemd does.
        assert_eq!(parse(b"READY=1\0"), []);
        assert_eq!(parse(b"READY=1\n\0"), []);
        // Not UTF-8 in a status: kept lossily.
        assert_eq!(parse(b"STATUS=caf\xe9"), [Status("caf\u{fffd}".into())]);
    }

    #[test]
    fn oversized_datagrams_and_statuses_are_bounded() {
        // A datagram of exactly the limit is read; one byte more is ignored.
        let mut datagram = b"READY=1\nSTATUS=".to_vec();
        datagram.resize(MAX_DATAGRAM, b'x');
        let parsed = parse(&datagram);
        assert_eq!(parsed[0], Notification::Ready);
        assert_eq!(parsed[1], Notification::Status("x".repeat(MAX_STATUS)));
        datagram.push(b'x');
        assert_eq!(parse(&datagram), []);
        // A status is cut at a character boundary.
        let mut status = b"STATUS=a".to_vec();
        status.extend("é".repeat(MAX_STATUS).as_bytes());
        let [Notification::Status(text)] = &parse(&status)[..] else { panic!("one status") };
        assert_eq!(text.len(), MAX_STATUS - 1);
        assert!(text.starts_with('a') && text.ends_with('é'));
        // Lossy decoding can only lengthen a text: it is cut afterwards.
        let mut invalid = b"STATUS=".to_vec();
        invalid.extend(std::iter::repeat_n(0xff, 2000));
        let [Notification::Status(text)] = &parse(&invalid)[..] else { panic!("one status") };
        assert!(text.len() <= MAX_STATUS && text.chars().all(|c| c == '\u{fffd}'));
    }

    #[test]
    fn watchdog_usec_is_whole_microseconds_and_never_zero() {
        assert_eq!(watchdog_usec(Duration::from_secs(30)), 30_000_000);
        assert_eq!(watchdog_usec(Duration::from_nanos(1500)), 1);
        assert_eq!(watchdog_usec(Duration::ZERO), 1);
        assert_eq!(watchdog_usec(Duration::MAX), u64::MAX - 1);
        assert_eq!(watchdog_usec(Duration::from_micros(u64::MAX)), u64::MAX - 1);
    }

    // Sockets and real processes.

    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    use std::sync::Arc;

    use crate::observe::event::ExitReason;
    use crate::run::process::ProcessBody;
    use crate::spec::daemon::DaemonSpec;

    const PATIENCE: Duration = Duration::from_secs(20);

    /// The next notification, failing the test if none comes soon.
    async fn next(socket: &mut NotifySocket) -> Notification {
        tokio::time::timeout(PATIENCE, socket.recv()).await.expect("a notification in time")
    }

    /// `systemd-notify ARGS` where it is installed, else python3 sending
    /// `raw` to `$NOTIFY_SOCKET` (CI's machine may lack systemd).
    fn notifier(socket: &NotifySocket, args: &[&str], raw: &str) -> tokio::process::Command {
        let installed = ["/usr/bin/systemd-notify", "/bin/systemd-notify"].into_iter().find(|p| Path::new(p).exists());
        let mut command = match installed {
            Some(program) => {
                let mut command = tokio::process::Command::new(program);
                command.args(args);
                command
            }
            None => {
                let mut command = tokio::process::Command::new("python3");
                command.args(["-c", PYTHON_SEND, raw]);
                command
            }
        };
        command.env("NOTIFY_SOCKET", socket.path());
        command
    }

    /// Sends `sys.argv[1]` to `$NOTIFY_SOCKET`, as `sd_notify` does.
    const PYTHON_SEND: &str = "import os, socket, sys\n\
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
        s.sendto(sys.argv[1].encode(), os.environ['NOTIFY_SOCKET'])\n";

    /// Runs `command` while `socket` is read: `systemd-notify` waits until
    /// its datagrams are read (`BARRIER=1`, a descriptor the reader must
    /// close), so it succeeds only if the descriptor is closed. Returns the
    /// `count` notifications read.
    async fn notify(
        socket: &mut NotifySocket,
        mut command: tokio::process::Command,
        count: usize,
    ) -> Vec<Notification> {
        let mut child = command.spawn().expect("the notifier starts");
        let mut received = Vec::new();
        for _ in 0..count {
            received.push(next(socket).await);
        }
        // Read on, ignoring the barrier, until the notifier is done.
        let status = tokio::time::timeout(PATIENCE, async {
            tokio::select! {
                status = child.wait() => status,
                notification = socket.recv() => panic!("more than expected: {notification:?}"),
            }
        });
        let status = status.await.expect("the notifier ends").expect("the notifier is waited for");
        assert!(status.success(), "the notifier failed: {status}");
        received
    }

    /// A sender connected to `socket`.
    fn sender(socket: &NotifySocket) -> std::os::unix::net::UnixDatagram {
        let sender = std::os::unix::net::UnixDatagram::unbound().expect("a socket");
        sender.connect(socket.path()).expect("the notify socket accepts");
        sender
    }

    /// No place works: the error names each place tried and why, not only
    /// the last one's reason.
    #[tokio::test]
    async fn an_error_names_every_place_tried() {
        let scratch = std::env::temp_dir().join(format!("notify-places-{}", std::process::id()));
        let too_long = scratch.join("d".repeat(120));
        std::fs::create_dir_all(&too_long).expect("a deep directory");
        let missing = scratch.join("missing");
        let error = NotifySocket::bind_in_first(vec![missing.clone(), too_long.clone()]).map(drop).unwrap_err();
        let message = error.to_string();
        let _ = std::fs::remove_dir_all(&scratch);
        assert!(message.contains(&format!("in {}: ", missing.display())), "{message}");
        assert!(message.contains(&format!("in {}: ", too_long.display())), "{message}");
        let none = NotifySocket::bind_in_first(Vec::new()).map(drop).unwrap_err();
        assert!(none.to_string().contains("no directory to make it in"), "{none}");
    }

    #[tokio::test]
    async fn the_socket_lives_in_a_private_directory_removed_on_drop() {
        let socket = NotifySocket::bind().expect("bind");
        let path = socket.path().to_owned();
        let dir = path.parent().expect("a directory").to_owned();
        assert!(path.is_absolute(), "{}", path.display());
        assert!(candidate_dirs().iter().any(|base| dir.parent() == Some(base)), "{}", dir.display());
        let metadata = std::fs::metadata(&dir).expect("the directory exists");
        assert!(metadata.is_dir());
        assert_eq!(metadata.permissions().mode() & 0o7777, 0o700);
        assert_eq!(rustix::fs::stat(&dir).expect("stat").st_uid, rustix::process::geteuid().as_raw());
        assert!(std::fs::symlink_metadata(&path).expect("the socket exists").file_type().is_socket());
        let other = NotifySocket::bind().expect("a second socket");
        assert_ne!(other.path().parent(), Some(dir.as_path()), "each run has its own directory");
        assert!(format!("{socket:?}").contains(&*path.to_string_lossy()));
        drop(socket);
        assert!(!path.exists() && !dir.exists(), "{} is left behind", dir.display());
        assert!(other.path().exists());
    }

    #[tokio::test]
    async fn systemd_notify_ready_is_received() {
        let mut socket = NotifySocket::bind().expect("bind");
        let command = notifier(&socket, &["--ready"], "READY=1");
        assert_eq!(notify(&mut socket, command, 1).await, [Notification::Ready]);
    }

    #[tokio::test]
    async fn systemd_notify_status_is_received_with_ready_in_one_datagram() {
        let mut socket = NotifySocket::bind().expect("bind");
        let command = notifier(&socket, &["--status=serving 3 clients"], "STATUS=serving 3 clients");
        assert_eq!(notify(&mut socket, command, 1).await, [Notification::Status("serving 3 clients".into())]);
        let command = notifier(&socket, &["--ready", "--status=up"], "READY=1\nSTATUS=up");
        let mut both = notify(&mut socket, command, 2).await;
        both.sort_by_key(|notification| matches!(notification, Notification::Status(_)));
        assert_eq!(both, [Notification::Ready, Notification::Status("up".into())]);
    }

    /// A daemon started with the socket's environment sees `NOTIFY_SOCKET`
    /// and `WATCHDOG_USEC`, not `WATCHDOG_PID` (even one its spec sets), and
    /// notifies; without a watchdog it sees no `WATCHDOG_USEC`.
    #[tokio::test]
    async fn a_daemon_started_with_the_env_notifies() {
        const SCRIPT: &str = "import os, socket\n\
            e = os.environ.get\n\
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
            s.sendto(f'STATUS=usec={e(\"WATCHDOG_USEC\")} pid={e(\"WATCHDOG_PID\")}\\nREADY=1'.encode(), e('NOTIFY_SOCKET'))\n";
        let unit = SmolStr::new("notifier");
        let spec = DaemonSpec::new("notifier", "python3").args(["-c", SCRIPT]).env("WATCHDOG_PID", "1");
        let body = ProcessBody::new(spec);
        for (watchdog, usec) in [(Some(Duration::from_secs(30)), "30000000"), (None, "None")] {
            let mut socket = NotifySocket::bind().expect("bind");
            let mut run = body.start_with_env(&unit, &socket.env(watchdog), None).expect("python3 starts");
            assert_eq!(next(&mut socket).await, Notification::Status(format!("usec={usec} pid=None")));
            assert_eq!(next(&mut socket).await, Notification::Ready);
            assert_eq!(run.wait().await, ExitReason::Success);
        }
    }

    #[tokio::test]
    async fn unset_env_removes_an_inherited_notify_socket() {
        let unit = SmolStr::new("quiet");
        let script =
            "import os; print([os.environ.get(k) for k in ('NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID')])";
        let spec = DaemonSpec::new("quiet", "python3")
            .args(["-c", script])
            .env("NOTIFY_SOCKET", "/run/systemd/notify")
            .env("WATCHDOG_USEC", "1000")
            .env("WATCHDOG_PID", "1");
        let body = ProcessBody::new(spec);
        let mut run = body.start_with_env(&unit, &NotifySocket::unset_env(), None).expect("python3 starts");
        assert_eq!(run.wait().await, ExitReason::Success);
        assert_eq!(body.tail(10), ["[None, None, None]"]);
        // `start` leaves the spec's environment alone.
        let mut run = body.start(&unit).expect("python3 starts");
        assert_eq!(run.wait().await, ExitReason::Success);
        assert_eq!(body.tail(1), ["['/run/systemd/notify', '1000', '1']"]);
    }

    #[tokio::test]
    async fn garbage_datagrams_are_ignored_and_assignments_kept_across_calls() {
        let mut socket = NotifySocket::bind().expect("bind");
        let sender = sender(&socket);
        // From a thread: the socket's queue is short (10 datagrams by
        // default), a blocking sender waits for it to be read.
        let sending = std::thread::spawn(move || {
            for garbage in [
                &b""[..],
                b"\n",
                b"READY=1\0",
                b"\xff\xfe\xfd",
                b"no assignment here",
                b"EXTEND_TIMEOUT_USEC=1000000\nMAINPID=1",
                &[b'x'; MAX_DATAGRAM + 1],
                &[b'\n'; 64 * 1024],
            ] {
                sender.send(garbage).expect("send");
            }
            sender.send(b"WATCHDOG=1\nSTATUS=a\nSTOPPING=1").expect("send");
            sender.send(b"WATCHDOG=trigger\nRELOADING=1").expect("send");
            sender
        });
        assert_eq!(next(&mut socket).await, Notification::Watchdog);
        assert_eq!(next(&mut socket).await, Notification::Status("a".into()));
        assert_eq!(next(&mut socket).await, Notification::Stopping);
        assert_eq!(next(&mut socket).await, Notification::WatchdogTrigger);
        let sender = sending.join().expect("the sender thread");
        // The rest of a datagram is kept; a call cancelled while waiting
        // loses nothing.
        let soon = Duration::from_millis(20);
        assert_eq!(tokio::time::timeout(soon, socket.recv()).await.ok(), Some(Notification::Reloading));
        assert!(tokio::time::timeout(soon, socket.recv()).await.is_err());
        sender.send(b"READY=1\nREADY=1").expect("send");
        assert_eq!(next(&mut socket).await, Notification::Ready);
        assert_eq!(next(&mut socket).await, Notification::Ready);
    }

    #[tokio::test]
    async fn a_flood_costs_no_memory_and_ready_still_gets_through() {
        const FLOOD: usize = 100_000;
        let mut socket = NotifySocket::bind().expect("bind");
        let sender = sender(&socket);
        let flooding = std::thread::spawn(move || {
            let garbage = vec![0xffu8; 1024];
            let oversized = vec![b'x'; 2 * MAX_DATAGRAM];
            for i in 0..FLOOD {
                // Blocks whenever the socket's queue is full: the kernel
                // bounds it, not the supervisor.
                let datagram: &[u8] = match i % 4 {
                    0 => &garbage,
                    1 => &oversized,
                    2 => b"READY=1\0",
                    _ => b"UNKNOWN=1\nno equals sign",
                };
                sender.send(datagram).expect("send");
            }
            sender.send(b"READY=1").expect("send");
        });
        let started = std::time::Instant::now();
        let first = tokio::time::timeout(Duration::from_secs(120), socket.recv()).await.expect("READY=1 in time");
        assert_eq!(first, Notification::Ready);
        flooding.join().expect("the sender thread");
        // Over 200 MB went through the socket; what is held is one buffer of
        // a fixed size (the process's RSS is shared with the tests running
        // beside this one, so it proves nothing here).
        assert_eq!(socket.buf.len(), MAX_DATAGRAM + 1);
        tracing::debug!(elapsed = ?started.elapsed(), "flood of {FLOOD} datagrams read");
    }

    #[tokio::test]
    async fn a_flood_does_not_starve_its_task() {
        let mut socket = NotifySocket::bind().expect("bind");
        let sender = sender(&socket);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flooding = std::thread::spawn({
            let stop = stop.clone();
            move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = sender.send(b"garbage");
                }
            }
        });
        // A timer in the same `select!` as `recv` fires although datagrams
        // never stop coming.
        let woke = tokio::select! {
            notification = socket.recv() => panic!("nothing meaningful was sent: {notification:?}"),
            () = tokio::time::sleep(Duration::from_millis(100)) => true,
        };
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(woke);
        drop(socket);
        flooding.join().expect("the sender thread");
    }

    /// Root may put any credentials on a datagram: one claiming another user
    /// is ignored like a datagram really sent by that user.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[tokio::test]
    async fn datagrams_from_another_user_are_ignored() {
        use std::mem::MaybeUninit;

        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, UCred, sendmsg};
        use rustix::process::{Uid, getgid, getpid};

        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: only root can send another user's credentials");
            return;
        }
        let mut socket = NotifySocket::bind().expect("bind");
        let sender = sender(&socket);
        let send_as = |uid: Uid, datagram: &[u8]| {
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            assert!(control.push(SendAncillaryMessage::ScmCredentials(UCred { pid: getpid(), uid, gid: getgid() })));
            sendmsg(&sender, &[io::IoSlice::new(datagram)], &mut control, SendFlags::empty()).expect("sendmsg");
        };
        send_as(Uid::from_raw(65534), b"READY=1");
        send_as(Uid::ROOT, b"STATUS=from root");
        assert_eq!(next(&mut socket).await, Notification::Status("from root".into()));
    }
}
