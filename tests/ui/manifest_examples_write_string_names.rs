use supervisor::{supervise, Context, Supervisor};

async fn idle(ctx: Context) {
    ctx.cancelled().await;
}

// A name that is no identifier is written as a string in the examples of
// the messages, as the manifest takes it.
fn main() {
    let _sup: Supervisor = supervise! {
        daemon "web-1" { restart = "1s" };
        task "clean up";
        group "hot-cache" = "x";
        group "my-db" {} { daemon pg = "postgres"; }
        task api = idle { depends_on = [pg] };
        group "api v2" {} { task x = idle { depends_on = ["my-db"] }; }
        group g {} { task y = idle { depends_on = ["my-db/pg"] }; }
    };
}
