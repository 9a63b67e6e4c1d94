use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        daemon worker = "worker"
        daemon web = "web";
    };
}
