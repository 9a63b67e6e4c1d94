//! Seeded fuzzing of the tree on a real multi-thread runtime (2 to 4
//! workers, the real clock): several callers on several workers call the
//! handle at once on the same units and groups (`restart`, `stop_unit`,
//! `start_unit`, `remove`, `add` of a name just removed, `pause_restarts`,
//! `resume_restarts`, the waits; bursts of them from tasks of their own;
//! calls their callers give up on), while units fail, panic and end by
//! themselves, miss their watchdog, flap their readiness probe or ignore
//! their stop until aborted, strategies regroup siblings, groups give up by
//! intensity, critical units end their groups, grace periods are cut short
//! and a shutdown comes at a random moment. Whatever the interleaving:
//! - every call is answered in time, with success or an allowed error, and
//!   every wait's answer is true of the status it returns;
//! - no code of the supervisor panics (a panic hook records them);
//! - once the storm is over and the units calm down, the statuses settle
//!   and agree (nothing starting or stopping for ever, no run in a group
//!   at rest, a waiting unit waits for a dependency that is not ready),
//!   and every unit can be started again and becomes ready;
//! - the shutdown reports each unit once, no run outlives it, and each
//!   unit's events tell one story.
//!
//! Each seed fixes the tree and the callers' choices, not the interleaving.
//! `HOSTILE_CONCURRENCY_ITERATIONS` runs more seeds (for local hunting);
//! `HOSTILE_CONCURRENCY_SEED` runs one.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

#[path = "support/calls.rs"]
mod calls;
#[path = "support/live.rs"]
mod live;

use calls::{ANSWER_WITHIN, answered};
use live::Live;
use supervisor::{
    Context, Error, Event, EventKind, GroupSpec, MaxRestarts, Probe, Readiness, RestartOn, RestartPolicy,
    ShutdownReport, Spec, Strategy, Supervisor, SupervisorHandle, TaskSpec, UnitState, UnitStatus,
};

/// Seeds run by default: enough to shake the machinery in a few seconds.
const DEFAULT_ITERATIONS: u64 = 12;
/// What a seed may take in all, in real time, before it is taken for hung
/// (a deadlock on a lock, which no tokio timeout sees).
const HARD_DEADLINE: Duration = Duration::from_secs(120);
/// The name of the runtime's threads: the panic hook looks at these only.
const THREAD: &str = "hostile-concurrency";
/// In the message of every panic a unit makes on purpose.
const ON_PURPOSE: &str = "a unit panics on purpose";

// ---------------------------------------------------------------------------
// Panics of the supervisor's own code

/// Panics seen on the runtime's threads that no unit made on purpose.
fn unexpected_panics() -> &'static Mutex<Vec<String>> {
    static PANICS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let on_runtime = std::thread::current().name().is_some_and(|name| name.starts_with(THREAD));
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if on_runtime && !payload.contains(ON_PURPOSE) {
                let at = info.location().map(ToString::to_string).unwrap_or_default();
                unexpected_panics().lock().unwrap().push(format!("{payload} at {at}"));
            }
            if !(on_runtime && payload.contains(ON_PURPOSE)) {
                previous(info);
            }
        }));
    });
    PANICS.get_or_init(Mutex::default)
}

// ---------------------------------------------------------------------------
// Units

/// What the units share: their live runs, and whether they may still fail.
#[derive(Clone, Default)]
struct World {
    live: Live,
    /// Once set, no run fails, panics or ends by itself any more.
    calm: Arc<AtomicBool>,
}

#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// Runs until asked to stop.
    Idle,
    /// Fails after a few milliseconds.
    Crashy,
    /// Panics after a few milliseconds.
    Panicky,
    /// Ready (`Notified`) a moment after it starts.
    ReadyLater,
    /// Takes a while to stop once asked.
    SlowToStop,
    /// Ends well after a while, and is not restarted then.
    Ender,
    /// Fails at once, or after a yield.
    Flash,
    /// Ignores its stop: only its stop timeout ends it (it is aborted).
    Stubborn,
    /// Misses its watchdog now and then.
    Forgetful,
    /// Ready while its readiness probe, which flaps, passes.
    Flapping,
}

