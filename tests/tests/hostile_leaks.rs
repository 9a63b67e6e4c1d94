//! Leaks a long-running service would suffer, measured in this process:
//! descriptors, threads, children and zombies, and the live heap (this
//! binary counts every allocation). Each workload is repeated hundreds to
//! thousands of times; the counts are taken once a first part of it has
//! warmed everything up, and again once the rest is done and the
//! supervisor has settled: they must come back, within a small constant,
//! not grow with the number of cycles. Built with `--cfg tokio_unstable`
//! (`RUSTFLAGS`), the tokio tasks alive are counted too.

use std::alloc::System;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use supervisor::{
    Context, DaemonSpec, GroupSpec, HttpEndpoint, MaxRestarts, Probe, Readiness, RestartPolicy, Supervisor,
    SupervisorHandle, TaskSpec, UnitState,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "support/deadline.rs"]
mod deadline;
use deadline::{wait_for, wait_status, within};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Far longer than any step takes when nothing hangs.
const DEADLINE: Duration = Duration::from_secs(30);

/// How long a workload of a thousand cycles may take on a loaded machine.
const LONG_DEADLINE: Duration = Duration::from_secs(240);

/// One test at a time: they share the process's descriptors, threads,
/// children and heap.
static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `test` alone, on a runtime of its own built once the lock is held
/// and dropped before it is let go: a runtime built to wait for the lock
/// counted its threads and descriptors into the test that held it, whose
/// counts grew by a dozen threads when the others started late.
fn alone(test: impl Future<Output = ()>) {
    let _alone = LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(test);
}

// ---------------------------------------------------------------------------
// Measurements

#[derive(Clone, Copy, Debug)]
struct Counts {
    fds: usize,
    threads: usize,
    children: usize,
    zombies: usize,
    heap: i64,
    /// Tokio tasks alive, in a build with `--cfg tokio_unstable` (0 otherwise).
    tasks: usize,
}

/// Bytes allocated and not freed (a reallocation counts its growth as
/// allocated and its shrinking as freed).
fn live_heap() -> i64 {
    let stats = GLOBAL.stats();
    i64::try_from(stats.bytes_allocated).unwrap() - i64::try_from(stats.bytes_deallocated).unwrap()
}

fn count_dir(path: &str) -> usize {
    std::fs::read_dir(path).map(Iterator::count).unwrap_or(0)
}

/// Children of this process: (all, zombies).
fn children() -> (usize, usize) {
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else { return (0, 0) };
    let mut all = 0;
    let mut zombies = 0;
    for entry in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let mut fields = rest.split_whitespace();
        let (Some(state), Some(ppid)) = (fields.next(), fields.next()) else { continue };
        if ppid == me {
            all += 1;
            zombies += usize::from(state == "Z");
        }
    }
    (all, zombies)
}

fn tasks() -> usize {
    #[cfg(tokio_unstable)]
    return tokio::runtime::Handle::try_current().map_or(0, |runtime| runtime.metrics().num_alive_tasks());
    #[cfg(not(tokio_unstable))]
    0
}

fn counts() -> Counts {
    let (children, zombies) = children();
    Counts {
        fds: count_dir("/proc/self/fd"),
        threads: count_dir("/proc/self/task"),
        children,
        zombies,
        heap: live_heap(),
        tasks: tasks(),
    }
}

/// How much each count may be above the one it is compared with.
#[derive(Clone, Copy, Debug)]
struct Slack {
    fds: usize,
    threads: usize,
    heap: i64,
    tasks: usize,
}

const SLACK: Slack = Slack { fds: 4, threads: 4, heap: 256 * 1024, tasks: 8 };

fn within_slack(now: &Counts, before: &Counts, slack: Slack) -> bool {
    now.fds <= before.fds + slack.fds
        && now.threads <= before.threads + slack.threads
        && now.children <= before.children
        && now.zombies <= before.zombies
        && now.heap <= before.heap + slack.heap
        && now.tasks <= before.tasks + slack.tasks
}

