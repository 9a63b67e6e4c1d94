use supervisor::{supervise, Context, Supervisor};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        daemon web = "web" { ready = tcp("127.0.0.1:1"), readiness_period = "0s", readiness_timeout = "0ns", window = "0s", window_max = 1 };
    };
}
