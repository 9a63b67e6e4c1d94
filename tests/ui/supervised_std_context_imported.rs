use std::task::Context;
use supervisor::supervised;

#[supervised]
async fn poll(_cx: Context) {}

fn main() {}
