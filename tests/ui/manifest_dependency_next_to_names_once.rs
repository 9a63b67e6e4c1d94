mod one {
    use supervisor::{supervised, Context};

    #[supervised(name = "one-run")]
    pub async fn run(_ctx: Context) {}
}

mod two {
    use supervisor::{supervised, Context};

    #[supervised(name = "two-run")]
    pub async fn run(_ctx: Context) {}
}

use supervisor::{supervise, Context, Supervisor};

async fn idle(ctx: Context) {
    ctx.cancelled().await;
}

fn main() {
    // Two entries named `run`: the units next to `e` name it once.
    let _sup: Supervisor = supervise! {
        task one::run;
        task two::run;
        task b = idle;
        task e = idle { depends_on = [zzzzzz] };
    };
}
