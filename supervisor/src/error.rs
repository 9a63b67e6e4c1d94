//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong when building or controlling a supervisor.
///
/// Every message names the unit (or setting) at fault and says what would be
/// right, so it can be shown to a user as it is.
///
/// # Examples
///
/// ```
/// use supervisor::{Error, Supervisor, TaskSpec};
///
/// let err = Supervisor::builder()
///     .task(TaskSpec::new("ticker", |_ctx| async {}))
///     .task(TaskSpec::new("ticker", |_ctx| async {}))
///     .build()
///     .unwrap_err();
/// assert!(matches!(err, Error::DuplicateName { ref name } if name == "ticker"));
/// ```
///
/// More variants may be added: a `match` on it needs a `_` arm. Its `Display`
/// is the message to show.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), supervisor::Error> {
/// use supervisor::{Context, Error, Supervisor, TaskSpec};
///
/// let handle = Supervisor::builder()
///     .task(TaskSpec::new("ticker", |ctx: Context| async move { ctx.cancelled().await }))
///     .build()?
///     .start();
/// match handle.restart("tikcer").await {
///     Ok(()) => unreachable!("there is no such unit"),
///     Err(Error::UnknownUnit { name, known }) => {
///         assert_eq!(name, "tikcer");
///         assert!(known.contains("ticker"));
///     }
///     Err(other) => panic!("{other}"),
/// }
/// handle.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A unit was registered with an empty name.
    #[error("a {kind} was registered with an empty name; give every unit a non-empty, unique name such as \"worker\"")]
    EmptyName {
        /// `"task"` or `"daemon"`.
        kind: &'static str,
    },
    /// Two units were registered under the same name.
    #[error("unit name `{name}` is used twice; every unit needs a unique name")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// A daemon was registered without a program to run.
    #[error(
        "daemon `{unit}` has an empty program; name the program to run, e.g. DaemonSpec::new(\"{unit}\", \"sleep\").arg(\"60\")"
    )]
    EmptyProgram {
        /// The daemon's name.
        unit: String,
    },
    /// A setting of a spec or policy is out of range.
    #[error("{setting} of `{unit}` is invalid: {reason}")]
    InvalidSetting {
        /// The unit the setting belongs to.
        unit: String,
        /// The setting, e.g. `"jitter"`.
        setting: &'static str,
        /// What is wrong and what would be right.
        reason: String,
    },
    /// A handle method named a unit that does not exist.
    #[error("no unit named `{name}`; the units are: {known}")]
    UnknownUnit {
        /// The name that was asked for.
        name: String,
        /// The registered names, comma-separated.
        known: String,
    },
    /// A control call came after shutdown had begun.
    #[error("cannot {action} `{unit}`: the supervisor is shutting down")]
    ShuttingDown {
        /// What was asked, e.g. `"start"`.
        action: &'static str,
        /// The unit it was asked of.
        unit: String,
    },
    /// The PID file names a process that is still running.
    #[error("PID file {path} belongs to running process {pid}; stop it first or choose another PID file")]
    AlreadyRunning {
        /// The PID file.
        path: PathBuf,
        /// The process that holds it.
        pid: u32,
    },
    /// An I/O operation of the supervisor itself failed (binding a socket,
    /// writing the PID file, installing a signal handler).
    #[error("{context}: {source}")]
    Io {
        /// What the supervisor was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}
