//! The endpoint's Unix socket: created with mode `0600`, so that only the
//! supervisor's user (and root) can connect, with no moment at which
//! another user could.
//!
//! The socket is bound inside a new directory of mode `0700` next to the
//! path asked for, set to `0600` there, and only then renamed into place:
//! until the rename nobody else can reach it (the directory is closed to
//! them), and from the rename on it is `0600`. Setting the process's umask
//! instead would change it for every thread of the application.

use std::future::Future;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};

use crate::extensions::ShutdownHook;
use crate::{Error, SupervisorHandle};

/// How long a socket already at the path gets to accept a connection
/// before it counts as stale.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// The socket file of a listening endpoint, removed when dropped if it is
/// still the one this endpoint created.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

/// The socket file of a serving endpoint, removed by whichever comes
/// first: the end of the supervisor's shutdown, before its report is handed
/// out (so that a `main` that exits as soon as it has the report leaves no
/// file behind, as with the PID file), or the endpoint's own stop.
#[derive(Debug)]
pub(crate) struct PlacedSocket {
    path: PathBuf,
    file: Arc<SocketFileSlot>,
}

impl PlacedSocket {
    /// Has `file` removed at the end of `handle`'s shutdown too.
    pub(crate) fn new(file: SocketFile, handle: &SupervisorHandle) -> PlacedSocket {
        let path = file.path.clone();
        let file = Arc::new(SocketFileSlot(Mutex::new(Some(file))));
        handle.add_shutdown_hook(file.clone());
        PlacedSocket { path, file }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PlacedSocket {
    fn drop(&mut self) {
        self.file.remove();
    }
}

/// The file, until the first of its two owners removes it.
#[derive(Debug)]
struct SocketFileSlot(Mutex<Option<SocketFile>>);

impl SocketFileSlot {
    fn remove(&self) {
        drop(self.0.lock().unwrap_or_else(PoisonError::into_inner).take());
    }
}

impl ShutdownHook for SocketFileSlot {
    fn end(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.remove();
        Box::pin(std::future::ready(()))
    }

    fn end_without_runtime(&self) {
        self.remove();
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|metadata| metadata.dev() == self.dev && metadata.ino() == self.ino);
        if ours && let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), %error, "HTTP endpoint: cannot remove its Unix socket");
        }
    }
}

/// Binds a Unix socket of mode `0600` at `path`, replacing a stale socket
/// (one nobody listens on) but nothing else.
pub(crate) async fn bind(path: &Path) -> Result<(UnixListener, SocketFile), Error> {
    let io_error = |context: String| move |source| Error::Io { context, source };
    let mut stale = None;
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_socket() => {
            let probe = tokio::time::timeout(PROBE_TIMEOUT, UnixStream::connect(path)).await;
            // Only a refused connection says nobody listens: a full backlog
            // (`EAGAIN`), a permission error or a slow answer may be a live
            // endpoint's.
            let refused = matches!(&probe, Ok(Err(error)) if error.kind() == io::ErrorKind::ConnectionRefused);
            if !refused {
                let why = match probe {
                    Ok(Err(error)) => format!("a process may listen on this socket (connecting to it: {error})"),
                    _ => "another process listens on this socket".to_owned(),
                };
                return Err(Error::Io {
                    context: format!("cannot listen on {}", path.display()),
                    source: io::Error::new(io::ErrorKind::AddrInUse, format!("{why}; stop it or choose another path")),
                });
            }
            // A stale socket, left by a process that ended: replaced below,
            // if it is still the one found.
            stale = Some(metadata);
        }
        Ok(_) => {
            return Err(Error::Io {
                context: format!("cannot listen on {}", path.display()),
                source: io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "the path exists and is not a socket; refusing to replace it",
                ),
            });
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(Error::Io { context: format!("cannot read {}", path.display()), source }),
    }

    let name = path.file_name().ok_or_else(|| Error::Io {
        context: format!("cannot listen on {}", path.display()),
        source: io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
    })?;
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let private = parent.join(format!(".{}.{}.{:08x}", name.to_string_lossy(), std::process::id(), fastrand::u32(..)));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        // Named by the path asked for and its directory: the private
        // directory's name is ours, and said nothing to the caller of why
        // the path could not be used (a directory that does not exist, one
        // the user may not write in).
        .map_err(io_error(format!(
            "cannot listen on {}: cannot create a directory in {} to bind the socket in",
            path.display(),
            parent.display()
        )))?;
    let bound = bind_in(&private, path, stale.as_ref());
    if let Err(error) = std::fs::remove_dir(&private) {
        tracing::warn!(path = %private.display(), %error, "HTTP endpoint: cannot remove a private directory");
    }
    bound
}

