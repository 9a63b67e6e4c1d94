//! Hostile and careless use of the service layer (the HTTP endpoint, the
//! metrics text, readiness and liveness, the Unix socket, the PID file,
//! `sd_notify` and `run()`'s signals) and of the macros at run time.
//!
//! Everything goes through real sockets and real processes. Tests that need
//! a process-wide setting (`NOTIFY_SOCKET`, signals sent to the process) run
//! the supervisor in a child process: this same test binary, running one of
//! the ignored `child_*` tests with its settings in the environment.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use supervisor::{
    Context, DaemonSpec, Error, GroupSpec, HttpEndpoint, HttpServer, Probe, Readiness, Supervisor, SupervisorHandle,
    TaskSpec, UnitState, supervise, supervised,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

#[path = "support/deadline.rs"]
mod deadline;
use deadline::watch_status;
#[path = "support/specs.rs"]
mod specs;
use specs::idle;

/// Generous: only a hang reaches it.
const DEADLINE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Helpers

async fn serve(handle: &SupervisorHandle) -> HttpServer {
    HttpEndpoint::new().addr("127.0.0.1:0".parse().unwrap()).serve(handle).await.expect("bind")
}

/// One parsed answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parses every answer in `bytes`; `bodiless[i]` says the i-th answer has no
/// body whatever its `Content-Length` (an answer to `HEAD`).
fn parse_answers(mut bytes: &[u8], bodiless: &[bool]) -> Vec<Answer> {
    let mut answers = Vec::new();
    while !bytes.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let head = match response.parse(bytes) {
            Ok(httparse::Status::Complete(head)) => head,
            other => panic!(
                "answer {} does not parse ({other:?}): {:?}",
                answers.len(),
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            ),
        };
        let headers: Vec<(String, String)> = response
            .headers
            .iter()
            .map(|header| (header.name.to_owned(), String::from_utf8_lossy(header.value).into_owned()))
            .collect();
        let status = response.code.expect("a status code");
        let length: usize = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, value)| value.parse().expect("a length"));
        let length = if bodiless.get(answers.len()).copied().unwrap_or(false) { 0 } else { length };
        assert!(bytes.len() >= head + length, "a truncated answer: {:?}", String::from_utf8_lossy(bytes));
        let body = bytes[head..head + length].to_vec();
        answers.push(Answer { status, headers, body });
        bytes = &bytes[head + length..];
    }
    answers
}

/// Writes `request` as it is and reads until the server closes.
async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send");
    let mut bytes = Vec::new();
    match tokio::time::timeout(DEADLINE, stream.read_to_end(&mut bytes)).await {
        Ok(_) => bytes,
        Err(_) => panic!(
            "no end of the answer to {:?} within {DEADLINE:?}; got {:?}",
            String::from_utf8_lossy(&request[..request.len().min(200)]),
            String::from_utf8_lossy(&bytes)
        ),
    }
}

/// As `exchange`, for an endpoint that may end meanwhile: a connection
/// refused or reset, or a request that cannot be sent, gets no answer.
async fn exchange_if_open(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let Ok(mut stream) = TcpStream::connect(addr).await else { return Vec::new() };
    if stream.write_all(request).await.is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut bytes)).await;
    assert!(read.is_ok(), "no end of the answer within {DEADLINE:?}; got {:?}", String::from_utf8_lossy(&bytes));
    bytes
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    let mut answers = parse_answers(&exchange(addr, request.as_bytes()).await, &[]);
    assert_eq!(answers.len(), 1, "{answers:?}");
    answers.remove(0)
}

// ---------------------------------------------------------------------------
// HTTP: methods, paths, pipelining

#[tokio::test]
async fn head_options_and_unknown_methods_keep_a_pipelined_connection_in_step() {
    let handle = Supervisor::builder().task(idle("ticker")).build().unwrap().start();
    let server = serve(&handle).await;
    watch_status(DEADLINE, &handle, "ticker", |status| status.ready).await;

    // One write: HEAD (no body may follow its head), OPTIONS, an unknown
    // method, HEAD on an unknown path, then a GET that closes. Were a body
    // sent after a HEAD, every later answer would be read out of step.
    let requests = [
        ("HEAD", "/livez"),
        ("OPTIONS", "/readyz"),
        ("BREW", "/metrics"),
        ("HEAD", "/nope"),
        ("HEAD", "/metrics"),
        ("DELETE", "/status"),
        ("GET", "/livez"),
    ];
    let mut bytes = Vec::new();
    for (i, (method, path)) in requests.iter().enumerate() {
        let close = if i == requests.len() - 1 { "Connection: close\r\n" } else { "" };
        bytes.extend(format!("{method} {path} HTTP/1.1\r\nHost: test\r\n{close}\r\n").into_bytes());
    }
    let bodiless: Vec<bool> = requests.iter().map(|(method, _)| *method == "HEAD").collect();
    let answers = parse_answers(&exchange(server.local_addr(), &bytes).await, &bodiless);
    let statuses: Vec<u16> = answers.iter().map(|answer| answer.status).collect();
    assert_eq!(statuses, [200, 405, 405, 404, 200, 405, 200], "{answers:#?}");
    for (answer, (method, _)) in answers.iter().zip(&requests) {
        if answer.status == 405 {
            assert_eq!(answer.header("allow"), Some("GET, HEAD"), "{method}: {answer:?}");
        }
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{method}: {answer:?}");
    }
    // HEAD says the length GET would send, and sends nothing.
    let get_length = get(server.local_addr(), "/livez").await.body.len();
    let head_length: usize = answers[0].header("content-length").unwrap().parse().unwrap();
    assert_eq!(head_length, get_length);
    handle.shutdown().await;
}

