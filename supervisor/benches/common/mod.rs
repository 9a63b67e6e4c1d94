//! What the benchmarks share: the runtime, the arrival counter that tells
//! when every task has been polled, idle units (supervised and raw), medians,
//! the run mode, child-process probes and the summary table.
//!
//! Each bench file takes what it needs; the rest is unused there.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use stats_alloc::INSTRUMENTED_SYSTEM;
use supervisor::{Context, ShutdownOrder, Supervisor, TaskSpec};
use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The name of the runtime's worker threads (the idle figure finds them by it).
pub(crate) const WORKER_NAME: &str = "bench-worker";
/// Set in a child process to run one probe and print its figures.
pub(crate) const PROBE_VAR: &str = "SUPERVISOR_BENCH_PROBE";

/// A multi-thread runtime with two workers, as on the CI machine.
pub(crate) fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(WORKER_NAME)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs `work` as a task on a worker thread (where spawns go to the local
/// queue, as they do in an application), not on the `block_on` thread.
pub(crate) fn on_worker<T: Send + 'static>(rt: &Runtime, work: impl Future<Output = T> + Send + 'static) -> T {
    rt.block_on(async move { tokio::spawn(work).await.expect("the benchmark task panicked") })
}

/// How the bench binary was asked to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `cargo test --benches`, `-- --test` or `-- --list`: each criterion
    /// benchmark once, or the list; nothing else.
    Test,
    /// `cargo bench ... -- --quick`: no criterion, few paired rounds.
    Quick,
    /// `cargo bench`: criterion, then the paired rounds.
    Full,
}

impl Mode {
    pub(crate) fn from_args() -> Mode {
        let args: Vec<String> = std::env::args().collect();
        let has = |flag: &str| args.iter().any(|arg| arg == flag);
        if !has("--bench") || has("--test") || has("--list") {
            Mode::Test
        } else if has("--quick") {
            Mode::Quick
        } else {
            Mode::Full
        }
    }

    /// Alternating raw/supervised rounds behind each timing in the summary.
    /// `BENCH_ROUNDS` overrides it, for an A/B on a noisy machine.
    pub(crate) fn rounds(self) -> usize {
        if let Some(rounds) = std::env::var("BENCH_ROUNDS").ok().and_then(|rounds| rounds.parse().ok()) {
            return rounds;
        }
        match self {
            Mode::Full => 15,
            Mode::Quick | Mode::Test => 5,
        }
    }
}

/// Counts task runs until an expected number of them has been polled.
/// Reusable: [`expect`](Self::expect) arms it for the next batch.
pub(crate) struct Ready {
    arrived: AtomicUsize,
    target: AtomicUsize,
    done: Notify,
}

impl Ready {
    /// Armed for `count` arrivals.
    pub(crate) fn new(count: usize) -> Arc<Self> {
        Arc::new(Ready { arrived: AtomicUsize::new(0), target: AtomicUsize::new(count), done: Notify::new() })
    }

    /// Arms it for `count` more arrivals than so far. Call it before any of
    /// them can happen.
    pub(crate) fn expect(&self, count: usize) {
        let arrived = self.arrived.load(Ordering::Acquire);
        self.target.store(arrived + count, Ordering::Release);
    }

    pub(crate) fn arrive(&self) {
        let arrived = self.arrived.fetch_add(1, Ordering::AcqRel) + 1;
        if arrived == self.target.load(Ordering::Acquire) {
            self.done.notify_one();
        }
    }

    /// Until the expected arrivals have happened.
    pub(crate) async fn wait(&self) {
        self.done.notified().await;
    }
}

/// Runs one figure over and over for 3 s, to profile it, as a probe:
/// `SUPERVISOR_BENCH_PROBE=repeat-... perf record -g target/release/deps/<bench>-...`.
pub(crate) fn repeat<F: Future<Output = Duration> + Send + 'static>(rt: &Runtime, figure: impl Fn() -> F) -> String {
    let began = std::time::Instant::now();
    let mut times = Vec::new();
    while began.elapsed() < Duration::from_secs(3) {
        times.push(on_worker(rt, figure()));
    }
    format!("rounds={} median_us={:.1}", times.len(), median(times).as_secs_f64() * 1e6)
}

pub(crate) fn median(mut values: Vec<Duration>) -> Duration {
    assert!(!values.is_empty(), "a median of nothing");
    values.sort();
    values[values.len() / 2]
}

// ---------------------------------------------------------------------------
// Idle units

pub(crate) fn task_name(index: usize) -> String {
    format!("task-{index}")
}

/// A task that counts each run's arrival, then waits for its stop.
pub(crate) fn idle_spec(name: String, ready: &Arc<Ready>) -> TaskSpec {
    let ready = ready.clone();
    TaskSpec::new(name, move |ctx: Context| {
        let ready = ready.clone();
        async move {
            ready.arrive();
            ctx.cancelled().await;
        }
    })
}

/// `count` idle tasks registered with the builder, stopped in `order`.
pub(crate) fn build_idle(count: usize, ready: &Arc<Ready>, order: ShutdownOrder) -> Supervisor {
    let mut builder = Supervisor::builder().shutdown_order(order);
    for index in 0..count {
        builder = builder.task(idle_spec(task_name(index), ready));
    }
    builder.build().expect("valid units")
}

/// A raw task that counts its arrival and waits for `token`.
pub(crate) fn spawn_idle(token: CancellationToken, ready: &Arc<Ready>) -> JoinHandle<()> {
    let ready = ready.clone();
    tokio::spawn(async move {
        ready.arrive();
        token.cancelled().await;
    })
}

