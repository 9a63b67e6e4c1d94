use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        daemon logs = "tail -f app.log | grep ERROR";
    };
}
