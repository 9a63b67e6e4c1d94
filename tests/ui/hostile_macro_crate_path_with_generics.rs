//! `crate = "..."` names the supervisor crate by its path: generic
//! arguments are refused on the string, in the option's own words.
fn main() {
    let _ = supervisor::supervise! {
        crate = "supervisor<T>";
        daemon web = "sleep 30";
    };
}
