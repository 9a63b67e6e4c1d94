use supervisor::{supervise, Context, Supervisor};

async fn idle(ctx: Context) {
    ctx.cancelled().await;
}

fn main() {
    // A path to a unit in another group: depend on the group, as for `[p]`.
    let _sup: Supervisor = supervise! {
        group g {} { task p = idle; }
        task a = idle { depends_on = [g/p] };
        task b = idle { depends_on = ["g/p"] };
        task c = idle { depends_on = [p] };
    };
}
