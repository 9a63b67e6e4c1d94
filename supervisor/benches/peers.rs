//! This crate beside its peers, and each beside raw tokio, in the same run.
//!
//! Peers: `task-supervisor`, `tokio-graceful-shutdown`, `kameo` (its
//! supervision) and `ractor` (with `ractor-supervisor` for restarts and
//! strategies). Each figure is measured for every side that has an
//! equivalent; the notes printed under the table say what each peer's
//! equivalent was.
//!
//! 1. start of 10k idle tasks until every one has been polled, then their
//!    graceful stop (this crate: `ShutdownOrder::Concurrent`, as every peer
//!    stops its tasks all at once);
//! 2. graceful stop of 10k idle tasks added at run time;
//! 3. one restart of a task that fails at once, zero delay, no limit;
//! 4. a one_for_all restart of a 1k-unit group, from the failure until every
//!    unit has started again;
//! 5. adding then removing 10k units at run time, each call awaited in turn.
//!
//! Rounds alternate the sides, so that a change in the machine's load
//! weighs on all of them alike; the table gives medians. Figures 1 and 3
//! also run under criterion.
//!
//! Run with `cargo bench -p tokio-supervisor --bench peers` (about 50 s), or
//! `-- --quick` for the table alone from fewer rounds (about 10 s). The
//! peers are dev-dependencies of this package, used by this bench only.

mod common;

use std::convert::Infallible;
use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Mode, Ready, fmt_duration, fmt_ratio, idle_spec, median, on_worker, runtime, spawn_idle, task_name};
use criterion::{Criterion, SamplingMode};
use supervisor::{
    Context, GroupSpec, MaxRestarts, RestartPolicy, ShutdownOrder, Strategy, Supervisor, TaskSpec, UnitState,
};
use tokio::runtime::Runtime;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Tasks in the start/stop and add/remove figures.
const UNITS: usize = 10_000;
/// Units in the one_for_all group.
const GROUP_UNITS: usize = 1_000;
/// Restarts per round in the restart figure.
const RESTARTS: u32 = 2_000;

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_millis(300))
        .configure_from_args();
    let rt = runtime();
    let mode = Mode::from_args();
    if mode == Mode::Test {
        criterion_benches(&mut criterion, &rt);
        return;
    }
    if mode == Mode::Full {
        criterion_benches(&mut criterion, &rt);
        criterion.final_summary();
    }
    // Fewer rounds than the other benches: six sides take turns in each.
    let rounds = if mode == Mode::Full { 9 } else { 3 };
    let mut table = Table::default();
    let start_stop = measure(&rt, rounds, start_stop);
    table.row("start of 10k idle tasks, until all polled", part(&start_stop, 0), None);
    table.row(
        "graceful stop of 10k idle tasks (supervisor: ShutdownOrder::Concurrent)",
        part(&start_stop, 1),
        Some("<= 2x raw, faster than task-supervisor"),
    );
    let added = measure(&rt, rounds, added_stop);
    table.row(
        "graceful stop of 10k idle tasks added at run time",
        part(&added, 0),
        Some("<= 2x raw, faster than task-supervisor"),
    );
    let restart = measure(&rt, rounds, |side| restart(side, RESTARTS));
    let per_restart = part(&restart, 0).map(|time| time.map(|time| time / RESTARTS));
    table.row("one restart of a task that fails at once, zero delay", per_restart, Some("<= 2x raw"));
    let one_for_all = measure(&rt, rounds * 2, one_for_all);
    table.row("one_for_all restart of a 1k-unit group", part(&one_for_all, 0), Some("<= 2x raw"));
    let add_remove = measure(&rt, rounds, add_remove);
    table.row("add then remove 10k units at run time", part(&add_remove, 0), Some("<= 2x raw"));
    table.print();
}

