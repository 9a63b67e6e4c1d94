//! Consts named like the expansion's own bindings (`ctx`, `policy`,
//! `earlier`, `message`, `handle`, `f`) change nothing: a binding pattern
//! with a const's name would be read as that const. With `earlier`, a
//! clash of two units' names compiled, and one unit was lost at run time.
//! A `#[deprecated]` fn is not used by its own spec.
#![deny(warnings)]
#![allow(non_upper_case_globals)]

use supervisor::{Context, supervise, supervised};

const ctx: u8 = 0;
const policy: u8 = 0;
const earlier: usize = 0;
const message: u8 = 0;
const handle: u8 = 0;
const f: u8 = 0;

#[supervised]
async fn worker(c: Context) {
    c.cancelled().await;
}

#[deprecated(note = "use `worker`")]
#[supervised(restart = "1s")]
pub async fn old_worker(_c: Context) {}

mod typed {
    use super::worker;
    use supervisor::supervise;

    supervise! {
        pub struct Services;
        daemon web = "web";
        task worker { max = 3 };
    }
}

fn main() {
    let _ = (ctx, policy, earlier, message, handle, f);
    let _ = supervise! {
        daemon web = "web";
        task worker { max = 3 };
    };
    let _ = typed::Services::builder();
}