const BEHAVIOURS: [Behaviour; 10] = [
    Behaviour::Idle,
    Behaviour::Crashy,
    Behaviour::Panicky,
    Behaviour::ReadyLater,
    Behaviour::SlowToStop,
    Behaviour::Ender,
    Behaviour::Flash,
    Behaviour::Stubborn,
    Behaviour::Forgetful,
    Behaviour::Flapping,
];

fn quick_restarts() -> RestartPolicy {
    RestartPolicy::new().delay(Duration::from_millis(1)).max_restarts(MaxRestarts::Unlimited)
}

/// Sleeps `ms`, unless the run is asked to stop first: `true` if it slept.
async fn lasts(ctx: &Context, ms: u64) -> bool {
    tokio::select! {
        () = tokio::time::sleep(Duration::from_millis(ms)) => true,
        () = ctx.cancelled() => false,
    }
}

fn task(name: &str, behaviour: Behaviour, world: &World) -> TaskSpec {
    let calm_for_probe = world.calm.clone();
    let world = world.clone();
    let spec = TaskSpec::new(name, move |ctx: Context| {
        let alive = world.live.enter();
        let calm = world.calm.clone();
        async move {
            let _alive = alive;
            let ms = 2 + u64::from(ctx.restart_count() % 5);
            match behaviour {
                Behaviour::Flash if !calm.load(Ordering::SeqCst) => {
                    if ctx.restart_count() % 2 == 1 {
                        tokio::task::yield_now().await;
                    }
                    return Err("flashed");
                }
                Behaviour::Crashy | Behaviour::Panicky | Behaviour::Ender
                    if !calm.load(Ordering::SeqCst) && lasts(&ctx, ms).await && !calm.load(Ordering::SeqCst) =>
                {
                    match behaviour {
                        Behaviour::Crashy => return Err("crashed"),
                        Behaviour::Panicky => panic!("{ON_PURPOSE}"),
                        _ => return Ok(()),
                    }
                }
                Behaviour::ReadyLater if lasts(&ctx, ms).await => ctx.ready(),
                Behaviour::Stubborn => {
                    ctx.cancelled().await;
                    std::future::pending::<()>().await;
                }
                Behaviour::Forgetful => {
                    for beat in 0u32.. {
                        ctx.heartbeat();
                        let calm = calm.load(Ordering::SeqCst);
                        let pause = if beat % 5 == 4 && !calm { 30 } else { 2 };
                        if !lasts(&ctx, pause).await {
                            break;
                        }
                    }
                }
                Behaviour::SlowToStop => {
                    ctx.cancelled().await;
                    tokio::time::sleep(Duration::from_millis(ms * 3)).await;
                    return Ok(());
                }
                _ => {}
            }
            ctx.cancelled().await;
            Ok::<(), &str>(())
        }
    });
    match behaviour {
        Behaviour::ReadyLater => spec.readiness(Readiness::Notified).restart(quick_restarts()),
        Behaviour::Stubborn => spec.stop_timeout(Duration::from_millis(5)).restart(quick_restarts()),
        Behaviour::Forgetful => spec.watchdog(Duration::from_millis(15)).restart(quick_restarts()),
        Behaviour::Flapping => {
            let (calm, flips) = (calm_for_probe, Arc::new(AtomicU32::new(0)));
            let probe = Probe::check(move || {
                let passes = calm.load(Ordering::SeqCst) || flips.fetch_add(1, Ordering::SeqCst) % 3 != 2;
                async move { if passes { Ok(()) } else { Err("flapped") } }
            })
            .period(Duration::from_millis(3))
            .timeout(Duration::from_millis(100))
            .failure_threshold(1);
            spec.readiness(Readiness::Probe(probe)).restart(quick_restarts())
        }
        Behaviour::SlowToStop => spec.stop_timeout(Duration::from_millis(10)).restart(quick_restarts()),
        Behaviour::Ender => spec.restart(quick_restarts().on(RestartOn::Failure)),
        _ => spec.restart(quick_restarts()),
    }
}

// ---------------------------------------------------------------------------
// The tree

