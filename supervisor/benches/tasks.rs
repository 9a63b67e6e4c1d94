//! Supervised tasks beside raw tokio, measured in the same run:
//!
//! 1. start and graceful stop of 10k idle tasks;
//! 2. one restart of a task that fails at once, zero delay;
//! 3. `statuses()` over 100k units;
//! 4. CPU time and context switches of an idle supervisor with 10k units,
//!    each side in a fresh child process.
//!
//! 1 and 2 run under criterion, then again as alternating raw/supervised
//! pairs whose medians make the summary's ratios (so that a change in the
//! machine's load weighs on both sides alike).
//!
//! The memory per idle task is measured in `benches/memory.rs`: the counting
//! allocator it needs does atomic adds on one shared cache line at every
//! allocation and free, which would tax these timings (the supervisor's,
//! which allocates more, more than raw tokio's).
//!
//! Run with `cargo bench -p tokio-supervisor --bench tasks`; a summary table of
//! figures and ratios is printed last.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{
    Mode, PROBE_VAR, Ready, Summary, Target, WORKER_NAME, build_idle, fmt_duration, get, median, on_worker, probe,
    proc_status_kib, repeat, runtime, spawn_raw,
};
use criterion::{Criterion, SamplingMode};
use supervisor::{Context, MaxRestarts, RestartPolicy, ShutdownOrder, Supervisor, TaskSpec, UnitState};
use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Units in the start/stop and idle figures.
const UNITS: usize = 10_000;
/// Units in the `statuses()` figure.
const STATUS_UNITS: usize = 100_000;
/// How long the idle figure watches.
const IDLE_WINDOW: Duration = Duration::from_millis(1500);

fn main() {
    if let Ok(probe) = std::env::var(PROBE_VAR) {
        println!("{}", run_probe(&probe));
        return;
    }
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let rt = runtime();
    let mode = Mode::from_args();
    if mode == Mode::Test {
        // `cargo test --benches`, `-- --test` or `-- --list`: criterion
        // runs each benchmark once, or lists them; nothing else runs.
        start_stop(&mut criterion, &rt);
        restart(&mut criterion, &rt);
        return;
    }
    let mut summary = Summary::new("Summary (supervisor vs raw tokio, same run)");

    let raw_idle = probe("idle-raw");
    let sup_idle = probe("idle-supervised");
    idle_rows(&mut summary, &raw_idle, &sup_idle);

    statuses_rows(&mut summary, &rt);

    if mode == Mode::Full {
        start_stop(&mut criterion, &rt);
        restart(&mut criterion, &rt);
        criterion.final_summary();
    }
    paired_start_stop(&rt, &mut summary, mode.rounds());
    paired_restart(&rt, &mut summary, mode.rounds());

    summary.print();
}

// ---------------------------------------------------------------------------
// 1. Start and graceful stop of 10k idle tasks

/// Runs, each timed in parts.
#[derive(Default)]
struct Samples {
    runs: Vec<[Duration; 4]>,
}

impl Samples {
    fn add(&mut self, parts: [Duration; 4]) {
        self.runs.push(parts);
    }

    /// The median over iterations of one part, or of the total.
    fn median(&self, part: Option<usize>) -> Duration {
        median(self.runs.iter().map(|parts| part.map_or_else(|| total(parts), |part| parts[part])).collect())
    }
}

/// Build, start and stop: the last part is not a step of its own.
fn total(parts: &[Duration; 4]) -> Duration {
    parts[..3].iter().sum()
}

/// `[build, start until all polled, stop]` for raw tokio.
async fn raw_start_stop() -> [Duration; 4] {
    let ready = Ready::new(UNITS);
    let began = Instant::now();
    let (root, tasks) = spawn_raw(UNITS, &ready);
    ready.wait().await;
    let started = began.elapsed();
    let began = Instant::now();
    root.cancel();
    for task in tasks {
        task.await.expect("no panic");
    }
    [Duration::ZERO, started, began.elapsed(), Duration::ZERO]
}