/// Waits (up to a generous deadline) for the counts to come back within
/// `slack` of `before`, then asserts that they did, naming them.
async fn assert_settles(what: &str, before: &Counts, slack: Slack) -> Counts {
    let began = Instant::now();
    loop {
        let now = counts();
        if within_slack(&now, before, slack) {
            return now;
        }
        assert!(began.elapsed() < DEADLINE, "{what}: grew from {before:?} to {now:?} (slack {slack:?})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------
// Helpers

fn quick() -> RestartPolicy {
    RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::Unlimited)
}

fn sh(name: &str, script: impl AsRef<str>) -> DaemonSpec {
    DaemonSpec::new(name, "sh").args(["-c", script.as_ref()]).restart(quick())
}

/// Waits until `name` has been restarted `runs` times in all.
async fn wait_runs(handle: &SupervisorHandle, name: &str, runs: u64) {
    let reached = handle.wait_status(name, |status| status.restarts_total >= runs);
    match tokio::time::timeout(LONG_DEADLINE, reached).await {
        Ok(status) => drop(status.expect("the unit exists and the supervisor runs")),
        Err(_) => panic!("timed out waiting for {runs} runs of `{name}`; last status: {:#?}", handle.status(name)),
    }
}

/// A listener that accepts connections and answers each request with 200.
async fn http_ok_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(n) if n > 0 => request.extend_from_slice(&buffer[..n]),
                        _ => return,
                    }
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
            });
        }
    });
    addr
}

/// A file that an exec probe appends a line to on each attempt.
struct Tally(PathBuf);

impl Tally {
    fn new(test: &str) -> Self {
        let path = std::env::temp_dir().join(format!("supervisor-leaks-{}-{test}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        Tally(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn count(&self) -> usize {
        std::fs::read(&self.0).map(|bytes| bytes.iter().filter(|&&b| b == b'\n').count()).unwrap_or(0)
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Processes, anywhere, with `marker` as an argument, not yet ended.
fn with_marker(marker: &str) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    dir.flatten()
        .filter(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| cmdline.split(|&b| b == 0).any(|arg| arg == marker.as_bytes()))
                && std::fs::read_to_string(entry.path().join("stat"))
                    .ok()
                    .and_then(|stat| stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()))
                    .is_some_and(|state| state != 'Z' && state != 'X')
        })
        .count()
}

// ---------------------------------------------------------------------------
// Daemons that exit at once, restarted a thousand times and more

#[test]
fn daemons_that_exit_at_once_restarted_a_thousand_times_leak_nothing() {
    alone(async {
        let web = http_ok_server().await;
        let tcp = web.to_string();
        let url = format!("http://{web}/");
        let fast = |probe: Probe| probe.period(Duration::from_millis(1)).timeout(Duration::from_millis(200));
        let names = ["captured", "notified", "tcp", "exec", "http"];
        let before = counts();
        let handle = Supervisor::builder()
            // A tail small enough to be full before the first count.
            .daemon(sh("captured", "echo out; echo err >&2; printf 'no newline'; exit 1").tail_lines(10))
            .daemon(
                DaemonSpec::new("notified", "false")
                    .restart(quick())
                    .readiness(Readiness::Notified)
                    .watchdog(Duration::from_secs(5)),
            )
            .daemon(
                DaemonSpec::new("tcp", "false")
                    .restart(quick())
                    .readiness(Readiness::Probe(fast(Probe::tcp(tcp.clone()))))
                    .liveness(fast(Probe::exec(["true"]))),
            )
            .daemon(
                DaemonSpec::new("exec", "false")
                    .restart(quick())
                    .readiness(Readiness::Probe(fast(Probe::exec(["true"]))))
                    .liveness(fast(Probe::tcp(tcp))),
            )
            .daemon(
                DaemonSpec::new("http", "false")
                    .restart(quick())
                    .readiness(Readiness::Probe(fast(Probe::http(url.clone()))))
                    .liveness(fast(Probe::http(url))),
            )
            .build()
            .unwrap()
            .start();
        for name in names {
            wait_runs(&handle, name, 200).await;
        }
        let early = counts();
        for name in names {
            wait_runs(&handle, name, 1200).await;
        }
        for name in names {
            handle.pause_restarts(name).await.expect("paused");
        }
        for name in names {
            wait_status(DEADLINE, &handle, name, |status| !status.running && status.pid.is_none()).await;
        }
        assert_settles("after 1000 more runs of each", &early, SLACK).await;
        handle.shutdown().await;
        drop(handle);
        assert_settles("after the shutdown", &before, Slack { heap: 512 * 1024, ..SLACK }).await;
    });
}

