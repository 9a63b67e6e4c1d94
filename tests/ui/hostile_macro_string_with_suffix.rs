use supervisor::{supervise, supervised, Context, Supervisor};

// A suffix after a string is refused on the string: rustc refuses it in
// code, but hands it to a macro, where it was dropped without a word
// (`"5s"ms` read as five seconds).
#[supervised(restart = "1s"ms)]
async fn ticker(_ctx: Context) {}

async fn serve_api(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        task api = serve_api { restart = "5s"ms };
        daemon web = "python3 -m http.server"x;
        task ticker;
    };
}
