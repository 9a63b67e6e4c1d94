//! Each unit's output in a file of its own, rotated by `tracing-appender`,
//! as supervisord's `stdout_logfile` or process-compose's `log_location`
//! do.
//!
//! ```text
//! cargo run --example log_files                  # files in $TMPDIR/supervisor-unit-logs
//! cargo run --example log_files -- ./logs
//! ```
//!
//! A daemon's output lines are `tracing` events with the target
//! `supervisor::output` and the fields `unit` (its path), `stream`
//! (`stdout` or `stderr`) and the line as the message. A small `Layer`
//! sends each to the `RollingFileAppender` of its unit, which rotates the
//! file daily and keeps a week of them; everything else still goes to the
//! terminal. It runs three daemons for three seconds, then shows the files.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use supervisor::{DaemonSpec, GroupSpec, Supervisor};
use tracing::field::{Field, Visit};
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Writes every output line of a unit to its own file in `dir`,
/// `<unit>.<date>.log` (`/` of a path written `.`: `storage.db`), as
/// `<time> <stream>: <line>`.
struct UnitFiles {
    dir: PathBuf,
    files: Mutex<HashMap<String, RollingFileAppender>>,
}

impl UnitFiles {
    fn new(dir: impl Into<PathBuf>) -> Self {
        UnitFiles { dir: dir.into(), files: Mutex::default() }
    }

    /// A file name for a unit path: its names joined by `.`, and any
    /// character that has no place in a file name replaced.
    fn file_name(unit: &str) -> String {
        unit.chars()
            .map(|c| match c {
                '/' => '.',
                c if c.is_ascii_alphanumeric() || "-_.".contains(c) => c,
                _ => '_',
            })
            .collect()
    }
}

/// The fields of an output line.
#[derive(Default)]
struct Line {
    unit: Option<String>,
    stream: Option<String>,
    text: String,
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "unit" => self.unit = Some(value.to_owned()),
            "stream" => self.stream = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.text = format!("{value:?}"),
            "unit" => self.unit = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for UnitFiles {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "supervisor::output" {
            return;
        }
        let mut line = Line::default();
        event.record(&mut line);
        let Some(unit) = line.unit else { return };
        let mut files = self.files.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let file = match files.entry(unit) {
            Entry::Occupied(file) => file.into_mut(),
            Entry::Vacant(slot) => {
                let appender = RollingFileAppender::builder()
                    .rotation(Rotation::DAILY) // or HOURLY, MINUTELY, WEEKLY, NEVER
                    .filename_prefix(Self::file_name(slot.key()))
                    .filename_suffix("log")
                    .max_log_files(7) // older files are deleted at rotation
                    .build(&self.dir);
                match appender {
                    Ok(appender) => slot.insert(appender),
                    Err(error) => {
                        eprintln!("cannot open a log file for `{}` in {}: {error}", slot.key(), self.dir.display());
                        return;
                    }
                }
            }
        };
        let stream = line.stream.as_deref().unwrap_or("?");
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        let _ = writeln!(file, "{now} {stream}: {}", line.text);
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).map_or_else(|| std::env::temp_dir().join("supervisor-unit-logs"), PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    tracing_subscriber::registry()
        // The terminal: the lifecycle, without the output lines.
        .with(tracing_subscriber::fmt::layer().with_filter(EnvFilter::new("info,supervisor::output=off")))
        // The files: the output lines, a file per unit.
        .with(UnitFiles::new(&dir))
        .init();

    let handle = Supervisor::builder()
        .daemon(DaemonSpec::new("web", "sh").args(["-c", "while :; do echo web: GET / 200; sleep 0.5; done"]))
        .daemon(DaemonSpec::new("worker", "sh").args([
            "-c",
            "i=0; while :; do i=$((i+1)); echo worker: job $i done; echo worker: job $i was slow >&2; sleep 1; done",
        ]))
        .group(GroupSpec::new("storage").daemon(
            DaemonSpec::new("db", "sh").args(["-c", "echo db: ready; while :; do sleep 1; echo db: checkpoint; done"]),
        ))
        .build()?
        .start();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let report = handle.shutdown().await;
    println!("{report}");

    show_files(&dir)?;
    Ok(())
}

/// Lists the log files, with their first lines.
fn show_files(dir: &Path) -> std::io::Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "log"))
        .collect();
    files.sort();
    println!("\nlog files in {}:", dir.display());
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        println!("  {} ({} lines)", file.display(), text.lines().count());
        for line in text.lines().take(2) {
            println!("      {line}");
        }
    }
    Ok(())
}
