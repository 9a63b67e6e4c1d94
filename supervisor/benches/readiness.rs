//! Readiness and dependencies beside raw tokio, measured in the same run:
//!
//! 1. a chain of 100 tasks, each depending on the previous and ready at once
//!    (`ctx.ready()`), from `start()` until the last is ready, beside 100 raw
//!    tasks handing a oneshot along the chain;
//! 2. a readiness-gated start of 10k independent units in a group (each
//!    calls `ctx.ready()` at once), from `start()` until the group is ready,
//!    beside 10k raw tasks each counting down once polled;
//! 3. the CPU cost of 1k units each with a 1 s TCP readiness probe against a
//!    local listener, over a few seconds once all are ready.
//!
//! 1 and 2 run under criterion, then again as alternating raw/supervised
//! rounds whose medians make the summary's ratios.
//!
//! Run with `cargo bench -p tokio-supervisor --bench readiness`. To profile
//! the first two, run the bench binary with `SUPERVISOR_BENCH_PROBE` set to
//! `repeat-chain` or `repeat-gated` under `perf record`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use supervisor::{Context, GroupSpec, Probe, Readiness, Supervisor, TaskSpec};
use tokio::runtime::Runtime;
use tokio::sync::{Notify, oneshot};

const CHAIN: usize = 100;
const GATED: usize = 10_000;
const PROBED: usize = 1_000;
/// Paired rounds for each figure: enough for a median that a pause of the
/// machine in a few rounds does not move (a median of 15 chains moved by a
/// third between runs). A chain takes a fraction of a millisecond.
const CHAIN_RUNS: usize = 201;
const GATED_RUNS: usize = 41;

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let rt = runtime();
    // To profile a figure: `perf record` this binary, then stop it.
    match std::env::var("SUPERVISOR_BENCH_PROBE").as_deref() {
        Ok("repeat-chain") => loop {
            rt.block_on(chain_supervised());
        },
        Ok("repeat-gated") => loop {
            rt.block_on(gated_supervised());
        },
        _ => {}
    }
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|arg| arg == flag);
    criterion.bench_function("chain of 100 (supervised)", |b| b.iter(|| rt.block_on(chain_supervised())));
    criterion.bench_function("chain of 100 (raw)", |b| b.iter(|| rt.block_on(chain_raw())));
    criterion.bench_function("10k gated start (supervised)", |b| b.iter(|| rt.block_on(gated_supervised())));
    criterion.bench_function("10k gated start (raw)", |b| b.iter(|| rt.block_on(gated_raw())));
    if !has("--bench") || has("--test") || has("--list") {
        return;
    }
    criterion.final_summary();
    println!("\n| figure | supervisor | raw tokio | ratio | target |\n|---|---:|---:|---:|---|");
    let (sup, raw) = paired(&rt, CHAIN_RUNS, chain_supervised, chain_raw);
    row("chain of 100 dependent tasks, each ready at once", sup, raw, "<= 2x");
    let (sup, raw) = paired(&rt, GATED_RUNS, gated_supervised, gated_raw);
    row("readiness-gated start of 10k independent units", sup, raw, "<= 2x");
    let (busy, span) = rt.block_on(probe_cost());
    println!(
        "| 1k units with a 1 s TCP probe: CPU time over {:.0} s | {:.1} ms/s ({:.2} % of one core) | | | report |",
        span.as_secs_f64(),
        busy.as_secs_f64() * 1000.0 / span.as_secs_f64(),
        busy.as_secs_f64() * 100.0 / span.as_secs_f64(),
    );
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime")
}

fn row(figure: &str, sup: Duration, raw: Duration, target: &str) {
    let ratio = sup.as_secs_f64() / raw.as_secs_f64();
    println!("| {figure} | {sup:.2?} | {raw:.2?} | {ratio:.2}x | {target} |");
}

