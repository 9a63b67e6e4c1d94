//! The units' metrics through the `metrics` facade
//! (`SupervisorHandle::publish_metrics`), recorded by a real exporter, the
//! Prometheus one, and compared with the units' states as they change:
//! crashes and restarts of a real process, a stop, a unit added and one
//! removed at run time, and the end of the supervisor.
//!
//! Each test runs on a current-thread runtime with a recorder of its own
//! set for that thread, so the tests of this binary do not share metrics.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use supervisor::{
    Context, DaemonSpec, GroupSpec, MaxRestarts, RestartPolicy, Supervisor, SupervisorHandle, TaskSpec, UnitState,
    UnitStatus,
};
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(20);
const STATES: [&str; 8] = ["waiting", "starting", "running", "backoff", "stopping", "stopped", "exited", "failed"];

fn waiting_task(name: &str) -> TaskSpec {
    TaskSpec::new(name, |ctx: Context| async move { ctx.cancelled().await })
}

/// The samples of a Prometheus text: `name{labels}` to value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (key, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample {line:?}"));
            (key.to_owned(), value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")))
        })
        .collect()
}

/// The key of a unit's sample, labels in the order the crate gives them.
fn key(name: &str, status: &UnitStatus, extra: &str) -> String {
    format!("{name}{{unit=\"{}\",type=\"{}\"{extra}}}", status.name, status.kind.as_str())
}

/// What the exporter should show for the units as they are now; `None`
/// while it shows something else (the publisher has not caught up yet).
fn mismatch(recorder: &PrometheusRecorder, handle: &SupervisorHandle) -> Option<String> {
    let text = recorder.handle().render();
    let samples = samples(&text);
    let expect = |key: String, value: f64| match samples.get(&key) {
        Some(&found) if (found - value).abs() < 1e-6 => None,
        found => Some(format!("{key}: expected {value}, found {found:?}")),
    };
    for status in handle.statuses() {
        let flag = |on: bool| if on { 1.0 } else { 0.0 };
        let mut wanted = vec![
            (key("supervisor_unit_up", &status, ""), flag(status.running)),
            (key("supervisor_unit_ready", &status, ""), flag(status.ready)),
            (key("supervisor_unit_restarts_total", &status, ""), status.restarts_total as f64),
        ];
        for state in STATES {
            let label = format!(",state=\"{state}\"");
            wanted.push((key("supervisor_unit_state", &status, &label), flag(status.state.as_str() == state)));
        }
        if let Some(code) = status.exit_code {
            wanted.push((key("supervisor_unit_last_exit_code", &status, ""), f64::from(code)));
        }
        if let Some(start) = status.last_start {
            let seconds = start.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64();
            wanted.push((key("supervisor_unit_start_time_seconds", &status, ""), seconds));
        }
        for (key, value) in wanted {
            if let Some(problem) = expect(key, value) {
                return Some(problem);
            }
        }
    }
    None
}

