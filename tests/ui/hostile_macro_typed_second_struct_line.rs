use supervisor::{supervise, Context};

async fn serve_api(_ctx: Context) {}

// A second typed form in one manifest: told to go, not to move to the top
// (where it would only have the first told to move in its turn).
supervise! {
    pub struct Services;
    pub(crate) struct Admin;
    task api = serve_api;
    group jobs {} {
        struct Jobs;
    }
}

fn main() {
    // The manifest's own type is still defined: no error of rustc's here.
    let _ = Services::builder;
}
