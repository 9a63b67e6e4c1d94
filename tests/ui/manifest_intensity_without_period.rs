use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        intensity = 10;
    };
}