fn criterion_benches(criterion: &mut Criterion, rt: &Runtime) {
    let mut group = criterion.benchmark_group("peers_start_stop_10k_idle");
    group.sampling_mode(SamplingMode::Flat);
    for side in Side::ALL {
        if start_stop(side).is_none() {
            continue;
        }
        group.bench_function(side.name(), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| on_worker(rt, start_stop(side).expect("an equivalent")).iter().sum::<Duration>())
                    .sum()
            })
        });
    }
    group.finish();
    let mut group = criterion.benchmark_group("peers_restart_failing_task_zero_delay");
    for side in Side::ALL {
        if restart(side, 1).is_none() {
            continue;
        }
        group.bench_function(side.name(), |b| {
            b.iter_custom(|iters| {
                let restarts = u32::try_from(iters).expect("fewer than 2^32 restarts");
                on_worker(rt, restart(side, restarts).expect("an equivalent"))[0]
            })
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// Sides, rounds and the table

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Raw,
    Supervisor,
    TaskSupervisor,
    GracefulShutdown,
    Kameo,
    Ractor,
}

impl Side {
    const ALL: [Side; 6] =
        [Side::Raw, Side::Supervisor, Side::TaskSupervisor, Side::GracefulShutdown, Side::Kameo, Side::Ractor];

    fn name(self) -> &'static str {
        match self {
            Side::Raw => "raw tokio",
            Side::Supervisor => "supervisor",
            Side::TaskSupervisor => "task-supervisor",
            Side::GracefulShutdown => "tokio-graceful-shutdown",
            Side::Kameo => "kameo",
            Side::Ractor => "ractor",
        }
    }
}

/// One side's run of a figure, timed in up to two parts.
type Run = Pin<Box<dyn Future<Output = [Duration; 2]> + Send>>;

fn run(future: impl Future<Output = [Duration; 2]> + Send + 'static) -> Option<Run> {
    Some(Box::pin(future))
}

fn one(future: impl Future<Output = Duration> + Send + 'static) -> Option<Run> {
    run(async move { [future.await, Duration::ZERO] })
}

/// Each side's parts, `rounds` times, the sides taking turns.
fn measure(rt: &Runtime, rounds: usize, figure: impl Fn(Side) -> Option<Run>) -> [Option<Vec<[Duration; 2]>>; 6] {
    let mut times: [Option<Vec<[Duration; 2]>>; 6] = Default::default();
    for _ in 0..rounds {
        for (index, side) in Side::ALL.into_iter().enumerate() {
            if let Some(future) = figure(side) {
                times[index].get_or_insert_with(Vec::new).push(on_worker(rt, future));
            }
        }
    }
    times
}

/// The median of one part, per side.
fn part(times: &[Option<Vec<[Duration; 2]>>; 6], part: usize) -> [Option<Duration>; 6] {
    std::array::from_fn(|index| {
        times[index].as_ref().map(|runs| median(runs.iter().map(|parts| parts[part]).collect()))
    })
}

#[derive(Default)]
struct Table {
    rows: Vec<String>,
}

impl Table {
    fn row(&mut self, figure: &str, times: [Option<Duration>; 6], target: Option<&str>) {
        let raw = times[0].expect("a raw baseline");
        let mut row = format!("| {figure} |");
        for time in times {
            let cell = time.map_or_else(
                || "-".to_owned(),
                |time| format!("{} ({})", fmt_duration(time), fmt_ratio(time.as_secs_f64() / raw.as_secs_f64())),
            );
            let _ = write!(row, " {cell} |");
        }
        // This crate beside the fastest peer that has an equivalent.
        let ours = times[1].expect("this crate's figure");
        let fastest =
            (2..6).filter_map(|index| times[index].map(|time| (time, Side::ALL[index]))).min_by_key(|&(time, _)| time);
        let beside = fastest.map_or_else(
            || "-".to_owned(),
            |(time, side)| format!("{} of {}", fmt_ratio(ours.as_secs_f64() / time.as_secs_f64()), side.name()),
        );
        let _ = write!(row, " {beside} | {} |", target.unwrap_or(""));
        self.rows.push(row);
    }

    fn print(&self) {
        let mut out =
            String::from("\nSummary (time, and in brackets the ratio to raw tokio; medians, same run)\n\n| figure |");
        for side in Side::ALL {
            let _ = write!(out, " {} |", side.name());
        }
        out.push_str(" supervisor / fastest peer | target |\n|---|");
        out.push_str(&"---:|".repeat(Side::ALL.len() + 1));
        out.push_str("---|\n");
        for row in &self.rows {
            out.push_str(row);
            out.push('\n');
        }
        out.push_str(NOTES);
        println!("{out}");
    }
}

const NOTES: &str = "
What each side did:
- raw tokio: tasks with cancellation tokens; stop = cancel + join all; restart = spawn + join;
  one_for_all = join the failed task, cancel + join the 999 others, spawn 1000; add/remove =
  spawn 10k, then cancel + join each in turn.
- supervisor: Supervisor::builder() tasks, start(), shutdown() (ShutdownOrder::Concurrent in
  figure 1); handle.add / handle.remove; RestartPolicy zero delay, MaxRestarts::Unlimited;
  a GroupSpec with Strategy::OneForAll.
- task-supervisor: SupervisorBuilder::with_task, spawn(), shutdown(); add_task; restarts with
  with_base_restart_delay(0), jitter 0, unlimited; remove = kill_task (the task stays listed,
  Dead: it has no removal). No strategies.
- tokio-graceful-shutdown: Toplevel with 10k subsystems, shutdown token cancelled, until
  handle_shutdown_requests returns; add/remove = SubsystemHandle::start, then
  initiate_shutdown + join of each. Its subsystems always start at run time (figure 2 = figure 1).
  No restarts.
- kameo: a supervisor actor with 10k supervised children (each spawn awaited), stop_gracefully +
  wait_for_shutdown of the supervisor (it stops its children concurrently and waits); restart =
  a child whose on_start fails, RestartPolicy::Permanent, restart_limit(u32::MAX); one_for_all =
  SupervisionStrategy::OneForAll, the failure a message whose handler returns an error;
  add/remove = supervise().spawn(), then stop_gracefully + wait_for_shutdown (Transient policy).
  Children always join a running supervisor (figure 2 = figure 1).
- ractor: 10k actors spawn_linked to a parent, stop_children_and_wait; restart and one_for_all
  by ractor-supervisor (OneForOne / OneForAll, no backoff, meltdown log reset at once), the child
  failing in post_start or on a message; its one_for_all kills the children (no graceful stop)
  and sleeps 10 ms before starting them again. add/remove = spawn_linked, then stop + join of each.
";

// ---------------------------------------------------------------------------
// 1. Start and graceful stop of 10k idle tasks

/// A unique prefix for actor names, which ractor registers process-wide.
fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `[start until all polled, graceful stop]`.
fn start_stop(side: Side) -> Option<Run> {
    match side {
        Side::Raw => run(async {
            let ready = Ready::new(UNITS);
            let began = Instant::now();
            let root = CancellationToken::new();
            let tasks: Vec<_> = (0..UNITS).map(|_| spawn_idle(root.child_token(), &ready)).collect();
            ready.wait().await;
            let started = began.elapsed();
            let began = Instant::now();
            root.cancel();
            for task in tasks {
                task.await.expect("no panic");
            }
            [started, began.elapsed()]
        }),
        Side::Supervisor => run(async {
            let ready = Ready::new(UNITS);
            let began = Instant::now();
            let mut builder = Supervisor::builder().shutdown_order(ShutdownOrder::Concurrent);
            for index in 0..UNITS {
                builder = builder.task(idle_spec(task_name(index), &ready));
            }
            let handle = builder.build().expect("valid units").start();
            ready.wait().await;
            let started = began.elapsed();
            let began = Instant::now();
            assert!(handle.shutdown().await.is_clean());
            [started, began.elapsed()]
        }),
        Side::TaskSupervisor => run(async {
            let ready = Ready::new(UNITS);
            let began = Instant::now();
            let mut builder = task_supervisor::SupervisorBuilder::new();
            for index in 0..UNITS {
                builder = builder.with_task(&task_name(index), ts::Idle(ready.clone()));
            }
            let handle = builder.spawn();
            ready.wait().await;
            let started = began.elapsed();
            let began = Instant::now();
            handle.shutdown().await.expect("a clean shutdown");
            [started, began.elapsed()]
        }),
        Side::GracefulShutdown => run(async {
            let ready = Ready::new(UNITS);
            let token = CancellationToken::new();
            let began = Instant::now();
            let toplevel = tgs::toplevel(ready.clone(), token.clone());
            let shutdown = tokio::spawn(toplevel.handle_shutdown_requests(Duration::from_secs(60)));
            ready.wait().await;
            let started = began.elapsed();
            let began = Instant::now();
            token.cancel();
            shutdown.await.expect("no panic").expect("a clean shutdown");
            [started, began.elapsed()]
        }),
        Side::Kameo => run(async {
            use kameo::actor::Spawn as _;
            let ready = Ready::new(UNITS);
            let began = Instant::now();
            let sup = kameo_side::OneForOne::spawn(());
            for _ in 0..UNITS {
                kameo_side::Idle::supervise(&sup, kameo_side::Idle(ready.clone())).spawn().await;
            }
            ready.wait().await;
            let started = began.elapsed();
            let began = Instant::now();
            sup.stop_gracefully().await.expect("a running supervisor");
            sup.wait_for_shutdown().await;
            [started, began.elapsed()]
        }),
        Side::Ractor => run(async {
            use ractor::Actor as _;
            let ready = Ready::new(UNITS);
            let began = Instant::now();
            let (parent, parent_join) =
                ractor::Actor::spawn(None, ractor_side::Parent, ()).await.expect("the parent starts");
            for _ in 0..UNITS {
                ractor_side::Idle::spawn_linked(None, ractor_side::Idle, ready.clone(), parent.get_cell())
                    .await
                    .expect("a child starts");
            }
            ready.wait().await;
            let started = began.elapsed();
            let began = Instant::now();
            parent.stop_children_and_wait(None, None).await;
            let stopped = began.elapsed();
            parent.stop(None);
            parent_join.await.expect("no panic");
            [started, stopped]
        }),
    }
}

// ---------------------------------------------------------------------------
// 2. Graceful stop of 10k idle tasks added at run time

fn added_stop(side: Side) -> Option<Run> {
    match side {
        Side::Raw => run(async {
            let [_, stopped] = start_stop(Side::Raw).expect("a raw baseline").await;
            [stopped, Duration::ZERO]
        }),
        Side::Supervisor => one(async {
            let ready = Ready::new(UNITS);
            let handle = Supervisor::builder().build().expect("an empty supervisor").start();
            for index in 0..UNITS {
                handle.add(idle_spec(task_name(index), &ready)).await.expect("a new unit");
            }
            ready.wait().await;
            let began = Instant::now();
            assert!(handle.shutdown().await.is_clean());
            began.elapsed()
        }),
        Side::TaskSupervisor => one(async {
            let ready = Ready::new(UNITS);
            let handle = task_supervisor::SupervisorBuilder::new().spawn();
            for index in 0..UNITS {
                handle.add_task(&task_name(index), ts::Idle(ready.clone())).await.expect("a new task");
            }
            ready.wait().await;
            let began = Instant::now();
            handle.shutdown().await.expect("a clean shutdown");
            began.elapsed()
        }),
        // Their units always join a running tree: the same as figure 1.
        Side::GracefulShutdown | Side::Kameo | Side::Ractor => None,
    }
}

// ---------------------------------------------------------------------------
// 3. Restarts of a task that fails at once

/// Counts runs; the run after `restarts` restarts wakes the bench.
#[derive(Clone)]
struct Crash {
    runs: Arc<AtomicU32>,
    restarts: u32,
    last_run: Arc<Notify>,
}

impl Crash {
    fn new(restarts: u32) -> Crash {
        Crash { runs: Arc::new(AtomicU32::new(0)), restarts, last_run: Arc::new(Notify::new()) }
    }

    /// Counts a run; `true` for the last one.
    fn count(&self) -> bool {
        let last = self.runs.fetch_add(1, Ordering::Relaxed) == self.restarts;
        if last {
            self.last_run.notify_one();
        }
        last
    }
}

/// `restarts` restarts, from start until the run after the last one.
fn restart(side: Side, restarts: u32) -> Option<Run> {
    let crash = Crash::new(restarts);
    match side {
        Side::Raw => one(async move {
            let began = Instant::now();
            for _ in 0..=restarts {
                let crash = crash.clone();
                let result = tokio::spawn(async move {
                    crash.count();
                    Err::<(), _>("boom")
                })
                .await
                .expect("no panic");
                assert!(result.is_err());
            }
            began.elapsed()
        }),
        Side::Supervisor => one(async move {
            let counter = crash.clone();
            let spec = TaskSpec::new("crash", move |_ctx: Context| {
                counter.count();
                async { Err::<(), _>("boom") }
            })
            .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(restarts)));
            let sup = Supervisor::builder().task(spec).build().expect("a valid unit");
            let began = Instant::now();
            let handle = sup.start();
            crash.last_run.notified().await;
            handle.wait_state("crash", UnitState::Failed).await.expect("the unit gives up");
            let took = began.elapsed();
            handle.shutdown().await;
            took
        }),
        Side::TaskSupervisor => one(async move {
            let began = Instant::now();
            let handle = task_supervisor::SupervisorBuilder::new()
                .with_unlimited_restarts()
                .with_base_restart_delay(Duration::ZERO)
                .with_restart_jitter(0.0)
                .with_task("crash", ts::Crash(crash.clone()))
                .spawn();
            crash.last_run.notified().await;
            let took = began.elapsed();
            handle.shutdown().await.expect("a clean shutdown");
            took
        }),
        Side::GracefulShutdown => None,
        Side::Kameo => one(async move {
            use kameo::actor::Spawn as _;
            let began = Instant::now();
            let sup = kameo_side::OneForOne::spawn(());
            kameo_side::Crash::supervise(&sup, kameo_side::Crash(crash.clone()))
                .restart_policy(kameo::supervision::RestartPolicy::Permanent)
                .restart_limit(u32::MAX, Duration::from_secs(1))
                .spawn()
                .await;
            crash.last_run.notified().await;
            let took = began.elapsed();
            sup.kill();
            sup.wait_for_shutdown().await;
            took
        }),
        Side::Ractor => one(async move {
            let began = Instant::now();
            let child = crash.clone();
            let spec = ractor_side::child_spec(format!("crash-{}", unique()), move |cell, name| {
                let child = child.clone();
                async move {
                    let (actor, _) = ractor::Actor::spawn_linked(Some(name), ractor_side::Crash, child, cell).await?;
                    Ok(actor.get_cell())
                }
            });
            let (sup, join) =
                ractor_side::supervisor(vec![spec], ractor_supervisor::SupervisorStrategy::OneForOne).await;
            crash.last_run.notified().await;
            let took = began.elapsed();
            sup.kill();
            join.await.expect("no panic");
            took
        }),
    }
}

