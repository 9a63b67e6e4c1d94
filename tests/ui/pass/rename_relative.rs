//! `crate = "self::..."` and `crate = "super::..."`, relative to the
//! module the manifest is written in, work with `task path;` entries too,
//! and so do entries whose path begins with `self`, `super` or `crate`.
use supervisor as sv;

use sv::{Context, Supervisor};

#[sv::supervised(crate = "self::sv", restart = "1s")]
async fn worker(_ctx: Context) {}

mod inner {
    use super::sv;

    #[sv::supervised(crate = "super::sv")]
    pub(crate) async fn nested(_ctx: sv::Context) {}

    pub(crate) fn manifest() -> sv::Supervisor {
        sv::supervise! {
            crate = "super::sv";
            task self::nested;
            task super::worker;
        }
    }
}

fn main() {
    let _here: Supervisor = sv::supervise! {
        crate = "self::sv";
        task worker;
        task crate::inner::nested;
    };
    let _inner = inner::manifest();
}
