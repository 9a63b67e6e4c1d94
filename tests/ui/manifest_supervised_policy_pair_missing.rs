use supervisor::{supervise, supervised, Context, Supervisor};

#[supervised(restart = "1s")]
async fn worker(ctx: Context) {
    ctx.cancelled().await;
}

fn main() {
    // The fn sets neither `backoff` nor a window: each option lacks its partner.
    let _sup: Supervisor = supervise! {
        task worker { max_delay = "5s" };
        group g {} { task worker { window = "10s" }; }
        group h {} { task worker { window_max = 2 }; }
    };
}
