pub extern crate supervisor as renamed;

use renamed::{Context, Supervisor};

#[renamed::supervised(crate = "renamed", restart = "1s")]
async fn worker(_ctx: Context) {}

mod deep {
    pub use renamed as sup;
}

#[renamed::supervised(crate = "crate::deep::sup")]
async fn relative(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = renamed::supervise! {
        crate = "renamed";
        daemon web = "web --port 80" { restart = "1s" };
        task worker;
        task relative;
        task inline = worker { max = 1 };
    };
}
