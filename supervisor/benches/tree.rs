//! Supervision trees beside raw tokio, measured in the same run:
//!
//! 1. graceful stop of 10k idle tasks, from `shutdown()` until it returns,
//!    beside raw tokio's cancel + join all: with `ShutdownOrder::Concurrent`;
//!    10k units added at run time with `handle.add` (default order: they stop
//!    concurrently among themselves); and the default sequential order;
//! 2. a one_for_all restart of a 1k-unit group: from the moment one unit
//!    fails until every unit's new run has been polled, beside raw tokio's
//!    join of the failed task, cancel + join of the 999 others, and spawn of
//!    1000 until all polled;
//! 3. adding then removing 10k units at run time (each call awaited in
//!    turn), beside raw spawn of 10k, then cancel + join of each in turn.
//!
//! All three run under criterion, then again as alternating raw/supervised
//! rounds whose medians make the summary's ratios (so that a change in the
//! machine's load weighs on both sides alike).
//!
//! The live heap left after add/remove cycles is measured in
//! `benches/memory.rs`: the counting allocator it needs does atomic adds on
//! one shared cache line at every allocation and free, which would tax these
//! timings (the supervisor's, which allocates more, more than raw tokio's).
//!
//! Run with `cargo bench -p tokio-supervisor --bench tree` (about 40 s), or
//! `-- --quick` for the summary alone from fewer rounds (a few seconds); the
//! summary table is printed last. To profile one figure, run the bench
//! binary with `SUPERVISOR_BENCH_PROBE=repeat-<figure>` (see `run_probe`)
//! under `perf record`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    Mode, PROBE_VAR, Ready, Summary, Target, build_idle, idle_spec, median, on_worker, repeat, runtime, spawn_idle,
    spawn_raw, task_name,
};
use criterion::{Criterion, SamplingMode};
use supervisor::{
    Context, GroupSpec, MaxRestarts, RestartPolicy, ShutdownOrder, Strategy, Supervisor, SupervisorHandle, TaskSpec,
    UnitState,
};
use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Units in the stop and add/remove figures.
const UNITS: usize = 10_000;
/// Units in the one_for_all group.
const GROUP_UNITS: usize = 1_000;

pub(crate) fn main() {
    run("Summary (supervision trees vs raw tokio, same run)", true);
}

/// The bench, its summary titled `title`; `with_criterion`: criterion's
/// runs too, in a full run (their names would mix with another
/// allocator's).
pub(crate) fn run(title: &'static str, with_criterion: bool) {
    if let Ok(probe) = std::env::var(PROBE_VAR) {
        println!("{}", run_probe(&probe));
        return;
    }
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    let rt = runtime();
    let mode = Mode::from_args();
    if mode == Mode::Test {
        // `cargo test --benches`, `-- --test` or `-- --list`: criterion
        // runs each benchmark once, or lists them; nothing else runs.
        criterion_benches(&mut criterion, &rt);
        return;
    }
    let mut summary = Summary::new(title);
    if mode == Mode::Full && with_criterion {
        criterion_benches(&mut criterion, &rt);
        criterion.final_summary();
    }
    paired_stop(&rt, &mut summary, mode.rounds());
    paired_one_for_all(&rt, &mut summary, mode.rounds());
    paired_add_remove(&rt, &mut summary, mode.rounds());
    summary.print();
}

fn criterion_benches(criterion: &mut Criterion, rt: &Runtime) {
    stop(criterion, rt);
    one_for_all(criterion, rt);
    add_remove(criterion, rt);
}

// ---------------------------------------------------------------------------
// 1. Graceful stop of 10k idle tasks

/// How the supervised units came to be.
#[derive(Debug, Clone, Copy)]
enum Setup {
    /// Registered with the builder, stopped in this order.
    Registered(ShutdownOrder),
    /// Added at run time with `handle.add`, into an empty supervisor.
    Added,
}

/// Raw tokio: each task holds a child token of one root; the stop cancels
/// the root and joins every task.
async fn raw_stop() -> Duration {
    let ready = Ready::new(UNITS);
    let (root, tasks) = spawn_raw(UNITS, &ready);
    ready.wait().await;
    let began = Instant::now();
    root.cancel();
    for task in tasks {
        task.await.expect("no panic");
    }
    began.elapsed()
}

/// Raw tokio stopped the way the sequential order stops units: one at a
/// time, the most recently started first, each cancelled and joined before
/// the next.
async fn raw_serial_stop() -> Duration {
    let ready = Ready::new(UNITS);
    let mut tasks: Vec<_> = (0..UNITS)
        .map(|_| {
            let token = CancellationToken::new();
            (token.clone(), spawn_idle(token, &ready))
        })
        .collect();
    ready.wait().await;
    let began = Instant::now();
    while let Some((token, task)) = tasks.pop() {
        token.cancel();
        task.await.expect("no panic");
    }
    began.elapsed()
}

