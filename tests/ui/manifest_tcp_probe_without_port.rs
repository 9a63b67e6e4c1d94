use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        daemon postgres = "postgres" { ready = tcp("127.0.0.1") };
    };
}
