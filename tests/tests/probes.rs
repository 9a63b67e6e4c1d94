//! `Probe` and `Readiness` as code outside the crate sees them: every kind
//! of probe is built through the public API, its settings kept, cloned and
//! shown, and the types fit in specs shared across threads.
//!
//! Running probes against real listeners, servers and processes (a TCP
//! listener that appears after a delay, an HTTP server answering 200 then
//! 503, exec probes that exit 0 or 1 or are killed with their group at the
//! timeout, checks that panic or hang) is tested inside the crate, in
//! `run::probe`, where the probe runner is reachable.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use supervisor::{Probe, Readiness};

fn assert_shareable<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}

#[test]
fn probe_and_readiness_can_be_shared_across_threads() {
    assert_shareable::<Probe>();
    assert_shareable::<Readiness>();
}

#[test]
fn the_default_readiness_is_started() {
    assert!(matches!(Readiness::default(), Readiness::Started));
    // `Readiness` is non-exhaustive: a match needs a wildcard arm.
    let describe = |readiness: &Readiness| match readiness {
        Readiness::Started => "started",
        Readiness::Notified => "notified",
        Readiness::Probe(_) => "probe",
        Readiness::OutputLine(_) => "output line",
        _ => "other",
    };
    assert_eq!(describe(&Readiness::Notified), "notified");
    assert_eq!(describe(&Readiness::OutputLine("listening".to_owned())), "output line");
    assert_eq!(describe(&Readiness::Probe(Probe::tcp("127.0.0.1:5432"))), "probe");
}

#[test]
fn a_probe_shows_kubernetes_defaults() {
    let debug = format!("{:?}", Probe::tcp("127.0.0.1:5432"));
    for expected in [
        "Tcp(\"127.0.0.1:5432\")",
        "period: 10s",
        "timeout: 1s",
        "initial_delay: 0ns",
        "failure_threshold: 3",
        "success_threshold: 1",
    ] {
        assert!(debug.contains(expected), "{expected} missing from {debug}");
    }
}

#[test]
fn settings_are_kept_and_cloned() {
    let probe = Probe::exec(["sh", "-c", "exit 0"])
        .period(Duration::from_secs(2))
        .timeout(Duration::from_millis(250))
        .initial_delay(Duration::from_secs(5))
        .failure_threshold(4)
        .success_threshold(2);
    let debug = format!("{:?}", probe.clone());
    assert_eq!(debug, format!("{probe:?}"));
    for expected in [
        "Exec([\"sh\", \"-c\", \"exit 0\"])",
        "period: 2s",
        "timeout: 250ms",
        "initial_delay: 5s",
        "failure_threshold: 4",
        "success_threshold: 2",
    ] {
        assert!(debug.contains(expected), "{expected} missing from {debug}");
    }
}

#[test]
fn an_http_probe_keeps_its_url() {
    let debug = format!("{:?}", Probe::http("http://127.0.0.1:8081/health").timeout(Duration::from_secs(2)));
    assert!(debug.contains("Http(\"http://127.0.0.1:8081/health\")") && debug.contains("timeout: 2s"), "{debug}");
}

#[test]
fn exec_takes_strings_paths_and_os_strings() {
    let _ = Probe::exec(vec!["pg_isready".to_owned(), "-q".to_owned()]);
    let _ = Probe::exec([std::path::Path::new("/usr/bin/true")]);
    let _ = Probe::exec([std::ffi::OsString::from("true")]);
}

#[test]
fn a_check_takes_any_displayable_error() {
    let warm = Arc::new(AtomicBool::new(false));
    let flag = warm.clone();
    let probes = [
        Probe::check(move || {
            let warm = flag.load(Ordering::Relaxed);
            async move { if warm { Ok(()) } else { Err("still warming up") } }
        }),
        Probe::check(|| async { Err::<(), _>(std::io::Error::other("refused")) }),
        Probe::check(|| async { Err::<(), _>(anyhow::anyhow!("no leader").context("asking the cluster")) }),
        Probe::check(|| async { Ok::<(), Box<dyn std::error::Error + Send + Sync>>(()) }),
        Probe::check(|| async { Ok::<_, String>(()) }),
    ];
    for probe in probes {
        let debug = format!("{probe:?}");
        assert!(debug.contains("Check(<closure>)"), "{debug}");
    }
    warm.store(true, Ordering::Relaxed);
}

#[test]
fn a_readiness_probe_shows_its_probe() {
    let readiness = Readiness::Probe(Probe::tcp("localhost:6379").failure_threshold(5));
    let debug = format!("{readiness:?}");
    assert!(debug.starts_with("Probe(Probe {") && debug.contains("failure_threshold: 5"), "{debug}");
    let cloned = readiness.clone();
    assert_eq!(format!("{cloned:?}"), debug);
}