/// From `shutdown()` until it returns, every unit running and polled before.
async fn supervised_stop(setup: Setup) -> Duration {
    let ready = Ready::new(UNITS);
    let handle = match setup {
        Setup::Registered(order) => build_idle(UNITS, &ready, order).start(),
        Setup::Added => {
            let handle = Supervisor::builder().build().expect("an empty supervisor").start();
            for index in 0..UNITS {
                handle.add(idle_spec(task_name(index), &ready)).await.expect("a new unit");
            }
            handle
        }
    };
    ready.wait().await;
    let began = Instant::now();
    let report = handle.shutdown().await;
    let took = began.elapsed();
    assert!(report.is_clean(), "every unit stops gracefully");
    assert_eq!(report.units.len(), UNITS);
    took
}

fn stop(criterion: &mut Criterion, rt: &Runtime) {
    let mut group = criterion.benchmark_group("stop_10k_idle");
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("raw_cancel_join", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| on_worker(rt, raw_stop())).sum())
    });
    let cases = [
        ("concurrent", Setup::Registered(ShutdownOrder::Concurrent)),
        ("added_at_run_time", Setup::Added),
        ("sequential", Setup::Registered(ShutdownOrder::Sequential)),
    ];
    for (name, setup) in cases {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| on_worker(rt, supervised_stop(setup))).sum())
        });
    }
    group.finish();
}

fn paired_stop(rt: &Runtime, summary: &mut Summary, rounds: usize) {
    let (mut raw, mut raw_serial) = (Vec::new(), Vec::new());
    let (mut concurrent, mut added, mut sequential) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        raw.push(on_worker(rt, raw_stop()));
        concurrent.push(on_worker(rt, supervised_stop(Setup::Registered(ShutdownOrder::Concurrent))));
        added.push(on_worker(rt, supervised_stop(Setup::Added)));
        raw_serial.push(on_worker(rt, raw_serial_stop()));
        sequential.push(on_worker(rt, supervised_stop(Setup::Registered(ShutdownOrder::Sequential))));
    }
    let raw = median(raw);
    summary.time(
        "graceful stop of 10k idle, ShutdownOrder::Concurrent / cancel + join all",
        median(concurrent),
        raw,
        Target::ratio(2.0, "<= 2x raw"),
    );
    summary.time(
        "graceful stop of 10k idle added at run time (handle.add) / cancel + join all",
        median(added),
        raw,
        Target::ratio(2.0, "<= 2x raw"),
    );
    let sequential = median(sequential);
    summary.time(
        "graceful stop of 10k idle, sequential (the default) / cancel + join all",
        sequential,
        raw,
        Target::ratio(3.0, "<= 3x raw"),
    );
    summary.time(
        "  beside raw stopped one at a time, most recent first (the same order)",
        sequential,
        median(raw_serial),
        Target::NONE,
    );
}

// ---------------------------------------------------------------------------
// 2. A one_for_all restart of a 1k-unit group

/// The run of unit `index`: counts its arrival, then waits for its stop;
/// unit 0 also fails (returns an error) when `fail` is notified.
async fn group_run(
    index: usize,
    ready: Arc<Ready>,
    fail: Arc<Notify>,
    stop: impl Future<Output = ()>,
) -> Result<(), &'static str> {
    ready.arrive();
    if index == 0 {
        tokio::select! {
            () = stop => Ok(()),
            () = fail.notified() => Err("boom"),
        }
    } else {
        stop.await;
        Ok(())
    }
}

fn one_for_all_group(ready: &Arc<Ready>, fail: &Arc<Notify>) -> GroupSpec {
    let mut group = GroupSpec::new("group").strategy(Strategy::OneForAll);
    for index in 0..GROUP_UNITS {
        let (ready, fail) = (ready.clone(), fail.clone());
        let spec = TaskSpec::new(format!("unit-{index}"), move |ctx: Context| {
            let (ready, fail) = (ready.clone(), fail.clone());
            async move { group_run(index, ready, fail, async move { ctx.cancelled().await }).await }
        })
        .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::Unlimited));
        group = group.task(spec);
    }
    group
}

