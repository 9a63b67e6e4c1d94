use supervisor::{supervise, Context};

async fn migrate(_ctx: Context) {}

supervise! {
    pub struct Services;
    group storage {} {
        daemon postgres = "postgres -D /var/lib/pg";
        task migrate = migrate;
    }
    daemon worker = "worker";
}

async fn restart_db(services: &Services) -> Result<(), supervisor::Error> {
    services.storage.postgress.restart().await?;
    services.wroker.status();
    Ok(())
}

fn main() {
    let _ = restart_db;
}
