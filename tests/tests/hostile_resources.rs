//! Resource hygiene under churn: descriptors, threads, children, zombies,
//! notify socket directories, PID files and memory of the test process,
//! measured before and after workloads that add and remove hundreds of
//! daemons, restart one thousands of times, fail to spawn in a loop, probe
//! a port that never answers, drop supervisors and runtimes with daemons
//! running, and connect to the HTTP endpoint in a loop.
//!
//! Every test takes the file's lock, so that what one test measures is not
//! disturbed by another one running beside it in this process. A leak is
//! shown as a number that grows with the workload: measured after a first
//! part of the work and again after several times as much.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use supervisor::{
    Context, DaemonSpec, EventKind, ExitReason, HttpEndpoint, MaxRestarts, Output, PidFile, Probe, Readiness,
    RestartPolicy, Supervisor, SupervisorHandle, TaskSpec, UnitState,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "support/deadline.rs"]
mod deadline;
use deadline::{wait_for, wait_status, within};

/// Far longer than any step takes when nothing hangs.
const DEADLINE: Duration = Duration::from_secs(20);

/// How long a unit may take to restart a thousand times.
const RUNS_DEADLINE: Duration = Duration::from_secs(180);

/// One test at a time: they share the process's descriptors and children.
static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `test` alone, on a runtime of its own built once the lock is held
/// and dropped before it is let go: a runtime built to wait for the lock
/// would count its threads and descriptors into the test that held it.
fn alone(test: impl Future<Output = ()>) {
    let _alone = LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(test);
}

// ---------------------------------------------------------------------------
// Measurements

#[derive(Clone, Debug, PartialEq, Eq)]
struct Snapshot {
    fds: usize,
    threads: usize,
    children: usize,
    zombies: usize,
    notify_dirs: usize,
    rss_kib: u64,
}

fn open_descriptors() -> BTreeSet<String> {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

fn descriptor_links(fds: &BTreeSet<String>) -> Vec<String> {
    fds.iter()
        .map(|fd| {
            let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap_or_default();
            format!("{fd}->{}", link.display())
        })
        .collect()
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").expect("/proc/self/task").count()
}

/// (ppid, state) of every process, by pid.
fn processes() -> Vec<(u32, u32, char)> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
            let state = rest.next()?.chars().next()?;
            let ppid = rest.next()?.parse().ok()?;
            Some((pid, ppid, state))
        })
        .collect()
}

/// Children of this process: (all, zombies).
fn children() -> (usize, usize) {
    let me = std::process::id();
    let mine: Vec<_> = processes().into_iter().filter(|&(_, ppid, _)| ppid == me).collect();
    (mine.len(), mine.iter().filter(|&&(_, _, state)| state == 'Z').count())
}

/// Processes (anywhere, any parent) whose command line contains `marker`.
fn with_marker(marker: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.split(|&b| b == 0).any(|arg| arg == marker.as_bytes()))
        })
        .filter(|pid| {
            // A zombie of someone else's is not running any more.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()))
                .is_some_and(|state| state != 'Z' && state != 'X')
        })
        .collect()
}

/// `pid (comm) state ppid pgrp session` and the command line of each.
fn describe(pids: &[u32]) -> Vec<String> {
    pids.iter()
        .map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let fields: Vec<&str> = stat.split_whitespace().take(6).collect();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            format!("{} [{}]", fields.join(" "), String::from_utf8_lossy(&cmdline).replace('\0', " "))
        })
        .collect()
}

fn kill_marked(marker: &str) {
    for pid in with_marker(marker) {
        if let Some(pid) = rustix::process::Pid::from_raw(pid.cast_signed()) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// The notify socket directories this process made and has not removed.
fn notify_dirs() -> Vec<PathBuf> {
    let prefix = format!("supervisor-notify-{}-", std::process::id());
    let bases = [std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from), Some(std::env::temp_dir())];
    let mut found: Vec<PathBuf> = bases
        .into_iter()
        .flatten()
        .filter_map(|base| std::fs::read_dir(base).ok())
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .map(|entry| entry.path())
        .collect();
    found.sort();
    found.dedup();
    found
}

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4
}

fn snapshot() -> Snapshot {
    let (children, zombies) = children();
    Snapshot {
        fds: open_descriptors().len(),
        threads: threads(),
        children,
        zombies,
        notify_dirs: notify_dirs().len(),
        rss_kib: rss_kib(),
    }
}

