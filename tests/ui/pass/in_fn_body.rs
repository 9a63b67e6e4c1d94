use supervisor::{Context, Supervisor, supervise, supervised};

fn main() {
    #[supervised(restart = "1s", max = 1)]
    async fn local(_ctx: Context) {}

    assert_eq!(local::NAME, "local");
    let _sup: Supervisor = supervise! {
        task local { max = 0 };
        task again = local;
    };
}
