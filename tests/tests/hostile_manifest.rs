//! Hostile checks of `supervise!` against its documented equivalent: a
//! manifest must do at run time exactly what the builder calls the README
//! gives for it do, and the typed handle must name the right units in every
//! situation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use supervisor::{
    Context, DaemonSpec, Error, EventKind, GroupSpec, MaxRestarts, Probe, Readiness, RestartOn, RestartPolicy,
    ShutdownCause, Signal, Strategy, Supervisor, SupervisorHandle, TaskSpec, UnitKind, UnitState, supervise,
    supervised,
};
use tokio::time::Instant;

#[path = "support/deadline.rs"]
mod deadline;
use deadline::{wait_state, wait_status};

/// Generous: only a hang reaches it.
const DEADLINE: Duration = Duration::from_secs(15);

async fn idle(ctx: Context) {
    ctx.cancelled().await;
}

async fn notifies(ctx: Context) {
    ctx.ready();
    ctx.cancelled().await;
}

/// The names, kinds and states of every unit, in order.
fn shape(handle: &SupervisorHandle) -> Vec<(String, UnitKind, UnitState, bool)> {
    handle.statuses().into_iter().map(|status| (status.name, status.kind, status.state, status.ready)).collect()
}

// ---------------------------------------------------------------------------
// A manifest with every kind of entry against its builder equivalent.
// ---------------------------------------------------------------------------

fn full_manifest() -> Supervisor {
    supervise! {
        shutdown_timeout = "5s";
        shutdown_order = "sequential";
        strategy = "one_for_one";
        intensity = 50; period = "60s";
        group storage { strategy = "rest_for_one", intensity = 3, period = "30s", restart = "1s", max = 2 } {
            daemon pg = "sleep 30" { stop_signal = "SIGINT", stop_timeout = "2s", env = { A = "1" }, dir = "/", success_codes = [0, 130] };
            task migrate = idle { depends_on = [pg], on = "failure" };
        }
        task api = notifies { depends_on = [storage], ready = notified, critical };
        daemon worker = ["sleep", "30"] { liveness = exec("true"), liveness_period = "10s", liveness_failures = 3 };
        daemon never = "sleep 30" { ready = tcp("127.0.0.1:1"), readiness_period = "50ms", stop_timeout = "1s" };
        task blocked = idle { depends_on = [never], watchdog = "1h" };
        group empty {} {}
    }
}

fn full_builder() -> Supervisor {
    Supervisor::builder()
        .shutdown_timeout(Duration::from_secs(5))
        .shutdown_order(supervisor::ShutdownOrder::Sequential)
        .strategy(Strategy::OneForOne)
        .intensity(50, Duration::from_secs(60))
        .group(
            GroupSpec::new("storage")
                .strategy(Strategy::RestForOne)
                .intensity(3, Duration::from_secs(30))
                .restart(RestartPolicy::new().delay(Duration::from_secs(1)).max_restarts(MaxRestarts::AtMost(2)))
                .daemon(
                    DaemonSpec::new("pg", "sleep")
                        .args(["30"])
                        .env("A", "1")
                        .current_dir("/")
                        .stop_timeout(Duration::from_secs(2))
                        .stop_signal(Signal::INT)
                        .success_codes([0, 130]),
                )
                .task(
                    TaskSpec::new("migrate", idle)
                        .restart(RestartPolicy::new().on(RestartOn::Failure))
                        .depends_on(["pg"]),
                ),
        )
        .task(TaskSpec::new("api", notifies).critical().readiness(Readiness::Notified).depends_on(["storage"]))
        .daemon(
            DaemonSpec::new("worker", "sleep")
                .args(["30"])
                .liveness(Probe::exec(["true"]).period(Duration::from_secs(10)).failure_threshold(3)),
        )
        .daemon(
            DaemonSpec::new("never", "sleep")
                .args(["30"])
                .stop_timeout(Duration::from_secs(1))
                .readiness(Readiness::Probe(Probe::tcp("127.0.0.1:1").period(Duration::from_millis(50)))),
        )
        .task(TaskSpec::new("blocked", idle).watchdog(Duration::from_secs(3600)).depends_on(["never"]))
        .group(GroupSpec::new("empty"))
        .build()
        .unwrap()
}

