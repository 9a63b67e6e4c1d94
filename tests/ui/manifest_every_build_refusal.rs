use supervisor::{supervise, Context, Supervisor};

async fn serve(ctx: Context) {
    ctx.cancelled().await
}

// Each of these compiled, and `build()` refused it at run time, where
// `Services::start()` and the plain form do not look.
fn main() {
    let _sup: Supervisor = supervise! {
        intensity = 0; period = "30s";
        group storage { intensity = 0, period = "30s" } {
            daemon postgres = "postgres" { ready = tcp("[not-an-ip]:5432") };
            daemon replica = "postgres" { ready = tcp("user@db:5432") };
            daemon primary = "postgres" { ready = tcp("db/primary:5432") };
        }
        task api = serve { liveness = tcp("127.0.0.1:8080"), liveness_successes = 2 };
        task web = serve { ready = http("http://[zz]:8080/health") };
    };
}
