use supervisor::{supervise, Context, Supervisor};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        group g { depends_on = [b] } { task a = job; }
        task b = job { depends_on = [c] };
        task c = job { depends_on = [g] };
    };
}