/// Polls until `ok(snapshot)` holds or the deadline passes; returns the last
/// snapshot (so that a transient, e.g. a reap a few microseconds late, does
/// not count as a leak, and a real one shows its number).
async fn settled(ok: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let began = Instant::now();
    loop {
        let now = snapshot();
        if ok(&now) || began.elapsed() > Duration::from_secs(5) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `after` is no worse than `before` plus a small slack in
/// descriptors, children, zombies and notify directories; then asserts it,
/// naming the numbers.
async fn assert_no_growth(what: &str, before: &Snapshot, fd_slack: usize) -> Snapshot {
    let within = |now: &Snapshot| {
        now.fds <= before.fds + fd_slack
            && now.children <= before.children
            && now.zombies <= before.zombies
            && now.notify_dirs <= before.notify_dirs
    };
    let now = settled(within).await;
    assert!(within(&now), "{what}: grew from {before:?} to {now:?}");
    now
}

// ---------------------------------------------------------------------------
// Specs

fn quick() -> RestartPolicy {
    RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::Unlimited)
}

fn sh(name: &str, script: impl AsRef<str>) -> DaemonSpec {
    DaemonSpec::new(name, "sh").args(["-c", script.as_ref()]).restart(quick())
}

/// A scratch directory of one test, removed when dropped.
struct ScratchDir(PathBuf);

impl std::ops::Deref for ScratchDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch_dir(test: &str) -> ScratchDir {
    let dir = std::env::temp_dir().join(format!("supervisor-resources-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    ScratchDir(dir)
}

/// A listener that accepts and answers nothing; counts the connections it
/// holds open (each until its peer closes).
async fn silent_listener() -> (std::net::SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    tokio::spawn({
        let open = open.clone();
        let accepted = accepted.clone();
        async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                open.fetch_add(1, Ordering::SeqCst);
                accepted.fetch_add(1, Ordering::SeqCst);
                let open = open.clone();
                tokio::spawn(async move {
                    let mut sink = [0u8; 1024];
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        }
    });
    (addr, open, accepted)
}

/// A warm-up: one of everything, so that what is set up once per process
/// or runtime (signal handling, blocking threads, the notify base) is in the
/// count before the measured work.
async fn warm_up(handle: &SupervisorHandle, probe_addr: std::net::SocketAddr) {
    for spec in kinds("warm", 0, probe_addr) {
        let unit = spec.name().to_owned();
        handle.add(spec).await.expect("add");
        within(DEADLINE, "warm-up ready", handle.wait_ready(&unit)).await.expect("ready");
        handle.remove(&unit).await.expect("remove");
    }
}

/// What a process sets up once (signal handling, the runtime's first
/// blocking threads, the notify socket's base): done before a first
/// measurement, whichever test takes the lock first.
async fn process_warm_up() {
    let (addr, _, _) = silent_listener().await;
    let handle = Supervisor::builder().build().unwrap().start();
    let server = HttpEndpoint::new().addr("127.0.0.1:0".parse().unwrap()).serve(&handle).await.expect("serve");
    warm_up(&handle, addr).await;
    server.shutdown().await;
    handle.shutdown().await;
}

/// One daemon of each kind the add/remove churn exercises.
/// The `sleep` argument of the daemons of `kinds(prefix, ..)`: a test that
/// checks for stragglers looks for its own only.
fn marker_of(prefix: &str) -> &'static str {
    match prefix {
        "rt" => "47111012",
        "ct" => "47111013",
        "mid" => "47111014",
        _ => "47111000",
    }
}

fn kinds(prefix: &str, cycle: usize, probe_addr: std::net::SocketAddr) -> Vec<DaemonSpec> {
    let n = |kind: &str| format!("{prefix}-{kind}-{cycle}");
    let marker = marker_of(prefix);
    vec![
        sh(&n("capture"), format!("echo hello; echo oops >&2; exec sleep {marker}")),
        sh(&n("notified"), format!("systemd-notify --ready; exec sleep {marker}")).readiness(Readiness::Notified),
        sh(&n("line"), format!("echo starting; echo up; exec sleep {marker}"))
            .readiness(Readiness::OutputLine("up".to_owned())),
        sh(&n("probed"), format!("exec sleep {marker}"))
            .readiness(Readiness::Probe(Probe::tcp(probe_addr.to_string()).period(Duration::from_millis(5))))
            .liveness(Probe::exec(["true"]).period(Duration::from_millis(5)).timeout(Duration::from_secs(5))),
        sh(&n("dog"), "while :; do systemd-notify WATCHDOG=1; sleep 0.05; done").watchdog(Duration::from_secs(5)),
        sh(&n("closed"), format!("exec >&- 2>&-; exec sleep {marker}")),
        sh(&n("stubborn"), "trap '' TERM; echo up; while :; do sleep 0.05; done")
            .readiness(Readiness::OutputLine("up".to_owned()))
            .stop_timeout(Duration::from_millis(20)),
        sh(&n("family"), format!("sleep {marker} & sleep {marker} & echo up; wait"))
            .readiness(Readiness::OutputLine("up".to_owned())),
    ]
}

async fn churn(handle: &SupervisorHandle, prefix: &str, cycles: std::ops::Range<usize>, addr: std::net::SocketAddr) {
    for cycle in cycles {
        let specs = kinds(prefix, cycle, addr);
        let names: Vec<String> = specs.iter().map(|spec| spec.name().to_owned()).collect();
        for spec in specs {
            handle.add(spec).await.expect("add");
        }
        let readies = names.iter().map(|name| handle.wait_ready(name));
        for ready in within(DEADLINE, "all ready", futures_util::future::join_all(readies)).await {
            ready.expect("ready");
        }
        let removes = names.iter().map(|name| handle.remove(name));
        for removed in within(DEADLINE, "all removed", futures_util::future::join_all(removes)).await {
            removed.expect("removed");
        }
    }
}

// ---------------------------------------------------------------------------
// Add and remove in a loop

#[test]
fn adding_and_removing_daemons_of_every_kind_leaks_nothing() {
    alone(async {
        let (addr, _, _) = silent_listener().await;
        let handle = Supervisor::builder().build().unwrap().start();
        warm_up(&handle, addr).await;
        churn(&handle, "a", 0..10, addr).await;
        let early = snapshot();
        let early_fds = open_descriptors();
        churn(&handle, "b", 0..40, addr).await;
        let late = assert_no_growth("after 40 more cycles of 8 daemons", &early, 3).await;
        let left: BTreeSet<_> = open_descriptors().difference(&early_fds).cloned().collect();
        assert!(left.len() <= 3, "descriptors left: {:?}", descriptor_links(&left));
        assert!(handle.unit_names().is_empty(), "{:?}", handle.unit_names());
        assert!(late.threads <= early.threads + 4, "threads grew from {} to {}", early.threads, late.threads);
        assert_eq!(with_marker("47111000"), Vec::<u32>::new(), "no `sleep 47111000` left");
        handle.shutdown().await;
        assert_no_growth("after the shutdown", &early, 3).await;
        assert!(notify_dirs().is_empty(), "{:?}", notify_dirs());
    });
}

// ---------------------------------------------------------------------------
// Restarting as fast as the policy allows

/// Waits for `runs` restarts of `name`: a throughput that a loaded machine
/// may take minutes to reach, hence a deadline of its own.
async fn wait_runs(handle: &SupervisorHandle, name: &str, runs: u64) {
    let reached = handle.wait_status(name, |status| status.restarts_total >= runs);
    match tokio::time::timeout(RUNS_DEADLINE, reached).await {
        Ok(status) => drop(status.expect("the unit exists and the supervisor runs")),
        Err(_) => panic!("timed out waiting for {runs} runs of `{name}`; last status: {:#?}", handle.status(name)),
    }
}

#[test]
fn a_daemon_restarting_thousands_of_times_leaks_nothing() {
    alone(async {
        let handle = Supervisor::builder()
            .daemon(sh("crash", "echo line; exit 1"))
            .daemon(sh("notify-crash", "systemd-notify --ready; exit 1").readiness(Readiness::Notified))
            .daemon(sh("orphaner", "sleep 47111001 & exit 1"))
            .build()
            .unwrap()
            .start();
        for name in ["crash", "notify-crash", "orphaner"] {
            wait_runs(&handle, name, 100).await;
        }
        let early = snapshot();
        let early_total = handle.status("crash").unwrap().restarts_total;
        for name in ["crash", "notify-crash", "orphaner"] {
            wait_runs(&handle, name, 1000).await;
        }
        wait_runs(&handle, "crash", 1500).await;
        let pause = ["crash", "notify-crash", "orphaner"].map(|name| handle.pause_restarts(name));
        for paused in futures_util::future::join_all(pause).await {
            paused.expect("paused");
        }
        for name in ["crash", "notify-crash", "orphaner"] {
            wait_status(DEADLINE, &handle, name, |status| !status.running && status.pid.is_none()).await;
        }
        let late_total = handle.status("crash").unwrap().restarts_total;
        assert!(late_total - early_total >= 1000, "{early_total} -> {late_total}");
        let late = assert_no_growth("after 1000+ more runs each", &early, 2).await;
        assert!(late.threads <= early.threads + 4, "threads grew from {} to {}", early.threads, late.threads);
        assert!(
            late.rss_kib <= early.rss_kib + 32 * 1024,
            "RSS grew from {} KiB to {} KiB",
            early.rss_kib,
            late.rss_kib
        );
        assert_eq!(with_marker("47111001"), Vec::<u32>::new(), "grandchildren of the group outlived their runs");
        handle.shutdown().await;
        assert!(notify_dirs().is_empty(), "{:?}", notify_dirs());
    });
}

// ---------------------------------------------------------------------------
// Spawn failures in a loop

#[test]
fn spawn_failures_in_a_loop_leak_nothing() {
    alone(async {
        let dir = scratch_dir("spawn-failures");
        let not_executable = dir.join("not-executable");
        std::fs::write(&not_executable, "#!/bin/sh\nexit 0\n").unwrap();
        let no_format = dir.join("no-format");
        std::fs::write(&no_format, b"\x7fELFgarbage\x00\x01\x02").unwrap();
        std::fs::set_permissions(&no_format, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let names = ["missing", "denied", "noexec", "missing-notified", "missing-dog", "bad-dir"];
        let handle = Supervisor::builder()
            .daemon(DaemonSpec::new("missing", "no-such-program-anywhere-7").restart(quick()))
            .daemon(DaemonSpec::new("denied", &not_executable).restart(quick()))
            .daemon(DaemonSpec::new("noexec", &no_format).restart(quick()))
            .daemon(
                DaemonSpec::new("missing-notified", "no-such-program-anywhere-8")
                    .restart(quick())
                    .readiness(Readiness::Notified),
            )
            .daemon(
                DaemonSpec::new("missing-dog", "no-such-program-anywhere-9")
                    .restart(quick())
                    .watchdog(Duration::from_secs(1)),
            )
            .daemon(DaemonSpec::new("bad-dir", "true").current_dir(dir.join("nowhere")).restart(quick()))
            .build()
            .unwrap()
            .start();
        for name in names {
            wait_runs(&handle, name, 200).await;
        }
        let early = snapshot();
        for name in names {
            wait_runs(&handle, name, 800).await;
        }
        for name in names {
            handle.pause_restarts(name).await.expect("paused");
        }
        let late = assert_no_growth("after 600 more failed spawns each", &early, 2).await;
        assert!(late.threads <= early.threads + 4, "threads grew from {} to {}", early.threads, late.threads);
        handle.shutdown().await;
        assert!(notify_dirs().is_empty(), "{:?}", notify_dirs());
    });
}

// ---------------------------------------------------------------------------
// Probes against a port that accepts and never answers

#[test]
fn probes_against_a_silent_port_close_every_connection() {
    alone(async {
        let (addr, open, accepted) = silent_listener().await;
        let url = format!("http://{addr}/health");
        let probe = || Probe::http(url.clone()).period(Duration::from_millis(5)).timeout(Duration::from_millis(10));
        let handle = Supervisor::builder()
            .daemon(sh("ready-probed", "exec sleep 47111000").readiness(Readiness::Probe(probe())))
            .daemon(sh("live-probed", "exec sleep 47111000").liveness(probe().failure_threshold(3)))
            .build()
            .unwrap()
            .start();
        wait_for(DEADLINE, "50 probe connections", || (accepted.load(Ordering::SeqCst) >= 50).then_some(())).await;
        let early = snapshot();
        let early_open = open.load(Ordering::SeqCst);
        wait_for(DEADLINE, "400 probe connections", || (accepted.load(Ordering::SeqCst) >= 400).then_some(())).await;
        let late_open = open.load(Ordering::SeqCst);
        assert!(late_open <= early_open + 4, "connections held open grew from {early_open} to {late_open}");
        let late = snapshot();
        assert!(late.fds <= early.fds + 8, "descriptors grew from {} to {}", early.fds, late.fds);
        handle.shutdown().await;
        wait_for(DEADLINE, "every probe connection closed", || (open.load(Ordering::SeqCst) == 0).then_some(())).await;
    });
}

#[test]
fn exec_probes_that_hang_and_fork_leave_no_process() {
    alone(async {
        let hang = Probe::exec(["sh", "-c", "sleep 47111002 & exec sleep 47111003"])
            .period(Duration::from_millis(5))
            .timeout(Duration::from_millis(20))
            .failure_threshold(1_000_000);
        let pass = Probe::exec(["sh", "-c", "sleep 47111004 & exit 0"]).period(Duration::from_millis(5));
        let handle = Supervisor::builder()
            .daemon(sh("hung", "exec sleep 47111000").liveness(hang))
            .daemon(sh("passing", "exec sleep 47111000").readiness(Readiness::Probe(pass)))
            .build()
            .unwrap()
            .start();
        within(DEADLINE, "ready", handle.wait_ready("passing")).await.expect("ready");
        let mut seen = 0;
        wait_for(DEADLINE, "many probe attempts", || {
            seen += with_marker("47111003").len();
            (seen >= 30).then_some(())
        })
        .await;
        let early = snapshot();
        let mut seen = 0;
        wait_for(DEADLINE, "many more probe attempts", || {
            seen += with_marker("47111003").len();
            (seen >= 200).then_some(())
        })
        .await;
        let late = snapshot();
        assert!(late.children <= early.children + 2, "children grew from {} to {}", early.children, late.children);
        assert!(late.zombies <= early.zombies + 2, "zombies grew from {} to {}", early.zombies, late.zombies);
        handle.shutdown().await;
        for marker in ["47111002", "47111003", "47111004"] {
            let left = wait_for_none(marker).await;
            assert_eq!(left, Vec::<u32>::new(), "probe processes `{marker}` left");
        }
    });
}

async fn wait_for_none(marker: &str) -> Vec<u32> {
    let began = Instant::now();
    loop {
        let left = with_marker(marker);
        if left.is_empty() || began.elapsed() > Duration::from_secs(3) {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------
// Shutdown while spawns are in flight

#[test]
fn a_shutdown_amid_hundreds_of_adds_leaves_no_process() {
    alone(async {
        process_warm_up().await;
        let before = snapshot();
        let handle = Supervisor::builder().event_capacity(1 << 14).build().unwrap().start();
        let mut events = handle.subscribe();
        let adds: Vec<_> = (0..300)
            .map(|i| {
                let handle = handle.clone();
                tokio::spawn(async move {
                    let spec = match i % 3 {
                        0 => sh(&format!("inflight-{i}"), "exec sleep 47111005"),
                        1 => sh(&format!("inflight-{i}"), "systemd-notify --ready; exec sleep 47111005")
                            .readiness(Readiness::Notified),
                        _ => sh(&format!("inflight-{i}"), "sleep 47111005 & echo up; wait")
                            .readiness(Readiness::OutputLine("up".to_owned())),
                    };
                    handle.add(spec).await
                })
            })
            .collect();
        let mut started = 0;
        within(DEADLINE, "50 starts", async {
            while started < 50 {
                if let Ok(event) = events.recv().await
                    && matches!(event.kind, EventKind::Started { .. })
                {
                    started += 1;
                }
            }
        })
        .await;
        let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
        let mut refused = 0;
        for add in adds {
            if add.await.expect("no panic").is_err() {
                refused += 1;
            }
        }
        drop(handle);
        assert!(!report.units.is_empty());
        let left = wait_for_none("47111005").await;
        assert_eq!(left, Vec::<u32>::new(), "processes outlived the shutdown ({refused} adds refused)");
        assert_no_growth("after the shutdown amid adds", &before, 2).await;
        assert!(notify_dirs().is_empty(), "{:?}", notify_dirs());
    });
}

// ---------------------------------------------------------------------------
// Dropped without a shutdown

#[test]
fn supervisors_dropped_without_a_shutdown_leave_nothing_behind() {
    alone(async {
        let dir = scratch_dir("dropped");
        let (addr, _, _) = silent_listener().await;
        // Warm-up.
        {
            let handle = Supervisor::builder().build().unwrap().start();
            warm_up(&handle, addr).await;
            handle.shutdown().await;
        }
        let run = |round: usize| {
            let pid_file = dir.join(format!("round-{round}.pid"));
            async move {
                let handle = Supervisor::builder().pid_file(&pid_file).build().unwrap().start();
                for spec in kinds("dropped", round, addr) {
                    handle.add(spec).await.expect("add");
                }
                for name in handle.unit_names() {
                    within(DEADLINE, "ready", handle.wait_ready(&name)).await.expect("ready");
                }
                drop(handle);
                wait_for_none("47111000").await;
                wait_for(DEADLINE, "the PID file removed", || (!pid_file.exists()).then_some(())).await;
            }
        };
        run(0).await;
        let early = settled(|now| now.notify_dirs == 0).await;
        for round in 1..15 {
            run(round).await;
        }
        assert_eq!(with_marker("47111000"), Vec::<u32>::new(), "no `sleep 47111000` left");
        let late = assert_no_growth("after 14 more dropped supervisors", &early, 2).await;
        assert!(late.threads <= early.threads + 4, "threads grew from {} to {}", early.threads, late.threads);
    });
}

/// Builds and drops a runtime with daemons running, on a thread of its own.
fn run_and_drop_runtime(round: usize, addr: std::net::SocketAddr, pid_file: PathBuf) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let handle = runtime.block_on(async {
            let handle = Supervisor::builder().pid_file(&pid_file).build().unwrap().start();
            for spec in kinds("rt", round, addr) {
                handle.add(spec).await.expect("add");
            }
            for name in handle.unit_names() {
                within(DEADLINE, "ready", handle.wait_ready(&name)).await.expect("ready");
            }
            handle
        });
        drop(runtime);
        drop(handle);
    })
    .join()
    .expect("the runtime thread");
}

#[test]
fn runtimes_dropped_with_daemons_running_leave_nothing_behind() {
    alone(async {
        process_warm_up().await;
        let dir = scratch_dir("runtime-dropped");
        let (addr, _, _) = silent_listener().await;
        run_and_drop_runtime(0, addr, dir.join("0.pid"));
        let early = snapshot();
        for round in 1..11 {
            run_and_drop_runtime(round, addr, dir.join(format!("{round}.pid")));
        }
        let left = wait_for_none("47111012").await;
        assert!(left.is_empty(), "daemons outlived their runtime: {:?}", describe(&left));
        let late = assert_no_growth("after 10 more dropped runtimes", &early, 2).await;
        assert!(late.threads <= early.threads + 2, "threads grew from {} to {}", early.threads, late.threads);
        let pid_files: Vec<_> = std::fs::read_dir(&*dir).unwrap().filter_map(Result::ok).map(|e| e.path()).collect();
        assert_eq!(pid_files, Vec::<PathBuf>::new(), "PID files left by dropped runtimes");
    });
}

// ---------------------------------------------------------------------------
// Grandchildren that leave the group, early-closed output

#[test]
fn removed_daemons_whose_setsid_grandchildren_hold_the_pipe_leak_no_descriptor_once_those_end() {
    alone(async {
        const ESCAPERS: usize = 12;
        process_warm_up().await;
        let handle = Supervisor::builder().build().unwrap().start();
        let round = |i: usize| {
            let handle = handle.clone();
            async move {
                let name = format!("escaper-{i}");
                handle
                    .add(
                        // Ready once the grandchild has left the group.
                        sh(&name, "setsid sh -c 'echo up; exec sleep 47111006' & exec sleep 47111000")
                            .readiness(Readiness::OutputLine("up".to_owned())),
                    )
                    .await
                    .expect("add");
                within(DEADLINE, "ready", handle.wait_ready(&name)).await.expect("ready");
                handle.remove(&name).await.expect("remove");
            }
        };
        round(0).await;
        kill_marked("47111006");
        let early = settled(|_| with_marker("47111006").is_empty()).await;
        // Each removal drains its output for half a second: the escaper holds
        // the pipe.
        for i in 1..=ESCAPERS {
            round(i).await;
        }
        let escaped = with_marker("47111006").len();
        assert_eq!(escaped, ESCAPERS, "every escaper left its group before its unit was removed");
        kill_marked("47111006");
        assert!(with_marker("47111006").is_empty() || wait_for_none("47111006").await.is_empty());
        assert_no_growth("after the escapers ended", &early, 2).await;
        handle.shutdown().await;
    });
}

// ---------------------------------------------------------------------------
// PID files

#[test]
fn pid_files_are_removed_and_their_descriptors_closed_in_every_ending() {
    alone(async {
        process_warm_up().await;
        let dir = scratch_dir("pid-files");
        let mut early = snapshot();
        for round in 0..120 {
            if round == 20 {
                early = snapshot();
            }
            let path = dir.join(format!("{round}.pid"));
            let sup = Supervisor::builder().pid_file(&path).build().unwrap();
            assert!(path.exists());
            match round % 3 {
                // Built and never started.
                0 => drop(sup),
                // Shut down.
                1 => {
                    sup.start().shutdown().await;
                }
                // Dropped.
                _ => drop(sup.start()),
            }
            wait_for(DEADLINE, "the PID file removed", || (!path.exists()).then_some(())).await;
        }
        let late = assert_no_growth("after 100 more PID files", &early, 2).await;
        assert!(late.threads <= early.threads + 4, "threads grew from {} to {}", early.threads, late.threads);
    });
}

// ---------------------------------------------------------------------------
// The HTTP endpoint

#[test]
fn http_clients_connecting_and_disconnecting_leak_no_descriptor() {
    alone(async {
        let handle = Supervisor::builder().daemon(sh("web", "exec sleep 47111000")).build().unwrap().start();
        let server = HttpEndpoint::new().addr("127.0.0.1:0".parse().unwrap()).serve(&handle).await.expect("serve");
        let addr = server.local_addr();
        let cycle = |i: usize| async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            match i % 4 {
                0 => {
                    stream.write_all(b"GET /livez HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
                    let mut answer = Vec::new();
                    let _ = stream.read_to_end(&mut answer).await;
                }
                1 => {}
                2 => {
                    let _ = stream.write_all(b"GET /status HTTP/1.1\r\nhost: x\r\n").await;
                }
                _ => {
                    stream.write_all(b"GET /status HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
                    let mut some = [0u8; 16];
                    let _ = stream.read(&mut some).await;
                }
            }
        };
        for i in 0..100 {
            cycle(i).await;
        }
        let early = settled(|_| false).await;
        for i in 100..1100 {
            cycle(i).await;
        }
        assert_no_growth("after 1000 more HTTP clients", &early, 4).await;
        server.shutdown().await;
        handle.shutdown().await;
    });
}

// ---------------------------------------------------------------------------
// Output captured under churn

#[test]
fn output_modes_under_churn_leak_nothing() {
    alone(async {
        let handle = Supervisor::builder().build().unwrap().start();
        let round = |i: usize| {
            let handle = handle.clone();
            async move {
                let names: Vec<String> = (0..3).map(|k| format!("out-{i}-{k}")).collect();
                let specs = [
                    sh(&names[0], "yes 0123456789 | head -c 200000; exec sleep 47111000").tail_lines(10),
                    sh(&names[1], "exec sleep 47111000").output(Output::Discard),
                    sh(&names[2], "echo x; exec sleep 47111000").output(Output::Capture).tail_bytes(64),
                ];
                for spec in specs {
                    handle.add(spec).await.expect("add");
                }
                for name in &names {
                    wait_status(DEADLINE, &handle, name, |status| status.state == UnitState::Running).await;
                }
                for name in &names {
                    handle.remove(name).await.expect("remove");
                }
            }
        };
        for i in 0..10 {
            round(i).await;
        }
        let early = snapshot();
        for i in 10..80 {
            round(i).await;
        }
        let late = assert_no_growth("after 70 more rounds", &early, 2).await;
        assert!(
            late.rss_kib <= early.rss_kib + 32 * 1024,
            "RSS grew from {} KiB to {} KiB",
            early.rss_kib,
            late.rss_kib
        );
        handle.shutdown().await;
    });
}

// ---------------------------------------------------------------------------
// Watchdogs and liveness probes that keep failing

#[test]
fn runs_killed_by_their_watchdog_or_liveness_in_a_loop_leak_nothing() {
    alone(async {
        let (addr, open, _) = silent_listener().await;
        let url = format!("http://{addr}/");
        let handle = Supervisor::builder()
            .daemon(sh("starved", "echo up; exec sleep 47111000").watchdog(Duration::from_millis(5)))
            .daemon(
                sh("unlive", "exec sleep 47111000").liveness(
                    Probe::http(url)
                        .period(Duration::from_millis(2))
                        .timeout(Duration::from_millis(3))
                        .failure_threshold(1),
                ),
            )
            .daemon(
                sh("unlive-exec", "exec sleep 47111000")
                    .liveness(Probe::exec(["false"]).period(Duration::from_millis(2)).failure_threshold(1)),
            )
            .build()
            .unwrap()
            .start();
        let names = ["starved", "unlive", "unlive-exec"];
        for name in names {
            wait_runs(&handle, name, 20).await;
        }
        let early = snapshot();
        let early_open = open.load(Ordering::SeqCst);
        for name in names {
            wait_runs(&handle, name, 200).await;
        }
        for name in names {
            handle.pause_restarts(name).await.expect("paused");
        }
        for name in names {
            wait_status(DEADLINE, &handle, name, |status| !status.running && status.pid.is_none()).await;
        }
        let late = assert_no_growth("after 180 more killed runs each", &early, 2).await;
        assert!(late.threads <= early.threads + 4, "threads grew from {} to {}", early.threads, late.threads);
        let late_open = open.load(Ordering::SeqCst);
        assert!(late_open <= early_open + 2, "probe connections held open: {early_open} -> {late_open}");
        handle.shutdown().await;
        assert!(notify_dirs().is_empty(), "{:?}", notify_dirs());
        assert_eq!(wait_for_none("47111000").await, Vec::<u32>::new());
    });
}

// ---------------------------------------------------------------------------
// Add and remove without waiting, concurrently

#[test]
fn removing_daemons_as_they_are_being_added_leaves_no_process() {
    alone(async {
        let handle = Supervisor::builder().build().unwrap().start();
        let wave = |from: usize| {
            let handle = handle.clone();
            async move {
                let jobs: Vec<_> = (from..from + 100)
                    .map(|i| {
                        let handle = handle.clone();
                        tokio::spawn(async move {
                            let name = format!("quick-{i}");
                            let spec = match i % 3 {
                                0 => sh(&name, "exec sleep 47111007"),
                                1 => sh(&name, "systemd-notify --ready; exec sleep 47111007")
                                    .readiness(Readiness::Notified),
                                _ => sh(&name, "sleep 47111007 & echo up; wait")
                                    .readiness(Readiness::OutputLine("up".to_owned())),
                            };
                            handle.add(spec).await.expect("add");
                            if i.is_multiple_of(2) {
                                tokio::task::yield_now().await;
                            }
                            handle.remove(&name).await.expect("remove");
                        })
                    })
                    .collect();
                for job in jobs {
                    within(DEADLINE, "add and remove", job).await.expect("no panic");
                }
            }
        };
        wave(0).await;
        let early = settled(|now| now.children == 0 && with_marker("47111007").is_empty()).await;
        for from in (100..500).step_by(100) {
            wave(from).await;
        }
        assert!(handle.unit_names().is_empty(), "{:?}", handle.unit_names());
        assert_eq!(wait_for_none("47111007").await, Vec::<u32>::new(), "processes outlived their removal");
        assert_no_growth("after 400 more added and removed at once", &early, 2).await;
        handle.shutdown().await;
        assert!(notify_dirs().is_empty(), "{:?}", notify_dirs());
    });
}

// ---------------------------------------------------------------------------
// What stays in the supervisor's tables after unique names come and go

#[test]
fn tables_do_not_keep_what_removed_units_left() {
    alone(async {
        let handle = Supervisor::builder().build().unwrap().start();
        let round = |from: usize, to: usize| {
            let handle = handle.clone();
            async move {
                for i in from..to {
                    let name = format!("task-{i}");
                    handle
                        .add(
                            TaskSpec::new(&name, |ctx: Context| async move {
                                ctx.ready();
                                ctx.cancelled().await;
                                Ok::<_, std::io::Error>(())
                            })
                            .readiness(Readiness::Notified),
                        )
                        .await
                        .expect("add");
                    within(DEADLINE, "ready", handle.wait_ready(&name)).await.expect("ready");
                    // A wait given up on before it ends.
                    let _ = tokio::time::timeout(Duration::ZERO, handle.wait_state(&name, UnitState::Failed)).await;
                    let _ = handle.tail(&name, 1);
                    handle.remove(&name).await.expect("remove");
                }
            }
        };
        round(0, 200).await;
        let early_metrics = handle.metrics_text().len();
        let early_status = handle.statuses().len();
        let early = snapshot();
        round(200, 2000).await;
        let late_metrics = handle.metrics_text().len();
        assert!(
            late_metrics <= early_metrics + 256,
            "the metrics text grew from {early_metrics} to {late_metrics} bytes"
        );
        assert_eq!(handle.statuses().len(), early_status);
        let late = snapshot();
        assert!(
            late.rss_kib <= early.rss_kib + 16 * 1024,
            "RSS grew from {} KiB to {} KiB",
            early.rss_kib,
            late.rss_kib
        );
        handle.shutdown().await;
    });
}

// ---------------------------------------------------------------------------
// HTTP endpoints started and stopped

#[test]
fn http_endpoints_started_and_stopped_in_a_loop_leak_nothing() {
    alone(async {
        let dir = scratch_dir("endpoints");
        let round = |i: usize| {
            let dir = dir.join(format!("{i}.sock"));
            async move {
                let handle = Supervisor::builder().build().unwrap().start();
                let tcp = HttpEndpoint::new().addr("127.0.0.1:0".parse().unwrap()).serve(&handle).await.expect("serve");
                let unix = HttpEndpoint::new().unix_socket(&dir).serve(&handle).await.expect("serve unix");
                let mut stream = TcpStream::connect(tcp.local_addr()).await.expect("connect");
                stream.write_all(b"GET /livez HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
                let mut some = [0u8; 16];
                let _ = stream.read(&mut some).await;
                // An open, kept-alive connection as the endpoint stops.
                match i % 3 {
                    0 => {
                        tcp.shutdown().await;
                        unix.shutdown().await;
                    }
                    1 => {
                        drop(tcp);
                        drop(unix);
                    }
                    _ => {}
                }
                handle.shutdown().await;
                drop(stream);
                wait_for(DEADLINE, "the socket file removed", || (!dir.exists()).then_some(())).await;
            }
        };
        for i in 0..6 {
            round(i).await;
        }
        let early = settled(|_| false).await;
        for i in 6..60 {
            round(i).await;
        }
        assert_no_growth("after 54 more endpoints", &early, 3).await;
    });
}

// ---------------------------------------------------------------------------
// A current-thread runtime dropped with daemons running

fn run_and_drop_current_thread_runtime(round: usize, addr: std::net::SocketAddr) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let handle = runtime.block_on(async {
            let handle = Supervisor::builder().build().unwrap().start();
            for spec in kinds("ct", round, addr) {
                handle.add(spec).await.expect("add");
            }
            for name in handle.unit_names() {
                within(DEADLINE, "ready", handle.wait_ready(&name)).await.expect("ready");
            }
            handle
        });
        drop(runtime);
        drop(handle);
    })
    .join()
    .expect("the runtime thread");
}

#[test]
fn current_thread_runtimes_dropped_with_daemons_running_leave_nothing_behind() {
    alone(async {
        process_warm_up().await;
        let (addr, _, _) = silent_listener().await;
        run_and_drop_current_thread_runtime(0, addr);
        let early = snapshot();
        for round in 1..11 {
            run_and_drop_current_thread_runtime(round, addr);
        }
        let left = wait_for_none("47111013").await;
        assert!(left.is_empty(), "daemons outlived their runtime: {:?}", describe(&left));
        let late = assert_no_growth("after 10 more dropped runtimes", &early, 2).await;
        assert!(late.threads <= early.threads + 2, "threads grew from {} to {}", early.threads, late.threads);
    });
}

// ---------------------------------------------------------------------------
// What a daemon inherits

#[test]
fn daemons_inherit_no_descriptor_of_the_supervisor() {
    alone(async {
        let dir = scratch_dir("inherit");
        let (addr, _, _) = silent_listener().await;
        let handle = Supervisor::builder().pid_file(dir.join("sup.pid")).build().unwrap().start();
        let _server = HttpEndpoint::new().addr("127.0.0.1:0".parse().unwrap()).serve(&handle).await.expect("serve");
        for spec in kinds("inherit", 0, addr) {
            let name = spec.name().to_owned();
            handle.add(spec).await.expect("add");
            within(DEADLINE, "ready", handle.wait_ready(&name)).await.expect("ready");
        }
        let mut seen = Vec::new();
        for (i, readiness) in [Readiness::Started, Readiness::Notified].into_iter().enumerate() {
            let name = format!("lister-{i}");
            let script = "for fd in /proc/self/fd/*; do echo \"fd $fd $(readlink $fd)\"; done; \
                          systemd-notify --ready 2>/dev/null; echo done; exec sleep 47111000";
            handle
                .add(sh(&name, script).readiness(readiness.clone()).watchdog(Duration::from_secs(60)))
                .await
                .expect("add");
            let tail = wait_for(DEADLINE, "the listing", || {
                let tail = handle.tail(&name, usize::MAX).expect("known");
                tail.iter().any(|line| line == "done").then_some(tail)
            })
            .await;
            seen.extend(tail.into_iter().filter(|line| line.starts_with("fd ")));
        }
        // 0, 1, 2 and the shell's own reading of the directory.
        let extra: Vec<_> = seen
            .iter()
            .filter(|line| {
                let fd: u32 = line.split(['/', ' ']).filter_map(|part| part.parse().ok()).next_back().unwrap_or(0);
                fd > 2 && !line.contains("/proc/")
            })
            .collect();
        assert!(extra.is_empty(), "descriptors inherited by a daemon: {extra:?} (all: {seen:?})");
        handle.shutdown().await;
    });
}

// ---------------------------------------------------------------------------
// Exec probes cut short by a removal or a dropped runtime

#[test]
fn units_removed_mid_exec_probe_leave_no_zombie_or_process() {
    alone(async {
        process_warm_up().await;
        let handle = Supervisor::builder().build().unwrap().start();
        let round = |i: usize| {
            let handle = handle.clone();
            async move {
                let name = format!("mid-probe-{i}");
                let probe = Probe::exec(["sh", "-c", "echo $$ > /dev/null; exec sleep 47111008"])
                    .period(Duration::from_secs(60))
                    .timeout(Duration::from_secs(60));
                let spec = if i.is_multiple_of(2) {
                    sh(&name, "exec sleep 47111000").liveness(probe)
                } else {
                    sh(&name, "exec sleep 47111000").readiness(Readiness::Probe(probe))
                };
                handle.add(spec).await.expect("add");
                wait_for(DEADLINE, "the probe to run", || (!with_marker("47111008").is_empty()).then_some(())).await;
                handle.remove(&name).await.expect("remove");
            }
        };
        round(0).await;
        let early = settled(|now| now.zombies == 0 && with_marker("47111008").is_empty()).await;
        for i in 1..60 {
            round(i).await;
        }
        assert_eq!(wait_for_none("47111008").await, Vec::<u32>::new(), "probe processes outlived their unit");
        assert_no_growth("after 59 more units removed mid-probe", &early, 2).await;
        handle.shutdown().await;
    });
}

fn drop_runtime_mid_exec_probe(round: usize) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let handle = runtime.block_on(async {
            let probe = Probe::exec(["sh", "-c", "echo $$ > /dev/null; exec sleep 47111009"])
                .period(Duration::from_secs(60))
                .timeout(Duration::from_secs(60));
            let handle = Supervisor::builder()
                .daemon(sh(&format!("rt-probe-{round}"), "exec sleep 47111000").liveness(probe))
                .build()
                .unwrap()
                .start();
            wait_for(DEADLINE, "the probe to run", || (!with_marker("47111009").is_empty()).then_some(())).await;
            handle
        });
        drop(runtime);
        drop(handle);
    })
    .join()
    .expect("the runtime thread");
}

