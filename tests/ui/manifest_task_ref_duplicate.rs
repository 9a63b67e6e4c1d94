use supervisor::{supervise, supervised, Context, Supervisor};

#[supervised]
async fn ticker(_ctx: Context) {}

#[supervised(name = "ticker")]
async fn other_ticker(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        task ticker;
        task other_ticker;
    };
}