/// Raw tokio stopped the way `shutdown()` stops units: one at a time, the
/// most recently started first, each cancelled and joined before the next.
async fn raw_serial_stop() -> Duration {
    let ready = Ready::new(UNITS);
    let root = CancellationToken::new();
    let mut tasks = Vec::with_capacity(UNITS);
    for _ in 0..UNITS {
        let token = root.child_token();
        let (ready, waited) = (ready.clone(), token.clone());
        tasks.push((
            token,
            tokio::spawn(async move {
                ready.arrive();
                waited.cancelled().await;
            }),
        ));
    }
    ready.wait().await;
    let began = Instant::now();
    while let Some((token, task)) = tasks.pop() {
        token.cancel();
        task.await.expect("no panic");
    }
    began.elapsed()
}

/// `[builder + build(), start() until all polled, shutdown(), a second
/// shutdown()]`.
async fn supervised_start_stop(order: ShutdownOrder) -> [Duration; 4] {
    let ready = Ready::new(UNITS);
    let began = Instant::now();
    let sup = build_idle(UNITS, &ready, order);
    let built = began.elapsed();
    let began = Instant::now();
    let handle = sup.start();
    ready.wait().await;
    let started = began.elapsed();
    let began = Instant::now();
    let report = handle.shutdown().await;
    let stopped = began.elapsed();
    assert!(report.is_clean(), "every unit stops gracefully");
    // A second call only copies the kept report out.
    let began = Instant::now();
    let again = handle.shutdown().await;
    let copied = began.elapsed();
    assert_eq!(again.units.len(), UNITS);
    [built, started, stopped, copied]
}

fn start_stop(criterion: &mut Criterion, rt: &Runtime) {
    let mut group = criterion.benchmark_group("start_stop_10k_idle");
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("raw_tokio", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| total(&on_worker(rt, raw_start_stop()))).sum());
    });
    group.bench_function("supervised", |b| {
        b.iter_custom(|iters| {
            (0..iters).map(|_| total(&on_worker(rt, supervised_start_stop(ShutdownOrder::Sequential)))).sum()
        });
    });
    group.finish();
}

/// Raw and supervised runs alternate, so that a change in the machine's load
/// weighs on both sides of a ratio alike; the summary takes medians. The
/// stop figures, with their targets, are the `tree` bench's; here they are
/// the rest of each round.
fn paired_start_stop(rt: &Runtime, summary: &mut Summary, rounds: usize) {
    let (mut raw, mut sup, mut raw_serial) = (Samples::default(), Samples::default(), Vec::new());
    let mut concurrent = Samples::default();
    for _ in 0..rounds {
        raw.add(on_worker(rt, raw_start_stop()));
        sup.add(on_worker(rt, supervised_start_stop(ShutdownOrder::Sequential)));
        raw_serial.push(on_worker(rt, raw_serial_stop()));
        concurrent.add(on_worker(rt, supervised_start_stop(ShutdownOrder::Concurrent)));
    }
    let raw_start = raw.median(Some(1));
    let sup_start = sup.median(Some(0)) + sup.median(Some(1));
    summary.time(
        "10k idle: start (builder + build() + start(), until all polled)",
        sup_start,
        raw_start,
        Target::ratio(2.0, "<= 2x raw"),
    );
    summary.time("  of which builder + build()", sup.median(Some(0)), Duration::ZERO, Target::NONE);
    summary.time("  of which start() until all polled", sup.median(Some(1)), raw_start, Target::NONE);
    summary.time("10k idle: start + graceful stop", sup.median(None), raw.median(None), Target::NONE);
    summary.time(
        "10k idle: graceful stop (shutdown() / cancel + join)",
        sup.median(Some(2)),
        raw.median(Some(2)),
        Target::NONE,
    );
    summary.time(
        "  of which copying the report out (a second shutdown())",
        sup.median(Some(3)),
        Duration::ZERO,
        Target::NONE,
    );
    summary.time(
        "  beside raw tokio stopped one at a time, most recent first (shutdown()'s order)",
        sup.median(Some(2)),
        median(raw_serial),
        Target::NONE,
    );
    summary.time(
        "10k idle: start + graceful stop, ShutdownOrder::Concurrent",
        concurrent.median(None),
        raw.median(None),
        Target::NONE,
    );
    summary.time(
        "  of which shutdown() / cancel + join",
        concurrent.median(Some(2)),
        raw.median(Some(2)),
        Target::NONE,
    );
}

