use supervisor::{supervise, Context};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

supervise! {
    pub struct Services;
    group web {} { task x = job; }
    group Web {} { task y = job; }
}

fn main() {}
