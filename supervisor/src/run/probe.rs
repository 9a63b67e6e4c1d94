//! Running probes: one attempt ([`probe_once`]), and the two loops a run
//! of a unit keeps while it lasts ([`readiness`] and [`liveness`]), each
//! ended by dropping it.

// Until the engine starts probes for the units that have them, only the
// tests call into this module.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::panic::AssertUnwindSafe;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use futures_util::FutureExt;
use rustix::process::{Pid, Signal as RawSignal, kill_process_group};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::panics::panic_message;
use crate::run::io_driver;
use crate::run::notify::NotifySocket;
use crate::run::process::{names_a_directory, reap_dropped, strays};
use crate::spec::guarded::Guarded;
use crate::spec::probe::{Probe, Target};
use crate::tree::clock;

#[cfg(feature = "http")]
mod http;
mod verdict;

use verdict::Verdict;

/// The first wait between attempts of a readiness probe waiting for a run's
/// first readiness; it doubles up to the probe's period.
const FIRST_RAMP_INTERVAL: Duration = Duration::from_millis(10);

/// How long to wait, at most, for an exec probe killed at its timeout to be
/// reaped. A killed process ends within microseconds unless it is stuck in
/// the kernel; past this, tokio reaps it in the background.
const REAP_TIMEOUT: Duration = Duration::from_secs(1);

/// One attempt of `probe`, cut at its timeout: `Ok` when it passes, else
/// what happened, naming the probe ("tcp 127.0.0.1:5432: connection
/// refused", "exec `sleep 10`: timed out after 1s").
///
/// A `check` that panics fails the attempt. An exec probe that overruns is
/// killed (its whole process group) and reaped before this returns;
/// dropping the future mid-attempt kills the group as well.
pub(crate) async fn probe_once(probe: &Probe) -> Result<(), String> {
    if !matches!(probe.target, Target::Check(_)) && !io_driver::available() {
        return Err(format!("{}: {}", probe.target, io_driver::MISSING));
    }
    let timeout = probe.timeout;
    let outcome = match &probe.target {
        Target::Tcp(addr) => cut(timeout, tcp(addr)).await,
        #[cfg(feature = "http")]
        Target::Http(url) => cut(timeout, http::http(url)).await,
        // It cuts itself at the timeout, to kill and reap what it spawned.
        Target::Exec(argv) => exec(argv, timeout).await,
        Target::Check(check) => {
            // Calling the closure may panic too: it is called in the caught
            // future. Its future is dropped under a guard: one whose `Drop`
            // panics (cut at the timeout, or with a run stopped mid-attempt)
            // fails no more than its attempt.
            let run = AssertUnwindSafe(async move {
                let mut attempt = Guarded::new(check());
                (&mut *attempt).await
            })
            .catch_unwind()
            .map(|ended| ended.unwrap_or_else(|payload| Err(format!("panicked: {}", panic_message(payload)))));
            cut(timeout, run).await
        }
    };
    outcome.map_err(|what| format!("{}: {what}", probe.target))
}

/// `attempt`, failed with "timed out after ..." once `timeout` has passed.
async fn cut(timeout: Duration, attempt: impl Future<Output = Result<(), String>>) -> Result<(), String> {
    within(timeout, attempt).await.unwrap_or_else(|| Err(timed_out(timeout)))
}

/// What `future` gives, or `None` once `timeout` has passed (never, past
/// what the clock holds: tokio's own timeout panics within a millisecond
/// of the clock's end).
async fn within<T>(timeout: Duration, future: impl Future<Output = T>) -> Option<T> {
    match clock::deadline(Instant::now(), timeout) {
        Some(deadline) => tokio::time::timeout_at(deadline, future).await.ok(),
        None => Some(future.await),
    }
}

fn timed_out(timeout: Duration) -> String {
    format!("timed out after {}", humantime::format_duration(timeout))
}

/// An I/O error as a message: "connection refused" rather than
/// "Connection refused (os error 111)".
fn io_message(error: &io::Error) -> String {
    let text = error.to_string();
    let text = text.find(" (os error ").map_or(text.as_str(), |end| &text[..end]);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if chars.clone().next().is_some_and(char::is_lowercase) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => text.to_owned(),
    }
}

