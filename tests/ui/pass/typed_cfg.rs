//! A typed form under `cfg`: its impls and its groups' types are there
//! exactly when it is.
use supervisor::{supervise, Context};

async fn idle(ctx: Context) {
    ctx.cancelled().await;
}

supervise! {
    #[cfg(any())]
    pub struct Gone;
    group g {} { task a = idle; }
}

supervise! {
    #[cfg_attr(all(), cfg(any()), allow(dead_code))]
    pub struct AlsoGone;
    group g {} { task a = idle; }
}

supervise! {
    #[cfg(all())]
    #[cfg_attr(all(), cfg(all()))]
    pub struct Kept;
    group g {} { task a = idle; }
}

fn main() {
    let _ = Kept::builder();
    let _ = KeptG::clone;
}