/// Binds in the private directory, sets the mode, and puts the socket in
/// place, after `stale` (the stale socket found there) if it is still
/// there.
fn bind_in(
    private: &Path,
    path: &Path,
    stale: Option<&std::fs::Metadata>,
) -> Result<(UnixListener, SocketFile), Error> {
    let io_error = |context: String| move |source| Error::Io { context, source };
    let inside = private.join("socket");
    let listener = UnixListener::bind(&inside).map_err(io_error(format!("cannot listen on {}", path.display())))?;
    let placed = std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(0o600))
        .map_err(io_error(format!("cannot set the mode of {}", inside.display())))
        // The socket's identity, read where nobody else can move it: read
        // at `path` once placed, it was missing there when another endpoint
        // had just moved it aside to compare it with a stale one.
        .and_then(|()| {
            std::fs::symlink_metadata(&inside).map_err(io_error(format!("cannot read {}", inside.display())))
        })
        .and_then(|metadata| {
            if let Some(stale) = stale {
                remove_if_same(path, stale, &private.join("stale")).map_err(io_error(format!(
                    "cannot listen on {}: cannot remove the stale socket there",
                    path.display()
                )))?;
            }
            place(&inside, path).map(|()| metadata)
        });
    // The socket's other name, in the private directory, goes either way.
    let _ = std::fs::remove_file(&inside);
    let metadata = placed?;
    // Removed by its absolute path: a relative one would name another file,
    // or none, once the process has changed its working directory, and the
    // socket would be left behind.
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    Ok((listener, SocketFile { path, dev: metadata.dev(), ino: metadata.ino() }))
}

/// Gives the socket at `inside` the name `path`, unless something has it:
/// a hard link fails on a taken name, where a rename would replace what
/// another endpoint placed there a moment before (two endpoints started
/// at once on one path both said they listened, and one was unreachable).
/// On a file system without hard links, a rename.
fn place(inside: &Path, path: &Path) -> Result<(), Error> {
    let cannot_place = |source: io::Error| Error::Io {
        context: format!("cannot place the socket {} at {}", inside.display(), path.display()),
        source,
    };
    match std::fs::hard_link(inside, path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Err(Error::Io {
            context: format!("cannot listen on {}", path.display()),
            source: io::Error::new(
                io::ErrorKind::AddrInUse,
                "another endpoint took this path meanwhile; stop it or choose another path",
            ),
        }),
        Err(error) if matches!(error.kind(), io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied) => {
            std::fs::rename(inside, path).map_err(cannot_place)
        }
        Err(error) => Err(cannot_place(error)),
    }
}

/// Removes the stale socket at `path` if it is still the one found (the
/// same file): another endpoint may have replaced it meanwhile. What is at
/// the path is first moved aside to `aside`, in one step, and only then
/// compared: a look, then a removal, removed the socket of an endpoint
/// that had replaced the stale one between the two (both endpoints said
/// they listened, and the first was unreachable). A socket moved aside
/// that is not the stale one is put back. An error when the stale socket
/// may not be moved.
fn remove_if_same(path: &Path, stale: &std::fs::Metadata, aside: &Path) -> io::Result<()> {
    match std::fs::rename(path, aside) {
        Ok(()) => {}
        // Gone already (another endpoint removed it): the placing that
        // follows finds out who has the path.
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        // Not ours to move (another user's, in a sticky directory such as
        // `/tmp`): said so, where the placing that follows took it for an
        // endpoint that had just taken the path.
        Err(error) => return Err(error),
    }
    let same =
        std::fs::symlink_metadata(aside).is_ok_and(|moved| moved.dev() == stale.dev() && moved.ino() == stale.ino());
    if !same {
        // Put back without replacing anything, as `place` puts a socket:
        // whoever placed one there since keeps it.
        match std::fs::hard_link(aside, path) {
            Err(error) if matches!(error.kind(), io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied) => {
                let _ = std::fs::rename(aside, path);
            }
            _ => {}
        }
    }
    let _ = std::fs::remove_file(aside);
    Ok(())
}
