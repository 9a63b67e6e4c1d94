//! An axum application that supervises its own daemons: the probes nested
//! under `/supervisor`, the units' metrics exported with the application's
//! own through the `metrics` facade and the Prometheus exporter, and the
//! control API on a Unix socket that only this user can open.
//!
//! ```text
//! cargo run --example axum_app                          # the app on 127.0.0.1:3000
//! cargo run --example axum_app -- 127.0.0.1:0 /tmp/my.sock
//! curl -s localhost:3000/supervisor/readyz
//! curl -s localhost:3000/metrics | grep supervisor_unit_up
//! cargo run --example ctl -- status                     # through the control socket
//! cargo run --example ctl -- restart web
//! cargo run --example ctl -- tail web -n 5
//! ```
//!
//! The control API's token is `$SUPERVISOR_TOKEN` if set; otherwise a fresh
//! random one, written next to the socket (`<socket>.token`, mode 0600),
//! where `ctl` finds it, removed at the end. Ctrl-C stops the application
//! and the units gracefully.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusBuilder;
use supervisor::http::{ControlApi, HttpEndpoint};
use supervisor::{Context, DaemonSpec, RestartPolicy, Supervisor, TaskSpec};

/// Where the control socket goes unless the second argument says: the
/// user's runtime directory, private to them, or the temporary directory.
fn default_socket() -> PathBuf {
    let dir = std::env::var_os("XDG_RUNTIME_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    dir.join("supervisor-example.sock")
}

/// A fresh random token: 32 bytes from the kernel, in hex.
fn random_token() -> std::io::Result<String> {
    let mut bytes = [0_u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Writes the token to a file only this user can read.
fn write_token(path: &Path, token: &str) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    writeln!(file, "{token}")
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,supervisor::output=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:3000").parse()?;
    let socket = args.next().map_or_else(default_socket, PathBuf::from);
    // The application's port first: taken, nothing has started yet.
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|error| {
        anyhow::anyhow!("cannot bind the application to {addr}: {error} (pass another address as the first argument)")
    })?;

    // The recorder first: the supervisor's metrics are registered with it.
    let prometheus = PrometheusBuilder::new().install_recorder()?;

    let handle = Supervisor::builder()
        .daemon(DaemonSpec::new("web", "sh").args([
            "-c",
            "trap 'echo web: reloading' HUP; echo web: listening; while :; do sleep 2; echo web: served a request; done",
        ]))
        .daemon(
            DaemonSpec::new("worker", "sh")
                .args(["-c", "echo worker: working; sleep 5; echo worker: crashing >&2; exit 3"])
                .restart(RestartPolicy::new().delay(std::time::Duration::from_secs(2))),
        )
        .task(TaskSpec::new("cleanup", |ctx: Context| async move {
            ctx.cancelled().await;
            Ok::<_, std::io::Error>(())
        }))
        .shutdown_timeout(std::time::Duration::from_secs(10))
        .build()?
        .start();
    let shutdown = handle.shutdown_on_signal();
    let metrics = Arc::new(handle.publish_metrics());

    // The application's routes, its metrics, and the supervisor's probes.
    let app = Router::new()
        .route("/", get(|| async { "the application\n" }))
        .route(
            "/metrics",
            get(move || {
                let (metrics, prometheus) = (metrics.clone(), prometheus.clone());
                async move {
                    metrics.refresh(); // an exact supervisor_unit_uptime_seconds
                    prometheus.render()
                }
            }),
        )
        .nest("/supervisor", supervisor::http::router(&handle));

    // The control API, for operators only: a Unix socket of mode 0600.
    let (token, generated) = match std::env::var("SUPERVISOR_TOKEN") {
        Ok(token) => (token, false),
        Err(_) => (random_token()?, true),
    };
    let control =
        HttpEndpoint::new().unix_socket(&socket).control(ControlApi::new(token.clone())?).serve(&handle).await?;
    // Written once the socket is ours, beside it, for `ctl`.
    let token_file = if generated {
        let file = PathBuf::from(format!("{}.token", socket.display()));
        write_token(&file, &token)?;
        println!("control token in {}", file.display());
        Some(file)
    } else {
        None
    };
    println!("control API on {} (try: cargo run --example ctl -- status)", socket.display());

    println!("application on http://{}: /, /metrics, /supervisor/readyz, /supervisor/status", listener.local_addr()?);
    let server = tokio::spawn({
        let handle = handle.clone();
        async move {
            // The application stops serving once the supervisor has ended.
            axum::serve(listener, app).with_graceful_shutdown(async move { drop(handle.wait().await) }).await
        }
    });

    let report = shutdown.await;
    server.await??;
    control.stopped().await; // and the socket is removed
    if let Some(file) = token_file {
        let _ = std::fs::remove_file(file);
    }
    println!("\n{report}");
    Ok(ExitCode::from(&report))
}