#[tokio::test]
async fn query_strings_absolute_form_and_http_1_0_reach_the_same_routes() {
    let handle = Supervisor::builder().task(idle("ticker")).build().unwrap().start();
    let server = serve(&handle).await;
    let addr = server.local_addr();
    watch_status(DEADLINE, &handle, "ticker", |status| status.ready).await;

    for path in ["/readyz?verbose=1", "/livez?", "/status?x=%2F&y", "/metrics?name[]=a#frag"] {
        let answer = get(addr, path).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    }
    // A proxy's absolute form.
    let answer = parse_answers(
        &exchange(
            addr,
            b"GET http://probe.example:9000/readyz HTTP/1.1\r\nHost: probe.example\r\nConnection: close\r\n\r\n",
        )
        .await,
        &[],
    );
    assert_eq!(answer[0].status, 200, "{answer:?}");
    // HTTP/1.0 without a Host: answered, then closed without being asked.
    let answer = parse_answers(&exchange(addr, b"GET /livez HTTP/1.0\r\n\r\n").await, &[]);
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0].status, 200, "{answer:?}");
    // Not the routes: a trailing slash, a different case, percent-encoded
    // separators, a path that climbs out.
    for path in ["/livez/", "/LIVEZ", "/livez%2F", "/../livez/..", "//livez"] {
        assert_eq!(get(addr, path).await.status, 404, "{path}");
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn a_pipelined_request_with_a_body_does_not_swallow_the_next_one() {
    let handle = Supervisor::builder().task(idle("ticker")).build().unwrap().start();
    let server = serve(&handle).await;
    watch_status(DEADLINE, &handle, "ticker", |status| status.ready).await;

    // A POST whose body looks like a request itself, a chunked PUT, then a
    // GET: three answers, in order, and the body is never taken for a
    // request.
    let smuggled = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
    let requests = format!(
        "POST /livez HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n{smuggled}\
         PUT /readyz HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n\
         GET /readyz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
        smuggled.len()
    );
    let answers = parse_answers(&exchange(server.local_addr(), requests.as_bytes()).await, &[]);
    let statuses: Vec<u16> = answers.iter().map(|answer| answer.status).collect();
    assert_eq!(statuses, [405, 405, 200], "{answers:#?}");
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------
// Metrics text

/// One sample of the text format, its label values unescaped.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// Reads `name{k="v",...} value` strictly as the text format 0.0.4 says:
/// only `\\`, `\"` and `\n` are escapes in a label value.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        loop {
            let key_start = chars.peek().map(|&(i, _)| i).ok_or("unterminated labels")?;
            if inner[key_start..].starts_with('}') {
                rest = &inner[key_start + 1..];
                break;
            }
            let eq = inner[key_start..].find('=').ok_or("a label without `=`")? + key_start;
            let key = &inner[key_start..eq];
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("bad label name {key:?}"));
            }
            while chars.peek().is_some_and(|&(i, _)| i <= eq) {
                chars.next();
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err("a label value without its opening quote".to_owned());
            }
            let mut value = String::new();
            loop {
                match chars.next().ok_or("unterminated label value")?.1 {
                    '"' => break,
                    '\\' => match chars.next().ok_or("a lone backslash")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        other => return Err(format!("invalid escape \\{other}")),
                    },
                    c => value.push(c),
                }
            }
            labels.push((key.to_owned(), value));
            match chars.next().map(|(_, c)| c) {
                Some(',') => {}
                Some('}') => {
                    let at = chars.peek().map_or(inner.len(), |&(i, _)| i);
                    rest = &inner[at..];
                    break;
                }
                other => return Err(format!("expected `,` or `}}` after a label, found {other:?}")),
            }
        }
    }
    let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let value: f64 = value.parse().map_err(|_| format!("bad value {value:?}"))?;
    Ok(Sample { name: name.to_owned(), labels, value })
}

/// Checks the whole text: every line parses, each family is typed once and
/// before its samples, its samples are together, and no series repeats.
fn parse_exposition(text: &str) -> Vec<Sample> {
    assert!(text.ends_with('\n'), "the text ends with a newline");
    let mut typed = HashSet::new();
    let mut finished = HashSet::new();
    let mut current: Option<String> = None;
    let mut series = HashSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(help) = line.strip_prefix("# HELP ") {
            assert!(help.split(' ').next().is_some_and(|name| !name.is_empty()), "{line}");
            continue;
        }
        if let Some(kind) = line.strip_prefix("# TYPE ") {
            let (name, kind) = kind.split_once(' ').unwrap_or_else(|| panic!("{line}"));
            assert!(["gauge", "counter"].contains(&kind), "{line}");
            assert!(typed.insert(name.to_owned()), "{name} typed twice");
            if let Some(done) = current.replace(name.to_owned()) {
                finished.insert(done);
            }
            continue;
        }
        let sample = parse_sample(line).unwrap_or_else(|error| panic!("{error}: {line:?}"));
        assert!(typed.contains(&sample.name), "{} has samples before its TYPE", sample.name);
        assert!(!finished.contains(&sample.name), "{}'s samples are not together", sample.name);
        let key = format!("{}{:?}", sample.name, sample.labels);
        assert!(series.insert(key.clone()), "the series {key} appears twice");
        samples.push(sample);
    }
    samples
}

const HOSTILE_NAMES: [&str; 9] = [
    "quote\"d",
    "back\\slash",
    "new\\nline",
    "trailing\\",
    "\\\"\\n",
    "ünïcødé ✓ 日本",
    "{braces},comma=equals",
    "# not a comment",
    "tab and  spaces ",
];

#[tokio::test]
async fn the_metrics_text_stays_well_formed_whatever_the_units_are_called() {
    let mut builder = Supervisor::builder();
    for name in HOSTILE_NAMES {
        builder = builder.task(idle(name));
    }
    let group = GroupSpec::new("grp\"\\n\\").task(idle("in\\ner\"")).task(idle("x\\n} 1\\nsupervisor_up 0"));
    let handle = builder.group(group).build().unwrap().start();
    let server = serve(&handle).await;
    for name in HOSTILE_NAMES {
        watch_status(DEADLINE, &handle, name, |status| status.ready).await;
    }
    watch_status(DEADLINE, &handle, "grp\"\\n\\", |status| status.ready).await;

    let answer = get(server.local_addr(), "/metrics").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some(supervisor::PROMETHEUS_CONTENT_TYPE));
    let text = answer.text();
    let samples = parse_exposition(&text);
    let names: HashSet<String> = handle.statuses().into_iter().map(|status| status.name).collect();
    assert_eq!(names.len(), HOSTILE_NAMES.len() + 3);
    let mut labelled = HashSet::new();
    for sample in &samples {
        if let Some((_, unit)) = sample.labels.iter().find(|(key, _)| key == "unit") {
            assert!(names.contains(unit), "the label {unit:?} names no unit");
            labelled.insert(unit.clone());
        }
    }
    assert_eq!(labelled, names, "every unit has its samples");
    let up: Vec<&Sample> = samples.iter().filter(|sample| sample.name == "supervisor_up").collect();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].value, 1.0);
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------
// Child processes: `NOTIFY_SOCKET` and signals are the whole process's.

/// Which supervisor `child_supervisor` runs.
const CHILD_MODE: &str = "SUPERVISOR_HOSTILE_CHILD";
/// A closed port, for the child's probes.
const CHILD_PORT: &str = "SUPERVISOR_HOSTILE_PORT";
/// A file whose existence makes the child's unit ready.
const CHILD_FLAG: &str = "SUPERVISOR_HOSTILE_FLAG";
/// What the child prints for its parent starts with this.
const SAY: &str = "CHILD:";

fn say(line: impl std::fmt::Display) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{SAY}{line}");
    let _ = out.flush();
}

/// Prints each unit's outcome and the exit code a `main` would exit with.
fn say_report(report: &supervisor::ShutdownReport) {
    for unit in &report.units {
        say(format_args!("outcome {} {:?}", unit.name, unit.outcome));
    }
    say(format_args!("took_ms {}", report.took.as_millis()));
    say(format_args!("exit_code {}", report.exit_code()));
}

/// Prints the `Started` events, so that the parent knows what runs.
fn say_started(mut events: tokio::sync::broadcast::Receiver<supervisor::Event>) {
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if matches!(event.kind, supervisor::EventKind::Started { .. }) {
                say(format_args!("started {}", event.unit));
            }
        }
    });
}