/// Waits until the exporter shows the units' states.
async fn wait_for_match(recorder: &PrometheusRecorder, handle: &SupervisorHandle) {
    let deadline = Instant::now() + DEADLINE;
    while let Some(problem) = mismatch(recorder, handle) {
        assert!(Instant::now() < deadline, "{problem}\n{}", recorder.handle().render());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn value(recorder: &PrometheusRecorder, key: &str) -> Option<f64> {
    samples(&recorder.handle().render()).get(key).copied()
}

#[tokio::test]
async fn the_exported_metrics_follow_the_units_states() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);

    let handle = Supervisor::builder()
        .task(waiting_task("steady"))
        // Crashes with code 3, twice restarted, then gives up.
        .daemon(
            DaemonSpec::new("crasher", "sh")
                .args(["-c", "sleep 0.05; exit 3"])
                .restart(RestartPolicy::new().delay(Duration::from_millis(50)).max_restarts(MaxRestarts::AtMost(2))),
        )
        .daemon(DaemonSpec::new("web", "sleep").arg("300"))
        .group(GroupSpec::new("storage").task(waiting_task("db")))
        .build()
        .unwrap()
        .start();
    let publisher = handle.publish_metrics();
    // Set at once, before any event.
    assert!(recorder.handle().render().contains("supervisor_unit_up{unit=\"storage/db\",type=\"task\"}"));

    handle.wait_state("crasher", UnitState::Failed).await.unwrap();
    handle.wait_ready("web").await.unwrap();
    wait_for_match(&recorder, &handle).await;
    let crasher = handle.status("crasher").unwrap();
    assert_eq!(crasher.restarts_total, 2);
    assert_eq!(value(&recorder, "supervisor_unit_restarts_total{unit=\"crasher\",type=\"process\"}"), Some(2.0));
    assert_eq!(value(&recorder, "supervisor_unit_last_exit_code{unit=\"crasher\",type=\"process\"}"), Some(3.0));
    assert_eq!(
        value(&recorder, "supervisor_unit_state{unit=\"crasher\",type=\"process\",state=\"failed\"}"),
        Some(1.0)
    );
    assert_eq!(value(&recorder, "supervisor_unit_up{unit=\"crasher\",type=\"process\"}"), Some(0.0));
    assert_eq!(value(&recorder, "supervisor_up"), Some(1.0));
    assert_eq!(value(&recorder, "supervisor_ready"), Some(0.0), "a unit gave up: not ready");

    // The exporter knows the kinds and the units of measure.
    let text = recorder.handle().render();
    assert!(text.contains("# TYPE supervisor_unit_restarts_total counter"), "{text}");
    assert!(text.contains("# TYPE supervisor_unit_up gauge"), "{text}");
    assert!(text.contains("# HELP supervisor_unit_start_time_seconds"), "{text}");

    // A stop, a start of the unit that gave up, a manual restart.
    handle.stop_unit("web").await.unwrap();
    wait_for_match(&recorder, &handle).await;
    assert_eq!(value(&recorder, "supervisor_unit_state{unit=\"web\",type=\"process\",state=\"stopped\"}"), Some(1.0));
    assert_eq!(value(&recorder, "supervisor_unit_up{unit=\"web\",type=\"process\"}"), Some(0.0));
    handle.start_unit("web").await.unwrap();
    handle.restart("storage").await.unwrap();
    handle.wait_ready("storage/db").await.unwrap();
    wait_for_match(&recorder, &handle).await;

    // Units added and removed at run time.
    handle.add(waiting_task("job")).await.unwrap();
    handle.wait_ready("job").await.unwrap();
    wait_for_match(&recorder, &handle).await;
    assert_eq!(value(&recorder, "supervisor_unit_up{unit=\"job\",type=\"task\"}"), Some(1.0));
    handle.remove("job").await.unwrap();
    let deadline = Instant::now() + DEADLINE;
    while value(&recorder, "supervisor_unit_up{unit=\"job\",type=\"task\"}") != Some(0.0) {
        assert!(Instant::now() < deadline, "a removed unit is not up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The uptime gauge is set on events and by `refresh`.
    tokio::time::sleep(Duration::from_millis(300)).await;
    publisher.refresh();
    let uptime = value(&recorder, "supervisor_unit_uptime_seconds{unit=\"steady\",type=\"task\"}").unwrap();
    assert!(uptime >= 0.3, "uptime after refresh: {uptime}");

    // The end: every unit down, `supervisor_up` 0, and the publisher ends.
    handle.shutdown().await;
    tokio::time::timeout(DEADLINE, publisher.stopped()).await.expect("the publisher ends with the supervisor");
    assert_eq!(value(&recorder, "supervisor_up"), Some(0.0));
    assert_eq!(value(&recorder, "supervisor_unit_up{unit=\"steady\",type=\"task\"}"), Some(0.0));
    assert_eq!(value(&recorder, "supervisor_unit_up{unit=\"web\",type=\"process\"}"), Some(0.0));
}

#[tokio::test]
async fn the_facade_and_the_prometheus_text_say_the_same() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let handle = Supervisor::builder()
        .task(waiting_task("steady"))
        .daemon(
            DaemonSpec::new("once", "sh")
                .args(["-c", "exit 7"])
                .restart(RestartPolicy::new().max_restarts(MaxRestarts::AtMost(0))),
        )
        .build()
        .unwrap()
        .start();
    let publisher = handle.publish_metrics();
    handle.wait_state("once", UnitState::Failed).await.unwrap();
    handle.wait_ready("steady").await.unwrap();
    wait_for_match(&recorder, &handle).await;

    // Every sample of the facade that does not move with the clock is in
    // the text of `metrics_text`, with the same labels and value.
    let facade = samples(&recorder.handle().render());
    let text = samples(&handle.metrics_text());
    let mut compared = 0;
    for (key, value) in &facade {
        if key.contains("uptime_seconds") {
            continue;
        }
        let found = text.get(key).unwrap_or_else(|| panic!("{key} is not in the Prometheus text"));
        assert!((found - value).abs() < 1e-3, "{key}: facade {value}, text {found}");
        compared += 1;
    }
    assert!(compared >= 2 + 2 * (2 + 8 + 1 + 1), "only {compared} samples compared");
    handle.shutdown().await;
    publisher.stopped().await;
}

#[tokio::test]
async fn stop_leaves_the_last_values() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let handle = Supervisor::builder().task(waiting_task("steady")).build().unwrap().start();
    let publisher = handle.publish_metrics();
    handle.wait_ready("steady").await.unwrap();
    wait_for_match(&recorder, &handle).await;
    publisher.stop().await;
    handle.stop_unit("steady").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        value(&recorder, "supervisor_unit_up{unit=\"steady\",type=\"task\"}"),
        Some(1.0),
        "a stopped publisher sets nothing more"
    );
    handle.shutdown().await;
}

