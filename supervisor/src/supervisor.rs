//! [`Supervisor`] and its builder: registering units and starting them.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, OnceCell, broadcast};
use tokio_util::sync::CancellationToken;

use crate::extensions::{BuildStep, Extensions, ShutdownHooks};
use crate::handle::SupervisorHandle;
use crate::observe::event::{Event, EventKind};
use crate::shutdown::{self, ShutdownOrder, ShutdownReport};
use crate::unit::{Activation, Unit, spawn_loop};
use crate::{DaemonSpec, Error, TaskSpec};

/// How many events a slow subscriber may fall behind before it misses some
/// (it is then told how many, by `RecvError::Lagged`).
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;

/// A set of units, ready to start.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use supervisor::{Context, DaemonSpec, MaxRestarts, RestartPolicy, Supervisor, TaskSpec};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), supervisor::Error> {
/// let sup = Supervisor::builder()
///     .task(TaskSpec::new("ticker", |ctx: Context| async move {
///         ctx.cancelled().await;
///         Ok::<_, std::io::Error>(())
///     }))
///     .daemon(DaemonSpec::new("sleeper", "sleep").arg("60")
///         .restart(RestartPolicy::new().delay(Duration::from_secs(5)).max_restarts(MaxRestarts::AtMost(3))))
///     .build()?;
/// let handle = sup.start();
/// assert_eq!(handle.unit_names(), ["ticker", "sleeper"]);
/// let report = handle.shutdown().await;
/// assert!(report.is_clean());
/// # Ok(())
/// # }
/// ```
#[must_use = "a supervisor does nothing until `.start()` or `.run().await`"]
pub struct Supervisor {
    shared: Arc<Shared>,
}

/// Collects units and settings for a [`Supervisor`].
#[must_use = "call `.build()` to get a `Supervisor`"]
#[derive(Debug, Default)]
pub struct SupervisorBuilder {
    units: Vec<UnitSpec>,
    shutdown_timeout: Option<Duration>,
    shutdown_order: ShutdownOrder,
    event_capacity: Option<usize>,
    /// What the service layer keeps on the supervisor (see `extensions`).
    pub(crate) extensions: Extensions,
    build_steps: BuildSteps,
}

/// The steps the service layer adds to `build()`.
#[derive(Default)]
struct BuildSteps(Vec<BuildStep>);

impl fmt::Debug for BuildSteps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildSteps").field("steps", &self.0.len()).finish()
    }
}

#[derive(Debug)]
enum UnitSpec {
    Task(TaskSpec),
    Daemon(DaemonSpec),
}

impl UnitSpec {
    fn name(&self) -> &str {
        match self {
            UnitSpec::Task(spec) => spec.name(),
            UnitSpec::Daemon(spec) => spec.name(),
        }
    }
}

impl Supervisor {
    /// Starts describing a supervisor.
    pub fn builder() -> SupervisorBuilder {
        SupervisorBuilder::default()
    }

    /// Starts every unit, in registration order, on the current tokio runtime.
    ///
    /// Dropping every clone of the returned handle stops all units in the
    /// background (gracefully, as far as the runtime lives); call
    /// [`SupervisorHandle::shutdown`] to stop them and wait for it.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, like [`tokio::spawn`].
    #[must_use = "dropping the last handle shuts the supervisor down"]
    pub fn start(self) -> SupervisorHandle {
        for index in 0..self.shared.units.len() {
            self.shared.activate(index);
        }
        SupervisorHandle::new(self.shared)
    }

    /// Starts every unit, waits for `SIGINT` or `SIGTERM`, then shuts down
    /// gracefully; a second signal during the shutdown skips what is left of
    /// the grace periods.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Supervisor, TaskSpec};
    ///
    /// let report = Supervisor::builder()
    ///     .task(TaskSpec::new("ticker", |ctx: supervisor::Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .run()
    ///     .await;
    /// println!("{report}");
    /// std::process::exit(report.exit_code());
    /// # }
    /// ```
    pub async fn run(self) -> ShutdownReport {
        let signals = shutdown::Signals::install();
        let handle = self.start();
        shutdown::shutdown_on(&handle, signals).await
    }
}