/// Runs one of the two trees: its shape once settled, then the stop order
/// and exit code of its shutdown.
async fn run_full(sup: Supervisor) -> (Vec<(String, UnitKind, UnitState, bool)>, Vec<(String, UnitState)>, i32) {
    let handle = sup.start();
    wait_status(DEADLINE, &handle, "api", |status| status.ready).await;
    wait_state(DEADLINE, &handle, "blocked", UnitState::Waiting).await;
    wait_state(DEADLINE, &handle, "worker", UnitState::Running).await;
    wait_state(DEADLINE, &handle, "storage/migrate", UnitState::Running).await;
    let shape = shape(&handle);
    // `pg` answers SIGINT: the stop it was asked for.
    let report = handle.shutdown().await;
    let stops = report.units.iter().map(|unit| (unit.name.clone(), unit.state)).collect();
    (shape, stops, report.exit_code())
}

#[tokio::test]
async fn full_manifest_runs_as_its_builder_equivalent() {
    let (manifest, builder) = tokio::join!(run_full(full_manifest()), run_full(full_builder()));
    assert_eq!(manifest.0, builder.0, "statuses");
    assert_eq!(manifest.1, builder.1, "stop order");
    assert_eq!(manifest.2, builder.2, "exit code");
    let names: Vec<&str> = manifest.0.iter().map(|(name, ..)| name.as_str()).collect();
    assert_eq!(
        names,
        ["storage", "storage/pg", "storage/migrate", "api", "worker", "never", "blocked", "empty"],
        "depth first in registration order"
    );
    assert_eq!(manifest.2, 0, "{:?}", manifest.1);
}

// ---------------------------------------------------------------------------
// Restart policies and strategies under a paused clock: the same events at
// the same instants.
// ---------------------------------------------------------------------------

/// Fails its first `failures` runs at once, then idles.
fn fails_first(failures: u32) -> impl Fn(Context) -> BoxedRun + Send + Sync + 'static {
    let runs = Arc::new(AtomicU32::new(0));
    move |ctx: Context| {
        let run = runs.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if run < failures {
                return Err(format!("run {run} failed"));
            }
            ctx.cancelled().await;
            Ok(())
        })
    }
}

type BoxedRun = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

/// What happened, to whom and when (milliseconds of the paused clock).
type Trace = Vec<(u128, String, String)>;

async fn trace(sup: Supervisor, until_quiet: Duration) -> (Trace, Vec<(String, UnitState, u32)>, ShutdownCause) {
    let mut events = sup.subscribe();
    let start = Instant::now();
    let handle = sup.start();
    let mut trace = Vec::new();
    let end = start + until_quiet;
    loop {
        match tokio::time::timeout_at(end, events.recv()).await {
            Ok(Ok(event)) => {
                let kind = match &event.kind {
                    EventKind::Exited { reason } => format!("Exited {reason:?}"),
                    EventKind::Restarting { attempt, delay } => format!("Restarting {attempt} {delay:?}"),
                    EventKind::GaveUp { reason } => format!("GaveUp {reason:?}"),
                    EventKind::Started { restart_count, .. } => format!("Started {restart_count}"),
                    other => format!("{other:?}").split([' ', '{']).next().unwrap().to_owned(),
                };
                trace.push((start.elapsed().as_millis(), event.unit, kind));
            }
            Ok(Err(error)) => panic!("events: {error}"),
            Err(_) => break,
        }
    }
    let statuses = handle.statuses().into_iter().map(|s| (s.name, s.state, s.restart_count)).collect();
    let report = handle.shutdown().await;
    (trace, statuses, report.cause)
}

