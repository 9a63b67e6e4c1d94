use supervisor::{supervised, Context};

#[supervised(restart = "1s")]
#[supervised(restart = "2s")]
async fn worker(_ctx: Context) {}

fn main() {}

// A second #[supervised] is one error, on it, and no follow-on errors about generated items.
