//! A clash of a `task path;` entry's name with an earlier sibling's is a
//! compile error, also with a const named like the expansion's binding in
//! scope (it used to match the const instead, and the clash compiled).
#![allow(non_upper_case_globals)]

use supervisor::{Context, supervise, supervised};

const earlier: usize = 0;

#[supervised(name = "web")]
async fn worker(ctx: Context) {
    ctx.cancelled().await;
}

fn main() {
    let _ = supervise! {
        daemon other = "other";
        daemon web = "web";
        task worker;
    };
}