#[tokio::test(start_paused = true)]
async fn restart_timing_matches_the_builder() {
    let manifest = supervise! {
        intensity = 100; period = "1h";
        task backoff = fails_first(5) { restart = "100ms", backoff = 2.0, max_delay = "1s", max = -1 };
        task limited = fails_first(u32::MAX) { restart = "250ms", max = 2 };
        task windowed = fails_first(u32::MAX) { restart = "10ms", window = "1s", window_max = 3 };
        task never = fails_first(u32::MAX) { on = "never" };
        task failure_only = |_ctx: Context| async {} { on = "failure", restart = "0s" };
        group g { strategy = "one_for_all", intensity = 2, period = "10s", max = 0 } {
            task steady = fails_first(0);
            task bad = fails_first(u32::MAX) { restart = "300ms" };
        }
    };
    let builder = Supervisor::builder()
        .intensity(100, Duration::from_secs(3600))
        .task(
            TaskSpec::new("backoff", fails_first(5)).restart(
                RestartPolicy::new()
                    .delay(Duration::from_millis(100))
                    .backoff(2.0)
                    .max_delay(Duration::from_secs(1))
                    .max_restarts(MaxRestarts::Unlimited),
            ),
        )
        .task(
            TaskSpec::new("limited", fails_first(u32::MAX))
                .restart(RestartPolicy::new().delay(Duration::from_millis(250)).max_restarts(MaxRestarts::AtMost(2))),
        )
        .task(
            TaskSpec::new("windowed", fails_first(u32::MAX))
                .restart(RestartPolicy::new().delay(Duration::from_millis(10)).window(3, Duration::from_secs(1))),
        )
        .task(TaskSpec::new("never", fails_first(u32::MAX)).restart(RestartPolicy::new().on(RestartOn::Never)))
        .task(
            TaskSpec::new("failure_only", |_ctx: Context| async {})
                .restart(RestartPolicy::new().on(RestartOn::Failure).delay(Duration::ZERO)),
        )
        .group(
            GroupSpec::new("g")
                .strategy(Strategy::OneForAll)
                .intensity(2, Duration::from_secs(10))
                .restart(RestartPolicy::new().max_restarts(MaxRestarts::AtMost(0)))
                .task(TaskSpec::new("steady", fails_first(0)))
                .task(
                    TaskSpec::new("bad", fails_first(u32::MAX))
                        .restart(RestartPolicy::new().delay(Duration::from_millis(300))),
                ),
        )
        .build()
        .unwrap();
    let from_manifest = trace(manifest, Duration::from_secs(20)).await;
    let from_builder = trace(builder, Duration::from_secs(20)).await;
    assert_eq!(from_manifest.0, from_builder.0, "events");
    assert_eq!(from_manifest.1, from_builder.1, "final statuses");
    assert_eq!(from_manifest.2, from_builder.2, "cause");
    let final_state = |name: &str| from_manifest.1.iter().find(|(n, ..)| n == name).map(|(_, s, c)| (*s, *c));
    assert_eq!(final_state("limited"), Some((UnitState::Failed, 2)));
    assert_eq!(final_state("never"), Some((UnitState::Exited, 0)));
    assert_eq!(final_state("failure_only"), Some((UnitState::Exited, 0)));
    assert_eq!(final_state("backoff").map(|(s, _)| s), Some(UnitState::Running));
    assert_eq!(final_state("windowed").map(|(s, _)| s), Some(UnitState::Failed));
    assert_eq!(final_state("g").map(|(s, _)| s), Some(UnitState::Failed));
    // backoff: 100, 200, 400, 800, then capped at 1 s.
    let delays: Vec<&str> = from_manifest
        .0
        .iter()
        .filter(|(_, unit, kind)| unit == "backoff" && kind.starts_with("Restarting"))
        .map(|(_, _, kind)| kind.as_str())
        .collect();
    assert_eq!(
        delays,
        ["Restarting 1 100ms", "Restarting 2 200ms", "Restarting 3 400ms", "Restarting 4 800ms", "Restarting 5 1s"]
    );
}

// ---------------------------------------------------------------------------
// `#[supervised]` fns and the manifest's options over theirs.
// ---------------------------------------------------------------------------

#[supervised(critical, on = "never")]
async fn vital_but_overridden() {}

#[tokio::test]
async fn manifest_critical_false_overrides_the_fns_critical() {
    // "`task path { ... };` sets options over the attribute's, key by key".
    let handle = supervise! {
        task vital_but_overridden { critical = false };
        task other = idle;
    }
    .start();
    wait_state(DEADLINE, &handle, "vital_but_overridden", UnitState::Exited).await;
    let ended = tokio::time::timeout(Duration::from_millis(500), handle.wait()).await;
    assert!(
        ended.is_err(),
        "the supervisor ended on a unit the manifest made non-critical: {:?}",
        ended.map(|r| r.cause)
    );
    assert_eq!(handle.status("other").unwrap().state, UnitState::Running);
    let _ = handle.shutdown().await;
}

#[supervised(max = 0)]
async fn returns_string_error() -> Result<(), String> {
    Err("a string".to_owned())
}

#[supervised(max = 0)]
async fn returns_static_str() -> Result<(), &'static str> {
    Err("a str")
}

#[supervised(max = 0)]
async fn returns_io(_ctx: Context) -> std::io::Result<()> {
    Err(std::io::Error::other("an io error"))
}

#[supervised(max = 0)]
async fn returns_boxed(_: Context) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Err("boxed".into())
}

#[supervised(max = 0)]
async fn returns_anyhow(mut ctx: Context) -> anyhow::Result<()> {
    let _ = &mut ctx;
    Err(anyhow::anyhow!("inner").context("outer"))
}

#[supervised(max = 0, name = "panics-ünïcode")]
async fn panics(_ctx: Context) {
    panic!("boom {}", 42);
}

#[supervised(max = 0)]
async fn panics_with_any() {
    std::panic::panic_any(42_u8);
}

#[supervised(max = 0)]
async fn succeeds_ok(ctx: Context) -> Result<(), std::fmt::Error> {
    assert_eq!(ctx.name(), "succeeds_ok");
    Ok(())
}

