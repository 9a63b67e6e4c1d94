use supervisor::{supervise, supervised, Context, Supervisor};

// A slip for `-1` (unlimited): not read as the negation of `-1`.
#[supervised(max = --1)]
async fn job(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        daemon web = "web" { max = --1, success_codes = [0, --1] };
        task job;
    };
}
