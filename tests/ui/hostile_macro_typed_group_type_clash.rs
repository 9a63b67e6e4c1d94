use supervisor::{supervise, Context};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

supervise! {
    pub struct Services;
    group a {} { group b_c {} { task x = job; } }
    group a_b {} { group c {} { task y = job; } }
}

fn main() {}
