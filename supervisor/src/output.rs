//! Captured process output: reading lines without ever blocking the child,
//! and the bounded per-unit tail.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::JoinHandle;

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

/// Spawns a reader that turns `pipe` into lines until end-of-file.
pub(crate) fn capture<R>(pipe: R, stream: Stream, unit: Arc<str>, tail: Arc<OutputTail>) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut reader = BufReader::with_capacity(MAX_LINE_BYTES, pipe);
        let mut line = Vec::new();
        loop {
            match read_piece(&mut reader, &mut line).await {
                Ok(Piece::Eof) => break,
                Ok(piece) => {
                    emit(&unit, stream, &tail, &line, piece == Piece::Partial);
                    line.clear();
                }
                Err(error) => {
                    tracing::warn!(target: "supervisor::output", unit = %unit, stream = stream.as_str(), %error, "could not read output");
                    break;
                }
            }
        }
    })
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

fn emit(unit: &str, stream: Stream, tail: &OutputTail, bytes: &[u8], continued: bool) {
    let text = String::from_utf8_lossy(bytes).into_owned();
    tracing::info!(target: "supervisor::output", unit, stream = stream.as_str(), continued, "{text}");
    tail.push(text);
}