// ---------------------------------------------------------------------------
// Exec probes that time out, fork, or cannot be spawned

#[test]
fn exec_probes_that_time_out_fork_or_cannot_spawn_leak_nothing() {
    alone(async {
        let timeouts = Tally::new("timeouts");
        let forks = Tally::new("forks");
        let timing_out = format!("echo >> '{}'; exec sleep 47111030", timeouts.path().display());
        let forking = format!("echo >> '{}'; sleep 47111031 & exit 0", forks.path().display());
        let live = |probe: Probe| probe.period(Duration::from_millis(1)).failure_threshold(1_000_000);
        let before = counts();
        let handle = Supervisor::builder()
            .daemon(
                sh("timing-out", "exec sleep 47111032")
                    .liveness(live(Probe::exec(["sh", "-c", &timing_out]).timeout(Duration::from_millis(5)))),
            )
            .daemon(sh("forking", "exec sleep 47111032").liveness(live(Probe::exec(["sh", "-c", &forking]))))
            .daemon(sh("missing", "exec sleep 47111032").liveness(live(Probe::exec(["/nonexistent/probe-program"]))))
            .daemon(sh("missing-ready", "exec sleep 47111032").readiness(Readiness::Probe(
                Probe::exec(["/nonexistent/probe-program"]).period(Duration::from_millis(1)),
            )))
            .build()
            .unwrap()
            .start();
        let attempts = || timeouts.count().min(forks.count());
        wait_for(LONG_DEADLINE, "100 attempts of each", || (attempts() >= 100).then_some(())).await;
        let early = counts();
        wait_for(LONG_DEADLINE, "1100 attempts of each", || (attempts() >= 1100).then_some(())).await;
        // The probes keep running: an attempt in flight may hold a child or two.
        let in_flight = Counts { children: early.children + 4, zombies: early.zombies + 4, ..early };
        assert_settles("after 1000 more attempts of each", &in_flight, SLACK).await;
        handle.shutdown().await;
        drop(handle);
        wait_for(DEADLINE, "no probe process left", || {
            (with_marker("47111030") + with_marker("47111031") + with_marker("47111032") == 0).then_some(())
        })
        .await;
        assert_settles("after the shutdown", &before, Slack { heap: 512 * 1024, ..SLACK }).await;
    });
}

// ---------------------------------------------------------------------------
// Units added and removed, stopped and started, at run time

fn group_of(i: usize, probe_addr: std::net::SocketAddr) -> GroupSpec {
    GroupSpec::new(format!("g{i}"))
        .daemon(sh("plain", "exec sleep 47111033"))
        .daemon(
            sh("notified", "systemd-notify --ready; exec sleep 47111033")
                .readiness(Readiness::Notified)
                .watchdog(Duration::from_secs(30)),
        )
        .daemon(
            sh("probed", "echo up; exec sleep 47111033")
                .readiness(Readiness::Probe(Probe::tcp(probe_addr.to_string()).period(Duration::from_millis(5))))
                .liveness(Probe::exec(["true"]).period(Duration::from_millis(5)))
                .depends_on(["plain"]),
        )
}

