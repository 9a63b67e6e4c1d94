use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        daemon web = "web" { ready = http("https://127.0.0.1:8443/health") };
    };
}
