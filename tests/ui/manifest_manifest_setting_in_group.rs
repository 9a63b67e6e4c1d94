use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        group storage {} {
            shutdown_timeout = "30s";
            daemon postgres = "postgres";
        }
    };
}