/// Raw tokio's group: 1000 tasks, each with a token of its own.
struct RawGroup {
    tasks: Vec<(CancellationToken, JoinHandle<Result<(), &'static str>>)>,
}

impl RawGroup {
    fn spawn(ready: &Arc<Ready>, fail: &Arc<Notify>) -> RawGroup {
        let tasks = (0..GROUP_UNITS)
            .map(|index| {
                let token = CancellationToken::new();
                let stop = token.clone();
                let run = group_run(index, ready.clone(), fail.clone(), async move { stop.cancelled().await });
                (token, tokio::spawn(run))
            })
            .collect();
        RawGroup { tasks }
    }

    /// Fails unit 0, joins it, stops the others (all at once, or one at a
    /// time, the most recently started first), spawns all again and waits
    /// until every one has been polled.
    async fn restart(&mut self, ready: &Arc<Ready>, fail: &Arc<Notify>, serial: bool) -> Duration {
        ready.expect(GROUP_UNITS);
        let began = Instant::now();
        fail.notify_one();
        let mut tasks = std::mem::take(&mut self.tasks);
        let (_, failed) = tasks.remove(0);
        assert!(failed.await.expect("no panic").is_err());
        if serial {
            while let Some((token, task)) = tasks.pop() {
                token.cancel();
                task.await.expect("no panic").expect("a clean stop");
            }
        } else {
            for (token, _) in &tasks {
                token.cancel();
            }
            for (_, task) in tasks {
                task.await.expect("no panic").expect("a clean stop");
            }
        }
        *self = RawGroup::spawn(ready, fail);
        ready.wait().await;
        began.elapsed()
    }
}

/// The supervised group, running.
struct SupervisedGroup {
    handle: SupervisorHandle,
}

impl SupervisedGroup {
    async fn start(ready: &Arc<Ready>, fail: &Arc<Notify>) -> SupervisedGroup {
        ready.expect(GROUP_UNITS);
        let sup = Supervisor::builder().group(one_for_all_group(ready, fail)).build().expect("a valid group");
        let handle = sup.start();
        ready.wait().await;
        SupervisedGroup { handle }
    }

    /// Fails unit 0; the strategy stops the 999 others and starts all 1000
    /// again: until every new run has been polled.
    async fn restart(&self, ready: &Arc<Ready>, fail: &Arc<Notify>) -> Duration {
        ready.expect(GROUP_UNITS);
        let began = Instant::now();
        fail.notify_one();
        ready.wait().await;
        let took = began.elapsed();
        // Not timed: the group is whole again before the next round.
        let status = self.handle.wait_ready("group").await.expect("the group runs again");
        assert_eq!(status.state, UnitState::Running);
        took
    }
}

/// `[raw, supervised, raw stopping one at a time]`, `rounds` times each,
/// alternating.
async fn one_for_all_rounds(rounds: usize) -> [Vec<Duration>; 3] {
    let (ready, fail) = (Ready::new(GROUP_UNITS), Arc::new(Notify::new()));
    let mut raw = RawGroup::spawn(&ready, &fail);
    ready.wait().await;
    let (sup_ready, sup_fail) = (Ready::new(0), Arc::new(Notify::new()));
    let sup = SupervisedGroup::start(&sup_ready, &sup_fail).await;
    let mut times: [Vec<Duration>; 3] = Default::default();
    for _ in 0..rounds {
        times[0].push(raw.restart(&ready, &fail, false).await);
        times[1].push(sup.restart(&sup_ready, &sup_fail).await);
        times[2].push(raw.restart(&ready, &fail, true).await);
    }
    let restarts = sup.handle.status("group/unit-0").expect("unit 0").restart_count;
    assert!(restarts >= u32::try_from(rounds).expect("few rounds"), "unit 0 restarted each round");
    sup.handle.shutdown().await;
    for (token, _) in &raw.tasks {
        token.cancel();
    }
    times
}

fn one_for_all(criterion: &mut Criterion, rt: &Runtime) {
    let mut group = criterion.benchmark_group("one_for_all_restart_1k");
    group.bench_function("raw_cancel_join_spawn", |b| {
        b.iter_custom(|iters| {
            on_worker(rt, async move {
                let (ready, fail) = (Ready::new(GROUP_UNITS), Arc::new(Notify::new()));
                let mut raw = RawGroup::spawn(&ready, &fail);
                ready.wait().await;
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += raw.restart(&ready, &fail, false).await;
                }
                for (token, _) in &raw.tasks {
                    token.cancel();
                }
                total
            })
        });
    });
    group.bench_function("supervised", |b| {
        b.iter_custom(|iters| {
            on_worker(rt, async move {
                let (ready, fail) = (Ready::new(0), Arc::new(Notify::new()));
                let sup = SupervisedGroup::start(&ready, &fail).await;
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += sup.restart(&ready, &fail).await;
                }
                sup.handle.shutdown().await;
                total
            })
        });
    });
    group.finish();
}

