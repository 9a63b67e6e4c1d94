use supervisor::{supervise, Context, Supervisor};

async fn idle(ctx: Context) {
    ctx.cancelled().await;
}

// A name that is no identifier, written bare in a `depends_on`: told to be
// a string, on the whole name.
fn main() {
    let _sup: Supervisor = supervise! {
        daemon "web-1" = "web";
        task api = idle { depends_on = [web-1] };
    };
}