/// A unit of the blueprint, registered or added at run time.
#[derive(Clone, Debug)]
enum Shape {
    Task { behaviour: Behaviour, critical: bool },
    Group(Box<GroupShape>),
}

#[derive(Clone, Debug)]
struct GroupShape {
    strategy: Strategy,
    intensity: Option<(u32, Duration)>,
    critical: bool,
    /// In registration order; a unit may depend on the one before it.
    units: Vec<(String, Shape, Vec<String>)>,
}

/// The names added at run time in each group, again and again.
const ADDED: [&str; 3] = ["d0", "d1", "d2"];

/// What an added unit depends on: a function of its name alone, so that
/// the checks know it whoever added it last.
fn added_depends_on(name: &str) -> Vec<String> {
    match name {
        "d0" => vec!["u0".to_owned()],
        "d2" => vec!["d1".to_owned()],
        _ => Vec::new(),
    }
}

fn strategy(rng: &mut fastrand::Rng) -> Strategy {
    [Strategy::OneForOne, Strategy::OneForAll, Strategy::RestForOne][rng.usize(..3)]
}

fn group_shape(rng: &mut fastrand::Rng, depth: u32) -> GroupShape {
    let mut units = Vec::new();
    for at in 0..rng.usize(2..5) {
        let behaviour = BEHAVIOURS[rng.usize(..BEHAVIOURS.len())];
        // A critical unit that ends ends its group: now and then.
        let critical = matches!(behaviour, Behaviour::Ender | Behaviour::Crashy) && rng.u8(..6) == 0;
        let depends_on = if at > 0 && rng.bool() { vec![format!("u{}", at - 1)] } else { Vec::new() };
        units.push((format!("u{at}"), Shape::Task { behaviour, critical }, depends_on));
    }
    if depth < 2 {
        for at in 0..rng.usize(..3) {
            let depends_on = if rng.u8(..3) == 0 { vec!["u0".to_owned()] } else { Vec::new() };
            units.push((format!("g{at}"), Shape::Group(Box::new(group_shape(rng, depth + 1))), depends_on));
        }
    }
    GroupShape {
        strategy: strategy(rng),
        // Groups that give up now and then, restarted by their parent.
        intensity: rng.bool().then(|| (rng.u32(2..6), Duration::from_millis(rng.u64(20..80)))),
        critical: depth > 0 && rng.u8(..8) == 0,
        units,
    }
}

fn spec_of(name: &str, shape: &Shape, depends_on: &[String], world: &World) -> Spec {
    match shape {
        Shape::Task { behaviour, critical } => {
            let spec = task(name, *behaviour, world).depends_on(depends_on.to_vec());
            if *critical { spec.critical().into() } else { spec.into() }
        }
        Shape::Group(group) => {
            let mut spec =
                GroupSpec::new(name).strategy(group.strategy).restart(quick_restarts()).depends_on(depends_on.to_vec());
            if let Some((max, period)) = group.intensity {
                spec = spec.intensity(max, period);
            }
            if group.critical {
                spec = spec.critical();
            }
            for (name, shape, depends_on) in &group.units {
                spec = match spec_of(name, shape, depends_on, world) {
                    Spec::Task(task) => spec.task(task),
                    Spec::Group(group) => spec.group(group),
                    other => panic!("no daemon in this tree: {other:?}"),
                };
            }
            spec.into()
        }
    }
}

/// The registered tree: each unit's shape and dependencies by path, and
/// the paths of its groups.
struct Blueprint {
    units: HashMap<String, (Shape, Vec<String>)>,
    groups: Vec<String>,
}

impl Blueprint {
    fn new(root: &GroupShape) -> Blueprint {
        fn walk(prefix: &str, group: &GroupShape, blueprint: &mut Blueprint) {
            for (name, shape, depends_on) in &group.units {
                let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
                blueprint.units.insert(path.clone(), (shape.clone(), depends_on.clone()));
                if let Shape::Group(inner) = shape {
                    blueprint.groups.push(path.clone());
                    walk(&path, inner, blueprint);
                }
            }
        }
        let mut blueprint = Blueprint { units: HashMap::new(), groups: vec![String::new()] };
        walk("", root, &mut blueprint);
        blueprint
    }

