use supervisor::{supervised, Context};

#[supervised(env = { RUST_LOG = "info" }, dir = "/srv", success_codes = [0], stop_signal = "INT")]
async fn worker(_ctx: Context) {}

fn main() {}