/// The supervisor under test, when a test below runs this binary with
/// `SUPERVISOR_HOSTILE_CHILD` set; does nothing otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the tests below"]
async fn child_supervisor() {
    let Ok(mode) = std::env::var(CHILD_MODE) else { return };
    match mode.as_str() {
        // Notifies whatever NOTIFY_SOCKET says, then shuts down by itself.
        "notify-then-stop" => {
            let handle = Supervisor::builder().task(idle("ticker")).build().unwrap().start();
            say(format_args!("notify {}", handle.notify_systemd()));
            handle.wait_ready("ticker").await.unwrap();
            // Gives the notifier a moment to try the socket.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let report = handle.shutdown().await;
            say_report(&report);
        }
        // Notifies, then runs until SIGTERM or SIGINT.
        "notify-until-signal" => {
            let handle = Supervisor::builder().task(idle("ticker")).build().unwrap().start();
            let shutdown = handle.shutdown_on_signal();
            say(format_args!("notify {}", handle.notify_systemd()));
            say_report(&shutdown.await);
        }
        // `run()` with a daemon that ignores its stop signal for a minute.
        "run-deaf" => {
            let supervisor = Supervisor::builder()
                .task(idle("polite"))
                .daemon(
                    DaemonSpec::new("deaf", "sh")
                        .args([
                            "-c",
                            &format!("trap 'echo {SAY}got-term' TERM; echo {SAY}armed; while :; do sleep 0.05; done"),
                        ])
                        .output(supervisor::Output::Inherit)
                        .stop_timeout(Duration::from_secs(60)),
                )
                .shutdown_timeout(Duration::from_secs(120))
                .build()
                .unwrap();
            say_started(supervisor.subscribe());
            say_report(&supervisor.run().await);
        }
        // `run()` while a unit still waits for a dependency that never gets ready.
        "run-waiting" => {
            let port = std::env::var(CHILD_PORT).unwrap();
            let supervisor = Supervisor::builder()
                .daemon(DaemonSpec::new("db", "sleep").arg("300").readiness(Readiness::Probe(
                    Probe::tcp(format!("127.0.0.1:{port}")).period(Duration::from_millis(50)),
                )))
                .task(idle("api").depends_on(["db"]))
                .build()
                .unwrap();
            say_started(supervisor.subscribe());
            say_report(&supervisor.run().await);
        }
        // Notifies, with a unit that becomes ready only once the flag file
        // exists; logs warnings to stderr.
        "notify-ready-on-flag" => {
            let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).try_init();
            let flag = PathBuf::from(std::env::var_os(CHILD_FLAG).unwrap());
            let handle = Supervisor::builder()
                .task(
                    TaskSpec::new("late", move |ctx: Context| {
                        let flag = flag.clone();
                        async move {
                            while !flag.exists() {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            ctx.ready();
                            // Time for the notifier to act on it.
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            say("said-ready");
                            ctx.cancelled().await;
                        }
                    })
                    .readiness(Readiness::Notified),
                )
                .build()
                .unwrap()
                .start();
            let shutdown = handle.shutdown_on_signal();
            say(format_args!("notify {}", handle.notify_systemd()));
            say_report(&shutdown.await);
        }
        // A `tracing` subscriber that panics on one line of a daemon's
        // output (as `fmt()` does when its pipe is closed): the panic is
        // contained, the run goes on, and the line is in the tail.
        "panicking-subscriber" => {
            use tracing_subscriber::layer::SubscriberExt as _;
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(PanicsOnALine)).unwrap();
            let spec = supervisor::DaemonSpec::new("d", "sh").args(["-c", "echo PANIC-ME; echo fine; exec sleep 1000"]);
            let handle = Supervisor::builder().daemon(spec).build().unwrap().start();
            let seen = |handle: &supervisor::SupervisorHandle| {
                handle.tail("d", 10).unwrap_or_default().iter().any(|line| line.ends_with("fine"))
            };
            let deadline = Instant::now() + DEADLINE;
            while !seen(&handle) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let status = handle.status("d").unwrap();
            let tail = handle.tail("d", 10).unwrap().join("|");
            say(format_args!("kept {:?} {} {tail}", status.state, status.restart_count));
            say_report(&handle.shutdown().await);
        }
        // A PID file and a Unix socket given by relative paths, in the
        // directory CHILD_FLAG names; the process then changes its working
        // directory, as a daemon does (`chdir("/")`), before it shuts down.
        "relative-paths" => {
            let dir = PathBuf::from(std::env::var_os(CHILD_FLAG).unwrap());
            std::env::set_current_dir(&dir).unwrap();
            let handle = Supervisor::builder().pid_file("app.pid").task(idle("ticker")).build().unwrap().start();
            let server = HttpEndpoint::new().unix_socket("control.sock").serve(&handle).await.unwrap();
            say(format_args!("placed {}", dir.join("app.pid").exists() && dir.join("control.sock").exists()));
            std::env::set_current_dir(dir.join("elsewhere")).unwrap();
            say_report(&handle.shutdown().await);
            server.stopped().await;
        }
        other => panic!("unknown child mode {other}"),
    }
}

/// A subscriber layer that panics on an event whose fields say `PANIC-ME`.
struct PanicsOnALine;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PanicsOnALine {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Finds(bool);
        impl tracing::field::Visit for Finds {
            fn record_debug(&mut self, _: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0 |= format!("{value:?}").contains("PANIC-ME");
            }
        }
        let mut finds = Finds(false);
        event.record(&mut finds);
        assert!(!finds.0, "the subscriber cannot write this line");
    }
}

/// A `tracing` subscriber of the user's that panics on a line of a
/// daemon's output (`fmt()` does, writing to a closed pipe) took the task
/// that watches the run with it: the run was taken for one dropped with
/// its runtime, and its unit rested `Stopped` for good, the report clean.
/// The panic is contained now, and the line kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_panics_on_an_output_line_disturbs_no_run() {
    let mut child = ChildProcess::spawn("panicking-subscriber", &[]);
    let kept = child.expect("kept").await;
    assert!(kept.starts_with("Running 0 "), "{kept}");
    assert!(kept.contains("PANIC-ME") && kept.contains("fine"), "{kept}");
    assert_eq!(child.expect("outcome d").await, "Graceful");
}