/// Medians of alternating supervised and raw rounds.
fn paired<S, R, SF, RF>(rt: &Runtime, rounds: usize, supervised: S, raw: R) -> (Duration, Duration)
where
    S: Fn() -> SF,
    R: Fn() -> RF,
    SF: Future<Output = Duration>,
    RF: Future<Output = Duration>,
{
    let (mut sup, mut base) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        sup.push(rt.block_on(supervised()));
        base.push(rt.block_on(raw()));
    }
    sup.sort();
    base.sort();
    (sup[rounds / 2], base[rounds / 2])
}

/// A task that says it is ready at once, then idles.
fn ready_at_once(name: String) -> TaskSpec {
    TaskSpec::new(name, |ctx: Context| async move {
        ctx.ready();
        ctx.cancelled().await;
    })
    .readiness(Readiness::Notified)
}

async fn chain_supervised() -> Duration {
    let mut builder = Supervisor::builder();
    for i in 0..CHAIN {
        let spec = ready_at_once(format!("t{i}"));
        builder = builder.task(if i == 0 { spec } else { spec.depends_on([format!("t{}", i - 1)]) });
    }
    let sup = builder.build().expect("valid");
    let began = Instant::now();
    let handle = sup.start();
    handle.wait_ready(&format!("t{}", CHAIN - 1)).await.expect("the chain starts");
    let took = began.elapsed();
    handle.shutdown().await;
    took
}

async fn chain_raw() -> Duration {
    let began = Instant::now();
    let (first, mut previous) = oneshot::channel::<()>();
    let mut tasks = Vec::with_capacity(CHAIN);
    for _ in 1..CHAIN {
        let (next, receiver) = oneshot::channel::<()>();
        tasks.push(tokio::spawn(async move {
            let _ = previous.await;
            let _ = next.send(());
        }));
        previous = receiver;
    }
    let _ = first.send(());
    let _ = previous.await;
    let took = began.elapsed();
    for task in tasks {
        let _ = task.await;
    }
    took
}

async fn gated_supervised() -> Duration {
    // In a group: the group is ready once every unit of it is.
    let mut group = GroupSpec::new("gated");
    for i in 0..GATED {
        group = group.task(ready_at_once(format!("u{i}")));
    }
    let sup = Supervisor::builder().group(group).build().expect("valid");
    let began = Instant::now();
    let handle = sup.start();
    handle.wait_ready("gated").await.expect("every unit becomes ready");
    let took = began.elapsed();
    handle.shutdown().await;
    took
}

async fn gated_raw() -> Duration {
    let left = Arc::new(AtomicUsize::new(GATED));
    let done = Arc::new(Notify::new());
    let stop = tokio_util::sync::CancellationToken::new();
    let began = Instant::now();
    let mut tasks = Vec::with_capacity(GATED);
    for _ in 0..GATED {
        let (left, done, stop) = (left.clone(), done.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                done.notify_one();
            }
            stop.cancelled().await;
        }));
    }
    done.notified().await;
    let took = began.elapsed();
    stop.cancel();
    for task in tasks {
        let _ = task.await;
    }
    took
}

/// CPU time of this process (user + system), from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let after_name = &stat[stat.rfind(')').expect("a process name") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // The kernel's clock ticks are 100 per second on Linux.
    Duration::from_millis(ticks * 10)
}

/// Runs 1k units with a 1 s TCP probe on a local listener; returns the CPU
/// time spent over the measuring window, and the window.
async fn probe_cost() -> (Duration, Duration) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let accepting = tokio::spawn(async move {
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        }
    });
    let mut builder = Supervisor::builder();
    for i in 0..PROBED {
        let probe = Probe::tcp(addr.clone()).period(Duration::from_secs(1));
        builder = builder.task(
            TaskSpec::new(format!("p{i}"), |ctx: Context| async move { ctx.cancelled().await })
                .readiness(Readiness::Probe(probe)),
        );
    }
    let handle = builder.build().expect("valid").start();
    handle.wait_ready(&format!("p{}", PROBED - 1)).await.expect("ready");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let window = Duration::from_secs(5);
    let before = cpu_time();
    tokio::time::sleep(window).await;
    let busy = cpu_time().saturating_sub(before);
    handle.shutdown().await;
    accepting.abort();
    (busy, window)
}
