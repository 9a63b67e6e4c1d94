use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        group storage { period = "30s" } {
            daemon postgres = "postgres";
        }
    };
}