/// A PID file and a Unix socket given by paths relative to the working
/// directory are removed at the shutdown, where they were made, after the
/// process has changed its working directory: they were looked for
/// relative to the new one, and left behind (the PID file naming this
/// process, which made a later start refuse to replace it once an
/// unrelated process had that ID).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pid_file_and_a_socket_on_relative_paths_go_after_a_change_of_directory() {
    let dir = fresh_dir("relative-paths");
    std::fs::create_dir(dir.join("elsewhere")).unwrap();
    let child = ChildProcess::spawn("relative-paths", &[(CHILD_FLAG, dir.as_os_str())]);
    let (status, stderr, seen) = child.finish(DEADLINE).await;
    let mut left = Vec::new();
    for place in [dir.clone(), dir.join("elsewhere")] {
        let names = std::fs::read_dir(&place).unwrap().map(|entry| entry.unwrap().file_name());
        left.extend(names.filter(|name| name != "elsewhere").map(|name| place.join(name)));
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "the child failed: {status}\n{seen:?}\n{stderr}");
    assert_eq!(said(&seen, "placed").as_deref(), Some("true"), "made where the paths said: {seen:?}");
    assert_eq!(said(&seen, "exit_code").as_deref(), Some("0"), "{seen:?}");
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Runs this binary's ignored test `child` with the variable `env` set, as
/// `nobody` if `as_nobody`; `None`, said to be skipped, where the system
/// will not run it so: root without the right to change its user (a
/// container without CAP_SETUID), or a test binary that `nobody` may not
/// run.
fn run_child_test(child: &str, env: (&str, &std::path::Path), as_nobody: bool) -> Option<std::process::Output> {
    use std::os::unix::process::CommandExt;

    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", child, "--ignored", "--nocapture"]).env(env.0, env.1).stdin(Stdio::null());
    if as_nobody {
        command.uid(65534).gid(65534);
    }
    match command.output() {
        Ok(output) => Some(output),
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("skipped: cannot run the child as another user: {error}");
            None
        }
        Err(error) => panic!("cannot run the child: {error}"),
    }
}

/// What a child test that succeeded said (see [`say`]).
fn said_by(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}\n{stdout}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    stdout.lines().find_map(|line| line.split_once(SAY)).map(|(_, said)| said.to_owned()).unwrap_or_default()
}

/// Set for `child_pid_file_in_a_directory_it_may_not_write`: the PID file.
const LOCKED_PID_FILE: &str = "SUPERVISOR_HOSTILE_LOCKED_PID_FILE";

/// The other side of the test below, run as a child process (by a user who
/// may not write in the PID file's directory); does nothing otherwise.
#[test]
#[ignore = "run as a child process by the test below"]
fn child_pid_file_in_a_directory_it_may_not_write() {
    let Some(path) = std::env::var_os(LOCKED_PID_FILE) else { return };
    match supervisor::PidFile::create(&path) {
        Ok(pid_file) => say(format_args!("created {pid_file:?}")),
        Err(error) => say(format_args!("refused {} {error}", matches!(error, Error::Io { .. }))),
    }
}

/// A PID file that may be written, made for the service in a directory it
/// may not write in (an init script's `install -o app /dev/null
/// /var/run/app.pid`), is refused naming the directory, where the file is
/// made before it takes its place: the error said the file itself could
/// not be written ("cannot write it: Permission denied"), which the user
/// finds it can.
///
/// Run in a child process, as `nobody` when the tests run as root (who may
/// write anywhere).
#[test]
fn a_pid_file_in_a_directory_that_may_not_be_written_in_is_refused_naming_the_directory() {
    use std::os::unix::fs::PermissionsExt;

    let dir = fresh_dir("locked-pid-dir");
    let path = dir.join("app.pid");
    let dead = {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        child.id()
    };
    std::fs::write(&path, format!("{dead}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let root = rustix::process::geteuid().is_root();
    // Root keeps the directory, which `nobody` may enter but not write in.
    let mode = if root { 0o755 } else { 0o555 };
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
    let output = run_child_test("child_pid_file_in_a_directory_it_may_not_write", (LOCKED_PID_FILE, &path), root);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let kept = std::fs::read_to_string(&path);
    let _ = std::fs::remove_dir_all(&dir);
    let Some(output) = output else { return };
    let said = said_by(&output);
    let refused = said.strip_prefix("refused true ").unwrap_or_else(|| panic!("not refused with Error::Io: {said}"));
    assert!(refused.contains(&format!("cannot create a file in {},", dir.display())), "{refused}");
    assert!(refused.contains("Permission denied"), "{refused}");
    assert_eq!(kept.unwrap(), format!("{dead}\n"), "the file is left as it was");
}

/// Set for `child_serves_on_a_stale_socket_of_another_user`: the socket path.
const OTHERS_SOCKET: &str = "SUPERVISOR_HOSTILE_OTHERS_SOCKET";

/// The other side of the test below, run as a child process (as `nobody`);
/// does nothing otherwise.
#[tokio::test]
#[ignore = "run as a child process by the test below"]
async fn child_serves_on_a_stale_socket_of_another_user() {
    let Some(path) = std::env::var_os(OTHERS_SOCKET) else { return };
    let handle = Supervisor::builder().build().unwrap().start();
    match HttpEndpoint::new().unix_socket(&path).serve(&handle).await {
        Ok(server) => {
            say("served");
            server.shutdown().await;
        }
        Err(error) => say(format_args!("refused {error}")),
    }
    handle.shutdown().await;
}

/// A stale socket (nobody listens) that the supervisor's user may not
/// remove, another user's in a sticky directory such as `/tmp`, is said
/// to be so: the endpoint said that another endpoint had taken the path
/// meanwhile, and to stop it, of an endpoint that does not exist.
///
/// Run as root only, which alone makes another user's socket; the child
/// runs as `nobody`.
#[test]
fn a_stale_socket_that_may_not_be_removed_is_said_to_be_so() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: only root makes a socket of another user");
        return;
    }
    let dir = fresh_dir("others-socket");
    // World-writable and sticky, as `/tmp`.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let path = dir.join("control.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    // Anyone may connect (and is refused: it is stale).
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
    let output = run_child_test("child_serves_on_a_stale_socket_of_another_user", (OTHERS_SOCKET, &path), true);
    let kept = std::fs::symlink_metadata(&path).is_ok_and(|file| file.file_type().is_socket());
    let _ = std::fs::remove_dir_all(&dir);
    let Some(output) = output else { return };
    let said = said_by(&output);
    let refused = said.strip_prefix("refused ").unwrap_or_else(|| panic!("not refused: {said}"));
    assert!(refused.contains("cannot remove the stale socket there"), "{refused}");
    assert!(!refused.contains("another endpoint"), "blames an endpoint that does not exist: {refused}");
    assert!(kept, "the stale socket is left as it was");
}

/// A running `child_supervisor`, its lines for the parent and its stderr.
struct ChildProcess {
    child: tokio::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    stderr_lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    stderr: tokio::task::JoinHandle<String>,
    seen: Vec<String>,
}

