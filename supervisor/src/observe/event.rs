//! Typed events: what happened to which unit, and when.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::Strategy;
use crate::spec::policy::GiveUpReason;
use crate::text::truncate_at_char;

/// Something that happened to a unit, sent to every
/// [`subscribe`](crate::SupervisorHandle::subscribe)r.
///
/// The same facts are emitted as `tracing` events inside a span named `unit`
/// with the unit's path as a field.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), supervisor::Error> {
/// use supervisor::{EventKind, MaxRestarts, RestartPolicy, Supervisor, TaskSpec};
///
/// let sup = Supervisor::builder()
///     .task(TaskSpec::new("once", |_ctx| async { Err::<(), _>("boom") })
///         .restart(RestartPolicy::new().max_restarts(MaxRestarts::AtMost(0))))
///     .build()?;
/// let mut events = sup.subscribe();
/// let handle = sup.start();
/// loop {
///     let event = events.recv().await.expect("the supervisor is alive");
///     if let EventKind::GaveUp { .. } = event.kind {
///         assert_eq!(event.unit, "once");
///         break;
///     }
/// }
/// handle.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Event {
    /// The unit's path: its name after its groups' (`"storage/db"`).
    pub unit: String,
    /// When it happened (wall clock).
    pub time: SystemTime,
    /// What happened.
    pub kind: EventKind,
}

impl Event {
    pub(crate) fn new(unit: &str, time: SystemTime, kind: EventKind) -> Self {
        Event { unit: unit.to_owned(), time, kind }
    }
}

/// `unit: what happened`, one line, as a log or a dashboard shows it (the
/// time is left to the caller's format).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), supervisor::Error> {
/// use supervisor::{Context, Supervisor, TaskSpec};
///
/// let sup = Supervisor::builder()
///     .task(TaskSpec::new("worker", |ctx: Context| async move { ctx.cancelled().await }))
///     .build()?;
/// let mut events = sup.subscribe();
/// let handle = sup.start();
/// let started = events.recv().await.expect("the supervisor is alive");
/// assert_eq!(started.to_string(), "worker: started");
/// handle.shutdown().await;
/// # Ok(())
/// # }
/// ```
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.unit, self.kind)
    }
}