#[supervised(restart = "1s", backoff = 3.0, max = 2, on = "failure")]
async fn backs_off(ctx: Context) -> Result<(), String> {
    Err(format!("run {}", ctx.restart_count()))
}

#[tokio::test]
async fn supervised_signatures_report_as_documented() {
    let handle = supervise! {
        task returns_string_error;
        task returns_static_str;
        task returns_io;
        task returns_boxed;
        task returns_anyhow;
        task panics;
        task panics_with_any;
        task succeeds_ok;
    }
    .start();
    let failed = |name: &'static str, error: &'static str| {
        let handle = handle.clone();
        async move {
            let status = wait_state(DEADLINE, &handle, name, UnitState::Failed).await;
            assert_eq!(status.last_error.as_deref(), Some(error), "{name}: {status:?}");
            assert_eq!(status.exit_code, Some(1), "{name}");
        }
    };
    failed("returns_string_error", "a string").await;
    failed("returns_static_str", "a str").await;
    failed("returns_io", "an io error").await;
    failed("returns_boxed", "boxed").await;
    // anyhow's message with its causes, as `{:#}` shows it.
    failed("returns_anyhow", "outer: inner").await;
    let panicked = wait_state(DEADLINE, &handle, "panics-ünïcode", UnitState::Failed).await;
    assert_eq!(panicked.last_error.as_deref(), Some("panicked: boom 42"));
    let any = wait_state(DEADLINE, &handle, "panics_with_any", UnitState::Failed).await;
    assert!(any.last_error.as_deref().is_some_and(|error| error.starts_with("panicked")), "{any:?}");
    let ok = wait_state(DEADLINE, &handle, "succeeds_ok", UnitState::Exited).await;
    assert_eq!((ok.exit_code, ok.last_error), (Some(0), None));
    let report = handle.shutdown().await;
    assert_eq!(report.exit_code(), 1, "units gave up: {report}");
}

#[tokio::test(start_paused = true)]
async fn supervised_policy_and_manifest_override_time_alike() {
    let sup = supervise! {
        task backs_off;
        group g {} { task backs_off { restart = "2s" }; }
    };
    let mut events = sup.subscribe();
    let handle = sup.start();
    let mut delays: Vec<(String, Duration)> = Vec::new();
    while delays.len() < 4 {
        let event = tokio::time::timeout(DEADLINE, events.recv()).await.unwrap().unwrap();
        if let EventKind::Restarting { delay, .. } = event.kind {
            delays.push((event.unit, delay));
        }
    }
    delays.sort();
    assert_eq!(
        delays,
        [
            ("backs_off".to_owned(), Duration::from_secs(1)),
            ("backs_off".to_owned(), Duration::from_secs(3)),
            ("g/backs_off".to_owned(), Duration::from_secs(2)),
            ("g/backs_off".to_owned(), Duration::from_secs(6)),
        ],
        "the attribute's backoff applies to the manifest's delay"
    );
    for name in ["backs_off", "g/backs_off"] {
        let status = wait_state(DEADLINE, &handle, name, UnitState::Failed).await;
        assert_eq!((status.restart_count, status.last_error.as_deref()), (2, Some("run 2")), "{name}");
    }
    let _ = handle.shutdown().await;
}

#[supervised(restart = "1s", backoff = 3.0, window = "1m", window_max = 3, max = 5)]
async fn completed_by_the_manifest(_ctx: Context) -> Result<(), String> {
    Err("down".to_owned())
}

/// `max_delay`, `window` and `window_max` on a `task path;` entry go over
/// the fn's `backoff` and window, as their builder equivalent does.
#[tokio::test(start_paused = true)]
async fn manifest_options_complete_the_fns_backoff_and_window() {
    let manifest = supervise! {
        intensity = 100; period = "1h";
        task completed_by_the_manifest { max_delay = "2s" };
        group window_max { intensity = 100, period = "1h" } { task completed_by_the_manifest { window_max = 1 }; }
        group window { intensity = 100, period = "1h" } { task completed_by_the_manifest { window = "1ms" }; }
    };
    let fns = || {
        RestartPolicy::new()
            .delay(Duration::from_secs(1))
            .backoff(3.0)
            .window(3, Duration::from_secs(60))
            .max_restarts(MaxRestarts::AtMost(5))
    };
    let task =
        |policy: RestartPolicy| TaskSpec::new("completed_by_the_manifest", completed_by_the_manifest).restart(policy);
    let group = |name: &str| GroupSpec::new(name).intensity(100, Duration::from_secs(3600));
    let builder = Supervisor::builder()
        .intensity(100, Duration::from_secs(3600))
        .task(task(fns().max_delay(Duration::from_secs(2))))
        .group(group("window_max").task(task(fns().window(1, Duration::from_secs(60)))))
        .group(group("window").task(task(fns().window(3, Duration::from_millis(1)))))
        .build()
        .unwrap();
    let quiet = Duration::from_secs(600);
    let (manifest, builder) = (trace(manifest, quiet).await, trace(builder, quiet).await);
    assert_eq!(manifest.0, builder.0);
    assert_eq!(
        manifest.1,
        [
            ("completed_by_the_manifest".to_owned(), UnitState::Failed, 3),
            ("window_max".to_owned(), UnitState::Running, 0),
            ("window_max/completed_by_the_manifest".to_owned(), UnitState::Failed, 1),
            ("window".to_owned(), UnitState::Running, 0),
            ("window/completed_by_the_manifest".to_owned(), UnitState::Failed, 5),
        ]
    );
    let delays: Vec<&str> = manifest
        .0
        .iter()
        .filter(|(_, unit, _)| unit == "completed_by_the_manifest")
        .filter_map(|(_, _, kind)| kind.strip_prefix("Restarting "))
        .collect();
    assert_eq!(delays, ["1 1s", "2 2s", "3 2s"], "the fn's backoff, capped by the manifest's `max_delay`");
}