impl ChildProcess {
    fn spawn(mode: &str, env: &[(&str, &std::ffi::OsStr)]) -> ChildProcess {
        let mut command = tokio::process::Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", "child_supervisor", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_MODE, mode)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut stdout = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = stdout.next_line().await {
                // The test harness may have printed on the same line first.
                if let Some(at) = line.find(SAY)
                    && sender.send(line[at + SAY.len()..].to_owned()).is_err()
                {
                    break;
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        let (sender, stderr_lines) = tokio::sync::mpsc::unbounded_channel();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let mut stderr = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = stderr.next_line().await {
                text.push_str(&line);
                text.push('\n');
                let _ = sender.send(line);
            }
            text
        });
        ChildProcess { child, lines, stderr_lines, stderr, seen: Vec::new() }
    }

    fn pid(&self) -> rustix::process::Pid {
        rustix::process::Pid::from_raw(i32::try_from(self.child.id().unwrap()).unwrap()).unwrap()
    }

    fn signal(&self, signal: rustix::process::Signal) {
        rustix::process::kill_process(self.pid(), signal).unwrap();
    }

    /// Waits for a line that starts with `prefix`, and returns the rest.
    async fn expect(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let line = match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => line,
                Ok(None) | Err(_) => panic!("the child never said `{prefix}`; it said {:?}", self.seen),
            };
            self.seen.push(line.clone());
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        }
    }

    /// Waits for a line of its stderr that contains `text`.
    async fn expect_stderr(&mut self, text: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.stderr_lines.recv()).await {
                Ok(Some(line)) if line.contains(text) => return,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => panic!("the child never wrote {text:?} to stderr; it said {:?}", self.seen),
            }
        }
    }

    /// Waits for the child to exit, within `within`; its status and stderr.
    async fn finish(mut self, within: Duration) -> (std::process::ExitStatus, String, Vec<String>) {
        let status = match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!("the child did not exit within {within:?}; it said {:?}", self.seen),
        };
        while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(5), self.lines.recv()).await {
            self.seen.push(line);
        }
        let stderr = self.stderr.await.unwrap();
        (status, stderr, self.seen)
    }
}

fn said(seen: &[String], prefix: &str) -> Option<String> {
    seen.iter().find_map(|line| line.strip_prefix(prefix)).map(|rest| rest.trim().to_owned())
}