    /// The paths of the registered units and of the names added at run time.
    fn paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = self.units.keys().cloned().collect();
        for group in &self.groups {
            paths.extend(ADDED.iter().map(|name| join(group, name)));
        }
        paths.sort();
        paths
    }

    /// What the unit at `path` depends on (paths), as the blueprint or its
    /// name says.
    fn depends_on(&self, path: &str) -> Vec<String> {
        let (group, name) = path.rsplit_once('/').unwrap_or(("", path));
        let names = match self.units.get(path) {
            Some((_, depends_on)) => depends_on.clone(),
            None => added_depends_on(name),
        };
        names.iter().map(|name| join(group, name)).collect()
    }
}

fn join(group: &str, name: &str) -> String {
    if group.is_empty() { name.to_owned() } else { format!("{group}/{name}") }
}

// ---------------------------------------------------------------------------
// The callers

/// The errors a call may meet while others change the tree under it.
fn expected(error: &Error) -> bool {
    matches!(
        error,
        Error::UnknownUnit { .. }
            | Error::UnknownDependency { .. }
            | Error::DuplicateName { .. }
            | Error::GroupNotRunning { .. }
            | Error::HasDependents { .. }
            | Error::ShuttingDown { .. }
            | Error::WrongKind { .. }
            | Error::NotRunning { .. }
    )
}

/// A wait's answer: the status it returns must be what it waited for, and
/// an error one a wait may give.
fn wait_answered(
    what: &str,
    result: Result<UnitStatus, Error>,
    met: impl Fn(&UnitStatus) -> bool,
) -> Result<(), String> {
    match result {
        Ok(status) if !met(&status) => {
            Err(format!("{what} returned a status that is not what it waited for: {status:?}"))
        }
        Err(error) if !matches!(error, Error::UnknownUnit { .. } | Error::WillNotHappen { .. }) => {
            Err(format!("{what}: unexpected error {error}"))
        }
        _ => Ok(()),
    }
}

/// A spec for the unit at `path`, as registered, or for a name added at
/// run time, of a kind `rng` picks.
fn spec_for(path: &str, blueprint: &Blueprint, world: &World, rng: &mut fastrand::Rng) -> Spec {
    let name = path.rsplit_once('/').map_or(path, |(_, name)| name);
    match blueprint.units.get(path) {
        Some((shape, depends_on)) => spec_of(name, shape, depends_on, world),
        None => {
            let shape = if rng.u8(..5) == 0 {
                Shape::Group(Box::new(GroupShape {
                    strategy: strategy(rng),
                    intensity: None,
                    critical: false,
                    units: vec![
                        ("u0".to_owned(), Shape::Task { behaviour: Behaviour::Idle, critical: false }, Vec::new()),
                        ("u1".to_owned(), Shape::Task { behaviour: Behaviour::Crashy, critical: false }, Vec::new()),
                    ],
                }))
            } else {
                let behaviour = BEHAVIOURS[rng.usize(..BEHAVIOURS.len())];
                Shape::Task { behaviour, critical: false }
            };
            spec_of(name, &shape, &added_depends_on(name), world)
        }
    }
}

async fn add_at(handle: &SupervisorHandle, path: &str, spec: Spec) -> Result<(), Error> {
    match path.rsplit_once('/') {
        Some((group, _)) => handle.add_to(group, spec).await,
        None => handle.add(spec).await,
    }
}