#[test]
fn runtimes_dropped_mid_exec_probe_leave_no_zombie_or_process() {
    alone(async {
        process_warm_up().await;
        drop_runtime_mid_exec_probe(0);
        let early = settled(|now| now.zombies == 0 && with_marker("47111009").is_empty()).await;
        for round in 1..21 {
            drop_runtime_mid_exec_probe(round);
        }
        assert_eq!(wait_for_none("47111009").await, Vec::<u32>::new(), "probe processes outlived their runtime");
        assert_eq!(wait_for_none("47111000").await, Vec::<u32>::new(), "daemons outlived their runtime");
        assert_no_growth("after 20 more runtimes dropped mid-probe", &early, 2).await;
    });
}

// ---------------------------------------------------------------------------
// systemd notification, in a child test process with NOTIFY_SOCKET set

const CHILD: &str = "HOSTILE_RESOURCES_CHILD";

fn named_threads(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(Result::ok)
        .filter(|task| std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name))
        .count()
}

/// Runs the test `name` of this binary in a child process with
/// `NOTIFY_SOCKET` naming a socket that reads (and drops) what it gets.
fn in_child_with_notify_socket(name: &str, read: bool, rounds: usize) -> (bool, String) {
    let dir = scratch_dir(name);
    let path = dir.join("notify");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
    let drain = socket.try_clone().unwrap();
    drain.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let draining = std::thread::spawn({
        let stop = stop.clone();
        move || {
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::SeqCst) {
                if read {
                    let _ = drain.recv(&mut buf);
                } else {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    });
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads", "1", "--include-ignored"])
        .env(CHILD, rounds.to_string())
        .env("NOTIFY_SOCKET", &path)
        .env_remove("WATCHDOG_USEC")
        .output()
        .expect("run the child test");
    stop.store(true, Ordering::SeqCst);
    draining.join().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success() && text.contains("1 passed"), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_supervisors_notifying_systemd_in_a_loop() {
    let Some(rounds) = std::env::var(CHILD).ok().and_then(|rounds| rounds.parse::<usize>().ok()) else {
        return;
    };
    let round = || async {
        let handle = Supervisor::builder().daemon(sh("web", "exec sleep 47111000")).build().unwrap().start();
        assert!(handle.notify_systemd());
        within(DEADLINE, "ready", handle.wait_ready("web")).await.expect("ready");
        handle.shutdown().await;
    };
    round().await;
    let early = named_threads("sd-notify");
    for _ in 0..rounds {
        round().await;
    }
    let began = Instant::now();
    let mut late = named_threads("sd-notify");
    while late > early && began.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        late = named_threads("sd-notify");
    }
    assert!(late <= early, "`sd-notify` threads: {early} after one supervisor, {late} after {rounds} more");
}

#[test]
fn supervisors_notifying_systemd_in_a_loop_leave_no_thread() {
    alone(async {
        let (passed, text) = tokio::task::spawn_blocking(|| {
            in_child_with_notify_socket("child_supervisors_notifying_systemd_in_a_loop", true, 20)
        })
        .await
        .unwrap();
        assert!(passed, "{text}");
    });
}

/// The notification socket is not read (systemd busy or hung): each
/// supervisor's `sd-notify` thread blocks for ever in its `send`, after the
/// supervisor has shut down and been dropped.
#[test]
fn supervisors_notifying_an_unread_socket_leave_no_thread() {
    alone(async {
        let (passed, text) = tokio::task::spawn_blocking(|| {
            in_child_with_notify_socket("child_supervisors_notifying_systemd_in_a_loop", false, 8)
        })
        .await
        .unwrap();
        assert!(passed, "{text}");
    });
}

// ---------------------------------------------------------------------------
// The last handle dropped, then the runtime at once, mid-shutdown

fn drop_handle_then_runtime(round: usize, addr: std::net::SocketAddr, dir: PathBuf) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async {
            let handle = Supervisor::builder().pid_file(dir.join(format!("{round}.pid"))).build().unwrap().start();
            let _server =
                HttpEndpoint::new().unix_socket(dir.join(format!("{round}.sock"))).serve(&handle).await.expect("serve");
            for spec in kinds("mid", round, addr) {
                handle.add(spec.stop_timeout(Duration::from_secs(10))).await.expect("add");
            }
            handle
                .add(
                    sh("term-ignorer", "trap '' TERM; echo up; while :; do sleep 0.05; done")
                        .readiness(Readiness::OutputLine("up".to_owned()))
                        .stop_timeout(Duration::from_secs(10)),
                )
                .await
                .expect("add");
            for name in handle.unit_names() {
                within(DEADLINE, "ready", handle.wait_ready(&name)).await.expect("ready");
            }
            drop(handle);
            // The background shutdown has begun and waits for the unit
            // that ignores SIGTERM.
            tokio::task::yield_now().await;
        });
        drop(runtime);
    })
    .join()
    .expect("the runtime thread");
}