// ---------------------------------------------------------------------------
// 4. A one_for_all restart of a 1k-unit group

/// Raw tokio's group: unit 0 fails when `fail` is notified.
fn raw_group(ready: &Arc<Ready>, fail: &Arc<Notify>) -> Vec<(CancellationToken, JoinHandle<Result<(), &'static str>>)> {
    (0..GROUP_UNITS)
        .map(|index| {
            let token = CancellationToken::new();
            let (ready, fail, stop) = (ready.clone(), fail.clone(), token.clone());
            let task = tokio::spawn(async move {
                ready.arrive();
                if index == 0 {
                    tokio::select! {
                        () = stop.cancelled() => Ok(()),
                        () = fail.notified() => Err("boom"),
                    }
                } else {
                    stop.cancelled().await;
                    Ok(())
                }
            });
            (token, task)
        })
        .collect()
}

/// From the failure until every unit's new run has started.
fn one_for_all(side: Side) -> Option<Run> {
    match side {
        Side::Raw => one(async {
            let (ready, fail) = (Ready::new(GROUP_UNITS), Arc::new(Notify::new()));
            let mut tasks = raw_group(&ready, &fail);
            ready.wait().await;
            ready.expect(GROUP_UNITS);
            let began = Instant::now();
            fail.notify_one();
            let (_, failed) = tasks.remove(0);
            assert!(failed.await.expect("no panic").is_err());
            for (token, _) in &tasks {
                token.cancel();
            }
            for (_, task) in tasks {
                task.await.expect("no panic").expect("a clean stop");
            }
            let tasks = raw_group(&ready, &fail);
            ready.wait().await;
            let took = began.elapsed();
            for (token, _) in &tasks {
                token.cancel();
            }
            took
        }),
        Side::Supervisor => one(async {
            let (ready, fail) = (Ready::new(GROUP_UNITS), Arc::new(Notify::new()));
            let mut group = GroupSpec::new("group").strategy(Strategy::OneForAll);
            for index in 0..GROUP_UNITS {
                let (ready, fail) = (ready.clone(), fail.clone());
                let spec = TaskSpec::new(format!("unit-{index}"), move |ctx: Context| {
                    let (ready, fail) = (ready.clone(), fail.clone());
                    async move {
                        ready.arrive();
                        if index == 0 {
                            tokio::select! {
                                () = ctx.cancelled() => Ok(()),
                                () = fail.notified() => Err("boom"),
                            }
                        } else {
                            ctx.cancelled().await;
                            Ok(())
                        }
                    }
                })
                .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::Unlimited));
                group = group.task(spec);
            }
            let handle = Supervisor::builder().group(group).build().expect("a valid group").start();
            ready.wait().await;
            ready.expect(GROUP_UNITS);
            let began = Instant::now();
            fail.notify_one();
            ready.wait().await;
            let took = began.elapsed();
            handle.wait_ready("group").await.expect("the group runs again");
            handle.shutdown().await;
            took
        }),
        Side::TaskSupervisor | Side::GracefulShutdown => None,
        Side::Kameo => one(async {
            use kameo::actor::Spawn as _;
            let ready = Ready::new(GROUP_UNITS);
            let sup = kameo_side::OneForAll::spawn(());
            let mut first = None;
            for _ in 0..GROUP_UNITS {
                let member = kameo_side::Member::supervise(&sup, kameo_side::Member(ready.clone()))
                    .restart_policy(kameo::supervision::RestartPolicy::Permanent)
                    .restart_limit(u32::MAX, Duration::from_secs(1))
                    .spawn()
                    .await;
                first.get_or_insert(member);
            }
            ready.wait().await;
            ready.expect(GROUP_UNITS);
            let began = Instant::now();
            first.expect("a first member").tell(kameo_side::Fail).await.expect("a running member");
            ready.wait().await;
            let took = began.elapsed();
            sup.kill();
            sup.wait_for_shutdown().await;
            took
        }),
        Side::Ractor => one(async {
            let ready = Ready::new(GROUP_UNITS);
            let prefix = unique();
            let specs = (0..GROUP_UNITS)
                .map(|index| {
                    let ready = ready.clone();
                    ractor_side::child_spec(format!("g{prefix}-unit-{index}"), move |cell, name| {
                        let ready = ready.clone();
                        async move {
                            let (actor, _) =
                                ractor::Actor::spawn_linked(Some(name), ractor_side::Member, ready, cell).await?;
                            Ok(actor.get_cell())
                        }
                    })
                })
                .collect();
            let (sup, join) = ractor_side::supervisor(specs, ractor_supervisor::SupervisorStrategy::OneForAll).await;
            ready.wait().await;
            ready.expect(GROUP_UNITS);
            let began = Instant::now();
            let first = ractor::registry::where_is(format!("g{prefix}-unit-0")).expect("unit 0 is registered");
            first.send_message(ractor_side::Fail).expect("a running member");
            ready.wait().await;
            let took = began.elapsed();
            sup.kill();
            join.await.expect("no panic");
            took
        }),
    }
}