#[cfg(test)]
impl Supervisor {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor").field("units", &self.shared.unit_names()).finish()
    }
}

impl SupervisorBuilder {
    /// Adds an async task.
    pub fn task(mut self, spec: TaskSpec) -> Self {
        self.units.push(UnitSpec::Task(spec));
        self
    }

    /// Adds an external process.
    pub fn daemon(mut self, spec: DaemonSpec) -> Self {
        self.units.push(UnitSpec::Daemon(spec));
        self
    }

    /// An upper bound on a whole shutdown: when it runs out, every unit still
    /// stopping is aborted or killed at once, whatever its own stop timeout.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// Whether a shutdown stops the units one at a time, the most recently
    /// started first (the default), or all at once.
    pub fn shutdown_order(mut self, order: ShutdownOrder) -> Self {
        self.shutdown_order = order;
        self
    }

    /// The capacity of the event channel (default 1024).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = Some(capacity);
        self
    }

    /// Adds a step to `build()`, run after the units are checked.
    pub(crate) fn build_step(mut self, step: BuildStep) -> Self {
        self.build_steps.0.push(step);
        self
    }

    /// Checks every unit and builds the supervisor.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyName`], [`Error::DuplicateName`], [`Error::EmptyProgram`],
    /// or [`Error::InvalidSetting`] for a policy out of range.
    pub fn build(mut self) -> Result<Supervisor, Error> {
        for spec in &self.units {
            let (kind, policy) = match spec {
                UnitSpec::Task(task) => ("task", &task.policy),
                UnitSpec::Daemon(daemon) => {
                    daemon.validate()?;
                    ("daemon", &daemon.policy)
                }
            };
            if spec.name().is_empty() {
                return Err(Error::EmptyName { kind });
            }
            policy.validate(spec.name())?;
        }
        let steps = std::mem::take(&mut self.build_steps.0);
        let sup = self.build_unchecked();
        // The lookup index is sorted by name: duplicates sit side by side.
        let names: Vec<&str> = sup.shared.units.iter().map(|unit| &*unit.name).collect();
        if let Some(name) = first_duplicate(&names, &sup.shared.index) {
            return Err(Error::DuplicateName { name: name.to_owned() });
        }
        for step in steps {
            if let Some(hook) = step()? {
                sup.shared.shutdown_hooks.add(hook);
            }
        }
        Ok(sup)
    }

    /// Builds without checking; for input already checked at compile time.
    pub(crate) fn build_unchecked(self) -> Supervisor {
        let units: Vec<Unit> = self
            .units
            .into_iter()
            .map(|spec| match spec {
                UnitSpec::Task(spec) => Unit::task(spec),
                UnitSpec::Daemon(spec) => Unit::daemon(spec),
            })
            .collect();
        let names: Vec<&str> = units.iter().map(|unit| &*unit.name).collect();
        let index = sorted_by_name(&names).into_boxed_slice();
        let (events, _) = broadcast::channel(self.event_capacity.unwrap_or(DEFAULT_EVENT_CAPACITY).max(1));
        Supervisor {
            shared: Arc::new(Shared {
                units,
                index,
                events,
                root: CancellationToken::new(),
                kill_now: CancellationToken::new(),
                shutting_down: AtomicBool::new(false),
                start_seq: AtomicU64::new(0),
                shutdown_timeout: self.shutdown_timeout,
                shutdown_order: self.shutdown_order,
                report: OnceCell::new(),
                control_released: Notify::new(),
                extensions: self.extensions,
                shutdown_hooks: ShutdownHooks::default(),
            }),
        }
    }
}

/// The indices of `names`, ordered by name (ties in registration order).
fn sorted_by_name(names: &[&str]) -> Vec<usize> {
    let mut index: Vec<usize> = (0..names.len()).collect();
    index.sort_by_key(|&i| names[i]);
    index
}

/// The first name, in registration order, that an earlier unit already has.
fn first_duplicate<'a>(names: &[&'a str], sorted: &[usize]) -> Option<&'a str> {
    sorted.windows(2).filter(|pair| names[pair[0]] == names[pair[1]]).map(|pair| pair[1]).min().map(|i| names[i])
}

