//! Stage 1's engine and the current one, in one process, on one runtime,
//! beside one raw baseline, run alternately: a bench of each engine in its
//! own process measured the same raw tokio code 5.7–6.2 ms in one and
//! 3.1 ms in the other, so ratios from two processes do not compare.
//!
//! `tasks`: the start and the graceful stop of 10k idle tasks.
//! `statuses`: `statuses()` over 100k units.
//! `daemon`: `stop_unit` of a daemon `sleep`, beside `SIGTERM` and a wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const UNITS: usize = 10_000;
const STATUS_UNITS: usize = 100_000;
const DAEMON_STOPS: u64 = 300;

/// Counts tasks down to "all of them have been polled once".
struct Ready {
    left: AtomicUsize,
    done: Notify,
}

impl Ready {
    fn new(count: usize) -> Arc<Self> {
        Arc::new(Ready { left: AtomicUsize::new(count), done: Notify::new() })
    }

    fn arrive(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
    }

    async fn wait(&self) {
        loop {
            let notified = self.done.notified();
            if self.left.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Runs `work` as a task on a worker thread, as the benches do.
fn on_worker<T: Send + 'static>(rt: &Runtime, work: impl Future<Output = T> + Send + 'static) -> T {
    rt.block_on(async move { tokio::spawn(work).await.expect("the benchmark task panicked") })
}

/// `[start until all polled, cancel + join all]` of raw tokio.
async fn raw_start_stop() -> [Duration; 2] {
    let ready = Ready::new(UNITS);
    let began = Instant::now();
    let root = CancellationToken::new();
    let mut tasks = Vec::with_capacity(UNITS);
    for _ in 0..UNITS {
        let (token, ready) = (root.child_token(), ready.clone());
        tasks.push(tokio::spawn(async move {
            ready.arrive();
            token.cancelled().await;
        }));
    }
    ready.wait().await;
    let started = began.elapsed();
    let began = Instant::now();
    root.cancel();
    for task in tasks {
        task.await.expect("no panic");
    }
    [started, began.elapsed()]
}

/// `SIGTERM` to a `sleep` until its exit is seen, `iters` times.
async fn raw_daemon_stop(iters: u64) -> Duration {
    let mut took = Duration::ZERO;
    for _ in 0..iters {
        let mut child = tokio::process::Command::new("sleep").arg("1000").spawn().expect("sleep spawns");
        let pid = rustix::process::Pid::from_raw(i32::try_from(child.id().expect("a pid")).expect("a pid"));
        tokio::time::sleep(Duration::from_millis(1)).await;
        let began = Instant::now();
        rustix::process::kill_process(pid.expect("a pid"), rustix::process::Signal::TERM).expect("kill");
        child.wait().await.expect("waited");
        took += began.elapsed();
    }
    took
}

/// The same figures for either engine: their APIs agree on these calls.
macro_rules! engine {
    ($module:ident, $krate:ident) => {
        mod $module {
            use super::*;
            use ::$krate::{Context, DaemonSpec, Event, Output, ShutdownOrder, Supervisor, SupervisorHandle, TaskSpec};

            fn idle_tasks(count: usize, ready: &Arc<Ready>, order: ShutdownOrder) -> Supervisor {
                let mut builder = Supervisor::builder().shutdown_order(order);
                for index in 0..count {
                    let ready = ready.clone();
                    builder = builder.task(TaskSpec::new(format!("task-{index}"), move |ctx: Context| {
                        let ready = ready.clone();
                        async move {
                            ready.arrive();
                            ctx.cancelled().await;
                        }
                    }));
                }
                builder.build().expect("valid units")
            }

            /// `[builder + build() + start() until all polled, shutdown(),
            /// builder + build()]`.
            pub async fn start_stop(concurrent: bool) -> [Duration; 3] {
                let order = if concurrent { ShutdownOrder::Concurrent } else { ShutdownOrder::Sequential };
                let ready = Ready::new(UNITS);
                let began = Instant::now();
                let sup = idle_tasks(UNITS, &ready, order);
                let built = began.elapsed();
                let handle = sup.start();
                ready.wait().await;
                let started = began.elapsed();
                let began = Instant::now();
                assert!(handle.shutdown().await.is_clean(), "every unit stops gracefully");
                [started, began.elapsed(), built]
            }

            /// The median of 15 `statuses()` over 100k units, in ms.
            pub async fn statuses() -> f64 {
                let ready = Ready::new(STATUS_UNITS);
                let handle = idle_tasks(STATUS_UNITS, &ready, ShutdownOrder::Sequential).start();
                ready.wait().await;
                let mut times = Vec::new();
                for _ in 0..15 {
                    let began = Instant::now();
                    let statuses = handle.statuses();
                    times.push(began.elapsed().as_secs_f64() * 1e3);
                    assert_eq!(statuses.len(), STATUS_UNITS);
                }
                handle.shutdown().await;
                median(times)
            }

            async fn running(handle: &SupervisorHandle, events: &mut tokio::sync::broadcast::Receiver<Event>) {
                loop {
                    let status = handle.status("sleep").expect("the unit");
                    if status.running && status.pid.is_some() {
                        return;
                    }
                    events.recv().await.expect("an event");
                }
            }

            /// `stop_unit` of a daemon `sleep`, `iters` times, its output
            /// captured or discarded.
            pub async fn daemon_stop(iters: u64, captured: bool) -> Duration {
                let output = if captured { Output::Capture } else { Output::Discard };
                let spec = DaemonSpec::new("sleep", "sleep").arg("1000").output(output);
                let handle = Supervisor::builder().daemon(spec).build().expect("valid").start();
                let mut events = handle.subscribe();
                running(&handle, &mut events).await;
                let mut took = Duration::ZERO;
                for i in 0..iters {
                    if i > 0 {
                        handle.start_unit("sleep").await.expect("started");
                        running(&handle, &mut events).await;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    let began = Instant::now();
                    handle.stop_unit("sleep").await.expect("stopped");
                    took += began.elapsed();
                }
                handle.shutdown().await;
                took
            }
        }
    };
}

engine!(old, stage1);
engine!(new, current);

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn ms<const N: usize>(parts: &[[Duration; N]], part: usize) -> f64 {
    median(parts.iter().map(|run| run[part].as_secs_f64() * 1e3).collect())
}

/// Runs `a` and `b` in turn, each first every other round.
fn alternately<T>(rounds: usize, mut a: impl FnMut() -> T, mut b: impl FnMut() -> T) -> (Vec<T>, Vec<T>) {
    let (mut from_a, mut from_b) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            from_a.push(a());
            from_b.push(b());
        } else {
            from_b.push(b());
            from_a.push(a());
        }
    }
    (from_a, from_b)
}

fn tasks(rt: &Runtime, rounds: usize) {
    let mut raw = Vec::new();
    for concurrent in [false, true] {
        let (old, new) = alternately(
            rounds,
            || {
                raw.push(on_worker(rt, raw_start_stop()));
                on_worker(rt, old::start_stop(concurrent))
            },
            || on_worker(rt, new::start_stop(concurrent)),
        );
        let order = if concurrent { "concurrent" } else { "sequential" };
        let (raw_start, raw_stop) = (ms(&raw, 0), ms(&raw, 1));
        println!("10k idle tasks, {order} stop (raw: start {raw_start:.2} ms, stop {raw_stop:.2} ms)");
        for (engine, runs) in [("stage 1", &old), ("current", &new)] {
            let (start, stop, built) = (ms(runs, 0), ms(runs, 1), ms(runs, 2));
            println!(
                "  {engine}: start {start:.2} ms ({:.2}x; builder + build() {built:.2} ms), stop {stop:.2} ms ({:.2}x)",
                start / raw_start,
                stop / raw_stop
            );
        }
    }
}

fn statuses(rt: &Runtime, rounds: usize) {
    let (old, new) = alternately(rounds.min(5), || on_worker(rt, old::statuses()), || on_worker(rt, new::statuses()));
    println!("statuses() over 100k units: stage 1 {:.2} ms, current {:.2} ms", median(old), median(new));
}

fn daemon(rt: &Runtime, rounds: usize) {
    for captured in [true, false] {
        let per_stop = |took: Duration| took.as_secs_f64() / DAEMON_STOPS as f64;
        let mut raw = Vec::new();
        let (old, new) = alternately(
            rounds.min(15),
            || {
                raw.push(per_stop(on_worker(rt, raw_daemon_stop(DAEMON_STOPS))));
                per_stop(on_worker(rt, old::daemon_stop(DAEMON_STOPS, captured)))
            },
            || per_stop(on_worker(rt, new::daemon_stop(DAEMON_STOPS, captured))),
        );
        let ratio = |side: &[f64]| median(side.iter().zip(&raw).map(|(side, raw)| side / raw).collect());
        println!(
            "daemon stop, output {}: raw {:.1} µs, stage 1 {:.1} µs ({:.2}x), current {:.1} µs ({:.2}x)",
            if captured { "captured" } else { "discarded" },
            median(raw.clone()) * 1e6,
            median(old.clone()) * 1e6,
            ratio(&old),
            median(new.clone()) * 1e6,
            ratio(&new)
        );
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "all".to_owned());
    let rounds: usize = args.next().map_or(101, |rounds| rounds.parse().expect("a number of rounds"));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    match what.as_str() {
        "tasks" => tasks(&rt, rounds),
        "statuses" => statuses(&rt, rounds),
        "daemon" => daemon(&rt, rounds),
        "all" => {
            tasks(&rt, rounds);
            statuses(&rt, rounds);
            daemon(&rt, rounds);
        }
        other => panic!("unknown figure `{other}`: tasks, statuses, daemon or all"),
    }
}