// ---------------------------------------------------------------------------
// 5. Adding then removing 10k units at run time

/// `[add 10k until all polled, remove each in turn]` (one part: the sum).
fn add_remove(side: Side) -> Option<Run> {
    match side {
        Side::Raw => one(async {
            let ready = Ready::new(UNITS);
            let began = Instant::now();
            let tasks: Vec<_> = (0..UNITS)
                .map(|_| {
                    let token = CancellationToken::new();
                    (token.clone(), spawn_idle(token, &ready))
                })
                .collect();
            ready.wait().await;
            for (token, task) in tasks {
                token.cancel();
                task.await.expect("no panic");
            }
            began.elapsed()
        }),
        Side::Supervisor => one(async {
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
            for name in &names {
                handle.remove(name).await.expect("a known unit");
            }
            let took = began.elapsed();
            handle.shutdown().await;
            took
        }),
        Side::TaskSupervisor => one(async {
            let handle = task_supervisor::SupervisorBuilder::new().spawn();
            let ready = Ready::new(UNITS);
            let began = Instant::now();
            let mut names = Vec::with_capacity(UNITS);
            for index in 0..UNITS {
                let name = task_name(index);
                handle.add_task(&name, ts::Idle(ready.clone())).await.expect("a new task");
                names.push(name);
            }
            ready.wait().await;
            for name in &names {
                handle.kill_task(name).await.expect("a known task");
            }
            let took = began.elapsed();
            handle.shutdown().await.expect("a clean shutdown");
            took
        }),
        Side::GracefulShutdown => one(async {
            let (took, result) = oneshot::channel();
            let toplevel = tokio_graceful_shutdown::Toplevel::new(async move |top: &mut tgs::Handle| {
                let ready = Ready::new(UNITS);
                let began = Instant::now();
                let mut nested = Vec::with_capacity(UNITS);
                for index in 0..UNITS {
                    nested.push(tgs::start_idle(top, task_name(index), ready.clone()));
                }
                ready.wait().await;
                for subsystem in nested {
                    subsystem.initiate_shutdown();
                    subsystem.join().await.expect("a clean stop");
                }
                let _ = took.send(began.elapsed());
                top.request_shutdown();
            });
            toplevel.handle_shutdown_requests(Duration::from_secs(60)).await.expect("a clean shutdown");
            result.await.expect("the figure")
        }),
        Side::Kameo => one(async {
            use kameo::actor::Spawn as _;
            let sup = kameo_side::OneForOne::spawn(());
            let ready = Ready::new(UNITS);
            let began = Instant::now();
            let mut children = Vec::with_capacity(UNITS);
            for _ in 0..UNITS {
                let child = kameo_side::Idle::supervise(&sup, kameo_side::Idle(ready.clone()))
                    .restart_policy(kameo::supervision::RestartPolicy::Transient)
                    .spawn()
                    .await;
                children.push(child);
            }
            ready.wait().await;
            for child in children {
                child.stop_gracefully().await.expect("a running child");
                child.wait_for_shutdown().await;
            }
            let took = began.elapsed();
            sup.kill();
            sup.wait_for_shutdown().await;
            took
        }),
        Side::Ractor => one(async {
            use ractor::Actor as _;
            let (parent, parent_join) =
                ractor::Actor::spawn(None, ractor_side::Parent, ()).await.expect("the parent starts");
            let ready = Ready::new(UNITS);
            let began = Instant::now();
            let mut children = Vec::with_capacity(UNITS);
            for _ in 0..UNITS {
                let child = ractor_side::Idle::spawn_linked(None, ractor_side::Idle, ready.clone(), parent.get_cell())
                    .await
                    .expect("a child starts");
                children.push(child);
            }
            ready.wait().await;
            for (child, join) in children {
                child.stop(None);
                join.await.expect("no panic");
            }
            let took = began.elapsed();
            parent.stop(None);
            parent_join.await.expect("no panic");
            took
        }),
    }
}

