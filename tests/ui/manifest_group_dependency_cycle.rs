use supervisor::{supervise, Context, Supervisor};

async fn serve_api(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        group storage { depends_on = [api] } {
            daemon postgres = "postgres";
        }
        task api = serve_api { depends_on = [storage] };
    };
}