/// Writes through to a formatter with control characters escaped as Rust
/// writes them (`\n`, `\r`, `\t`, `\u{1b}`), and Unicode's line separators
/// and bidirectional overrides too, so that a message with one (an
/// error's, a panic's) stays on its event's line, and can neither forge a
/// line of its own in a log nor rewrite one on a terminal.
struct OneLine<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for OneLine<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text;
        while let Some((at, escaped)) = rest.char_indices().find(|&(_, c)| is_escaped(c)) {
            self.0.write_str(&rest[..at])?;
            write!(self.0, "{}", escaped.escape_default())?;
            rest = &rest[at + escaped.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// A character that [`OneLine`] escapes.
fn is_escaped(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// What happened to a unit.
///
/// More kinds of event may be added: a `match` on it needs a `_` arm.
///
/// # Examples
///
/// ```
/// use supervisor::{Event, EventKind};
///
/// fn log(event: &Event) {
///     match &event.kind {
///         EventKind::Restarting { attempt, delay } => {
///             println!("{}: restart #{attempt} in {delay:?}", event.unit)
///         }
///         EventKind::GaveUp { reason } => eprintln!("{}: gave up: {reason}", event.unit),
///         _ => {}
///     }
/// }
/// # let _ = log;
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// A run started.
    Started {
        /// Restarts performed before this run.
        restart_count: u32,
        /// The process ID, for processes.
        pid: Option<u32>,
    },
    /// A run ended by itself (not on request).
    Exited {
        /// How it ended.
        reason: ExitReason,
    },
    /// A task panicked; the run counts as failed.
    Panicked {
        /// The panic message.
        message: String,
    },
    /// The policy restarts the unit after `delay`.
    Restarting {
        /// The restart about to be performed (1 for the first).
        attempt: u32,
        /// How long it waits first: from now, or, in a `OneForAll` or
        /// `RestForOne` group, from when the siblings it restarts with have
        /// stopped (each in its own time, up to its stop timeout).
        delay: Duration,
    },
    /// The policy does not restart this ending; the unit is now `Exited`.
    Finished,
    /// The supervisor gave up; the unit is now `Failed`.
    GaveUp {
        /// Why.
        reason: GiveUpReason,
    },
    /// The unit's group is about to stop it, and start it again, because
    /// `sibling` ended and the group's strategy restarts them together.
    SiblingFailed {
        /// The path of the unit whose ending caused it.
        sibling: String,
        /// The group's strategy.
        strategy: Strategy,
    },
    /// The unit waits for these units (paths) to be ready before it starts.
    Waiting {
        /// The dependencies not ready yet.
        on: Vec<String>,
    },
    /// The unit became ready after it started: its run said so
    /// (`ctx.ready()`, `READY=1`), its readiness probe passed, its ready
    /// line came, or, for a group, its last unit that was not ready became
    /// ready. A unit ready as soon as it runs
    /// ([`Readiness::Started`](crate::Readiness::Started), the default), and
    /// a group whose units all are, is ready with its
    /// [`Started`](Self::Started) event: no `Ready` follows.
    Ready,
    /// The unit stopped being ready while it runs (a readiness probe
    /// failed, a group's unit stopped being ready).
    NotReady {
        /// Why, when known.
        reason: Option<String>,
    },
    /// The unit was added at run time. The units of an added group are
    /// added with it: each has its `Added`, after the group's.
    Added,
    /// The unit was removed at run time (after it was stopped). The units
    /// of a removed group are removed with it: each has its `Removed`,
    /// before the group's.
    Removed,
    /// The unit was stopped on request.
    Stopped {
        /// Whether it had to be aborted or killed after its stop timeout.
        forced: bool,
        /// How long the stop took.
        took: Duration,
    },
}

/// The longest message an [`ExitReason`] keeps, in bytes: a task's error
/// or panic, a spawn failure or a probe's answer over it is cut, with a
/// note of how much was left out. Each event, log line, status and report
/// about the run carries it.
pub(crate) const MAX_REASON: usize = 64 * 1024;

/// How a run ended. More endings may be added: a `match` on it needs a `_`
/// arm.
///
/// # Examples
///
/// ```
/// use supervisor::ExitReason;
///
/// assert!(ExitReason::Success.is_success());
/// assert_eq!(ExitReason::Code(3).exit_code(), Some(3));
/// assert_eq!(ExitReason::Signal(9).to_string(), "killed by signal 9");
///
/// // A code listed in `DaemonSpec::success_codes` is a success that keeps its code.
/// assert!(ExitReason::SuccessCode(143).is_success());
/// assert_eq!(ExitReason::SuccessCode(143).exit_code(), Some(143));
/// assert_eq!(ExitReason::SuccessCode(143).error_message(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitReason {
    /// A task returned `Ok(())`/`()`, or a process exited with code 0.
    Success,
    /// A task returned an error (shown with `Display`).
    Error(String),
    /// A task panicked with this message.
    Panic(String),
    /// A process exited with this code, which is not one of its success
    /// codes: a non-zero code, or `0` when
    /// [`success_codes`](crate::DaemonSpec::success_codes) leaves it out.
    Code(i32),
    /// A process was ended by this signal, not sent by the supervisor.
    Signal(i32),
    /// The process could not be started.
    SpawnFailed(String),
    /// Its liveness probe failed `failure_threshold` times in a row, so the
    /// run was stopped; the last failure.
    Unhealthy(String),
    /// It gave no sign of life within its watchdog's period (or a process
    /// sent `WATCHDOG=trigger`), so the run was stopped.
    Hung,
    /// A group gave up on its units (more restarts than its intensity
    /// allows) and stopped them.
    GroupGaveUp(GiveUpReason),
    /// A group's critical unit ended for good as a failure, so the group
    /// stopped its units.
    CriticalFailed {
        /// The path of the critical unit.
        unit: String,
    },
    /// A process exited with this non-zero code, listed in its
    /// [`success_codes`](crate::DaemonSpec::success_codes): a success for
    /// the restart policy and the report, whose code the status keeps.
    SuccessCode(i32),
}

impl ExitReason {
    /// This reason with its message cut to [`MAX_REASON`] bytes, on a
    /// character's boundary. A 16 MiB error, kept as the unit's
    /// `last_error` and sent with each event, took 119 MB.
    pub(crate) fn bounded(self) -> Self {
        match self {
            ExitReason::Error(message) => ExitReason::Error(bounded_text(message)),
            ExitReason::Panic(message) => ExitReason::Panic(bounded_text(message)),
            ExitReason::SpawnFailed(message) => ExitReason::SpawnFailed(bounded_text(message)),
            ExitReason::Unhealthy(message) => ExitReason::Unhealthy(bounded_text(message)),
            other => other,
        }
    }

    /// Whether the run counts as a success for [`RestartOn`](crate::RestartOn).
    ///
    /// ```
    /// use supervisor::ExitReason;
    ///
    /// assert!(ExitReason::Success.is_success());
    /// assert!(!ExitReason::Code(1).is_success());
    /// assert!(!ExitReason::Error("connection refused".into()).is_success());
    /// ```
    #[must_use]
    pub fn is_success(&self) -> bool {
        matches!(self, ExitReason::Success | ExitReason::SuccessCode(_))
    }

    /// The exit code kept in the status: a process's code, `0` or `1` for a
    /// task that returned `Ok` or `Err`. `None` for a panic, a signal or a
    /// failure to start.
    ///
    /// ```
    /// use supervisor::ExitReason;
    ///
    /// assert_eq!(ExitReason::Success.exit_code(), Some(0));
    /// assert_eq!(ExitReason::Error("timeout".into()).exit_code(), Some(1));
    /// assert_eq!(ExitReason::Code(42).exit_code(), Some(42));
    /// assert_eq!(ExitReason::Signal(9).exit_code(), None);
    /// ```
    #[must_use]
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            ExitReason::Success => Some(0),
            ExitReason::Error(_) => Some(1),
            ExitReason::Code(code) | ExitReason::SuccessCode(code) => Some(*code),
            ExitReason::Panic(_)
            | ExitReason::Signal(_)
            | ExitReason::SpawnFailed(_)
            | ExitReason::GroupGaveUp(_)
            | ExitReason::CriticalFailed { .. }
            | ExitReason::Unhealthy(_)
            | ExitReason::Hung => None,
        }
    }

    /// The terminating signal, if any.
    ///
    /// ```
    /// use supervisor::{ExitReason, Signal};
    ///
    /// assert_eq!(ExitReason::Signal(Signal::KILL.number()).signal(), Some(9));
    /// assert_eq!(ExitReason::Code(137).signal(), None);
    /// ```
    #[must_use]
    pub fn signal(&self) -> Option<i32> {
        match self {
            ExitReason::Signal(signal) => Some(*signal),
            _ => None,
        }
    }

    /// The message kept as `last_error`, for failures that have one.
    ///
    /// ```
    /// use supervisor::ExitReason;
    ///
    /// assert_eq!(ExitReason::Success.error_message(), None);
    /// assert_eq!(ExitReason::Panic("index out of bounds".into()).error_message().as_deref(),
    ///            Some("panicked: index out of bounds"));
    /// assert_eq!(ExitReason::Code(3).error_message().as_deref(), Some("exited with code 3"));
    /// ```
    #[must_use]
    pub fn error_message(&self) -> Option<String> {
        match self {
            ExitReason::Success | ExitReason::SuccessCode(_) => None,
            ExitReason::Error(message) | ExitReason::SpawnFailed(message) => Some(message.clone()),
            ExitReason::Panic(message) => Some(format!("panicked: {message}")),
            ExitReason::Code(_)
            | ExitReason::Signal(_)
            | ExitReason::GroupGaveUp(_)
            | ExitReason::CriticalFailed { .. }
            | ExitReason::Unhealthy(_)
            | ExitReason::Hung => Some(self.to_string()),
        }
    }
}

