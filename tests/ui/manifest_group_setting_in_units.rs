use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        group storage {} {
            strategy = "rest_for_one";
            daemon postgres = "postgres";
        }
    };
}
