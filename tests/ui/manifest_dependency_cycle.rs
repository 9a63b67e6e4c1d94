use supervisor::{supervise, Context, Supervisor};

async fn run_a(_ctx: Context) {}
async fn run_b(_ctx: Context) {}
async fn run_c(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        task a = run_a { depends_on = [b] };
        task b = run_b { depends_on = [c] };
        task c = run_c { depends_on = [a] };
    };
}
