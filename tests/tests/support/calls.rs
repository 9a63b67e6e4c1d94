//! What the storm tests share: each call must be answered in time, with
//! success or with an error the storm allows.

use std::time::Duration;

use supervisor::Error;

/// Longer than any call takes when nothing hangs, by far.
pub(crate) const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// Waits for `call`: `Err` names the call (`label`) when it got no answer
/// in time, or an error that `allowed` does not allow.
pub(crate) async fn answered(
    label: impl FnOnce() -> String,
    call: impl Future<Output = Result<(), Error>>,
    allowed: impl Fn(&Error) -> bool,
) -> Result<(), String> {
    match tokio::time::timeout(ANSWER_WITHIN, call).await {
        Err(_) => Err(format!("{} got no answer", label())),
        Ok(Err(error)) if !allowed(&error) => Err(format!("{}: unexpected error {error}", label())),
        Ok(_) => Ok(()),
    }
}
