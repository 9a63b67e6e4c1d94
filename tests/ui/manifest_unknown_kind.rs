use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        deamon worker = "worker --port 8080";
    };
}
