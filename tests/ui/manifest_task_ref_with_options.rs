use supervisor::{supervise, supervised, Context, Supervisor};

#[supervised]
async fn ticker(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        task ticker { restart = "1s" };
    };
}