#[test]
fn runtimes_dropped_mid_background_shutdown_leave_nothing_behind() {
    alone(async {
        let dir = scratch_dir("mid-shutdown");
        let (addr, _, _) = silent_listener().await;
        drop_handle_then_runtime(0, addr, dir.to_path_buf());
        let early = settled(|now| now.notify_dirs == 0 && with_marker("47111014").is_empty()).await;
        for round in 1..9 {
            drop_handle_then_runtime(round, addr, dir.to_path_buf());
        }
        assert_eq!(wait_for_none("47111014").await, Vec::<u32>::new(), "daemons outlived their runtime");
        let late = assert_no_growth("after 8 more runtimes dropped mid-shutdown", &early, 2).await;
        assert!(late.threads <= early.threads + 2, "threads grew from {} to {}", early.threads, late.threads);
        let files: Vec<_> = std::fs::read_dir(&*dir).unwrap().filter_map(Result::ok).map(|e| e.path()).collect();
        assert_eq!(files, Vec::<PathBuf>::new(), "PID files or sockets left");
    });
}

#[test]
fn unix_endpoints_of_supervisors_dropped_without_a_shutdown_remove_their_socket() {
    alone(async {
        process_warm_up().await;
        let dir = scratch_dir("unix-dropped");
        let early = snapshot();
        for round in 0..20 {
            let path = dir.join(format!("{round}.sock"));
            let handle = Supervisor::builder().daemon(sh("web", "exec sleep 47111000")).build().unwrap().start();
            let server = HttpEndpoint::new().unix_socket(&path).serve(&handle).await.expect("serve");
            within(DEADLINE, "ready", handle.wait_ready("web")).await.expect("ready");
            if round % 2 == 0 {
                drop(server);
            } else {
                std::mem::forget(server);
            }
            drop(handle);
            wait_for(DEADLINE, "the daemon stopped", || with_marker("47111000").is_empty().then_some(())).await;
            let began = Instant::now();
            while path.exists() && began.elapsed() < Duration::from_secs(3) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let files: Vec<_> = std::fs::read_dir(&*dir).unwrap().filter_map(Result::ok).map(|e| e.path()).collect();
        assert_eq!(files, Vec::<PathBuf>::new(), "sockets left by endpoints of dropped supervisors");
        assert_no_growth("after 20 dropped supervisors with endpoints", &early, 2).await;
    });
}

// ---------------------------------------------------------------------------
// As the reaper of orphans (PID 1 of a container), in a child test process

const REAPER_CHILD: &str = "HOSTILE_RESOURCES_REAPER";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_as_subreaper_restarting_daemons_with_grandchildren() {
    if std::env::var_os(REAPER_CHILD).is_none() {
        return;
    }
    // What PID 1 of a container is: every orphan of its tree becomes its child.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).expect("PR_SET_CHILD_SUBREAPER");
    let handle = Supervisor::builder()
        .daemon(sh("orphaner", "sleep 47111010 & exit 1"))
        .daemon(sh("family", "sleep 47111010 & sleep 47111010 & echo up; wait"))
        .build()
        .unwrap()
        .start();
    let pause = || async {
        handle.pause_restarts("orphaner").await.expect("paused");
        wait_status(DEADLINE, &handle, "orphaner", |status| !status.running && status.pid.is_none())
            .await
            .restarts_total
    };
    wait_runs(&handle, "orphaner", 20).await;
    for _ in 0..5 {
        handle.restart("family").await.expect("restart");
    }
    let early_runs = pause().await;
    let early = snapshot();
    handle.resume_restarts("orphaner").await.expect("resumed");
    wait_runs(&handle, "orphaner", early_runs + 200).await;
    for _ in 0..50 {
        handle.restart("family").await.expect("restart");
    }
    let late_runs = pause().await;
    handle.shutdown().await;
    let late = settled(|now| now.zombies <= early.zombies).await;
    assert!(
        late.zombies <= early.zombies,
        "zombie children of the supervisor's process: {} after {early_runs} runs + 5 restarts, \
         {} after {late_runs} runs + 55 restarts and the shutdown",
        early.zombies,
        late.zombies
    );
}

/// Run as PID 1 of a container (the README's Kubernetes example), or under
/// any subreaper, the supervisor inherits the processes of each run's group
/// when the run's leader exits; it kills them (`SIGKILL` to the group) but
/// never reaps them: one zombie per process of each run, for ever.
#[test]
fn as_the_reaper_of_orphans_the_supervisor_leaves_no_zombie() {
    alone(async {
        run_child_test("child_as_subreaper_restarting_daemons_with_grandchildren", REAPER_CHILD).await;
    });
}

/// Runs the test `name` of this binary in a process of its own, with the
/// variable `switch` set (the test does nothing without it); it passes.
async fn run_child_test(name: &'static str, switch: &'static str) {
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture"])
            .args(["--test-threads", "1", "--include-ignored"])
            .env(switch, "1")
            .output()
            .expect("run the child test")
    })
    .await
    .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && text.contains("1 passed"), "{text}");
}

