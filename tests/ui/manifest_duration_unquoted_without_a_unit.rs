use supervisor::{supervise, Context, Supervisor};

async fn idle(ctx: Context) {
    ctx.cancelled().await;
}

fn main() {
    // A suffix that is no unit of time, or a negative one, is no duration
    // either: neither says to drop the suffix.
    let _sup: Supervisor = supervise! {
        task a = idle { restart = 5x };
        task b = idle { max_delay = 5u32 };
        task c = idle { reset_after = -5s };
    };
}
