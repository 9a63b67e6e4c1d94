use supervisor::{supervise, Supervisor};

fn main() {
    // Expanded by a shell only: the program would get them as written.
    let _home: Supervisor = supervise! {
        daemon x = "echo $HOME";
    };
    let _tilde: Supervisor = supervise! {
        daemon y = "ls ~/data";
    };
}
