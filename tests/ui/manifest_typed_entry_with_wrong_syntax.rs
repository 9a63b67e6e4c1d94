use supervisor::{supervise, Context};

async fn idle(ctx: Context) {
    ctx.cancelled().await;
}

// Entries whose syntax is wrong after their names have each its own error,
// and are still fields of the typed form and units their dependents find:
// no error follows in the code that uses them.
supervise! {
    pub struct Services;
    daemon web { restart = "1s" };
    task cache = ;
    group jobs = "x";
    task api = idle { depends_on = [web, cache, jobs] };
}

#[tokio::main]
async fn main() {
    let services = Services::start();
    let _ = (services.web.status(), services.cache.status(), services.jobs.status(), services.api.status());
}
