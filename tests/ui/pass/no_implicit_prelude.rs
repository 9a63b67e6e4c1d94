#![no_implicit_prelude]

#[::supervisor::supervised(restart = "1s", max = 2, on = "failure", window = "10s", window_max = 3)]
async fn worker(_ctx: ::supervisor::Context) -> ::std::result::Result<(), ::std::string::String> {
    ::std::result::Result::Ok(())
}

#[::supervisor::supervised]
async fn plain() {}

async fn other(_ctx: ::supervisor::Context) {}

fn main() {
    let _ = typed::check;
    let _sup: ::supervisor::Supervisor = ::supervisor::supervise! {
        shutdown_timeout = "1s";
        daemon web = "python3 -m http.server" { restart = "2s", stop_signal = "TERM", env = { A = "b" }, dir = "/" };
        task worker;
        task plain { on = "never", stop_timeout = "2s" };
        task other = other { max = -1, backoff = 2.0, max_delay = "5s" };
    };
}

::supervisor::supervise! {
    pub struct Typed;
    task worker;
    group g { strategy = "one_for_all" } {
        task plain;
        daemon web = "web";
    }
}

mod typed {
    pub fn check(typed: &super::Typed) -> &::supervisor::UnitRef {
        let _: fn() -> super::Typed = super::Typed::start;
        &typed.g.web
    }
}
