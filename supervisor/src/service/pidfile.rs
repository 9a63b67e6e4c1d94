//! An optional PID file ([`PidFile`]): one running instance per file.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustix::fs::{FlockOperation, Mode, OFlags, flock};

use crate::extensions::ShutdownHook;
use crate::text::truncate_at_char;
use crate::{Error, SupervisorBuilder};

/// How often `create` goes round when another process changes the file under
/// it at the same moment, or holds its lock without naming a live process.
const ATTEMPTS: u32 = 10;
/// The most of an existing file that is read: a PID and a newline, with room
/// to spare. A larger file names no PID.
const MAX_CONTENTS: usize = 64;

/// A PID file that holds this process's ID, locked for as long as the value
/// lives, and removed when it is dropped.
///
/// The file is never read and then written: the PID is written to a locked
/// file beside it, which is then linked into place, an atomic step that fails
/// if the file exists. An existing file is then judged by one rule:
///
/// - it is **stale**, and is replaced (atomically, while holding its lock),
///   when no process holds its lock and it does not name a live process
///   other than this one (it names a dead process, this one, or nothing
///   readable: a process that died, or a container's previous run with the
///   same PID, left it behind);
/// - otherwise it is **held**: by the process that holds its lock, or, when
///   nobody holds it, by the live process it names (written by a program
///   that does not lock). Then `create` fails: with
///   [`Error::AlreadyRunning`] naming the live process the file names, or,
///   when a process holds the lock of a file that names no live process
///   (another instance in the middle of replacing a stale file, say), with
///   an [`Error::Io`] that says so once that has lasted about half a second.
///
/// Only a regular file is ever read or replaced: a FIFO, a device, a socket,
/// a directory or a symbolic link at the path is refused with an
/// [`Error::Io`] at once (it is opened without blocking and without
/// following a link, and never read more than a few bytes of), and left as
/// it is.
///
/// With [`SupervisorBuilder::pid_file`] the supervisor creates the file in
/// `build()` and removes it at the end of its shutdown. With a `supervise!`
/// manifest, create it yourself before `start()` and keep it until the
/// shutdown report is in.
///
/// # Caveats
///
/// The lock is an advisory `flock`: it protects against other instances that
/// use a `PidFile`, and a stale file is told apart by its lock, not only by
/// its PID, which the system may have given to an unrelated process since.
/// Keep the file on a local file system (such as `/run`).
///
/// The file is written beside its place, then linked in: the process must
/// be allowed to create files in its directory. A PID file made for it in
/// a directory it may not write in (an init script's `install -o app
/// /dev/null /var/run/app.pid`) is not enough; `create` fails, naming the
/// directory.
///
/// # Examples
///
/// ```
/// use supervisor::{Error, PidFile};
///
/// let path = std::env::temp_dir().join(format!("pidfile-doc-{}.pid", std::process::id()));
/// let first = PidFile::create(&path)?;
/// assert_eq!(std::fs::read_to_string(&path)?.trim(), std::process::id().to_string());
/// assert!(matches!(PidFile::create(&path), Err(Error::AlreadyRunning { .. })));
/// drop(first);
/// assert!(!path.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PidFile {
    path: PathBuf,
    /// `path` made absolute as the file was created: a relative path would
    /// name another file, or none, once the process has changed its working
    /// directory, and the file would be left behind with this process's ID.
    absolute: PathBuf,
    /// Open and locked for as long as the value lives.
    file: File,
}

/// Who holds an existing PID file.
enum Holder {
    /// A live process it names (locked, or unlocked but naming it).
    Running(u32),
    /// Locked by a process, but naming no live process: `Some` dead PID, or
    /// `None` for contents that are not a PID.
    Locked(Option<u32>),
    /// Nobody: the file is stale; it is open and locked here until the
    /// value is dropped.
    Stale(File),
    /// The file went away or was replaced while it was looked at.
    Changed,
}

