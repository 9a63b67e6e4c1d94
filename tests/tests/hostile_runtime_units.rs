//! Units added and removed at run time, among dependencies and readiness:
//! dependencies added, removed, restarted, stopped by hand or failing for
//! good while their dependents wait, and the waits, states and events that
//! follow.
//!
//! Every wait has a generous deadline, so that a hang fails instead of
//! blocking the suite.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use supervisor::{Context, Error, GroupSpec, Readiness, RestartOn, RestartPolicy, Supervisor, TaskSpec, UnitState};

#[path = "support/deadline.rs"]
mod deadline;
use deadline::{shutdown, wait_ready, wait_status};
#[path = "support/specs.rs"]
mod specs;
use specs::idle;

/// How long anything may take before a test fails: long enough for a
/// loaded machine, short enough that a hang fails.
const DEADLINE: Duration = Duration::from_secs(20);

/// A unit added to a group, that waits for a sibling that ended for good
/// (its policy let it rest after a failure), waits in vain: it holds its
/// group back for good, and the waits for the group to be ready, and for a
/// unit that waits for the group, end, as they do when asked afterwards.
/// Begun before the unit was added, they hung: nothing they look at had
/// changed in a way they were woken for (the group was not ready before
/// either, the unit that waits for it still waited).
#[tokio::test]
async fn a_unit_added_to_wait_in_vain_ends_the_waits_on_its_group_and_what_waits_for_it() {
    let broken = TaskSpec::new("broken", |_ctx: Context| async { Err::<(), _>("no disk") })
        .restart(RestartPolicy::new().on(RestartOn::Never));
    let storage = GroupSpec::new("storage").task(broken).task(idle("cache").readiness(Readiness::Notified));
    let handle =
        Supervisor::builder().group(storage).task(idle("api").depends_on(["storage"])).build().unwrap().start();
    wait_status(DEADLINE, &handle, "storage/broken", |status| status.state == UnitState::Exited).await;
    wait_status(DEADLINE, &handle, "api", |status| status.state == UnitState::Waiting).await;
    let names = ["storage", "api"];
    let waits: Vec<_> = names
        .iter()
        .map(|&name| {
            let handle = handle.clone();
            tokio::spawn(async move { handle.wait_ready(name).await })
        })
        .collect();
    // Each wait has looked once, and waits.
    tokio::task::yield_now().await;
    assert!(waits.iter().all(|wait| !wait.is_finished()));
    handle.add_to("storage", idle("replica").depends_on(["broken"])).await.unwrap();
    assert_eq!(handle.status("storage/replica").unwrap().state, UnitState::Waiting);
    for (name, wait) in names.into_iter().zip(waits) {
        let answer = tokio::time::timeout(DEADLINE, wait).await.expect("the wait ends").unwrap();
        assert!(matches!(answer, Err(Error::WillNotHappen { .. })), "{name}: {answer:?}");
        // Asked after: at once, alike.
        let answer = tokio::time::timeout(DEADLINE, handle.wait_ready(name)).await.expect("at once");
        assert!(matches!(answer, Err(Error::WillNotHappen { .. })), "{name}: {answer:?}");
    }
    shutdown(DEADLINE, &handle).await;
}

/// A temporary unit that runs once and ends when `end` says so; its runs
/// are counted in `runs`.
fn ends_when_told(name: &str, end: &tokio::sync::watch::Receiver<bool>, runs: &Arc<AtomicU32>) -> TaskSpec {
    let (end, runs) = (end.clone(), runs.clone());
    TaskSpec::new(name, move |_ctx: Context| {
        runs.fetch_add(1, Ordering::SeqCst);
        let mut end = end.clone();
        async move {
            let _ = end.wait_for(|end| *end).await;
        }
    })
    .restart(RestartPolicy::new().on(RestartOn::Never))
    .temporary()
}

/// A temporary unit that others depend on stays at rest once it ends, as
/// `remove` would refuse it; once the last of them is gone (forgotten as
/// temporary itself, removed by hand, or with its group's end), nothing
/// keeps it, and it is forgotten too. A pair of temporary units per
/// connection whose dependency ended first left that dependency at rest
/// for ever, one per connection; and a group's end, which forgot its
/// temporary units in registration order, left it there, to run again in
/// the group's next run, where OTP never runs a temporary child again.
#[tokio::test(start_paused = true)]
async fn a_temporary_dependency_is_forgotten_with_its_last_dependent() {
    let handle = Supervisor::builder().group(GroupSpec::new("g").task(idle("keep"))).build().unwrap().start();
    let runs = Arc::new(AtomicU32::new(0));

    // Its dependent, temporary too, ends after it.
    let (end_db, db_ends) = tokio::sync::watch::channel(false);
    let (end_handler, handler_ends) = tokio::sync::watch::channel(false);
    handle.add(ends_when_told("db", &db_ends, &runs)).await.unwrap();
    handle.add(ends_when_told("handler", &handler_ends, &runs).depends_on(["db"])).await.unwrap();
    wait_ready(DEADLINE, &handle, "handler").await;
    end_db.send_replace(true);
    wait_status(DEADLINE, &handle, "db", |status| status.state == UnitState::Exited).await;
    end_handler.send_replace(true);
    // Woken when it is removed, as it never stops.
    let gone = tokio::time::timeout(DEADLINE, handle.wait_state("db", UnitState::Stopped)).await;
    assert!(matches!(gone, Ok(Err(Error::UnknownUnit { .. }))), "{gone:?}");
    assert_eq!(handle.unit_names(), ["g", "g/keep"]);

    // Its dependent, not temporary, removed by hand.
    let (end_db, db_ends) = tokio::sync::watch::channel(false);
    handle.add(ends_when_told("db", &db_ends, &runs)).await.unwrap();
    handle.add(idle("api").depends_on(["db"])).await.unwrap();
    wait_ready(DEADLINE, &handle, "api").await;
    end_db.send_replace(true);
    wait_status(DEADLINE, &handle, "db", |status| status.state == UnitState::Exited).await;
    handle.remove("api").await.unwrap();
    assert_eq!(handle.unit_names(), ["g", "g/keep"]);

    // Both stopped with their group, which starts again without them.
    let (end_db, db_ends) = tokio::sync::watch::channel(false);
    runs.store(0, Ordering::SeqCst);
    handle.add_to("g", ends_when_told("db", &db_ends, &runs)).await.unwrap();
    handle.add_to("g", idle("handler").depends_on(["db"]).temporary()).await.unwrap();
    wait_ready(DEADLINE, &handle, "g/handler").await;
    end_db.send_replace(true);
    wait_status(DEADLINE, &handle, "g/db", |status| status.state == UnitState::Exited).await;
    handle.stop_unit("g").await.unwrap();
    assert_eq!(handle.unit_names(), ["g", "g/keep"]);
    handle.start_unit("g").await.unwrap();
    wait_ready(DEADLINE, &handle, "g").await;
    assert_eq!(handle.unit_names(), ["g", "g/keep"]);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the temporary `g/db` ran again");
    shutdown(DEADLINE, &handle).await;
}
