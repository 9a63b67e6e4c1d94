use std::task::Context;
use supervisor::supervised;

#[supervised]
async fn poll(_cx: Context<'_>) {}

fn main() {}