fn fresh_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hostile-service-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notify_socket_that_leads_nowhere_costs_nothing() {
    let dir = fresh_dir("garbage-notify");
    let file = dir.join("regular-file");
    std::fs::write(&file, b"not a socket").unwrap();
    let stream_socket = dir.join("stream.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&stream_socket).unwrap();
    let long = dir.join("x".repeat(200));
    let targets: Vec<(&str, std::ffi::OsString)> = vec![
        ("empty", "".into()),
        ("relative garbage", "no such socket, really".into()),
        ("missing directory", "/nonexistent/dir/notify.sock".into()),
        ("regular file", file.clone().into()),
        ("stream socket", stream_socket.clone().into()),
        ("directory", dir.clone().into()),
        ("too long for a socket", long.into()),
    ];
    for (what, target) in targets {
        let child = ChildProcess::spawn("notify-then-stop", &[("NOTIFY_SOCKET", &target)]);
        let (status, stderr, seen) = child.finish(DEADLINE).await;
        assert!(status.success(), "{what}: the child failed: {status}\n{seen:?}\n{stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        assert_eq!(said(&seen, "notify").as_deref(), Some("true"), "{what}: {seen:?}");
        assert_eq!(said(&seen, "exit_code").as_deref(), Some("0"), "{what}: {seen:?}");
        let took: u64 = said(&seen, "took_ms").unwrap().parse().unwrap();
        assert!(took < 5_000, "{what}: the shutdown took {took} ms");
    }
    // The file that was named as a socket is untouched.
    assert_eq!(std::fs::read(&file).unwrap(), b"not a socket");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Receives datagrams until one has the line `wanted`, for at most `within`.
async fn receive_line(socket: &tokio::net::UnixDatagram, wanted: &str, within: Duration) -> Result<(), Vec<String>> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    let mut buffer = vec![0; 4096];
    loop {
        match tokio::time::timeout_at(deadline, socket.recv(&mut buffer)).await {
            Ok(Ok(received)) => {
                let message = String::from_utf8_lossy(&buffer[..received]).into_owned();
                let found = message.lines().any(|line| line == wanted);
                seen.push(message);
                if found {
                    return Ok(());
                }
            }
            Ok(Err(error)) => panic!("reading the notify socket: {error}"),
            Err(_) => return Err(seen),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_is_not_lost_when_systemd_falls_behind_reading_for_a_moment() {
    // As above, with the shutdown beginning while the queues are full:
    // once systemd reads again, STOPPING=1 must reach it before the process
    // exits, or systemd takes the exit for a crash of a running service.
    let dir = fresh_dir("lost-stopping");
    let path = dir.join("notify.sock");
    let flag = dir.join("ready-now");
    let socket = tokio::net::UnixDatagram::bind(&path).unwrap();
    // Ready at once: the unit then waits for its stop and ends with it.
    std::fs::write(&flag, b"").unwrap();
    let mut child = ChildProcess::spawn(
        "notify-ready-on-flag",
        &[
            ("NOTIFY_SOCKET", path.as_os_str()),
            ("WATCHDOG_USEC", std::ffi::OsStr::new("2000")),
            (CHILD_FLAG, flag.as_os_str()),
        ],
    );
    assert_eq!(child.expect("notify").await, "true");
    child.expect("said-ready").await;
    child.expect_stderr("systemd is not reading notifications").await;
    child.signal(rustix::process::Signal::TERM);
    child.expect_stderr("shutdown signal received").await;
    // systemd reads again, as the shutdown is under way.
    let received = receive_line(&socket, "STOPPING=1", Duration::from_secs(5)).await;
    let (status, stderr, seen) = child.finish(DEADLINE).await;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "{status}\n{seen:?}\n{stderr}");
    if let Err(messages) = received {
        let kinds: HashSet<&str> = messages.iter().flat_map(|message| message.lines()).collect();
        panic!("STOPPING=1 never came; {} messages came, of kinds {kinds:?}", messages.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_reaches_systemd_over_an_abstract_notify_socket_too() {
    use std::os::linux::net::SocketAddrExt;

    // The same supervisor, told to notify a socket in the file system, then
    // one in the abstract namespace: sd_notify(3) says a NOTIFY_SOCKET that
    // starts with `@` names an abstract socket, and systemd hands out both.
    let dir = fresh_dir("abstract-notify");
    let path = dir.join("notify.sock");
    let name = format!("supervisor-hostile-notify-{}", std::process::id());
    let abstract_addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let abstract_socket = std::os::unix::net::UnixDatagram::bind_addr(&abstract_addr).unwrap();
    abstract_socket.set_nonblocking(true).unwrap();
    let abstract_socket = tokio::net::UnixDatagram::from_std(abstract_socket).unwrap();
    let path_socket = tokio::net::UnixDatagram::bind(&path).unwrap();

    let targets: [(&str, std::ffi::OsString, &tokio::net::UnixDatagram); 2] = [
        ("a path", path.clone().into(), &path_socket),
        ("an abstract name", format!("@{name}").into(), &abstract_socket),
    ];
    let mut missed = Vec::new();
    for (what, target, socket) in targets {
        let mut child = ChildProcess::spawn("notify-until-signal", &[("NOTIFY_SOCKET", &target)]);
        assert_eq!(child.expect("notify").await, "true");
        // A unit that runs at once: READY=1 within milliseconds, when it arrives.
        let received = receive_line(socket, "READY=1", Duration::from_secs(5)).await;
        child.signal(rustix::process::Signal::TERM);
        let (status, stderr, seen) = child.finish(DEADLINE).await;
        assert!(status.success(), "{what}: {status}\n{seen:?}\n{stderr}");
        if let Err(seen) = received {
            missed.push(format!("{what} ({target:?}): no READY=1 within 5 s; received {seen:?}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(missed.is_empty(), "{missed:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_stops_gracefully_on_sigterm_and_a_second_one_kills_what_is_left() {
    let mut child = ChildProcess::spawn("run-deaf", &[]);
    let mut started = [child.expect("started").await, child.expect("started").await];
    started.sort();
    assert_eq!(started, ["deaf", "polite"]);
    // The daemon's trap is set before the shutdown's SIGTERM can reach it.
    if said(&child.seen, "armed").is_none() {
        child.expect("armed").await;
    }
    child.signal(rustix::process::Signal::TERM);
    // The daemon got its stop signal and ignores it: the shutdown now waits
    // up to its 60 s grace period.
    child.expect("got-term").await;
    let second = Instant::now();
    child.signal(rustix::process::Signal::TERM);
    let (status, stderr, seen) = child.finish(DEADLINE).await;
    assert!(second.elapsed() < Duration::from_secs(15), "the second SIGTERM did not cut the grace period short");
    assert!(status.success(), "{status}\n{seen:?}\n{stderr}");
    assert_eq!(said(&seen, "outcome deaf").as_deref(), Some("Forced"), "{seen:?}");
    // `polite` had not been asked yet: the second signal skips its grace too.
    assert!(said(&seen, "outcome polite").is_some(), "{seen:?}");
    assert_eq!(said(&seen, "exit_code").as_deref(), Some("1"), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_stops_cleanly_on_sigint_while_a_unit_still_waits_for_its_dependency() {
    let port = closed_port().to_string();
    let mut child = ChildProcess::spawn("run-waiting", &[(CHILD_PORT, std::ffi::OsStr::new(&port))]);
    assert_eq!(child.expect("started").await, "db");
    child.signal(rustix::process::Signal::INT);
    let (status, stderr, seen) = child.finish(DEADLINE).await;
    assert!(status.success(), "{status}\n{seen:?}\n{stderr}");
    assert!(!seen.iter().any(|line| line == "started api"), "api started on a dependency never ready: {seen:?}");
    assert_eq!(said(&seen, "outcome db").as_deref(), Some("Graceful"), "{seen:?}");
    // It never ran: reported as stopped at once (`Graceful`, took 0) or as
    // not running, never as forced.
    let api = said(&seen, "outcome api");
    assert!(matches!(api.as_deref(), Some("Graceful" | "NotRunning")), "{seen:?}");
    assert_eq!(said(&seen, "exit_code").as_deref(), Some("0"), "{seen:?}");
    let took: u64 = said(&seen, "took_ms").unwrap().parse().unwrap();
    assert!(took < 5_000, "the shutdown took {took} ms");
}

// ---------------------------------------------------------------------------
// Readiness while a unit is being stopped for failing its liveness probe or
// its watchdog

/// Polls `handle.tail(name)` until a line contains `text` (output has no
/// event to wait on).
async fn wait_for_output(handle: &SupervisorHandle, name: &str, text: &str) {
    let deadline = Instant::now() + DEADLINE;
    while !handle.tail(name, 100).unwrap().iter().any(|line| line.contains(text)) {
        assert!(Instant::now() < deadline, "`{name}` never printed {text:?}: {:?}", handle.tail(name, 100));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What readiness says about a unit that the supervisor is stopping: the
/// unit's own `ready`, `/readyz`, and whether a unit added now, depending on
/// it, starts on it at once.
async fn readiness_while_stopping(handle: &SupervisorHandle, addr: SocketAddr, name: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    let status = handle.status(name).unwrap();
    if status.ready {
        wrong.push(format!("`{name}` says it is ready while it is being stopped: {status:?}"));
    }
    let readyz = get(addr, "/readyz").await;
    if readyz.status != 503 {
        wrong.push(format!("/readyz answered {} while `{name}` is being stopped: {}", readyz.status, readyz.text()));
    }
    handle.add(idle("dependent").depends_on([name])).await.unwrap();
    let dependent = handle.status("dependent").unwrap();
    if dependent.state != UnitState::Waiting {
        wrong.push(format!("a unit that depends on `{name}` started on it while it is being stopped: {dependent:?}"));
    }
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_being_killed_for_failing_its_liveness_probe_is_not_ready() {
    // The daemon says when it gets its stop signal, and takes its time (its
    // 5 s grace period) to go.
    let handle = Supervisor::builder()
        .daemon(
            DaemonSpec::new("sick", "sh")
                .args(["-c", "trap 'echo got-term' TERM; echo up; while :; do sleep 0.05; done"])
                .stop_timeout(Duration::from_secs(5))
                .liveness(
                    Probe::tcp(format!("127.0.0.1:{}", closed_port()))
                        .period(Duration::from_millis(100))
                        .failure_threshold(1),
                ),
        )
        .build()
        .unwrap()
        .start();
    let server = serve(&handle).await;
    wait_for_output(&handle, "sick", "got-term").await;
    // Now within its 5 s grace period, being stopped as unhealthy.
    let wrong = readiness_while_stopping(&handle, server.local_addr(), "sick").await;
    handle.shutdown().await;
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_being_stopped_as_hung_by_its_watchdog_is_not_ready() {
    let stop_asked = std::sync::Arc::new(tokio::sync::Notify::new());
    let told = stop_asked.clone();
    let handle = Supervisor::builder()
        .task(
            TaskSpec::new("hung", move |ctx: Context| {
                let told = told.clone();
                async move {
                    ctx.ready();
                    let token = ctx.cancellation_token();
                    tokio::spawn(async move {
                        token.cancelled().await;
                        told.notify_one();
                    });
                    // No heartbeat, and it takes its time to stop.
                    std::future::pending::<()>().await;
                }
            })
            .readiness(Readiness::Notified)
            .watchdog(Duration::from_millis(300))
            .stop_timeout(Duration::from_secs(5)),
        )
        .build()
        .unwrap()
        .start();
    let server = serve(&handle).await;
    watch_status(DEADLINE, &handle, "hung", |status| status.ready).await;
    tokio::time::timeout(DEADLINE, stop_asked.notified()).await.expect("the watchdog stops the task");
    // Now within its 5 s grace period, being stopped as hung.
    let wrong = readiness_while_stopping(&handle, server.local_addr(), "hung").await;
    handle.shutdown().await;
    assert!(wrong.is_empty(), "{wrong:#?}");
}

// ---------------------------------------------------------------------------
// Probes answer during a shutdown

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_at_once_while_a_slow_shutdown_is_in_progress() {
    let handle = Supervisor::builder()
        .task(idle("polite"))
        .task(
            TaskSpec::new("stubborn", |_ctx: Context| std::future::pending::<()>())
                .stop_timeout(Duration::from_millis(1500)),
        )
        .daemon(
            DaemonSpec::new("deaf", "sh")
                .args(["-c", "trap '' TERM; echo armed; exec sleep 300"])
                .stop_timeout(Duration::from_millis(1500)),
        )
        .build()
        .unwrap()
        .start();
    let server = serve(&handle).await;
    let addr = server.local_addr();
    // Its trap is set before the shutdown's SIGTERM can reach it.
    wait_for_output(&handle, "deaf", "armed").await;
    watch_status(DEADLINE, &handle, "stubborn", |status| status.ready).await;
    assert_eq!(get(addr, "/readyz").await.status, 200);

    let shutdown = tokio::spawn({
        let handle = handle.clone();
        async move { handle.shutdown().await }
    });
    while !handle.is_shutting_down() {
        tokio::task::yield_now().await;
    }
    // The stops take 3 s: ask every route, again and again, meanwhile.
    let mut rounds = 0;
    'asking: while !shutdown.is_finished() {
        for (path, expected) in
            [("/readyz", 503), ("/livez", 200), ("/healthz", 200), ("/status", 200), ("/metrics", 200)]
        {
            let asked = Instant::now();
            let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
            let mut answers = parse_answers(&exchange_if_open(addr, request.as_bytes()).await, &[]);
            // The endpoint ends with the supervisor, which may be just before
            // the shutdown's task is seen finished: a connection then is
            // refused or reset, or a request in flight gets no answer, and
            // that only then.
            if answers.is_empty() {
                tokio::time::timeout(DEADLINE, handle.wait()).await.expect("no answer, yet the supervisor runs");
            }
            if shutdown.is_finished() || answers.is_empty() {
                break 'asking;
            }
            assert_eq!(answers.len(), 1, "{path} during the shutdown: {answers:?}");
            let answer = answers.remove(0);
            assert_eq!(answer.status, expected, "{path} during the shutdown: {}", answer.text());
            assert!(asked.elapsed() < Duration::from_secs(1), "{path} took {:?}", asked.elapsed());
            if path == "/readyz" {
                assert!(answer.text().contains("the supervisor is shutting down"), "{}", answer.text());
            }
            if path == "/metrics" {
                assert!(answer.text().contains("\nsupervisor_ready 0\n"), "{}", answer.text());
            }
        }
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rounds >= 3, "asked only {rounds} times during the shutdown");
    let report = shutdown.await.unwrap();
    assert_eq!(report.forced().count(), 2, "{report}");
    // The endpoint ends with the supervisor.
    tokio::time::timeout(DEADLINE, server.stopped()).await.expect("the endpoint stops");
    assert!(TcpStream::connect(addr).await.is_err());
}

// ---------------------------------------------------------------------------
// The Unix socket of the endpoint

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_but_busy_unix_socket_is_not_taken_over() {
    let dir = fresh_dir("busy-socket");
    let path = dir.join("control.sock");
    // Another process's endpoint: alive, but its backlog is full (it is slow
    // to accept), so a new connection is refused with EAGAIN at once.
    let socket = tokio::net::UnixSocket::new_stream().unwrap();
    socket.bind(&path).unwrap();
    let listener = socket.listen(1).unwrap();
    let mut queued = Vec::new();
    loop {
        match tokio::net::UnixStream::connect(&path).await {
            Ok(stream) => queued.push(stream),
            Err(error) => {
                assert_eq!(error.kind(), std::io::ErrorKind::WouldBlock, "{error}");
                break;
            }
        }
        assert!(queued.len() < 64, "the backlog never filled");
    }
    let theirs = std::fs::symlink_metadata(&path).unwrap();

    let handle = Supervisor::builder().build().unwrap().start();
    let served = HttpEndpoint::new().unix_socket(&path).serve(&handle).await;
    let now = std::fs::symlink_metadata(&path).unwrap();
    let taken_over = std::os::unix::fs::MetadataExt::ino(&now) != std::os::unix::fs::MetadataExt::ino(&theirs);
    // The live endpoint accepts what waited, as it would once less busy.
    let (accepted, _) = listener.accept().await.unwrap();
    drop(accepted);
    if let Ok(server) = served {
        server.shutdown().await;
    } else {
        let error = served.unwrap_err();
        assert!(matches!(error, Error::Io { .. }), "{error:?}");
    }
    handle.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !taken_over,
        "serve() replaced the socket of a live endpoint that was only busy: its clients now reach another process"
    );
}

#[tokio::test]
async fn what_is_not_a_socket_at_the_path_is_left_alone_and_bad_paths_are_errors() {
    let dir = fresh_dir("socket-paths");
    let handle = Supervisor::builder().build().unwrap().start();
    let file = dir.join("precious.txt");
    std::fs::write(&file, b"keep me").unwrap();
    let long = dir.join("s".repeat(120));
    let directory = dir.join("a-directory");
    std::fs::create_dir(&directory).unwrap();
    for path in [file.clone(), long, directory.clone(), dir.join("missing").join("x.sock"), PathBuf::from("/")] {
        let served = tokio::time::timeout(DEADLINE, HttpEndpoint::new().unix_socket(&path).serve(&handle))
            .await
            .expect("serve() answers in time");
        match served {
            Err(Error::Io { .. }) => {}
            other => panic!("{}: {other:?}", path.display()),
        }
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    assert!(directory.is_dir());
    // No private directory is left behind by the attempts.
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    assert_eq!(left.len(), 2, "{left:?}");
    handle.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------
// The macros at run time

#[supervised(name = "custom name", max = 0)]
async fn renamed(ctx: Context) {
    ctx.ready();
    ctx.cancelled().await;
}

#[supervised(max = 0)]
async fn r#loop(ctx: Context) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    ctx.cancelled().await;
    Err("told to stop, and said no".into())
}

async fn wait_cancel(ctx: Context) {
    ctx.cancelled().await;
}

supervise! {
    /// Names a careless manifest may well use.
    pub struct Hostile;
    group r#type {} {
        task renamed { ready = notified };
        task after = wait_cancel { depends_on = [renamed] };
        group "nested group" {} {
            task r#loop;
            daemon "self" = "sleep 300";
        }
    }
    task "ünï-cødé.1" = wait_cancel { depends_on = [r#type] };
    daemon r#match = ["sh", "-c", "printf '%s|' \"$@\"; echo; exec sleep 300", "sh", "it's", "a \"quoted\"", "back\\slash", ""];
    daemon split = "sh -c 'printf \"%s|\" \"$@\"; echo; exec sleep 300' sh 'single \"double\"' \"double 'single'\" back\\ slash ''";
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_manifest_of_keywords_unicode_and_renamed_fns_names_its_units_as_the_runtime_does() {
    let services = Hostile::start();
    let handle = services.handle().clone();
    assert_eq!(
        handle.unit_names(),
        [
            "type",
            "type/custom name",
            "type/after",
            "type/nested group",
            "type/nested group/loop",
            "type/nested group/self",
            "ünï-cødé.1",
            "match",
            "split"
        ]
    );
    let fields = [
        &*services.r#type,
        &services.r#type.renamed,
        &services.r#type.after,
        &*services.r#type.nested_group,
        &services.r#type.nested_group.r#loop,
        &services.r#type.nested_group.self_,
        &services.ünï_cødé_1,
        &services.r#match,
        &services.split,
    ];
    let paths: Vec<&str> = fields.iter().map(|unit| unit.path()).collect();
    assert_eq!(paths, handle.unit_names());
    for unit in fields {
        tokio::time::timeout(DEADLINE, unit.wait_ready()).await.expect("in time").unwrap();
    }
    // The argument lists reach the programs exactly as written.
    wait_for_output(&handle, "match", "|").await;
    assert_eq!(services.r#match.tail(1).unwrap(), ["it's|a \"quoted\"|back\\slash||"]);
    wait_for_output(&handle, "split", "|").await;
    assert_eq!(services.split.tail(1).unwrap(), ["single \"double\"|double 'single'|back slash||"]);
    // A control call through a field, on a unit whose name is no identifier.
    services.ünï_cødé_1.restart().await.unwrap();
    let report = handle.shutdown().await;
    // `loop` answers its stop with an error: a stop asked for is still a
    // clean stop.
    let looped = report.units.iter().find(|unit| unit.name == "type/nested group/loop").unwrap();
    assert_eq!(looped.outcome, supervisor::StopOutcome::Graceful, "{report}");
    assert_eq!(report.units.len(), 9, "{report}");
    assert!(report.is_clean(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_not_lost_when_systemd_falls_behind_reading_for_a_moment() {
    // systemd is busy and does not read its socket for a while; the
    // watchdog pings (every millisecond here) fill the socket's queue and
    // the notifier's. Meanwhile the unit becomes ready. Once systemd reads
    // again, READY=1 must reach it: without it `systemctl start` waits until
    // its timeout, then fails the service.
    let dir = fresh_dir("lost-ready");
    let path = dir.join("notify.sock");
    let flag = dir.join("ready-now");
    let socket = tokio::net::UnixDatagram::bind(&path).unwrap();
    let mut child = ChildProcess::spawn(
        "notify-ready-on-flag",
        &[
            ("NOTIFY_SOCKET", path.as_os_str()),
            ("WATCHDOG_USEC", std::ffi::OsStr::new("2000")),
            (CHILD_FLAG, flag.as_os_str()),
        ],
    );
    assert_eq!(child.expect("notify").await, "true");
    child.expect_stderr("systemd is not reading notifications").await;
    std::fs::write(&flag, b"").unwrap();
    child.expect("said-ready").await;
    // systemd reads again.
    let received = receive_line(&socket, "READY=1", Duration::from_secs(5)).await;
    child.signal(rustix::process::Signal::TERM);
    let (status, stderr, seen) = child.finish(DEADLINE).await;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "{status}\n{seen:?}\n{stderr}");
    if let Err(messages) = received {
        let kinds: HashSet<&str> = messages.iter().flat_map(|message| message.lines()).collect();
        panic!("READY=1 never came once systemd read again; {} messages came, of kinds {kinds:?}", messages.len());
    }
}

/// A client that shuts its writing side once its request is sent (`printf
/// ... | nc -N`, a container's health check script) still gets the answer
/// when the answer takes a while: here, a health check held until the
/// test lets it go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_half_closes_after_its_request_gets_the_answer() {
    let (entered_tx, mut entered) = tokio::sync::watch::channel(0u32);
    let (release_tx, release) = tokio::sync::watch::channel(false);
    let handle = Supervisor::builder()
        .task(idle("worker"))
        .health_check_timeout(Duration::from_secs(60))
        .health_check("slow", move || {
            let (mut release, entered_tx) = (release.clone(), entered_tx.clone());
            async move {
                entered_tx.send_modify(|count| *count += 1);
                let _ = release.wait_for(|go| *go).await;
                Ok::<(), String>(())
            }
        })
        .build()
        .unwrap()
        .start();
    watch_status(DEADLINE, &handle, "worker", |status| status.ready).await;
    let server = serve(&handle).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    stream.shutdown().await.unwrap();
    let mut bytes = Vec::new();
    tokio::select! {
        read = stream.read_to_end(&mut bytes) => {
            panic!("the connection ended ({read:?}) before the check ran, with {:?}", String::from_utf8_lossy(&bytes))
        }
        entered = tokio::time::timeout(DEADLINE, entered.wait_for(|count| *count >= 1)) => {
            entered.expect("the check runs").unwrap();
        }
    }
    release_tx.send_replace(true);
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut bytes)).await.expect("the answer").unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    drop(server);
    let _ = handle.shutdown().await;
}

/// Two endpoints started at once on one Unix socket path, `rounds` times:
/// in how many rounds both said they listen there. With `stale`, a socket
/// nobody listens on is at the path first.
fn endpoints_racing_for_one_socket_path(stale: bool, rounds: usize) -> usize {
    let main = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let handle = main.block_on(async { Supervisor::builder().build().unwrap().start() });
    let dir = tempfile::tempdir().unwrap();
    let mut both = 0;
    for round in 0..rounds {
        let path = dir.path().join(format!("c{round}.sock"));
        if stale {
            drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        }
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (handle, barrier, path) = (handle.clone(), barrier.clone(), path.clone());
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    barrier.wait();
                    let served = runtime.block_on(HttpEndpoint::new().unix_socket(&path).serve(&handle));
                    (runtime, served)
                })
            })
            .collect();
        let servers: Vec<_> = racers
            .into_iter()
            .filter_map(|racer| match racer.join().unwrap() {
                (runtime, Ok(server)) => Some((runtime, server)),
                (_, Err(error)) => {
                    let text = error.to_string();
                    assert!(text.contains("another"), "round {round}: the loser is told why: {text}");
                    None
                }
            })
            .collect();
        assert!(!servers.is_empty(), "round {round}: neither endpoint listens");
        both += usize::from(servers.len() == 2);
        for (runtime, server) in servers {
            runtime.block_on(server.shutdown());
        }
    }
    main.block_on(handle.shutdown());
    both
}

/// One of two endpoints started at once on a free path, or on a stale
/// socket's, listens there, and the other is told that another took it:
/// both said they listened (in up to 218 of 300 rounds), and the first was
/// unreachable, its socket replaced by the second's. On a stale socket's
/// path, under load, the second could still remove the first's socket,
/// placed between its look at the path and its removal of the stale one
/// (in 2 of 150 runs of this test on a busy 2-core machine).
#[test]
fn one_of_two_endpoints_racing_for_a_socket_path_gets_it() {
    assert_eq!(endpoints_racing_for_one_socket_path(false, 200), 0, "free path");
    assert_eq!(endpoints_racing_for_one_socket_path(true, 200), 0, "stale socket");
}
