//! `ctl`: a command-line client of the control API, over a Unix socket or
//! TCP, in the manner of `supervisorctl`.
//!
//! ```text
//! ctl [--unix PATH | --url URL] [--token-file FILE] COMMAND
//!
//!   status [UNIT]        every unit (GET /status), or one (GET /units/UNIT)
//!   restart UNIT         POST /units/UNIT/restart
//!   stop UNIT            POST /units/UNIT/stop
//!   start UNIT           POST /units/UNIT/start
//!   signal UNIT SIG      POST /units/UNIT/signal/SIG (HUP, USR1, ...)
//!   tail UNIT [-n N]     GET /units/UNIT/tail?lines=N (default 20)
//! ```
//!
//! Without `--unix` or `--url` it talks to the socket of
//! `cargo run --example axum_app`. `--url http://HOST:PORT/PREFIX` reaches
//! the routes on TCP, say those of an `HttpEndpoint` with the control API,
//! or mounted under a prefix in an application. The token is
//! `$SUPERVISOR_TOKEN`, else the content of `--token-file`, else of
//! `PATH.token` next to the socket. Unit paths (`storage/db`) are written
//! as they are.
//!
//! ```text
//! cargo run --example ctl -- status
//! cargo run --example ctl -- restart web
//! cargo run --example ctl -- tail web -n 50
//! cargo run --example ctl -- --url http://127.0.0.1:9000 signal storage/db HUP
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// What a segment of a unit path keeps as it is; everything else is
/// percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

const USAGE: &str = "usage: ctl [--unix PATH | --url URL] [--token-file FILE] COMMAND

commands:
  status [UNIT]        every unit, or one
  restart UNIT         stop it gracefully, then start it
  stop UNIT            stop it; it is not restarted
  start UNIT           start a stopped, exited or failed unit
  signal UNIT SIG      send SIG (HUP, USR1, ...) to a daemon's process group
  tail UNIT [-n N]     its last N lines of output (default 20)

token: $SUPERVISOR_TOKEN, --token-file FILE, or PATH.token beside the socket";

/// Where the server is.
enum Server {
    Unix(PathBuf),
    /// `host:port`, and the prefix the routes are mounted under.
    Tcp {
        authority: String,
        prefix: String,
    },
}