/// What happened, in a few words, on one line (a control character in a
/// message is escaped: a line break is written `\n`, an escape `\u{1b}`):
/// `started`, `restarting in 1s (attempt 2)`, `stopped in 12ms`.
impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        let f = &mut OneLine(f);
        let took = |took: &Duration| humantime::format_duration(*took);
        match self {
            EventKind::Started { restart_count: 0, pid: None } => f.write_str("started"),
            EventKind::Started { restart_count, pid: None } => write!(f, "started (restart {restart_count})"),
            EventKind::Started { restart_count: 0, pid: Some(pid) } => write!(f, "started (pid {pid})"),
            EventKind::Started { restart_count, pid: Some(pid) } => {
                write!(f, "started (restart {restart_count}, pid {pid})")
            }
            EventKind::Exited { reason } => write!(f, "{reason}"),
            EventKind::Panicked { message } => write!(f, "panicked: {message}"),
            EventKind::Restarting { attempt, delay } => {
                write!(f, "restarting in {} (attempt {attempt})", took(delay))
            }
            EventKind::Finished => f.write_str("finished: its policy does not restart it"),
            EventKind::GaveUp { reason } => write!(f, "gave up: {reason}"),
            EventKind::SiblingFailed { sibling, strategy } => {
                write!(f, "stopped to restart with `{sibling}`, which ended ({strategy})")
            }
            EventKind::Waiting { on } => {
                f.write_str("waiting for ")?;
                for (index, name) in on.iter().enumerate() {
                    let separator = if index == 0 { "" } else { ", " };
                    write!(f, "{separator}`{name}`")?;
                }
                Ok(())
            }
            EventKind::Ready => f.write_str("ready"),
            EventKind::NotReady { reason: None } => f.write_str("not ready"),
            EventKind::NotReady { reason: Some(reason) } => write!(f, "not ready: {reason}"),
            EventKind::Added => f.write_str("added"),
            EventKind::Removed => f.write_str("removed"),
            EventKind::Stopped { forced: false, took: stop } => write!(f, "stopped in {}", took(stop)),
            EventKind::Stopped { forced: true, took: stop } => {
                write!(f, "stopped in {}: aborted or killed after its grace period", took(stop))
            }
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Success => f.write_str("exited successfully"),
            ExitReason::Error(message) => write!(f, "failed: {message}"),
            ExitReason::Panic(message) => write!(f, "panicked: {message}"),
            ExitReason::Code(code) => write!(f, "exited with code {code}"),
            ExitReason::Signal(signal) => write!(f, "killed by signal {signal}"),
            ExitReason::SpawnFailed(message) => write!(f, "could not start: {message}"),
            ExitReason::GroupGaveUp(reason) => write!(f, "gave up: {reason}"),
            ExitReason::Unhealthy(why) => write!(f, "stopped: its liveness probe failed: {why}"),
            ExitReason::Hung => f.write_str("stopped: hung (no sign of life within its watchdog period)"),
            ExitReason::CriticalFailed { unit } => write!(f, "critical unit `{unit}` failed"),
            ExitReason::SuccessCode(code) => write!(f, "exited with code {code} (a success code)"),
        }
    }
}