fn paired_one_for_all(rt: &Runtime, summary: &mut Summary, rounds: usize) {
    // Rounds are cheap here: three times as many.
    let [raw, sup, raw_serial] = on_worker(rt, one_for_all_rounds(rounds * 3));
    let sup = median(sup);
    summary.time(
        "one_for_all restart of a 1k-unit group, failure to all running / cancel + join 1k, spawn 1k",
        sup,
        median(raw),
        Target::ratio(2.0, "<= 2x raw"),
    );
    summary.time(
        "  beside raw stopping the 999 one at a time, most recent first (the strategy's order)",
        sup,
        median(raw_serial),
        Target::NONE,
    );
}

// ---------------------------------------------------------------------------
// 3. Adding then removing 10k units at run time

/// `[spawn 10k until all polled, cancel + join each in turn]`.
async fn raw_add_remove() -> [Duration; 2] {
    let ready = Ready::new(UNITS);
    let began = Instant::now();
    let tasks: Vec<_> = (0..UNITS)
        .map(|_| {
            let token = CancellationToken::new();
            (token.clone(), spawn_idle(token, &ready))
        })
        .collect();
    ready.wait().await;
    let added = began.elapsed();
    let began = Instant::now();
    for (token, task) in tasks {
        token.cancel();
        task.await.expect("no panic");
    }
    [added, began.elapsed()]
}

/// `[add 10k until all polled, remove each in turn]`, into an empty
/// supervisor, each call awaited before the next.
async fn supervised_add_remove() -> [Duration; 2] {
    let handle = Supervisor::builder().build().expect("an empty supervisor").start();
    let ready = Ready::new(UNITS);
    let began = Instant::now();
    let mut names = Vec::with_capacity(UNITS);
    for index in 0..UNITS {
        let name = task_name(index);
        handle.add(idle_spec(name.clone(), &ready)).await.expect("a new unit");
        names.push(name);
    }
    ready.wait().await;
    let added = began.elapsed();
    let began = Instant::now();
    for name in &names {
        handle.remove(name).await.expect("a known unit");
    }
    let removed = began.elapsed();
    assert!(handle.unit_names().is_empty());
    handle.shutdown().await;
    [added, removed]
}

fn add_remove(criterion: &mut Criterion, rt: &Runtime) {
    let mut group = criterion.benchmark_group("add_remove_10k");
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("raw_spawn_cancel_join", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| on_worker(rt, raw_add_remove()).iter().sum::<Duration>()).sum())
    });
    group.bench_function("supervised", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| on_worker(rt, supervised_add_remove()).iter().sum::<Duration>()).sum())
    });
    group.finish();
}

fn paired_add_remove(rt: &Runtime, summary: &mut Summary, rounds: usize) {
    let (mut raw, mut sup) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        raw.push(on_worker(rt, raw_add_remove()));
        sup.push(on_worker(rt, supervised_add_remove()));
    }
    let part = |runs: &[[Duration; 2]], part: Option<usize>| {
        median(runs.iter().map(|parts| part.map_or_else(|| parts.iter().sum(), |part| parts[part])).collect())
    };
    summary.time(
        "add then remove 10k units at run time / spawn, cancel + join 10k",
        part(&sup, None),
        part(&raw, None),
        Target::ratio(2.0, "<= 2x raw"),
    );
    summary.time(
        "  of which handle.add() x 10k, until all polled / spawn",
        part(&sup, Some(0)),
        part(&raw, Some(0)),
        Target::NONE,
    );
    summary.time(
        "  of which handle.remove() x 10k / cancel + join, one at a time",
        part(&sup, Some(1)),
        part(&raw, Some(1)),
        Target::NONE,
    );
}

// ---------------------------------------------------------------------------
// Repeat probes, to profile one figure (each a run of this binary)

fn run_probe(name: &str) -> String {
    let rt = runtime();
    match name {
        "repeat-concurrent-stop" => repeat(&rt, || supervised_stop(Setup::Registered(ShutdownOrder::Concurrent))),
        "repeat-added-stop" => repeat(&rt, || supervised_stop(Setup::Added)),
        "repeat-sequential-stop" => repeat(&rt, || supervised_stop(Setup::Registered(ShutdownOrder::Sequential))),
        "repeat-raw-stop" => repeat(&rt, raw_stop),
        "repeat-one-for-all" => repeat(&rt, || async { one_for_all_rounds(20).await[1].iter().sum() }),
        "repeat-add-remove" => repeat(&rt, || async { supervised_add_remove().await.iter().sum() }),
        _ => panic!("unknown probe {name}"),
    }
}
