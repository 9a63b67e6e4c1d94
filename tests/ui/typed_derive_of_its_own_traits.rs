//! The typed form is `Clone` and `Debug` already: a `derive` of either is
//! refused on the trait, not as rustc's conflicting implementation on the
//! macro. Other derives and attributes stay.

use supervisor::supervise;

supervise! {
    /// The services.
    #[derive(Debug)]
    #[allow(dead_code)]
    pub struct Services;
    daemon web = "web";
}

mod cloned {
    use supervisor::supervise;

    supervise! {
        #[derive(core::clone::Clone)]
        pub struct Services;
        daemon web = "web";
    }
}

fn main() {}