// ---------------------------------------------------------------------------
// The peers' pieces

mod ts {
    use super::*;
    use task_supervisor::{SupervisedTask, TaskResult};

    #[derive(Clone)]
    pub(crate) struct Idle(pub(crate) Arc<Ready>);

    impl SupervisedTask for Idle {
        async fn run(self, cancel: CancellationToken) -> TaskResult {
            self.0.arrive();
            cancel.cancelled().await;
            Ok(())
        }
    }

    #[derive(Clone)]
    pub(crate) struct Crash(pub(crate) super::Crash);

    impl SupervisedTask for Crash {
        async fn run(self, _cancel: CancellationToken) -> TaskResult {
            self.0.count();
            Err("boom".into())
        }
    }
}

mod tgs {
    use super::*;
    use tokio_graceful_shutdown::{NestedSubsystem, SubsystemBuilder, SubsystemHandle, Toplevel};

    pub(crate) type Handle = SubsystemHandle;

    /// Starts a subsystem that counts its arrival and waits for its shutdown.
    pub(crate) fn start_idle(parent: &SubsystemHandle, name: String, ready: Arc<Ready>) -> NestedSubsystem {
        parent.start(SubsystemBuilder::new(name, async move |subsys: &mut SubsystemHandle| {
            ready.arrive();
            subsys.on_shutdown_requested().await;
            Ok::<(), Infallible>(())
        }))
    }

