//! Units added and removed at run time, among dependencies and readiness:
//! dependencies added, removed, restarted, stopped by hand or failing for
//! good while their dependents wait, and the waits, states and events that
//! follow.
//!
//! Every wait has a generous deadline, so that a hang fails instead of
//! blocking the suite.

use std::time::Duration;

use supervisor::{Context, Error, GroupSpec, Readiness, RestartOn, RestartPolicy, Supervisor, TaskSpec, UnitState};

#[path = "support/deadline.rs"]
mod deadline;
use deadline::{shutdown, wait_status};
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
