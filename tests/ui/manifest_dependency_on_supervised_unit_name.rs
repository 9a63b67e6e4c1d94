use supervisor::{supervise, supervised, Context, Supervisor};

#[supervised(name = "db-migrate")]
async fn migrate(_ctx: Context) {}

#[allow(dead_code)]
async fn api(_ctx: Context) {}

// In a manifest, `depends_on` names a `task path;` entry by its fn's name,
// not by the unit name its attribute gives.
fn main() {
    let _sup: Supervisor = supervise! {
        group storage {} {
            task migrate;
            task api = api { depends_on = ["db-migrate"] };
        }
    };
}
