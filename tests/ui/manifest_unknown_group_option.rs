use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        group storage { stop_timeout = "5s" } {
            daemon postgres = "postgres";
        }
    };
}
