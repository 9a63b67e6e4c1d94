//! The units' metrics through the `metrics` facade (feature `metrics`):
//! [`SupervisorHandle::publish_metrics`] keeps a gauge or counter per unit
//! and fact up to date from the supervisor's events, so that whatever
//! exporter the application installed (Prometheus, OpenTelemetry, StatsD,
//! ...) exports them.
//!
//! Nothing polls: a task waits for events, reads the status of the units
//! they name, and sets their metrics.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use metrics::{Counter, Gauge, Unit, counter, describe_counter, describe_gauge, gauge};
use smol_str::SmolStr;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::service::health;
use crate::service::metrics::STATES;
use crate::{Event, EventKind, SupervisorHandle, UnitStatus};

const UP: &str = "supervisor_up";
const READY: &str = "supervisor_ready";
const UNIT_UP: &str = "supervisor_unit_up";
const UNIT_READY: &str = "supervisor_unit_ready";
const UNIT_STATE: &str = "supervisor_unit_state";
const UNIT_RESTARTS: &str = "supervisor_unit_restarts_total";
const UNIT_EXIT_CODE: &str = "supervisor_unit_last_exit_code";
const UNIT_EXIT_SIGNAL: &str = "supervisor_unit_last_exit_signal";
const UNIT_START_TIME: &str = "supervisor_unit_start_time_seconds";
const UNIT_UPTIME: &str = "supervisor_unit_uptime_seconds";

impl SupervisorHandle {
    /// Publishes the supervisor's and every unit's metrics through the
    /// [`metrics`](https://docs.rs/metrics) facade (feature `metrics`), to
    /// whatever recorder the application installed: the Prometheus
    /// exporter, OpenTelemetry, StatsD, ... They are set at once, then on
    /// every event (a task waits for the supervisor's events and reads the
    /// status of the units they name: nothing polls), until the
    /// supervisor ends or [`MetricsPublisher::stop`].
    ///
    /// The names, types and meanings are those of
    /// [`metrics_text`](Self::metrics_text), which stays available without
    /// the feature:
    ///
    /// | metric | kind | labels |
    /// | --- | --- | --- |
    /// | `supervisor_up`, `supervisor_ready` | gauge | none |
    /// | `supervisor_unit_up`, `supervisor_unit_ready` | gauge | `unit`, `type` |
    /// | `supervisor_unit_state` | gauge, 1 for the unit's state and 0 for the others | `unit`, `type`, `state` |
    /// | `supervisor_unit_restarts_total` | counter | `unit`, `type` |
    /// | `supervisor_unit_last_exit_code`, `supervisor_unit_last_exit_signal` | gauge, once there is one | `unit`, `type` |
    /// | `supervisor_unit_start_time_seconds` | gauge, seconds since the Unix epoch | `unit`, `type` |
    /// | `supervisor_unit_uptime_seconds` | gauge, see below | `unit`, `type` |
    ///
    /// `unit` is the unit's full path (`storage/db`), `type` its kind
    /// (`task`, `process`, `group`). Units added at run time get their
    /// metrics on their first event.
    ///
    /// **Uptime.** A gauge set on events would stand still between them,
    /// and one kept current would need a timer, which this crate does not
    /// run. So the uptime is published the way Prometheus publishes it for
    /// processes, as a start time: `time() - supervisor_unit_start_time_seconds`
    /// is a unit's uptime, exact at every scrape (where
    /// `supervisor_unit_up == 1`). `supervisor_unit_uptime_seconds` is set
    /// on the unit's events (0 once it stops) and brought up to date by
    /// [`MetricsPublisher::refresh`], which an application calls just
    /// before its exporter renders, in its `/metrics` handler say.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// // First install a recorder: metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder(), say.
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("worker", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// let metrics = handle.publish_metrics();
    /// // In the application's /metrics handler, before rendering:
    /// metrics.refresh();
    /// handle.shutdown().await;
    /// metrics.stopped().await; // it ends with the supervisor
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Caveats
    ///
    /// - Install the recorder first: the metrics are registered with the
    ///   recorder installed when they are first set, and `metrics` sends
    ///   those registered before any recorder nowhere.
    /// - The facade cannot unregister a metric: a unit removed at run time
    ///   keeps its last samples (up, ready and state set to 0) until the
    ///   exporter forgets idle metrics (the Prometheus exporter's
    ///   `idle_timeout`). A unit added later under that name is another
    ///   unit: one of another kind gets series of its own (its `type`);
    ///   one of the same kind shares the removed one's series, whose last
    ///   exit code and signal show until it has its own, and whose
    ///   restart counter its restarts add to (a facade's counter cannot go
    ///   back, as `metrics_text`'s does for the new unit). Should the
    ///   publisher miss the removal (more events at once than
    ///   [`event_capacity`](crate::SupervisorBuilder::event_capacity)), it
    ///   tells the new unit by a count lower than the one it had counted;
    ///   a new unit that has restarted more often by then than the removed
    ///   one had adds only the difference.
    /// - A last exit code or signal that the last run did not have (it
    ///   ended by a signal, not with a code) is NaN once the unit has had
    ///   one: `metrics_text` leaves the series out, which a facade cannot.
    /// - A unit's state that lasts less than the time the task takes to
    ///   read it (an instant of `Starting`, say) may not be seen; the
    ///   counter counts every restart all the same. A unit asked to stop
    ///   is shown `stopping`, and not ready, as soon as it is asked, though
    ///   no event says so.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn publish_metrics(&self) -> MetricsPublisher {
        let published = Arc::new(Published::new(self.detached()));
        // Subscribed before the first reading: no change is missed.
        let events = self.subscribe();
        let quiet = self.listen_quietly();
        published.sync_all();
        let stop = CancellationToken::new();
        let task = tokio::spawn(publish(published.clone(), Sources { events, quiet }, stop.clone()));
        MetricsPublisher { published, stop, task }
    }
}

