//! Supervised processes beside raw `tokio::process`, in the same run.
//!
//! - `spawn_wait/raw`: spawn `/bin/true` and wait for it.
//! - `spawn_wait/supervised`: one run of a daemon `/bin/true` restarted with
//!   zero delay, measured over `MaxRestarts::AtMost(n)` restarts until the
//!   unit is at rest (spawn, pipes, output readers, wait, reap, status,
//!   policy), per run.
//! - `stop/raw`: `SIGTERM` to a `sleep` until its exit is seen.
//! - `stop/supervised`: `stop_unit` of a daemon `sleep` (signal to the
//!   group, wait, reap, drain, state updated), from the call to its return.
//!
//! Run with `cargo bench -p tokio-supervisor --bench processes` (about a
//! minute), or `-- --quick` for the ratios alone from fewer rounds. The
//! ratios are printed at the end, measured in rounds that alternate raw and
//! supervised.

use std::time::{Duration, Instant};

use criterion::Criterion;
use supervisor::{DaemonSpec, Event, MaxRestarts, Output, RestartPolicy, Supervisor, SupervisorHandle, UnitState};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn current_thread_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Runs `work` in a task on a worker thread, as an application's code runs,
/// rather than on the thread that blocks on the runtime.
fn on_worker<F>(rt: &Runtime, work: F) -> Duration
where
    F: Future<Output = Duration> + Send + 'static,
{
    rt.block_on(async { tokio::spawn(work).await.unwrap() })
}

async fn raw_spawn_wait(iters: u64) -> Duration {
    let began = Instant::now();
    for _ in 0..iters {
        let status = tokio::process::Command::new("/bin/true").spawn().unwrap().wait().await.unwrap();
        assert!(status.success());
    }
    began.elapsed()
}

/// `iters` runs of a daemon that exits at once: `iters - 1` restarts.
async fn supervised_restarts(iters: u64, output: Output) -> Duration {
    let restarts = u32::try_from(iters.saturating_sub(1)).unwrap();
    let spec = DaemonSpec::new("true", "/bin/true")
        .output(output)
        .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(restarts)));
    let began = Instant::now();
    let handle = Supervisor::builder().daemon(spec).build().unwrap().start();
    let mut events = handle.subscribe();
    // The status is checked after subscribing, so the end is never missed.
    // The last run succeeds, so the unit ends `Exited` rather than `Failed`.
    while handle.status("true").unwrap().state.is_active() {
        events.recv().await.unwrap();
    }
    let took = began.elapsed();
    assert_eq!(handle.status("true").unwrap().restart_count, restarts);
    handle.shutdown().await;
    took
}

async fn raw_stop(iters: u64) -> Duration {
    let mut took = Duration::ZERO;
    for _ in 0..iters {
        let mut child = tokio::process::Command::new("sleep").arg("1000").spawn().unwrap();
        let pid = rustix::process::Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap()).unwrap();
        settle().await;
        let began = Instant::now();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let status = child.wait().await.unwrap();
        took += began.elapsed();
        assert!(!status.success());
    }
    took
}

/// Lets a just-started process, and the unit's task that has just reported
/// it, settle before a stop is timed: both sides then stop a process that
/// runs, as in real use, rather than one still starting.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

async fn running(handle: &SupervisorHandle, events: &mut tokio::sync::broadcast::Receiver<Event>) {
    loop {
        let status = handle.status("sleep").unwrap();
        if status.state == UnitState::Running && status.pid.is_some() {
            break;
        }
        events.recv().await.unwrap();
    }
}