/// Waits until the exporter shows `value` for `key`.
async fn wait_for_value(recorder: &PrometheusRecorder, key: &str, value: f64) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let found = samples(&recorder.handle().render()).get(key).copied();
        if found == Some(value) {
            return;
        }
        assert!(Instant::now() < deadline, "{key}: expected {value}, found {found:?}");
        if key == "supervisor_ready" {
            eprintln!("DEBUG ready {found:?} {}", supervisor::Supervisor::builder().build().is_ok());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A task that, once asked to stop, takes a minute to end, all of which its
/// stop timeout gives it.
fn slow_to_stop(name: &str) -> TaskSpec {
    let linger = Duration::from_secs(60);
    TaskSpec::new(name, move |ctx: Context| async move {
        ctx.cancelled().await;
        tokio::time::sleep(linger).await;
    })
    .stop_timeout(linger)
}

/// The facade is "updated on the supervisor's events", and a unit asked to
/// stop has no event until it has stopped: for the whole grace period, it
/// showed `running` and ready, where `/metrics` and `/readyz` said
/// otherwise. The units of a removed group kept their last samples, as if
/// they still ran.
#[tokio::test]
async fn a_stop_and_a_removed_group_show_at_once() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let handle = Supervisor::builder()
        .task(slow_to_stop("slow"))
        .group(GroupSpec::new("g").task(waiting_task("inner")))
        .build()
        .unwrap()
        .start();
    let _publisher = handle.publish_metrics();
    handle.wait_ready("slow").await.unwrap();
    handle.wait_ready("g/inner").await.unwrap();
    wait_for_match(&recorder, &handle).await;

    handle.remove("g").await.unwrap();
    wait_for_value(&recorder, "supervisor_unit_up{unit=\"g/inner\",type=\"task\"}", 0.0).await;
    wait_for_value(&recorder, "supervisor_unit_state{unit=\"g/inner\",type=\"task\",state=\"running\"}", 0.0).await;

    let stopping = tokio::spawn({
        let handle = handle.clone();
        async move { handle.stop_unit("slow").await }
    });
    handle.wait_state("slow", UnitState::Stopping).await.unwrap();
    wait_for_value(&recorder, "supervisor_unit_state{unit=\"slow\",type=\"task\",state=\"stopping\"}", 1.0).await;
    wait_for_value(&recorder, "supervisor_unit_ready{unit=\"slow\",type=\"task\"}", 0.0).await;
    assert!(!stopping.is_finished(), "shown while it stops");
    handle.skip_grace();
    stopping.await.unwrap().unwrap();
    handle.shutdown().await;
}

/// `supervisor_ready`: "1 when every unit that should run is ready and no
/// shutdown has begun". It stayed 1 through the shutdown, until the last
/// unit had stopped.
#[tokio::test]
async fn a_shutdown_shows_at_once() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let handle = Supervisor::builder().task(slow_to_stop("slow")).build().unwrap().start();
    let publisher = handle.publish_metrics();
    handle.wait_ready("slow").await.unwrap();
    wait_for_value(&recorder, "supervisor_ready", 1.0).await;
    let shutdown = tokio::spawn({
        let handle = handle.clone();
        async move { handle.shutdown().await }
    });
    handle.wait_state("slow", UnitState::Stopping).await.unwrap();
    wait_for_value(&recorder, "supervisor_ready", 0.0).await;
    assert!(!shutdown.is_finished(), "shown while the shutdown goes on");
    handle.skip_grace();
    shutdown.await.unwrap();
    tokio::time::timeout(DEADLINE, publisher.stopped()).await.expect("the publisher ends with the supervisor");
}

