use supervisor::{supervise, Supervisor};

fn main() {
    let _daemon: Supervisor = supervise! { daemon = "worker --port 8080"; };
    let _task: Supervisor = supervise! { task = p; };
    let _in_group: Supervisor = supervise! { group g {} { daemon = "worker"; } };
}
