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
        /// `"task"`, `"daemon"` or `"group"`.
        kind: &'static str,
    },
    /// Two units of one group were registered under the same name.
    #[error("unit name `{name}` is used twice; every unit needs a unique name")]
    DuplicateName {
        /// The repeated name, as a path (`"storage/db"` in the group `storage`).
        name: String,
    },
    /// A unit name contains `/`, which separates the names of a path.
    #[error("unit name `{name}` contains `/`; `/` separates a group from its units in paths, use `-` or `_` instead")]
    NameWithSlash {
        /// The name, as a path (`"g/a/b"` for `a/b` in the group `g`).
        name: String,
    },
    /// A unit name contains a control character ([`char::is_control`]: a
    /// line break, a tab, NUL, ESC, DEL, a C1 control such as U+0085),
    /// which would break every line-oriented output that names the unit:
    /// log lines, the shutdown report's table, error messages, terminals.
    #[error(
        "unit name `{}` contains a control character (escaped here); a line break, tab, escape or other control \
         character would break log lines, reports and terminals, use printable characters such as `-`, `_` or a \
         space instead",
        name.escape_debug()
    )]
    NameWithControl {
        /// The name, as a path (`"g/a\nb"` for `a\nb` in the group `g`), as
        /// it was given: the message shows it escaped.
        name: String,
    },
    /// A unit depends on a name that is not a unit of its group.
    #[error("`{unit}` depends on `{dependency}`, which is not a unit of its group{hint}")]
    UnknownDependency {
        /// The unit's path.
        unit: String,
        /// The name it depends on.
        dependency: String,
        /// A suggestion: the closest sibling, or where a unit of that name is.
        hint: String,
    },
    /// A unit depends on itself.
    #[error("`{unit}` depends on itself; remove its own name from its depends_on")]
    SelfDependency {
        /// The unit's path.
        unit: String,
    },
    /// Units depend on each other in a circle.
    #[error("dependency cycle: {cycle}; none of them could ever start, remove one of these dependencies")]
    DependencyCycle {
        /// The units along the cycle, the first repeated at the end: `a -> b -> a`.
        cycle: String,
    },
    /// `remove` was asked of a unit that others depend on.
    #[error("cannot remove `{unit}`: the units that depend on it must be removed first: {dependents}")]
    HasDependents {
        /// The unit's path.
        unit: String,
        /// The units that depend on it.
        dependents: String,
    },
    /// A daemon was registered without a program to run.
    #[error(
        "daemon `{unit}` has an empty program; name the program to run, e.g. DaemonSpec::new(\"{}\", \"sleep\").arg(\"60\")",
        unit.rsplit('/').next().unwrap_or(unit)
    )]
    EmptyProgram {
        /// The daemon's path (`"storage/db"` in the group `storage`).
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
        /// The registered paths, comma-separated: the first 20, then how
        /// many more.
        known: String,
    },
    /// A handle method named a unit in a group whose run is not in
    /// progress (stopped, failed, or waiting to restart).
    #[error(
        "cannot {action} `{unit}`: its group `{group}` is not running (stopped, failed, or between two runs); \
         try again once `{group}` runs, or start it"
    )]
    GroupNotRunning {
        /// What was asked, e.g. `"start"`.
        action: &'static str,
        /// The unit it was asked of.
        unit: String,
        /// The group that is not running.
        group: String,
    },
    /// A handle method that needs a run in progress found none.
    #[error("cannot {action} `{unit}`: it is not running")]
    NotRunning {
        /// What was asked, e.g. `"signal"`.
        action: &'static str,
        /// The unit it was asked of.
        unit: String,
    },
    /// A handle method was asked of a unit of the wrong kind.
    #[error("cannot {action} `{unit}`: it is a {kind}")]
    WrongKind {
        /// What was asked, e.g. `"signal"`.
        action: &'static str,
        /// The unit it was asked of.
        unit: String,
        /// What it is.
        kind: crate::UnitKind,
    },
    /// Groups are nested deeper than the supervisor supports.
    #[error(
        "groups are nested {depth} levels deep under `{group}`; at most {max} levels are supported: \
         flatten the tree, e.g. with units side by side in one group"
    )]
    TooDeep {
        /// The outermost group of the too-deep branch, as a path.
        group: String,
        /// How many levels of groups the branch has, from the root.
        depth: usize,
        /// The most levels supported ([`MAX_GROUP_DEPTH`](crate::MAX_GROUP_DEPTH)).
        max: usize,
    },
    /// A wait can no longer be satisfied: the unit is at rest, or the
    /// supervisor has ended.
    #[error("`{unit}` will not become {wanted}: it is {state}{why}")]
    WillNotHappen {
        /// The unit waited for.
        unit: String,
        /// What was waited for, e.g. `"ready"` or `"running"`.
        wanted: String,
        /// Its state when the wait gave up.
        state: crate::UnitState,
        /// Why, e.g. `" and the supervisor has ended"`.
        why: &'static str,
    },
    /// `build()` or `add` found more than one problem; each is listed.
    #[error("{} problems: {}", .0.len(), list(.0))]
    Problems(Vec<Error>),
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

fn list(problems: &[Error]) -> String {
    let mut out = String::new();
    for (number, problem) in problems.iter().enumerate() {
        if number > 0 {
            out.push_str("; ");
        }
        out.push_str(&format!("{}) {problem}", number + 1));
    }
    out
}

impl Error {
    /// Every problem this error stands for: the list of
    /// [`Error::Problems`], or the error itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::{Supervisor, TaskSpec};
    ///
    /// let err = Supervisor::builder()
    ///     .task(TaskSpec::new("a/b", |_ctx| async {}))
    ///     .task(TaskSpec::new("", |_ctx| async {}))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.problems().len(), 2);
    /// ```
    #[must_use]
    pub fn problems(&self) -> &[Error] {
        match self {
            Error::Problems(problems) => problems,
            other => std::slice::from_ref(other),
        }
    }

    /// One error for `problems`: the only one, or [`Error::Problems`].
    pub(crate) fn from_problems(mut problems: Vec<Error>) -> Result<(), Error> {
        match problems.len() {
            0 => Ok(()),
            1 => Err(problems.remove(0)),
            _ => Err(Error::Problems(problems)),
        }
    }
}
