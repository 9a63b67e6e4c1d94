use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        group storage { strategy = "RestForOne" } {
            daemon postgres = "postgres";
        }
    };
}