/// `text` cut to [`MAX_REASON`] bytes at a character's boundary, with a
/// note of how many were left out.
pub(crate) fn bounded_text(mut text: String) -> String {
    if is_cut_already(&text) {
        return text;
    }
    let left_out = truncate_at_char(&mut text, MAX_REASON);
    if left_out > 0 {
        text.push_str(&format!("… ({left_out} bytes left out)"));
    }
    text
}

/// Whether `text` was cut here already, with its note, as a task's error
/// is cut while it is written ([`bounded_display`]): cut again, its note
/// would go.
fn is_cut_already(text: &str) -> bool {
    text.len() > MAX_REASON
        && text
            .rfind("… (")
            .is_some_and(|note| note <= MAX_REASON && text.len() - note <= 64 && text.ends_with(" bytes left out)"))
}

/// Past this many bytes left out of a message, the rest is not even read:
/// a `Display` that writes without end must not hold its run for ever.
const MAX_READ_PAST: usize = 16 << 20;

/// The text of `message` (`{:#}`, which keeps an `anyhow` error's chain),
/// bounded as [`bounded_text`] bounds it, but cut while it is written: no
/// more than [`MAX_REASON`] bytes of it are ever held. Formatted whole
/// first, an error of 1 GiB took as much memory for a moment, and one
/// whose `Display` never ends grew until the process was killed.
///
/// # Panics
///
/// As `format!` does, when `message`'s `Display` fails by itself.
pub(crate) fn bounded_display(message: &dyn fmt::Display) -> String {
    let mut cut = Cut { kept: String::new(), left_out: 0 };
    let written = fmt::write(&mut cut, format_args!("{message:#}"));
    let Cut { mut kept, left_out } = cut;
    match written {
        Ok(()) if left_out == 0 => {}
        Ok(()) => kept.push_str(&format!("… ({left_out} bytes left out)")),
        Err(_) if left_out > MAX_READ_PAST => kept.push_str(&format!("… (at least {left_out} bytes left out)")),
        Err(_) => panic!("a Display implementation returned an error unexpectedly"),
    }
    kept
}

