//! The `tree` bench's summary with mimalloc as the global allocator, on
//! both sides: how much of each ratio is the system allocator's.
//!
//! glibc's allocator gives each thread an arena and locks an arena to free
//! a block that a thread of another arena allocated. A stop of 10k units
//! frees several blocks per unit from both workers at once, raw tokio one
//! or two; mimalloc frees across threads without a lock.
//!
//! Run with `cargo bench -p tokio-supervisor --bench tree_mimalloc` (the
//! paired rounds only; criterion's runs belong to `tree`), or `-- --quick`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "tree.rs"]
#[allow(dead_code, reason = "its `main` is the `tree` bench's")]
mod tree;

fn main() {
    tree::run("Summary (supervision trees vs raw tokio, same run, both on mimalloc)", false);
}
