use supervisor::{supervised, Context};

#[supervised]
async unsafe fn worker(_ctx: Context) {}

#[supervised]
const fn other(_ctx: Context) {}

fn main() {}