/// A run that ends by a signal after one that ended with a code: the
/// facade's exit code is NaN (no code), not the earlier run's 3, beside
/// the signal. It showed both, 3 and 9, as if the last run had both.
#[tokio::test]
async fn an_exit_code_the_last_run_did_not_have_is_not_shown() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("ran");
    let script = format!("if [ -e '{0}' ]; then exec sleep 300; else touch '{0}'; exit 3; fi", flag.display());
    let handle = Supervisor::builder()
        .daemon(DaemonSpec::new("d", "sh").args(["-c", &script]).restart(RestartPolicy::new().delay(Duration::ZERO)))
        .build()
        .unwrap()
        .start();
    let publisher = handle.publish_metrics();
    handle.wait_status("d", |status| status.restart_count == 1 && status.running).await.unwrap();
    handle.signal("d", supervisor::Signal::KILL).unwrap();
    let status = handle.wait_status("d", |status| status.signal == Some(9)).await.unwrap();
    assert_eq!(status.exit_code, None);
    wait_for_match(&recorder, &handle).await;
    publisher.refresh();
    let code = value(&recorder, "supervisor_unit_last_exit_code{unit=\"d\",type=\"process\"}");
    assert!(code.is_some_and(f64::is_nan), "exit code {code:?} beside signal 9");
    assert_eq!(value(&recorder, "supervisor_unit_last_exit_signal{unit=\"d\",type=\"process\"}"), Some(9.0));
    handle.shutdown().await;
}

/// A unit removed, then another added under its name: the facade's
/// counter adds the new unit's restarts to the removed one's (a counter of
/// the facade cannot go back). It stood at the removed unit's count until
/// the new one passed it, so `rate()` saw none of its first restarts.
#[tokio::test]
async fn the_restarts_of_a_unit_added_under_a_removed_ones_name_are_counted() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let handle = Supervisor::builder().build().unwrap().start();
    let publisher = handle.publish_metrics();
    let crashing = |max| {
        TaskSpec::new("job", |_ctx: Context| async { Err::<(), _>("boom") })
            .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(max)))
    };
    let counter = "supervisor_unit_restarts_total{unit=\"job\",type=\"task\"}";
    handle.add(crashing(5)).await.unwrap();
    handle.wait_state("job", UnitState::Failed).await.unwrap();
    wait_for_match(&recorder, &handle).await;
    assert_eq!(value(&recorder, counter), Some(5.0));
    handle.remove("job").await.unwrap();
    handle.add(crashing(2)).await.unwrap();
    handle.wait_state("job", UnitState::Failed).await.unwrap();
    let deadline = Instant::now() + DEADLINE;
    while value(&recorder, counter) != Some(7.0) {
        assert!(Instant::now() < deadline, "the counter: {:?}", value(&recorder, counter));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(publisher);
    handle.shutdown().await;
}

