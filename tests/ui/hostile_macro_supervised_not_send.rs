use supervisor::{supervised, Context};

#[supervised]
async fn worker(ctx: Context) {
    let rc = std::rc::Rc::new(1);
    ctx.cancelled().await;
    drop(rc);
}

fn main() {}
