use supervisor::Context as SvContext;
use supervisor::supervised;

#[supervised]
async fn worker(_ctx: &SvContext) {}

fn main() {}
