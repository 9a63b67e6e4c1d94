//! Inside a group, a unit written out after a `task path;` entry whose fn
//! has its name: the error is on the later entry, the daemon, and names
//! both. The same name in another group is no clash.
use supervisor::{supervise, supervised, Context, Supervisor};

#[supervised(name = "indexer")]
async fn build_index(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        daemon indexer = "indexer";
        group search {
            task build_index;
            daemon api = "search-api";
            daemon indexer = "indexer --watch";
        }
    };
}
