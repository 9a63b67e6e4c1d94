use supervisor::{supervise, Context, Supervisor};

async fn serve(_ctx: Context) {}

fn main() {
    // Two names of a `depends_on` without the `,` between them: told so,
    // where `depends_on` was said to take names, on a name.
    let _sup: Supervisor = supervise! {
        daemon db = "postgres";
        daemon "cache-1" = "redis-server";
        task api = serve { depends_on = [db "cache-1"] };
    };
}
