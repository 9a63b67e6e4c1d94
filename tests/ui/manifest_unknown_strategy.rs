use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        strategy = "one_for_none";
    };
}
