use supervisor::{supervise, supervised, Context, Supervisor};

#[supervised(restart = "1s")]
async fn worker(_ctx: Context) {
    let delay = ;
}

fn main() {
    // `worker::spec()` still exists: the body's error is the only one.
    let _spec = worker::spec();
    let _sup: Supervisor = supervise! { task worker; };
}
