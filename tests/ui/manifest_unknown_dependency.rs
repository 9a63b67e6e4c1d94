use supervisor::{supervise, Context, Supervisor};

async fn serve_api(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        daemon postgres = "postgres -D /var/lib/pg";
        task api = serve_api { depends_on = [postgress] };
    };
}
