// An error in a typed manifest is the only error: the type is still
// defined, with the fields of the units that parsed.
use supervisor::supervise;

supervise! {
    pub struct Services;
    daemon db = "postgres" { restart = "5 parsecs" };
    daemon web = "web";
}

#[tokio::main]
async fn main() {
    let services = Services::start();
    services.db.restart().await.unwrap();
    let _ = services.web.status();
}
