//! A free `#[supervised]` fn whose name is also an associated fn's, without
//! the attribute: the fn is free, and the type next to it is defined.

use supervisor::{Context, supervised};

struct Other;

impl Other {
    fn run() {}
}

#[supervised]
async fn run(_ctx: Context) {}

fn main() {
    Other::run();
    assert_eq!(run::NAME, "run");
    let _spec = run::spec();
}
