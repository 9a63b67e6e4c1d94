use supervisor::{supervise, Context, Supervisor};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        daemon api = "api";
        #[cfg(unix)]
        daemon web = "web";
    };
}

// An attribute on an entry is refused on the attribute, and the entry is read on.
