//! The typed form implements `Clone` and `Debug` itself: a `derive` of
//! them is refused inside a `cfg_attr` as it is outside one.
supervisor::supervise! {
    #[cfg_attr(all(), derive(Clone))]
    pub struct Services;
    daemon web = "sleep 30";
}

fn main() {}
