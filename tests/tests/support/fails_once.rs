//! A unit for the tests of strategies: it fails once, then runs.

use std::time::Duration;

use supervisor::{Context, TaskSpec};

/// A task whose first run fails after `after`; its later runs wait for
/// their stop.
pub(crate) fn fails_once_after(name: &str, after: Duration) -> TaskSpec {
    TaskSpec::new(name, move |ctx: Context| async move {
        if ctx.restart_count() == 0 {
            tokio::time::sleep(after).await;
            return Err::<(), _>("boom");
        }
        ctx.cancelled().await;
        Ok(())
    })
}
