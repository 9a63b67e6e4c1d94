//! Captured process output: reading lines without ever blocking the child,
//! and the bounded per-unit tail.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::FutureExt as _;
use smol_str::SmolStr;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{ChildStderr, ChildStdout};
use tokio::task::coop;

use crate::panics::log_contained;
use crate::text::truncate_at_char;

/// The longest line kept as one piece; a longer one is split into pieces of
/// this size, each marked `continued` in its `tracing` event.
pub(crate) const MAX_LINE_BYTES: usize = 64 * 1024;

/// Pieces of output handled for each unit of the task's budget: with
/// tokio's 128 a poll, at most 2,048 pieces before the runtime's other
/// tasks get a turn. One a piece measured a flood of short lines 25 % slower
/// (a yield every 128 lines); a bound of reads alone was none (see
/// [`Capture::drain`]).
const PIECES_PER_BUDGET_UNIT: u8 = 16;

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

/// The last lines of a unit's stdout and stderr, in the order read, bounded
/// both in lines and in bytes of text.
#[derive(Debug)]
pub(crate) struct OutputTail {
    max_lines: usize,
    max_bytes: usize,
    kept: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    lines: VecDeque<Entry>,
    /// The bytes of text in `lines`.
    bytes: usize,
    /// The progress piece that the newest entry, a progress piece too,
    /// replaced. A `\n` that comes late makes the newest a line, which
    /// replaces nothing: this one then goes back before it, as if the
    /// `\r\n` had been written at once.
    replaced: Option<Entry>,
}

#[derive(Debug)]
struct Entry {
    text: String,
    /// The stream of a piece ended by a lone `\r` (a progress line): the
    /// next such piece of the same stream replaces it while it is the newest.
    progress: Option<Stream>,
}

impl OutputTail {
    pub(crate) fn new(max_lines: usize, max_bytes: usize) -> Self {
        OutputTail { max_lines, max_bytes, kept: Mutex::new(Kept::default()) }
    }

    fn push(&self, mut text: String, stream: Stream, kind: PieceKind) {
        if self.max_lines == 0 || self.max_bytes == 0 {
            return;
        }
        if text.len() > self.max_bytes {
            cut(&mut text, self.max_bytes);
        } else if text.capacity() > text.len() + text.len() / 4 {
            // A line read in several reads may hold twice its size.
            text.shrink_to_fit();
        }
        let progress = (kind == PieceKind::Progress).then_some(stream);
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.replaced = None;
        if progress.is_some() && kept.lines.back().is_some_and(|last| last.progress == progress) {
            kept.replaced = kept.lines.pop_back();
            kept.bytes -= kept.replaced.as_ref().map_or(0, |entry| entry.text.len());
        }
        kept.bytes += text.len();
        kept.lines.push_back(Entry { text, progress });
        self.bound(&mut kept);
    }

    /// Pushes out the oldest entries until both bounds hold (the newest
    /// stays, cut to the byte bound already).
    fn bound(&self, kept: &mut Kept) {
        while kept.lines.len() > self.max_lines || (kept.bytes > self.max_bytes && kept.lines.len() > 1) {
            let dropped = kept.lines.pop_front().map_or(0, |entry| entry.text.len());
            kept.bytes -= dropped;
        }
    }

    /// Makes the newest entry, if it is a progress piece of `stream`, a
    /// line: a `\n` came after its `\r`. The progress piece it replaced
    /// goes back before it: written at once, the `\r\n` ended a line,
    /// which replaces nothing.
    fn end_progress(&self, stream: Stream) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(last) = kept.lines.back_mut().filter(|last| last.progress == Some(stream)) else { return };
        last.progress = None;
        if let Some(replaced) = kept.replaced.take() {
            kept.bytes += replaced.text.len();
            let at = kept.lines.len() - 1;
            kept.lines.insert(at, replaced);
            self.bound(&mut kept);
        }
    }

    /// A new run begins: the progress piece that ended the last one, if
    /// any, is its last state, which no piece of the new run replaces
    /// (lines of earlier runs stay until pushed out).
    pub(crate) fn begin_run(&self) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.replaced = None;
        if let Some(last) = kept.lines.back_mut() {
            last.progress = None;
        }
    }

    /// The last `n` lines, oldest first.
    pub(crate) fn last(&self, n: usize) -> Vec<String> {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let skip = kept.lines.len().saturating_sub(n);
        kept.lines.iter().skip(skip).map(|entry| entry.text.clone()).collect()
    }
}

/// Cuts `text` to at most `max` bytes, marker included, at a character
/// boundary, and says so at its end. A `max` shorter than the marker leaves
/// the marker alone.
fn cut(text: &mut String, max: usize) {
    let len = text.len();
    let marker = |dropped: usize| format!("[… {dropped} bytes not kept in the tail]");
    // No marker is longer than the one for dropping every byte.
    let cut_off = truncate_at_char(text, max.saturating_sub(marker(len).len()));
    text.push_str(&marker(cut_off));
    text.shrink_to_fit();
}

