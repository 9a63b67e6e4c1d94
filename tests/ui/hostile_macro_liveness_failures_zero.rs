use supervisor::{supervise, Context, Supervisor};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        daemon web = "web" { liveness = tcp("127.0.0.1:80"), liveness_failures = 0, liveness_successes = 0 };
    };
}