/// As above, while the publisher misses the events that tell the removal
/// (it lagged behind them, and reads every unit again): the new unit's
/// restarts are added all the same. Its runtime is driven only when the
/// test says, so that it misses them for sure.
#[test]
fn the_restarts_of_a_unit_added_under_a_removed_ones_name_are_counted_when_the_removal_is_missed() {
    let supervisor_runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let publisher_runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let recorder = PrometheusBuilder::new().build_recorder();
    // The publisher runs on this thread, whenever `publisher_runtime` is driven.
    let _local = metrics::set_default_local_recorder(&recorder);
    let handle =
        supervisor_runtime.block_on(async { Supervisor::builder().event_capacity(1).build().unwrap().start() });
    let publisher = {
        let _entered = publisher_runtime.enter();
        handle.publish_metrics()
    };
    let crashing = |max| {
        TaskSpec::new("job", |_ctx: Context| async { Err::<(), _>("boom") })
            .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(max)))
    };
    let counter = "supervisor_unit_restarts_total{unit=\"job\",type=\"task\"}";
    let counted = |wanted: f64| {
        publisher_runtime.block_on(async {
            let deadline = Instant::now() + DEADLINE;
            while value(&recorder, counter) != Some(wanted) {
                assert!(Instant::now() < deadline, "the counter: {:?}, not {wanted}", value(&recorder, counter));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
    };
    supervisor_runtime.block_on(async {
        handle.add(crashing(5)).await.unwrap();
        handle.wait_state("job", UnitState::Failed).await.unwrap();
    });
    counted(5.0);
    // The publisher is not driven meanwhile: with room for one event, it
    // sees that it lagged, not that `job` was removed.
    supervisor_runtime.block_on(async {
        handle.remove("job").await.unwrap();
        handle.add(crashing(2)).await.unwrap();
        handle.wait_state("job", UnitState::Failed).await.unwrap();
    });
    counted(7.0);
    drop(publisher);
    supervisor_runtime.block_on(handle.shutdown());
}

/// `refresh` called from other threads (the `/metrics` handlers of a
/// server) while the publisher keeps up with a unit that restarts without
/// a pause: the counter counts each restart once. A refresh that read the
/// statuses, then waited for the publisher to be done with a newer
/// reading, set the older count after it, which looked like another unit
/// under that name (a lower count): its whole count was added again.
#[test]
fn refreshes_racing_the_publisher_count_each_restart_once() {
    const RESTARTS: u32 = 20_000;
    let supervisor_runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let publisher_runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let recorder = PrometheusBuilder::new().build_recorder();
    // The publisher runs on this thread, whenever `publisher_runtime` is driven.
    let _local = metrics::set_default_local_recorder(&recorder);
    let handle = supervisor_runtime.block_on(async {
        Supervisor::builder()
            .task(
                TaskSpec::new("flaky", |_ctx: Context| async { Err::<(), _>("boom") })
                    .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(RESTARTS))),
            )
            .build()
            .unwrap()
            .start()
    });
    let publisher = {
        let _entered = publisher_runtime.enter();
        std::sync::Arc::new(handle.publish_metrics())
    };
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let refreshers: Vec<_> = (0..2)
        .map(|_| {
            let (publisher, done) = (publisher.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    publisher.refresh();
                }
            })
        })
        .collect();
    let counter = "supervisor_unit_restarts_total{unit=\"flaky\",type=\"task\"}";
    publisher_runtime.block_on(async {
        let deadline = Instant::now() + DEADLINE;
        while handle.status("flaky").unwrap().state != UnitState::Failed {
            assert!(Instant::now() < deadline, "no end of the restarts");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // The events still queued, then a last refresh of every unit.
        tokio::time::sleep(Duration::from_millis(100)).await;
    });
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for refresher in refreshers {
        refresher.join().unwrap();
    }
    publisher.refresh();
    assert_eq!(handle.status("flaky").unwrap().restarts_total, u64::from(RESTARTS));
    assert_eq!(value(&recorder, counter), Some(f64::from(RESTARTS)), "each restart counted once");
    drop(publisher);
    supervisor_runtime.block_on(handle.shutdown());
}

/// Two publishers of one supervisor, or a publisher started after another
/// was stopped, set the same series "to no harm", as the docs say: the
/// counter counts each restart once. Each kept its own count of what it
/// had added, so each added every restart: two publishers doubled the
/// counter, and a new one added the whole count again.
#[tokio::test]
async fn publishers_of_one_supervisor_count_each_restart_once() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("flaky", |_ctx: Context| async { Err::<(), _>("boom") })
                .restart(RestartPolicy::new().delay(Duration::ZERO).max_restarts(MaxRestarts::AtMost(5))),
        )
        .build()
        .unwrap()
        .start();
    let first = handle.publish_metrics();
    let second = handle.publish_metrics();
    handle.wait_state("flaky", UnitState::Failed).await.unwrap();
    // Each set the final count, whatever their tasks did before.
    first.refresh();
    second.refresh();
    let counter = "supervisor_unit_restarts_total{unit=\"flaky\",type=\"task\"}";
    assert_eq!(value(&recorder, counter), Some(5.0), "two publishers");
    first.stop().await;
    second.stop().await;
    let third = handle.publish_metrics();
    third.refresh();
    assert_eq!(value(&recorder, counter), Some(5.0), "a publisher after others");
    handle.shutdown().await;
    third.stopped().await;
    assert_eq!(value(&recorder, counter), Some(5.0), "the last word");
}
