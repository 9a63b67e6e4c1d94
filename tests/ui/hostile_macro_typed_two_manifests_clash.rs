use supervisor::{supervise, Context};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

supervise! {
    pub struct A;
    group b_c {} { task x = job; }
}

supervise! {
    pub struct AB;
    group c {} { task y = job; }
}

fn main() {}

// A known limit, documented with the typed form: a macro cannot see the other items of its module, so
// the clash of a generated group type is rustc's "defined multiple times", among follow-on errors.