// ---------------------------------------------------------------------------
// 2. One restart of a task that fails at once

async fn raw_restarts(iters: u64) -> Duration {
    let began = Instant::now();
    for _ in 0..iters {
        let result = tokio::spawn(async { Err::<(), _>("boom") }).await.expect("no panic");
        assert!(result.is_err());
    }
    began.elapsed()
}

/// `iters` restarts of a unit that fails at once: from `start()` until the
/// unit is `Failed`.
async fn supervised_restarts(iters: u64) -> Duration {
    let restarts = u32::try_from(iters).expect("fewer than 2^32 restarts");
    let runs = Arc::new(AtomicU32::new(0));
    let last_run = Arc::new(Notify::new());
    let (counter, notify) = (runs.clone(), last_run.clone());
    let spec = TaskSpec::new("crash", move |_ctx: Context| {
        if counter.fetch_add(1, Ordering::Relaxed) == restarts {
            notify.notify_one();
        }
        async { Err::<(), _>("boom") }
    })
    .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(restarts)));
    let sup = Supervisor::builder().task(spec).build().expect("a valid unit");
    let began = Instant::now();
    let handle = sup.start();
    last_run.notified().await;
    handle.wait_state("crash", UnitState::Failed).await.expect("the unit gives up");
    let took = began.elapsed();
    assert_eq!(runs.load(Ordering::Relaxed), restarts + 1);
    handle.shutdown().await;
    took
}

fn restart(criterion: &mut Criterion, rt: &Runtime) {
    let mut group = criterion.benchmark_group("restart_failing_task_zero_delay");
    group.measurement_time(Duration::from_secs(2));
    group.bench_function("raw_tokio_spawn_join", |b| b.iter_custom(|iters| on_worker(rt, raw_restarts(iters))));
    group.bench_function("supervised", |b| b.iter_custom(|iters| on_worker(rt, supervised_restarts(iters))));
    group.finish();
}

/// Like `paired_start_stop`: 20k restarts a side, alternating.
fn paired_restart(rt: &Runtime, summary: &mut Summary, rounds: usize) {
    const RESTARTS: u32 = 20_000;
    let (mut raw, mut sup) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        raw.push(on_worker(rt, raw_restarts(RESTARTS.into())) / RESTARTS);
        sup.push(on_worker(rt, supervised_restarts(RESTARTS.into())) / RESTARTS);
    }
    summary.time(
        "one restart, fails at once, zero delay",
        median(sup),
        median(raw),
        Target::ratio(2.0, "<= 2x raw spawn + join"),
    );
}

// ---------------------------------------------------------------------------
// 3. statuses() over 100k units

fn statuses_rows(summary: &mut Summary, rt: &Runtime) {
    let (times, start, stop) = on_worker(rt, async {
        let ready = Ready::new(STATUS_UNITS);
        let began = Instant::now();
        let handle = build_idle(STATUS_UNITS, &ready, ShutdownOrder::Sequential).start();
        ready.wait().await;
        let start = began.elapsed();
        let mut times = Vec::new();
        for _ in 0..15 {
            let began = Instant::now();
            let statuses = handle.statuses();
            times.push(began.elapsed());
            assert_eq!(statuses.len(), STATUS_UNITS);
            assert!(statuses.iter().all(|status| status.state == UnitState::Running));
        }
        let began = Instant::now();
        handle.shutdown().await;
        (times, start, began.elapsed())
    });
    let median = median(times);
    println!("statuses() over {STATUS_UNITS} units: median {median:?} of 15 (start {start:?}, shutdown {stop:?})");
    summary.absolute(
        "statuses() over 100k units (median of 15)",
        fmt_duration(median),
        Target::text("< 50 ms"),
        median.as_millis() < 50,
    );
}

// ---------------------------------------------------------------------------
// 4. An idle supervisor's CPU time; the probes, each in a fresh child process

