use supervisor::{supervise, Context, Supervisor};

async fn nightly_report(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        daemon web = "web";
        group jobs {} {
            task report = nightly_report { depends_on = [web] };
        }
    };
}
