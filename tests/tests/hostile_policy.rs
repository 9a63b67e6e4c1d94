//! Restart policies, backoff, jitter, intensity windows and timeouts,
//! attacked with the numbers a careless or hostile user gives: zero and
//! `Duration::MAX` delays, factors at the edge of their range, caps below
//! the delay, limits of -1, 0 and `i64::MAX`, windows of a nanosecond and of
//! for ever, thousands of restarts, and the interplay of a unit's limit with
//! its group's intensity and a critical unit's ending.
//!
//! Policy timing runs on tokio's paused clock; every wait has a generous
//! deadline, so that a hang fails the test instead of hanging it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use supervisor::{
    Context, DaemonSpec, Error, Event, EventKind, ExitReason, GiveUpReason, GroupSpec, MaxRestarts, Probe, Readiness,
    RestartOn, RestartPolicy, ShutdownCause, StopOutcome, Strategy, Supervisor, TaskSpec, UnitState,
};
use tokio::sync::broadcast;

#[path = "support/fails_once.rs"]
mod fails_once;
use fails_once::fails_once_after;
use tokio::time::Instant;

#[path = "support/deadline.rs"]
mod deadline;
use deadline::{delay_near_the_clock_end, within};
#[path = "support/specs.rs"]
mod specs;
use specs::{always_fails, idle, no_delay};

const SEC: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);
/// On tokio's paused clock, which jumps to the next timer when all is idle:
/// far beyond every delay used here, and reached at once by a hang.
const DEADLINE: Duration = Duration::from_secs(86_400 * 3650);
const DAY: Duration = Duration::from_secs(86_400);

/// Succeeds at once, every run; counts its runs.
fn always_succeeds(name: &str, runs: &Arc<AtomicU32>) -> TaskSpec {
    let runs = runs.clone();
    TaskSpec::new(name, move |_ctx| {
        runs.fetch_add(1, Ordering::SeqCst);
        async { Ok::<(), String>(()) }
    })
}

/// Run `n` (from 0) lasts `length(n)` on the runtime's clock, then fails
/// (or ends on cancellation).
fn scripted(name: &str, runs: &Arc<AtomicU32>, length: impl Fn(u32) -> Duration + Send + Sync + 'static) -> TaskSpec {
    let runs = runs.clone();
    let length = Arc::new(length);
    TaskSpec::new(name, move |ctx: Context| {
        let run = runs.fetch_add(1, Ordering::SeqCst);
        let lasts = length(run);
        async move {
            tokio::select! {
                () = tokio::time::sleep(lasts) => Err::<(), String>(format!("run {run} failed")),
                () = ctx.cancelled() => Ok(()),
            }
        }
    })
}

/// Receives events until `done` accepts one; returns them all.
async fn events_until(events: &mut broadcast::Receiver<Event>, done: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        let event = events.recv().await.expect("no event lost");
        let last = done(&event);
        seen.push(event);
        if last {
            return seen;
        }
    }
}

/// Every event still queued.
fn drain(events: &mut broadcast::Receiver<Event>) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        match events.try_recv() {
            Ok(event) => seen.push(event),
            Err(broadcast::error::TryRecvError::Lagged(lost)) => panic!("{lost} events lost"),
            Err(_) => return seen,
        }
    }
}

/// What `pick` takes from each of `name`'s events, in order.
fn picked<T>(events: &[Event], name: &str, pick: impl Fn(&EventKind) -> Option<T>) -> Vec<T> {
    events.iter().filter(|event| event.unit == name).filter_map(|event| pick(&event.kind)).collect()
}

/// The delays of `name`'s `Restarting` events, in order.
fn delays_of(events: &[Event], name: &str) -> Vec<Duration> {
    picked(events, name, |kind| match kind {
        EventKind::Restarting { delay, .. } => Some(*delay),
        _ => None,
    })
}

/// The restart counts of `name`'s `Started` events, in order.
fn starts_of(events: &[Event], name: &str) -> Vec<u32> {
    picked(events, name, |kind| match kind {
        EventKind::Started { restart_count, .. } => Some(*restart_count),
        _ => None,
    })
}

fn gave_up_of(events: &[Event], name: &str) -> Vec<GiveUpReason> {
    picked(events, name, |kind| match kind {
        EventKind::GaveUp { reason } => Some(*reason),
        _ => None,
    })
}

fn is_gave_up(event: &Event, name: &str) -> bool {
    event.unit == name && matches!(event.kind, EventKind::GaveUp { .. })
}

fn line_of<'a>(report: &'a supervisor::ShutdownReport, name: &str) -> &'a supervisor::UnitReport {
    report.units.iter().find(|line| line.name == name).unwrap_or_else(|| panic!("no line for {name}\n{report}"))
}

/// The messages of a build error, one per problem.
fn problems(err: &Error) -> Vec<String> {
    err.problems().iter().map(ToString::to_string).collect()
}

fn build_err(builder: supervisor::SupervisorBuilder) -> Vec<String> {
    match builder.build() {
        Ok(_) => panic!("build() accepted it"),
        Err(err) => problems(&err),
    }
}

fn with_policy(policy: RestartPolicy) -> supervisor::SupervisorBuilder {
    Supervisor::builder().task(idle("w").restart(policy))
}

// ---------------------------------------------------------------------------
// What build() and add() refuse, and how they say it.
// ---------------------------------------------------------------------------

/// Every backoff factor below 1.0 or not finite is refused, naming the unit,
/// the setting and a right value; the factors at the edge of the range are
/// accepted.
#[test]
fn backoff_factors_out_of_range_are_refused_with_the_setting_named() {
    for factor in [0.999_999, 0.0, -0.0, -1.0, -2.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MIN] {
        let msgs = build_err(with_policy(RestartPolicy::new().backoff(factor)));
        assert_eq!(msgs.len(), 1, "{factor}: {msgs:?}");
        let msg = &msgs[0];
        assert!(
            msg.contains("backoff") && msg.contains("`w`") && msg.contains("at least 1.0") && msg.contains("2.0"),
            "{factor}: {msg}"
        );
    }
    for factor in [1.0, 1.000_000_1, 2.0, 1e300, f64::MAX] {
        assert!(with_policy(RestartPolicy::new().backoff(factor)).build().is_ok(), "{factor}");
    }
}

/// Jitter outside 0.0..=1.0, or not a number, is refused; 0.0, -0.0 and 1.0
/// are accepted.
#[test]
fn jitter_out_of_range_is_refused_with_the_setting_named() {
    for fraction in [-0.000_001, -1.0, 1.000_000_1, 2.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let msgs = build_err(with_policy(RestartPolicy::new().jitter(fraction)));
        assert_eq!(msgs.len(), 1, "{fraction}: {msgs:?}");
        assert!(msgs[0].contains("jitter") && msgs[0].contains("`w`") && msgs[0].contains("0.0 and 1.0"), "{msgs:?}");
    }
    for fraction in [0.0, -0.0, f64::MIN_POSITIVE, 0.5, 1.0] {
        assert!(with_policy(RestartPolicy::new().jitter(fraction)).build().is_ok(), "{fraction}");
    }
}

/// Zero periods and a zero group intensity are refused wherever they are:
/// a unit's window, a nested group's intensity, the root's intensity, a
/// group's own policy; all in one error.
#[test]
fn zero_periods_and_zero_intensity_are_refused_everywhere_at_once() {
    let group = GroupSpec::new("g")
        .intensity(0, Duration::ZERO)
        .restart(RestartPolicy::new().backoff(0.5))
        .task(idle("a").restart(RestartPolicy::new().window(3, Duration::ZERO)));
    let msgs = build_err(Supervisor::builder().intensity(0, Duration::from_secs(30)).group(group));
    assert_eq!(msgs.len(), 5, "{msgs:#?}");
    let has = |needle: &[&str]| msgs.iter().any(|msg| needle.iter().all(|part| msg.contains(part)));
    assert!(has(&["backoff", "`g`"]), "{msgs:#?}");
    assert!(has(&["intensity", "`g`", "at least 1"]), "{msgs:#?}");
    assert!(has(&["intensity", "`g`", "longer than zero"]), "{msgs:#?}");
    assert!(has(&["window", "`g/a`", "longer than zero"]), "{msgs:#?}");
    assert!(has(&["intensity", "root", "at least 1"]), "{msgs:#?}");
}

/// The extremes that are valid build without complaint.
#[test]
fn extreme_but_valid_numbers_build() {
    let policies = [
        RestartPolicy::new().delay(Duration::MAX),
        RestartPolicy::new().delay(Duration::ZERO).backoff(f64::MAX).jitter(1.0),
        RestartPolicy::new().delay(SEC).max_delay(Duration::ZERO),
        RestartPolicy::new().delay(Duration::MAX).max_delay(Duration::MAX).backoff(f64::MAX),
        RestartPolicy::new().reset_after(Duration::ZERO),
        RestartPolicy::new().reset_after(Duration::MAX),
        RestartPolicy::new().window(0, Duration::from_nanos(1)),
        RestartPolicy::new().window(u32::MAX, Duration::MAX),
        RestartPolicy::new().max_restarts(i64::MAX),
        RestartPolicy::new().max_restarts(i64::MIN),
        RestartPolicy::new().max_restarts(0),
    ];
    for policy in policies {
        let shown = format!("{policy:?}");
        assert!(with_policy(policy).build().is_ok(), "{shown}");
    }
    let group = GroupSpec::new("g").intensity(u32::MAX, Duration::from_nanos(1)).task(idle("a"));
    let other = GroupSpec::new("h").intensity(1, Duration::MAX).task(idle("a"));
    let builder = Supervisor::builder()
        .intensity(u32::MAX, Duration::MAX)
        .shutdown_timeout(Duration::MAX)
        .group(group)
        .group(other)
        .task(idle("zero").stop_timeout(Duration::ZERO))
        .task(idle("max").stop_timeout(Duration::MAX));
    assert!(builder.build().is_ok());
    assert!(Supervisor::builder().shutdown_timeout(Duration::ZERO).task(idle("a")).build().is_ok());
}

/// The integer convention of `max`: every negative number is unlimited,
/// every non-negative one saturates at `u32::MAX`.
#[test]
fn max_restarts_from_integers_at_their_extremes() {
    let limit = |max: i64| RestartPolicy::new().max_restarts(max).restart_limit();
    assert_eq!(limit(-1), MaxRestarts::Unlimited);
    assert_eq!(limit(i64::MIN), MaxRestarts::Unlimited);
    assert_eq!(limit(0), MaxRestarts::AtMost(0));
    assert_eq!(limit(i64::from(u32::MAX)), MaxRestarts::AtMost(u32::MAX));
    assert_eq!(limit(i64::from(u32::MAX) + 1), MaxRestarts::AtMost(u32::MAX));
    assert_eq!(limit(i64::MAX), MaxRestarts::AtMost(u32::MAX));
    assert_eq!(RestartPolicy::new().max_restarts(i32::MIN).restart_limit(), MaxRestarts::Unlimited);
    assert!(MaxRestarts::AtMost(u32::MAX).allows(u32::MAX - 1));
    assert!(!MaxRestarts::AtMost(u32::MAX).allows(u32::MAX));
}

