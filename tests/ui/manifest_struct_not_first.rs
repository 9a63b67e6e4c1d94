use supervisor::{supervise, Context};

async fn serve_api(_ctx: Context) {}

supervise! {
    task api = serve_api;
    pub struct Services;
}

fn main() {}
