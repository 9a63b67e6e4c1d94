use supervisor::{supervise, Context, Supervisor};

async fn janitor(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        task janitor;
    };
}