#[test]
fn groups_and_daemons_added_and_removed_a_thousand_times_leak_nothing() {
    alone(async {
        let probe_addr = http_ok_server().await;
        let before = counts();
        let handle = Supervisor::builder().build().unwrap().start();
        let cycle = |i: usize| {
            let handle = handle.clone();
            async move {
                if i.is_multiple_of(2) {
                    handle.add(group_of(i, probe_addr)).await.expect("add a group");
                    let name = format!("g{i}");
                    within(DEADLINE, "the group ready", handle.wait_ready(&name)).await.expect("ready");
                    handle.remove(&name).await.expect("remove the group");
                } else {
                    let name = format!("d{i}");
                    handle.add(sh(&name, "echo up; exec sleep 47111033")).await.expect("add a daemon");
                    within(DEADLINE, "the daemon ready", handle.wait_ready(&name)).await.expect("ready");
                    handle.remove(&name).await.expect("remove the daemon");
                }
            }
        };
        for i in 0..100 {
            cycle(i).await;
        }
        let early = counts();
        for i in 100..1100 {
            cycle(i).await;
        }
        assert!(handle.unit_names().is_empty(), "{:?}", handle.unit_names());
        assert_settles("after 1000 more cycles", &early, SLACK).await;
        handle.shutdown().await;
        drop(handle);
        assert_eq!(with_marker("47111033"), 0);
        assert_settles("after the shutdown", &before, Slack { heap: 512 * 1024, ..SLACK }).await;
    });
}

#[test]
fn units_stopped_and_started_a_thousand_times_leak_nothing() {
    alone(async {
        let probe_addr = http_ok_server().await;
        let before = counts();
        let handle = Supervisor::builder().group(group_of(0, probe_addr)).build().unwrap().start();
        within(DEADLINE, "ready", handle.wait_ready("g0")).await.expect("ready");
        let cycle = |i: usize| {
            let handle = handle.clone();
            async move {
                // The group's first unit (its dependents with it), or the group.
                let name = if i.is_multiple_of(2) { "g0/plain" } else { "g0" };
                handle.stop_unit(name).await.expect("stop");
                wait_status(DEADLINE, &handle, name, |status| status.state == UnitState::Stopped).await;
                handle.start_unit(name).await.expect("start");
                within(DEADLINE, "ready again", handle.wait_ready("g0")).await.expect("ready");
            }
        };
        for i in 0..100 {
            cycle(i).await;
        }
        let early = counts();
        for i in 100..1100 {
            cycle(i).await;
        }
        assert_settles("after 1000 more stops and starts", &early, SLACK).await;
        handle.shutdown().await;
        drop(handle);
        assert_eq!(with_marker("47111033"), 0);
        assert_settles("after the shutdown", &before, Slack { heap: 512 * 1024, ..SLACK }).await;
    });
}

// ---------------------------------------------------------------------------
// Health checks that time out or block

#[test]
fn health_checks_that_time_out_or_block_leave_no_thread() {
    alone(async {
        let before = counts();
        let handle = Supervisor::builder().health_check_timeout(Duration::from_millis(5)).build().unwrap().start();
        let blocking_runs = Arc::new(AtomicUsize::new(0));
        handle.add_health_check("blocks", {
            let runs = blocking_runs.clone();
            move || {
                runs.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
                std::future::ready(Ok::<(), String>(()))
            }
        });
        handle.add_health_check("never-answers", std::future::pending::<Result<(), String>>);
        handle.add_health_check("blocks-in-its-future", || async {
            std::thread::sleep(Duration::from_millis(10));
            Ok::<(), String>(())
        });
        // Asks while a run overruns fail at once, without starting another:
        // asked until the blocking check has run (on a thread of its own) so
        // many times.
        let ask_until = |runs: usize| {
            let handle = handle.clone();
            let blocking_runs = blocking_runs.clone();
            async move {
                let mut asks = 0;
                while blocking_runs.load(Ordering::SeqCst) < runs || asks < runs {
                    let report = within(DEADLINE, "a health report", handle.health()).await;
                    assert!(!report.live, "{report:?}");
                    asks += 1;
                    tokio::task::yield_now().await;
                }
            }
        };
        within(LONG_DEADLINE, "20 runs", ask_until(20)).await;
        let early = counts();
        within(LONG_DEADLINE, "220 runs", ask_until(220)).await;
        assert_settles("after 200 more runs of each check", &early, SLACK).await;
        handle.shutdown().await;
        drop(handle);
        assert_settles("after the shutdown", &before, Slack { heap: 512 * 1024, ..SLACK }).await;
    });
}

// ---------------------------------------------------------------------------
// HTTP clients that leave mid-request