const DROPPED_REAPER_CHILD: &str = "HOSTILE_RESOURCES_DROPPED_REAPER";

#[test]
fn child_as_subreaper_a_runtime_dropped_with_its_runs() {
    if std::env::var_os(DROPPED_REAPER_CHILD).is_none() {
        return;
    }
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).expect("PR_SET_CHILD_SUBREAPER");
    let before = snapshot();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let handle = runtime.block_on(async {
        let handle = Supervisor::builder()
            .daemon(sh("family", "sleep 47111016 & sleep 47111016 & echo up; wait"))
            .daemon(sh("single", "exec sleep 47111016"))
            .build()
            .unwrap()
            .start();
        wait_for(DEADLINE, "the three jobs", || (with_marker("47111016").len() == 3).then_some(())).await;
        handle
    });
    drop(runtime);
    // Nothing runs in the background any more: the runs' drops reaped what
    // their groups left to this process.
    let after = snapshot();
    assert!(with_marker("47111016").is_empty(), "the daemons outlived their runtime");
    assert!(
        after.zombies <= before.zombies,
        "zombie children of the supervisor's process once its runtime is gone: {} (before: {})",
        after.zombies,
        before.zombies
    );
    drop(handle);
}

/// As PID 1 or a subreaper, a supervisor whose runtime is dropped (no
/// shutdown) kills each run's group as its run is dropped: the members of
/// a group were left to the supervisor's process, which nothing else
/// reaps, as no task runs any more; they must not stay zombies.
#[test]
fn as_the_reaper_of_orphans_a_dropped_runtime_leaves_no_zombie() {
    alone(async {
        run_child_test("child_as_subreaper_a_runtime_dropped_with_its_runs", DROPPED_REAPER_CHILD).await;
    });
}

