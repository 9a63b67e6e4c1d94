//! Waits under a deadline that each test file passes in: a hang fails the
//! test, and the failure names what was awaited.

use std::time::Duration;

use supervisor::{Event, ShutdownReport, SupervisorHandle, UnitState, UnitStatus};
use tokio::sync::broadcast;

/// Awaits `future` under `deadline`; a hang is a failure naming `what`.
#[allow(dead_code)]
pub(crate) async fn within<T>(deadline: Duration, what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(deadline, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: no answer within {deadline:?}"),
    }
}

/// Polls `check` every few milliseconds (real time) until it returns `Some`, failing after `deadline`.
#[allow(dead_code)]
pub(crate) async fn wait_for<T>(deadline: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let began = std::time::Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(began.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// Waits until `name`'s status satisfies `pred`; a failure shows its last status.
#[allow(dead_code)]
pub(crate) async fn wait_status(
    deadline: Duration,
    handle: &SupervisorHandle,
    name: &str,
    pred: impl Fn(&UnitStatus) -> bool,
) -> UnitStatus {
    match tokio::time::timeout(deadline, handle.wait_status(name, pred)).await {
        Ok(Ok(status)) => status,
        Ok(Err(error)) => panic!("waiting on `{name}`: {error}; last status: {:#?}", handle.status(name)),
        Err(_) => panic!("timed out after {deadline:?} waiting on `{name}`; last status: {:#?}", handle.status(name)),
    }
}

/// Waits until `name`'s status satisfies `done`, looking again at each of its events and every 20 ms.
#[allow(dead_code)]
pub(crate) async fn watch_status(
    deadline: Duration,
    handle: &SupervisorHandle,
    name: &str,
    done: impl Fn(&UnitStatus) -> bool,
) -> UnitStatus {
    let mut events = handle.subscribe();
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(status) = handle.status(name)
            && done(&status)
        {
            return status;
        }
        let remaining = end.saturating_duration_since(tokio::time::Instant::now());
        assert!(!remaining.is_zero(), "`{name}` never got there within {deadline:?}: {:?}", handle.status(name));
        let _ = tokio::time::timeout(remaining.min(Duration::from_millis(20)), events.recv()).await;
    }
}

/// Waits until `name` is in `state`, and returns its status.
#[allow(dead_code)]
pub(crate) async fn wait_state(
    deadline: Duration,
    handle: &SupervisorHandle,
    name: &str,
    state: UnitState,
) -> UnitStatus {
    wait_status(deadline, handle, name, |status| status.state == state).await
}

/// Waits until `name` is at rest (not active), and returns its status.
#[allow(dead_code)]
pub(crate) async fn wait_at_rest(deadline: Duration, handle: &SupervisorHandle, name: &str) -> UnitStatus {
    wait_status(deadline, handle, name, |status| !status.state.is_active()).await
}

/// Waits until `name` runs a process, and returns its pid.
#[allow(dead_code)]
pub(crate) async fn wait_running(deadline: Duration, handle: &SupervisorHandle, name: &str) -> u32 {
    let status =
        wait_status(deadline, handle, name, |status| status.state == UnitState::Running && status.pid.is_some()).await;
    status.pid.expect("a running process has a pid")
}

/// Polls `name`'s whole output tail until `pred` accepts it (`what` names the wait), and returns it.
#[allow(dead_code)]
pub(crate) async fn wait_tail(
    deadline: Duration,
    handle: &SupervisorHandle,
    name: &str,
    what: &str,
    pred: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    wait_for(deadline, what, || {
        let tail = handle.tail(name, usize::MAX).expect("known unit");
        pred(&tail).then_some(tail)
    })
    .await
}

/// Waits until `name` is ready, and returns its status.
#[allow(dead_code)]
pub(crate) async fn wait_ready(deadline: Duration, handle: &SupervisorHandle, name: &str) -> UnitStatus {
    match tokio::time::timeout(deadline, handle.wait_ready(name)).await {
        Ok(status) => status.unwrap_or_else(|error| panic!("`{name}` never became ready: {error}")),
        Err(_) => panic!("`{name}` not ready within {deadline:?}: {:?}", handle.status(name)),
    }
}

/// Every event until `done` accepts one, each awaited under `deadline`.
#[allow(dead_code)]
pub(crate) async fn events_until(
    deadline: Duration,
    events: &mut broadcast::Receiver<Event>,
    done: impl Fn(&Event) -> bool,
) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        let event = within(deadline, "the next event", events.recv()).await.expect("no event lost");
        let last = done(&event);
        seen.push(event);
        if last {
            return seen;
        }
    }
}

/// The next event that matches `pred`, skipping others (a lag too), awaited under `deadline`.
#[allow(dead_code)]
pub(crate) async fn next_event(
    deadline: Duration,
    events: &mut broadcast::Receiver<Event>,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) if pred(&event) => return event,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("event channel closed"),
            }
        }
    };
    within(deadline, "the expected event", wait).await
}

/// Shuts the supervisor down, failing if that takes longer than `deadline`.
#[allow(dead_code)]
pub(crate) async fn shutdown(deadline: Duration, handle: &SupervisorHandle) -> ShutdownReport {
    tokio::time::timeout(deadline, handle.shutdown()).await.expect("the shutdown ends in time")
}

/// The longest delay that `Instant::now()` holds, less `margin`.
#[allow(dead_code)]
pub(crate) fn delay_near_the_clock_end(margin: Duration) -> Duration {
    let now = tokio::time::Instant::now();
    let (mut low, mut high) = (Duration::ZERO, Duration::MAX);
    while high - low > Duration::from_nanos(1) {
        let mid = low + (high - low) / 2;
        if now.checked_add(mid).is_some() {
            low = mid;
        } else {
            high = mid;
        }
    }
    low - margin
}
