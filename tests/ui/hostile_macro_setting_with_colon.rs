use supervisor::{supervise, Context, Supervisor};

async fn serve_api(_ctx: Context) {}

fn main() {
    // A setting written with `:`, as YAML writes it: told, on the setting,
    // to take `=`, as an option with `:` is, where it was called an
    // unknown kind of entry.
    let _sup: Supervisor = supervise! {
        shutdown_timeout: "30s";
        strategy = "one_for_all";
        task api = serve_api;
    };
}