/// `count` raw idle tasks, each holding a child token of the returned root.
pub(crate) fn spawn_raw(count: usize, ready: &Arc<Ready>) -> (CancellationToken, Vec<JoinHandle<()>>) {
    let root = CancellationToken::new();
    let tasks = (0..count).map(|_| spawn_idle(root.child_token(), ready)).collect();
    (root, tasks)
}

// ---------------------------------------------------------------------------
// Probes in a fresh child process

/// Runs this binary again with `PROBE_VAR=name` and parses its `key=value`
/// output.
pub(crate) fn probe(name: &str) -> Vec<(String, f64)> {
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let output = Command::new(exe).env(PROBE_VAR, name).output().expect("the probe runs");
    assert!(output.status.success(), "probe {name} failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).expect("UTF-8 output");
    println!("probe {name}: {}", text.trim());
    text.split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.parse().expect("a number")))
        .collect()
}

pub(crate) fn get(figures: &[(String, f64)], key: &str) -> f64 {
    figures.iter().find(|(k, _)| k == key).map(|(_, v)| *v).unwrap_or_else(|| panic!("no {key} in probe output"))
}

/// Live heap bytes and blocks (from the counting allocator) and resident
/// memory, each as of now.
///
/// The heap figures mean something only in a binary that installs
/// `INSTRUMENTED_SYSTEM` as its global allocator (the `memory` bench);
/// elsewhere nothing counts and they stay zero.
pub(crate) fn memory_now() -> [f64; 3] {
    let stats = INSTRUMENTED_SYSTEM.stats();
    let bytes = stats.bytes_allocated as f64 - stats.bytes_deallocated as f64;
    let blocks = stats.allocations as f64 - stats.deallocations as f64;
    [bytes, blocks, proc_status_kib("/proc/self/status", "VmRSS:") * 1024.0]
}

/// A number from a `/proc/.../status` line, such as `VmRSS:  1234 kB`.
pub(crate) fn proc_status_kib(path: &str, key: &str) -> f64 {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------
// The summary table

/// What a row is held to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    text: &'static str,
    max_ratio: Option<f64>,
}

impl Target {
    /// No target: the row is for information.
    pub(crate) const NONE: Target = Target { text: "", max_ratio: None };

    /// At most `max_ratio` times raw, described as `text`.
    pub(crate) const fn ratio(max_ratio: f64, text: &'static str) -> Target {
        Target { text, max_ratio: Some(max_ratio) }
    }

    /// A target that the caller judges (`met` in [`Summary::ratio`] or
    /// [`Summary::absolute`]).
    pub(crate) const fn text(text: &'static str) -> Target {
        Target { text, max_ratio: None }
    }
}

pub(crate) struct Summary {
    title: &'static str,
    rows: Vec<[String; 5]>,
}

impl Summary {
    pub(crate) fn new(title: &'static str) -> Self {
        Summary { title, rows: Vec::new() }
    }

    /// A timing beside its raw baseline; a target with a ratio is judged.
    pub(crate) fn time(&mut self, figure: &str, supervised: Duration, raw: Duration, target: Target) {
        let ratio = if raw.is_zero() { f64::NAN } else { supervised.as_secs_f64() / raw.as_secs_f64() };
        let raw = if raw.is_zero() { "-".to_owned() } else { fmt_duration(raw) };
        let verdict = target.max_ratio.map(|max| verdict(ratio <= max));
        self.push(figure, fmt_duration(supervised), raw, fmt_ratio(ratio), target.text, verdict);
    }

    /// Figures already formatted, their ratio, and whether the target is met.
    pub(crate) fn ratio(
        &mut self,
        figure: &str,
        supervised: String,
        raw: String,
        ratio: f64,
        target: Target,
        met: bool,
    ) {
        let verdict = (!target.text.is_empty()).then(|| verdict(met));
        self.push(figure, supervised, raw, fmt_ratio(ratio), target.text, verdict);
    }

    /// A figure without a raw baseline.
    pub(crate) fn absolute(&mut self, figure: &str, supervised: String, target: Target, met: bool) {
        let verdict = (!target.text.is_empty()).then(|| verdict(met));
        self.push(figure, supervised, "-".to_owned(), "-".to_owned(), target.text, verdict);
    }

    fn push(
        &mut self,
        figure: &str,
        supervised: String,
        raw: String,
        ratio: String,
        target: &str,
        verdict: Option<String>,
    ) {
        let target = verdict.map_or_else(|| target.to_owned(), |verdict| format!("{target} ({verdict})"));
        self.rows.push([figure.to_owned(), supervised, raw, ratio, target]);
    }

    pub(crate) fn print(&self) {
        let mut out = format!("\n{}\n\n", self.title);
        out.push_str("| figure | supervisor | raw tokio | ratio | target |\n|---|---:|---:|---:|---|\n");
        for [figure, supervised, raw, ratio, target] in &self.rows {
            let _ = writeln!(out, "| {figure} | {supervised} | {raw} | {ratio} | {target} |");
        }
        println!("{out}");
    }
}

pub(crate) fn verdict(met: bool) -> String {
    if met { "met".to_owned() } else { "MISSED".to_owned() }
}

pub(crate) fn fmt_ratio(ratio: f64) -> String {
    if ratio.is_finite() { format!("{ratio:.2}x") } else { "-".to_owned() }
}

pub(crate) fn fmt_duration(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.2} s")
    } else if secs >= 1e-3 {
        format!("{:.2} ms", secs * 1e3)
    } else if secs >= 1e-6 {
        format!("{:.2} µs", secs * 1e6)
    } else {
        format!("{:.0} ns", secs * 1e9)
    }
}
