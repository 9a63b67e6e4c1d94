use supervisor::{supervise, Context, Supervisor};

async fn job(_ctx: Context) {}

fn main() {
    // Each daemon option says why a task has no use for it.
    let _sup: Supervisor = supervise! {
        task a = job { env = { RUST_LOG = "info" } };
        task b = job { dir = "/srv" };
        task c = job { success_codes = [0, 143] };
        task d = job { stop_signal = "INT" };
    };
}
