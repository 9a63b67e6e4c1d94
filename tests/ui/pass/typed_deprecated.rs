//! A `#[deprecated]` typed form: the items the manifest makes for it use
//! it without a warning; only the user's own uses of it warn.
#![deny(warnings)]

use supervisor::{supervise, Context};

async fn idle(ctx: Context) {
    ctx.cancelled().await;
}

supervise! {
    /// Old services.
    #[deprecated(note = "use the new manifest")]
    pub struct Old;
    task a = idle;
    group g {} { task b = idle; }
}

#[allow(deprecated)]
fn main() {
    let _ = Old::builder();
}
