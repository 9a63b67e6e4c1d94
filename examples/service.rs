//! A complete service: a manifest of two daemons and a task, the HTTP
//! probes, a live status table, systemd notifications when run under
//! systemd, and a graceful shutdown on Ctrl-C or `SIGTERM`.
//!
//! ```text
//! cargo run --example service                   # probes on 127.0.0.1:9000
//! cargo run --example service -- 127.0.0.1:0    # any free port
//! curl -s localhost:9000/readyz
//! ```
//!
//! `worker` runs for ever, `flaky` crashes every few seconds and is
//! restarted (watch its restart count grow, and `/readyz` flip to 503 while
//! it waits to restart), and `heartbeat` is an `#[supervised]` task. `db`
//! is a stand-in database that listens only after two seconds, with a TCP
//! readiness probe, and `api` depends on it: it waits (`/readyz` says for
//! what) until `db` answers. Ctrl-C
//! stops everything gracefully (a second Ctrl-C kills what is left), prints
//! the shutdown report and exits with its code: 0 when every unit stopped in
//! time.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use supervisor::{
    Context, DaemonSpec, HttpEndpoint, Probe, Readiness, Supervisor, SupervisorHandle, TaskSpec, UnitStatus, supervise,
    supervised,
};

/// A stand-in database: listens on the port it is given after two seconds.
const DB: &str = "import socket, sys, time
time.sleep(2)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1])))
s.listen()
print('db: listening', flush=True)
while True:
    s.accept()[0].close()
";

/// How often the status table is printed.
const TABLE_EVERY: Duration = Duration::from_secs(3);

/// A task that logs a heartbeat until it is asked to stop.
#[supervised(restart = "1s", max = -1)]
async fn heartbeat(ctx: Context) -> anyhow::Result<()> {
    let mut interval = tokio::time::interval(Duration::from_secs(10));
    let mut beats = 0_u64;
    loop {
        tokio::select! {
            () = ctx.cancelled() => return Ok(()),
            _ = interval.tick() => {
                beats += 1;
                tracing::info!(beats, "heartbeat");
            }
        }
    }
}

/// Adds `db`, ready once its port answers, and `api`, which waits for it.
async fn add_db_and_api(handle: &SupervisorHandle) -> Result<(), supervisor::Error> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|source| supervisor::Error::Io { context: "finding a free port for db".to_owned(), source })?
        .port();
    let db = DaemonSpec::new("db", "python3")
        .args(["-c", DB, &port.to_string()])
        .readiness(Readiness::Probe(Probe::tcp(format!("127.0.0.1:{port}")).period(Duration::from_secs(5))));
    handle.add(db).await?;
    let api = TaskSpec::new("api", |ctx: Context| async move {
        tracing::info!("api: serving, now that db answers");
        ctx.cancelled().await;
    })
    .depends_on(["db"]);
    handle.add(api).await
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let addr = match parse_addr(std::env::args().nth(1).as_deref()) {
        Ok(addr) => addr,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };

    let sup: Supervisor = supervise! {
        shutdown_timeout = "10s";
        daemon worker = ["sh", "-c", "echo worker: started; while true; do sleep 5; echo worker: still working; done"]
            { restart = "1s", max = -1 };
        daemon flaky = ["sh", "-c", "echo flaky: up; sleep 4; echo flaky: crashing >&2; exit 1"]
            { restart = "2s", max = -1 };
        task heartbeat;
    };
    let handle = sup.start();
    // Installed now, so that a signal from here on shuts down gracefully.
    let shutdown = handle.shutdown_on_signal();
    tokio::pin!(shutdown);

    if let Err(error) = add_db_and_api(&handle).await {
        eprintln!("{error}");
        handle.shutdown().await;
        return ExitCode::FAILURE;
    }
    handle.add_health_check("temp-dir", || async { std::fs::metadata(std::env::temp_dir()).map(|_| ()) });
    let server = match HttpEndpoint::new().addr(addr).serve(&handle).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("{error}");
            handle.shutdown().await;
            return ExitCode::FAILURE;
        }
    };
    let base = format!("http://{}", server.local_addr());
    println!("serving {base}/livez /readyz /healthz /status /metrics");
    if handle.notify_systemd() {
        println!("notifying systemd (READY=1, STATUS=, STOPPING=1, WATCHDOG=1)");
    }
    println!("press Ctrl-C to stop");

    let mut table = tokio::time::interval(TABLE_EVERY);
    let report = loop {
        tokio::select! {
            report = &mut shutdown => break report,
            _ = table.tick() => print_table(&handle).await,
        }
    };
    println!("\n{report}");
    ExitCode::from(&report)
}

/// `HOST:PORT`, or `PORT` alone for loopback.
fn parse_addr(arg: Option<&str>) -> Result<SocketAddr, String> {
    let Some(arg) = arg else {
        return Ok(supervisor::DEFAULT_HTTP_ADDR);
    };
    if let Ok(addr) = arg.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match arg.trim_start_matches(':').parse::<u16>() {
        Ok(port) => Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)),
        Err(_) => Err(format!("cannot use `{arg}` as an address: write HOST:PORT, e.g. 127.0.0.1:9000, or a port")),
    }
}

/// A compact table of every unit, and the readiness verdict.
async fn print_table(handle: &SupervisorHandle) {
    let health = handle.health().await;
    let statuses = handle.statuses();
    let width = statuses.iter().map(|status| status.name.len()).max().unwrap_or(4).max(4);
    println!();
    println!(
        "{:width$}  {:7}  {:8}  {:>7}  {:>8}  {:>8}  last exit",
        "unit", "type", "state", "pid", "restarts", "uptime"
    );
    for status in &statuses {
        println!(
            "{:width$}  {:7}  {:8}  {:>7}  {:>8}  {:>8}  {}",
            status.name,
            status.kind.as_str(),
            status.state.as_str(),
            status.pid.map_or_else(|| "-".to_owned(), |pid| pid.to_string()),
            status.restart_count,
            status.uptime.map_or_else(|| "-".to_owned(), |uptime| format!("{}s", uptime.as_secs())),
            last_exit(status),
        );
    }
    if health.ready {
        println!("ready");
    } else {
        println!("{}: {}", health.status, health.reasons.join("; "));
    }
}

fn last_exit(status: &UnitStatus) -> String {
    match (status.exit_code, status.signal, &status.last_error) {
        (_, _, Some(error)) => error.clone(),
        (Some(code), _, None) => format!("code {code}"),
        (None, Some(signal), None) => format!("signal {signal}"),
        (None, None, None) => "-".to_owned(),
    }
}
