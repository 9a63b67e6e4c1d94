use supervisor::{supervise, Context, Supervisor};

async fn serve_api(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        task api = serve_api { success_codes = [0] };
    };
}
