use supervisor::{supervise, Context, Supervisor};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        daemon "web\n1" = "web";
        task "job\u{1b}[2J" = job;
        group "jobs\0" {} {
            task "c1\u{85}" = job;
        }
    };
}
