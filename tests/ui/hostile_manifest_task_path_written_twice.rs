//! The same `task path;` entry written twice in a group: told once, on the
//! second, to be removed, where the name check said to rename the fn's
//! unit with `#[supervised(name = "...")]`, which renames both entries, and
//! the typed form called their field a clash to rename.
use supervisor::{Context, supervise, supervised};

#[supervised(restart = "1s")]
async fn worker(ctx: Context) {
    ctx.cancelled().await;
}

supervise! {
    pub struct Services;
    task worker;
    task worker { max = 1 };
}

fn main() {
    let _ = supervise! {
        task worker;
        daemon web = "web" { depends_on = [worker] };
        task worker { max = 1 };
    };
}
