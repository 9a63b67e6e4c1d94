use supervisor::{supervise, Supervisor};

fn main() {
    // A shell's way to set a variable: without a shell, the program would be
    // the word `FOO=1`.
    let _sup: Supervisor = supervise! {
        daemon x = "FOO=1 sh -c 'exit 0'";
    };
}
