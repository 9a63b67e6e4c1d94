use supervisor::{supervised, Context};

#[supervised(name = "  ")]
async fn worker(_ctx: Context) {}

#[supervised(name = "a\0b")]
async fn other(_ctx: Context) {}

fn main() {}
