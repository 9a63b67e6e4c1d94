//! A storm of control calls and signals on real processes of every kind:
//! ones that notify readiness over their socket, print a ready line, feed a
//! watchdog, fail at once, ignore the stop signal, or carry a liveness
//! probe. After the shutdown nothing is left of them: no process (not even a
//! zombie), no notify socket directory, no file descriptor.
//!
//! Alone in its test binary, so that the descriptors it counts are its own.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[path = "support/calls.rs"]
mod calls;

use calls::{ANSWER_WITHIN, answered};
use supervisor::{
    DaemonSpec, Error, EventKind, MaxRestarts, Probe, Readiness, RestartPolicy, Signal, Supervisor, SupervisorHandle,
};

const CALLERS: u64 = 4;
const CALLS_EACH: usize = 150;

fn quick_restarts() -> RestartPolicy {
    RestartPolicy::new().delay(Duration::from_millis(1)).max_restarts(MaxRestarts::Unlimited)
}

fn sh(name: &str, script: &str) -> DaemonSpec {
    DaemonSpec::new(name, "sh").args(["-c", script]).restart(quick_restarts())
}

fn daemons() -> Vec<DaemonSpec> {
    vec![
        sh("notified", "sleep 0.01; systemd-notify --ready; exec sleep 1000").readiness(Readiness::Notified),
        sh("line", "echo starting; sleep 0.01; echo up; exec sleep 1000")
            .readiness(Readiness::OutputLine("up".to_owned())),
        sh("dog", "while :; do systemd-notify WATCHDOG=1; sleep 0.02; done").watchdog(Duration::from_millis(500)),
        sh("quitter", "sleep 0.01; exit 3"),
        sh("stubborn", "trap '' TERM; exec sleep 1000").stop_timeout(Duration::from_millis(50)),
        sh("probed", "exec sleep 1000")
            .liveness(Probe::exec(["true"]).period(Duration::from_millis(20)).timeout(Duration::from_millis(500))),
    ]
}

const NAMES: [&str; 6] = ["notified", "line", "dog", "quitter", "stubborn", "probed"];

fn open_descriptors() -> BTreeSet<String> {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .map(|entry| entry.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect()
}

/// The notify socket directories this process has made and not removed.
fn notify_dirs() -> Vec<PathBuf> {
    let prefix = format!("supervisor-notify-{}-", std::process::id());
    let bases = [std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from), Some(std::env::temp_dir())];
    bases
        .into_iter()
        .flatten()
        .filter_map(|base| std::fs::read_dir(base).ok())
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .map(|entry| entry.path())
        .collect()
}

fn expected(error: &Error) -> bool {
    matches!(error, Error::NotRunning { .. } | Error::ShuttingDown { .. })
}

async fn caller(handle: SupervisorHandle, seed: u64) -> Result<(), String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    for call in 0..CALLS_EACH {
        let unit = NAMES[rng.usize(..NAMES.len())];
        let what = rng.u8(..7);
        let outcome = async {
            match what {
                0 => handle.stop_unit(unit).await,
                1 => handle.start_unit(unit).await,
                2 => handle.restart(unit).await,
                3 => handle.signal(unit, Signal::HUP),
                4 => handle.signal(unit, Signal::TERM),
                5 => handle.tail(unit, 10).map(drop),
                _ => {
                    let _ = tokio::time::timeout(Duration::from_millis(20), handle.wait_ready(unit)).await;
                    Ok(())
                }
            }
        };
        answered(|| format!("seed {seed}, call {call} ({what} on `{unit}`)"), outcome, expected).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_on_processes_leaves_no_process_socket_or_descriptor_behind() {
    // A first supervisor with a notifying process, so that what the runtime
    // sets up once (its signal handling, its blocking threads) is in the
    // count before the storm.
    let warm_up = Supervisor::builder().daemon(daemons().remove(0)).build().unwrap().start();
    warm_up.wait_ready("notified").await.expect("a process notifies");
    warm_up.shutdown().await;
    let descriptors = open_descriptors();

    let mut builder = Supervisor::builder();
    for daemon in daemons() {
        builder = builder.daemon(daemon);
    }
    let sup = builder.event_capacity(1 << 16).build().unwrap();
    let mut events = sup.subscribe();
    let pids = Arc::new(Mutex::new(Vec::new()));
    let log = tokio::spawn({
        let pids = pids.clone();
        async move {
            while let Ok(event) = events.recv().await {
                if let EventKind::Started { pid: Some(pid), .. } = event.kind {
                    pids.lock().unwrap().push(pid);
                }
            }
        }
    });
    let handle = sup.start();
    for name in ["notified", "line"] {
        handle.wait_ready(name).await.expect("ready");
    }
    let callers: Vec<_> = (0..CALLERS).map(|seed| tokio::spawn(caller(handle.clone(), 3000 + seed))).collect();
    for caller in callers {
        caller.await.expect("no caller panics").unwrap_or_else(|problem| panic!("{problem}"));
    }
    let report = tokio::time::timeout(ANSWER_WITHIN, handle.shutdown()).await.expect("the shutdown ends");
    assert_eq!(report.units.len(), NAMES.len(), "{report:?}");
    drop(handle);
    log.await.expect("the event log");

    let pids = std::mem::take(&mut *pids.lock().unwrap());
    assert!(pids.len() > NAMES.len(), "the storm restarted processes: {pids:?}");
    for pid in pids {
        let pid = rustix::process::Pid::from_raw(pid.cast_signed()).expect("a pid");
        assert!(rustix::process::test_kill_process(pid).is_err(), "process {pid:?} outlived the shutdown");
    }
    assert_eq!(notify_dirs(), Vec::<PathBuf>::new(), "every notify socket's directory is removed");
    let left: Vec<_> = open_descriptors().difference(&descriptors).cloned().collect();
    let links: Vec<_> =
        left.iter().map(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap_or_default()).collect();
    assert!(left.is_empty(), "descriptors left open: {left:?} -> {links:?}");
}