/// One call: the method, the path under the routes, and how to show the
/// answer.
struct Call {
    method: &'static str,
    path: String,
    show: fn(&Value),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("ctl: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Vec<String>) -> Result<ExitCode, String> {
    let mut server = None;
    let mut token_file = None;
    let mut rest = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--unix" => server = Some(Server::Unix(args.next().ok_or("--unix needs a path")?.into())),
            "--url" => server = Some(parse_url(&args.next().ok_or("--url needs a URL")?)?),
            "--token-file" => token_file = Some(PathBuf::from(args.next().ok_or("--token-file needs a path")?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            _ => rest.push(arg),
        }
    }
    let server = server.unwrap_or_else(|| Server::Unix(default_socket()));
    let call = parse_command(&rest)?;
    let token = token(&server, token_file)?;

    let (status, body) = send(&server, &call, token.as_deref()).await?;
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        // Not the routes' answer: a server or a path without them.
        let hint = if status == 404 { " (is the control API on at this address and prefix?)" } else { "" };
        return Err(format!("HTTP {status}{hint}: {}", body.trim()));
    };
    if status == 200 {
        (call.show)(&body);
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("{}", body["error"].as_str().unwrap_or("error"));
    if let Some(units) = body["units"].as_array() {
        let names: Vec<&str> = units.iter().filter_map(Value::as_str).collect();
        eprintln!("units: {}", names.join(", "));
    }
    Ok(ExitCode::FAILURE)
}

/// The socket of `cargo run --example axum_app`.
fn default_socket() -> PathBuf {
    let dir = std::env::var_os("XDG_RUNTIME_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    dir.join("supervisor-example.sock")
}

fn parse_url(url: &str) -> Result<Server, String> {
    let uri: Uri = url.parse().map_err(|error| format!("`{url}` is not a URL: {error}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("`{url}`: only http:// URLs (use a Unix socket, or TLS in front, across hosts)"));
    }
    let authority = uri.authority().ok_or_else(|| format!("`{url}` names no host"))?;
    let port = authority.port_u16().unwrap_or(80);
    Ok(Server::Tcp {
        authority: format!("{}:{port}", authority.host()),
        prefix: uri.path().trim_end_matches('/').to_owned(),
    })
}

/// A unit path with each segment percent-encoded and its `/` kept.
fn unit_path(unit: &str) -> String {
    unit.split('/').map(|segment| utf8_percent_encode(segment, SEGMENT).to_string()).collect::<Vec<_>>().join("/")
}

fn parse_command(args: &[String]) -> Result<Call, String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let call = |method, path: String, show| Ok(Call { method, path, show });
    match args.as_slice() {
        ["status"] => call("GET", "/status".to_owned(), show_statuses),
        ["status", unit] => call("GET", format!("/units/{}", unit_path(unit)), show_one),
        [action @ ("restart" | "stop" | "start"), unit] => {
            call("POST", format!("/units/{}/{action}", unit_path(unit)), show_done)
        }
        ["signal", unit, signal] => {
            let signal = utf8_percent_encode(signal, SEGMENT);
            call("POST", format!("/units/{}/signal/{signal}", unit_path(unit)), show_done)
        }
        ["tail", unit] => call("GET", format!("/units/{}/tail?lines=20", unit_path(unit)), show_tail),
        ["tail", unit, "-n", lines] | ["tail", "-n", lines, unit] => {
            let lines: usize = lines.parse().map_err(|_| format!("-n `{lines}` is not a number of lines"))?;
            call("GET", format!("/units/{}/tail?lines={lines}", unit_path(unit)), show_tail)
        }
        _ => Err(USAGE.to_owned()),
    }
}

/// The token: from the environment, the file named, or the file beside
/// the socket. `None` when there is none (the probes need none).
fn token(server: &Server, file: Option<PathBuf>) -> Result<Option<String>, String> {
    if let Ok(token) = std::env::var("SUPERVISOR_TOKEN") {
        return Ok(Some(token));
    }
    let file = match (file, server) {
        (Some(file), _) => file,
        (None, Server::Unix(socket)) => PathBuf::from(format!("{}.token", socket.display())),
        (None, Server::Tcp { .. }) => return Ok(None),
    };
    match std::fs::read_to_string(&file) {
        Ok(token) => Ok(Some(token.trim().to_owned())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("cannot read the token from {}: {error}", file.display())),
    }
}

/// Sends the call through hyper's HTTP/1.1 client; the status and body.
async fn send(server: &Server, call: &Call, token: Option<&str>) -> Result<(u16, String), String> {
    let (host, path) = match server {
        Server::Unix(_) => ("localhost".to_owned(), call.path.clone()),
        Server::Tcp { authority, prefix } => (authority.clone(), format!("{prefix}{}", call.path)),
    };
    let mut request = Request::builder().method(call.method).uri(&path).header("host", host);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.body(Empty::<Bytes>::new()).map_err(|error| format!("bad request: {error}"))?;
    let response = match server {
        Server::Unix(socket) => {
            let stream = tokio::net::UnixStream::connect(socket)
                .await
                .map_err(|error| format!("cannot connect to {}: {error}", socket.display()))?;
            request_on(TokioIo::new(stream), request).await?
        }
        Server::Tcp { authority, .. } => {
            let stream = tokio::net::TcpStream::connect(authority)
                .await
                .map_err(|error| format!("cannot connect to {authority}: {error}"))?;
            request_on(TokioIo::new(stream), request).await?
        }
    };
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(|error| format!("reading the answer: {error}"))?;
    Ok((status, String::from_utf8_lossy(&body.to_bytes()).into_owned()))
}

async fn request_on<I>(io: I, request: Request<Empty<Bytes>>) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(io).await.map_err(|error| format!("HTTP handshake: {error}"))?;
    tokio::spawn(connection);
    sender.send_request(request).await.map_err(|error| format!("sending the request: {error}"))
}

fn show_statuses(body: &Value) {
    let units = body.as_array().map(Vec::as_slice).unwrap_or_default();
    let width = units.iter().filter_map(|unit| unit["name"].as_str()).map(str::len).max().unwrap_or(4).max(4);
    println!("{:width$}  {:7}  {:8}  {:>7}  {:>8}  {:>8}", "unit", "type", "state", "pid", "restarts", "uptime");
    for unit in units {
        show_row(unit, width);
    }
}

fn show_row(unit: &Value, width: usize) {
    let text = |key: &str| unit[key].as_str().unwrap_or("-").to_owned();
    let number = |key: &str| unit[key].as_u64().map_or_else(|| "-".to_owned(), |n| n.to_string());
    let uptime = unit["uptime"].as_f64().map_or_else(|| "-".to_owned(), |seconds| format!("{seconds:.0}s"));
    println!(
        "{:width$}  {:7}  {:8}  {:>7}  {:>8}  {:>8}",
        text("name"),
        text("type"),
        text("state"),
        number("pid"),
        number("restartsTotal"),
        uptime
    );
}

fn show_one(body: &Value) {
    show_statuses(&Value::Array(vec![body["status"].clone()]));
}

fn show_done(body: &Value) {
    let status = &body["status"];
    let pid = status["pid"].as_u64().map_or_else(String::new, |pid| format!(", pid {pid}"));
    println!(
        "{}: {} done; now {}{pid}",
        body["unit"].as_str().unwrap_or("?"),
        body["done"].as_str().unwrap_or("?"),
        status["state"].as_str().unwrap_or("?")
    );
}

fn show_tail(body: &Value) {
    for line in body["lines"].as_array().map(Vec::as_slice).unwrap_or_default() {
        println!("{}", line.as_str().unwrap_or_default());
    }
}