/// Keeps the first [`MAX_REASON`] bytes written to it, at a character's
/// boundary, and counts the rest.
struct Cut {
    kept: String,
    left_out: usize,
}

impl fmt::Write for Cut {
    fn write_str(&mut self, piece: &str) -> fmt::Result {
        if self.left_out == 0 {
            let mut room = MAX_REASON - self.kept.len();
            if piece.len() <= room {
                self.kept.push_str(piece);
                return Ok(());
            }
            while !piece.is_char_boundary(room) {
                room -= 1;
            }
            self.kept.push_str(&piece[..room]);
            self.left_out = piece.len() - room;
        } else {
            self.left_out = self.left_out.saturating_add(piece.len());
        }
        if self.left_out > MAX_READ_PAST { Err(fmt::Error) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_reads_as_a_few_words() {
        let ms = Duration::from_millis;
        let kinds = [
            (EventKind::Started { restart_count: 0, pid: None }, "started"),
            (EventKind::Started { restart_count: 2, pid: Some(41) }, "started (restart 2, pid 41)"),
            (EventKind::Exited { reason: ExitReason::Code(3) }, "exited with code 3"),
            (EventKind::Restarting { attempt: 2, delay: ms(1500) }, "restarting in 1s 500ms (attempt 2)"),
            (
                EventKind::SiblingFailed { sibling: "storage/db".to_owned(), strategy: Strategy::OneForAll },
                "stopped to restart with `storage/db`, which ended (one_for_all)",
            ),
            (EventKind::Waiting { on: vec!["db".to_owned(), "cache".to_owned()] }, "waiting for `db`, `cache`"),
            (EventKind::NotReady { reason: Some("tcp: refused".to_owned()) }, "not ready: tcp: refused"),
            (
                EventKind::Stopped { forced: true, took: ms(5) },
                "stopped in 5ms: aborted or killed after its grace period",
            ),
        ];
        for (kind, text) in kinds {
            assert_eq!(kind.to_string(), text);
        }
        let event = Event::new("api", SystemTime::UNIX_EPOCH, EventKind::Ready);
        assert_eq!(event.to_string(), "api: ready");
    }

    /// A line break in a message (an error's, a panic's, a check's) would
    /// split the event's line and forge a line of its own in a log.
    #[test]
    fn an_event_stays_on_one_line_whatever_its_message() {
        let failed = EventKind::Exited { reason: ExitReason::Error("a\nb\r\nc".to_owned()) };
        assert_eq!(Event::new("db", SystemTime::UNIX_EPOCH, failed).to_string(), "db: failed: a\\nb\\r\\nc");
        let panicked = EventKind::Panicked { message: "first\nsecond".to_owned() };
        assert_eq!(panicked.to_string(), "panicked: first\\nsecond");
        let not_ready = EventKind::NotReady { reason: Some("nope\nreally".to_owned()) };
        assert_eq!(not_ready.to_string(), "not ready: nope\\nreally");
    }

    /// Other control characters rewrite a line on a terminal (an escape
    /// sequence that erases it, a form feed, a backspace), and Unicode's
    /// separators and overrides break or reorder it: escaped too, where
    /// only `\n` and `\r` were.
    #[test]
    fn an_event_escapes_every_control_character() {
        let forged =
            ExitReason::Error("a\u{1b}[2K\u{1b}[1Gforged\tb\u{b}\u{c}\u{8}\u{0}\u{85}\u{2028}\u{202e}é✓".to_owned());
        let text = EventKind::Exited { reason: forged }.to_string();
        assert_eq!(text, "failed: a\\u{1b}[2K\\u{1b}[1Gforged\\tb\\u{b}\\u{c}\\u{8}\\u{0}\\u{85}\\u{2028}\\u{202e}é✓");
        assert!(!text.chars().any(is_escaped), "{text:?}");
    }

    #[test]
    fn a_long_message_is_cut_on_a_character_with_a_note() {
        let long = format!("x{}", "é".repeat(MAX_REASON));
        let ExitReason::Error(cut) = ExitReason::Error(long.clone()).bounded() else { panic!() };
        let kept = cut.split_once('…').expect("a note").0;
        assert!(kept.len() <= MAX_REASON && long.starts_with(kept), "{}", kept.len());
        assert!(cut.ends_with(&format!("({} bytes left out)", long.len() - kept.len())), "{}", &cut[kept.len()..]);
        assert_eq!(ExitReason::Panic("short".into()).bounded(), ExitReason::Panic("short".into()));
        assert_eq!(ExitReason::Code(3).bounded(), ExitReason::Code(3));
    }

    /// Cut while written, in pieces of any size, a message is cut as when
    /// cut whole, on the same character, and cutting it again keeps it.
    #[test]
    fn a_message_cut_while_written_is_cut_as_when_cut_whole() {
        struct Pieces<'a>(&'a str, usize);
        impl fmt::Display for Pieces<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut rest = self.0;
                while !rest.is_empty() {
                    let mut at = self.1.min(rest.len());
                    while !rest.is_char_boundary(at) {
                        at += 1;
                    }
                    f.write_str(&rest[..at])?;
                    rest = &rest[at..];
                }
                Ok(())
            }
        }
        for pad in 0..4 {
            let long = format!("{}{}", "x".repeat(pad), "é✓😀".repeat(MAX_REASON / 4));
            let (at_the_bound, just_past) = ("y".repeat(MAX_REASON), "y".repeat(MAX_REASON + 1));
            for text in [long.as_str(), &at_the_bound, &just_past, "short"] {
                for piece in [1, 3, 1000, MAX_REASON, usize::MAX] {
                    let cut = bounded_display(&Pieces(text, piece));
                    assert_eq!(cut, bounded_text(text.to_owned()), "pad {pad}, pieces of {piece}");
                    assert_eq!(bounded_text(cut.clone()), cut);
                }
            }
        }
    }
}