const LONG_RUN_REAPER_CHILD: &str = "HOSTILE_RESOURCES_LONG_RUN_REAPER";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_as_subreaper_a_long_run_whose_jobs_end() {
    if std::env::var_os(LONG_RUN_REAPER_CHILD).is_none() {
        return;
    }
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).expect("PR_SET_CHILD_SUBREAPER");
    // A shell wrapper that runs 30 jobs in the background of subshells,
    // one after another: each becomes the supervisor's child as its
    // subshell exits, and ends a moment later. The run goes on.
    let script =
        "i=0; while [ $i -lt 30 ]; do (sleep 0.02 &); i=$((i+1)); echo $i; sleep 0.03; done; exec sleep 47111011";
    let handle = Supervisor::builder().daemon(sh("jobs", script)).build().unwrap().start();
    wait_for(DEADLINE, "30 jobs started", || handle.tail("jobs", 1).unwrap().contains(&"30".to_owned()).then_some(()))
        .await;
    let now = settled(|now| now.zombies == 0).await;
    let status = handle.status("jobs").unwrap();
    assert!(status.running, "the run still lasts: {status:?}");
    assert_eq!(now.zombies, 0, "zombie children of the supervisor's process while the run lasts");
    handle.shutdown().await;
}

/// Under a subreaper (PID 1 of a container), the jobs that a long run's
/// subshells leave to the supervisor are reaped as they end, not only when
/// the run is over: a wrapper that backgrounds a job now and then filled
/// the process table with zombies, one per job, for as long as it ran.
#[test]
fn as_the_reaper_of_orphans_a_long_run_leaves_no_zombie_while_it_lasts() {
    alone(async {
        run_child_test("child_as_subreaper_a_long_run_whose_jobs_end", LONG_RUN_REAPER_CHILD).await;
    });
}

