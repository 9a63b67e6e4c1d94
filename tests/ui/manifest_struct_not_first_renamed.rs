use supervisor::{supervise, Context};

async fn serve_api(_ctx: Context) {}

supervise! {
    crate = "supervisor";
    task api = serve_api;
    pub(crate) struct Svc;
}

fn main() {}
