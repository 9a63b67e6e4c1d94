use supervisor::{supervise, Context, Supervisor};

async fn run_migrations(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        group storage {} {
            daemon postgres = "postgres";
            task migrate = run_migrations { depends_on = [storage] };
        }
    };
}
