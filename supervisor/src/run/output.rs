//! Captured process output: reading lines without ever blocking the child,
//! and the bounded per-unit tail.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{ChildStderr, ChildStdout};

/// The longest line kept as one piece; a longer one is split into pieces of
/// this size, each marked `continued` in its `tracing` event.
pub(crate) const MAX_LINE_BYTES: usize = 64 * 1024;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The last lines of a unit's stdout and stderr, in arrival order.
#[derive(Debug)]
pub(crate) struct OutputTail {
    capacity: usize,
    lines: Mutex<VecDeque<String>>,
}

impl OutputTail {
    pub(crate) fn new(capacity: usize) -> Self {
        OutputTail { capacity, lines: Mutex::new(VecDeque::new()) }
    }

    fn push(&self, line: String) {
        if self.capacity == 0 {
            return;
        }
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == self.capacity {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The last `n` lines, oldest first.
    pub(crate) fn last(&self, n: usize) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let skip = lines.len().saturating_sub(n);
        lines.iter().skip(skip).cloned().collect()
    }
}

/// The captured pipes of one run, read inside the run's own future (no task
/// of their own): [`pump`](Self::pump) while the process runs,
/// [`drain`](Self::drain) once it has exited.
///
/// Every read keeps its progress (a partial line included) in `self`, so
/// that a read cancelled by a `select!` loses nothing.
pub(crate) struct Capture {
    unit: Arc<str>,
    tail: Arc<OutputTail>,
    stdout: Option<LineReader<ChildStdout>>,
    stderr: Option<LineReader<ChildStderr>>,
}

impl Capture {
    pub(crate) fn new(
        unit: Arc<str>,
        tail: Arc<OutputTail>,
        stdout: Option<ChildStdout>,
        stderr: Option<ChildStderr>,
    ) -> Self {
        Capture { unit, tail, stdout: stdout.map(LineReader::new), stderr: stderr.map(LineReader::new) }
    }

    /// Reads lines until every pipe has reached end-of-file. Cancel-safe.
    pub(crate) async fn drain(&mut self) {
        loop {
            let (stream, piece) = match (&mut self.stdout, &mut self.stderr) {
                (None, None) => return,
                (Some(stdout), None) => (Stream::Stdout, stdout.next().await),
                (None, Some(stderr)) => (Stream::Stderr, stderr.next().await),
                (Some(stdout), Some(stderr)) => tokio::select! {
                    piece = stdout.next() => (Stream::Stdout, piece),
                    piece = stderr.next() => (Stream::Stderr, piece),
                },
            };
            match piece {
                Ok(Some((bytes, continued))) => emit(&self.unit, stream, &self.tail, bytes, continued),
                Ok(None) => self.close(stream),
                Err(error) => {
                    tracing::warn!(target: "supervisor::output", unit = %self.unit, stream = stream.as_str(), %error, "could not read output");
                    self.close(stream);
                }
            }
        }
    }

    /// Reads lines for as long as it is polled: meant to run beside a wait
    /// for the process, so that the child never blocks on a full pipe.
    /// Cancel-safe.
    pub(crate) async fn pump(&mut self) -> std::convert::Infallible {
        self.drain().await;
        std::future::pending().await
    }

    fn close(&mut self, stream: Stream) {
        match stream {
            Stream::Stdout => self.stdout = None,
            Stream::Stderr => self.stderr = None,
        }
    }
}

/// One pipe, read a piece at a time.
struct LineReader<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    fn new(pipe: R) -> Self {
        LineReader { reader: BufReader::with_capacity(MAX_LINE_BYTES, pipe), line: Vec::new() }
    }

    /// The next line or piece of a long line (and whether more of the line
    /// follows), or `None` at end-of-file. Cancel-safe.
    async fn next(&mut self) -> std::io::Result<Option<(Vec<u8>, bool)>> {
        // `self.line` is emptied only once a piece is complete: a cancelled
        // read resumes where it stopped.
        match read_piece(&mut self.reader, &mut self.line).await? {
            Piece::Eof => Ok(None),
            Piece::Line => Ok(Some((std::mem::take(&mut self.line), false))),
            Piece::Partial => Ok(Some((std::mem::take(&mut self.line), true))),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Piece {
    /// A whole line (its newline stripped), or the last bytes before EOF.
    Line,
    /// The first `MAX_LINE_BYTES` of a longer line; the rest follows.
    Partial,
    Eof,
}

/// Reads up to a newline or `MAX_LINE_BYTES` into `line`, whichever comes
/// first, so that a huge line never grows memory nor stalls the pipe.
async fn read_piece<R: AsyncRead + Unpin>(reader: &mut BufReader<R>, line: &mut Vec<u8>) -> std::io::Result<Piece> {
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(if line.is_empty() { Piece::Eof } else { Piece::Line });
        }
        let room = MAX_LINE_BYTES - line.len();
        let window = &buffer[..buffer.len().min(room)];
        if let Some(newline) = window.iter().position(|&byte| byte == b'\n') {
            line.extend_from_slice(&window[..newline]);
            reader.consume(newline + 1);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Piece::Line);
        }
        let taken = window.len();
        line.extend_from_slice(window);
        reader.consume(taken);
        if line.len() == MAX_LINE_BYTES {
            return Ok(Piece::Partial);
        }
    }
}

fn emit(unit: &str, stream: Stream, tail: &OutputTail, bytes: Vec<u8>, continued: bool) {
    let text = String::from_utf8(bytes).unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
    tracing::info!(target: "supervisor::output", unit, stream = stream.as_str(), continued, "{text}");
    tail.push(text);
}
