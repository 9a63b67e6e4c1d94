use supervisor::{supervise, Supervisor};

fn main() {
    // Two words of a command list without the `,` between them: told so,
    // where a string literal was asked for on the second, which is one.
    let _sup: Supervisor = supervise! {
        daemon web = ["python3", "-m" "http.server"];
        daemon db = "postgres" { ready = exec(["pg_isready" "-q"]) };
    };
}