    /// 10k idle subsystems under a toplevel that `token` shuts down.
    pub(crate) fn toplevel(ready: Arc<Ready>, token: CancellationToken) -> Toplevel {
        Toplevel::new_with_shutdown_token(
            async move |top: &mut SubsystemHandle| {
                for index in 0..UNITS {
                    start_idle(top, task_name(index), ready.clone());
                }
            },
            token,
        )
    }
}

mod kameo_side {
    use super::*;
    use kameo::actor::{Actor, ActorRef};
    use kameo::message::{Context as KameoContext, Message};
    use kameo::supervision::SupervisionStrategy;

    pub(crate) struct OneForOne;

    impl Actor for OneForOne {
        type Args = ();
        type Error = Infallible;

        async fn on_start((): (), _: ActorRef<Self>) -> Result<Self, Infallible> {
            Ok(OneForOne)
        }
    }

    pub(crate) struct OneForAll;

    impl Actor for OneForAll {
        type Args = ();
        type Error = Infallible;

        fn supervision_strategy() -> SupervisionStrategy {
            SupervisionStrategy::OneForAll
        }

        async fn on_start((): (), _: ActorRef<Self>) -> Result<Self, Infallible> {
            Ok(OneForAll)
        }
    }

    /// Counts its start, then waits for messages.
    #[derive(Clone)]
    pub(crate) struct Idle(pub(crate) Arc<Ready>);