/// What every handle and every unit loop shares.
pub(crate) struct Shared {
    pub(crate) units: Vec<Unit>,
    /// Indices into `units`, sorted by name: lookups by binary search, at
    /// a word per unit rather than a hash map entry.
    index: Box<[usize]>,
    events: broadcast::Sender<Event>,
    /// Parent of every unit's stop token: cancelled when the last handle is
    /// dropped, and at the end of a shutdown.
    pub(crate) root: CancellationToken,
    /// Cuts every grace period short.
    pub(crate) kill_now: CancellationToken,
    shutting_down: AtomicBool,
    start_seq: AtomicU64,
    pub(crate) shutdown_timeout: Option<Duration>,
    pub(crate) shutdown_order: ShutdownOrder,
    pub(crate) report: OnceCell<ShutdownReport>,
    /// Wakes control calls waiting for a unit (see `control`).
    pub(crate) control_released: Notify,
    pub(crate) extensions: Extensions,
    pub(crate) shutdown_hooks: ShutdownHooks,
}

impl Shared {
    pub(crate) fn lookup(&self, name: &str) -> Result<(usize, &Unit), Error> {
        match self.index.binary_search_by(|&i| (*self.units[i].name).cmp(name)) {
            Ok(found) => Ok((self.index[found], &self.units[self.index[found]])),
            Err(_) => Err(Error::UnknownUnit { name: name.to_owned(), known: self.unit_names().join(", ") }),
        }
    }

    pub(crate) fn unit_names(&self) -> Vec<String> {
        self.units.iter().map(|unit| unit.name.to_string()).collect()
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        self.shutdown_hooks.begin();
    }

    /// Starts a new loop for unit `index`. The caller holds the unit's
    /// control (see `control`), or is `start` before anyone else can.
    pub(crate) fn activate(self: &Arc<Self>, index: usize) {
        let unit = &self.units[index];
        let stop = self.root.child_token();
        unit.begin_activation(self.start_seq.fetch_add(1, Ordering::Relaxed) + 1);
        let task = spawn_loop(self, index, stop.clone());
        unit.set_activation(Activation { stop, task });
    }

    /// Logs `kind` in the unit's span and sends it to subscribers, if there
    /// are any.
    pub(crate) fn emit(&self, unit: &Unit, kind: EventKind) {
        tracing::info_span!("unit", unit = %unit.name).in_scope(|| log(&kind));
        if self.events.receiver_count() > 0 {
            // An error only means the last subscriber left meanwhile.
            let _ = self.events.send(Event::now(&unit.name, kind));
        }
    }
}

/// The `tracing` side of an event; the unit is a field of the enclosing span.
fn log(kind: &EventKind) {
    match kind {
        EventKind::Started { restart_count, pid } => tracing::info!(restart_count, ?pid, "started"),
        EventKind::Exited { reason } if reason.is_success() => tracing::info!(%reason, "run ended"),
        EventKind::Exited { reason } => tracing::warn!(%reason, "run failed"),
        EventKind::Panicked { message } => tracing::error!(%message, "run panicked"),
        EventKind::Restarting { attempt, delay } => tracing::info!(attempt, ?delay, "restarting"),
        EventKind::Finished => tracing::info!("finished; the policy does not restart it"),
        EventKind::GaveUp { reason } => tracing::error!(%reason, "gave up"),
        EventKind::Stopped { forced: false, took } => tracing::info!(?took, "stopped"),
        EventKind::Stopped { forced: true, took } => tracing::warn!(?took, "stop timed out; aborted or killed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_found_in_registration_order() {
        let names = ["b", "a", "c", "a", "b"];
        let sorted = sorted_by_name(&names);
        assert_eq!(sorted.iter().map(|&i| names[i]).collect::<Vec<_>>(), ["a", "a", "b", "b", "c"]);
        assert_eq!(first_duplicate(&names, &sorted), Some("a"));
        assert_eq!(first_duplicate(&["x", "y"], &sorted_by_name(&["x", "y"])), None);
    }
}
