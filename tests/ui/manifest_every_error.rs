use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        shutdown_timeout = 30;
        daemon worker = "worker | tee log" { max = -5, restart = "5s", restart = "6s" };
        taks cleanup = cleanup;
        daemon web = ["web"] { on = "sometimes" };
    };
}
