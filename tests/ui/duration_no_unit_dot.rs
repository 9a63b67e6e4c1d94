use supervisor::{supervised, Context};

// The hint is a duration that parses: "5s", not "5.s"; none for ".".
#[supervised(restart = "5.", stop_timeout = ".")]
async fn worker(_ctx: Context) {}

fn main() {}
