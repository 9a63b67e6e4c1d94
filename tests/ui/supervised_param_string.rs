use supervisor::supervised;

#[supervised]
async fn worker(ctx: String) {
    let _ = ctx;
}

fn main() {}
