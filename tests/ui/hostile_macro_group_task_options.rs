use supervisor::{supervise, Context, Supervisor};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        group g { ready = notified, liveness = tcp("127.0.0.1:1"), watchdog = "1s" } { task a = job; }
    };
}
