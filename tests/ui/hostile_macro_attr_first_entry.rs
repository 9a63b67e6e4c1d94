use supervisor::{supervise, Context, Supervisor};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        #[cfg(unix)]
        daemon web = "web";
    };
}

// An attribute on the first entry is refused on the attribute, not read as the start of a typed handle.