impl PidFile {
    /// Creates the PID file at `path`, containing this process's ID, and
    /// locks it; see [`PidFile`] for when an existing file is replaced.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::PidFile;
    ///
    /// let path = std::env::temp_dir().join(format!("create-doc-{}.pid", std::process::id()));
    /// // A file left by a process that died is replaced.
    /// std::fs::write(&path, "4194304\n")?;
    /// let pid_file = PidFile::create(&path)?;
    /// assert_eq!(std::fs::read_to_string(&path)?, format!("{}\n", std::process::id()));
    /// # drop(pid_file);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyRunning`] when another live process holds the file;
    /// [`Error::Io`] when it cannot be written, when something other than a
    /// regular file is at `path`, or when a process holds its lock but it
    /// names no live process.
    pub fn create(path: impl AsRef<Path>) -> Result<PidFile, Error> {
        let path = path.as_ref();
        let pid = std::process::id();
        let io_error = |what: &str, source: io::Error| Error::Io {
            context: format!("PID file {}: {what}", path.display()),
            source,
        };
        // As given when it cannot be made absolute (an empty path, a working
        // directory that is gone): what follows fails or works as it would.
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let temp = temp_path(path, pid);
        let file = create_locked(&temp, pid).map_err(|failed| match failed {
            // The file is made beside `path` and linked into place: an
            // existing PID file that may be written is no help when its
            // directory may not be, and the message must say which.
            Unwritten::NotCreated(source) => {
                let dir = temp.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
                let what = format!(
                    "cannot write it: cannot create a file in {}, where it is written before it takes its place",
                    dir.display()
                );
                io_error(&what, source)
            }
            Unwritten::NotWritten(source) => io_error("cannot write it", source),
        })?;
        let placed = place(path, &temp);
        // The temporary name is only a way in; whatever happened, it goes.
        let _ = fs::remove_file(&temp);
        match placed {
            Ok(()) => Ok(PidFile { path: path.to_owned(), absolute, file }),
            Err(Placed::Running(holder)) => Err(Error::AlreadyRunning { path: path.to_owned(), pid: holder }),
            Err(Placed::Locked(named)) => {
                let named = match named {
                    Some(pid) => format!("it names process {pid}, which is not running"),
                    None => "it names no process".to_owned(),
                };
                Err(Error::Io {
                    context: format!("PID file {} is locked by another process", path.display()),
                    source: io::Error::new(
                        io::ErrorKind::ResourceBusy,
                        format!(
                            "{named}; another instance may be replacing it; try again, or find the holder with `fuser {}`",
                            path.display()
                        ),
                    ),
                })
            }
            Err(Placed::NotRegular(what)) => Err(Error::Io {
                context: format!("PID file {} is {what}", path.display()),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a regular file; remove it or choose another PID file",
                ),
            }),
            Err(Placed::Io(what, source)) => Err(io_error(what, source)),
        }
    }

    /// Where the file is.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::PidFile;
    ///
    /// let path = std::env::temp_dir().join(format!("path-doc-{}.pid", std::process::id()));
    /// let pid_file = PidFile::create(&path)?;
    /// assert_eq!(pid_file.path(), path);
    /// # Ok::<(), supervisor::Error>(())
    /// ```
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `path` still names this very file (not a replacement).
    fn is_in_place(&self) -> bool {
        match (fs::symlink_metadata(&self.absolute), self.file.metadata()) {
            (Ok(on_disk), Ok(ours)) => same_file(&on_disk, &ours),
            _ => false,
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Removed while still locked, so that no other instance's file is
        // ever removed by mistake.
        if self.is_in_place()
            && let Err(error) = fs::remove_file(&self.absolute)
        {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove the PID file");
        }
    }
}

impl fmt::Debug for PidFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PidFile").field("path", &self.path).field("in_place", &self.is_in_place()).finish()
    }
}

enum Placed {
    Running(u32),
    Locked(Option<u32>),
    NotRegular(&'static str),
    Io(&'static str, io::Error),
}

/// Puts the locked file at `temp` in place at `path`.
fn place(path: &Path, temp: &Path) -> Result<(), Placed> {
    let mut last = Placed::Io("cannot take it over", io::Error::other("the file kept changing"));
    let mut pause = Duration::from_millis(1);
    for _ in 0..ATTEMPTS {
        // Fails if `path` exists: the exclusive creation.
        match fs::hard_link(temp, path) {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(Placed::Io("cannot create it", error)),
        }
        match inspect(path) {
            Ok(Holder::Running(pid)) => return Err(Placed::Running(pid)),
            Ok(Holder::Stale(stale)) => {
                // The stale file stays locked until it has been replaced, so
                // no other instance can replace it meanwhile; the rename
                // replaces it atomically.
                tracing::info!(path = %path.display(), "replacing a stale PID file");
                let renamed = fs::rename(temp, path);
                drop(stale);
                return renamed.map_err(|error| Placed::Io("cannot replace a stale file", error));
            }
            Ok(Holder::Locked(named)) => {
                // Most likely another instance replacing a stale file: its
                // own file is about to be in place. Look again shortly.
                last = Placed::Locked(named);
                std::thread::sleep(pause);
                pause = pause.saturating_mul(2);
            }
            Ok(Holder::Changed) => {}
            Err(Inspected::NotRegular(what)) => return Err(Placed::NotRegular(what)),
            Err(Inspected::Io(error)) => last = Placed::Io("cannot take it over", error),
        }
    }
    Err(last)
}

enum Inspected {
    NotRegular(&'static str),
    Io(io::Error),
}

impl From<io::Error> for Inspected {
    fn from(error: io::Error) -> Self {
        Inspected::Io(error)
    }
}

/// Looks at an existing PID file: opened without blocking (a FIFO would
/// block) and without following a link, only a regular file, and never more
/// than `MAX_CONTENTS` bytes of it.
fn inspect(path: &Path) -> Result<Holder, Inspected> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
    let file = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(rustix::io::Errno::NOENT) => return Ok(Holder::Changed),
        // What O_NOFOLLOW answers for a symbolic link (EMLINK on FreeBSD).
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::MLINK) => {
            return Err(Inspected::NotRegular("a symbolic link"));
        }
        Err(errno) => return Err(io::Error::from(errno).into()),
    };
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(Inspected::NotRegular(describe(&metadata.file_type())));
    }
    let held_elsewhere = match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => false,
        Err(rustix::io::Errno::WOULDBLOCK) => true,
        Err(errno) => return Err(io::Error::from(errno).into()),
    };
    let mut contents = Vec::with_capacity(MAX_CONTENTS);
    (&file).take(MAX_CONTENTS as u64 + 1).read_to_end(&mut contents)?;
    let pid = if contents.len() > MAX_CONTENTS {
        None
    } else {
        std::str::from_utf8(&contents).ok().and_then(|text| text.trim().parse::<u32>().ok())
    };
    let live_pid = pid.filter(|&pid| is_alive(pid));
    if held_elsewhere {
        return Ok(match live_pid {
            Some(pid) => Holder::Running(pid),
            None => Holder::Locked(pid),
        });
    }
    match fs::symlink_metadata(path) {
        Ok(on_disk) if same_file(&on_disk, &metadata) => {}
        Ok(_) => return Ok(Holder::Changed),
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Holder::Changed),
        Err(error) => return Err(error.into()),
    }
    // Locked here, so nobody else held it; but naming a live process that is
    // not this one: written by something that does not lock. Refuse rather
    // than guess.
    if let Some(pid) = live_pid
        && pid != std::process::id()
    {
        return Ok(Holder::Running(pid));
    }
    Ok(Holder::Stale(file))
}

