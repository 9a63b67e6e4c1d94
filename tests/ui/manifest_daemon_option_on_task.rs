use supervisor::{supervise, Context, Supervisor};

async fn cleanup(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        task cleanup = cleanup { stop_signal = "INT" };
    };
}
