//! Benchmarks of supervised tasks beside raw tokio.
fn main() {}
