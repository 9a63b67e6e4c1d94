use supervisor::{supervise, supervised, Context, Supervisor};

// A one-shot job done once a run ends well must be let rest after one.
#[supervised(ready = completed)]
async fn warm_up(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        task migrate = |_ctx: Context| async {} { ready = completed };
        task seed = |_ctx: Context| async {} { ready = completed, on = "always" };
        task fine = |_ctx: Context| async {} { ready = completed, on = "failure" };
    };
}
