use supervisor::{supervise, Context, Supervisor};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        daemon web = "web" { ready = output("listening\non") };
    };
}
