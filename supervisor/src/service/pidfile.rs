//! An optional PID file ([`PidFile`]): one running instance per file.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use rustix::fs::{FlockOperation, flock};

use crate::extensions::ShutdownHook;
use crate::{Error, SupervisorBuilder};

/// How often `create` goes round when another process changes the file under
/// it at the same moment.
const ATTEMPTS: usize = 8;

/// A PID file that holds this process's ID, locked for as long as the value
/// lives, and removed when it is dropped.
///
/// The file is never read and then written: the PID is written to a locked
/// file beside it, which is then linked into place, an atomic step that fails
/// if the file exists. An existing file whose lock no live process holds is
/// stale (its process died without removing it) and is replaced, again
/// atomically. An existing file locked by another process, or naming a live
/// process other than this one, refuses the new instance with
/// [`Error::AlreadyRunning`].
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
    /// Open and locked for as long as the value lives.
    file: File,
}

/// Who holds an existing PID file.
enum Holder {
    /// A live process (locked, or naming a live process).
    Running(u32),
    /// Nobody: the file is stale; it is open and locked here until the
    /// value is dropped.
    Stale(File),
    /// The file went away or was replaced while it was looked at.
    Changed,
}

impl PidFile {
    /// Creates the PID file at `path`, containing this process's ID, and
    /// locks it.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyRunning`] when another live process holds the file,
    /// [`Error::Io`] when it cannot be written.
    pub fn create(path: impl AsRef<Path>) -> Result<PidFile, Error> {
        let path = path.as_ref();
        let pid = std::process::id();
        let io_error = |what: &str, source: io::Error| Error::Io {
            context: format!("PID file {}: {what}", path.display()),
            source,
        };
        let temp = temp_path(path, pid);
        let file = create_locked(&temp, pid).map_err(|source| io_error("cannot write it", source))?;
        let placed = place(path, &temp);
        // The temporary name is only a way in; whatever happened, it goes.
        let _ = fs::remove_file(&temp);
        match placed {
            Ok(()) => Ok(PidFile { path: path.to_owned(), file }),
            Err(Placed::Running(holder)) => Err(Error::AlreadyRunning { path: path.to_owned(), pid: holder }),
            Err(Placed::Io(what, source)) => Err(io_error(what, source)),
        }
    }

    /// Where the file is.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `path` still names this very file (not a replacement).
    fn is_in_place(&self) -> bool {
        match (fs::metadata(&self.path), self.file.metadata()) {
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
            && let Err(error) = fs::remove_file(&self.path)
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
    Io(&'static str, io::Error),
}

/// Puts the locked file at `temp` in place at `path`.
fn place(path: &Path, temp: &Path) -> Result<(), Placed> {
    let mut last = io::Error::other("the file kept changing");
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
            Ok(Holder::Changed) => {}
            Err(error) => last = error,
        }
    }
    Err(Placed::Io("cannot take it over", last))
}

/// Looks at an existing PID file.
fn inspect(path: &Path) -> io::Result<Holder> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Holder::Changed),
        Err(error) => return Err(error),
    };
    let locked = match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => true,
        Err(rustix::io::Errno::WOULDBLOCK) => false,
        Err(errno) => return Err(errno.into()),
    };
    let mut contents = String::new();
    file.read_to_string(&mut contents)?;
    let pid = contents.trim().parse::<u32>().ok();
    if !locked {
        return Ok(Holder::Running(pid.unwrap_or(0)));
    }
    match fs::metadata(path) {
        Ok(on_disk) if same_file(&on_disk, &file.metadata()?) => {}
        Ok(_) => return Ok(Holder::Changed),
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Holder::Changed),
        Err(error) => return Err(error),
    }
    // Unlocked, but naming a live process that is not this one: written by
    // something that does not lock. Refuse rather than guess.
    if let Some(pid) = pid
        && pid != std::process::id()
        && is_alive(pid)
    {
        return Ok(Holder::Running(pid));
    }
    Ok(Holder::Stale(file))
}

fn create_locked(temp: &Path, pid: u32) -> io::Result<File> {
    let open = || OpenOptions::new().read(true).write(true).create_new(true).mode(0o644).open(temp);
    let mut file = match open() {
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            // Left by an earlier process that had our PID and crashed here.
            fs::remove_file(temp)?;
            open()?
        }
        other => other?,
    };
    flock(&file, FlockOperation::NonBlockingLockExclusive)?;
    writeln!(file, "{pid}")?;
    file.sync_all()?;
    Ok(file)
}

fn temp_path(path: &Path, pid: u32) -> PathBuf {
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{pid}.tmp"))
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
        drop(self.0.lock().unwrap_or_else(PoisonError::into_inner).take());
        Box::pin(std::future::ready(()))
    }
}

impl SupervisorBuilder {
    /// Writes this process's ID to `path` when the supervisor is built, and
    /// removes it at the end of its shutdown. See [`PidFile`].
    ///
    /// `build()` then fails with [`Error::AlreadyRunning`] when another live
    /// instance holds the file.
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
