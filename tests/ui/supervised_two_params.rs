use supervisor::{supervised, Context};

#[supervised]
async fn worker(_ctx: Context, port: u16) {
    let _ = port;
}

fn main() {}
