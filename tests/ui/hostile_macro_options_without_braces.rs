use supervisor::{supervise, Context, Supervisor};

async fn serve_api(_ctx: Context) {}

fn main() {
    // Options written after an entry without their braces: told to take
    // them, where the `;` asked for alone would make each option an
    // unknown setting.
    let _sup: Supervisor = supervise! {
        daemon web = "python3 -m http.server" restart = "1s", max = 3;
        task api = serve_api critical;
    };
}
