use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        daemon pg = "postgres" { ready = exec("pg_isready && echo ok") };
    };
}
