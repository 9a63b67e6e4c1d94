//! `task path;` naming a module or an enum variant instead of an
//! `#[supervised]` fn: every error points at the path, none at the call.
mod jobs {
    pub async fn run(_ctx: supervisor::Context) {}
}

enum Kind {
    A,
}

struct Worker;

fn main() {
    let _ = supervisor::supervise! { task jobs; };
    let _ = supervisor::supervise! { task Kind::A; };
    let _ = supervisor::supervise! { task Worker; };
}