/// One caller: `calls` calls chosen by the generator seeded `seed`.
async fn caller(
    handle: SupervisorHandle,
    blueprint: Arc<Blueprint>,
    world: World,
    seed: u64,
    calls: usize,
) -> Result<(), String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let paths = blueprint.paths();
    // The paths most calls go to: the same few for every caller of the seed.
    let mut hot_rng = fastrand::Rng::with_seed(seed / 100);
    let hot: Vec<&str> = (0..3).map(|_| paths[hot_rng.usize(..paths.len())].as_str()).collect();
    for call in 0..calls {
        // A wait's answer that is wrong, told after the call.
        let mut wrong = Ok(());
        let path = if rng.bool() { hot[rng.usize(..hot.len())] } else { paths[rng.usize(..paths.len())].as_str() };
        let what = rng.u8(..12);
        // Given up at once or soon: the call goes on, or not, without its caller.
        let given_up = (rng.u8(..8) == 0).then(|| Duration::from_micros(rng.u64(..2000)));
        let outcome = async {
            match what {
                0 => handle.stop_unit(path).await,
                1 => handle.start_unit(path).await,
                2 | 3 => handle.restart(path).await,
                4 => handle.pause_restarts(path).await,
                5 => handle.resume_restarts(path).await,
                6 => add_at(&handle, path, spec_for(path, &blueprint, &world, &mut rng)).await,
                7 => {
                    // Removed, then at once added again under its name.
                    let removed = handle.remove(path).await.map(drop);
                    if removed.is_ok() && rng.bool() {
                        add_at(&handle, path, spec_for(path, &blueprint, &world, &mut rng)).await
                    } else {
                        removed
                    }
                }
                8 => {
                    let wait = handle.wait_ready(path);
                    if let Ok(result) = tokio::time::timeout(Duration::from_millis(rng.u64(1..10)), wait).await {
                        wrong = wait_answered("wait_ready", result, |status| status.ready);
                    }
                    Ok(())
                }
                9 => {
                    let state = [UnitState::Running, UnitState::Stopped, UnitState::Waiting][rng.usize(..3)];
                    let wait = handle.wait_state(path, state);
                    if let Ok(result) = tokio::time::timeout(Duration::from_millis(rng.u64(1..10)), wait).await {
                        wrong = wait_answered("wait_state", result, |status| status.state == state);
                    }
                    Ok(())
                }
                10 if rng.bool() => {
                    tokio::time::sleep(Duration::from_millis(rng.u64(..3))).await;
                    Ok(())
                }
                10 => {
                    // A burst on one unit, each call from a task of its own,
                    // so that they reach its group's owner at the same
                    // moment from several workers.
                    let burst: Vec<_> = (0..rng.usize(2..6))
                        .map(|_| {
                            let (handle, path, op) = (handle.clone(), path.to_owned(), rng.u8(..4));
                            tokio::spawn(async move {
                                match op {
                                    0 => handle.stop_unit(&path).await,
                                    1 => handle.start_unit(&path).await,
                                    2 => handle.restart(&path).await,
                                    _ => handle.remove(&path).await.map(drop),
                                }
                            })
                        })
                        .collect();
                    for call in burst {
                        let answer = call.await.expect("no call panics");
                        if answer.as_ref().is_err_and(|error| !expected(error)) {
                            return answer;
                        }
                    }
                    Ok(())
                }
                _ => {
                    for status in handle.statuses() {
                        let runs = matches!(status.state, UnitState::Running | UnitState::Stopping);
                        assert_eq!(status.running, runs, "{status:?}");
                    }
                    Ok(())
                }
            }
        };
        let label = || format!("seed {seed}, call {call} ({what} on `{path}`)");
        if let Some(after) = given_up {
            let _ = tokio::time::timeout(after, outcome).await;
            continue;
        }
        answered(label, outcome, expected).await?;
        wrong.map_err(|wrong| format!("{}: {wrong}", label()))?;
    }
    Ok(())
}

/// Waits with no deadline of their own, most for what may never come: each
/// must end with the supervisor at the latest, with a true answer.
fn long_waits(
    handle: &SupervisorHandle,
    paths: &[String],
    rng: &mut fastrand::Rng,
) -> Vec<tokio::task::JoinHandle<Result<(), String>>> {
    paths
        .iter()
        .map(|path| {
            let (handle, path, what) = (handle.clone(), path.clone(), rng.u8(..4));
            tokio::spawn(async move {
                match what {
                    0 => wait_answered(&format!("wait_ready on `{path}`"), handle.wait_ready(&path).await, |status| {
                        status.ready
                    }),
                    1 => wait_answered(
                        &format!("wait_state on `{path}`"),
                        handle.wait_state(&path, UnitState::Failed).await,
                        |status| status.state == UnitState::Failed,
                    ),
                    2 => wait_answered(
                        &format!("wait_state on `{path}`"),
                        handle.wait_state(&path, UnitState::Exited).await,
                        |status| status.state == UnitState::Exited,
                    ),
                    _ => wait_answered(
                        &format!("wait_status on `{path}`"),
                        handle.wait_status(&path, |status| status.restart_count > 1_000_000).await,
                        |status| status.restart_count > 1_000_000,
                    ),
                }
            })
        })
        .collect()
}

