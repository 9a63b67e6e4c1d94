use supervisor::{supervise, Supervisor};

async fn cleanup(interval_secs: u64) {
    let _ = interval_secs;
}

fn main() {
    let _sup: Supervisor = supervise! {
        task cleanup = cleanup { restart = "1s" };
    };
}
