use supervisor::{supervise, Context, Supervisor};

async fn serve_api(_ctx: Context) {}

fn main() {
    // A task's name and its fn written as a pair, `name: value`: told, on
    // the `:`, to take `=`, as a daemon written so is, where it was read
    // as a `task path;` entry and asked for its `;`.
    let _sup: Supervisor = supervise! {
        task api: serve_api;
    };
}
