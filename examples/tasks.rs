//! Supervised async tasks.
fn main() {}