/// What is wrong with a snapshot of the statuses of a calm tree, if
/// anything: a unit starting, stopping or waiting to restart (restarts are
/// all resumed), a run in a group at rest, a unit waiting though every
/// unit it depends on is ready.
fn unsettled(statuses: &[UnitStatus], blueprint: &Blueprint) -> Option<String> {
    let by_path: HashMap<&str, &UnitStatus> = statuses.iter().map(|status| (status.name.as_str(), status)).collect();
    for status in statuses {
        if matches!(status.state, UnitState::Starting | UnitState::Stopping | UnitState::Backoff) {
            return Some(format!("`{}` is {:?}", status.name, status.state));
        }
        if let Some((group, _)) = status.name.rsplit_once('/') {
            let group = by_path[group];
            if status.running && !group.running {
                return Some(format!("`{}` runs in a group that does not: {group:?}", status.name));
            }
        }
        if status.state == UnitState::Waiting {
            let depends_on = blueprint.depends_on(&status.name);
            let ready = |path: &String| by_path.get(path.as_str()).is_some_and(|dependency| dependency.ready);
            if depends_on.iter().all(ready) {
                return Some(format!("`{}` waits, though each of {depends_on:?} is ready", status.name));
            }
        }
    }
    None
}

/// Brings the tree to rest (its units calm, their restarts resumed), checks
/// that its statuses settle and agree, then starts every unit again and
/// waits for each to be ready.
async fn calm_down(handle: &SupervisorHandle, world: &World, blueprint: &Blueprint, seed: u64) {
    world.calm.store(true, Ordering::SeqCst);
    for path in handle.unit_names() {
        let resumed = handle.resume_restarts(&path).await;
        assert!(resumed.as_ref().err().is_none_or(expected), "seed {seed}: resume_restarts `{path}`: {resumed:?}");
    }
    let began = std::time::Instant::now();
    loop {
        let statuses = handle.statuses();
        let Some(problem) = unsettled(&statuses, blueprint) else { break };
        assert!(began.elapsed() < ANSWER_WITHIN, "seed {seed}: the calm tree never settled: {problem}\n{statuses:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Depth first, a group before its units: each starts in a running group.
    for path in handle.unit_names() {
        let started = tokio::time::timeout(ANSWER_WITHIN, handle.start_unit(&path)).await;
        // A unit of a group that waits for a dependency (or is in one that
        // does) starts with it.
        let group_waits = || {
            let mut above = path.as_str();
            while let Some((group, _)) = above.rsplit_once('/') {
                if handle.status(group).is_some_and(|group| group.state == UnitState::Waiting) {
                    return true;
                }
                above = group;
            }
            false
        };
        let group_not_running = matches!(started, Ok(Err(Error::GroupNotRunning { .. })));
        assert!(
            matches!(started, Ok(Ok(()))) || (group_not_running && group_waits()),
            "seed {seed}: start_unit `{path}`: {started:?}\n{:#?}",
            handle.statuses()
        );
    }
    for path in handle.unit_names() {
        let ready = tokio::time::timeout(ANSWER_WITHIN, handle.wait_ready(&path)).await;
        assert!(
            matches!(ready, Ok(Ok(_))),
            "seed {seed}: `{path}` is ready again: {ready:?}\n{:#?}",
            handle.statuses()
        );
    }
}

/// Checks each unit's events: nothing of a unit that is not there (before
/// its `Added`, after its `Removed`), a group's units added after it and
/// removed before it, a run started only once the one before has ended,
/// and no unit removed while a run of it runs.
fn check_events(log: &[Event], registered: &HashSet<String>, seed: u64) {
    #[derive(Default)]
    struct Seen {
        there: bool,
        runs: bool,
    }
    let mut seen: HashMap<&str, Seen> = HashMap::new();
    for path in registered {
        seen.insert(path, Seen { there: true, runs: false });
    }
    for (at, event) in log.iter().enumerate() {
        let path = event.unit.as_str();
        if path.is_empty() {
            continue;
        }
        let there = |seen: &HashMap<&str, Seen>, path: &str| seen.get(path).is_some_and(|unit| unit.there);
        let story = || format!("seed {seed}, event {at} of `{path}`: {:?}", event.kind);
        if let EventKind::Added = event.kind {
            assert!(!there(&seen, path), "{}: added while there", story());
            if let Some((group, _)) = path.rsplit_once('/') {
                assert!(there(&seen, group), "{}: added to a group that is not there", story());
            }
            seen.insert(path, Seen { there: true, runs: false });
            continue;
        }
        assert!(there(&seen, path), "{}: not there", story());
        if let EventKind::Removed = event.kind {
            let inside = format!("{path}/");
            let left: Vec<_> = seen
                .iter()
                .filter(|(unit, seen)| seen.there && unit.starts_with(&inside))
                .map(|(unit, _)| *unit)
                .collect();
            assert!(left.is_empty(), "{}: removed before its units {left:?}", story());
        }
        let unit = seen.get_mut(path).expect("there");
        match &event.kind {
            EventKind::Started { .. } => {
                assert!(!unit.runs, "{}: a run started while one was running", story());
                unit.runs = true;
            }
            EventKind::Exited { .. } | EventKind::Panicked { .. } | EventKind::Stopped { .. } => unit.runs = false,
            // Said of a run, while it runs: a word from a run that is over
            // is stale.
            EventKind::Ready | EventKind::NotReady { .. } => {
                assert!(unit.runs, "{}: no run is running", story());
            }
            // Said of a unit between runs.
            EventKind::Restarting { .. }
            | EventKind::Finished
            | EventKind::GaveUp { .. }
            | EventKind::Waiting { .. } => {
                assert!(!unit.runs, "{}: a run is running", story());
            }
            EventKind::Removed => {
                assert!(!unit.runs, "{}: removed while a run was running", story());
                unit.there = false;
            }
            _ => {}
        }
    }
}

/// Checks the report: each unit once, every unit there at the end in it.
fn check_report(report: &ShutdownReport, handle: &SupervisorHandle, seed: u64) {
    let mut names = HashSet::new();
    for line in &report.units {
        assert!(names.insert(line.name.as_str()), "seed {seed}: `{}` is reported twice: {report:#?}", line.name);
    }
    for path in handle.unit_names() {
        assert!(names.contains(path.as_str()), "seed {seed}: `{path}` is not in the report: {report:#?}");
    }
    for status in handle.statuses() {
        assert!(!status.running, "seed {seed}: nothing runs after the end: {status:?}");
    }
}

/// One seed: a tree, its storm, its end, and the checks.
async fn hunt(seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let world = World::default();
    let mut shape = group_shape(&mut rng, 0);
    shape.critical = false;
    // A root that gives up ends the supervisor in the middle of the storm:
    // now and then only, or few seeds would get to the calm.
    if rng.u8(..4) != 0 {
        shape.intensity = None;
    }
    let blueprint = Arc::new(Blueprint::new(&shape));
    let registered: HashSet<String> = blueprint.units.keys().cloned().collect();
    let mut builder = Supervisor::builder().strategy(shape.strategy).event_capacity(1 << 20);
    if rng.bool() {
        // Short enough that units still stopping are aborted.
        builder = builder.shutdown_timeout(Duration::from_millis(rng.u64(1..30)));
    }
    if let Some((max, period)) = shape.intensity {
        builder = builder.intensity(max, period);
    }
    for (name, unit, depends_on) in &shape.units {
        builder = match spec_of(name, unit, depends_on, &world) {
            Spec::Task(task) => builder.task(task),
            Spec::Group(group) => builder.group(group),
            other => panic!("no daemon in this tree: {other:?}"),
        };
    }
    let sup = builder.build().unwrap_or_else(|error| panic!("seed {seed}: {error}"));
    let mut events = sup.subscribe();
    let log = tokio::spawn(async move {
        let mut log = Vec::new();
        loop {
            match events.recv().await {
                Ok(event) => log.push(event),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Some(log),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return None,
            }
        }
    });
    let handle = sup.start();
    let paths = blueprint.paths();
    let waits = long_waits(&handle, &paths, &mut rng);
    let callers: Vec<_> = (0..rng.u64(3..10))
        .map(|at| {
            let calls = rng.usize(200..600);
            tokio::spawn(caller(handle.clone(), blueprint.clone(), world.clone(), seed * 100 + at, calls))
        })
        .collect();
    let midway = rng.bool().then(|| Duration::from_millis(rng.u64(..400)));
    if rng.u8(..4) == 0 {
        // Grace periods cut short at a random moment: the stops under way,
        // and every later one, are aborts.
        let (handle, after) = (handle.clone(), Duration::from_millis(rng.u64(..150)));
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            handle.skip_grace();
        });
    }
    let shutdown = midway.map(|after| {
        let handle = handle.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            tokio::time::timeout(ANSWER_WITHIN, handle.shutdown()).await
        })
    });
    for caller in callers {
        caller.await.expect("no caller panics").unwrap_or_else(|problem| panic!("{problem}"));
    }
    if shutdown.is_none() && !handle.is_shutting_down() {
        calm_down(&handle, &world, &blueprint, seed).await;
    }
    let report = match shutdown {
        Some(shutdown) => shutdown.await.expect("no panic").expect("the shutdown ends in time"),
        None => tokio::time::timeout(ANSWER_WITHIN, handle.shutdown()).await.expect("the shutdown ends in time"),
    };
    for wait in waits {
        let answer = tokio::time::timeout(ANSWER_WITHIN, wait).await;
        let answer = answer.unwrap_or_else(|_| panic!("seed {seed}: a wait outlived the supervisor"));
        answer.expect("no wait panics").unwrap_or_else(|wrong| panic!("seed {seed}: {wrong}"));
    }
    check_report(&report, &handle, seed);
    assert_eq!(world.live.count(), 0, "seed {seed}: every run's future was dropped by the end of the shutdown");
    drop(handle);
    if let Some(log) = tokio::time::timeout(ANSWER_WITHIN, log).await.expect("the event stream ends").expect("no panic")
    {
        check_events(&log, &registered, seed);
    }
}