/// The task that keeps the metrics of
/// [`SupervisorHandle::publish_metrics`] up to date. Dropping it leaves
/// the task running until the supervisor ends.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), supervisor::Error> {
/// use supervisor::Supervisor;
///
/// let handle = Supervisor::builder().build()?.start();
/// let metrics = handle.publish_metrics();
/// metrics.stop().await; // before the supervisor ends
/// handle.shutdown().await;
/// # Ok(())
/// # }
/// ```
///
/// # Caveats
///
/// Two publishers of one supervisor, at once or one after the other, set
/// the same series, to no harm: each restart is counted once. Publishers
/// of two supervisors in one process write to the same series wherever
/// their units share a name (the labels name units, not supervisors), and
/// `supervisor_up` and `supervisor_ready` always: publish one of them only,
/// or name their units apart and read the supervisor's own gauges from one.
#[must_use = "dropping it leaves the metrics published until the supervisor ends; keep it to refresh or stop them"]
pub struct MetricsPublisher {
    published: Arc<Published>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl MetricsPublisher {
    /// Reads every unit's status now and sets all its metrics, the uptime
    /// included: call it just before an exporter renders, for an exact
    /// `supervisor_unit_uptime_seconds`. Cheap (one status read per unit),
    /// and safe from any thread.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::Supervisor;
    ///
    /// let handle = Supervisor::builder().build()?.start();
    /// let metrics = handle.publish_metrics();
    /// metrics.refresh();
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn refresh(&self) {
        self.published.sync_all();
    }

    /// Stops updating the metrics (they keep their last values) and waits
    /// for the task to end.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("worker", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// let metrics = handle.publish_metrics();
    /// metrics.stop().await;
    /// handle.stop_unit("worker").await?; // no longer seen by the metrics
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn stop(self) {
        self.stop.cancel();
        self.stopped().await;
    }

    /// Waits for the task to end: once the supervisor has ended (its last
    /// samples set, `supervisor_up` 0), or after [`stop`](Self::stop).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::Supervisor;
    ///
    /// let handle = Supervisor::builder().build()?.start();
    /// let metrics = handle.publish_metrics();
    /// handle.shutdown().await;
    /// metrics.stopped().await; // supervisor_up is 0 now
    /// # Ok(())
    /// # }
    /// ```
    pub async fn stopped(self) {
        if let Err(error) = self.task.await
            && error.is_panic()
        {
            tracing::error!(%error, "the metrics publisher panicked");
        }
    }
}

impl fmt::Debug for MetricsPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsPublisher")
            .field("units", &self.published.lock().len())
            .field("running", &!self.task.is_finished())
            .finish()
    }
}

/// The metrics of one unit, registered once; those that need a value the
/// unit may not have yet (an exit code, a start time) when it first has
/// one, so that no exporter shows a value the unit never had.
struct UnitMetrics {
    unit: String,
    kind: &'static str,
    up: Gauge,
    ready: Gauge,
    states: Vec<Gauge>,
    restarts_total: Counter,
    /// The restarts counted so far of the unit that has the name now (a
    /// unit added under a removed one's name has metrics of its own, from
    /// 0): a facade's counter cannot go back, so its restarts add to the
    /// removed one's.
    counted: u64,
    last_exit_code: Option<Gauge>,
    last_exit_signal: Option<Gauge>,
    start_time: Option<Gauge>,
    uptime: Gauge,
}

