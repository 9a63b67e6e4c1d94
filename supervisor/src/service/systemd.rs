//! systemd integration (feature `systemd`): `sd_notify` readiness, stopping,
//! watchdog and status.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::oneshot;
use tokio::time::{Instant, MissedTickBehavior};

use crate::extensions::ShutdownHook;
use crate::service::health;
use crate::{SupervisorHandle, UnitStatus};

/// While the units are ready but a health check fails, how long to wait
/// before asking the checks again (only until `READY=1` has been sent).
const READY_RETRY: Duration = Duration::from_secs(1);

impl SupervisorHandle {
    /// Tells systemd how the supervisor is doing, over the socket named by
    /// `NOTIFY_SOCKET` (set by systemd for a `Type=notify` service):
    ///
    /// - `READY=1` once, the first time the supervisor is ready (see
    ///   [`HealthReport`](crate::HealthReport)), so `systemctl start` returns
    ///   when the units run rather than when the binary starts;
    /// - `STOPPING=1` when a shutdown begins;
    /// - `WATCHDOG=1` every half of `WATCHDOG_USEC`, when systemd set it
    ///   (`WatchdogSec=`), as long as the supervisor is live: a failing
    ///   health check stops the pings, and systemd then restarts the service;
    /// - `STATUS=` with the number of units in each state, whenever it
    ///   changes (shown by `systemctl status`); the last one, with the
    ///   units' final states, after `STOPPING=1` and before a shutdown
    ///   returns.
    ///
    /// Everything happens in one background task, woken by the supervisor's
    /// events; its only timer is the watchdog's. The task ends when the
    /// supervisor has shut down. The messages are written by a thread of
    /// their own, so a service manager that stops reading them never stalls
    /// the runtime: they are dropped instead.
    ///
    /// Returns `false`, and does nothing at all, when `NOTIFY_SOCKET` is
    /// unset (not running under systemd). Call it once, right after
    /// `start()`: each call starts a notifier of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), supervisor::Error> {
    /// use supervisor::{Context, Supervisor, TaskSpec};
    ///
    /// let handle = Supervisor::builder()
    ///     .task(TaskSpec::new("ticker", |ctx: Context| async move { ctx.cancelled().await }))
    ///     .build()?
    ///     .start();
    /// if handle.notify_systemd() {
    ///     println!("running under systemd");
    /// }
    /// handle.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, when `NOTIFY_SOCKET` is set.
    pub fn notify_systemd(&self) -> bool {
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            return false;
        }
        let notifier = Notifier::new();
        let (finishing, last_status) = tokio::sync::mpsc::channel(1);
        if let Some(queue) = &notifier.queue {
            let stopping = notifier.stopping.clone();
            self.add_shutdown_hook(Arc::new(Link { queue: queue.clone(), stopping, finishing }));
        }
        tokio::spawn(notifier_loop(self.detached(), notifier, last_status));
        true
    }
}

/// How long a shutdown waits for its last notifications to be written.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// The supervisor's own way to the notification thread: a shutdown says
/// `STOPPING=1` itself, as it begins, and, once every unit has stopped,
/// asks the notifier loop for its last status line, queues it and waits
/// for both to be written before it returns, so that they are out before
/// the process exits. (The loop ends as the supervisor does: left to
/// itself, it could see the end before the last change, and the final
/// states were never sent.)
///
/// None may be lost to a queue that is full for a moment (systemd busy):
/// `STOPPING=1` is a flag that the thread acts on before its next message,
/// and the last status and the flush wait for room in the queue.
#[derive(Debug)]
struct Link {
    queue: SyncSender<Message>,
    stopping: Arc<AtomicBool>,
    /// To the notifier loop: where to answer with the last status line
    /// (`None` if systemd has it already).
    finishing: tokio::sync::mpsc::Sender<oneshot::Sender<Option<String>>>,
}

impl ShutdownHook for Link {
    fn begin(&self) {
        self.stopping.store(true, Ordering::Release);
        // Wakes the thread if it is idle; if the queue is full, it is busy
        // and sees the flag before the next message.
        let _ = self.queue.try_send(Message::Stopping);
    }