/// Runs seed `seed` on a runtime of its own, on a thread of its own, under
/// [`HARD_DEADLINE`].
fn hunt_on_own_runtime(seed: u64) {
    let (done, finished) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2 + usize::try_from(seed % 3).unwrap())
            .thread_name(THREAD)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(hunt(seed));
        runtime.shutdown_timeout(ANSWER_WITHIN);
        let _ = done.send(());
    });
    match finished.recv_timeout(HARD_DEADLINE) {
        Ok(()) => thread.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = thread.join() {
                // Not every message names it.
                eprintln!("seed {seed} failed; HOSTILE_CONCURRENCY_SEED={seed} runs it alone");
                std::panic::resume_unwind(panic);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("seed {seed} did not finish within {HARD_DEADLINE:?}: a deadlock?")
        }
    }
    let panics = std::mem::take(&mut *unexpected_panics().lock().unwrap());
    assert!(panics.is_empty(), "seed {seed}: the supervisor panicked: {panics:#?}");
}

fn from_env(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|value| value.parse().unwrap_or_else(|_| panic!("{name}: not a number: {value}")))
}

#[test]
fn a_storm_of_concurrent_calls_on_a_multi_thread_runtime_keeps_the_tree_consistent() {
    unexpected_panics();
    if let Some(seed) = from_env("HOSTILE_CONCURRENCY_SEED") {
        hunt_on_own_runtime(seed);
        return;
    }
    let iterations = from_env("HOSTILE_CONCURRENCY_ITERATIONS").unwrap_or(DEFAULT_ITERATIONS);
    for seed in 1..=iterations {
        hunt_on_own_runtime(seed);
    }
}
