use supervisor::{supervise, Context, Supervisor};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        daemon a = "a" { ready = http("http://127.0.0.1:0/") };
        daemon b = "b" { ready = http("http://h:80x/") };
    };
}
