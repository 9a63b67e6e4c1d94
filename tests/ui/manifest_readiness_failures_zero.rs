use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        daemon web = "web" { ready = tcp("127.0.0.1:80"), readiness_failures = 0 };
    };
}
