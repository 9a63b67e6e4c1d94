//! A command written as several strings, the words of a list without its
//! brackets: told, on the second, to be a list, where a daemon's was asked
//! for a `;` after its first string and an exec probe's got a bare
//! "unexpected token".
use supervisor::{Supervisor, supervise};

fn main() {
    let _sup: Supervisor = supervise! {
        daemon web = "python3", "-m", "http.server" { restart = "1s" };
        daemon db = "postgres" {
            ready = exec("pg_isready", "-q"),
            liveness = exec(["pg_isready"], "-q"),
        };
    };
}
