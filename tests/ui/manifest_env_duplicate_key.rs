use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        daemon worker = "worker" { env = { PORT = "8080", PORT = "8081" } };
    };
}
