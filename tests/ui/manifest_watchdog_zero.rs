use supervisor::{supervise, Context, Supervisor};

async fn poll(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        task poller = poll { watchdog = "0s" };
    };
}