// ---------------------------------------------------------------------------
// Commands: what the child really receives, against a real POSIX shell.
// ---------------------------------------------------------------------------

/// The words `sh` makes of `words`, as `printf '<%s>\n'` prints them.
fn sh_words(words: &str) -> Vec<String> {
    let output =
        std::process::Command::new("sh").arg("-c").arg(format!("printf '<%s>\\n' {words}")).output().expect("sh runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().lines().map(str::to_owned).collect()
}

/// Runs `printf '<%s>\n' WORDS` from a manifest, and through `sh`, and
/// returns both outputs.
macro_rules! argv_case {
    ($words:tt, $full:tt) => {{
        let handle = supervise! { daemon argv = $full { on = "never" }; }.start();
        let status = wait_state(DEADLINE, &handle, "argv", UnitState::Exited).await;
        assert_eq!(status.exit_code, Some(0), "{status:?}");
        let tail = handle.tail("argv", 100).unwrap();
        let _ = handle.shutdown().await;
        (tail, sh_words($words))
    }};
}

#[tokio::test]
async fn command_strings_split_as_sh_splits_them() {
    let (got, sh) = argv_case!(
        r#"a 'b c' "d e" '' "" --x=y -- "--" 'it'\''s' "q\"q" "back\\slash" "dollar\$" a\ b héllo 日本 "tab	in" a'b'"c"d"#,
        r#"printf '<%s>\n' a 'b c' "d e" '' "" --x=y -- "--" 'it'\''s' "q\"q" "back\\slash" "dollar\$" a\ b héllo 日本 "tab	in" a'b'"c"d"#
    );
    assert_eq!(got, sh);
    assert!(got.contains(&"<>".to_owned()), "{got:?}");
}

#[tokio::test]
async fn command_string_escapes_inside_double_quotes_as_sh() {
    // In double quotes, a backslash before a letter stays; `\n` is two characters.
    let (got, sh) = argv_case!(r#""a\nb" "c\'d" 'e\f' g\hi"#, r#"printf '<%s>\n' "a\nb" "c\'d" 'e\f' g\hi"#);
    assert_eq!(got, sh);
}

#[tokio::test]
async fn command_string_tabs_quoted_newlines_and_comments_as_sh() {
    let (got, sh) = argv_case!(
        "one\ttwo 'multi\nline' \"dq\nline\" x#y #rest",
        "printf '<%s>\\n' one\ttwo 'multi\nline' \"dq\nline\" x#y #rest"
    );
    assert_eq!(got, sh);
}

#[tokio::test]
async fn command_string_line_continuation_as_sh() {
    let (got, sh) = argv_case!("ab\\\ncd \"ef\\\ngh\"", "printf '<%s>\\n' ab\\\ncd \"ef\\\ngh\"");
    assert_eq!(got, sh);
}

#[tokio::test]
async fn array_commands_pass_words_untouched() {
    let handle = supervise! {
        daemon argv = ["sh", "-c", "printf '<%s>\\n' \"$@\"", "sh", "", " ", "a b", "$HOME", "'q'", "--", "x=y", "日本", ""] {
            on = "never",
        };
    }
    .start();
    wait_state(DEADLINE, &handle, "argv", UnitState::Exited).await;
    assert_eq!(
        handle.tail("argv", 100).unwrap(),
        ["<>", "< >", "<a b>", "<$HOME>", "<'q'>", "<-->", "<x=y>", "<日本>", "<>"]
    );
    let _ = handle.shutdown().await;
}

#[tokio::test]
async fn env_and_dir_reach_the_process() {
    let handle = supervise! {
        daemon e = ["sh", "-c", "printf '%s|%s|%s\\n' \"$SPACED\" \"$UNI\" \"$(pwd)\""] {
            env = { SPACED = "a b = c", "UNI" = "日本\t語", EMPTY = "" },
            dir = "/tmp",
            on = "never",
        };
    }
    .start();
    wait_state(DEADLINE, &handle, "e", UnitState::Exited).await;
    let tmp = std::fs::canonicalize("/tmp").unwrap();
    assert_eq!(handle.tail("e", 10).unwrap(), [format!("a b = c|日本\t語|{}", tmp.display())]);
    let _ = handle.shutdown().await;
}

// ---------------------------------------------------------------------------
// Extremes the macro accepts.
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn huge_restart_delay_waits_and_shuts_down() {
    let handle = supervise! {
        shutdown_timeout = "500000000000y";
        task slow = fails_first(1) { restart = "500000000000y" };
        task backoff = fails_first(3) { restart = "1ms", backoff = 1e300, jitter = 1.0 };
        task capped = fails_first(3) { restart = "1ms", backoff = 1e300, max_delay = "500000000000y", reset_after = "500000000000y" };
    }
    .start();
    let slow = wait_state(DEADLINE, &handle, "slow", UnitState::Backoff).await;
    assert_eq!(slow.restart_count, 0);
    wait_state(DEADLINE, &handle, "backoff", UnitState::Backoff).await;
    wait_state(DEADLINE, &handle, "capped", UnitState::Backoff).await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(handle.status("slow").unwrap().state, UnitState::Backoff);
    let report = tokio::time::timeout(DEADLINE, handle.shutdown()).await.expect("shutdown ends");
    assert!(report.units.iter().all(|unit| unit.state == UnitState::Stopped), "{report}");
}

#[tokio::test(start_paused = true)]
async fn huge_timeouts_and_periods_of_tasks_are_far_futures() {
    let handle = supervise! {
        intensity = 4294967295; period = "500000000000y";
        task watched = notifies { watchdog = "500000000000y", stop_timeout = "500000000000y", max = 4294967295 };
        task probed = notifies {
            ready = tcp("127.0.0.1:1"), readiness_period = "500000000000y", readiness_timeout = "500000000000y",
            readiness_initial_delay = "500000000000y", readiness_failures = 4294967295, readiness_successes = 4294967295,
            liveness = tcp("127.0.0.1:1"), liveness_period = "500000000000y", liveness_initial_delay = "500000000000y",
            liveness_timeout = "500000000000y", liveness_failures = 4294967295,
        };
        task windowed = fails_first(2) { restart = "1ms", window = "500000000000y", window_max = 4294967295 };
        group g { intensity = 1, period = "500000000000y" } { task x = idle; }
    }
    .start();
    wait_state(DEADLINE, &handle, "watched", UnitState::Running).await;
    wait_state(DEADLINE, &handle, "probed", UnitState::Running).await;
    let windowed =
        wait_status(DEADLINE, &handle, "windowed", |status| status.running && status.restart_count == 2).await;
    wait_state(DEADLINE, &handle, "g/x", UnitState::Running).await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(handle.status("watched").unwrap().state, UnitState::Running);
    let probed = handle.status("probed").unwrap();
    assert!(!probed.ready && probed.running, "both probes wait their initial delay: {probed:?}");
    assert_eq!(handle.status("windowed").unwrap().last_start, windowed.last_start);
    let report = tokio::time::timeout(DEADLINE, handle.shutdown()).await.expect("shutdown ends");
    assert_eq!(report.exit_code(), 0, "{report}");
}

#[tokio::test]
async fn huge_timeouts_of_a_daemon_still_stop_it() {
    let handle = supervise! {
        shutdown_timeout = "500000000000y";
        daemon probed = "sleep 30" {
            stop_timeout = "500000000000y", max = 4294967295,
            ready = exec("true"), readiness_period = "500000000000y", readiness_timeout = "500000000000y",
            readiness_failures = 4294967295,
            liveness = exec("true"), liveness_period = "500000000000y", liveness_initial_delay = "500000000000y",
            liveness_timeout = "500000000000y", liveness_failures = 4294967295,
        };
    }
    .start();
    // The first readiness attempt runs at once; its period is far away.
    wait_status(DEADLINE, &handle, "probed", |status| status.ready).await;
    let report = tokio::time::timeout(DEADLINE, handle.shutdown()).await.expect("shutdown ends");
    assert_eq!(report.exit_code(), 0, "{report}");
    assert_eq!(report.units[0].state, UnitState::Stopped, "{report}");
}

#[tokio::test]
async fn zero_durations_the_macro_accepts() {
    let handle = supervise! {
        shutdown_timeout = "0s";
        task zero = fails_first(3) { restart = "0s", stop_timeout = "0s", reset_after = "0s", max_delay = "0s", backoff = 2.0 };
        daemon d = "sleep 30" { stop_timeout = "0s", ready = exec("true"), readiness_initial_delay = "0s" };
        task stubborn = |_ctx: Context| std::future::pending::<()>() { stop_timeout = "0s" };
    }
    .start();
    let zero = wait_state(DEADLINE, &handle, "zero", UnitState::Running).await;
    assert_eq!(zero.restart_count, 3);
    wait_status(DEADLINE, &handle, "d", |status| status.ready).await;
    wait_state(DEADLINE, &handle, "stubborn", UnitState::Running).await;
    let report = tokio::time::timeout(DEADLINE, handle.shutdown()).await.expect("shutdown ends");
    assert!(report.units.iter().all(|unit| !unit.state.is_active()), "{report}");
}

#[tokio::test(start_paused = true)]
async fn window_max_zero_gives_up_at_the_first_restart() {
    let handle = supervise! {
        task w = fails_first(u32::MAX) { restart = "1ms", window = "1s", window_max = 0 };
    }
    .start();
    let status = wait_state(DEADLINE, &handle, "w", UnitState::Failed).await;
    assert_eq!(status.restarts_total, 0, "{status:?}");
    let _ = handle.shutdown().await;
}

// ---------------------------------------------------------------------------
// The typed handle.
// ---------------------------------------------------------------------------

#[supervised(name = "custom-name")]
async fn renamed(ctx: Context) {
    ctx.ready();
    ctx.cancelled().await;
}

supervise! {
    /// A typed form with every kind of entry.
    pub struct Typed;
    shutdown_timeout = "5s";
    group storage { strategy = "rest_for_one" } {
        daemon pg = "sleep 30" { stop_timeout = "1s" };
        task migrate = idle { depends_on = [pg] };
        group "deep-er" {} {
            task renamed;
        }
    }
    task api = notifies { depends_on = [storage], ready = notified };
    daemon "echo-args" = "printf '%s\\n' 'a b' c" { on = "never" };
    task renamed;
}

#[tokio::test]
async fn typed_fields_name_their_paths() {
    let typed = Typed::start();
    let paths = [
        typed.storage.path(),
        typed.storage.pg.path(),
        typed.storage.migrate.path(),
        typed.storage.deep_er.path(),
        typed.storage.deep_er.renamed.path(),
        typed.api.path(),
        typed.echo_args.path(),
        typed.renamed.path(),
    ];
    let names = typed.handle().unit_names();
    assert_eq!(paths.to_vec(), names, "each field names its unit, in order");
    for name in &names {
        assert!(typed.handle().status(name).is_some(), "{name}");
    }
    typed.api.wait_ready().await.unwrap();
    typed.storage.deep_er.renamed.wait_ready().await.unwrap();
    typed.echo_args.wait_state(UnitState::Exited).await.unwrap();
    assert_eq!(typed.echo_args.tail(10).unwrap(), ["a b", "c"]);
    let debug = format!("{:?}", typed.storage.deep_er);
    assert!(debug.contains("storage/deep-er"), "{debug}");
    let report = typed.handle().shutdown().await;
    assert!(report.is_clean(), "{report}");
}

#[tokio::test]
async fn typed_fields_follow_remove_and_re_add() {
    let typed = Typed::start();
    typed.api.wait_ready().await.unwrap();
    let report = typed.renamed.remove().await.unwrap();
    assert_eq!(report.name, "custom-name");
    assert!(typed.renamed.status().is_none());
    assert!(matches!(typed.renamed.restart().await, Err(Error::UnknownUnit { .. })));
    assert!(matches!(typed.renamed.remove().await, Err(Error::UnknownUnit { .. })));
    assert!(matches!(typed.renamed.wait_ready().await, Err(Error::UnknownUnit { .. } | Error::WillNotHappen { .. })));
    // Added again under the same name, as a daemon this time: the field reaches it.
    typed.handle().add(DaemonSpec::new("custom-name", "sleep").arg("30")).await.unwrap();
    let status = typed.renamed.wait_state(UnitState::Running).await.unwrap();
    assert_eq!(status.kind, UnitKind::Process);
    typed.renamed.signal(Signal::TERM).unwrap();
    // A group removed whole: its fields answer UnknownUnit.
    typed.api.stop().await.unwrap();
    typed.api.remove().await.unwrap();
    typed.storage.remove().await.unwrap();
    assert!(typed.storage.pg.status().is_none());
    assert!(matches!(typed.storage.deep_er.renamed.restart().await, Err(Error::UnknownUnit { .. })));
    typed.handle().add_to("", TaskSpec::new("api", notifies)).await.ok();
    let _ = typed.handle().shutdown().await;
}

#[tokio::test]
async fn typed_handle_after_shutdown_and_from_other_tasks() {
    let typed = Typed::start();
    let clone = typed.clone();
    let waiter = tokio::spawn(async move { clone.storage.deep_er.renamed.wait_ready().await.map(|s| s.name) });
    assert_eq!(waiter.await.unwrap().unwrap(), "storage/deep-er/custom-name");
    let clone = typed.clone();
    let restarted = tokio::spawn(async move {
        clone.storage.pg.restart().await?;
        clone.storage.migrate.wait_state(UnitState::Running).await
    });
    assert_eq!(restarted.await.unwrap().unwrap().name, "storage/migrate");
    let report = typed.handle().shutdown().await;
    assert_eq!(report.exit_code(), 0, "{report}");
    // After the shutdown: statuses stay, calls that would start say so.
    assert_eq!(typed.api.status().unwrap().state, UnitState::Stopped);
    assert!(matches!(typed.api.restart().await, Err(Error::ShuttingDown { .. })), "{:?}", typed.api.restart().await);
    assert!(matches!(typed.storage.start().await, Err(Error::ShuttingDown { .. })));
    assert!(matches!(typed.api.wait_ready().await, Err(Error::WillNotHappen { .. })));
    assert!(typed.storage.pg.signal(Signal::HUP).is_err());
    assert!(typed.echo_args.tail(10).is_ok());
}

#[tokio::test]
async fn typed_form_inside_generic_fn_and_async_block() {
    fn make<T: Send + 'static>(_marker: T) -> Supervisor {
        supervise! { task inside = |ctx: Context| async move { ctx.cancelled().await }; }
    }
    let block = async {
        supervise! {
            struct InBlock;
            group g {} { task renamed; daemon s = "sleep 30"; }
        }
        let services = InBlock::start();
        services.g.renamed.wait_ready().await.unwrap();
        assert_eq!(services.g.renamed.path(), "g/custom-name");
        services.g.s.wait_state(UnitState::Running).await.unwrap();
        services.handle().shutdown().await
    };
    let report = block.await;
    assert!(report.is_clean(), "{report}");
    let handle = make(0_u8).start();
    wait_state(DEADLINE, &handle, "inside", UnitState::Running).await;
    let _ = handle.shutdown().await;
}

mod second_module {
    use supervisor::{Context, supervise};

    async fn idle(ctx: Context) {
        ctx.cancelled().await;
    }

    supervise! {
        pub(crate) struct First;
        group storage {} { task a = idle; }
    }

    supervise! {
        pub(crate) struct Second;
        group storage {} { task b = idle; }
    }
}

#[tokio::test]
async fn two_typed_forms_in_one_module() {
    let (first, second) = (second_module::First::start(), second_module::Second::start());
    first.storage.a.wait_state(UnitState::Running).await.unwrap();
    second.storage.b.wait_state(UnitState::Running).await.unwrap();
    assert!(first.handle().status("storage/b").is_none());
    let _ = first.handle().shutdown().await;
    let _ = second.handle().shutdown().await;
}

// ---------------------------------------------------------------------------
// The typed form's group types, whatever the names of the groups.
// ---------------------------------------------------------------------------

mod group_type_names {
    use super::idle;
    use supervisor::supervise;

    supervise! {
        pub(crate) struct 服务;
        group "2024" {} { group "①" {} { task x = idle; } }
    }

    supervise! {
        pub(crate) struct Дом;
        group "²3" {} { task x = idle; }
    }

    supervise! {
        #[allow(non_camel_case_types)]
        pub(crate) struct _1;
        group "m²" {} { task x = idle; }
    }
}

#[tokio::test]
async fn group_types_are_made_of_any_group_names() {
    let first = group_type_names::服务::start();
    assert_eq!(first._2024.__.x.path(), "2024/①/x");
    first._2024.__.x.wait_state(UnitState::Running).await.unwrap();
    let second = group_type_names::Дом::start();
    second.__3.x.wait_state(UnitState::Running).await.unwrap();
    let third = group_type_names::_1::start();
    assert_eq!(third.m_.x.path(), "m²/x");
    third.m_.x.wait_state(UnitState::Running).await.unwrap();
    for report in [first.handle().shutdown().await, second.handle().shutdown().await, third.handle().shutdown().await] {
        assert!(report.is_clean(), "{report}");
    }
}
