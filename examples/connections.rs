//! One supervised task per connection, as OTP's `simple_one_for_one`: a TCP
//! echo server whose acceptor adds each connection to the group
//! `connections` at run time. A connection's task is temporary: it is
//! forgotten when its client leaves. At shutdown the connections are asked
//! to stop all at once, then the acceptor.
//!
//! `cargo run --example connections` starts the server on a free port,
//! connects three clients, shows the tree, lets them leave, and shuts down.

use std::time::Duration;

use anyhow::Context as _;
use supervisor::{
    Context, GroupSpec, RestartOn, RestartPolicy, Supervisor, SupervisorHandle, TaskSpec, UnitStatus,
    WeakSupervisorHandle,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handle = Supervisor::builder().group(GroupSpec::new("connections")).build()?.start();
    // The acceptor is a unit too; it adds a unit per connection. It holds
    // a weak handle: a clone of the handle would keep the supervisor
    // running once `main` had dropped its own.
    let listener = std::sync::Arc::new(listener);
    let tree = handle.downgrade();
    handle.add(TaskSpec::new("acceptor", move |ctx: Context| accept(ctx, listener.clone(), tree.clone()))).await?;
    println!("echo server on {addr}");

    let mut clients = Vec::new();
    for i in 0..3 {
        let mut client = BufReader::new(TcpStream::connect(addr).await?);
        client.get_mut().write_all(format!("hello from client {i}\n").as_bytes()).await?;
        let mut echo = String::new();
        client.read_line(&mut echo).await?;
        print!("client {i} got back: {echo}");
        clients.push(client);
    }
    print_tree(&handle.statuses());

    drop(clients); // the clients leave: their units end and are forgotten
    handle.wait_status("connections", |_| connections(&handle) == 0).await?;
    print_tree(&handle.statuses());

    let report = handle.shutdown().await;
    println!("\n{report}");
    std::process::exit(report.exit_code());
}

/// Accepts connections until the acceptor is stopped; each becomes a unit.
async fn accept(ctx: Context, listener: std::sync::Arc<TcpListener>, tree: WeakSupervisorHandle) -> anyhow::Result<()> {
    let mut next = 0u64;
    loop {
        let (stream, peer) = tokio::select! {
            () = ctx.cancelled() => return Ok(()),
            accepted = listener.accept() => accepted.context("accepting a connection")?,
        };
        next += 1;
        let stream = std::sync::Mutex::new(Some(stream));
        let spec = TaskSpec::new(format!("conn-{next}"), move |ctx: Context| {
            let stream = stream.lock().map(|mut slot| slot.take()).ok().flatten();
            echo(ctx, stream)
        })
        // A connection is not restarted: its client is gone.
        .restart(RestartPolicy::new().on(RestartOn::Never))
        .stop_timeout(Duration::from_secs(1))
        .temporary();
        // `None` once the program has dropped its handles: the supervisor is shutting down.
        let Some(tree) = tree.upgrade() else { return Ok(()) };
        tree.add_to("connections", spec).await.with_context(|| format!("supervising the connection of {peer}"))?;
    }
}

/// Echoes lines until the client leaves or the unit is asked to stop.
async fn echo(ctx: Context, stream: Option<TcpStream>) -> anyhow::Result<()> {
    let Some(stream) = stream else { return Ok(()) };
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    loop {
        let line = tokio::select! {
            () = ctx.cancelled() => return Ok(()),
            line = lines.next_line() => line?,
        };
        let Some(line) = line else { return Ok(()) };
        write.write_all(format!("{line}\n").as_bytes()).await?;
    }
}

fn connections(handle: &SupervisorHandle) -> usize {
    handle.unit_names().iter().filter(|name| name.starts_with("connections/")).count()
}

fn print_tree(statuses: &[UnitStatus]) {
    println!();
    for status in statuses {
        let depth = status.name.matches('/').count();
        let name = status.name.rsplit('/').next().unwrap_or(&status.name);
        println!("{:indent$}{name:<12} {:<8} {}", "", status.kind, status.state, indent = depth * 2);
    }
}