/// Waits for a line of output that contains a text: `Readiness::OutputLine`.
#[derive(Debug)]
pub(crate) struct LineWatch {
    text: Box<[u8]>,
    seen: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl LineWatch {
    pub(crate) fn new(text: &str) -> Self {
        LineWatch {
            text: text.as_bytes().into(),
            seen: std::sync::atomic::AtomicBool::new(false),
            notify: tokio::sync::Notify::new(),
        }
    }

    /// Whether the text, not seen yet, is in a piece of one stream's
    /// output. `carry` is that stream's: the end of the long line that
    /// `piece` continues, if any, so that a text straddling two of its
    /// pieces is found once its second part arrives.
    fn finds(&self, piece: &[u8], kind: PieceKind, carry: &mut Vec<u8>) -> bool {
        if self.seen.load(std::sync::atomic::Ordering::Acquire) {
            return false;
        }
        let found = find_across(&self.text, carry, piece);
        if kind != PieceKind::Partial {
            // The line ends here: the next piece starts another one.
            carry.clear();
        }
        found
    }

    /// The text was found: wakes [`seen`](Self::seen).
    fn found(&self) {
        self.seen.store(true, std::sync::atomic::Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Whether a line with the text has been read.
    pub(crate) fn is_seen(&self) -> bool {
        self.seen.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Completes once a line with the text has been read.
    pub(crate) async fn seen(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.seen.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

/// Whether `text` is in `carry` followed by `piece`, where `carry` holds the
/// end of the line's earlier pieces. Leaves in `carry` the last
/// `text.len() - 1` bytes of the two: the most of them that a match ending
/// in a later piece can take, so memory stays within twice the text's size
/// however long the line.
fn find_across(text: &[u8], carry: &mut Vec<u8>, piece: &[u8]) -> bool {
    // Every line contains an empty text (which the spec's checks refuse).
    let Some(keep) = text.len().checked_sub(1) else { return true };
    // A match that starts in `carry` ends within the first `keep` bytes of
    // `piece`.
    carry.extend_from_slice(&piece[..piece.len().min(keep)]);
    let found = contains(carry, text) || contains(piece, text);
    if piece.len() >= keep {
        carry.clear();
        carry.extend_from_slice(&piece[piece.len() - keep..]);
    } else {
        // `carry` holds all of `piece` by now.
        let excess = carry.len().saturating_sub(keep);
        carry.drain(..excess);
    }
    found
}

/// Whether `haystack` contains the non-empty `needle`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// The text a run waits for in its output, with each stream's carry (see
/// [`LineWatch::finds`]): pieces of the two streams arrive interleaved.
struct ReadyLine {
    watch: Arc<LineWatch>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl ReadyLine {
    fn new(watch: Arc<LineWatch>) -> Self {
        ReadyLine { watch, stdout: Vec::new(), stderr: Vec::new() }
    }

    /// Whether the text is in this piece (see [`LineWatch::finds`]).
    fn finds(&mut self, stream: Stream, piece: &[u8], kind: PieceKind) -> bool {
        let carry = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        self.watch.finds(piece, kind, carry)
    }
}

/// The captured pipes of one run, read inside the run's own future (no task
/// of their own): [`pump`](Self::pump) while the process runs,
/// [`drain`](Self::drain) once it has exited.
///
/// Every read keeps its progress (a partial line included) in `self`, so
/// that a read cancelled by a `select!` loses nothing.
pub(crate) struct Capture {
    unit: SmolStr,
    tail: Arc<OutputTail>,
    /// The line a run waits for to be ready, if it does.
    ready_line: Option<ReadyLine>,
    stdout: Option<LineReader<ChildStdout>>,
    stderr: Option<LineReader<ChildStderr>>,
    /// Pieces handled since a unit of the budget was last taken.
    pieces_unbudgeted: u8,
}

impl Capture {
    pub(crate) fn new(
        unit: SmolStr,
        tail: Arc<OutputTail>,
        stdout: Option<ChildStdout>,
        stderr: Option<ChildStderr>,
    ) -> Self {
        Capture {
            unit,
            tail,
            ready_line: None,
            stdout: stdout.map(LineReader::new),
            stderr: stderr.map(LineReader::new),
            pieces_unbudgeted: 0,
        }
    }

    /// Watches the output for a line that contains a text.
    pub(crate) fn watch_for(&mut self, watch: Arc<LineWatch>) {
        self.ready_line = Some(ReadyLine::new(watch));
    }

    /// Reads lines until every pipe has reached end-of-file. Cancel-safe.
    ///
    /// Pieces take units of the task's budget, as reads of the pipe do:
    /// they come out of a read's 64 KiB buffer without any I/O, and counted
    /// by reads alone, a flood of short lines (`yes`) held its thread for
    /// seconds, and the stop, the timers and the exit wait of its own run
    /// with it.
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
            self.take(stream, piece);
            self.pieces_unbudgeted += 1;
            if self.pieces_unbudgeted == PIECES_PER_BUDGET_UNIT {
                self.pieces_unbudgeted = 0;
                coop::consume_budget().await;
            }
        }
    }

    /// Reads the pieces already in the pipes, at most `max`, without
    /// waiting for more: what a process wrote before it exited, taken
    /// before any other process of its group can write more.
    pub(crate) fn read_available(&mut self, max: usize) {
        for _ in 0..max {
            let mut read = false;
            for stream in [Stream::Stdout, Stream::Stderr] {
                let reader = match stream {
                    Stream::Stdout => {
                        self.stdout.as_mut().map(|reader| coop::unconstrained(reader.next()).now_or_never())
                    }
                    Stream::Stderr => {
                        self.stderr.as_mut().map(|reader| coop::unconstrained(reader.next()).now_or_never())
                    }
                };
                if let Some(Some(piece)) = reader {
                    self.take(stream, piece);
                    read = true;
                }
            }
            if !read {
                return;
            }
        }
    }

    /// Hands out the unfinished line each pipe holds: the drain gives up on
    /// a pipe that a process which left the group holds open, and what the
    /// leader wrote last, without a newline, belongs in the tail as the run
    /// ends, not once that process writes again or exits. It goes out as a
    /// piece of a line (`continued`); the rest, if any, follows.
    pub(crate) fn hand_out_unfinished(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let piece = match stream {
                Stream::Stdout => self.stdout.as_mut().and_then(LineReader::take_unfinished),
                Stream::Stderr => self.stderr.as_mut().and_then(LineReader::take_unfinished),
            };
            if let Some(piece) = piece {
                self.take(stream, Ok(Some((piece, PieceKind::Partial))));
            }
        }
    }

    /// Handles a piece read from `stream`, or its end.
    fn take(&mut self, stream: Stream, piece: std::io::Result<Option<(Vec<u8>, PieceKind)>>) {
        match piece {
            Ok(Some((bytes, kind))) => {
                let found = self.ready_line.as_mut().is_some_and(|ready| ready.finds(stream, &bytes, kind));
                emit(&self.unit, stream, &self.tail, bytes, kind);
                // Told once the line is in the tail: a wait for the
                // unit's readiness then finds it there.
                if found && let Some(ready) = &self.ready_line {
                    ready.watch.found();
                }
            }
            Ok(None) => self.close(stream),
            Err(error) => {
                let unit = &self.unit;
                log_contained(|| {
                    tracing::warn!(target: "supervisor::output", unit = %unit, stream = stream.as_str(), %error, "could not read output");
                });
                self.close(stream);
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
    /// The piece read so far.
    line: Vec<u8>,
    /// Whether the last piece handed out was a progress piece ended by a
    /// `\r` that was the last byte written so far: a `\n` that comes next
    /// made it a line (`\r\n`) after all.
    after_cr: bool,
    /// Whether that progress piece was empty: its `\r` began a line, and a
    /// `\n` that comes next ends an empty line, which nothing showed yet.
    empty_progress: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    fn new(pipe: R) -> Self {
        LineReader {
            reader: BufReader::with_capacity(MAX_LINE_BYTES, pipe),
            line: Vec::new(),
            after_cr: false,
            empty_progress: false,
        }
    }

    /// The next line or piece of a line, and its kind, or `None` at
    /// end-of-file. Cancel-safe.
    async fn next(&mut self) -> std::io::Result<Option<(Vec<u8>, PieceKind)>> {
        // `self.line` is emptied only once a piece is complete: a cancelled
        // read resumes where it stopped.
        let Some(kind) = read_piece(&mut self.reader, &mut self.line, &mut self.after_cr).await? else {
            return Ok(None);
        };
        if kind == PieceKind::LateNewline && std::mem::take(&mut self.empty_progress) {
            // An empty line (`\r\n` at its start, or `\n\r` then `\n`),
            // as it would be told if written at once.
            return Ok(Some((Vec::new(), PieceKind::Line)));
        }
        let piece = if kind == PieceKind::Partial { self.split_piece() } else { std::mem::take(&mut self.line) };
        self.empty_progress = kind == PieceKind::Progress && self.after_cr && piece.is_empty();
        Ok(Some((piece, kind)))
    }

    /// The line read so far, unfinished, if there is any: all of it. A
    /// character it leaves incomplete is not held back for the next piece,
    /// as a long line's is: the process that wrote it is gone, no rest will
    /// come, and a byte that is not UTF-8 (a Latin-1 `é`) looks the same.
    fn take_unfinished(&mut self) -> Option<Vec<u8>> {
        (!self.line.is_empty()).then(|| std::mem::take(&mut self.line))
    }

    /// Takes the line read so far as a piece of a longer one. A character
    /// cut at its end goes whole into the next piece: each piece is
    /// decoded on its own.
    fn split_piece(&mut self) -> Vec<u8> {
        let mut piece = std::mem::take(&mut self.line);
        let cut = incomplete_char_at_end(&piece);
        self.line = piece.split_off(piece.len() - cut);
        piece
    }
}

/// How many bytes at the end of `bytes` begin a UTF-8 character that they
/// do not complete (0 to 3).
fn incomplete_char_at_end(bytes: &[u8]) -> usize {
    let last_four = bytes.len().saturating_sub(3)..bytes.len();
    let Some(start) = last_four.rev().find(|&at| bytes[at] & 0b1100_0000 != 0b1000_0000) else { return 0 };
    match std::str::from_utf8(&bytes[start..]) {
        Err(error) if error.error_len().is_none() => bytes.len() - start,
        _ => 0,
    }
}

/// What ended a piece of output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PieceKind {
    /// A newline (`\n` or `\r\n`, stripped), or end-of-file.
    Line,
    /// `MAX_LINE_BYTES` of a longer line; the rest follows.
    Partial,
    /// A carriage return not followed by a newline (stripped): a progress
    /// line, which the next one overwrites on a terminal.
    Progress,
    /// A newline that came after the `\r` of a progress piece already
    /// handed out (the process paused between the two): that piece was a
    /// line. No text of its own.
    LateNewline,
}

/// Reads up to a newline, a lone carriage return or `MAX_LINE_BYTES` into
/// `line`, whichever comes first, so that neither a huge line nor endless
/// progress output without a newline grows memory or stalls the pipe. A
/// piece cut at `MAX_LINE_BYTES` is told once the next byte is known: the
/// line goes on, or ends right there. A `\r` is told by the byte after it
/// if that is written already, and is a progress piece otherwise (see
/// [`ended_by_cr`]). `None` at end-of-file.
async fn read_piece<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    line: &mut Vec<u8>,
    after_cr: &mut bool,
) -> std::io::Result<Option<PieceKind>> {
    loop {
        let buffer = reader.fill_buf().await?;
        // Taken only once a byte is there: a cancelled read keeps it.
        if std::mem::take(after_cr) && buffer.first() == Some(&b'\n') {
            reader.consume(1);
            return Ok(Some(PieceKind::LateNewline));
        }
        if buffer.is_empty() {
            return Ok((!line.is_empty()).then_some(PieceKind::Line));
        }
        if line.len() == MAX_LINE_BYTES {
            // Full: the byte after decides whether the line ends here (one
            // of exactly the limit is whole, not followed by an empty one).
            match buffer[0] {
                b'\n' => {
                    reader.consume(1);
                    return Ok(Some(PieceKind::Line));
                }
                b'\r' => {
                    reader.consume(1);
                    return Ok(Some(ended_by_cr(reader, after_cr)));
                }
                _ => return Ok(Some(PieceKind::Partial)),
            }
        }
        let room = MAX_LINE_BYTES - line.len();
        let window = &buffer[..buffer.len().min(room)];
        if let Some(end) = window.iter().position(|&byte| byte == b'\n' || byte == b'\r') {
            let newline = window[end] == b'\n';
            let next = buffer.get(end + 1).copied();
            line.extend_from_slice(&window[..end]);
            let (consumed, kind) = match (newline, next) {
                (true, _) => (end + 1, Some(PieceKind::Line)),
                (false, Some(b'\n')) => (end + 2, Some(PieceKind::Line)),
                (false, Some(_)) => (end + 1, Some(PieceKind::Progress)),
                // The `\r` is the last byte read.
                (false, None) => (end + 1, None),
            };
            reader.consume(consumed);
            return Ok(Some(kind.unwrap_or_else(|| ended_by_cr(reader, after_cr))));
        }
        let taken = window.len();
        line.extend_from_slice(window);
        reader.consume(taken);
    }
}

/// What a `\r` just consumed, the last byte read, ends: a line if the next
/// byte, already written, is a `\n` (consumed with it); a progress piece
/// otherwise. A progress bar's latest state is shown at once, not held
/// until the process writes again, which may be much later: if the next
/// byte is not written yet, the piece is progress, and `after_cr` is set
/// for a `\n` that follows later (see [`PieceKind::LateNewline`]).
fn ended_by_cr<R: AsyncRead + Unpin>(reader: &mut BufReader<R>, after_cr: &mut bool) -> PieceKind {
    // Without the task's budget: spent, it would make a byte that is there
    // look as if it were not.
    let next = match coop::unconstrained(reader.fill_buf()).now_or_never() {
        Some(Ok(buffer)) => Some(buffer.first().copied()),
        // A read error is found again, and told, by the next read.
        Some(Err(_)) => Some(None),
        None => None,
    };
    match next {
        Some(Some(b'\n')) => {
            reader.consume(1);
            PieceKind::Line
        }
        // Another byte, or end-of-file.
        Some(_) => PieceKind::Progress,
        None => {
            *after_cr = true;
            PieceKind::Progress
        }
    }
}

fn emit(unit: &str, stream: Stream, tail: &OutputTail, bytes: Vec<u8>, kind: PieceKind) {
    if kind == PieceKind::LateNewline {
        // Its piece reached `tracing` as progress already; in the tail it is
        // a line from now on, which no progress piece replaces.
        tail.end_progress(stream);
        return;
    }
    if kind == PieceKind::Progress && bytes.is_empty() {
        // A `\r` at the start of a progress line: nothing to show.
        return;
    }
    let text = String::from_utf8(bytes).unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
    let (continued, progress) = (kind == PieceKind::Partial, kind == PieceKind::Progress);
    // A subscriber of the user's that panics on a line (one that writes to
    // a closed pipe) must not take the run's watcher with it.
    log_contained(|| {
        tracing::info!(target: "supervisor::output", unit, stream = stream.as_str(), continued, progress, "{text}");
    });
    tail.push(text, stream, kind);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Looks for the text in a piece, and says so at once if it is there.
    fn look_at(watch: &LineWatch, piece: &[u8], kind: PieceKind, carry: &mut Vec<u8>) {
        if watch.finds(piece, kind, carry) {
            watch.found();
        }
    }

    fn look_ready(ready: &mut ReadyLine, stream: Stream, piece: &[u8], kind: PieceKind) {
        if ready.finds(stream, piece, kind) {
            ready.watch.found();
        }
    }

    /// Every piece of `input`, read through a buffer of `capacity` bytes.
    async fn pieces(input: &[u8], capacity: usize) -> Vec<(String, PieceKind)> {
        let mut reader = LineReader { reader: BufReader::with_capacity(capacity, input), ..LineReader::new(input) };
        let mut pieces = Vec::new();
        while let Some((bytes, kind)) = reader.next().await.unwrap() {
            pieces.push((String::from_utf8(bytes).unwrap(), kind));
        }
        pieces
    }

    #[tokio::test]
    async fn newlines_carriage_returns_and_crlf_end_pieces_whatever_the_reads() {
        use PieceKind::{Line, Progress};
        let input = b"a\r\nb\rc\n\rd\r\re";
        let expected =
            [("a", Line), ("b", Progress), ("c", Line), ("", Progress), ("d", Progress), ("", Progress), ("e", Line)];
        let expected: Vec<_> = expected.into_iter().map(|(text, kind)| (text.to_owned(), kind)).collect();
        // One byte per read puts every `\r` at the end of a read.
        for capacity in [1, 2, 3, 64] {
            assert_eq!(pieces(input, capacity).await, expected, "buffer of {capacity}");
        }
        assert_eq!(pieces(b"x\r", 1).await, [("x".to_owned(), Progress)]);
        assert_eq!(pieces(b"", 1).await, []);
    }

    /// A `\r` that ends what is written so far ends a progress piece at
    /// once; a `\n` written after it is told on its own, as a late newline.
    #[tokio::test]
    async fn a_cr_at_the_end_of_what_is_written_ends_a_progress_piece_at_once() {
        use tokio::io::AsyncWriteExt as _;
        let (mut writer, pipe) = tokio::io::duplex(64);
        let mut reader = LineReader::new(pipe);
        let mut next = async |written: &[u8]| {
            writer.write_all(written).await.unwrap();
            let piece = reader.next().now_or_never().expect("a piece without more output").unwrap().unwrap();
            (String::from_utf8(piece.0).unwrap(), piece.1)
        };
        assert_eq!(next(b"50%\r").await, ("50%".to_owned(), PieceKind::Progress));
        assert_eq!(next(b"\n").await, (String::new(), PieceKind::LateNewline));
        assert_eq!(next(b"60%\r").await, ("60%".to_owned(), PieceKind::Progress));
        assert_eq!(next(b"70%\r").await, ("70%".to_owned(), PieceKind::Progress));
        // An empty line whose `\r\n` came in two goes is a line, as it is
        // written at once (it was lost: its empty progress piece shows
        // nothing, and the late newline had no piece to end).
        assert_eq!(next(b"\n").await, (String::new(), PieceKind::LateNewline));
        assert_eq!(next(b"\r").await, (String::new(), PieceKind::Progress));
        assert_eq!(next(b"\n").await, (String::new(), PieceKind::Line));
        assert_eq!(next(b"x\n").await, ("x".to_owned(), PieceKind::Line));
    }

    #[tokio::test]
    async fn a_long_line_is_split_and_a_crlf_across_a_split_is_one_line_end() {
        let mut input = vec![b'a'; MAX_LINE_BYTES - 1];
        input.extend_from_slice(b"\r\nnext\n");
        let split: Vec<_> =
            pieces(&input, MAX_LINE_BYTES).await.iter().map(|(text, kind)| (text.len(), *kind)).collect();
        assert_eq!(split, [(MAX_LINE_BYTES - 1, PieceKind::Line), (4, PieceKind::Line)]);
        let input = vec![b'b'; MAX_LINE_BYTES + 1];
        let split: Vec<_> =
            pieces(&input, MAX_LINE_BYTES).await.iter().map(|(text, kind)| (text.len(), *kind)).collect();
        assert_eq!(split, [(MAX_LINE_BYTES, PieceKind::Partial), (1, PieceKind::Line)]);
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_bound_is_one_line_however_it_ends() {
        use PieceKind::{Line, Partial, Progress};
        let full = "a".repeat(MAX_LINE_BYTES);
        let cases: [(&str, Vec<(usize, PieceKind)>); 5] = [
            ("\nnext\n", vec![(MAX_LINE_BYTES, Line), (4, Line)]),
            ("\r\nnext\n", vec![(MAX_LINE_BYTES, Line), (4, Line)]),
            ("\rnext\n", vec![(MAX_LINE_BYTES, Progress), (4, Line)]),
            ("", vec![(MAX_LINE_BYTES, Line)]),
            ("b\n", vec![(MAX_LINE_BYTES, Partial), (1, Line)]),
        ];
        for (after, expected) in cases {
            let input = format!("{full}{after}");
            for capacity in [1000, MAX_LINE_BYTES, 2 * MAX_LINE_BYTES] {
                let split: Vec<_> =
                    pieces(input.as_bytes(), capacity).await.iter().map(|(text, kind)| (text.len(), *kind)).collect();
                assert_eq!(split, expected, "followed by {after:?}, buffer of {capacity}");
            }
        }
    }

    fn push_lines(tail: &OutputTail, lines: &[&str]) {
        for line in lines {
            tail.push((*line).to_owned(), Stream::Stdout, PieceKind::Line);
        }
    }

    #[test]
    fn the_tail_keeps_the_newest_lines_within_both_bounds() {
        let tail = OutputTail::new(3, 1000);
        push_lines(&tail, &["1", "2", "3", "4"]);
        assert_eq!(tail.last(10), ["2", "3", "4"]);
        assert_eq!(tail.last(1), ["4"]);
        let tail = OutputTail::new(100, 10);
        push_lines(&tail, &["aaaa", "bbbb", "cccc", "dd"]);
        assert_eq!(tail.last(10), ["bbbb", "cccc", "dd"]);
        for empty in [OutputTail::new(0, 10), OutputTail::new(10, 0)] {
            push_lines(&empty, &["x"]);
            assert!(empty.last(10).is_empty());
        }
    }

    #[test]
    fn a_line_longer_than_the_byte_bound_is_cut_and_marked() {
        let tail = OutputTail::new(10, 60);
        tail.push(format!("{}é", "a".repeat(200)), Stream::Stdout, PieceKind::Line);
        let kept = tail.last(1).remove(0);
        assert!(kept.len() <= 60, "{kept}");
        let (text, marker) = kept.split_once('[').unwrap();
        assert_eq!(marker, format!("… {} bytes not kept in the tail]", 202 - text.len()));
        // A bound shorter than the marker keeps the marker alone.
        let tiny = OutputTail::new(10, 5);
        tiny.push("é".repeat(10), Stream::Stdout, PieceKind::Line);
        assert_eq!(tiny.last(1), ["[… 20 bytes not kept in the tail]"]);
    }

    #[test]
    fn a_progress_piece_replaces_the_newest_entry_only_if_it_is_progress_of_the_same_stream() {
        let tail = OutputTail::new(10, 1000);
        tail.push("start".to_owned(), Stream::Stdout, PieceKind::Line);
        for percent in ["1%", "2%", "3%"] {
            tail.push(percent.to_owned(), Stream::Stderr, PieceKind::Progress);
        }
        assert_eq!(tail.last(10), ["start", "3%"]);
        // Another stream's progress does not replace it; a line does not either.
        tail.push("50%".to_owned(), Stream::Stdout, PieceKind::Progress);
        tail.push("4%".to_owned(), Stream::Stderr, PieceKind::Progress);
        tail.push("done".to_owned(), Stream::Stderr, PieceKind::Line);
        tail.push("5%".to_owned(), Stream::Stderr, PieceKind::Progress);
        assert_eq!(tail.last(10), ["start", "3%", "50%", "4%", "done", "5%"]);
        let kept = tail.kept.lock().unwrap();
        assert_eq!(kept.bytes, kept.lines.iter().map(|entry| entry.text.len()).sum::<usize>());
    }

    /// `10%\r100%\r\n` with a pause before its `\n`: `100%` was a
    /// progress piece, which replaced `10%`, until the `\n` made it a line.
    /// The tail is then what it is when all is written at once, a progress
    /// piece and a line (`10%` was lost, and the tail depended on when the
    /// process paused).
    #[test]
    fn a_late_newline_puts_back_the_progress_piece_its_line_replaced() {
        use PieceKind::{Line, Progress};
        for (lines, bytes) in [(10, 1000), (3, 12), (2, 1000), (1, 1000), (10, 11), (10, 7), (10, 6), (10, 3)] {
            let at_once = OutputTail::new(lines, bytes);
            let paused = OutputTail::new(lines, bytes);
            for tail in [&at_once, &paused] {
                tail.push("start".to_owned(), Stream::Stderr, Line);
                tail.push("10%".to_owned(), Stream::Stdout, Progress);
            }
            at_once.push("100%".to_owned(), Stream::Stdout, Line);
            paused.push("100%".to_owned(), Stream::Stdout, Progress);
            assert_eq!(paused.last(1), at_once.last(1), "the latest state while the process pauses");
            paused.end_progress(Stream::Stdout);
            let bounds = format!("bounds of {lines} lines, {bytes} bytes");
            assert_eq!(paused.last(10), at_once.last(10), "{bounds}");
            // A line now: the next progress piece follows it.
            for tail in [&at_once, &paused] {
                tail.push("0%".to_owned(), Stream::Stdout, Progress);
            }
            assert_eq!(paused.last(10), at_once.last(10), "{bounds}");
            let kept = paused.kept.lock().unwrap();
            assert_eq!(kept.bytes, kept.lines.iter().map(|entry| entry.text.len()).sum::<usize>(), "{bounds}");
        }
        let tail = OutputTail::new(10, 1000);
        tail.push("10%".to_owned(), Stream::Stdout, Progress);
        tail.push("100%".to_owned(), Stream::Stdout, Progress);
        tail.end_progress(Stream::Stdout);
        assert_eq!(tail.last(10), ["10%", "100%"]);
    }

    /// A run that ended on a progress piece keeps it as its last state: the
    /// next run's first progress piece replaced it, though lines of earlier
    /// runs stay until pushed out. Nor does a late newline of the next run
    /// bring back a piece of the run before.
    #[test]
    fn a_new_run_replaces_no_progress_piece_of_the_run_before() {
        use PieceKind::Progress;
        let tail = OutputTail::new(10, 1000);
        tail.push("10%".to_owned(), Stream::Stdout, Progress);
        tail.push("50%".to_owned(), Stream::Stdout, Progress);
        tail.begin_run();
        tail.push("0%".to_owned(), Stream::Stdout, Progress);
        tail.push("5%".to_owned(), Stream::Stdout, Progress);
        assert_eq!(tail.last(10), ["50%", "5%"]);
        tail.begin_run();
        tail.end_progress(Stream::Stdout);
        assert_eq!(tail.last(10), ["50%", "5%"]);
    }

    #[test]
    fn only_a_character_left_incomplete_is_cut_off_the_end() {
        assert_eq!(incomplete_char_at_end(b""), 0);
        assert_eq!(incomplete_char_at_end(b"abc"), 0);
        assert_eq!(incomplete_char_at_end("aé".as_bytes()), 0);
        assert_eq!(incomplete_char_at_end(&"aé".as_bytes()[..2]), 1);
        assert_eq!(incomplete_char_at_end(&"a€".as_bytes()[..3]), 2);
        assert_eq!(incomplete_char_at_end(&"a😀".as_bytes()[..4]), 3);
        // Not UTF-8 at all: nothing to wait for.
        assert_eq!(incomplete_char_at_end(b"a\x80\x80\x80\x80"), 0);
        assert_eq!(incomplete_char_at_end(b"a\xff"), 0);
    }

    #[tokio::test]
    async fn a_character_across_the_bound_of_a_long_line_stays_whole() {
        let mut output = vec![b'a'; MAX_LINE_BYTES - 1];
        output.extend_from_slice("é€\n".as_bytes());
        let mut reader = LineReader::new(&output[..]);
        let mut text = String::new();
        while let Some((piece, _)) = reader.next().await.unwrap() {
            text.push_str(std::str::from_utf8(&piece).expect("each piece decodes whole"));
        }
        assert!(text.ends_with("aé€"), "{:?}", &text[text.len() - 8..]);
        assert_eq!(text.len(), MAX_LINE_BYTES - 1 + "é€".len());
    }

    /// What is written of an unfinished line is handed out whole as the
    /// run ends, an incomplete or invalid last character included (a
    /// Latin-1 `é` was held back for a next piece that never comes).
    #[tokio::test]
    async fn an_unfinished_line_is_handed_out_whole() {
        use tokio::io::AsyncWriteExt as _;
        for written in [&b"no such file: caf\xe9"[..], b"price: 5\xe2\x82", b"ok", "café".as_bytes()] {
            let (mut writer, pipe) = tokio::io::duplex(64);
            let mut reader = LineReader::new(pipe);
            writer.write_all(written).await.unwrap();
            assert!(reader.next().now_or_never().is_none(), "no line ends in {written:?}");
            assert_eq!(reader.take_unfinished().as_deref(), Some(written));
            assert_eq!(reader.take_unfinished(), None, "handed out once");
            drop(writer);
            assert_eq!(reader.next().await.unwrap(), None, "nothing is left for the end");
        }
    }

    #[test]
    fn a_text_is_found_across_the_pieces_of_one_long_line() {
        use PieceKind::{Line, Partial};
        const TEXT: &str = "READY-MARK";
        let line = format!("{}{TEXT}{}", "x".repeat(20), "y".repeat(5)).into_bytes();
        // Cut in two anywhere, and in pieces of every size (some shorter
        // than the text, so a match spans three pieces or more).
        let cuts = (0..=line.len()).map(|cut| vec![&line[..cut], &line[cut..]]);
        let chunks = (1..=line.len()).map(|size| line.chunks(size).collect::<Vec<_>>());
        for pieces in cuts.chain(chunks) {
            let watch = LineWatch::new(TEXT);
            let mut carry = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                let kind = if i + 1 < pieces.len() { Partial } else { Line };
                look_at(&watch, piece, kind, &mut carry);
                assert!(carry.len() < TEXT.len(), "the carry grew to {} bytes", carry.len());
            }
            assert!(watch.is_seen(), "not found in {pieces:?}");
        }
    }

    #[test]
    fn a_text_is_not_joined_across_lines_progress_pieces_or_streams() {
        for ended in [PieceKind::Line, PieceKind::Progress] {
            let watch = LineWatch::new("READY-MARK");
            let mut carry = Vec::new();
            look_at(&watch, b"xxREADY", ended, &mut carry);
            look_at(&watch, b"-MARKyy", PieceKind::Line, &mut carry);
            assert!(!watch.is_seen(), "joined across a {ended:?} end");
        }
        // Each stream carries its own long line: another stream's pieces in
        // between neither join nor break it.
        let mut ready_line = ReadyLine::new(Arc::new(LineWatch::new("READY-MARK")));
        look_ready(&mut ready_line, Stream::Stdout, b"xxREA", PieceKind::Partial);
        look_ready(&mut ready_line, Stream::Stderr, b"DY-MA", PieceKind::Partial);
        look_ready(&mut ready_line, Stream::Stderr, b"RKyy", PieceKind::Line);
        assert!(!ready_line.watch.is_seen());
        look_ready(&mut ready_line, Stream::Stdout, b"DY-MARKyy", PieceKind::Line);
        assert!(ready_line.watch.is_seen());
    }

    /// A pipe that hands out its bytes in the chunks given, and has nothing
    /// to read once before each chunk but the first: a process that
    /// pauses between its writes.
    struct Writes {
        chunks: VecDeque<Vec<u8>>,
        paused: bool,
    }

    impl Writes {
        fn new(chunks: Vec<Vec<u8>>) -> Self {
            // An empty read would be end-of-file.
            Writes { chunks: chunks.into_iter().filter(|chunk| !chunk.is_empty()).collect(), paused: false }
        }
    }

    impl AsyncRead for Writes {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            context: &mut std::task::Context<'_>,
            buffer: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let this = &mut *self;
            if std::mem::take(&mut this.paused) {
                context.waker().wake_by_ref();
                return std::task::Poll::Pending;
            }
            if let Some(chunk) = this.chunks.front_mut() {
                let taken = chunk.len().min(buffer.remaining());
                buffer.put_slice(&chunk[..taken]);
                chunk.drain(..taken);
                if chunk.is_empty() {
                    this.chunks.pop_front();
                    this.paused = !this.chunks.is_empty();
                }
            }
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// Every piece of the chunks, read through a buffer of `capacity`
    /// bytes, each handed to `tail` as a run hands it out.
    async fn read_all(chunks: Vec<Vec<u8>>, capacity: usize, tail: &OutputTail) -> Vec<(Vec<u8>, PieceKind)> {
        let pipe = Writes::new(chunks);
        let mut reader =
            LineReader { reader: BufReader::with_capacity(capacity, pipe), ..LineReader::new(Writes::new(vec![])) };
        let mut pieces = Vec::new();
        while let Some((bytes, kind)) = reader.next().await.unwrap() {
            assert!(reader.line.len() <= MAX_LINE_BYTES, "{} bytes held for the next piece", reader.line.len());
            emit("unit", Stream::Stdout, tail, bytes.clone(), kind);
            pieces.push((bytes, kind));
        }
        pieces
    }

    /// The pieces of `output` written at once, by the rules the docs
    /// state: a line ends at `\n` or `\r\n`, a lone `\r` ends a progress
    /// piece, a line longer than the bound is handed out in pieces of it
    /// (a character it cuts goes whole to the next piece), an unfinished
    /// last line is a line.
    fn reference_pieces(output: &[u8]) -> Vec<(Vec<u8>, PieceKind)> {
        let mut pieces = Vec::new();
        let mut line = Vec::new();
        let mut at = 0;
        while at < output.len() {
            let byte = output[at];
            if line.len() == MAX_LINE_BYTES && byte != b'\n' && byte != b'\r' {
                // The last 1 to 3 bytes, if they begin a character that
                // they do not complete, go to the next piece.
                let cut = (1..=3)
                    .find(|&last| {
                        std::str::from_utf8(&line[line.len() - last..])
                            .is_err_and(|error| error.valid_up_to() == 0 && error.error_len().is_none())
                    })
                    .unwrap_or(0);
                let rest = line.split_off(line.len() - cut);
                pieces.push((std::mem::replace(&mut line, rest), PieceKind::Partial));
            }
            match byte {
                b'\n' => pieces.push((std::mem::take(&mut line), PieceKind::Line)),
                b'\r' if output.get(at + 1) == Some(&b'\n') => {
                    pieces.push((std::mem::take(&mut line), PieceKind::Line));
                    at += 1;
                }
                b'\r' => pieces.push((std::mem::take(&mut line), PieceKind::Progress)),
                _ => line.push(byte),
            }
            at += 1;
        }
        if !line.is_empty() {
            pieces.push((line, PieceKind::Line));
        }
        pieces
    }

    /// The pieces told: those with text, or a line's end (an empty progress
    /// piece shows nothing, and `emit` skips it). A piece made a line by a
    /// late newline is the line it would have been had the newline been
    /// written with it.
    fn told(pieces: &[(Vec<u8>, PieceKind)]) -> Vec<(Vec<u8>, PieceKind)> {
        let mut written: Vec<(Vec<u8>, PieceKind)> = Vec::new();
        for (bytes, kind) in pieces {
            if *kind == PieceKind::Progress && bytes.is_empty() {
                continue;
            }
            if *kind == PieceKind::LateNewline {
                let last = written.last_mut().expect("a late newline ends a piece");
                assert_eq!(last.1, PieceKind::Progress, "a late newline after {last:?}");
                last.1 = PieceKind::Line;
            } else {
                written.push((bytes.clone(), *kind));
            }
        }
        written
    }

    /// What a hostile or careless process writes: line ends of every kind
    /// in every order, empty lines, NUL bytes, characters of 2 to 4 bytes,
    /// invalid and truncated UTF-8, and now and then a line about as long
    /// as the bound.
    fn output(rng: &mut fastrand::Rng) -> Vec<u8> {
        let mut output = Vec::new();
        for _ in 0..rng.usize(0..40) {
            match rng.u8(0..16) {
                0..=2 => output.push(b'\n'),
                3..=4 => output.push(b'\r'),
                5 => output.extend_from_slice(b"\r\n"),
                6 => output.push(0),
                7 => output.extend_from_slice("é".as_bytes()),
                8 => output.extend_from_slice("€".as_bytes()),
                9 => output.extend_from_slice("😀".as_bytes()),
                10 => output.push(rng.u8(0x80..=0xff)),
                11 => output.extend_from_slice(&"😀".as_bytes()[..rng.usize(1..4)]),
                12 => output.extend(std::iter::repeat_n(b'a', rng.usize(1..20))),
                13 if rng.u8(0..8) == 0 => {
                    output.extend(std::iter::repeat_n(b'a', MAX_LINE_BYTES - rng.usize(0..8)));
                }
                _ => output.push(rng.alphanumeric() as u8),
            }
        }
        output
    }

    /// `output` cut at each byte, or at a few places and after some of its
    /// `\r` (a pause there makes a progress piece that a `\n` may make a
    /// line later).
    fn cut_into_writes(rng: &mut fastrand::Rng, output: &[u8]) -> Vec<Vec<u8>> {
        if output.len() < 200 && rng.bool() {
            return output.iter().map(|byte| vec![*byte]).collect();
        }
        let mut cuts: Vec<usize> = (0..rng.usize(0..12)).map(|_| rng.usize(0..=output.len())).collect();
        let after_cr = output.iter().enumerate().filter(|(_, byte)| **byte == b'\r').map(|(at, _)| at + 1);
        cuts.extend(after_cr.filter(|_| rng.bool()));
        cuts.extend([0, output.len()]);
        cuts.sort_unstable();
        cuts.windows(2).map(|cut| output[cut[0]..cut[1]].to_vec()).collect()
    }

    #[tokio::test]
    async fn pieces_and_the_tail_do_not_depend_on_how_the_output_was_cut_into_writes() {
        for seed in 0..1000 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let output = output(&mut rng);
            let bounds = if rng.bool() { (1000, 1 << 30) } else { (rng.usize(1..6), rng.usize(1..80)) };
            let whole_tail = OutputTail::new(bounds.0, bounds.1);
            let whole = read_all(vec![output.clone()], MAX_LINE_BYTES, &whole_tail).await;
            assert_eq!(whole, reference_pieces(&output), "seed {seed}: {output:?}");
            let writes = cut_into_writes(&mut rng, &output);
            let capacity = if output.len() > 1000 { rng.usize(4000..3 * MAX_LINE_BYTES) } else { rng.usize(1..50) };
            let cut_tail = OutputTail::new(bounds.0, bounds.1);
            let cut = read_all(writes.clone(), capacity, &cut_tail).await;
            let context = format!("seed {seed}: {output:?} written as {writes:?}, read {capacity} bytes at a time");
            assert_eq!(told(&cut), told(&whole), "{context}");
            assert_eq!(cut_tail.last(usize::MAX), whole_tail.last(usize::MAX), "{context}");
        }
    }

    #[tokio::test]
    async fn no_byte_is_lost_or_repeated_and_each_piece_has_the_shape_the_docs_give() {
        for seed in 0..1000 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let output = output(&mut rng);
            let writes = cut_into_writes(&mut rng, &output);
            let capacity = if output.len() > 1000 { rng.usize(4000..3 * MAX_LINE_BYTES) } else { rng.usize(1..50) };
            let pieces = read_all(writes, capacity, &OutputTail::new(0, 0)).await;
            let text: Vec<u8> = output.iter().copied().filter(|byte| !b"\r\n".contains(byte)).collect();
            assert_eq!(pieces.iter().flat_map(|(bytes, _)| bytes.clone()).collect::<Vec<u8>>(), text, "seed {seed}");
            for (bytes, kind) in &pieces {
                assert!(!bytes.contains(&b'\n') && !bytes.contains(&b'\r'), "seed {seed}: {bytes:?}");
                assert!(bytes.len() <= MAX_LINE_BYTES, "seed {seed}: a piece of {} bytes", bytes.len());
                if *kind == PieceKind::Partial {
                    assert!(bytes.len() >= MAX_LINE_BYTES - 3, "seed {seed}: a piece of {} bytes", bytes.len());
                }
                if *kind == PieceKind::LateNewline {
                    assert!(bytes.is_empty(), "seed {seed}");
                }
            }
            if std::str::from_utf8(&output).is_ok() {
                for (bytes, _) in &pieces {
                    assert!(std::str::from_utf8(bytes).is_ok(), "seed {seed}: a character cut in {bytes:?}");
                }
            }
        }
    }

    /// What `push` keeps of a piece: the piece, or if it is longer than the
    /// bound, the piece cut at a character boundary and marked.
    fn check_cut(kept: &str, text: &str, max_bytes: usize) {
        if text.len() <= max_bytes {
            assert_eq!(kept, text);
            return;
        }
        let (start, marker) = kept.split_at(kept.rfind('[').expect("a marker"));
        assert!(text.starts_with(start), "{kept:?} does not begin {text:?}");
        assert_eq!(marker, format!("[… {} bytes not kept in the tail]", text.len() - start.len()));
        let longest_marker = format!("[… {} bytes not kept in the tail]", text.len()).len();
        if max_bytes >= longest_marker {
            assert!(kept.len() <= max_bytes, "{kept:?} is over {max_bytes} bytes");
            // As much as fits beside the marker, give or take a cut
            // character and the marker's digits.
            assert!(start.len() + 3 + 4 >= max_bytes - longest_marker, "only {start:?} of {text:?} in {max_bytes}");
        } else {
            assert_eq!(start, "", "a bound shorter than the marker keeps the marker alone");
        }
    }

    fn text(rng: &mut fastrand::Rng, max_len: usize) -> String {
        let mut text = String::new();
        let len = rng.usize(0..=max_len);
        while text.len() < len {
            text.push(['a', 'é', '€', '😀', '\0', '\u{FFFD}'][rng.usize(0..6)]);
        }
        text
    }

    /// Bounds at their edges (0, 1, a line's size, that plus or minus one,
    /// the marker's size) and lines of every size around them: the tail
    /// holds the longest run of the newest lines that fits both bounds,
    /// each line kept whole when it fits the byte bound and cut otherwise.
    #[test]
    fn the_tail_keeps_the_newest_lines_that_fit_both_bounds_at_their_edges() {
        for seed in 0..3000 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let max_lines = [0, 1, 2, 3, rng.usize(0..12)][rng.usize(0..5)];
            let max_bytes = [0, 1, 2, 4, rng.usize(30..45), rng.usize(0..100), usize::MAX][rng.usize(0..7)];
            let tail = OutputTail::new(max_lines, max_bytes);
            let mut pushed = Vec::new();
            for _ in 0..rng.usize(0..30) {
                let line = text(&mut rng, max_bytes.min(100) + 5);
                tail.push(line.clone(), Stream::Stdout, PieceKind::Line);
                pushed.push(line);
                let kept = tail.last(usize::MAX);
                let context = format!("seed {seed}: {max_lines} lines, {max_bytes} bytes, {pushed:?} kept as {kept:?}");
                if max_lines == 0 || max_bytes == 0 {
                    assert!(kept.is_empty(), "{context}");
                    continue;
                }
                assert!(!kept.is_empty() && kept.len() <= max_lines, "{context}");
                let newest = &pushed[pushed.len() - kept.len()..];
                for (kept, line) in kept.iter().zip(newest) {
                    check_cut(kept, line, max_bytes);
                }
                let bytes: usize = kept.iter().map(String::len).sum();
                assert!(bytes <= max_bytes || kept.len() == 1, "{context}");
                // The next older line would break a bound.
                if let Some(older) = pushed.len().checked_sub(kept.len() + 1).map(|at| &pushed[at]) {
                    let mut older = older.clone();
                    if older.len() > max_bytes {
                        cut(&mut older, max_bytes);
                    }
                    let older = older.len();
                    assert!(kept.len() == max_lines || bytes + older > max_bytes, "{context}");
                }
                assert_eq!(tail.last(1).len(), 1, "{context}");
                let some = rng.usize(0..=kept.len() + 1);
                assert_eq!(tail.last(some), kept[kept.len().saturating_sub(some)..], "{context}");
            }
        }
    }

    /// Lines, progress pieces and late newlines of two streams in any
    /// order: the tail holds its bounds, counts its bytes right, and holds
    /// the newest of what a tail without bounds holds.
    #[test]
    fn whatever_is_pushed_the_tail_is_the_newest_of_the_unbounded_one_within_both_bounds() {
        for seed in 0..3000 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let max_lines = [1, 2, 3, rng.usize(1..12)][rng.usize(0..4)];
            let max_bytes = [1, 4, rng.usize(30..45), rng.usize(1..100)][rng.usize(0..4)];
            let tail = OutputTail::new(max_lines, max_bytes);
            let whole = OutputTail::new(usize::MAX, usize::MAX);
            for _ in 0..rng.usize(0..40) {
                let stream = if rng.u8(0..4) == 0 { Stream::Stderr } else { Stream::Stdout };
                if rng.u8(0..5) == 0 {
                    tail.end_progress(stream);
                    whole.end_progress(stream);
                } else {
                    let kind = [PieceKind::Line, PieceKind::Progress, PieceKind::Partial][rng.usize(0..3)];
                    let line = text(&mut rng, 60);
                    tail.push(line.clone(), stream, kind);
                    whole.push(line, stream, kind);
                }
                let kept = tail.kept.lock().unwrap();
                let context = format!("seed {seed}: {max_lines} lines, {max_bytes} bytes, {kept:?}");
                assert_eq!(kept.bytes, kept.lines.iter().map(|entry| entry.text.len()).sum::<usize>(), "{context}");
                assert!(kept.lines.len() <= max_lines, "{context}");
                assert!(kept.bytes <= max_bytes || kept.lines.len() == 1, "{context}");
                let whole = whole.kept.lock().unwrap();
                let newest = whole.lines.iter().skip(whole.lines.len() - kept.lines.len());
                for (kept, entry) in kept.lines.iter().zip(newest) {
                    assert_eq!(kept.progress, entry.progress, "{context}");
                    check_cut(&kept.text, &entry.text, max_bytes);
                }
            }
        }
    }

    /// A line that never ends, endless progress, a flood of empty lines:
    /// what a reader holds stays within a piece, and the tail within its
    /// bounds.
    #[tokio::test]
    async fn memory_stays_bounded_whatever_the_output() {
        let endless_line = vec![b'x'; 40 * MAX_LINE_BYTES + 5];
        let endless_progress = b"99%\r".repeat(100_000);
        let empty_lines = b"\n".repeat(200_000);
        for (name, output) in [("a line", endless_line), ("progress", endless_progress), ("empty lines", empty_lines)] {
            let tail = OutputTail::new(1000, 4096);
            let chunks: Vec<Vec<u8>> = output.chunks(10_000).map(<[u8]>::to_vec).collect();
            // `read_all` checks what the reader holds after each piece.
            let pieces = read_all(chunks, MAX_LINE_BYTES, &tail).await;
            assert!(!pieces.is_empty());
            let kept = tail.kept.lock().unwrap();
            assert!(
                kept.lines.len() <= 1000 && kept.bytes <= 4096,
                "{name}: {} lines, {} bytes",
                kept.lines.len(),
                kept.bytes
            );
            let capacity: usize = kept.lines.iter().map(|entry| entry.text.capacity()).sum();
            assert!(capacity <= 2 * 4096, "{name}: {capacity} bytes allocated for the tail's text");
        }
    }

    /// The text a run waits for is found in its output however that was
    /// cut into writes, if and only if a line or a progress piece of it,
    /// written at once, holds the text: across the 64 KiB pieces of a long
    /// line, never across two lines.
    #[tokio::test]
    async fn a_ready_line_is_found_if_and_only_if_a_line_holds_its_text() {
        for seed in 0..1000 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let output = output(&mut rng);
            let text = if output.is_empty() || rng.u8(0..4) == 0 {
                [&b"a"[..], b"aa", "é".as_bytes(), b"a\0", b"\xff"][rng.usize(0..5)].to_vec()
            } else {
                let start = rng.usize(0..output.len());
                output[start..output.len().min(start + rng.usize(1..20))].to_vec()
            };
            if text.contains(&b'\r') || text.contains(&b'\n') {
                continue;
            }
            let mut lines = vec![Vec::new()];
            for (bytes, kind) in reference_pieces(&output) {
                lines.last_mut().unwrap().extend_from_slice(&bytes);
                if kind != PieceKind::Partial {
                    lines.push(Vec::new());
                }
            }
            let expected = lines.iter().any(|line| contains(line, &text));
            let writes = cut_into_writes(&mut rng, &output);
            let capacity = if output.len() > 1000 { rng.usize(4000..3 * MAX_LINE_BYTES) } else { rng.usize(1..50) };
            // Any bytes, UTF-8 or not, are looked for as they are.
            let mut ready = ReadyLine::new(Arc::new(LineWatch { text: text.clone().into(), ..LineWatch::new("") }));
            for (bytes, kind) in read_all(writes.clone(), capacity, &OutputTail::new(0, 0)).await {
                look_ready(&mut ready, Stream::Stdout, &bytes, kind);
            }
            assert_eq!(ready.watch.is_seen(), expected, "seed {seed}: {text:?} in {output:?} written as {writes:?}");
        }
    }
}
