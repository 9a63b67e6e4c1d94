use supervisor::supervised;

mod app {
    pub struct Context;
}

#[supervised]
async fn worker(_ctx: app::Context) {}

fn main() {}
