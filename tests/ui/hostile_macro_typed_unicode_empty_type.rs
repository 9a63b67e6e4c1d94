use supervisor::{supervise, Context};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

supervise! {
    pub struct Services;
    group "🚀" {} { task x = job; }
    group "✨" {} { task y = job; }
}

fn main() {}
