//! Two exit codes of a `success_codes` without the `,` between them: told
//! so, on the second, where the whole list was said to take exit codes.
use supervisor::{Supervisor, supervise};

fn main() {
    let _sup: Supervisor = supervise! {
        daemon web = "web" { success_codes = [0 143] };
    };
}
