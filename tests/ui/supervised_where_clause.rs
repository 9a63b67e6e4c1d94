use supervisor::{supervised, Context};

#[supervised]
async fn worker(ctx: Context)
where
    u32: Copy,
{
    ctx.cancelled().await
}

fn main() {}