/// `add` and `add_to` check a policy as `build()` does: the same error, and
/// nothing added.
#[tokio::test(start_paused = true)]
async fn add_refuses_a_bad_policy_and_adds_nothing() {
    let handle = Supervisor::builder().group(GroupSpec::new("g").task(idle("a"))).build().unwrap().start();
    let err =
        within(DEADLINE, "add", handle.add(idle("x").restart(RestartPolicy::new().jitter(-0.5)))).await.unwrap_err();
    assert!(matches!(&err, Error::InvalidSetting { unit, setting: "jitter", .. } if unit == "x"), "{err}");
    let bad = GroupSpec::new("n").intensity(0, SEC).task(idle("y").restart(RestartPolicy::new().backoff(f64::NAN)));
    let err = within(DEADLINE, "add_to", handle.add_to("g", bad)).await.unwrap_err();
    let msgs = problems(&err);
    assert!(msgs.iter().any(|msg| msg.contains("intensity") && msg.contains("`g/n`")), "{msgs:?}");
    assert!(msgs.iter().any(|msg| msg.contains("backoff") && msg.contains("`g/n/y`")), "{msgs:?}");
    assert_eq!(handle.unit_names(), ["g", "g/a"]);
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert!(report.is_clean(), "{report}");
}

// ---------------------------------------------------------------------------
// Extreme delays at run time.
// ---------------------------------------------------------------------------

/// A delay of `Duration::MAX` is "never, until asked": the unit waits in
/// `Backoff` (through a thousand days), the event says so, and a stop, a
/// start and the shutdown all go through it.
#[tokio::test(start_paused = true)]
async fn a_duration_max_delay_waits_for_ever_and_is_cut_short_on_request() {
    let runs = Arc::new(AtomicU32::new(0));
    let sup = Supervisor::builder()
        .task(always_fails("never", &runs).restart(RestartPolicy::new().delay(Duration::MAX)))
        .task(
            always_fails("never-tuned", &runs)
                .restart(RestartPolicy::new().delay(Duration::MAX).backoff(f64::MAX).jitter(1.0)),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "backoff", handle.wait_state("never", UnitState::Backoff)).await.unwrap();
    within(DEADLINE, "backoff", handle.wait_state("never-tuned", UnitState::Backoff)).await.unwrap();
    tokio::time::sleep(1000 * DAY).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2, "neither ran again");
    for name in ["never", "never-tuned"] {
        let status = handle.status(name).unwrap();
        assert_eq!((status.state, status.restart_count), (UnitState::Backoff, 0), "{name}");
    }
    let seen = drain(&mut events);
    assert_eq!(delays_of(&seen, "never"), [Duration::MAX]);
    assert_eq!(delays_of(&seen, "never-tuned"), [Duration::MAX]);
    within(DEADLINE, "stop", handle.stop_unit("never")).await.unwrap();
    assert_eq!(handle.status("never").unwrap().state, UnitState::Stopped);
    within(DEADLINE, "start", handle.start_unit("never")).await.unwrap();
    within(DEADLINE, "backoff again", handle.wait_state("never", UnitState::Backoff)).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert!(report.took < SEC, "the shutdown did not wait for the delay: {report}");
    assert!(report.units.iter().all(|line| line.state == UnitState::Stopped), "{report}");
}

