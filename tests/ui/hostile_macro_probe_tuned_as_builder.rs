use supervisor::{supervise, Supervisor};

fn main() {
    // A probe tuned as the builder tunes one (`Probe::tcp(..).period(..)`):
    // told, on the setter, the option of the entry that does it, where the
    // call was only unexpected tokens.
    let _sup: Supervisor = supervise! {
        daemon db = "postgres" { ready = tcp("127.0.0.1:5432").period("2s") };
        daemon web = "web" { liveness = http("http://127.0.0.1:8080/health").failure_threshold(5) };
    };
}
