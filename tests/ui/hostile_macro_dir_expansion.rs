use supervisor::{supervise, Context, Supervisor};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

// Nothing expands a working directory: `~` and `$NAME` would be taken as
// written. An `env` value is given to the program as written, and `$` there
// is left alone.
fn main() {
    let _sup: Supervisor = supervise! {
        daemon a = "pwd" { dir = "~" };
        daemon b = "pwd" { dir = "~/app" };
        daemon c = "pwd" { dir = "$HOME/app" };
        daemon d = "pwd" { dir = "/srv/${APP}/data" };
        daemon e = "pwd" { dir = "/srv/app", env = { PATH = "$PATH:/opt/bin", TEMPLATE = "${name}" } };
    };
}