fn run_probe(name: &str) -> String {
    let rt = runtime();
    match name {
        "idle-raw" => idle_probe(&rt, false),
        "idle-supervised" => idle_probe(&rt, true),
        // To profile: 10k restarts, over and over.
        "repeat-restart" => repeat(&rt, || supervised_restarts(10_000)),
        "repeat-raw-restart" => repeat(&rt, || raw_restarts(10_000)),
        // Start and stop of 10k; the median is of the start (build + start()).
        "repeat-start-stop" => repeat(&rt, || async {
            let [built, started, _, _] = supervised_start_stop(ShutdownOrder::Sequential).await;
            built + started
        }),
        _ => panic!("unknown probe {name}"),
    }
}

/// CPU time (ns, from `/proc/self/task/*/schedstat`) and context switches of
/// the runtime's worker threads, and CPU time of the whole process.
fn activity_now() -> [f64; 4] {
    let mut figures = [0.0; 4];
    for entry in std::fs::read_dir("/proc/self/task").expect("procfs").flatten() {
        let path = entry.path();
        let schedstat = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
        let cpu_ns = schedstat.split_whitespace().next().and_then(|ns| ns.parse::<f64>().ok()).unwrap_or(0.0);
        figures[3] += cpu_ns;
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() == WORKER_NAME {
            let status = path.join("status");
            let status = status.to_str().expect("a UTF-8 path");
            figures[0] += cpu_ns;
            figures[1] += proc_status_kib(status, "voluntary_ctxt_switches:");
            figures[2] += proc_status_kib(status, "nonvoluntary_ctxt_switches:");
        }
    }
    figures
}

fn idle_probe(rt: &Runtime, supervised: bool) -> String {
    let ready = Ready::new(UNITS);
    let keep: Box<dyn std::any::Any + Send> = on_worker(rt, {
        let ready = ready.clone();
        async move {
            let keep: Box<dyn std::any::Any + Send> = if supervised {
                Box::new(build_idle(UNITS, &ready, ShutdownOrder::Sequential).start())
            } else {
                Box::new(spawn_raw(UNITS, &ready))
            };
            ready.wait().await;
            keep
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    let before = activity_now();
    std::thread::sleep(IDLE_WINDOW);
    let after = activity_now();
    drop(keep);
    format!(
        "worker_cpu_us={:.1} worker_voluntary_switches={} worker_involuntary_switches={} process_cpu_us={:.1} window_ms={}",
        (after[0] - before[0]) / 1000.0,
        after[1] - before[1],
        after[2] - before[2],
        (after[3] - before[3]) / 1000.0,
        IDLE_WINDOW.as_millis()
    )
}

fn idle_rows(summary: &mut Summary, raw: &[(String, f64)], sup: &[(String, f64)]) {
    let window = fmt_duration(IDLE_WINDOW);
    let (raw_cpu, sup_cpu) = (get(raw, "worker_cpu_us"), get(sup, "worker_cpu_us"));
    summary.absolute(
        &format!("10k idle units, runtime workers' CPU time over {window} (raw: {raw_cpu:.0} µs)"),
        format!("{sup_cpu:.0} µs"),
        Target::text("~0, like raw"),
        sup_cpu <= raw_cpu + 100.0,
    );
    let (raw_cpu, sup_cpu) = (get(raw, "process_cpu_us"), get(sup, "process_cpu_us"));
    summary.absolute(
        &format!("  whole process, incl. the thread reading /proc (raw: {raw_cpu:.0} µs)"),
        format!("{sup_cpu:.0} µs"),
        Target::NONE,
        true,
    );
    let switches = |figures: &[(String, f64)]| {
        get(figures, "worker_voluntary_switches") + get(figures, "worker_involuntary_switches")
    };
    let (raw_switches, sup_switches) = (switches(raw), switches(sup));
    summary.absolute(
        &format!("10k idle units, worker context switches over {window} (raw: {raw_switches})"),
        format!("{sup_switches}"),
        Target::text("~0, like raw"),
        sup_switches <= raw_switches + 2.0,
    );
}