const OTHERS_CHILDREN_REAPER_CHILD: &str = "HOSTILE_RESOURCES_OTHERS_CHILDREN_REAPER";

/// A leader that moves itself into the group of a child of its own, then
/// exits with 7 while that child still runs.
const LEADER_LEAVING_ITS_GROUP: &str = r#"
import os, sys, time
r, w = os.pipe()
child = os.fork()
if child == 0:
    os.setpgid(0, 0)
    os.write(w, b"x")
    time.sleep(0.3)
    os._exit(0)
os.read(r, 1)
os.setpgid(0, child)
time.sleep(0.05)
sys.exit(7)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_as_subreaper_children_outside_the_runs_groups() {
    if std::env::var_os(OTHERS_CHILDREN_REAPER_CHILD).is_none() {
        return;
    }
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).expect("PR_SET_CHILD_SUBREAPER");
    const RUNS: u32 = 10;
    let leaving = DaemonSpec::new("leaving", "python3")
        .args(["-c", LEADER_LEAVING_ITS_GROUP])
        .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(RUNS - 1)));
    // Its jobs end every 10 ms: each end has the supervisor look for
    // children to reap.
    let noise = sh("noise", "while :; do (sleep 0.01 &); sleep 0.01; done");
    let handle = Supervisor::builder().daemon(leaving).daemon(noise).build().unwrap().start();
    let mut events = handle.subscribe();
    // The program's own children: a pipeline's second process joins the
    // group of its first, as a shell makes `a | b`.
    for _ in 0..20 {
        let first = tokio::process::Command::new("sleep").arg("0.3").process_group(0).spawn().unwrap();
        let group = i32::try_from(first.id().unwrap()).unwrap();
        let mut second =
            tokio::process::Command::new("sh").args(["-c", "sleep 0.05; exit 5"]).process_group(group).spawn().unwrap();
        let status = second.wait().await.expect("the program's own child's status is kept for it");
        assert_eq!(status.code(), Some(5));
        drop(first);
    }
    let mut ends = Vec::new();
    while ends.len() < RUNS as usize {
        let event = tokio::time::timeout(DEADLINE, events.recv()).await.expect("an event").expect("no lag");
        if let (EventKind::Exited { reason }, "leaving") = (&event.kind, &*event.unit) {
            ends.push(reason.clone());
        }
    }
    assert!(ends.iter().all(|end| *end == ExitReason::Code(7)), "the leader's ends: {ends:?}");
    handle.shutdown().await;
}

