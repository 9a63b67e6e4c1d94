use supervisor::supervised;

#[supervised]
struct Worker;

fn main() {}