async fn supervised_stop(iters: u64, output: Output) -> Duration {
    let spec = DaemonSpec::new("sleep", "sleep").arg("1000").output(output);
    let handle = Supervisor::builder().daemon(spec).build().unwrap().start();
    let mut events = handle.subscribe();
    running(&handle, &mut events).await;
    let mut took = Duration::ZERO;
    for i in 0..iters {
        if i > 0 {
            handle.start_unit("sleep").await.unwrap();
            running(&handle, &mut events).await;
        }
        settle().await;
        let began = Instant::now();
        handle.stop_unit("sleep").await.unwrap();
        took += began.elapsed();
        assert_eq!(handle.status("sleep").unwrap().state, UnitState::Stopped);
    }
    handle.shutdown().await;
    took
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("spawn_wait");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
    group.bench_function("raw", |b| {
        b.iter_custom(|iters| on_worker(&rt, raw_spawn_wait(iters)));
    });
    group.bench_function("supervised", |b| {
        b.iter_custom(|iters| on_worker(&rt, supervised_restarts(iters, Output::Capture)));
    });
    group.bench_function("supervised_discard", |b| {
        b.iter_custom(|iters| on_worker(&rt, supervised_restarts(iters, Output::Discard)));
    });
    group.finish();

    let mut group = c.benchmark_group("stop");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
    group.bench_function("raw", |b| {
        b.iter_custom(|iters| on_worker(&rt, raw_stop(iters)));
    });
    group.bench_function("supervised", |b| {
        b.iter_custom(|iters| on_worker(&rt, supervised_stop(iters, Output::Capture)));
    });
    group.bench_function("supervised_discard", |b| {
        b.iter_custom(|iters| on_worker(&rt, supervised_stop(iters, Output::Discard)));
    });
    group.finish();
}

/// The ratios, measured in rounds that alternate raw and supervised, so that
/// a change in the machine's load hits both sides alike: the median of the
/// per-round ratios.
fn print_ratios(flavor: &str, rt: &Runtime, rounds: usize) {
    println!("\nratios on a {flavor} runtime (median of {rounds} alternating rounds):");
    let compare =
        |name: &str, iters: u64, target: f64, raw: &dyn Fn(u64) -> Duration, supervised: &dyn Fn(u64) -> Duration| {
            let mut samples: Vec<(f64, f64)> = (0..rounds)
                .map(|_| {
                    let raw = raw(iters).as_secs_f64() / iters as f64;
                    let supervised = supervised(iters).as_secs_f64() / iters as f64;
                    (raw, supervised)
                })
                .collect();
            let median = |values: &mut Vec<f64>| {
                values.sort_by(f64::total_cmp);
                values[values.len() / 2]
            };
            let raw = median(&mut samples.iter().map(|round| round.0).collect());
            let supervised = median(&mut samples.iter().map(|round| round.1).collect());
            let ratio = median(&mut samples.iter_mut().map(|round| round.1 / round.0).collect());
            let verdict = if ratio <= target { "meets" } else { "misses" };
            println!(
                "  {name:28} raw {:>8.1} µs  supervised {:>8.1} µs  ratio {ratio:.2}x ({verdict} the {target}x target)",
                raw * 1e6,
                supervised * 1e6
            );
        };
    compare("restart cycle (capture)", 300, 1.15, &|n| on_worker(rt, raw_spawn_wait(n)), &|n| {
        on_worker(rt, supervised_restarts(n, Output::Capture))
    });
    compare("restart cycle (discard)", 300, 1.15, &|n| on_worker(rt, raw_spawn_wait(n)), &|n| {
        on_worker(rt, supervised_restarts(n, Output::Discard))
    });
    compare("stop (capture)", 300, 1.5, &|n| on_worker(rt, raw_stop(n)), &|n| {
        on_worker(rt, supervised_stop(n, Output::Capture))
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|arg| arg == flag);
    // `-- --quick`: the ratios alone, from fewer rounds.
    let quick = has("--bench") && has("--quick");
    if !quick {
        let mut criterion = Criterion::default().configure_from_args();
        benches(&mut criterion);
        criterion.final_summary();
    }
    // Under `cargo test --benches` or `--list`, criterion's part only.
    if has("--bench") && !has("--list") {
        let rounds = if quick { 5 } else { 15 };
        print_ratios("multi-thread (2 workers)", &runtime(), rounds);
        print_ratios("current-thread", &current_thread_runtime(), rounds);
    }
}
