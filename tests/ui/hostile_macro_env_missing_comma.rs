//! Two variables of an `env` without the `,` between them: told so, on the
//! second, where `env` was said to take a map of variables to strings.
use supervisor::{Supervisor, supervise};

fn main() {
    let _sup: Supervisor = supervise! {
        daemon web = "web" { env = { RUST_LOG = "info" PORT = "8080" } };
    };
}
