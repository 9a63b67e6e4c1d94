use supervisor::{supervise, Context};

async fn serve_api(_ctx: Context) {}

supervise! {
    pub struct Services<T>;
    task api = serve_api;
}

fn main() {}
