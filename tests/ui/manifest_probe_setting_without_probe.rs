use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        daemon web = "web" { liveness_period = "10s" };
    };
}
