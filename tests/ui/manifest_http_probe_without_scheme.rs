use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        daemon web = "web" { liveness = http("127.0.0.1:8080/health") };
    };
}