/// A cap of zero makes every delay zero, whatever the delay and backoff; a
/// cap below the delay caps the delay itself (the longest delay there is).
#[tokio::test(start_paused = true)]
async fn caps_of_zero_and_below_the_delay_cap_every_delay() {
    let (zero, low) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let sup = Supervisor::builder()
        .task(always_fails("zero", &zero).restart(
            RestartPolicy::new().delay(DAY).backoff(2.0).jitter(1.0).max_delay(Duration::ZERO).max_restarts(5),
        ))
        .task(
            always_fails("low", &low)
                .restart(RestartPolicy::new().delay(10 * SEC).backoff(3.0).max_delay(2 * SEC).max_restarts(4)),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let began = Instant::now();
    let zero_status = within(DEADLINE, "zero gives up", handle.wait_state("zero", UnitState::Failed)).await.unwrap();
    assert_eq!(began.elapsed(), Duration::ZERO, "no time passes with a zero cap");
    let low_status = within(DEADLINE, "low gives up", handle.wait_state("low", UnitState::Failed)).await.unwrap();
    assert_eq!(began.elapsed(), 8 * SEC, "four delays of 2 s");
    let seen = drain(&mut events);
    assert_eq!(delays_of(&seen, "zero"), [Duration::ZERO; 5]);
    assert_eq!(delays_of(&seen, "low"), [2 * SEC; 4]);
    assert_eq!((zero_status.restart_count, zero.load(Ordering::SeqCst)), (5, 6));
    assert_eq!((low_status.restart_count, low.load(Ordering::SeqCst)), (4, 5));
    handle.shutdown().await;
}

/// Three thousand restarts of a unit that fails at once, with backoff from
/// 1 ms doubling up to a cap of an hour: every delay is `min(2^n ms, 1 h)`,
/// never more, never overflowing; the attempts, the starts' counts, the
/// status and the clock agree; the limit ends it `Failed` at exactly 3000.
#[tokio::test(start_paused = true)]
async fn three_thousand_restarts_with_backoff_saturate_at_the_cap() {
    const RESTARTS: u32 = 3000;
    let cap = Duration::from_secs(3600);
    let runs = Arc::new(AtomicU32::new(0));
    let sup = Supervisor::builder()
        .event_capacity(1 << 16)
        .task(always_fails("flaky", &runs).restart(
            RestartPolicy::new().delay(MS).backoff(2.0).max_delay(cap).max_restarts(MaxRestarts::AtMost(RESTARTS)),
        ))
        .task(idle("bystander"))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let began = Instant::now();
    let seen = within(DEADLINE, "flaky gives up", events_until(&mut events, |event| is_gave_up(event, "flaky"))).await;
    let elapsed = began.elapsed();
    let delays = delays_of(&seen, "flaky");
    let expected: Vec<Duration> = (0..RESTARTS).map(|n| if n < 22 { (MS * (1 << n)).min(cap) } else { cap }).collect();
    assert_eq!(delays.len(), expected.len());
    let wrong: Vec<(usize, Duration, Duration)> = delays
        .iter()
        .zip(&expected)
        .enumerate()
        .filter(|(_, (got, want))| got != want)
        .map(|(at, (got, want))| (at, *got, *want))
        .take(5)
        .collect();
    assert!(wrong.is_empty(), "(restart, delay, expected): {wrong:?}");
    let attempts: Vec<u32> = seen
        .iter()
        .filter(|event| event.unit == "flaky")
        .filter_map(|event| match event.kind {
            EventKind::Restarting { attempt, .. } => Some(attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, (1..=RESTARTS).collect::<Vec<_>>());
    assert_eq!(starts_of(&seen, "flaky"), (0..=RESTARTS).collect::<Vec<_>>());
    assert_eq!(gave_up_of(&seen, "flaky"), [GiveUpReason::MaxRestarts { max: RESTARTS }]);
    let total: Duration = expected.iter().sum();
    assert_eq!(elapsed, total, "the clock moved by the sum of the delays");
    let status = handle.status("flaky").unwrap();
    assert_eq!(status.state, UnitState::Failed);
    assert_eq!((status.restart_count, status.restarts_total), (RESTARTS, u64::from(RESTARTS)));
    assert_eq!(runs.load(Ordering::SeqCst), RESTARTS + 1);
    assert_eq!(handle.status("bystander").unwrap().state, UnitState::Running);
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert_eq!(line_of(&report, "flaky").state, UnitState::Failed);
    assert_eq!(report.exit_code(), 1, "a unit gave up: {report}");
}

/// An uncapped backoff grows until the delay no longer fits a `Duration`,
/// and then stays at `Duration::MAX`: never wraps, never shrinks.
#[tokio::test(start_paused = true)]
async fn an_uncapped_backoff_saturates_at_duration_max() {
    let runs = Arc::new(AtomicU32::new(0));
    // 1 ns * 1e10^n: 1 ns, 10 s, 3 centuries, then past u64 seconds.
    let sup = Supervisor::builder()
        .task(always_fails("wild", &runs).restart(RestartPolicy::new().delay(Duration::from_nanos(1)).backoff(1e10)))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    // The third delay is 1e11 s, past any deadline: look at the events
    // before it.
    let seen = within(DEADLINE, "three delays", async {
        let mut seen = Vec::new();
        while delays_of(&seen, "wild").len() < 3 {
            seen.push(events.recv().await.unwrap());
        }
        seen
    })
    .await;
    let delays = delays_of(&seen, "wild");
    assert!(delays[0] >= Duration::from_nanos(1) && delays[0] < MS, "{delays:?}");
    assert!(delays[1] >= Duration::from_secs(9) && delays[1] <= Duration::from_secs(11), "{delays:?}");
    assert!(delays[2] >= Duration::from_secs(99_999_999_000), "{delays:?}");
    assert_eq!(handle.status("wild").unwrap().state, UnitState::Backoff);
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert!(report.is_clean(), "{report}");
}

/// The restart happens `delay` after the run ended, to the millisecond of
/// tokio's timer, as the events' own times say.
#[tokio::test(start_paused = true)]
async fn event_times_agree_with_the_announced_delays() {
    let runs = Arc::new(AtomicU32::new(0));
    let sup =
        Supervisor::builder()
            .random_seed(3)
            .task(always_fails("flaky", &runs).restart(
                RestartPolicy::new().delay(Duration::from_millis(250)).backoff(1.5).jitter(0.5).max_restarts(8),
            ))
            .build()
            .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let seen = within(DEADLINE, "gives up", events_until(&mut events, |event| is_gave_up(event, "flaky"))).await;
    let mut ended: Option<SystemTime> = None;
    let mut announced: Option<Duration> = None;
    let mut checked = 0;
    for event in seen.iter().filter(|event| event.unit == "flaky") {
        match event.kind {
            EventKind::Exited { .. } => ended = Some(event.time),
            EventKind::Restarting { delay, .. } => announced = Some(delay),
            EventKind::Started { .. } => {
                if let (Some(ended), Some(delay)) = (ended.take(), announced.take()) {
                    let waited = event.time.duration_since(ended).unwrap();
                    assert!(waited >= delay && waited <= delay + MS, "waited {waited:?} for {delay:?}");
                    checked += 1;
                }
            }
            _ => {}
        }
    }
    assert_eq!(checked, 8);
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------
// Jitter.
// ---------------------------------------------------------------------------

async fn jittered_delays(seed: u64) -> Vec<Duration> {
    let runs = Arc::new(AtomicU32::new(0));
    let runs2 = Arc::new(AtomicU32::new(0));
    let nested = GroupSpec::new("g")
        .task(always_fails("deep", &runs2).restart(RestartPolicy::new().delay(SEC).jitter(0.75).max_restarts(20)));
    let sup = Supervisor::builder()
        .random_seed(seed)
        .task(always_fails("top", &runs).restart(RestartPolicy::new().delay(SEC).jitter(1.0).max_restarts(20)))
        .group(nested)
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "top gives up", handle.wait_state("top", UnitState::Failed)).await.unwrap();
    within(DEADLINE, "deep gives up", handle.wait_state("g/deep", UnitState::Failed)).await.unwrap();
    handle.shutdown().await;
    let seen = drain(&mut events);
    let mut delays = delays_of(&seen, "top");
    assert_eq!(delays.len(), 20);
    assert!(delays.iter().all(|delay| *delay >= SEC && *delay <= 2 * SEC), "jitter 1.0: {delays:?}");
    let deep = delays_of(&seen, "g/deep");
    assert_eq!(deep.len(), 20);
    assert!(deep.iter().all(|delay| *delay >= SEC && *delay <= SEC * 7 / 4), "jitter 0.75: {deep:?}");
    delays.extend(deep);
    delays
}

/// With a seed, the jitter of two supervisors is the same, in the root and
/// in a nested group; it does vary from restart to restart, and from seed
/// to seed.
#[tokio::test(start_paused = true)]
async fn a_seeded_jitter_is_reproducible_and_stays_in_bounds() {
    let first = jittered_delays(42).await;
    let second = jittered_delays(42).await;
    assert_eq!(first, second, "the same seed, the same delays");
    let distinct: std::collections::BTreeSet<Duration> = first.iter().copied().collect();
    assert!(distinct.len() > 30, "jitter draws differ: {first:?}");
    let other = jittered_delays(43).await;
    assert_ne!(first, other, "another seed, other delays");
}

/// Jitter of exactly 0.0 adds nothing; jitter only lengthens a delay.
#[tokio::test(start_paused = true)]
async fn zero_jitter_adds_nothing() {
    let runs = Arc::new(AtomicU32::new(0));
    let sup = Supervisor::builder()
        .task(always_fails("plain", &runs).restart(RestartPolicy::new().delay(SEC).jitter(0.0).max_restarts(10)))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "gives up", handle.wait_state("plain", UnitState::Failed)).await.unwrap();
    assert_eq!(delays_of(&drain(&mut events), "plain"), [SEC; 10]);
    handle.shutdown().await;
}

/// "Jitter only ever adds: a delay is never shorter than asked." A
/// fixed delay with any tuning set (here a generous cap, which changes
/// nothing) must be exactly the delay asked, not one rounded down through
/// a float.
#[tokio::test(start_paused = true)]
async fn a_tuned_fixed_delay_is_never_shorter_than_asked() {
    let asked = Duration::new(31_536_000, 1); // a year and a nanosecond
    let runs = Arc::new(AtomicU32::new(0));
    let sup = Supervisor::builder()
        .task(
            always_fails("yearly", &runs)
                .restart(RestartPolicy::new().delay(asked).backoff(1.0).jitter(0.0).max_delay(Duration::MAX)),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let seen = within(
        DEADLINE,
        "the first restart",
        events_until(&mut events, |event| matches!(event.kind, EventKind::Restarting { .. })),
    )
    .await;
    let delays = delays_of(&seen, "yearly");
    assert!(delays[0] >= asked, "asked {asked:?}, waits {:?}", delays[0]);
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------
// Reset after a stable run.
// ---------------------------------------------------------------------------

/// Runs 0..4 fail at once, run 4 lasts exactly `reset_after`, the rest fail
/// at once: the backoff grows 1, 2, 4, 8 s, goes back to 1 s after the
/// stable run and grows again; the count is not reset. A run a millisecond
/// shorter than `reset_after` resets nothing.
#[tokio::test(start_paused = true)]
async fn a_stable_run_resets_the_backoff_and_one_just_short_does_not() {
    let stable = Duration::from_secs(10);
    let (runs, short_runs) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let policy = || RestartPolicy::new().delay(SEC).backoff(2.0).max_delay(Duration::from_secs(64)).reset_after(stable);
    let sup = Supervisor::builder()
        .task(
            scripted("steady", &runs, move |run| if run == 4 { stable } else { Duration::ZERO })
                .restart(policy().max_restarts(7)),
        )
        .task(
            scripted("almost", &short_runs, move |run| if run == 4 { stable - MS } else { Duration::ZERO })
                .restart(policy().max_restarts(7)),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "steady gives up", handle.wait_state("steady", UnitState::Failed)).await.unwrap();
    within(DEADLINE, "almost gives up", handle.wait_state("almost", UnitState::Failed)).await.unwrap();
    let seen = drain(&mut events);
    let secs = |list: &[u64]| list.iter().map(|s| Duration::from_secs(*s)).collect::<Vec<_>>();
    assert_eq!(delays_of(&seen, "steady"), secs(&[1, 2, 4, 8, 1, 2, 4]));
    assert_eq!(delays_of(&seen, "almost"), secs(&[1, 2, 4, 8, 16, 32, 64]));
    assert_eq!(handle.status("steady").unwrap().restart_count, 7, "the count is not reset");
    handle.shutdown().await;
}

/// `reset_after(0)`: every run is stable, the backoff never grows.
/// `reset_after(Duration::MAX)`: no run is, even one of a thousand days.
#[tokio::test(start_paused = true)]
async fn reset_after_zero_and_max() {
    let (zero, max) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let sup = Supervisor::builder()
        .task(
            always_fails("zero", &zero)
                .restart(RestartPolicy::new().delay(SEC).backoff(2.0).reset_after(Duration::ZERO).max_restarts(6)),
        )
        .task(
            scripted("max", &max, |run| if run == 2 { 1000 * DAY } else { Duration::ZERO })
                .restart(RestartPolicy::new().delay(SEC).backoff(2.0).reset_after(Duration::MAX).max_restarts(4)),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "zero gives up", handle.wait_state("zero", UnitState::Failed)).await.unwrap();
    within(DEADLINE, "max gives up", handle.wait_state("max", UnitState::Failed)).await.unwrap();
    let seen = drain(&mut events);
    assert_eq!(delays_of(&seen, "zero"), [SEC; 6]);
    assert_eq!(delays_of(&seen, "max"), [SEC, 2 * SEC, 4 * SEC, 8 * SEC]);
    handle.shutdown().await;
}

/// A restart by hand resets the count and the backoff: the next failure
/// waits the base delay again; `restarts_total` keeps counting.
#[tokio::test(start_paused = true)]
async fn a_restart_by_hand_resets_count_and_backoff() {
    let runs = Arc::new(AtomicU32::new(0));
    let sup = Supervisor::builder()
        .task(
            scripted("flaky", &runs, |run| if run == 4 { DAY } else { Duration::ZERO })
                .restart(RestartPolicy::new().delay(SEC).backoff(2.0).max_restarts(10)),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    // Runs 0..4 fail: delays 1, 2, 4, 8; run 4 runs for a day.
    within(DEADLINE, "run 4", handle.wait_status("flaky", |status| status.restart_count == 4 && status.running))
        .await
        .unwrap();
    within(DEADLINE, "restart", handle.restart("flaky")).await.unwrap();
    let status = within(DEADLINE, "failing again", handle.wait_state("flaky", UnitState::Backoff)).await.unwrap();
    assert_eq!(status.restart_count, 0, "reset by the restart");
    let seen = drain(&mut events);
    assert_eq!(delays_of(&seen, "flaky"), [SEC, 2 * SEC, 4 * SEC, 8 * SEC, SEC], "the backoff begins again");
    // Not counted by `restarts_total` (a restart by hand is not one by its
    // policy or group), which never decreases and counts the next one.
    assert_eq!(status.restarts_total, 4);
    let status =
        within(DEADLINE, "restarted", handle.wait_status("flaky", |status| status.restart_count == 1)).await.unwrap();
    assert_eq!(status.restarts_total, 5, "{status:?}");
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------
// A unit's window.
// ---------------------------------------------------------------------------

/// window(3, 10 s), delay 1 s, failing at once: restarts at 1, 2, 3 s; a
/// fourth within 10 s is refused. Runs of 4 s: never more than 3 restarts
/// within 10 s, it keeps going.
#[tokio::test(start_paused = true)]
async fn a_window_gives_up_inside_its_period_and_slides_outside_it() {
    let (fast, slow) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let period = Duration::from_secs(10);
    let sup = Supervisor::builder()
        .task(always_fails("fast", &fast).restart(RestartPolicy::new().delay(SEC).window(3, period)))
        .task(
            scripted("slow", &slow, |_| Duration::from_secs(4))
                .restart(RestartPolicy::new().delay(Duration::ZERO).window(3, period)),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let status = within(DEADLINE, "fast gives up", handle.wait_state("fast", UnitState::Failed)).await.unwrap();
    assert_eq!(status.restart_count, 3);
    let status = within(DEADLINE, "slow goes on", handle.wait_status("slow", |status| status.restart_count >= 20))
        .await
        .unwrap();
    assert!(status.state.is_active(), "{status:?}");
    let seen = drain(&mut events);
    assert_eq!(gave_up_of(&seen, "fast"), [GiveUpReason::Window { max: 3, period }]);
    assert!(gave_up_of(&seen, "slow").is_empty());
    let msg = GiveUpReason::Window { max: 3, period }.to_string();
    assert_eq!(msg, "more than 3 restarts within 10s");
    handle.shutdown().await;
}

/// "Give up when a restart would make more than `max_restarts` restarts
/// within `period`." With window(1, 5 s) and a delay of 10 s, restarts
/// happen 10 s apart: never two within 5 s, so the unit must go on being
/// restarted. The window counts the restarts at the time they were
/// performed but the coming one at the time of the failure, before its
/// delay: it sees two restarts 0 s apart and gives up after the first.
#[tokio::test(start_paused = true)]
async fn a_window_shorter_than_the_delay_never_trips() {
    let runs = Arc::new(AtomicU32::new(0));
    let period = Duration::from_secs(5);
    let sup = Supervisor::builder()
        .task(
            always_fails("spaced", &runs)
                .restart(RestartPolicy::new().delay(Duration::from_secs(10)).window(1, period).max_restarts(6)),
        )
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let began = Instant::now();
    let seen = within(DEADLINE, "spaced ends", events_until(&mut events, |event| is_gave_up(event, "spaced"))).await;
    let status = handle.status("spaced").unwrap();
    assert_eq!(
        gave_up_of(&seen, "spaced"),
        [GiveUpReason::MaxRestarts { max: 6 }],
        "restarts 10 s apart never make 2 within 5 s; status {status:?}, after {:?}",
        began.elapsed()
    );
    assert_eq!(status.restart_count, 6);
    handle.shutdown().await;
}

/// The same numbers as a group's intensity: restarts counted at their
/// decision, 10 s apart, never trip intensity(1, 5 s).
#[tokio::test(start_paused = true)]
async fn a_group_intensity_shorter_than_the_delay_never_trips() {
    let runs = Arc::new(AtomicU32::new(0));
    let group =
        GroupSpec::new("g").intensity(1, Duration::from_secs(5)).restart(RestartPolicy::new().max_restarts(0)).task(
            always_fails("spaced", &runs).restart(RestartPolicy::new().delay(Duration::from_secs(10)).max_restarts(6)),
        );
    let handle = Supervisor::builder().group(group).build().unwrap().start();
    let status = within(DEADLINE, "spaced gives up", handle.wait_state("g/spaced", UnitState::Failed)).await.unwrap();
    assert_eq!(status.restart_count, 6);
    assert_eq!(handle.status("g").unwrap().state, UnitState::Running);
    handle.shutdown().await;
}

/// A window of `Duration::MAX` never forgets: after a thousand days, a
/// second restart is still one too many. A window of 1 ns forgets at once.
#[tokio::test(start_paused = true)]
async fn windows_of_for_ever_and_of_a_nanosecond() {
    let (long, short) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let sup =
        Supervisor::builder()
            .task(
                scripted("long", &long, |_| 1000 * DAY)
                    .restart(RestartPolicy::new().delay(Duration::ZERO).window(1, Duration::MAX)),
            )
            .task(scripted("short", &short, |_| MS).restart(
                RestartPolicy::new().delay(Duration::ZERO).window(1, Duration::from_nanos(1)).max_restarts(50),
            ))
            .build()
            .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let status = within(DEADLINE, "short gives up", handle.wait_state("short", UnitState::Failed)).await.unwrap();
    assert_eq!(status.restart_count, 50, "only the limit stops it");
    let status = within(DEADLINE, "long gives up", handle.wait_state("long", UnitState::Failed)).await.unwrap();
    assert_eq!(status.restart_count, 1);
    let seen = drain(&mut events);
    assert_eq!(gave_up_of(&seen, "long"), [GiveUpReason::Window { max: 1, period: Duration::MAX }]);
    assert_eq!(gave_up_of(&seen, "short"), [GiveUpReason::MaxRestarts { max: 50 }]);
    // Its message does not overflow either.
    assert!(GiveUpReason::Window { max: 1, period: Duration::MAX }.to_string().starts_with("more than 1 restarts"));
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------
// Group intensity and the unit's own limit.
// ---------------------------------------------------------------------------

/// intensity(3, 10 s) with a unit that fails after runs of 2.5 s: the
/// fourth restart within 10 s makes the group give up. After runs of 3.4 s
/// the oldest restart has left the period each time: it goes on.
#[tokio::test(start_paused = true)]
async fn group_intensity_slides_just_inside_and_just_outside_its_period() {
    let (inside, outside) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let period = Duration::from_secs(10);
    let tight = GroupSpec::new("tight")
        .intensity(3, period)
        .restart(RestartPolicy::new().max_restarts(0))
        .task(scripted("u", &inside, |_| Duration::from_millis(2500)).restart(no_delay()))
        .task(idle("other"));
    let loose = GroupSpec::new("loose")
        .intensity(3, period)
        .restart(RestartPolicy::new().max_restarts(0))
        .task(scripted("u", &outside, |_| Duration::from_millis(3400)).restart(no_delay()));
    let sup = Supervisor::builder().event_capacity(4096).group(tight).group(loose).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let began = Instant::now();
    let tight_status = within(DEADLINE, "tight gives up", handle.wait_state("tight", UnitState::Failed)).await.unwrap();
    assert_eq!(began.elapsed(), period, "the fourth failure, at 10 s");
    assert_eq!(handle.status("tight/u").unwrap().restart_count, 3);
    assert_eq!(handle.status("tight/u").unwrap().state, UnitState::Stopped);
    assert_eq!(handle.status("tight/other").unwrap().state, UnitState::Stopped);
    assert!(
        tight_status.last_error.as_deref().unwrap_or("").contains("more than 3 restarts within 10s"),
        "{tight_status:?}"
    );
    let status = within(DEADLINE, "loose goes on", handle.wait_status("loose/u", |status| status.restart_count >= 30))
        .await
        .unwrap();
    assert!(status.state.is_active());
    assert_eq!(handle.status("loose").unwrap().state, UnitState::Running);
    let seen = drain(&mut events);
    assert!(gave_up_of(&seen, "loose").is_empty());
    assert_eq!(gave_up_of(&seen, "tight"), [GiveUpReason::MaxRestarts { max: 0 }]);
    handle.shutdown().await;
}

/// The unit's own limit comes first: max 2 under intensity 5 fails the unit
/// and leaves the group running; max 10 under intensity 3 makes the group
/// give up at the fourth restart, the unit stopped with 3 restarts.
#[tokio::test(start_paused = true)]
async fn a_units_limit_and_its_groups_intensity() {
    let (a, b) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let lenient = GroupSpec::new("lenient")
        .intensity(5, Duration::from_secs(60))
        .task(always_fails("u", &a).restart(RestartPolicy::new().delay(SEC).max_restarts(2)))
        .task(idle("other"));
    let strict = GroupSpec::new("strict")
        .intensity(3, Duration::from_secs(60))
        .restart(RestartPolicy::new().max_restarts(0))
        .task(always_fails("u", &b).restart(RestartPolicy::new().delay(SEC).max_restarts(10)));
    let sup = Supervisor::builder().group(lenient).group(strict).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let u = within(DEADLINE, "lenient/u fails", handle.wait_state("lenient/u", UnitState::Failed)).await.unwrap();
    assert_eq!(u.restart_count, 2);
    within(DEADLINE, "strict fails", handle.wait_state("strict", UnitState::Failed)).await.unwrap();
    assert_eq!(handle.status("lenient").unwrap().state, UnitState::Running);
    assert_eq!(handle.status("lenient/other").unwrap().state, UnitState::Running);
    let strict_u = handle.status("strict/u").unwrap();
    assert_eq!((strict_u.state, strict_u.restart_count), (UnitState::Stopped, 3));
    assert_eq!(b.load(Ordering::SeqCst), 4);
    let seen = drain(&mut events);
    let restarting =
        |name: &str| seen.iter().filter(|e| e.unit == name && matches!(e.kind, EventKind::Restarting { .. })).count();
    assert_eq!(restarting("strict/u"), 3, "no Restarting for the restart refused");
    assert!(gave_up_of(&seen, "strict/u").is_empty());
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert_eq!(line_of(&report, "strict").state, UnitState::Failed);
    assert_eq!(line_of(&report, "strict/u").state, UnitState::Stopped);
    assert_eq!(line_of(&report, "lenient/u").state, UnitState::Failed);
    assert_eq!(report.exit_code(), 1);
}

/// intensity(u32::MAX, 1 ns) never trips however many restarts come at one
/// instant; intensity(1, MAX) trips at the second restart, a thousand days
/// after the first.
#[tokio::test(start_paused = true)]
async fn intensities_of_u32_max_and_of_for_ever() {
    let (many, rare) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let huge = GroupSpec::new("huge")
        .intensity(u32::MAX, Duration::from_nanos(1))
        .task(always_fails("u", &many).restart(no_delay().max_restarts(2000)));
    let forever = GroupSpec::new("forever")
        .intensity(1, Duration::MAX)
        .restart(RestartPolicy::new().max_restarts(0))
        .task(scripted("u", &rare, |_| 1000 * DAY).restart(no_delay()));
    let sup = Supervisor::builder().event_capacity(1 << 14).group(huge).group(forever).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let status = within(DEADLINE, "huge/u gives up", handle.wait_state("huge/u", UnitState::Failed)).await.unwrap();
    assert_eq!(status.restart_count, 2000);
    assert_eq!(handle.status("huge").unwrap().state, UnitState::Running);
    within(DEADLINE, "forever fails", handle.wait_state("forever", UnitState::Failed)).await.unwrap();
    assert_eq!(rare.load(Ordering::SeqCst), 2);
    assert_eq!(handle.status("forever/u").unwrap().restart_count, 1);
    let seen = drain(&mut events);
    let reason = seen.iter().find_map(|event| match &event.kind {
        EventKind::Exited { reason: ExitReason::GroupGaveUp(reason) } if event.unit == "forever" => Some(*reason),
        _ => None,
    });
    assert_eq!(reason, Some(GiveUpReason::Intensity { max: 1, period: Duration::MAX }));
    handle.shutdown().await;
}

/// The root's intensity: the supervisor ends by itself, exit code 1, the
/// cause saying why; `wait()` returns the same report.
#[tokio::test(start_paused = true)]
async fn the_root_intensity_ends_the_supervisor() {
    let runs = Arc::new(AtomicU32::new(0));
    let handle = Supervisor::builder()
        .intensity(2, Duration::from_secs(60))
        .task(always_fails("flaky", &runs).restart(RestartPolicy::new().delay(SEC)))
        .task(idle("bystander"))
        .build()
        .unwrap()
        .start();
    let report = within(DEADLINE, "the supervisor ends", handle.wait()).await;
    assert_eq!(report.cause, ShutdownCause::GaveUp { reason: "more than 2 restarts within 1m".to_owned() });
    assert_eq!(report.exit_code(), 1);
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert_eq!(handle.status("flaky").unwrap().restart_count, 2);
    assert!(report.units.iter().all(|line| line.state == UnitState::Stopped), "{report}");
}

/// The unit whose restart is one too many for its group's intensity is
/// stopped as the group gives up, its run over, not left in `Backoff`
/// (waiting to restart) while the group stops its other units, one slow to
/// stop: no restart of it comes. The report lists it as not running when
/// the shutdown reached it, with one `Stopped` event, where it was stopped
/// from `Backoff` as a unit between two runs, `Graceful`.
#[tokio::test(start_paused = true)]
async fn the_unit_that_trips_the_intensity_is_stopped_when_the_group_gives_up() {
    let runs = Arc::new(AtomicU32::new(0));
    let sup = Supervisor::builder()
        .intensity(1, Duration::from_secs(60))
        .task(always_fails("flaky", &runs).restart(RestartPolicy::new().delay(SEC)))
        .task(specs::slow_to_stop("slow", 3 * SEC))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "the stop of slow", handle.wait_state("slow", UnitState::Stopping)).await.unwrap();
    let flaky = handle.status("flaky").unwrap();
    assert_eq!(flaky.state, UnitState::Stopped, "{flaky:?}");
    assert_eq!(flaky.last_error.as_deref(), Some("boom"));
    let report = within(DEADLINE, "the supervisor ends", handle.wait()).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let lines: Vec<_> = report.units.iter().map(|line| (line.name.as_str(), line.state, line.outcome)).collect();
    assert_eq!(
        lines,
        [("slow", UnitState::Stopped, StopOutcome::Graceful), ("flaky", UnitState::Stopped, StopOutcome::NotRunning)],
        "{report}"
    );
    assert_eq!(report.exit_code(), 1);
    let seen = drain(&mut events);
    let stopped = seen.iter().filter(|e| e.unit == "flaky" && matches!(e.kind, EventKind::Stopped { .. })).count();
    assert_eq!(stopped, 1, "{seen:#?}");
    let restarting = seen.iter().filter(|e| e.unit == "flaky" && matches!(e.kind, EventKind::Restarting { .. }));
    assert_eq!(restarting.count(), 1, "no Restarting for the restart refused");
}

// ---------------------------------------------------------------------------
// Critical units and limits of zero.
// ---------------------------------------------------------------------------

/// A critical unit with `max = 0` that fails ends the tree as a failure at
/// once; one that succeeds ends it cleanly.
#[tokio::test(start_paused = true)]
async fn a_critical_unit_with_max_zero() {
    /// `unit`, critical and run once, beside an idle bystander: the report
    /// of the tree it ends, and the handle.
    async fn ended_by(unit: TaskSpec) -> (supervisor::ShutdownReport, supervisor::SupervisorHandle) {
        let handle = Supervisor::builder()
            .task(unit.critical().restart(RestartPolicy::new().max_restarts(0)))
            .task(idle("bystander"))
            .build()
            .unwrap()
            .start();
        (within(DEADLINE, "the tree ends", handle.wait()).await, handle)
    }

    let runs = Arc::new(AtomicU32::new(0));
    let (report, handle) = ended_by(always_fails("vital", &runs)).await;
    assert_eq!(report.cause, ShutdownCause::CriticalEnded { unit: "vital".to_owned(), failed: true });
    assert_eq!(report.exit_code(), 1);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let vital = line_of(&report, "vital");
    assert_eq!(vital.state, UnitState::Failed);
    assert_eq!(vital.outcome, StopOutcome::NotRunning);
    assert_eq!(line_of(&report, "bystander").state, UnitState::Stopped);
    assert_eq!(handle.status("vital").unwrap().restart_count, 0);

    let runs = Arc::new(AtomicU32::new(0));
    let (report, _) = ended_by(always_succeeds("job", &runs)).await;
    assert_eq!(report.cause, ShutdownCause::CriticalEnded { unit: "job".to_owned(), failed: false });
    assert_eq!(report.exit_code(), 0, "{report}");
    assert_eq!(line_of(&report, "job").state, UnitState::Exited);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// A group's own policy against its critical child's: the child gives up
/// (max 0), the group ends as a failure; the parent restarts the group by
/// the group's backoff (5 s, 10 s), each run of the group starting the
/// child afresh, and gives up on the group after its own limit.
#[tokio::test(start_paused = true)]
async fn a_groups_policy_restarts_it_by_its_own_backoff() {
    let runs = Arc::new(AtomicU32::new(0));
    let group = GroupSpec::new("g")
        .restart(RestartPolicy::new().delay(Duration::from_secs(5)).backoff(2.0).max_restarts(2))
        .task(always_fails("vital", &runs).critical().restart(no_delay().max_restarts(0)))
        .task(idle("helper"));
    let sup = Supervisor::builder().group(group).task(idle("bystander")).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let began = Instant::now();
    let g = within(DEADLINE, "g fails", handle.wait_state("g", UnitState::Failed)).await.unwrap();
    assert_eq!(began.elapsed(), Duration::from_secs(15));
    assert_eq!((g.restart_count, g.restarts_total), (2, 2));
    let seen = drain(&mut events);
    assert_eq!(delays_of(&seen, "g"), [Duration::from_secs(5), Duration::from_secs(10)]);
    assert!(delays_of(&seen, "g/vital").is_empty());
    assert_eq!(starts_of(&seen, "g/vital"), [0, 0, 0]);
    assert_eq!(gave_up_of(&seen, "g"), [GiveUpReason::MaxRestarts { max: 2 }]);
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert_eq!(handle.status("bystander").unwrap().state, UnitState::Running);
    handle.shutdown().await;
}

/// `RestartOn::Failure` with `max = 0` and `RestartOn::Never`: a success
/// is `Exited` with `Finished`, a failure `Failed`/`GaveUp` (or `Exited`
/// for `Never`, the policy not restarting that ending).
#[tokio::test(start_paused = true)]
async fn restart_on_against_a_limit_of_zero() {
    let counters: Vec<Arc<AtomicU32>> = (0..4).map(|_| Arc::default()).collect();
    let sup = Supervisor::builder()
        .task(
            always_succeeds("ok-failure", &counters[0])
                .restart(RestartPolicy::new().on(RestartOn::Failure).max_restarts(0)),
        )
        .task(
            always_fails("bad-failure", &counters[1])
                .restart(RestartPolicy::new().on(RestartOn::Failure).max_restarts(0)),
        )
        .task(always_succeeds("ok-never", &counters[2]).restart(RestartPolicy::new().on(RestartOn::Never)))
        .task(always_fails("bad-never", &counters[3]).restart(RestartPolicy::new().on(RestartOn::Never)))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let expected = [
        ("ok-failure", UnitState::Exited),
        ("bad-failure", UnitState::Failed),
        ("ok-never", UnitState::Exited),
        ("bad-never", UnitState::Exited),
    ];
    for (name, state) in expected {
        within(DEADLINE, name, handle.wait_state(name, state)).await.unwrap();
    }
    let seen = drain(&mut events);
    assert_eq!(gave_up_of(&seen, "bad-failure"), [GiveUpReason::MaxRestarts { max: 0 }]);
    let finished = |name: &str| seen.iter().any(|e| e.unit == name && e.kind == EventKind::Finished);
    assert!(finished("ok-failure") && finished("ok-never") && finished("bad-never") && !finished("bad-failure"));
    assert!(counters.iter().all(|runs| runs.load(Ordering::SeqCst) == 1));
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert_eq!(report.exit_code(), 1, "bad-failure gave up: {report}");
}

// ---------------------------------------------------------------------------
// Counting under a strategy, and status/events/report agreement.
// ---------------------------------------------------------------------------

/// OneForAll: a unit that fails 3 times (max 3) takes its sibling along
/// each time. The unit's `restart_count` is its policy's restarts; the
/// sibling's stays 0 while its `restarts_total` counts the restarts it was
/// taken along; events, statuses and the report agree.
#[tokio::test(start_paused = true)]
async fn counts_agree_under_one_for_all() {
    let runs = Arc::new(AtomicU32::new(0));
    let group = GroupSpec::new("g")
        .strategy(Strategy::OneForAll)
        .task(always_fails("flaky", &runs).restart(RestartPolicy::new().delay(SEC).max_restarts(3)))
        .task(idle("sibling"));
    let sup = Supervisor::builder().group(group).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "flaky fails", handle.wait_state("g/flaky", UnitState::Failed)).await.unwrap();
    let seen = drain(&mut events);
    let flaky = handle.status("g/flaky").unwrap();
    let sibling = handle.status("g/sibling").unwrap();
    assert_eq!((flaky.restart_count, flaky.restarts_total), (3, 3));
    assert_eq!((sibling.restart_count, sibling.restarts_total), (0, 3));
    assert_eq!(sibling.state, UnitState::Running);
    assert_eq!(starts_of(&seen, "g/flaky"), [0, 1, 2, 3]);
    assert_eq!(starts_of(&seen, "g/sibling").len(), 4);
    let told =
        seen.iter().filter(|e| e.unit == "g/sibling" && matches!(e.kind, EventKind::SiblingFailed { .. })).count();
    assert_eq!(told, 3);
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert_eq!(line_of(&report, "g/flaky").state, UnitState::Failed);
    assert_eq!(line_of(&report, "g/sibling").state, UnitState::Stopped);
    assert_eq!(report.exit_code(), 1);
}

/// Under OneForAll: `a` fails after 1 s; `slow` takes 2 s to answer the
/// strategy's stop; `third`'s run, `length` long, ends by itself while the
/// strategy waits for `slow`, before it is asked to stop.
fn strategy_with_a_slow_sibling(third: TaskSpec) -> supervisor::SupervisorBuilder {
    let fails_once = fails_once_after("a", SEC);
    let slow = TaskSpec::new("slow", |ctx: Context| async move {
        ctx.cancelled().await;
        tokio::time::sleep(2 * SEC).await;
    })
    .stop_timeout(5 * SEC);
    Supervisor::builder()
        .strategy(Strategy::OneForAll)
        .task(fails_once.restart(RestartPolicy::new().delay(SEC)))
        .task(third)
        .task(slow)
}

/// A run that fails by itself while its group's strategy is stopping the
/// others ended as it did: its event, its error and its policy stand. Its
/// policy does not restart it, so the strategy's restart leaves it out.
#[tokio::test(start_paused = true)]
async fn a_failure_during_a_strategy_restart_keeps_its_reason_and_its_policy() {
    let runs = Arc::new(AtomicU32::new(0));
    let fails = scripted("b", &runs, |_| 1500 * MS).restart(RestartPolicy::new().on(RestartOn::Never));
    let sup = strategy_with_a_slow_sibling(fails).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let restarted =
        events_until(&mut events, |e| e.unit == "a" && e.kind == EventKind::Started { restart_count: 1, pid: None });
    let seen = within(DEADLINE, "the strategy's restart", restarted).await;
    let b = handle.status("b").unwrap();
    let b_events: Vec<&EventKind> = seen.iter().filter(|e| e.unit == "b").map(|e| &e.kind).collect();
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert_eq!((b.state, b.last_error.as_deref()), (UnitState::Exited, Some("run 0 failed")), "{b:?}");
    assert!(
        b_events.contains(&&EventKind::Exited { reason: ExitReason::Error("run 0 failed".into()) }),
        "{b_events:?}"
    );
    assert!(!b_events.iter().any(|kind| matches!(kind, EventKind::Stopped { .. })), "{b_events:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "a unit whose policy never restarts it was restarted");
}

/// A critical unit that finishes while its group's strategy is stopping
/// the others ends the tree, as it would at any other time, and runs once.
#[tokio::test(start_paused = true)]
async fn a_critical_unit_that_finishes_during_a_strategy_restart_ends_the_tree() {
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let job = TaskSpec::new("job", move |_ctx: Context| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { tokio::time::sleep(1500 * MS).await }
    })
    .restart(RestartPolicy::new().on(RestartOn::Never))
    .critical();
    let handle = strategy_with_a_slow_sibling(job).build().unwrap().start();
    let report = within(DEADLINE, "the tree's end", handle.wait()).await;
    assert_eq!(report.cause, ShutdownCause::CriticalEnded { unit: "job".to_owned(), failed: false }, "{report}");
    assert_eq!(report.exit_code(), 0, "{report}");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the critical unit ran again");
}

/// A run that ends by itself while the strategy stops the others, and whose
/// policy restarts it, is restarted with them, once; its end is kept.
#[tokio::test(start_paused = true)]
async fn a_run_that_ends_during_a_strategy_restart_is_restarted_with_the_others() {
    let runs = Arc::new(AtomicU32::new(0));
    let flaky =
        scripted("b", &runs, |run| if run == 0 { 1500 * MS } else { DAY }).restart(RestartPolicy::new().delay(SEC));
    let sup = strategy_with_a_slow_sibling(flaky).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let restarted = events_until(&mut events, |e| {
        e.unit == "b" && matches!(e.kind, EventKind::Started { .. }) && runs.load(Ordering::SeqCst) == 2
    });
    let seen = within(DEADLINE, "b's second run", restarted).await;
    let b = handle.status("b").unwrap();
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert_eq!((b.state, b.last_error.as_deref()), (UnitState::Running, Some("run 0 failed")), "{b:?}");
    assert!(seen.iter().any(|e| e.unit == "b" && matches!(e.kind, EventKind::Exited { .. })), "{seen:#?}");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

// ---------------------------------------------------------------------------
// Stop and shutdown timeouts at their extremes.
// ---------------------------------------------------------------------------

fn stubborn(name: &str) -> TaskSpec {
    TaskSpec::new(name, |_ctx| std::future::pending::<()>())
}

/// A stop timeout of `Duration::MAX` is bounded by the shutdown timeout; a
/// shutdown timeout of `Duration::MAX` leaves each unit its own stop
/// timeout; a cooperative unit stops gracefully either way.
#[tokio::test(start_paused = true)]
async fn stop_and_shutdown_timeouts_of_duration_max() {
    let secs = Duration::from_secs;
    for (shutdown_timeout, stubborn_stop, took) in [(secs(5), Duration::MAX, 5), (Duration::MAX, secs(3), 3)] {
        let handle = Supervisor::builder()
            .shutdown_timeout(shutdown_timeout)
            .task(stubborn("stubborn").stop_timeout(stubborn_stop))
            .task(idle("polite").stop_timeout(Duration::MAX))
            .build()
            .unwrap()
            .start();
        within(DEADLINE, "running", handle.wait_state("stubborn", UnitState::Running)).await.unwrap();
        let began = Instant::now();
        let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
        assert_eq!(began.elapsed(), Duration::from_secs(took), "{report}");
        assert_eq!(line_of(&report, "stubborn").outcome, StopOutcome::Forced);
        assert_eq!(line_of(&report, "polite").outcome, StopOutcome::Graceful);
        assert_eq!(report.exit_code(), 1);
    }
}

/// A stop timeout too long for the clock to hold waits for ever, with
/// `tokio::time::pause()` too, as a restart delay that long does: each
/// stop's deadline was put some 30 years on (tokio's sleep cut a daemon's,
/// and a stop for a failed probe, there too), to which a paused clock
/// jumped, and a task that ignores its stop was aborted, a process that
/// ignores `SIGTERM` killed: in a stop by hand, in a group's restart, for a
/// failed liveness probe, and in the shutdown.
#[tokio::test]
async fn a_stop_timeout_past_the_clock_end_waits_for_ever_with_a_paused_clock() {
    const THOUSAND_YEARS: Duration = Duration::from_secs(1000 * 365 * 86_400);
    let far = delay_near_the_clock_end(Duration::from_micros(500));
    let fails = Probe::check(|| async { Err::<(), _>("down") }).period(SEC).failure_threshold(1);
    let group = GroupSpec::new("g")
        .strategy(Strategy::OneForAll)
        .task(stubborn("stubborn").stop_timeout(Duration::MAX))
        .task(fails_once_after("fails", SEC));
    let handle = Supervisor::builder()
        .shutdown_timeout(Duration::MAX)
        .task(stubborn("by-hand").stop_timeout(Duration::MAX))
        .task(stubborn("near-the-end").stop_timeout(far))
        .task(stubborn("judged").stop_timeout(Duration::MAX).liveness(fails))
        .daemon(
            DaemonSpec::new("term-proof", "sh")
                .args(["-c", "trap '' TERM; echo deaf; exec sleep 1000"])
                .readiness(Readiness::OutputLine("deaf".into()))
                .stop_timeout(Duration::MAX),
        )
        .group(group)
        .build()
        .unwrap()
        .start();
    // On the real clock: the process says it ignores `SIGTERM` in its time.
    within(Duration::from_secs(20), "ready", handle.wait_ready("term-proof")).await.unwrap();
    for name in ["by-hand", "near-the-end", "g/stubborn"] {
        within(DEADLINE, "running", handle.wait_state(name, UnitState::Running)).await.unwrap();
    }
    tokio::time::pause();
    let stops: Vec<_> = ["by-hand", "near-the-end", "term-proof"]
        .map(|name| {
            let handle = handle.clone();
            tokio::spawn(async move { handle.stop_unit(name).await })
        })
        .into();
    let shutdown = tokio::spawn({
        let handle = handle.clone();
        async move {
            // Once every stop above is under way.
            tokio::time::sleep(DAY).await;
            handle.shutdown().await
        }
    });
    // Not `sleep`, which tokio cuts to some 30 years.
    tokio::time::sleep_until(Instant::now() + THOUSAND_YEARS).await;
    for (name, stop) in ["by-hand", "near-the-end", "term-proof"].iter().zip(&stops) {
        assert!(!stop.is_finished(), "the stop of `{name}` ended: {:?}", handle.status(name));
    }
    // Each still being stopped: its run goes on, not restarted.
    for name in ["judged", "g/stubborn"] {
        let status = handle.status(name).unwrap();
        assert!(status.running && status.restarts_total == 0, "{name}: {status:?}");
    }
    assert!(!shutdown.is_finished(), "the shutdown ended");
    // The process's end is on the real clock, which a paused one would
    // jump past while it is killed.
    tokio::time::resume();
    handle.skip_grace();
    let report = within(Duration::from_secs(20), "the shutdown", shutdown).await.unwrap();
    // The run of `judged` had its stop under way, as a failure of its own.
    for name in ["by-hand", "near-the-end", "term-proof", "g/stubborn"] {
        assert_eq!(line_of(&report, name).outcome, StopOutcome::Forced, "{name}: {report}");
    }
}

/// A stop timeout of zero aborts a stubborn task at once, in a stop by
/// hand and in the shutdown; a shutdown timeout of zero ends the shutdown
/// at once. Neither hangs nor panics, and the report stays consistent.
#[tokio::test(start_paused = true)]
async fn stop_and_shutdown_timeouts_of_zero() {
    let handle = Supervisor::builder()
        .task(stubborn("stubborn").stop_timeout(Duration::ZERO))
        .task(stubborn("other").stop_timeout(Duration::ZERO))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "running", handle.wait_state("stubborn", UnitState::Running)).await.unwrap();
    let began = Instant::now();
    within(DEADLINE, "stop", handle.stop_unit("stubborn")).await.unwrap();
    assert_eq!(began.elapsed(), Duration::ZERO);
    assert_eq!(handle.status("stubborn").unwrap().state, UnitState::Stopped);
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert_eq!(began.elapsed(), Duration::ZERO);
    assert_eq!(line_of(&report, "other").outcome, StopOutcome::Forced);

    let handle = Supervisor::builder()
        .shutdown_timeout(Duration::ZERO)
        .task(stubborn("stubborn").stop_timeout(Duration::from_secs(3600)))
        .build()
        .unwrap()
        .start();
    within(DEADLINE, "running", handle.wait_state("stubborn", UnitState::Running)).await.unwrap();
    let began = Instant::now();
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert_eq!(began.elapsed(), Duration::ZERO, "{report}");
    assert_eq!(line_of(&report, "stubborn").outcome, StopOutcome::Forced);
    assert_eq!(report.units.len(), 1);
}

// ---------------------------------------------------------------------------
// Pauses with a long backoff.
// ---------------------------------------------------------------------------

/// Restarts paused while a unit waits out a long backoff hold it past its
/// delay; a resume restarts it, counted once.
#[tokio::test(start_paused = true)]
async fn a_pause_during_a_long_backoff_holds_the_restart_and_counts_it_once() {
    let runs = Arc::new(AtomicU32::new(0));
    let sup = Supervisor::builder()
        .task(
            scripted("flaky", &runs, |run| if run == 0 { Duration::ZERO } else { DAY })
                .restart(RestartPolicy::new().delay(Duration::from_secs(3600)).backoff(2.0)),
        )
        .build()
        .unwrap();
    let handle = sup.start();
    within(DEADLINE, "backoff", handle.wait_state("flaky", UnitState::Backoff)).await.unwrap();
    within(DEADLINE, "pause", handle.pause_restarts("flaky")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(7200)).await;
    let status = handle.status("flaky").unwrap();
    assert_eq!((status.state, status.restart_count, runs.load(Ordering::SeqCst)), (UnitState::Backoff, 0, 1));
    within(DEADLINE, "resume", handle.resume_restarts("flaky")).await.unwrap();
    let status = within(DEADLINE, "running", handle.wait_state("flaky", UnitState::Running)).await.unwrap();
    assert_eq!((status.restart_count, status.restarts_total), (1, 1));
    // Its `f` is called once its run's task is first polled.
    tokio::time::sleep(MS).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    handle.shutdown().await;
}

/// `resume_restarts`: "a restart that came due while they were paused
/// happens now". One that came due for a run before the current one does
/// not: started again by hand (`restart`, or `stop_unit` then
/// `start_unit`), failed again, the unit waits out the delay its
/// `Restarting` event announced, resumed or not. A resume used to restart
/// it at once.
#[tokio::test(start_paused = true)]
async fn a_restart_held_for_an_earlier_run_is_not_made_by_a_resume() {
    for by_hand in ["restart", "stop then start"] {
        let runs = Arc::new(AtomicU32::new(0));
        let sup = Supervisor::builder()
            .task(scripted("x", &runs, |_run| SEC).restart(RestartPolicy::new().delay(10 * SEC)))
            .build()
            .unwrap();
        let handle = sup.start();
        within(DEADLINE, "pause", handle.pause_restarts("x")).await.unwrap();
        // Run 1 fails at 1 s; its restart comes due at 11 s, and is held.
        tokio::time::sleep(12 * SEC).await;
        assert_eq!((handle.status("x").unwrap().state, runs.load(Ordering::SeqCst)), (UnitState::Backoff, 1));
        if by_hand == "restart" {
            within(DEADLINE, "restart", handle.restart("x")).await.unwrap();
        } else {
            within(DEADLINE, "stop", handle.stop_unit("x")).await.unwrap();
            within(DEADLINE, "start", handle.start_unit("x")).await.unwrap();
        }
        // Run 2 fails a second later; its restart is due 10 s after that.
        let failed = Instant::now() + SEC;
        within(DEADLINE, "run 2 fails", handle.wait_status("x", |status| status.state == UnitState::Backoff))
            .await
            .unwrap();
        tokio::time::sleep(SEC / 2).await;
        within(DEADLINE, "resume", handle.resume_restarts("x")).await.unwrap();
        tokio::time::sleep(SEC).await;
        let status = handle.status("x").unwrap();
        assert_eq!(
            (status.state, runs.load(Ordering::SeqCst)),
            (UnitState::Backoff, 2),
            "{by_hand}: the resume restarted x before its delay: {status:?}"
        );
        within(DEADLINE, "run 3", handle.wait_state("x", UnitState::Running)).await.unwrap();
        let waited = Instant::now().saturating_duration_since(failed);
        assert!(waited >= 10 * SEC && waited < 11 * SEC, "{by_hand}: run 3 began {waited:?} after run 2 failed");
        handle.shutdown().await;
    }
}

// ---------------------------------------------------------------------------
// What counts toward a group's intensity.
// ---------------------------------------------------------------------------

/// The policy comes before the intensity: a unit whose policy gives up
/// (`max = 0`) or does not restart its ending is not a restart, and does
/// not use up the group's intensity of 1.
#[tokio::test(start_paused = true)]
async fn endings_the_policy_does_not_restart_do_not_count_toward_intensity() {
    let counters: Vec<Arc<AtomicU32>> = (0..3).map(|_| Arc::default()).collect();
    let group = GroupSpec::new("g")
        .intensity(1, Duration::from_secs(3600))
        .restart(RestartPolicy::new().max_restarts(0))
        .task(always_fails("once", &counters[0]).restart(no_delay().max_restarts(0)))
        .task(always_succeeds("done", &counters[1]).restart(no_delay().on(RestartOn::Failure)))
        .task(
            scripted("flaky", &counters[2], |run| if run == 0 { SEC } else { DAY })
                .restart(RestartPolicy::new().delay(SEC)),
        );
    let handle = Supervisor::builder().group(group).build().unwrap().start();
    within(DEADLINE, "once fails", handle.wait_state("g/once", UnitState::Failed)).await.unwrap();
    within(DEADLINE, "done exits", handle.wait_state("g/done", UnitState::Exited)).await.unwrap();
    let flaky = within(DEADLINE, "flaky restarted", handle.wait_status("g/flaky", |status| status.restart_count == 1))
        .await
        .unwrap();
    assert!(flaky.state.is_active(), "{flaky:?}");
    assert_eq!(handle.status("g").unwrap().state, UnitState::Running, "one restart is within intensity 1");
    handle.shutdown().await;
}

/// A group restarted by its parent is a new run with a fresh intensity, as
/// in OTP: intensity(2, 1 h) lets its unit restart twice in each run.
#[tokio::test(start_paused = true)]
async fn a_restarted_group_gets_a_fresh_intensity() {
    let runs = Arc::new(AtomicU32::new(0));
    let group = GroupSpec::new("g")
        .intensity(2, Duration::from_secs(3600))
        .restart(no_delay().max_restarts(2))
        .task(always_fails("u", &runs).restart(no_delay()));
    let sup = Supervisor::builder().group(group).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let g = within(DEADLINE, "g fails", handle.wait_state("g", UnitState::Failed)).await.unwrap();
    assert_eq!(g.restart_count, 2);
    assert_eq!(runs.load(Ordering::SeqCst), 9, "three runs of g, three runs of u in each");
    let seen = drain(&mut events);
    assert_eq!(starts_of(&seen, "g/u"), [0, 1, 2, 0, 1, 2, 0, 1, 2]);
    let reasons: Vec<GiveUpReason> = seen
        .iter()
        .filter(|event| event.unit == "g")
        .filter_map(|event| match &event.kind {
            EventKind::Exited { reason: ExitReason::GroupGaveUp(reason) } => Some(*reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, [GiveUpReason::Intensity { max: 2, period: Duration::from_secs(3600) }; 3]);
    handle.shutdown().await;
}

/// OneForAll with a delay of `Duration::MAX`: the sibling is stopped and
/// waits with the unit for ever; stopping the group and the shutdown go
/// through the wait.
#[tokio::test(start_paused = true)]
async fn a_strategy_restart_with_a_duration_max_delay() {
    let runs = Arc::new(AtomicU32::new(0));
    let group = GroupSpec::new("g")
        .strategy(Strategy::OneForAll)
        .task(idle("first"))
        .task(always_fails("flaky", &runs).restart(RestartPolicy::new().delay(Duration::MAX)));
    let handle = Supervisor::builder().group(group).task(idle("bystander")).build().unwrap().start();
    within(DEADLINE, "flaky waits", handle.wait_state("g/flaky", UnitState::Backoff)).await.unwrap();
    within(DEADLINE, "first waits", handle.wait_state("g/first", UnitState::Backoff)).await.unwrap();
    tokio::time::sleep(100 * DAY).await;
    assert_eq!(handle.status("g/first").unwrap().state, UnitState::Backoff);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    within(DEADLINE, "stop g", handle.stop_unit("g")).await.unwrap();
    assert_eq!(handle.status("g").unwrap().state, UnitState::Stopped);
    within(DEADLINE, "start g", handle.start_unit("g")).await.unwrap();
    within(DEADLINE, "flaky waits again", handle.wait_state("g/flaky", UnitState::Backoff)).await.unwrap();
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert!(report.took < SEC, "{report}");
    assert_eq!(report.units.len(), 4, "{report}");
    assert!(report.is_clean(), "{report}");
}

/// "More than `n` restarts among its units within `period`": a restart
/// that a stop cut short never happened. intensity(1, 1 h); the unit fails
/// at once with a 10 s delay, is stopped during its backoff (no restart),
/// started by hand (not a restart either) and fails again: its first
/// restart is still to come, one within the limit of 1.
#[tokio::test(start_paused = true)]
async fn a_restart_cancelled_by_a_stop_does_not_count_toward_intensity() {
    let runs = Arc::new(AtomicU32::new(0));
    let group = GroupSpec::new("g")
        .intensity(1, Duration::from_secs(3600))
        .restart(RestartPolicy::new().max_restarts(0))
        .task(always_fails("u", &runs).restart(RestartPolicy::new().delay(Duration::from_secs(10))))
        .task(idle("other"));
    let sup = Supervisor::builder().group(group).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "backoff", handle.wait_state("g/u", UnitState::Backoff)).await.unwrap();
    within(DEADLINE, "stop", handle.stop_unit("g/u")).await.unwrap();
    let u = handle.status("g/u").unwrap();
    assert_eq!((u.state, u.restarts_total), (UnitState::Stopped, 0), "no restart was performed");
    within(DEADLINE, "start", handle.start_unit("g/u")).await.unwrap();
    // Its second run fails at once: the group decides on its first restart.
    tokio::time::sleep(MS).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let g = handle.status("g").unwrap();
    let seen = drain(&mut events);
    assert_eq!(
        g.state,
        UnitState::Running,
        "g gave up on the unit's first restart: {:?}; events {:#?}",
        g.last_error,
        seen.iter().map(|event| (&event.unit, &event.kind)).collect::<Vec<_>>()
    );
    assert_eq!(handle.status("g/u").unwrap().state, UnitState::Backoff);
    handle.shutdown().await;
}

/// OneForAll: two units failing at the same instant make one collective
/// restart, counted once: intensity(1, 1 h) is not exceeded.
#[tokio::test(start_paused = true)]
async fn simultaneous_failures_under_one_for_all_count_once() {
    let (a, b) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let group = GroupSpec::new("g")
        .strategy(Strategy::OneForAll)
        .intensity(1, Duration::from_secs(3600))
        .restart(RestartPolicy::new().max_restarts(0))
        .task(scripted("a", &a, |run| if run == 0 { SEC } else { DAY }).restart(RestartPolicy::new().delay(SEC)))
        .task(scripted("b", &b, |run| if run == 0 { SEC } else { DAY }).restart(RestartPolicy::new().delay(SEC)));
    let sup = Supervisor::builder().group(group).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    within(DEADLINE, "a again", handle.wait_status("g/a", |status| status.restarts_total == 1 && status.running))
        .await
        .unwrap();
    within(DEADLINE, "b again", handle.wait_status("g/b", |status| status.restarts_total == 1 && status.running))
        .await
        .unwrap();
    assert_eq!(handle.status("g").unwrap().state, UnitState::Running);
    let seen = drain(&mut events);
    let restarting = seen.iter().filter(|e| matches!(e.kind, EventKind::Restarting { .. })).count();
    assert_eq!(restarting, 1, "one collective restart");
    handle.shutdown().await;
}

/// A run that succeeds when the window is full ends `Exited` with
/// `Finished`, not `Failed`: "`Failed` always means something failed".
#[tokio::test(start_paused = true)]
async fn a_success_at_a_full_window_exits_cleanly() {
    let runs = Arc::new(AtomicU32::new(0));
    let sup = Supervisor::builder()
        .task(always_succeeds("job", &runs).restart(no_delay().window(2, Duration::from_secs(3600))))
        .build()
        .unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let status = within(DEADLINE, "job exits", handle.wait_state("job", UnitState::Exited)).await.unwrap();
    assert_eq!((status.restart_count, runs.load(Ordering::SeqCst)), (2, 3));
    let seen = drain(&mut events);
    assert!(gave_up_of(&seen, "job").is_empty());
    assert!(seen.iter().any(|event| event.unit == "job" && event.kind == EventKind::Finished));
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert_eq!(line_of(&report, "job").state, UnitState::Exited);
    assert!(report.is_clean(), "{report}");
}

/// A restart waiting out its delay stops counting toward the group's
/// intensity once its unit is removed: intensity(1, 1 h), a unit fails and
/// is removed during its 10 s delay; a sibling that fails next is
/// restarted, and the group runs on.
#[tokio::test(start_paused = true)]
async fn a_restart_cancelled_by_a_removal_does_not_count_toward_intensity() {
    let (gone, stays) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let delay = RestartPolicy::new().delay(Duration::from_secs(10));
    let group = GroupSpec::new("g")
        .intensity(1, Duration::from_secs(3600))
        .restart(RestartPolicy::new().max_restarts(0))
        .task(always_fails("gone", &gone).restart(delay.clone()))
        .task(idle("other"));
    let handle = Supervisor::builder().group(group).build().unwrap().start();
    within(DEADLINE, "backoff", handle.wait_state("g/gone", UnitState::Backoff)).await.unwrap();
    within(DEADLINE, "remove", handle.remove("g/gone")).await.unwrap();
    within(DEADLINE, "add", handle.add_to("g", always_fails("stays", &stays).restart(delay))).await.unwrap();
    within(DEADLINE, "its backoff", handle.wait_state("g/stays", UnitState::Backoff)).await.unwrap();
    let g = handle.status("g").unwrap();
    assert_eq!(g.state, UnitState::Running, "{:?}", g.last_error);
    // Its restart happens: the group's one restart within the hour.
    within(DEADLINE, "restarted", handle.wait_status("g/stays", |status| status.restarts_total == 1)).await.unwrap();
    assert_eq!(stays.load(Ordering::SeqCst), 2);
    handle.shutdown().await;
}

/// `delay`: "A wait too long for the clock to hold [...] never ends".
/// A delay that the clock held, but within a millisecond of its end,
/// panicked in tokio's timer (which rounds a deadline up to the next
/// millisecond) and took the whole tree down with it.
#[tokio::test(start_paused = true)]
async fn a_delay_within_a_millisecond_of_the_clock_end_waits_for_ever() {
    let delay = delay_near_the_clock_end(Duration::from_micros(500));
    let far =
        TaskSpec::new("far", |_ctx: Context| async { Err::<(), _>("boom") }).restart(RestartPolicy::new().delay(delay));
    let ticker = TaskSpec::new("ticker", |_ctx: Context| async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Err::<(), _>("boom")
    })
    .restart(RestartPolicy::new().delay(Duration::from_secs(1)).max_restarts(MaxRestarts::AtMost(5)));
    let handle = Supervisor::builder().task(far).task(ticker).build().expect("valid").start();
    let ticker =
        within(DEADLINE, "the ticker gives up", handle.wait_state("ticker", UnitState::Failed)).await.expect("known");
    assert_eq!(ticker.restart_count, 5);
    assert_eq!(handle.status("far").expect("known").state, UnitState::Backoff);
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    assert!(report.units.iter().all(|unit| unit.outcome != StopOutcome::Forced), "{report}");
}

/// Fails `after` into each of its runs; counts its runs.
fn fails_after(name: &str, after: Duration, runs: &Arc<AtomicU32>) -> TaskSpec {
    let runs = runs.clone();
    TaskSpec::new(name, move |_ctx: Context| {
        runs.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(after).await;
            Err::<(), _>("boom")
        }
    })
}

/// RestForOne [a, b, c]. b fails 0.5 s into each run (its policy: restart
/// after 2 s, at most once); a fails 1 s into each run (restart after 1 s),
/// so during b's delay, and its strategy restart takes b along. The restart
/// b's policy announced is the one its next run carries, and counts toward
/// its limit: b, failing each time, ends `Failed`. It used to run with its
/// count at 0 after each such restart, and never gave up.
#[tokio::test(start_paused = true)]
async fn a_restart_announced_then_taken_over_by_a_strategy() {
    let (a_runs, b_runs) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let group = GroupSpec::new("g")
        .strategy(Strategy::RestForOne)
        .task(fails_after("a", SEC, &a_runs).restart(RestartPolicy::new().delay(SEC)))
        .task(fails_after("b", SEC / 2, &b_runs).restart(RestartPolicy::new().delay(2 * SEC).max_restarts(1)))
        .task(idle("c"));
    let sup = Supervisor::builder().group(group).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let b = handle.wait_status("g/b", |s| s.state == UnitState::Failed || s.restarts_total >= 5).await.unwrap();
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    let seen = drain(&mut events);
    // Every restart b's policy announced is the one its next run carries.
    let mut announced = None;
    let mut mismatches = Vec::new();
    for event in seen.iter().filter(|e| e.unit == "g/b") {
        match event.kind {
            EventKind::Restarting { attempt, .. } => announced = Some(attempt),
            EventKind::Started { restart_count, .. } => {
                if let Some(attempt) = announced.take()
                    && attempt != restart_count
                {
                    mismatches.push((attempt, restart_count));
                }
            }
            _ => {}
        }
    }
    assert!(mismatches.is_empty(), "(announced attempt, restart_count started with): {mismatches:?}");
    assert_eq!(b.state, UnitState::Failed, "max_restarts(1), and b keeps failing: {b:?}");
}

/// OneForAll [x, b]. x has used its one restart. The user restarts x by
/// hand (which resets its count); while x is still stopping, b fails and the
/// strategy takes x along. Once x runs again its count is reset, and its
/// next failure is restarted: the call used to answer `Ok` and leave the
/// count as it was, and x gave up at its next failure.
#[tokio::test(start_paused = true)]
async fn a_restart_by_hand_overlapping_a_strategy_resets_the_count() {
    let x_runs = Arc::new(AtomicU32::new(0));
    let fail_x = Arc::new(tokio::sync::Notify::new());
    let fail_b = Arc::new(tokio::sync::Notify::new());
    let x = {
        let (runs, fail) = (x_runs.clone(), fail_x.clone());
        TaskSpec::new("x", move |ctx: Context| {
            let run = runs.fetch_add(1, Ordering::SeqCst);
            let fail = fail.clone();
            async move {
                if run == 0 {
                    return Err::<(), _>("first run fails");
                }
                tokio::select! {
                    () = ctx.cancelled() => {
                        tokio::time::sleep(2 * SEC).await;
                        Ok(())
                    }
                    () = fail.notified() => Err("told to fail"),
                }
            }
        })
        .restart(RestartPolicy::new().delay(SEC).max_restarts(1))
    };
    let b = {
        let fail = fail_b.clone();
        TaskSpec::new("b", move |ctx: Context| {
            let fail = fail.clone();
            async move {
                tokio::select! {
                    () = ctx.cancelled() => Ok(()),
                    () = fail.notified() => Err::<(), _>("b fails"),
                }
            }
        })
        .restart(RestartPolicy::new().delay(SEC))
    };
    let group = GroupSpec::new("g").strategy(Strategy::OneForAll).task(x).task(b);
    let handle = Supervisor::builder().group(group).build().unwrap().start();
    let x1 = handle.wait_status("g/x", |s| s.state == UnitState::Running && s.restart_count == 1).await.unwrap();
    assert_eq!(x1.restart_count, 1);
    handle.wait_status("g/b", |s| s.state == UnitState::Running).await.unwrap();

    let restart = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.restart("g/x").await })
    };
    handle.wait_state("g/x", UnitState::Stopping).await.unwrap();
    fail_b.notify_one();
    restart.await.unwrap().unwrap();
    let x2 = handle.wait_status("g/x", |s| s.state == UnitState::Running).await.unwrap();
    // x fails: a count reset by `restart` allows one restart.
    fail_x.notify_one();
    let settled = handle
        .wait_status("g/x", |s| {
            (s.state == UnitState::Running && s.restarts_total > x2.restarts_total) || s.state == UnitState::Failed
        })
        .await
        .unwrap();
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert_eq!(x2.restart_count, 0, "`restart` resets the count: {x2:?}");
    assert_eq!(settled.state, UnitState::Running, "x had a restart left after `restart`: {settled:?}");
}

/// OneForOne [x, d depends on x]. d has used a restart. The user restarts d
/// by hand and, while d is still stopping, restarts x (which stops and
/// restarts d with it). Both calls answer Ok; d's count was reset by its
/// own restart.
#[tokio::test(start_paused = true)]
async fn a_restart_by_hand_overlapping_a_restart_of_its_dependency_resets_the_count() {
    let d_runs = Arc::new(AtomicU32::new(0));
    let d = {
        let runs = d_runs.clone();
        TaskSpec::new("d", move |ctx: Context| {
            let run = runs.fetch_add(1, Ordering::SeqCst);
            async move {
                if run == 0 {
                    return Err::<(), _>("first run fails");
                }
                ctx.cancelled().await;
                tokio::time::sleep(2 * SEC).await;
                Ok(())
            }
        })
        .depends_on(["x"])
        .restart(RestartPolicy::new().delay(SEC).max_restarts(1))
    };
    let handle = Supervisor::builder().task(idle("x")).task(d).build().unwrap().start();
    handle.wait_status("d", |s| s.state == UnitState::Running && s.restart_count == 1).await.unwrap();
    let restart_d = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.restart("d").await })
    };
    handle.wait_state("d", UnitState::Stopping).await.unwrap();
    let restart_x = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.restart("x").await })
    };
    restart_d.await.unwrap().unwrap();
    restart_x.await.unwrap().unwrap();
    let d_after = handle.wait_status("d", |s| s.state == UnitState::Running).await.unwrap();
    within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert_eq!(d_after.restart_count, 0, "`restart(d)` resets d's count: {d_after:?}");
}

