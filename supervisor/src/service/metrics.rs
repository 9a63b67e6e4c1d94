//! The Prometheus text exposition of a supervisor
//! ([`SupervisorHandle::metrics_text`]), served by the HTTP endpoint's
//! `/metrics` and available without it.

use std::fmt::Write as _;
use std::time::SystemTime;

use crate::service::health;
use crate::{SupervisorHandle, UnitState, UnitStatus};

/// The `Content-Type` of [`SupervisorHandle::metrics_text`]: the Prometheus
/// text format, version 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(crate) const STATES: [UnitState; 8] = [
    UnitState::Waiting,
    UnitState::Starting,
    UnitState::Running,
    UnitState::Backoff,
    UnitState::Stopping,
    UnitState::Stopped,
    UnitState::Exited,
    UnitState::Failed,
];

impl SupervisorHandle {
    /// The supervisor's metrics in the Prometheus text format (serve it with
    /// [`PROMETHEUS_CONTENT_TYPE`]): what the HTTP endpoint's `/metrics`
    /// answers, for an application that serves metrics on a server of its
    /// own.
    ///
    /// | metric | type | meaning |
    /// | --- | --- | --- |
    /// | `supervisor_up` | gauge | 1 while the supervisor runs, 0 once it has shut down |
    /// | `supervisor_ready` | gauge | 1 when every unit that should run is ready and no shutdown has begun (health checks not run) |
    /// | `supervisor_unit_up` | gauge | 1 while a run of the unit is in progress |
    /// | `supervisor_unit_ready` | gauge | 1 while the unit is ready (see [`Readiness`](crate::Readiness)) |
    /// | `supervisor_unit_state` | gauge | 1 for the state the unit is in (label `state`), 0 for the others |
    /// | `supervisor_unit_restarts_total` | counter | restarts performed since the supervisor started ([`UnitStatus::restarts_total`]) |
    /// | `supervisor_unit_last_exit_code` | gauge | exit code of the unit's last run, if it had one |
    /// | `supervisor_unit_last_exit_signal` | gauge | the signal that ended the unit's last run, if one did |
    /// | `supervisor_unit_start_time_seconds` | gauge | when the unit's current or last run started, in seconds since the Unix epoch |
    /// | `supervisor_unit_uptime_seconds` | gauge | how long the unit's current run has lasted (0 when not running) |
    ///
    /// Every unit's samples carry the labels `unit` (its name) and `type`
    /// (`task`, `process` or `group`). Reading the metrics reads the units' states
    /// only: it runs no health check and takes no lock a restart holds for
    /// long.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, PROMETHEUS_CONTENT_TYPE, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("ticker", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// let text = handle.metrics_text();
    /// assert!(text.contains("# TYPE supervisor_unit_restarts_total counter"));
    /// assert!(text.contains("supervisor_unit_restarts_total{unit=\"ticker\",type=\"task\"} 0"));
    /// // In a handler of your own web server, say:
    /// let response = (PROMETHEUS_CONTENT_TYPE, text);
    /// # let _ = response;
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn metrics_text(&self) -> String {
        metrics_text(self)
    }
}

fn metrics_text(handle: &SupervisorHandle) -> String {
    let statuses: Vec<UnitStatus> = handle.statuses();
    let labels: Vec<String> = statuses.iter().map(labels).collect();
    let units = || statuses.iter().zip(&labels);
    let mut out = String::with_capacity(1024 + statuses.len() * 768);
    family(&mut out, "supervisor_up", "gauge", "1 while the supervisor runs, 0 once it has shut down.");
    let _ = writeln!(out, "supervisor_up {}", u8::from(health::is_running(handle)));

    family(
        &mut out,
        "supervisor_ready",
        "gauge",
        "1 when every unit that should run is ready and no shutdown has begun (health checks not included).",
    );
    let _ = writeln!(out, "supervisor_ready {}", u8::from(health::units_ready(handle)));

    family(&mut out, "supervisor_unit_up", "gauge", "1 while a run of the unit is in progress.");
    for (status, labels) in units() {
        let _ = writeln!(out, "supervisor_unit_up{{{labels}}} {}", u8::from(status.running));
    }

    family(&mut out, "supervisor_unit_ready", "gauge", "1 while the unit is ready.");
    for (status, labels) in units() {
        let _ = writeln!(out, "supervisor_unit_ready{{{labels}}} {}", u8::from(status.ready));
    }

    family(&mut out, "supervisor_unit_state", "gauge", "1 for the state the unit is in, 0 for the others.");
    for (status, labels) in units() {
        for state in STATES {
            let value = u8::from(status.state == state);
            let _ = writeln!(out, "supervisor_unit_state{{{labels},state=\"{state}\"}} {value}");
        }
    }

    family(
        &mut out,
        "supervisor_unit_restarts_total",
        "counter",
        "Restarts performed since the supervisor started, including before a manual restart or start.",
    );
    for (status, labels) in units() {
        let _ = writeln!(out, "supervisor_unit_restarts_total{{{labels}}} {}", status.restarts_total);
    }

    family(&mut out, "supervisor_unit_last_exit_code", "gauge", "Exit code of the unit's last run, if it had one.");
    for (status, labels) in units() {
        if let Some(code) = status.exit_code {
            let _ = writeln!(out, "supervisor_unit_last_exit_code{{{labels}}} {code}");
        }
    }

    family(
        &mut out,
        "supervisor_unit_last_exit_signal",
        "gauge",
        "The signal that ended the unit's last run, if one did.",
    );
    for (status, labels) in units() {
        if let Some(signal) = status.signal {
            let _ = writeln!(out, "supervisor_unit_last_exit_signal{{{labels}}} {signal}");
        }
    }

    family(
        &mut out,
        "supervisor_unit_start_time_seconds",
        "gauge",
        "When the unit's current or last run started, in seconds since the Unix epoch.",
    );
    for (status, labels) in units() {
        let since_epoch = status.last_start.and_then(|at| at.duration_since(SystemTime::UNIX_EPOCH).ok());
        if let Some(since_epoch) = since_epoch {
            let _ = writeln!(out, "supervisor_unit_start_time_seconds{{{labels}}} {}", since_epoch.as_secs_f64());
        }
    }

    family(&mut out, "supervisor_unit_uptime_seconds", "gauge", "How long the unit's current run has lasted.");
    for (status, labels) in units() {
        let uptime = status.uptime.map_or(0.0, |uptime| uptime.as_secs_f64());
        let _ = writeln!(out, "supervisor_unit_uptime_seconds{{{labels}}} {uptime}");
    }
    out
}

/// Starts a metric family: its help and type lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn labels(status: &UnitStatus) -> String {
    let kind = status.kind.as_str();
    format!("unit=\"{}\",type=\"{kind}\"", escape_label(&status.name))
}

/// Escapes a label value as the text format requires.
fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