#[test]
fn http_clients_leaving_mid_request_a_thousand_times_leak_nothing() {
    alone(async {
        let before = counts();
        let handle = Supervisor::builder()
            .daemon(sh("web", "exec sleep 47111034"))
            .health_check_timeout(Duration::from_millis(50))
            .build()
            .unwrap()
            .start();
        // A report takes a while: a client may leave while its answer is made.
        handle.add_health_check("slow", || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<(), String>(())
        });
        let server = HttpEndpoint::new().addr("127.0.0.1:0".parse().unwrap()).serve(&handle).await.expect("serve");
        let addr = server.local_addr();
        let cycle = |i: usize| async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let request: &[u8] = match i % 5 {
                0 => b"GET /readyz HTTP/1.1\r\nhost: x\r\n\r\n",
                1 => b"GET /livez HTTP/1.1\r\nhost: x\r\n\r\nGET /status HTTP/1.1\r\nhost: x\r\n\r\n",
                2 => b"GET /status HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\npartial",
                3 => b"GET /metr",
                _ => b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n",
            };
            let _ = stream.write_all(request).await;
            if i % 5 == 4 {
                let mut some = [0u8; 8];
                let _ = stream.read(&mut some).await;
            } else if i.is_multiple_of(2) {
                tokio::task::yield_now().await;
            }
            // Dropped here, answered or not.
        };
        for i in 0..100 {
            cycle(i).await;
        }
        let early = counts();
        for i in 100..1100 {
            cycle(i).await;
        }
        assert_settles("after 1000 more clients", &early, SLACK).await;
        server.shutdown().await;
        handle.shutdown().await;
        drop(handle);
        assert_settles("after the shutdown", &before, Slack { heap: 512 * 1024, ..SLACK }).await;
    });
}

// ---------------------------------------------------------------------------
// Calls given up on, tasks and output lines restarted

#[test]
fn calls_given_up_on_and_restarted_tasks_leak_nothing() {
    alone(async {
        let before = counts();
        let handle = Supervisor::builder()
            .daemon(sh("never-ready", "exec sleep 47111035").readiness(Readiness::Notified))
            .daemon(sh("line", "echo starting; echo up; exit 1").readiness(Readiness::OutputLine("up".to_owned())))
            .daemon(sh("target", "echo up; exec sleep 47111035").readiness(Readiness::OutputLine("up".to_owned())))
            .task(TaskSpec::new("ends", |_ctx: Context| async {}).restart(quick()))
            .task(TaskSpec::new("fails", |_ctx: Context| async { Err::<(), _>("no") }).restart(quick()))
            .build()
            .unwrap()
            .start();
        let cycle = |i: usize| {
            let handle = handle.clone();
            async move {
                let _ = tokio::time::timeout(Duration::ZERO, handle.wait_ready("never-ready")).await;
                let _ = tokio::time::timeout(Duration::ZERO, handle.wait_status("line", |_| false)).await;
                drop(handle.subscribe());
                // A call given up on as it starts, and one given up on later.
                let given_up = if i.is_multiple_of(2) { Duration::ZERO } else { Duration::from_micros(200) };
                let _ = tokio::time::timeout(given_up, handle.restart("target")).await;
                within(DEADLINE, "target ready", handle.wait_ready("target")).await.expect("ready");
            }
        };
        for i in 0..100 {
            cycle(i).await;
        }
        for name in ["line", "ends", "fails"] {
            wait_runs(&handle, name, 100).await;
        }
        let early = counts();
        for i in 100..1100 {
            cycle(i).await;
        }
        for name in ["line", "ends", "fails"] {
            wait_runs(&handle, name, 1100).await;
        }
        for name in ["line", "ends", "fails"] {
            handle.pause_restarts(name).await.expect("paused");
        }
        for name in ["line", "ends", "fails"] {
            wait_status(DEADLINE, &handle, name, |status| !status.running).await;
        }
        assert_settles("after 1000 more cycles", &early, SLACK).await;
        handle.shutdown().await;
        drop(handle);
        assert_eq!(with_marker("47111035"), 0);
        assert_settles("after the shutdown", &before, Slack { heap: 512 * 1024, ..SLACK }).await;
    });
}