/// A spawn that fails is no run, let alone a stable one: the backoff grows
/// across failed spawns. They were timed from the start of the last run
/// that began, so a daemon whose working directory went away after a run
/// of `reset_after` or more (or a run of any length, once the failed
/// spawns had gone on that long) had its backoff reset at each one, and
/// was retried at the base delay for ever.
#[tokio::test]
async fn failed_spawns_do_not_reset_the_backoff() {
    let dir = tempfile::tempdir().expect("a scratch dir");
    let gone = dir.path().join("gone");
    std::fs::create_dir(&gone).unwrap();
    // Its one run removes the directory it runs in: every spawn after it fails.
    let daemon =
        supervisor::DaemonSpec::new("d", "sh").args(["-c", "rmdir \"$PWD\"; exit 1"]).current_dir(&gone).restart(
            RestartPolicy::new().delay(10 * MS).backoff(2.0).reset_after(5 * MS).max_restarts(MaxRestarts::AtMost(4)),
        );
    let sup = Supervisor::builder().daemon(daemon).build().unwrap();
    let mut events = sup.subscribe();
    let handle = sup.start();
    let seen = within(DEADLINE, "gave up", events_until(&mut events, |event| is_gave_up(event, "d"))).await;
    assert!(!gone.exists());
    let failures = picked(&seen, "d", |kind| match kind {
        EventKind::Exited { reason: ExitReason::SpawnFailed(_) } => Some(()),
        _ => None,
    });
    assert_eq!(failures.len(), 4, "{seen:?}");
    assert_eq!(delays_of(&seen, "d"), [10 * MS, 20 * MS, 40 * MS, 80 * MS]);
    handle.shutdown().await;
}
