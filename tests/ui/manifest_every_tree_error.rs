use supervisor::{supervise, Context, Supervisor};

async fn run_migrations(_ctx: Context) {}
async fn serve_api(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        strategy = "one_for_each";
        group storage { intensity = 3 } {
            daemon postgres = "postgres" { ready = tcp("localhost") };
            task migrate = run_migrations { depends_on = [postgress] };
        }
        task api = serve_api { depends_on = [api] };
    };
}