/// As PID 1 or a subreaper, the supervisor reaps what the runs' groups
/// leave to it, and nothing else: a leader that moved to another group
/// (its exit status is tokio's to read), or a child the program spawned
/// into another group of its own. Its exit status was taken from whoever
/// waited for it (`ECHILD`): a leader's exit with 7 was reported as "could
/// not wait for the process", code 1.
#[test]
fn as_the_reaper_of_orphans_the_supervisor_reaps_only_its_runs_orphans() {
    alone(async {
        run_child_test("child_as_subreaper_children_outside_the_runs_groups", OTHERS_CHILDREN_REAPER_CHILD).await;
    });
}

// ---------------------------------------------------------------------------
// Error paths in a loop

#[test]
fn failing_pid_files_and_endpoints_in_a_loop_leak_no_descriptor() {
    alone(async {
        let dir = scratch_dir("error-paths");
        let held_path = dir.join("held.pid");
        let held = PidFile::create(&held_path).expect("a PID file");
        let fifo = dir.join("fifo.pid");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let link = dir.join("link.pid");
        std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
        let directory = dir.join("directory.pid");
        std::fs::create_dir(&directory).unwrap();
        let not_a_socket = dir.join("plain-file.sock");
        std::fs::write(&not_a_socket, "x").unwrap();
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy_addr = busy.local_addr().unwrap();
        let handle = Supervisor::builder().build().unwrap().start();
        let round = || async {
            for path in [&held_path, &fifo, &link, &directory] {
                assert!(PidFile::create(path).is_err(), "{path:?}");
                let built = Supervisor::builder().daemon(sh("x", "true")).pid_file(path).build();
                assert!(built.is_err(), "{path:?}");
            }
            // A valid PID file, then one that fails: the first is let go.
            let second = dir.join("second.pid");
            assert!(Supervisor::builder().pid_file(&second).pid_file(&held_path).build().is_err());
            assert!(!second.exists(), "the first PID file of a failed build is left");
            // A build that fails validation never writes its PID file.
            let third = dir.join("third.pid");
            let built = Supervisor::builder().daemon(sh("x", "true")).daemon(sh("x", "true")).pid_file(&third).build();
            assert!(built.is_err());
            assert!(!third.exists());
            assert!(HttpEndpoint::new().addr(busy_addr).serve(&handle).await.is_err());
            assert!(HttpEndpoint::new().unix_socket(&not_a_socket).serve(&handle).await.is_err());
            assert!(HttpEndpoint::new().unix_socket(dir.join("no/such/dir.sock")).serve(&handle).await.is_err());
        };
        for _ in 0..5 {
            round().await;
        }
        let early = snapshot();
        for _ in 0..200 {
            round().await;
        }
        assert_no_growth("after 200 more rounds of failures", &early, 1).await;
        assert!(held_path.exists());
        drop(held);
        assert!(!held_path.exists());
        assert!(not_a_socket.exists(), "a file that is not a socket is never removed");
        handle.shutdown().await;
    });
}

// ---------------------------------------------------------------------------
// More idle HTTP clients than the endpoint keeps

#[test]
fn idle_http_clients_beyond_max_connections_cost_no_descriptor_of_the_server() {
    alone(async {
        process_warm_up().await;
        let handle = Supervisor::builder().build().unwrap().start();
        let server =
            HttpEndpoint::new().addr("127.0.0.1:0".parse().unwrap()).max_connections(16).serve(&handle).await.unwrap();
        let addr = server.local_addr();
        let before = snapshot();
        let mut clients = Vec::new();
        for i in 0..300u32 {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            if i.is_multiple_of(2) {
                let _ = stream.write_all(b"GET /livez HTTP/1.1\r\n").await;
            }
            clients.push(stream);
        }
        // Our own 300, and at most the endpoint's 16 (+ a few in flight).
        let within = |now: &Snapshot| now.fds <= before.fds + 300 + 16 + 4;
        let now = settled(within).await;
        assert!(within(&now), "server-side sockets: about {}", now.fds.saturating_sub(before.fds + 300));
        // A probe still gets through.
        let mut probe = TcpStream::connect(addr).await.expect("connect");
        probe.write_all(b"GET /livez HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
        let mut answer = Vec::new();
        let _ = within_deadline(probe.read_to_end(&mut answer)).await;
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
        drop(clients);
        assert_no_growth("after the clients left", &before, 2).await;
        server.shutdown().await;
        handle.shutdown().await;
    });
}

async fn within_deadline<T>(future: impl Future<Output = T>) -> T {
    within(DEADLINE, "an answer", future).await
}

// ---------------------------------------------------------------------------
// Manual restarts in a loop, and the last handle dropped off the runtime

#[test]
fn manual_restarts_in_a_loop_leak_nothing() {
    alone(async {
        let (addr, _, _) = silent_listener().await;
        let mut builder = Supervisor::builder();
        let specs = kinds("restarted", 0, addr);
        let names: Vec<String> = specs.iter().map(|spec| spec.name().to_owned()).collect();
        for spec in specs {
            builder = builder.daemon(spec);
        }
        let handle = builder.build().unwrap().start();
        let round = || async {
            let restarts = names.iter().map(|name| handle.restart(name));
            for restarted in within(DEADLINE, "restarts", futures_util::future::join_all(restarts)).await {
                restarted.expect("restarted");
            }
            let readies = names.iter().map(|name| handle.wait_ready(name));
            for ready in within(DEADLINE, "all ready", futures_util::future::join_all(readies)).await {
                ready.expect("ready");
            }
        };
        for _ in 0..10 {
            round().await;
        }
        let early = snapshot();
        for _ in 0..60 {
            round().await;
        }
        let late = assert_no_growth("after 60 more restarts of each", &early, 2).await;
        assert!(late.threads <= early.threads + 4, "threads grew from {} to {}", early.threads, late.threads);
        handle.shutdown().await;
        assert!(notify_dirs().is_empty(), "{:?}", notify_dirs());
        assert_eq!(wait_for_none("47111000").await, Vec::<u32>::new());
    });
}

#[test]
fn the_last_handle_dropped_on_a_thread_of_no_runtime_stops_everything() {
    alone(async {
        process_warm_up().await;
        let (addr, _, _) = silent_listener().await;
        let before = snapshot();
        for round in 0..10 {
            let handle = Supervisor::builder().build().unwrap().start();
            for spec in kinds("foreign", round, addr) {
                handle.add(spec).await.expect("add");
            }
            for name in handle.unit_names() {
                within(DEADLINE, "ready", handle.wait_ready(&name)).await.expect("ready");
            }
            std::thread::spawn(move || drop(handle)).join().unwrap();
            assert_eq!(wait_for_none("47111000").await, Vec::<u32>::new(), "round {round}");
        }
        assert_no_growth("after 10 handles dropped off the runtime", &before, 2).await;
    });
}

// ---------------------------------------------------------------------------
// Hundreds alive at once

#[test]
fn three_hundred_daemons_alive_at_once_are_all_let_go() {
    alone(async {
        process_warm_up().await;
        let before = snapshot();
        let handle =
            Supervisor::builder().shutdown_order(supervisor::ShutdownOrder::Concurrent).build().unwrap().start();
        let mut names = Vec::new();
        for i in 0..300 {
            let name = format!("many-{i}");
            let spec = match i % 3 {
                0 => sh(&name, "exec sleep 47111011"),
                1 => sh(&name, "systemd-notify --ready; exec sleep 47111011").readiness(Readiness::Notified),
                _ => sh(&name, "echo up; exec sleep 47111011").readiness(Readiness::OutputLine("up".to_owned())),
            };
            handle.add(spec).await.expect("add");
            names.push(name);
        }
        let readies = names.iter().map(|name| handle.wait_ready(name));
        for ready in within(DEADLINE, "all ready", futures_util::future::join_all(readies)).await {
            ready.expect("ready");
        }
        let alive = snapshot();
        assert!(alive.children >= 300, "{alive:?}");
        assert_eq!(alive.notify_dirs, 100, "one notify directory per notified run");
        let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
        assert_eq!(report.units.len(), 300);
        drop(handle);
        assert_eq!(wait_for_none("47111011").await, Vec::<u32>::new());
        assert_no_growth("after 300 daemons at once", &before, 2).await;
    });
}