impl UnitMetrics {
    fn register(status: &UnitStatus) -> Self {
        let unit = status.name.clone();
        let kind = status.kind.as_str();
        let labels = [("unit", unit.clone()), ("type", kind.to_owned())];
        UnitMetrics {
            unit: unit.clone(),
            kind,
            up: gauge!(UNIT_UP, &labels),
            ready: gauge!(UNIT_READY, &labels),
            states: STATES
                .iter()
                .map(|state| gauge!(UNIT_STATE, "unit" => unit.clone(), "type" => kind, "state" => state.as_str()))
                .collect(),
            restarts_total: counter!(UNIT_RESTARTS, &labels),
            counted: 0,
            last_exit_code: None,
            last_exit_signal: None,
            start_time: None,
            uptime: gauge!(UNIT_UPTIME, &labels),
        }
    }

    /// The gauge `name` of this unit, registered on first use.
    fn lazy<'a>(slot: &'a mut Option<Gauge>, name: &'static str, unit: &str, kind: &'static str) -> &'a Gauge {
        slot.get_or_insert_with(|| gauge!(name, "unit" => unit.to_owned(), "type" => kind))
    }

    fn set(&mut self, status: &UnitStatus) {
        self.up.set(flag(status.running));
        self.ready.set(flag(status.ready));
        for (state, gauge) in STATES.iter().zip(&self.states) {
            gauge.set(flag(status.state == *state));
        }
        // A unit's count never goes down: a lower one is another unit's,
        // added under a removed one's name while the events that said so
        // were missed (the publisher lagged). Its restarts count from its
        // own zero, where they added nothing until they passed the removed
        // unit's count.
        if status.restarts_total < self.counted {
            self.counted = 0;
        }
        self.restarts_total.increment(status.restarts_total.saturating_sub(self.counted));
        self.counted = self.counted.max(status.restarts_total);
        let (unit, kind) = (self.unit.as_str(), self.kind);
        // NaN once the last run had none (it ended by a signal, not with a
        // code, say): a facade cannot take a series away, and the value of
        // an earlier run would read as this one's.
        let exit_code = status.exit_code.map_or(f64::NAN, f64::from);
        if status.exit_code.is_some() || self.last_exit_code.is_some() {
            Self::lazy(&mut self.last_exit_code, UNIT_EXIT_CODE, unit, kind).set(exit_code);
        }
        let signal = status.signal.map_or(f64::NAN, f64::from);
        if status.signal.is_some() || self.last_exit_signal.is_some() {
            Self::lazy(&mut self.last_exit_signal, UNIT_EXIT_SIGNAL, unit, kind).set(signal);
        }
        if let Some(since_epoch) = status.last_start.and_then(|at| at.duration_since(SystemTime::UNIX_EPOCH).ok()) {
            Self::lazy(&mut self.start_time, UNIT_START_TIME, unit, kind).set(since_epoch.as_secs_f64());
        }
        self.uptime.set(status.uptime.map_or(0.0, |uptime| uptime.as_secs_f64()));
    }

    /// The unit is gone: nothing of it runs.
    fn clear(&self) {
        self.up.set(0.0);
        self.ready.set(0.0);
        for gauge in &self.states {
            gauge.set(0.0);
        }
        self.uptime.set(0.0);
    }
}

