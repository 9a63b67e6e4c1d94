use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        shutdown_timout = "30s";
    };
}
