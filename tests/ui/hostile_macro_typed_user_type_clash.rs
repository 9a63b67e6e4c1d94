use supervisor::{supervise, Context};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

// The user's own type, which happens to have the name of a generated group type.
#[allow(dead_code)]
struct ServicesStorage;

supervise! {
    pub struct Services;
    group storage {} { task x = job; }
}

fn main() {}

// A known limit, documented with the typed form: a macro cannot see the other items of its module, so
// the clash of a generated group type is rustc's "defined multiple times", among follow-on errors.
