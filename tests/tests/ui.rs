//! Compile-time checks of the macros: every error message, and the pass
//! cases (lints, hygiene, renamed crate).
//!
//! The `.stderr` files hold the exact output of one toolchain, so the
//! compile-fail comparison runs only there; the pass cases run everywhere.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("ui/pass/*.rs");
    if exact_output_toolchain() {
        cases.compile_fail("ui/*.rs");
    }
}

#[rustversion::stable(1.95)]
fn exact_output_toolchain() -> bool {
    true
}

#[rustversion::not(stable(1.95))]
fn exact_output_toolchain() -> bool {
    false
}
