use supervisor::{supervise, supervised, Context, Supervisor};

#[supervised(name = "worker")]
async fn background(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        daemon worker = "worker --port 8080";
        task background;
    };
}