/// Connects to `addr` and closes the connection at once.
async fn tcp(addr: &str) -> Result<(), String> {
    TcpStream::connect(addr).await.map(drop).map_err(|error| io_message(&error))
}

/// Runs `argv` in a process group of its own and waits for it, at most
/// `timeout`; past that, kills the group and reaps the program.
async fn exec(argv: &[OsString], timeout: Duration) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("the command is empty".to_owned());
    };
    crate::run::process::dispositions::prepare(RawSignal::TERM);
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    // Not the supervisor's own `NOTIFY_SOCKET` and watchdog, if systemd runs
    // it; removed only if present (a removal copies the whole environment).
    for (key, _) in NotifySocket::unset_env() {
        if std::env::var_os(key).is_some() {
            command.env_remove(key);
        }
    }
    let child = command.spawn().map_err(|error| {
        let path = std::path::Path::new(program);
        let hint = match error.kind() {
            io::ErrorKind::NotFound => " (is it installed and on PATH?)",
            io::ErrorKind::PermissionDenied if names_a_directory(path, path) => " (it is a directory, not a program)",
            io::ErrorKind::PermissionDenied => " (is it executable?)",
            _ => "",
        };
        format!("cannot run it: {}{hint}", io_message(&error))
    })?;
    let mut attempt = Attempt { group: Group::of(&child), child };
    match within(timeout, attempt.child.wait()).await {
        Some(status) => {
            // What the program left behind in its group goes with it.
            if let Some(group) = attempt.group.kill() {
                strays::reap(group);
            }
            status.map_err(|error| format!("cannot wait for it: {}", io_message(&error))).and_then(exit_outcome)
        }
        None => {
            let killed = attempt.group.kill();
            reap(&mut attempt.child).await;
            if let Some(group) = killed {
                strays::reap(group);
            }
            Err(timed_out(timeout))
        }
    }
}

/// An exec probe's process and its group while an attempt waits for it.
/// Dropped before the process was reaped (the probe dropped with its run,
/// or with its runtime), it kills the group and reaps them there, as a
/// dropped run does.
struct Attempt {
    child: Child,
    group: Group,
}

impl Drop for Attempt {
    fn drop(&mut self) {
        let leader_runs = matches!(self.child.try_wait(), Ok(None));
        let killed = self.group.kill();
        reap_dropped(&mut self.child, leader_runs, killed);
    }
}

/// Kills `child` (in case its group could not be signalled) and waits for
/// it, at most [`REAP_TIMEOUT`].
async fn reap(child: &mut Child) {
    let _ = child.start_kill();
    let _ = tokio::time::timeout(REAP_TIMEOUT, child.wait()).await;
}

fn exit_outcome(status: ExitStatus) -> Result<(), String> {
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(format!("exited with code {code}")),
        (None, Some(signal)) => Err(format!("ended by signal {signal}")),
        (None, None) => Err(format!("ended with an unknown status: {status}")),
    }
}

/// The process group of an exec probe, until it is killed.
struct Group(Option<Pid>);

impl Group {
    fn of(child: &Child) -> Self {
        // The child called setpgid(0, 0) before exec, so its pid is the
        // group's id. Pid 1 would address every process: never signal it.
        Group(child.id().and_then(|pid| i32::try_from(pid).ok()).filter(|&pid| pid > 1).and_then(Pid::from_raw))
    }

    /// Kills the group with `SIGKILL` and forgets it. Returns it if it had
    /// members left to kill.
    fn kill(&mut self) -> Option<Pid> {
        let leader = self.0.take()?;
        // ESRCH only means the group is already empty.
        kill_process_group(leader, RawSignal::KILL).ok().map(|()| leader)
    }
}

