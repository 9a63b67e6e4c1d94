use std::time::Duration;
use supervisor::{Context, Supervisor, TaskSpec, supervised};

#[supervised(
    restart = "5s",
    max = -1,
    on = "failure",
    backoff = 2.0,
    max_delay = "1m",
    jitter = 0.1,
    reset_after = "5m",
    window = "30s",
    window_max = 5,
    stop_timeout = "10s",
    name = "custom"
)]
pub async fn every_option(ctx: Context) -> anyhow::Result<()> {
    ctx.cancelled().await;
    Ok(())
}

#[supervised]
async fn no_options(_: supervisor::Context) {}

#[supervised(
    critical,
    ready = tcp("127.0.0.1:8080"),
    readiness_period = "1s",
    readiness_timeout = "200ms",
    readiness_initial_delay = "0s",
    readiness_failures = 2,
    readiness_successes = 1,
    liveness = http("http://127.0.0.1:8080/health"),
    liveness_period = "10s",
    liveness_failures = 3,
    watchdog = "30s"
)]
async fn watched(ctx: Context) {
    ctx.heartbeat();
    ctx.ready();
    ctx.cancelled().await;
}

#[supervised(max = 0)]
async fn no_context() -> Result<(), std::io::Error> {
    Ok(())
}

#[supervised(restart = "250ms")]
pub(crate) async fn boxed_error(mut ctx: Context) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    ctx = ctx;
    let _ = ctx.name();
    Ok(())
}

mod jobs {
    use supervisor::{Context, supervised};

    #[supervised(max = 3)]
    pub async fn nested(_ctx: Context) -> Result<(), String> {
        Err("no".to_owned())
    }
}

fn main() {
    assert_eq!(every_option::NAME, "custom");
    assert_eq!(no_options::NAME, "no_options");
    assert_eq!(jobs::nested::NAME, "nested");
    let specs: [TaskSpec; 6] = [
        watched::spec(),
        every_option::spec(),
        no_options::spec(),
        no_context::spec(),
        boxed_error::spec(),
        jobs::nested::spec(),
    ];
    let mut builder = Supervisor::builder().shutdown_timeout(Duration::from_secs(1));
    for spec in specs {
        builder = builder.task(spec);
    }
    let _sup: Supervisor = builder.build().unwrap();
    // The fns stay ordinary, callable fns.
    let _future = no_context();
}
