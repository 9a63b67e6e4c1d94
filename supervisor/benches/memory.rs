//! Memory of supervised units beside raw tokio, each probe in a fresh child
//! process of this binary:
//!
//! 1. memory per idle task, over 10k idle tasks: live heap bytes and blocks
//!    (a counting allocator), RSS growth, and the live bytes the units hold
//!    once registered, before `start()`;
//! 2. live heap before and after 10k add/remove cycles, beside raw spawn,
//!    cancel + join; after 10k units added at once, then all removed; and
//!    right after 10k cycles with the default stop timeout.
//!
//! These figures have a binary of their own, the only one that installs
//! `stats_alloc`'s counting allocator as its global allocator: it does two
//! atomic adds at each allocation and each free, on one cache line that both
//! runtime workers write. In the `tasks` and `tree` benches it would tax
//! every timing, the supervisor's (which allocates more) more than raw
//! tokio's, at a cost no application pays; they run on the system allocator.
//!
//! Run with `cargo bench -p tokio-supervisor --bench memory` (about 1 s);
//! the summary table is printed last. There are no rounds, so `-- --quick`
//! measures the same, and so does `cargo test --benches`.

mod common;

use std::alloc::System;
use std::time::Duration;

use common::{
    PROBE_VAR, Ready, Summary, Target, build_idle, fmt_duration, get, idle_spec, memory_now, on_worker, probe, runtime,
    spawn_raw, task_name,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use supervisor::{Context, DEFAULT_TASK_STOP_TIMEOUT, ShutdownOrder, Supervisor, SupervisorHandle, TaskSpec};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOC: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Idle tasks in the per-task figures and units added at once.
const UNITS: usize = 10_000;
/// Add/remove cycles.
const CYCLES: usize = 10_000;

fn main() {
    if let Ok(probe) = std::env::var(PROBE_VAR) {
        println!("{}", run_probe(&probe));
        return;
    }
    if std::env::args().any(|arg| arg == "--list") {
        // There is no criterion benchmark to list. Every other mode,
        // `cargo test --benches` included, runs the probes: they take a
        // second or two, and so the tests show that they still work.
        return;
    }
    let mut summary = Summary::new("Summary (memory, supervisor vs raw tokio, each probe in a fresh process)");
    let raw = probe("memory-raw");
    let supervised = probe("memory-supervised");
    idle_task_rows(&mut summary, &raw, &supervised);
    add_remove_rows(&mut summary, &probe("add-remove-memory"));
    summary.print();
}

fn run_probe(name: &str) -> String {
    let rt = runtime();
    match name {
        "memory-raw" => idle_task_probe(&rt, false),
        "memory-supervised" => idle_task_probe(&rt, true),
        "add-remove-memory" => on_worker(&rt, add_remove_probe()),
        _ => panic!("unknown probe {name}"),
    }
}

// ---------------------------------------------------------------------------
// 1. Memory per idle task

fn idle_task_probe(rt: &Runtime, supervised: bool) -> String {
    // Warm the runtime up: its first spawns allocate lazily.
    on_worker(rt, async { tokio::spawn(async {}).await.expect("no panic") });
    let figures = on_worker(rt, async move {
        let ready = Ready::new(UNITS);
        let before = memory_now();
        let mut registered = before;
        let keep: Box<dyn std::any::Any + Send> = if supervised {
            let sup = build_idle(UNITS, &ready, ShutdownOrder::Sequential);
            registered = memory_now();
            Box::new(sup.start())
        } else {
            Box::new(spawn_raw(UNITS, &ready))
        };
        ready.wait().await;
        let after = memory_now();
        drop(keep);
        (before, registered, after)
    });
    let (before, registered, after) = figures;
    let per = |index: usize, to: [f64; 3]| (to[index] - before[index]) / UNITS as f64;
    format!(
        "live_bytes={:.1} live_blocks={:.2} rss_bytes={:.1} registered_live_bytes={:.1}",
        per(0, after),
        per(1, after),
        per(2, after),
        per(0, registered)
    )
}

fn idle_task_rows(summary: &mut Summary, raw: &[(String, f64)], sup: &[(String, f64)]) {
    let sides = |key: &str| (get(sup, key), get(raw, key));
    let (sup_live, raw_live) = sides("live_bytes");
    bytes_per_task_row(summary, "memory per idle task, live heap bytes", sup_live, raw_live);
    let (sup_blocks, raw_blocks) = sides("live_blocks");
    summary.ratio(
        "memory per idle task, heap blocks",
        format!("{sup_blocks:.1}"),
        format!("{raw_blocks:.1}"),
        sup_blocks / raw_blocks,
        Target::NONE,
        true,
    );
    let (sup_rss, raw_rss) = sides("rss_bytes");
    bytes_per_task_row(summary, "memory per idle task, RSS growth", sup_rss, raw_rss);
    summary.absolute(
        "  of which registered before start() (live bytes)",
        format!("{:.0} B", get(sup, "registered_live_bytes")),
        Target::NONE,
        true,
    );
}

/// A row of bytes per idle task, held to at most 1 KiB and at most twice
/// raw tokio's.
fn bytes_per_task_row(summary: &mut Summary, figure: &str, supervised: f64, raw: f64) {
    summary.ratio(
        figure,
        format!("{supervised:.0} B"),
        format!("{raw:.0} B"),
        supervised / raw,
        Target::text("<= 1 KiB and <= 2x raw"),
        supervised <= 1024.0 && supervised <= 2.0 * raw,
    );
}

// ---------------------------------------------------------------------------
// 2. Memory left after add/remove cycles

/// A stop timeout short enough to wait out, so that the figure after the
/// timers fired does not depend on each grace period's timer being removed
/// when its stop completes.
const SHORT_STOP: Duration = Duration::from_millis(100);

/// `cycles` times: add a unit, remove it.
async fn supervised_cycles(handle: &SupervisorHandle, cycles: usize, stop_timeout: Duration) {
    for index in 0..cycles {
        let name = task_name(index);
        let spec = TaskSpec::new(name.clone(), |ctx: Context| async move { ctx.cancelled().await });
        handle.add(spec.stop_timeout(stop_timeout)).await.expect("a new unit");
        handle.remove(&name).await.expect("a known unit");
    }
}

/// Until the stop timers armed so far with `SHORT_STOP` have fired.
async fn timers_fired() {
    tokio::time::sleep(SHORT_STOP * 3).await;
}

/// `cycles` times: spawn a task, cancel it, join it.
async fn raw_cycles(cycles: usize) {
    for _ in 0..cycles {
        let token = CancellationToken::new();
        let stop = token.clone();
        let task = tokio::spawn(async move { stop.cancelled().await });
        token.cancel();
        task.await.expect("no panic");
    }
}

/// Live heap bytes and blocks from `before` to now.
fn left_since(before: [f64; 3]) -> (f64, f64) {
    let now = memory_now();
    (now[0] - before[0], now[1] - before[1])
}

async fn add_remove_probe() -> String {
    // Warm-ups: the runtime's and the supervisor's first allocations.
    raw_cycles(1_000).await;
    let before = memory_now();
    raw_cycles(CYCLES).await;
    let (raw_bytes, raw_blocks) = left_since(before);

    let handle = Supervisor::builder().build().expect("an empty supervisor").start();
    supervised_cycles(&handle, 1_000, SHORT_STOP).await;
    timers_fired().await;

    let before = memory_now();
    supervised_cycles(&handle, CYCLES, SHORT_STOP).await;
    timers_fired().await;
    let (cycles_bytes, cycles_blocks) = left_since(before);

    // 10k at once, then all removed: what the tables keep.
    let ready = Ready::new(UNITS);
    let before = memory_now();
    let names: Vec<_> = (0..UNITS).map(task_name).collect();
    for name in &names {
        handle.add(idle_spec(name.clone(), &ready).stop_timeout(SHORT_STOP)).await.expect("a new unit");
    }
    ready.wait().await;
    for name in &names {
        handle.remove(name).await.expect("a known unit");
    }
    drop(names);
    timers_fired().await;
    let (batch_bytes, batch_blocks) = left_since(before);

    // The default stop timeout, measured at once: the timers still hold
    // the units.
    let before = memory_now();
    supervised_cycles(&handle, CYCLES, DEFAULT_TASK_STOP_TIMEOUT).await;
    let (held_bytes, held_blocks) = left_since(before);
    handle.shutdown().await;
    format!(
        "raw_bytes={raw_bytes} raw_blocks={raw_blocks} cycles_bytes={cycles_bytes} cycles_blocks={cycles_blocks} \
         batch_bytes={batch_bytes} batch_blocks={batch_blocks} held_bytes={held_bytes} held_blocks={held_blocks}"
    )
}

fn add_remove_rows(summary: &mut Summary, figures: &[(String, f64)]) {
    let row = |bytes: &str, blocks: &str| {
        let (bytes, blocks) = (get(figures, bytes), get(figures, blocks));
        (bytes, format!("{bytes:.0} B ({blocks:.0} blocks)"))
    };
    let (_, raw) = row("raw_bytes", "raw_blocks");
    let (cycles, cycles_text) = row("cycles_bytes", "cycles_blocks");
    // Anything kept per cycle would be at least 8 bytes, 80 KB in all.
    summary.ratio(
        "live heap left after 10k add/remove cycles (stop timers fired) / spawn, cancel + join",
        cycles_text,
        raw,
        f64::NAN,
        Target::text("same within noise (< 1 B per cycle)"),
        cycles.abs() / CYCLES as f64 <= 1.0,
    );
    let (_, batch) = row("batch_bytes", "batch_blocks");
    summary.absolute("  after 10k units added at once, then all removed", batch, Target::NONE, true);
    let (held, held_text) = row("held_bytes", "held_blocks");
    summary.absolute(
        &format!(
            "  right after 10k cycles, default {} stop timeout: held until the timers fire ({:.0} B per cycle)",
            fmt_duration(DEFAULT_TASK_STOP_TIMEOUT),
            held / CYCLES as f64
        ),
        held_text,
        Target::NONE,
        true,
    );
}
