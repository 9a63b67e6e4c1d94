use supervisor::{supervise, Context, Supervisor};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        daemon a = "a" { ready = tcp("local host:80") };
        daemon b = "b" { ready = tcp("user@host:80") };
        daemon c = "c" { ready = tcp("127.0.0.1:0") };
    };
}
