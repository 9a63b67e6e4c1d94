use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        group storage {} {
            daemon postgres = "postgres";
            daemon postgres = "postgres --replica";
        }
    };
}
