use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        group storage { depends_on = [postgres] } {
            daemon postgres = "postgres";
        }
    };
}