fn flag(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

/// What the task and [`MetricsPublisher::refresh`] share.
struct Published {
    handle: SupervisorHandle,
    up: Gauge,
    ready: Gauge,
    units: Arc<PublishedUnits>,
}

/// The metrics of every unit, kept on the supervisor: each publisher of it,
/// at once or one after another, sets the same series, and adds to a
/// counter only what no publisher has added yet.
#[derive(Default)]
struct PublishedUnits(Mutex<HashMap<String, UnitMetrics>>);

impl Published {
    fn new(handle: SupervisorHandle) -> Self {
        describe();
        let units = handle.extension::<PublishedUnits>();
        Published { handle, up: gauge!(UP), ready: gauge!(READY), units }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, UnitMetrics>> {
        self.units.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every unit, and the supervisor.
    fn sync_all(&self) {
        // Read under the lock, as `sync_units` reads: read before it, the
        // statuses could be older than those another sync set meanwhile,
        // and a count lower than the one counted reads as another unit's.
        let mut units = self.lock();
        let statuses = self.handle.statuses();
        let present: HashSet<&str> = statuses.iter().map(|status| status.name.as_str()).collect();
        units.retain(|name, metrics| {
            let keep = present.contains(name.as_str());
            if !keep {
                metrics.clear();
            }
            keep
        });
        for status in &statuses {
            Self::unit_metrics(&mut units, status).set(status);
        }
        // Under the lock too: the supervisor's gauges set in the order read.
        self.sync_supervisor();
    }

    /// The units named, and the supervisor. Those in `removed` were removed
    /// since: a unit added under the same name is another unit.
    fn sync_units(&self, names: &HashSet<String>, removed: &HashSet<String>) {
        let mut units = self.lock();
        for name in removed {
            if let Some(metrics) = units.remove(name) {
                metrics.clear();
            }
        }
        for name in names {
            match self.handle.status(name) {
                Some(status) => Self::unit_metrics(&mut units, &status).set(&status),
                None => {
                    if let Some(metrics) = units.remove(name) {
                        metrics.clear();
                    }
                }
            }
        }
        // Under the lock too: the supervisor's gauges set in the order read.
        self.sync_supervisor();
    }

    /// The metrics of the unit `status` is about, registered if new. A
    /// unit of another kind under a name seen before (one was removed and
    /// the other added) gets series of its own, with its own `type`.
    fn unit_metrics<'a>(units: &'a mut HashMap<String, UnitMetrics>, status: &UnitStatus) -> &'a mut UnitMetrics {
        let metrics = units.entry(status.name.clone()).or_insert_with(|| UnitMetrics::register(status));
        if metrics.kind != status.kind.as_str() {
            metrics.clear();
            *metrics = UnitMetrics::register(status);
        }
        metrics
    }

    fn sync_supervisor(&self) {
        self.up.set(flag(health::is_running(&self.handle)));
        self.ready.set(flag(health::units_ready(&self.handle)));
    }
}

/// The metrics' help texts and units, for the exporters that show them.
fn describe() {
    describe_gauge!(UP, "1 while the supervisor runs, 0 once it has shut down.");
    describe_gauge!(
        READY,
        "1 when every unit that should run is ready and no shutdown has begun (health checks not included)."
    );
    describe_gauge!(UNIT_UP, "1 while a run of the unit is in progress.");
    describe_gauge!(UNIT_READY, "1 while the unit is ready.");
    describe_gauge!(UNIT_STATE, "1 for the state the unit is in, 0 for the others.");
    describe_counter!(
        UNIT_RESTARTS,
        "Restarts performed since the supervisor started, including before a manual restart or start."
    );
    describe_gauge!(UNIT_EXIT_CODE, "Exit code of the unit's last run, if it had one.");
    describe_gauge!(UNIT_EXIT_SIGNAL, "The signal that ended the unit's last run, if one did.");
    describe_gauge!(
        UNIT_START_TIME,
        Unit::Seconds,
        "When the unit's current or last run started, in seconds since the Unix epoch."
    );
    describe_gauge!(
        UNIT_UPTIME,
        Unit::Seconds,
        "How long the unit's current run had lasted at its last event or refresh."
    );
}

/// What the publisher learns changes by: the events, and the changes that
/// have none (a unit asked to stop becomes `Stopping`, and not ready,
/// without one; its `Stopped` comes once it has stopped).
struct Sources {
    events: broadcast::Receiver<Event>,
    quiet: broadcast::Receiver<SmolStr>,
}

/// The units a batch of changes names.
#[derive(Default)]
struct Batch {
    names: HashSet<String>,
    /// Removed since: a unit added under the same name is another unit.
    removed: HashSet<String>,
    /// Changes were missed: every unit is read again.
    lagged: bool,
}

impl Batch {
    fn event(&mut self, event: Event) {
        if matches!(event.kind, EventKind::Removed) {
            self.removed.insert(event.unit.clone());
        }
        self.names.insert(event.unit);
    }

    fn quiet(&mut self, unit: SmolStr) {
        self.names.insert(unit.into());
    }
}

/// Sets the metrics on every batch of changes until the supervisor ends.
async fn publish(published: Arc<Published>, mut changes: Sources, stop: CancellationToken) {
    loop {
        let mut batch = Batch::default();
        tokio::select! {
            () = stop.cancelled() => return,
            () = published.handle.ended() => break,
            event = changes.events.recv() => match event {
                Ok(event) => batch.event(event),
                Err(RecvError::Lagged(_)) => batch.lagged = true,
                Err(RecvError::Closed) => break,
            },
            unit = changes.quiet.recv() => match unit {
                Ok(unit) => batch.quiet(unit),
                Err(RecvError::Lagged(_)) => batch.lagged = true,
                Err(RecvError::Closed) => break,
            },
        }
        // Everything queued is one batch: a storm of changes costs one
        // reading per unit named, and one readiness verdict.
        loop {
            match changes.events.try_recv() {
                Ok(event) => batch.event(event),
                Err(TryRecvError::Lagged(_)) => batch.lagged = true,
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        loop {
            match changes.quiet.try_recv() {
                Ok(unit) => batch.quiet(unit),
                Err(TryRecvError::Lagged(_)) => batch.lagged = true,
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        if batch.lagged {
            published.sync_all();
        } else {
            published.sync_units(&batch.names, &batch.removed);
        }
    }
    // The last word: every unit as it ended, and `supervisor_up` 0.
    published.sync_all();
}
