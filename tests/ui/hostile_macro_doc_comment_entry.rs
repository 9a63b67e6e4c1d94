use supervisor::{supervise, Context, Supervisor};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        daemon api = "api";
        /// The web server.
        daemon web = "web";
    };
}

// A doc comment on an entry is refused with a hint to write `//`.