/// The readiness of one run through `probe`, for as long as the returned
/// future is polled (drop it to stop): waits `initial_delay`, then tries
/// the probe, quickly until the run is first ready (waits of 10 ms,
/// doubling up to the period), every period after that. Calls
/// `changed(ready, why_not)` on every change of readiness: `(true, None)`
/// once it is ready, `(false, Some(error))` once it is not ready again,
/// with the last attempt's error; and, so that its status says why it is
/// not ready, `(false, Some(error))` after each failed attempt while it is
/// not ready whose error differs from the one told last.
pub(crate) async fn readiness(probe: &Probe, mut changed: impl FnMut(bool, Option<String>)) {
    clock::sleep_from(Instant::now(), probe.initial_delay).await;
    let mut verdict = Verdict::readiness(probe.success_threshold, probe.failure_threshold);
    let mut ramp = Some(FIRST_RAMP_INTERVAL.min(probe.period));
    let mut ready = false;
    // While the run is not ready, each failure that says something new
    // says why: the reason shown is the last attempt's, not the first's.
    let mut told_why: Option<String> = None;
    loop {
        let started = Instant::now();
        let outcome = probe_once(probe).await;
        if let Some(now_ready) = verdict.record(outcome.is_ok()) {
            ready = now_ready;
            if ready {
                ramp = None;
            }
            told_why = outcome.as_ref().err().cloned();
            changed(ready, outcome.err());
        } else if !ready
            && let Some(why) = why_not_ready_yet(&verdict, outcome)
            && told_why.as_ref() != Some(&why)
        {
            told_why = Some(why.clone());
            changed(false, Some(why));
        }
        let interval = match &mut ramp {
            Some(ramp) => {
                let interval = *ramp;
                *ramp = ramp.saturating_mul(2).min(probe.period);
                interval
            }
            None => probe.period,
        };
        clock::sleep_from(started, interval).await;
    }
}

/// Why a run whose readiness probe has not passed yet is not ready after
/// an attempt that did not change that: the attempt's error, or, after a
/// success, how far it is from the successes in a row it needs (the
/// attempt's success is no reason to show the error before it).
fn why_not_ready_yet(verdict: &Verdict, outcome: Result<(), String>) -> Option<String> {
    match outcome {
        Err(error) => Some(error),
        Ok(()) => verdict
            .successes_short()
            .map(|(passed, needed)| format!("passed {passed} of the {needed} attempts in a row it needs")),
    }
}