    impl Actor for Idle {
        type Args = Self;
        type Error = Infallible;

        async fn on_start(state: Self, _: ActorRef<Self>) -> Result<Self, Infallible> {
            state.0.arrive();
            Ok(state)
        }
    }

    /// Fails as it starts, but for its last run: a supervisor whose child
    /// keeps restarting does not finish its own stop.
    #[derive(Clone)]
    pub(crate) struct Crash(pub(crate) super::Crash);

    impl Actor for Crash {
        type Args = Self;
        type Error = &'static str;

        async fn on_start(state: Self, _: ActorRef<Self>) -> Result<Self, &'static str> {
            if state.0.count() { Ok(state) } else { Err("boom") }
        }
    }

    /// A group member: counts its start, fails on `Fail`.
    #[derive(Clone)]
    pub(crate) struct Member(pub(crate) Arc<Ready>);

    pub(crate) struct Fail;

    impl Actor for Member {
        type Args = Self;
        type Error = Infallible;

        async fn on_start(state: Self, _: ActorRef<Self>) -> Result<Self, Infallible> {
            state.0.arrive();
            Ok(state)
        }
    }

    impl Message<Fail> for Member {
        type Reply = Result<(), &'static str>;

        async fn handle(&mut self, _: Fail, _: &mut KameoContext<Self, Self::Reply>) -> Self::Reply {
            Err("boom")
        }
    }
}