    /// Queues the last status line (every unit has stopped), then waits
    /// (briefly) until every notification queued so far is written.
    fn end(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {
            let deadline = Instant::now() + FLUSH_TIMEOUT;
            let mut messages = Vec::with_capacity(2);
            let (answer, last_status) = oneshot::channel();
            // No answer if the loop has ended (or is stuck in a health
            // check until the deadline): it sends the line itself as it ends.
            if self.finishing.try_send(answer).is_ok()
                && let Ok(Ok(Some(line))) = tokio::time::timeout_at(deadline, last_status).await
            {
                messages.push(Message::Status(line));
            }
            let (written, wait) = oneshot::channel();
            messages.push(Message::Flush(written));
            if self.queue_in_order(messages) {
                let _ = tokio::time::timeout_at(deadline, wait).await;
            }
        })
    }
}

impl Link {
    /// Queues `messages` in their order, waiting for room if the queue is
    /// full; `false` if the thread is gone.
    fn queue_in_order(&self, messages: Vec<Message>) -> bool {
        let mut messages = messages.into_iter();
        while let Some(message) = messages.next() {
            match self.queue.try_send(message) {
                Ok(()) => {}
                // Queued from a thread of its own, which may wait for room
                // as long as systemd does not read: a blocking task would
                // keep the runtime from being dropped, a thread dies with
                // the process.
                Err(TrySendError::Full(message)) => {
                    let queue = self.queue.clone();
                    let queued = std::thread::Builder::new().name("sd-notify-flush".to_owned()).spawn(move || {
                        std::iter::once(message).chain(messages).all(|message| queue.send(message).is_ok())
                    });
                    return queued.is_ok();
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
        true
    }
}

/// Sends the notifications of `handle` through `notifier` until the
/// supervisor ends; answers `finishing` (the shutdown's [`Link`], once every
/// unit has stopped) with the last status line rather than sending it.
async fn notifier_loop(
    handle: SupervisorHandle,
    mut notifier: Notifier,
    mut finishing: tokio::sync::mpsc::Receiver<oneshot::Sender<Option<String>>>,
) {
    // Subscribed before the first look at the states, so no change is missed.
    let mut events = handle.subscribe();
    let watchdog = sd_notify::watchdog_enabled().map(|timeout| timeout / 2).filter(|period| !period.is_zero());
    let mut watchdog = watchdog.map(|period| {
        tracing::info!(?period, "systemd watchdog enabled");
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        interval
    });
    let mut ready_sent = false;
    loop {
        // One reading for both: `READY=1` follows the status line that
        // showed every unit ready, not one read a moment before.
        let (statuses, shutting_down) = (handle.statuses(), handle.is_shutting_down());
        notifier.status(status_line(&statuses, shutting_down));
        let mut retry_at = None;
        if !ready_sent && !shutting_down && health::all_ready(&statuses) {
            // Not dropped with a full queue, as a status or a ping may be:
            // `systemctl start` waits for this one.
            ready_sent = health::report(&handle).await.ready && notifier.send(Message::Ready);
            if !ready_sent {
                retry_at = Some(Instant::now() + READY_RETRY);
            }
        }
        tokio::select! {
            biased;
            () = handle.ended() => break,
            Some(answer) = finishing.recv() => {
                let line = status_line(&handle.statuses(), handle.is_shutting_down());
                if line == notifier.last_status {
                    let _ = answer.send(None);
                } else if answer.send(Some(line.clone())).is_ok() {
                    // Not if the shutdown gave up waiting: sent below then.
                    notifier.last_status = line;
                }
            }
            // Before the events: while units crash in a loop, events come
            // faster than a pass reads the states, and a ping behind them
            // never came (systemd then kills a live service).
            () = tick(&mut watchdog), if watchdog.is_some() => {
                // During a shutdown the pings go on: the stop is the
                // supervisor doing its job.
                if handle.is_shutting_down() || health::report(&handle).await.live {
                    notifier.send(Message::Watchdog);
                } else {
                    tracing::warn!("not live: withholding the systemd watchdog ping");
                }
            }
            event = events.recv() => {
                if let Err(RecvError::Closed) = event {
                    break;
                }
                // One reading of the states for every event come so far.
                while let Ok(_) | Err(TryRecvError::Lagged(_)) = events.try_recv() {}
            }
            () = sleep_until(retry_at), if retry_at.is_some() => {}
        }
    }
    // The final states, unless the shutdown had them sent already: a
    // change that came with the end is not left out.
    notifier.status(status_line(&handle.statuses(), handle.is_shutting_down()));
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// How many notifications may wait for the socket before new ones are
/// dropped.
const QUEUE: usize = 32;

/// One notification.
#[derive(Debug)]
enum Message {
    Ready,
    Stopping,
    Watchdog,
    Status(String),
    /// Answered once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

impl Message {
    /// Sends it to `NOTIFY_SOCKET`, waiting at most [`SEND_TIMEOUT`] for
    /// room in systemd's queue.
    fn send(&self) -> std::io::Result<()> {
        let state = match self {
            Message::Ready => NotifyState::Ready,
            Message::Stopping => NotifyState::Stopping,
            Message::Watchdog => NotifyState::Watchdog,
            Message::Status(line) => NotifyState::Status(line),
            Message::Flush(_) => return Ok(()),
        };
        send_to_notify_socket(&format!("{state}\n"))
    }
}

/// How long one send waits for room in systemd's queue. A send that waited
/// for ever would keep the notification thread, and each supervisor
/// that ever notified a hung systemd would leave one behind.
const SEND_TIMEOUT: Duration = Duration::from_millis(200);

/// Sends `message` to `NOTIFY_SOCKET`: a path, or an abstract name
/// (`@name`, see sd_notify(3)), which sd-notify would take for a path.
fn send_to_notify_socket(message: &str) -> std::io::Result<()> {
    use std::os::unix::net::UnixDatagram;

    let target = std::env::var_os("NOTIFY_SOCKET").ok_or_else(|| std::io::Error::other("NOTIFY_SOCKET is not set"))?;
    let socket = UnixDatagram::unbound()?;
    socket.set_write_timeout(Some(SEND_TIMEOUT))?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::unix::ffi::OsStrExt;
        if let Some(name) = target.as_bytes().strip_prefix(b"@") {
            #[cfg(target_os = "android")]
            use std::os::android::net::SocketAddrExt;
            #[cfg(target_os = "linux")]
            use std::os::linux::net::SocketAddrExt;
            let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            return all_sent(socket.send_to_addr(message.as_bytes(), &address)?, message);
        }
    }
    all_sent(socket.send_to(message.as_bytes(), &target)?, message)
}

/// `Ok` if all of `message` went out: a short send would cut the notification.
fn all_sent(sent: usize, message: &str) -> std::io::Result<()> {
    if sent == message.len() { Ok(()) } else { Err(std::io::Error::from(std::io::ErrorKind::WriteZero)) }
}

/// Hands notifications to a thread of their own: a datagram socket blocks
/// its sender when the reader falls behind, and that must never stall a
/// runtime thread (nor keep the process from exiting).
struct Notifier {
    queue: Option<SyncSender<Message>>,
    /// A shutdown has begun: `STOPPING=1` goes before the next message.
    stopping: Arc<AtomicBool>,
    /// The supervisor has ended: a message systemd has no room for is
    /// dropped rather than tried again, and the thread ends once it has
    /// tried what was queued.
    ended: Arc<AtomicBool>,
    last_status: String,
    dropping: bool,
}

impl Notifier {
    fn new() -> Self {
        let (queue, messages) = mpsc::sync_channel::<Message>(QUEUE);
        let stopping = Arc::new(AtomicBool::new(false));
        let ended = Arc::new(AtomicBool::new(false));
        let (shutdown_begun, supervisor_ended, has_ended) = (stopping.clone(), ended.clone(), ended.clone());
        let spawned = std::thread::Builder::new().name("sd-notify".to_owned()).spawn(move || {
            let mut writer = Writer { failed: false, ended: supervisor_ended };
            let mut stopping_sent = false;
            let mut deliver = |message: Message| {
                if !stopping_sent && shutdown_begun.load(Ordering::Acquire) {
                    stopping_sent = true;
                    writer.write(&Message::Stopping);
                }
                match message {
                    Message::Flush(written) => {
                        let _ = written.send(());
                        true
                    }
                    Message::Stopping => true,
                    message => writer.write(&message),
                }
            };
            for message in messages.iter() {
                deliver(message);
                if has_ended.load(Ordering::Acquire) {
                    // What was queued before the end (the last status
                    // line) still goes out, until systemd has no room.
                    for message in messages.try_iter() {
                        if !deliver(message) {
                            break;
                        }
                    }
                    break;
                }
            }
        });
        let queue = match spawned {
            Ok(_) => Some(queue),
            Err(error) => {
                tracing::error!(%error, "cannot start the systemd notification thread");
                None
            }
        };
        Notifier { queue, stopping, ended, last_status: String::new(), dropping: false }
    }

    /// Queues `message`; `false` if it was dropped (the queue is full, or
    /// there is no thread to send it).
    fn send(&mut self, message: Message) -> bool {
        let Some(queue) = &self.queue else { return false };
        match queue.try_send(message) {
            Ok(()) => {
                self.dropping = false;
                true
            }
            Err(TrySendError::Full(message)) if !self.dropping => {
                self.dropping = true;
                tracing::warn!(?message, "systemd is not reading notifications; dropping them until it does");
                false
            }
            Err(_) => false,
        }
    }

    /// Sends `STATUS=` when it changed.
    fn status(&mut self, line: String) {
        if line != self.last_status {
            self.last_status.clone_from(&line);
            self.send(Message::Status(line));
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.ended.store(true, Ordering::Release);
    }
}

/// The notification thread's end of the socket.
struct Writer {
    /// A failure was logged already.
    failed: bool,
    ended: Arc<AtomicBool>,
}

impl Writer {
    /// Writes `message` to systemd's socket, again while systemd has no room
    /// for it and the supervisor runs; the first failure is logged. `false`
    /// if it was not written.
    fn write(&mut self, message: &Message) -> bool {
        loop {
            match message.send() {
                Ok(()) => {
                    tracing::debug!(?message, "sent to systemd");
                    return true;
                }
                Err(error)
                    if matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
                        && !self.ended.load(Ordering::Acquire) => {}
                Err(error) => {
                    if !std::mem::replace(&mut self.failed, true) {
                        tracing::warn!(%error, ?message, "cannot notify systemd");
                    }
                    return false;
                }
            }
        }
    }
}

/// `3 units: 2 running, 1 backoff` (`0 units` for none), with `shutting
/// down; ` in front during a shutdown.
fn status_line(statuses: &[UnitStatus], shutting_down: bool) -> String {
    let states: Vec<_> = statuses.iter().map(|unit| unit.state).collect();
    let mut counts: Vec<(crate::UnitState, usize)> = Vec::new();
    for state in states.iter().copied() {
        match counts.iter_mut().find(|(seen, _)| *seen == state) {
            Some((_, count)) => *count += 1,
            None => counts.push((state, 1)),
        }
    }
    counts.sort_by_key(|(state, _)| *state as u8);
    let parts: Vec<String> = counts.iter().map(|(state, count)| format!("{count} {state}")).collect();
    let prefix = if shutting_down { "shutting down; " } else { "" };
    let noun = if states.len() == 1 { "unit" } else { "units" };
    if parts.is_empty() {
        return format!("{prefix}0 {noun}");
    }
    format!("{prefix}{} {noun}: {}", states.len(), parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A supervisor with no unit (all added at run time, say) says so,
    /// without a dangling `": "`.
    #[test]
    fn a_status_line_of_no_unit() {
        assert_eq!(status_line(&[], false), "0 units");
        assert_eq!(status_line(&[], true), "shutting down; 0 units");
    }
}
