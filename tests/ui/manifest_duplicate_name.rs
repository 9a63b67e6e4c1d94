use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        daemon worker = "worker --port 8080";
        daemon web = "python3 -m http.server";
        daemon worker = "worker --port 8081";
    };
}