mod ractor_side {
    use super::*;
    use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};
    use ractor_supervisor::{
        ChildSpec, Restart, SpawnFn, SupervisorArguments, SupervisorMsg, SupervisorOptions, SupervisorStrategy,
    };

    /// A parent that only holds its children.
    pub(crate) struct Parent;

    impl Actor for Parent {
        type Msg = ();
        type State = ();
        type Arguments = ();

        async fn pre_start(&self, _: ActorRef<()>, (): ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
    }

    /// Counts its start, then waits for messages.
    pub(crate) struct Idle;

    impl Actor for Idle {
        type Msg = ();
        type State = ();
        type Arguments = Arc<Ready>;

        async fn pre_start(&self, _: ActorRef<()>, ready: Arc<Ready>) -> Result<(), ActorProcessingErr> {
            ready.arrive();
            Ok(())
        }
    }

    /// Fails as soon as it has started.
    pub(crate) struct Crash;

    impl Actor for Crash {
        type Msg = ();
        type State = ();
        type Arguments = super::Crash;

        async fn pre_start(&self, _: ActorRef<()>, crash: super::Crash) -> Result<(), ActorProcessingErr> {
            crash.count();
            Ok(())
        }

        async fn post_start(&self, _: ActorRef<()>, _: &mut ()) -> Result<(), ActorProcessingErr> {
            Err("boom".into())
        }
    }

    /// A group member: counts its start, fails on `Fail`.
    pub(crate) struct Member;

    pub(crate) struct Fail;

    impl Actor for Member {
        type Msg = Fail;
        type State = ();
        type Arguments = Arc<Ready>;

        async fn pre_start(&self, _: ActorRef<Fail>, ready: Arc<Ready>) -> Result<(), ActorProcessingErr> {
            ready.arrive();
            Ok(())
        }

        async fn handle(&self, _: ActorRef<Fail>, _: Fail, _: &mut ()) -> Result<(), ActorProcessingErr> {
            Err("boom".into())
        }
    }

    pub(crate) fn child_spec<F, Fut>(id: String, spawn: F) -> ChildSpec
    where
        F: Fn(ActorCell, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ActorCell, SpawnErr>> + Send + 'static,
    {
        ChildSpec {
            id,
            restart: Restart::Permanent,
            spawn_fn: SpawnFn::new(spawn),
            backoff_fn: None,
            reset_after: None,
        }
    }

    /// A supervisor of `children`: restarts at once, no meltdown (its log
    /// of restarts is cleared at each one).
    pub(crate) async fn supervisor(
        children: Vec<ChildSpec>,
        strategy: SupervisorStrategy,
    ) -> (ActorRef<SupervisorMsg>, JoinHandle<()>) {
        let options = SupervisorOptions {
            strategy,
            max_restarts: usize::MAX,
            max_window: Duration::from_secs(1),
            reset_after: Some(Duration::ZERO),
        };
        let args = SupervisorArguments { child_specs: children, options };
        ractor_supervisor::Supervisor::spawn(format!("supervisor-{}", unique()), args)
            .await
            .expect("the supervisor starts")
    }
}
