use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        daemon stamp = "echo \"started at $(date)\"";
    };
}