/// The liveness of one run through `probe`: waits `initial_delay`, then
/// tries the probe every period, and returns the last error once it has
/// failed `failure_threshold` times in a row. Never returns while the probe
/// keeps passing; drop the future to stop it.
pub(crate) async fn liveness(probe: &Probe) -> String {
    clock::sleep_from(Instant::now(), probe.initial_delay).await;
    let mut verdict = Verdict::liveness(probe.failure_threshold);
    loop {
        let started = Instant::now();
        let outcome = probe_once(probe).await;
        let live = verdict.record(outcome.is_ok());
        if let (Some(false), Err(error)) = (live, outcome) {
            return error;
        }
        clock::sleep_from(started, probe.period).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};

    use tokio::net::TcpListener;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A probe whose attempts pass while `passing` says so, recording when
    /// each attempt was made (in ms since `start`).
    fn scripted(
        start: Instant,
        passing: impl Fn(Duration) -> bool + Send + Sync + 'static,
    ) -> (Probe, Arc<Mutex<Vec<u64>>>) {
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let record = attempts.clone();
        let probe = Probe::check(move || {
            let elapsed = start.elapsed();
            record.lock().unwrap().push(u64::try_from(elapsed.as_millis()).unwrap());
            let pass = passing(elapsed);
            async move { if pass { Ok(()) } else { Err(format!("not yet at {}ms", elapsed.as_millis())) } }
        });
        (probe, attempts)
    }

    /// Runs `readiness(probe)` for `during`, and returns the changes it
    /// reported with the time of each (in ms since `start`).
    async fn changes(start: Instant, probe: &Probe, during: Duration) -> Vec<(u64, bool, Option<String>)> {
        let mut seen = Vec::new();
        let looping = readiness(probe, |ready, why| {
            seen.push((u64::try_from(start.elapsed().as_millis()).unwrap(), ready, why));
        });
        assert!(tokio::time::timeout(during, looping).await.is_err(), "the loop never ends by itself");
        seen
    }

    #[test]
    fn the_futures_are_send() {
        fn send<T: Send>(_: &T) {}
        let probe = Probe::tcp("127.0.0.1:1");
        send(&probe_once(&probe));
        send(&readiness(&probe, |_, _| {}));
        send(&liveness(&probe));
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_ramps_up_quickly_until_first_ready_then_probes_every_period() {
        let start = Instant::now();
        let (probe, attempts) = scripted(start, |elapsed| elapsed >= 50 * MS);
        let probe = probe.period(Duration::from_secs(1));
        let seen = changes(start, &probe, Duration::from_millis(3500)).await;
        let not_yet = |at: u64| (at, false, Some(format!("check: not yet at {at}ms")));
        assert_eq!(seen, vec![not_yet(0), not_yet(10), not_yet(30), (70, true, None)]);
        assert_eq!(*attempts.lock().unwrap(), [0, 10, 30, 70, 1070, 2070, 3070]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_ramp_is_capped_by_the_period_and_starts_after_the_initial_delay() {
        let start = Instant::now();
        let (probe, attempts) = scripted(start, |_| false);
        let probe = probe.period(Duration::from_millis(100)).initial_delay(Duration::from_millis(500));
        let seen = changes(start, &probe, Duration::from_millis(1000)).await;
        let attempts = attempts.lock().unwrap().clone();
        assert_eq!(attempts, [500, 510, 530, 570, 650, 750, 850, 950]);
        // Each attempt says something new: each is told.
        let told: Vec<_> = attempts.iter().map(|&at| (at, false, Some(format!("check: not yet at {at}ms")))).collect();
        assert_eq!(seen, told);
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_reports_each_change_once_with_the_reason() {
        let start = Instant::now();
        // Passing, then failing from 2.5 s to 6.5 s, then passing again.
        let (probe, _) = scripted(start, |elapsed| !(2500 * MS..6500 * MS).contains(&elapsed));
        let probe = probe.period(Duration::from_secs(1));
        let seen = changes(start, &probe, Duration::from_secs(10)).await;
        assert_eq!(
            seen,
            vec![
                (0, true, None),
                (5000, false, Some("check: not yet at 5000ms".to_owned())),
                (6000, false, Some("check: not yet at 6000ms".to_owned())),
                (7000, true, None)
            ]
        );
    }

    /// While not ready, the reason shown is the last attempt's: told again
    /// when it changes (a server that came up but answers 404), not at
    /// every attempt that says the same. Only the first was told, and the
    /// status said "connection refused" for as long as the 404s lasted.
    #[tokio::test(start_paused = true)]
    async fn a_reason_is_told_again_when_it_changes() {
        let start = Instant::now();
        let probe = Probe::check(move || {
            let up = start.elapsed() >= 300 * MS;
            async move { Err::<(), _>(if up { "status 404 Not Found" } else { "connection refused" }) }
        })
        .period(Duration::from_secs(1));
        // Attempts at 0, 10, 30, 70, 150, 310, 630, 1270, 2270.
        let seen = changes(start, &probe, Duration::from_millis(2500)).await;
        assert_eq!(
            seen,
            vec![
                (0, false, Some("check: connection refused".to_owned())),
                (310, false, Some("check: status 404 Not Found".to_owned())),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_needs_success_threshold_successes_in_a_row() {
        let start = Instant::now();
        let (probe, _) = scripted(start, |elapsed| elapsed >= 25 * MS);
        let probe = probe.success_threshold(3).period(Duration::from_secs(1));
        // Attempts at 0, 10, 30 (pass), 70 (pass), 150 (pass): ready. Each
        // pass before says how far it is, so that the error of the attempt
        // before it is not shown as why.
        let seen = changes(start, &probe, Duration::from_secs(2)).await;
        let not_yet = |at: u64| (at, false, Some(format!("check: not yet at {at}ms")));
        let passed =
            |at: u64, passed: u32| (at, false, Some(format!("passed {passed} of the 3 attempts in a row it needs")));
        assert_eq!(seen, vec![not_yet(0), not_yet(10), passed(30, 1), passed(70, 2), (150, true, None)]);
    }

    #[tokio::test(start_paused = true)]
    async fn liveness_returns_after_failure_threshold_failures_in_a_row() {
        let start = Instant::now();
        // Fails at 1 s, passes at 2 s, then fails from 3 s on.
        let (probe, attempts) =
            scripted(start, |elapsed| elapsed < 1000 * MS || (2000 * MS..3000 * MS).contains(&elapsed));
        let probe = probe.period(Duration::from_secs(1)).initial_delay(Duration::from_millis(500)).failure_threshold(3);
        let error = liveness(&probe).await;
        assert_eq!(error, "check: not yet at 5500ms");
        assert_eq!(start.elapsed(), Duration::from_millis(5500));
        assert_eq!(*attempts.lock().unwrap(), [500, 1500, 2500, 3500, 4500, 5500]);
    }

    #[tokio::test(start_paused = true)]
    async fn liveness_never_returns_while_the_probe_passes() {
        let (probe, attempts) = scripted(Instant::now(), |_| true);
        let probe = probe.period(Duration::from_secs(10)).failure_threshold(1);
        assert!(tokio::time::timeout(Duration::from_secs(3595), liveness(&probe)).await.is_err());
        assert_eq!(attempts.lock().unwrap().len(), 360);
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_hangs_is_cut_at_its_timeout() {
        let probe = Probe::check(std::future::pending::<Result<(), String>>).timeout(Duration::from_millis(1500));
        let start = Instant::now();
        assert_eq!(probe_once(&probe).await, Err("check: timed out after 1s 500ms".to_owned()));
        assert_eq!(start.elapsed(), Duration::from_millis(1500));
    }

    #[tokio::test]
    async fn a_check_that_panics_fails_the_attempt() {
        let probe = Probe::check(|| async { if true { panic!("the cache is gone") } else { Ok::<_, String>(()) } });
        assert_eq!(probe_once(&probe).await, Err("check: panicked: the cache is gone".to_owned()));
        // A closure that panics before it returns a future too.
        let probe = Probe::check(|| -> std::future::Ready<Result<(), String>> { panic!("no future") });
        assert_eq!(probe_once(&probe).await, Err("check: panicked: no future".to_owned()));
    }

    #[tokio::test]
    async fn a_check_passes_or_fails_with_its_error() {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let probe = Probe::check(move || {
            let call = counter.fetch_add(1, Ordering::Relaxed);
            async move { if call == 0 { Err(io::Error::other("warming up")) } else { Ok(()) } }
        });
        assert_eq!(probe_once(&probe).await, Err("check: warming up".to_owned()));
        assert_eq!(probe_once(&probe).await, Ok(()));
    }

    #[test]
    fn io_errors_read_as_messages() {
        assert_eq!(io_message(&io::Error::from_raw_os_error(111)), "connection refused");
        assert_eq!(io_message(&io::Error::other("DNS said no")), "DNS said no");
        assert_eq!(io_message(&io::Error::other("")), "");
    }

    /// A port on loopback that nothing listens on (most likely).
    async fn free_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn tcp_passes_when_a_listener_accepts_and_names_the_refusal() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        assert_eq!(probe_once(&Probe::tcp(addr.as_str())).await, Ok(()));
        drop(listener);
        assert_eq!(probe_once(&Probe::tcp(addr.as_str())).await, Err(format!("tcp {addr}: connection refused")));
    }

    #[tokio::test]
    async fn a_tcp_listener_that_appears_after_a_delay_is_found_within_the_ramp() {
        let addr = format!("127.0.0.1:{}", free_port().await);
        let probe = Probe::tcp(addr.as_str()).period(Duration::from_secs(10));
        let start = std::time::Instant::now();
        let opening = addr.clone();
        let server = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let listener = TcpListener::bind(opening).await.unwrap();
            loop {
                let _ = listener.accept().await;
            }
        });
        let (sender, ready) = tokio::sync::oneshot::channel();
        let mut sender = Some(sender);
        let looping = readiness(&probe, |ready, why| {
            if ready && let Some(sender) = sender.take() {
                let _ = sender.send((ready, why, start.elapsed()));
            }
        });
        let (ready, why, after) = tokio::select! {
            () = looping => unreachable!("the loop never ends by itself"),
            seen = ready => seen.unwrap(),
        };
        server.abort();
        assert!(ready && why.is_none());
        // Attempts at about 0, 10, 30, 70, 150 and 310 ms: ready at the
        // first attempt after 200 ms, far sooner than a period.
        assert!(after >= Duration::from_millis(200) && after < Duration::from_millis(1500), "{after:?}");
    }

    /// An HTTP server on loopback that answers every request with `status`
    /// (changed through the returned cell) and closes the connection.
    #[cfg(feature = "http")]
    async fn http_server() -> (String, Arc<AtomicU32>, tokio::task::JoinHandle<()>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let status = Arc::new(AtomicU32::new(200));
        let current = status.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { continue };
                let status = current.load(Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0; 1024];
                    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => request.extend_from_slice(&buffer[..read]),
                        }
                    }
                    let answer =
                        format!("HTTP/1.1 {status} Whatever\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        (addr, status, server)
    }

    #[cfg(feature = "http")]
    #[tokio::test]
    async fn http_counts_2xx_and_3xx_as_success() {
        let (addr, status, server) = http_server().await;
        let url = format!("http://{addr}/health?full=1");
        let probe = Probe::http(url.as_str());
        assert_eq!(probe_once(&probe).await, Ok(()));
        status.store(302, Ordering::Relaxed);
        assert_eq!(probe_once(&probe).await, Ok(()));
        status.store(503, Ordering::Relaxed);
        assert_eq!(probe_once(&probe).await, Err(format!("{url}: status 503 Service Unavailable")));
        status.store(404, Ordering::Relaxed);
        assert_eq!(probe_once(&probe).await, Err(format!("{url}: status 404 Not Found")));
        server.abort();
    }

    #[cfg(feature = "http")]
    #[tokio::test]
    async fn http_readiness_follows_the_server_from_200_to_503() {
        let (addr, status, server) = http_server().await;
        let probe = Probe::http(format!("http://{addr}/ready")).period(Duration::from_millis(20)).failure_threshold(2);
        let (sender, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let looping = readiness(&probe, |ready, why| {
            let _ = sender.send((ready, why));
        });
        let watching = async {
            assert_eq!(seen.recv().await, Some((true, None)));
            status.store(503, Ordering::Relaxed);
            let (ready, why) = seen.recv().await.unwrap();
            assert!(
                !ready && why.as_deref().is_some_and(|why| why.ends_with("/ready: status 503 Service Unavailable"))
            );
        };
        tokio::select! {
            () = looping => unreachable!("the loop never ends by itself"),
            watched = tokio::time::timeout(Duration::from_secs(5), watching) => watched.expect("the changes come within 5s"),
        }
        server.abort();
    }

    #[cfg(feature = "http")]
    #[tokio::test]
    async fn http_failures_say_what_happened() {
        let port = free_port().await;
        let refused = probe_once(&Probe::http(format!("http://127.0.0.1:{port}/"))).await;
        assert_eq!(refused, Err(format!("http://127.0.0.1:{port}/: cannot connect: connection refused")));

        // A server that accepts and never answers: cut at the timeout.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", silent.local_addr().unwrap());
        let probe = Probe::http(url.as_str()).timeout(Duration::from_millis(200));
        assert_eq!(probe_once(&probe).await, Err(format!("{url}: timed out after 200ms")));

        // A server that closes the connection without answering.
        let closing = tokio::spawn(async move {
            loop {
                if let Ok((stream, _)) = silent.accept().await {
                    drop(stream);
                }
            }
        });
        let error = probe_once(&Probe::http(url.as_str())).await.unwrap_err();
        assert!(error.starts_with(&format!("{url}: ")) && error.contains("closed"), "{error}");
        closing.abort();

        let error = probe_once(&Probe::http("http://bad host/")).await.unwrap_err();
        assert!(error.contains("contains a space"), "{error}");
        let error = probe_once(&Probe::http("http://[::1/")).await.unwrap_err();
        assert!(error.contains("does not parse"), "{error}");
    }

    #[tokio::test]
    async fn exec_passes_on_exit_0_and_names_other_endings() {
        assert_eq!(probe_once(&Probe::exec(["sh", "-c", "exit 0"])).await, Ok(()));
        assert_eq!(
            probe_once(&Probe::exec(["sh", "-c", "exit 1"])).await,
            Err("exec `sh -c 'exit 1'`: exited with code 1".to_owned())
        );
        assert_eq!(
            probe_once(&Probe::exec(["sh", "-c", "kill -9 $$"])).await,
            Err("exec `sh -c 'kill -9 $$'`: ended by signal 9".to_owned())
        );
        let missing = probe_once(&Probe::exec(["/nonexistent/probe-program"])).await.unwrap_err();
        assert!(missing.starts_with("exec `/nonexistent/probe-program`: cannot run it: no such file"), "{missing}");
        assert!(missing.ends_with("(is it installed and on PATH?)"), "{missing}");
        assert_eq!(
            probe_once(&Probe::exec(Vec::<String>::new())).await,
            Err("exec ``: the command is empty".to_owned())
        );
    }

    #[tokio::test]
    async fn exec_sees_no_terminal_and_no_output_pipe() {
        // stdin is /dev/null: reading it ends at once.
        let probe = Probe::exec(["sh", "-c", "read line; test -z \"$line\" && test ! -t 1 && test ! -t 2"]);
        assert_eq!(probe_once(&probe).await, Ok(()));
    }

    /// The processes of group `pgid` that are still alive (not zombies),
    /// from `/proc`.
    #[cfg(target_os = "linux")]
    fn live_members(pgid: u32) -> Vec<u32> {
        let mut members = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            // pid (comm) state ppid pgrp ...: comm may hold spaces, so read
            // after its closing parenthesis.
            let Some((_, rest)) = stat.rsplit_once(") ") else { continue };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.get(2) == Some(&pgid.to_string().as_str()) && fields.first() != Some(&"Z") {
                members.push(pid);
            }
        }
        members
    }

    /// A file for a script to write its pid to.
    #[cfg(target_os = "linux")]
    fn scratch_pid_file() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("supervisor-probe-{}-{}", std::process::id(), fastrand::u64(..)))
    }

    /// The pid a script wrote to `path`; the file goes.
    #[cfg(target_os = "linux")]
    fn take_pid(path: &std::path::Path) -> u32 {
        let pid = std::fs::read_to_string(path).unwrap().trim().parse().unwrap();
        let _ = std::fs::remove_file(path);
        pid
    }

    /// Waits (5 s at most) until nothing of group `pgid` is alive.
    #[cfg(target_os = "linux")]
    async fn assert_group_gone(pgid: u32) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !live_members(pgid).is_empty() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(live_members(pgid), Vec::<u32>::new());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn an_exec_probe_that_overruns_is_killed_with_its_group_and_reaped() {
        let pid_file = scratch_pid_file();
        let script = format!("echo $$ > '{}'; sleep 10 & sleep 10; wait", pid_file.display());
        let probe = Probe::exec(["sh", "-c", script.as_str()]).timeout(Duration::from_millis(300));
        let start = std::time::Instant::now();
        let error = probe_once(&probe).await.unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
        assert!(error.ends_with(": timed out after 300ms"), "{error}");
        let leader = take_pid(&pid_file);
        // The leader is reaped: not even a zombie is left.
        assert!(!std::path::Path::new(&format!("/proc/{leader}")).exists(), "the leader {leader} is still there");
        // Its background `sleep` went with it (re-parented, it may linger as
        // a zombie until its new parent reaps it).
        assert_group_gone(leader).await;
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn what_an_exec_probe_leaves_in_its_group_is_killed_when_it_exits() {
        let pid_file = scratch_pid_file();
        let script = format!("echo $$ > '{}'; sleep 10 & exit 0", pid_file.display());
        assert_eq!(probe_once(&Probe::exec(["sh", "-c", script.as_str()])).await, Ok(()));
        let leader = take_pid(&pid_file);
        assert_group_gone(leader).await;
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn dropping_an_exec_attempt_kills_its_group() {
        let pid_file = scratch_pid_file();
        let script = format!("echo $$ > '{}'; sleep 10", pid_file.display());
        let probe = Probe::exec(["sh", "-c", script.as_str()]).timeout(Duration::from_secs(30));
        let attempt = probe_once(&probe);
        assert!(tokio::time::timeout(Duration::from_millis(300), attempt).await.is_err());
        let leader = take_pid(&pid_file);
        assert_group_gone(leader).await;
    }

    #[tokio::test]
    async fn an_exec_liveness_probe_returns_its_last_error() {
        let probe = Probe::exec(["sh", "-c", "exit 3"]).period(Duration::from_millis(10)).failure_threshold(2);
        let error = tokio::time::timeout(Duration::from_secs(5), liveness(&probe)).await.unwrap();
        assert_eq!(error, "exec `sh -c 'exit 3'`: exited with code 3");
    }
}
