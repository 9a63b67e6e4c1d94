use supervisor::{Supervisor, supervise};

fn main() {
    let _sup: Supervisor = supervise! {
        daemon argv = "printf '<%s>\n' one
            two";
    };
}