/// What a file that is not a regular one is, for messages.
fn describe(file_type: &fs::FileType) -> &'static str {
    if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_dir() {
        "a directory"
    } else {
        "something other than a regular file"
    }
}

/// Why the locked file was not made.
enum Unwritten {
    /// It could not be created (its directory may not be written in).
    NotCreated(io::Error),
    /// It was created, but not locked or written (a full disk, a quota).
    NotWritten(io::Error),
}

fn create_locked(temp: &Path, pid: u32) -> Result<File, Unwritten> {
    let open = || OpenOptions::new().read(true).write(true).create_new(true).mode(0o644).open(temp);
    let opened = match open() {
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            // Left by an earlier process that had our PID and crashed here.
            fs::remove_file(temp).and_then(|()| open())
        }
        other => other,
    };
    let mut file = opened.map_err(Unwritten::NotCreated)?;
    let written = (|| {
        flock(&file, FlockOperation::NonBlockingLockExclusive)?;
        writeln!(file, "{pid}")?;
        file.sync_all()
    })();
    if let Err(error) = written {
        // Made here, under a name with this process's pid that nobody else
        // would remove: it goes with the failure (a full disk, a quota).
        let _ = fs::remove_file(temp);
        return Err(Unwritten::NotWritten(error));
    }
    Ok(file)
}

/// A temporary name beside `path`, unique to this process and this call:
/// `.{name}.{pid}.{n}.tmp`, `name` cut short so that it fits in a file
/// name (255 bytes on Linux), as `path`'s own does.
fn temp_path(path: &Path, pid: u32) -> PathBuf {
    const NAME_MAX: usize = 255;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let suffix = format!(".{pid}.{}.tmp", NEXT.fetch_add(1, Ordering::Relaxed));
    let mut name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let room = NAME_MAX - 1 - suffix.len();
    truncate_at_char(&mut name, room);
    path.with_file_name(format!(".{name}{suffix}"))
}

fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

fn is_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else {
        return false;
    };
    // EPERM means it exists but belongs to someone else.
    !matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH))
}

/// The supervisor's PID file, removed at the end of its shutdown (or when
/// the supervisor is dropped).
#[derive(Debug)]
struct Held(Mutex<Option<PidFile>>);

impl ShutdownHook for Held {
    fn end(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.end_without_runtime();
        Box::pin(std::future::ready(()))
    }

    fn end_without_runtime(&self) {
        drop(self.0.lock().unwrap_or_else(PoisonError::into_inner).take());
    }
}

impl SupervisorBuilder {
    /// Writes this process's ID to `path` when the supervisor is built, and
    /// removes it at the end of its shutdown. See [`PidFile`].
    ///
    /// `build()` then fails as [`PidFile::create`] does: with
    /// [`Error::AlreadyRunning`] when another live instance holds the file,
    /// with [`Error::Io`] when it cannot be written or something other than
    /// a regular file is at `path`. A stale file (nobody holds its lock and
    /// it names no live process other than this one) is replaced.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::{Error, Supervisor};
    ///
    /// let path = std::env::temp_dir().join(format!("builder-doc-{}.pid", std::process::id()));
    /// let first = Supervisor::builder().pid_file(&path).build()?;
    /// let second = Supervisor::builder().pid_file(&path).build();
    /// assert!(matches!(second, Err(Error::AlreadyRunning { .. })));
    /// # drop(first);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn pid_file(self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        self.build_step(Box::new(move || {
            let held: Arc<dyn ShutdownHook> = Arc::new(Held(Mutex::new(Some(PidFile::create(&path)?))));
            Ok(Some(held))
        }))
    }
}
