use supervisor::{supervise, Context, Supervisor};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

// An entry cut short by the end of the manifest (or of a group's units):
// the error is on its last token, not on the whole macro call.
fn main() {
    let _: Supervisor = supervise! { daemon };
    let _: Supervisor = supervise! { daemon x };
    let _: Supervisor = supervise! { daemon x = };
    let _: Supervisor = supervise! { task };
    let _: Supervisor = supervise! { task x = };
    let _: Supervisor = supervise! { group };
    let _: Supervisor = supervise! { group g };
    let _: Supervisor = supervise! {
        group g {} {
            task a = job;
            daemon y
        }
    };
    let _: Supervisor = supervise! { daemon a = "sleep 1" { ready = exec() } };
}
