//! When a unit counts as ready ([`Readiness`]) and how its health is asked
//! from outside ([`Probe`]): the user's description and its checks. Running
//! probes is `run::probe`.

// Until the engine starts probes for the units that have them, only the
// tests call into this module.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::spec::guarded::Guarded;
use crate::{Error, RestartPolicy};

/// The period of a probe unless [`Probe::period`] sets another: 10 s, as
/// Kubernetes' `periodSeconds`.
const DEFAULT_PERIOD: Duration = Duration::from_secs(10);
/// Kubernetes' `timeoutSeconds`: 1 s.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Kubernetes' `failureThreshold`.
const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
/// Kubernetes' `successThreshold`.
const DEFAULT_SUCCESS_THRESHOLD: u32 = 1;

/// When a unit counts as ready: what its dependents, `/readyz` and
/// `wait_ready` wait for.
///
/// | variant | ready when | Kubernetes | systemd |
/// | --- | --- | --- | --- |
/// | [`Started`](Self::Started) (the default) | its run has started | a container without a readiness probe | `Type=simple` / `Type=exec` |
/// | [`Notified`](Self::Notified) | the unit says so: a task calls `ctx.ready()`, a process sends `READY=1` to `$NOTIFY_SOCKET` | — | `Type=notify` |
/// | [`Probe`](Self::Probe) | its probe passes `success_threshold` times in a row | `readinessProbe` | `ExecStartPost=` polling a port |
/// | [`OutputLine`](Self::OutputLine) | a line of the process's output contains the text | — | — |
///
/// A unit that is not running is never ready; readiness is found anew on
/// each run.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use supervisor::{Probe, Readiness};
///
/// assert!(matches!(Readiness::default(), Readiness::Started));
/// let choices = [
///     Readiness::Notified,
///     Readiness::Completed,
///     Readiness::Probe(Probe::tcp("127.0.0.1:5432").period(Duration::from_secs(2))),
///     Readiness::OutputLine("listening on".to_owned()),
/// ];
/// assert!(format!("{:?}", choices[2]).contains("127.0.0.1:5432"));
/// ```
///
/// # Caveats
///
/// - A probe only says what it observes from outside: a port that accepts
///   connections may belong to a process that is not yet serving.
/// - `OutputLine` needs the process's output captured (the default
///   `Output::Capture`); it matches each line as text, whole lines only,
///   so its text may not hold a line break (`build()` refuses one). What
///   the process wrote before it exited is read as its exit is heard, and
///   a ready line there counts: a one-shot job that prints the line, then
///   exits at once, was ready in its run (as is one that sends `READY=1`
///   so). A line printed once it has exited (by a process that left its
///   group) makes nothing ready.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Readiness {
    /// Ready as soon as the run has started (a process has been spawned, a
    /// task's future created).
    #[default]
    Started,
    /// Ready once the unit says so: a task calls `ctx.ready()`; a process
    /// sends `READY=1` to the socket named by `$NOTIFY_SOCKET`, as under
    /// systemd's `Type=notify` (`systemd-notify --ready` and every sd_notify
    /// library work as they are).
    Notified,
    /// Ready once the probe has passed `success_threshold` times in a row;
    /// not ready again after `failure_threshold` failures in a row, as a
    /// Kubernetes readiness probe.
    Probe(Probe),
    /// Ready once a line of the process's output (stdout or stderr)
    /// contains this text; the line is in the unit's tail by then.
    OutputLine(String),
    /// Done, rather than ready: a one-shot job (a migration, a cache
    /// warm-up) that its dependents wait to see finish. Not ready while it
    /// runs; once a run ends well and its policy lets it rest (`Exited`,
    /// with no error), its dependents start and `wait_ready` returns.
    /// A run that fails does not count, whatever follows. Like systemd's
    /// `Type=oneshot`, and compose's `service_completed_successfully`.
    ///
    /// Its policy must let a run that succeeds rest
    /// (`RestartOn::Failure` or `RestartOn::Never`): `build()` refuses
    /// one that restarts it, which would never be done.
    Completed,
}

/// How a unit's runs are watched: when a run counts as ready, whether it is
/// still alive, and how often it must give a sign of life. Kept boxed and
/// only when set: most units use none of it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Watching {
    pub(crate) readiness: Readiness,
    pub(crate) liveness: Option<Probe>,
    pub(crate) watchdog: Option<Duration>,
}

impl Watching {
    /// Checks the settings of `unit`, whose restart policy is `policy`;
    /// `task`: whether it is a task (which has no output to watch).
    pub(crate) fn validate(&self, unit: &str, task: bool, policy: &RestartPolicy, problems: &mut Vec<Error>) {
        let invalid =
            |setting, reason: &str| Error::InvalidSetting { unit: unit.to_owned(), setting, reason: reason.to_owned() };
        match &self.readiness {
            Readiness::Probe(probe) => problems.extend(probe.validate(unit, "readiness").err()),
            Readiness::OutputLine(_) if task => problems.push(invalid(
                "readiness",
                "a task has no output to watch; use Readiness::Notified and call ctx.ready()",
            )),
            Readiness::OutputLine(text) if text.is_empty() => {
                problems.push(invalid(
                    "readiness",
                    "the output text is empty: every line would match; give the text to wait for",
                ));
            }
            // Lines are read without their line break (`\r` ends a piece of a
            // progress line): such a text is never found.
            Readiness::OutputLine(text) if text.contains(['\n', '\r']) => problems.push(invalid(
                "readiness",
                &format!("the output text {text:?} holds a line break, and lines are matched one at a time; give text from one line"),
            )),
            Readiness::Completed if policy.restart_on().restarts_after(true) => problems.push(invalid(
                "readiness",
                &format!(
                    "Readiness::Completed waits for a run to end well and rest, and the policy restarts it (RestartOn::{:?}); \
                     let a run that succeeds rest: .restart(RestartPolicy::new().on(RestartOn::Failure))",
                    policy.restart_on()
                ),
            )),
            _ => {}
        }
        if let Some(probe) = &self.liveness {
            problems.extend(probe.validate(unit, "liveness").err());
        }
        if self.watchdog.is_some_and(|period| period.is_zero()) {
            problems
                .push(invalid("watchdog", "the period is zero; give the longest time between heartbeats, e.g. 30s"));
        }
    }
}

/// A boxed run of a [`Probe::check`].
pub(crate) type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
/// The closure of a [`Probe::check`].
pub(crate) type CheckFn = Arc<Guarded<Box<dyn Fn() -> CheckFuture + Send + Sync>>>;

/// What a probe asks.
#[derive(Clone)]
pub(crate) enum Target {
    /// Connect to `host:port`.
    Tcp(Arc<str>),
    /// `GET` the URL.
    #[cfg(feature = "http")]
    Http(Arc<str>),
    /// Run the program (the first item) with the arguments.
    Exec(Arc<[OsString]>),
    /// Call the closure and await its future.
    Check(CheckFn),
}

/// A way to ask a unit, from outside, whether it is healthy: a TCP
/// connection, an HTTP `GET`, a command, or an async closure. It decides
/// readiness ([`Readiness::Probe`]) or liveness (a unit's `liveness(probe)`:
/// a run that fails it `failure_threshold` times in a row is stopped and
/// ends as a failure).
///
/// The settings and their defaults are Kubernetes':
///
/// | setting | default | meaning |
/// | --- | --- | --- |
/// | [`period`](Self::period) | 10 s | time from one attempt to the next (`periodSeconds`) |
/// | [`timeout`](Self::timeout) | 1 s | an attempt that takes longer fails (`timeoutSeconds`) |
/// | [`initial_delay`](Self::initial_delay) | 0 | wait after the run starts before the first attempt (`initialDelaySeconds`) |
/// | [`failure_threshold`](Self::failure_threshold) | 3 | failures in a row that make the unit not ready, or not live (`failureThreshold`) |
/// | [`success_threshold`](Self::success_threshold) | 1 | successes in a row that make it ready (`successThreshold`) |
///
/// A readiness probe starts *not ready*. While a run waits for its first
/// readiness, the probe is tried quickly (from about 10 ms, the wait
/// doubling up to the period), so a dependency ready in 50 ms does not hold
/// its dependents back for a whole period; after that it is tried every
/// period while the run lasts. No probe runs while its unit is not running.
///
/// `build()` refuses, with [`Error::InvalidSetting`] naming the setting, a
/// TCP address that is not `host:port`, a URL that does not parse or is not
/// `http://`, an empty command, a zero period or timeout, a zero threshold,
/// and a `success_threshold` other than 1 on a liveness probe (Kubernetes'
/// rule: one success is enough to stay live).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use supervisor::Probe;
///
/// let database = Probe::tcp("127.0.0.1:5432")
///     .initial_delay(Duration::from_millis(100))
///     .period(Duration::from_secs(5))
///     .failure_threshold(2);
/// let migrations = Probe::exec(["psql", "-c", "select 1 from migrations_done"]);
/// let cache = Probe::check(|| async { Ok::<_, std::io::Error>(()) }).timeout(Duration::from_millis(200));
/// # let _ = (database, migrations, cache);
/// ```
///
/// # Caveats
///
/// - There is no TLS: HTTP probes speak plain `http://` (as the kubelet does
///   by default); probe an `https://` service with [`Probe::exec`] and a
///   client such as `curl`, or with [`Probe::check`].
/// - A [`check`](Self::check) closure runs on the supervisor's runtime: one
///   that blocks its thread cannot be cut at its timeout. Put blocking work
///   in `tokio::task::spawn_blocking`.
#[derive(Clone)]
#[must_use = "a probe does nothing until a unit's readiness or liveness uses it"]
pub struct Probe {
    pub(crate) target: Target,
    pub(crate) period: Duration,
    pub(crate) timeout: Duration,
    pub(crate) initial_delay: Duration,
    pub(crate) failure_threshold: u32,
    pub(crate) success_threshold: u32,
}

impl Probe {
    fn new(target: Target) -> Self {
        Probe {
            target,
            period: DEFAULT_PERIOD,
            timeout: DEFAULT_TIMEOUT,
            initial_delay: Duration::ZERO,
            failure_threshold: DEFAULT_FAILURE_THRESHOLD,
            success_threshold: DEFAULT_SUCCESS_THRESHOLD,
        }
    }

    /// Passes when a TCP connection to `addr` is accepted, as Kubernetes'
    /// `tcpSocket` probe. `addr` is `host:port`: `127.0.0.1:5432`,
    /// `[::1]:5432`, `localhost:6379` (a name is looked up on every attempt).
    /// The connection is closed at once; nothing is sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::Probe;
    ///
    /// let probe = Probe::tcp("localhost:6379");
    /// assert!(format!("{probe:?}").contains("localhost:6379"));
    /// ```
    ///
    /// # Caveats
    ///
    /// A listening socket accepts connections (into its backlog) before the
    /// program calls `accept`: the probe shows that the port is open, not
    /// that the program answers. Use `Probe::http` (feature `http`) or
    /// [`Probe::check`] for that.
    pub fn tcp(addr: impl Into<String>) -> Self {
        Probe::new(Target::Tcp(addr.into().into()))
    }

    /// Passes when a `GET` of `url` answers with a status from 200 to 399,
    /// Kubernetes' rule for its `httpGet` probe. Redirects are not followed
    /// (a 3xx is a success). The request is HTTP/1.1 with `Connection: close`
    /// and a `User-Agent` of `tokio-supervisor-probe/VERSION`; the body of the
    /// answer is not read.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::Probe;
    ///
    /// let probe = Probe::http("http://127.0.0.1:8081/health").timeout(Duration::from_secs(2));
    /// # let _ = probe;
    /// ```
    ///
    /// # Caveats
    ///
    /// Only `http://` URLs: there is no TLS (see [`Probe`]). User
    /// information in the URL (`user:pass@`) is refused rather than sent.
    #[cfg(feature = "http")]
    pub fn http(url: impl Into<String>) -> Self {
        Probe::new(Target::Http(url.into().into()))
    }

    /// Passes when the command exits with code 0, as Kubernetes' `exec`
    /// probe. `argv` is the program (looked up in `PATH` unless it contains
    /// a `/`) and its arguments, passed as they are: there is no shell, so
    /// write `["sh", "-c", "..."]` to have one.
    ///
    /// The command runs in a process group of its own, with stdin, stdout
    /// and stderr on `/dev/null`; at its timeout the whole group is killed
    /// with `SIGKILL` and reaped. It inherits the supervisor's environment
    /// and working directory.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::Probe;
    ///
    /// let probe = Probe::exec(["pg_isready", "-h", "127.0.0.1"]);
    /// let scripted = Probe::exec(["sh", "-c", "test -S /run/app.sock"]);
    /// # let _ = (probe, scripted);
    /// ```
    ///
    /// # Caveats
    ///
    /// A descendant that leaves the process group (`setsid`, a
    /// double-forking daemon) is out of reach of the kill at the timeout.
    pub fn exec<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Probe::new(Target::Exec(argv.into_iter().map(|arg| arg.as_ref().to_owned()).collect()))
    }

    /// Passes when the future returned by `f` resolves to `Ok`; `f` is
    /// called once per attempt. An `Err` fails the attempt with its
    /// `Display` as the reason; a panic fails it too (it is caught), and
    /// one in the `Drop` of a future cut at the timeout is caught and logged.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use supervisor::Probe;
    ///
    /// let warmed_up = Arc::new(AtomicBool::new(false));
    /// let flag = warmed_up.clone();
    /// let probe = Probe::check(move || {
    ///     let warm = flag.load(Ordering::Relaxed);
    ///     async move { if warm { Ok(()) } else { Err("the cache is still warming up") } }
    /// });
    /// # let _ = probe;
    /// ```
    ///
    /// # Caveats
    ///
    /// The future runs on the supervisor's runtime and is dropped at the
    /// timeout: a check that blocks its thread (a synchronous client,
    /// `std::thread::sleep`) cannot be cut, and holds up that thread.
    pub fn check<F, Fut, E>(f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        let check: CheckFn = Arc::new(Guarded::new(Box::new(move || {
            let future = f();
            Box::pin(async move { future.await.map_err(|error| format!("{error:#}")) })
        })));
        Probe::new(Target::Check(check))
    }

    /// The time from the start of one attempt to the start of the next
    /// (default 10 s). While a readiness probe waits for the first
    /// readiness of a run, attempts come faster, ramping up to the period.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::Probe;
    ///
    /// let probe = Probe::tcp("127.0.0.1:5432").period(Duration::from_secs(2));
    /// # let _ = probe;
    /// ```
    ///
    /// # Caveats
    ///
    /// An attempt that takes longer than the period delays the next one: at
    /// most one attempt of a probe runs at a time.
    pub fn period(mut self, period: Duration) -> Self {
        self.period = period;
        self
    }

    /// How long one attempt may take (default 1 s); a slower one fails with
    /// "timed out after ...". An exec probe is then killed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::Probe;
    ///
    /// let probe = Probe::exec(["pg_isready"]).timeout(Duration::from_secs(3));
    /// # let _ = probe;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long to wait after a run has started before the first attempt
    /// (default 0).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::Probe;
    ///
    /// let probe = Probe::tcp("127.0.0.1:9200").initial_delay(Duration::from_secs(5));
    /// # let _ = probe;
    /// ```
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// How many failed attempts in a row make a ready unit not ready, or a
    /// live run unhealthy (default 3, at least 1).
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::Probe;
    ///
    /// let probe = Probe::tcp("127.0.0.1:5432").failure_threshold(5);
    /// # let _ = probe;
    /// ```
    pub fn failure_threshold(mut self, threshold: u32) -> Self {
        self.failure_threshold = threshold;
        self
    }

    /// How many successful attempts in a row make a unit ready (default 1,
    /// at least 1; a liveness probe needs 1, as in Kubernetes).
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::Probe;
    ///
    /// let probe = Probe::tcp("127.0.0.1:5432").success_threshold(2);
    /// # let _ = probe;
    /// ```
    pub fn success_threshold(mut self, threshold: u32) -> Self {
        self.success_threshold = threshold;
        self
    }

    /// Checks the probe of `unit`, used as its `role` (`"readiness"` or
    /// `"liveness"`): the first problem found, as an
    /// [`Error::InvalidSetting`] naming the setting.
    pub(crate) fn validate(&self, unit: &str, role: &'static str) -> Result<(), Error> {
        let invalid = |setting: Setting, reason: String| Error::InvalidSetting {
            unit: unit.to_owned(),
            setting: setting.name(role),
            reason,
        };
        if let Err(reason) = self.target.validate() {
            return Err(invalid(Setting::Target, reason));
        }
        if self.period.is_zero() {
            return Err(invalid(Setting::Period, "it is zero; give the time between attempts, e.g. 10s".to_owned()));
        }
        if self.timeout.is_zero() {
            return Err(invalid(
                Setting::Timeout,
                "it is zero; give the time one attempt may take, e.g. 1s".to_owned(),
            ));
        }
        if self.failure_threshold == 0 {
            return Err(invalid(
                Setting::FailureThreshold,
                "it is zero; give the number of failures in a row that count, at least 1 (e.g. 3)".to_owned(),
            ));
        }
        if self.success_threshold == 0 {
            return Err(invalid(
                Setting::SuccessThreshold,
                "it is zero; give the number of successes in a row that count, at least 1".to_owned(),
            ));
        }
        if role == "liveness" && self.success_threshold != 1 {
            return Err(invalid(
                Setting::SuccessThreshold,
                format!(
                    "it is {}, but a liveness probe needs a single success to stay live (as in Kubernetes); leave it at 1",
                    self.success_threshold
                ),
            ));
        }
        Ok(())
    }
}

/// A setting of a probe, for [`Error::InvalidSetting`].
#[derive(Clone, Copy)]
enum Setting {
    Target,
    Period,
    Timeout,
    FailureThreshold,
    SuccessThreshold,
}

impl Setting {
    /// The setting's name for a probe used as `role`, e.g.
    /// `"readiness probe period"`.
    fn name(self, role: &str) -> &'static str {
        use Setting::*;
        match (role, self) {
            ("readiness", Target) => "readiness probe",
            ("readiness", Period) => "readiness probe period",
            ("readiness", Timeout) => "readiness probe timeout",
            ("readiness", FailureThreshold) => "readiness probe failure_threshold",
            ("readiness", SuccessThreshold) => "readiness probe success_threshold",
            ("liveness", Target) => "liveness probe",
            ("liveness", Period) => "liveness probe period",
            ("liveness", Timeout) => "liveness probe timeout",
            ("liveness", FailureThreshold) => "liveness probe failure_threshold",
            ("liveness", SuccessThreshold) => "liveness probe success_threshold",
            (_, Target) => "probe",
            (_, Period) => "probe period",
            (_, Timeout) => "probe timeout",
            (_, FailureThreshold) => "probe failure_threshold",
            (_, SuccessThreshold) => "probe success_threshold",
        }
    }
}

impl Target {
    /// What is wrong with the target, if anything, and what would be right.
    fn validate(&self) -> Result<(), String> {
        match self {
            Target::Tcp(addr) => validate_tcp(addr),
            #[cfg(feature = "http")]
            Target::Http(url) => validate_http(url).map(drop),
            Target::Exec(argv) => validate_exec(argv),
            Target::Check(_) => Ok(()),
        }
    }
}

/// `addr` is `host:port` with a port from 1 to 65535, the host a name, an
/// IPv4 address or an IPv6 address in brackets.
fn validate_tcp(addr: &str) -> Result<(), String> {
    let example = "write host:port, e.g. 127.0.0.1:5432, localhost:6379 or [::1]:5432";
    if addr.contains("://") {
        return Err(format!("tcp address `{addr}` has a scheme; {example}"));
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(format!("tcp address `{addr}` has no port; {example}"));
    };
    if host.is_empty() {
        return Err(format!("tcp address `{addr}` has no host; {example}"));
    }
    if let Some(inner) = host.strip_prefix('[') {
        let valid = inner.strip_suffix(']').is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
        if !valid {
            return Err(format!("tcp address `{addr}` has a malformed IPv6 address; {example}"));
        }
    } else if host.contains(':') {
        return Err(format!(
            "tcp address `{addr}` is ambiguous; write host:port with an IPv6 address in brackets, e.g. [::1]:5432"
        ));
    } else if host.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '[' | ']' | '@')) {
        return Err(format!("tcp address `{addr}` has a host that is not a name or an address; {example}"));
    }
    match port.parse::<u16>() {
        Ok(0) => Err(format!("tcp address `{addr}` has port 0, which cannot be connected to; {example}")),
        Ok(_) => Ok(()),
        Err(_) if port.is_empty() => Err(format!("tcp address `{addr}` has no port; {example}")),
        Err(_) => {
            Err(format!("tcp address `{addr}` has port `{port}`, which is not a number from 1 to 65535; {example}"))
        }
    }
}

/// Parses `url` as a probe URL: `http://`, a host, no user information.
#[cfg(feature = "http")]
pub(crate) fn validate_http(url: &str) -> Result<hyper::Uri, String> {
    let example = "write an http:// URL, e.g. http://127.0.0.1:8081/health";
    if !url.contains("://") {
        return Err(format!("URL `{url}` has no scheme; {example}"));
    }
    // `Uri` leaves the fragment unchecked.
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("URL `{url}` contains a space; write it percent-encoded (`%20`); {example}"));
    }
    let uri: hyper::Uri = url.parse().map_err(|error| format!("URL `{url}` does not parse ({error}); {example}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "URL `{url}` is https://, and HTTP probes have no TLS; use Probe::exec with a client such as curl, or Probe::check"
            ));
        }
        Some(other) => return Err(format!("URL `{url}` has the scheme `{other}`; {example}")),
        None => return Err(format!("URL `{url}` has no scheme; {example}")),
    }
    let Some(authority) = uri.authority() else {
        return Err(format!("URL `{url}` has no host; {example}"));
    };
    if authority.as_str().contains('@') {
        return Err(format!(
            "URL `{url}` has user information, which a probe does not send; use Probe::check to send credentials"
        ));
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(format!("URL `{url}` has no host; {example}"));
    }
    match host.strip_prefix('[').and_then(|host| host.strip_suffix(']')) {
        Some(ip) if ip.parse::<std::net::Ipv6Addr>().is_err() => {
            return Err(format!("URL `{url}` has a malformed IPv6 address; {example}"));
        }
        Some(_) => {}
        // `Uri` lets a bracket through inside a name (`a[b]`).
        None if host.contains(['[', ']']) => {
            return Err(format!(
                "URL `{url}` has a bracket in its host: brackets go around a whole IPv6 address, as in `[::1]`; {example}"
            ));
        }
        None => {}
    }
    // What follows the host: nothing, or `:port`. (`Uri` takes any number
    // as a port, and `port_u16` is then `None`, which reads as port 80;
    // after an IPv6 address's `]`, it takes anything.)
    let port = authority.as_str().strip_prefix(host).unwrap_or_default();
    if !port.is_empty() && !port.starts_with(':') {
        return Err(format!("URL `{url}` has `{port}` after its host, where only `:port` may follow; {example}"));
    }
    if let Some(port) = port.strip_prefix(':') {
        match port.parse::<u16>() {
            Ok(0) => return Err(format!("URL `{url}` has port 0, which cannot be connected to; {example}")),
            Ok(_) => {}
            Err(_) if port.is_empty() => return Err(format!("URL `{url}` has an empty port; {example}")),
            Err(_) => {
                return Err(format!("URL `{url}` has port `{port}`, which is not a number from 1 to 65535; {example}"));
            }
        }
    }
    Ok(uri)
}

fn validate_exec(argv: &[OsString]) -> Result<(), String> {
    let Some(program) = argv.first() else {
        return Err("the command is empty; name a program and its arguments, e.g. [\"pg_isready\", \"-q\"]".to_owned());
    };
    if program.is_empty() {
        return Err("the program is empty; name a program and its arguments, e.g. [\"pg_isready\", \"-q\"]".to_owned());
    }
    if argv.iter().any(|arg| arg.as_encoded_bytes().contains(&0)) {
        return Err(format!("the command {} contains a NUL byte, which no program can be given", command_line(argv)));
    }
    Ok(())
}

/// `argv` as a shell would read it, for messages: `sh -c 'exit 1'`.
pub(crate) fn command_line(argv: &[OsString]) -> String {
    let mut line = String::new();
    for (index, arg) in argv.iter().enumerate() {
        if index > 0 {
            line.push(' ');
        }
        let arg = arg.to_string_lossy();
        let plain = !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | ',' | '+' | '@'));
        if plain {
            line.push_str(&arg);
        } else {
            line.push('\'');
            line.push_str(&arg.replace('\'', r"'\''"));
            line.push('\'');
        }
    }
    line
}

/// How the probe is named in messages: `tcp 127.0.0.1:5432`,
/// `http://127.0.0.1:8081/health`, ``exec `pg_isready -q` ``, `check`.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp(addr) => write!(f, "tcp {addr}"),
            #[cfg(feature = "http")]
            Target::Http(url) => f.write_str(url),
            Target::Exec(argv) => write!(f, "exec `{}`", command_line(argv)),
            Target::Check(_) => f.write_str("check"),
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp(addr) => f.debug_tuple("Tcp").field(addr).finish(),
            #[cfg(feature = "http")]
            Target::Http(url) => f.debug_tuple("Http").field(url).finish(),
            Target::Exec(argv) => f.debug_tuple("Exec").field(argv).finish(),
            Target::Check(_) => f.write_str("Check(<closure>)"),
        }
    }
}

/// Shows the target and every setting; a check's closure shows as
/// `<closure>`.
impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe")
            .field("target", &self.target)
            .field("period", &self.period)
            .field("timeout", &self.timeout)
            .field("initial_delay", &self.initial_delay)
            .field("failure_threshold", &self.failure_threshold)
            .field("success_threshold", &self.success_threshold)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(probe: &Probe, role: &'static str) -> (&'static str, String) {
        match probe.validate("db", role) {
            Err(Error::InvalidSetting { unit, setting, reason }) => {
                assert_eq!(unit, "db");
                (setting, reason)
            }
            other => panic!("expected an invalid setting, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_kubernetes_defaults() {
        let probe = Probe::tcp("127.0.0.1:5432");
        assert_eq!(probe.period, Duration::from_secs(10));
        assert_eq!(probe.timeout, Duration::from_secs(1));
        assert_eq!(probe.initial_delay, Duration::ZERO);
        assert_eq!((probe.failure_threshold, probe.success_threshold), (3, 1));
        assert!(probe.validate("db", "readiness").is_ok());
        assert!(probe.validate("db", "liveness").is_ok());
    }

    #[test]
    fn setters_set() {
        let probe = Probe::tcp("db:5432")
            .period(Duration::from_secs(2))
            .timeout(Duration::from_millis(300))
            .initial_delay(Duration::from_secs(4))
            .failure_threshold(5)
            .success_threshold(2);
        assert_eq!(probe.period, Duration::from_secs(2));
        assert_eq!(probe.timeout, Duration::from_millis(300));
        assert_eq!(probe.initial_delay, Duration::from_secs(4));
        assert_eq!((probe.failure_threshold, probe.success_threshold), (5, 2));
        assert!(probe.validate("db", "readiness").is_ok());
    }

    #[test]
    fn good_tcp_addresses_pass() {
        for addr in ["127.0.0.1:5432", "localhost:6379", "[::1]:5432", "db.internal:1", "example.com:65535"] {
            assert!(Probe::tcp(addr).validate("db", "readiness").is_ok(), "{addr}");
        }
    }

    #[test]
    fn bad_tcp_addresses_are_refused_and_named() {
        let cases = [
            ("127.0.0.1", "no port"),
            ("localhost:", "no port"),
            (":5432", "no host"),
            ("127.0.0.1:http", "not a number"),
            ("127.0.0.1:70000", "not a number"),
            ("127.0.0.1:0", "port 0"),
            ("::1:5432", "brackets"),
            ("[::1:5432", "IPv6"),
            ("[nope]:5432", "IPv6"),
            ("tcp://127.0.0.1:5432", "scheme"),
            ("my host:5432", "not a name"),
            ("", "no port"),
        ];
        for (addr, expected) in cases {
            let (setting, reason) = problem(&Probe::tcp(addr), "readiness");
            assert_eq!(setting, "readiness probe", "{addr}");
            assert!(reason.contains(expected) && reason.contains("host:port"), "{addr}: {reason}");
        }
    }

    #[cfg(feature = "http")]
    #[test]
    fn good_urls_pass() {
        for url in [
            "http://127.0.0.1:8081/health",
            "http://localhost/",
            "http://[::1]:80/ready?full=1",
            "http://db",
            "http://[::1]/",
        ] {
            assert!(Probe::http(url).validate("api", "liveness").is_ok(), "{url}");
        }
    }

    #[cfg(feature = "http")]
    #[test]
    fn bad_urls_are_refused_and_named() {
        let cases = [
            ("not a url", "no scheme"),
            ("http://exa mple.com/", "contains a space"),
            ("http://example.com/health#a b", "contains a space"),
            ("http://ex[am]ple.com/", "bracket in its host"),
            ("http://[::1]x/", "after its host"),
            ("http://[::1]x:80/", "after its host"),
            ("http://", "does not parse"),
            ("127.0.0.1:8081/health", "scheme"),
            ("/health", "no scheme"),
            ("https://example.com/health", "no TLS"),
            ("ftp://example.com/", "scheme `ftp`"),
            ("http://user:secret@example.com/", "user information"),
            ("http://127.0.0.1:99999/", "not a number from 1 to 65535"),
            ("http://127.0.0.1:/", "empty port"),
            ("http://127.0.0.1:0/", "port 0"),
        ];
        for (url, expected) in cases {
            let (setting, reason) = problem(&Probe::http(url), "liveness");
            assert_eq!(setting, "liveness probe", "{url}");
            assert!(reason.contains(expected), "{url}: {reason}");
        }
    }

    #[cfg(feature = "http")]
    #[test]
    fn odd_urls_are_refused_without_panicking() {
        for url in [
            "",
            "http:",
            "http:/",
            "http://",
            "http:///",
            "http:///health",
            "http://@/",
            "http://:80/",
            "http://[::1/",
            "http://[]/",
        ] {
            let (setting, _) = problem(&Probe::http(url), "readiness");
            assert_eq!(setting, "readiness probe", "{url}");
        }
    }

    #[test]
    fn empty_commands_are_refused() {
        let (setting, reason) = problem(&Probe::exec(Vec::<String>::new()), "readiness");
        assert_eq!(setting, "readiness probe");
        assert!(reason.contains("command is empty"), "{reason}");
        let (_, reason) = problem(&Probe::exec(["", "-c"]), "readiness");
        assert!(reason.contains("program is empty"), "{reason}");
        let (_, reason) = problem(&Probe::exec(["sh", "-c", "a\0b"]), "readiness");
        assert!(reason.contains("NUL"), "{reason}");
        assert!(Probe::exec(["true"]).validate("db", "readiness").is_ok());
    }

    #[test]
    fn zero_settings_are_refused_and_named() {
        let base = || Probe::check(|| async { Ok::<_, String>(()) });
        let cases = [
            (base().period(Duration::ZERO), "readiness probe period"),
            (base().timeout(Duration::ZERO), "readiness probe timeout"),
            (base().failure_threshold(0), "readiness probe failure_threshold"),
            (base().success_threshold(0), "readiness probe success_threshold"),
        ];
        for (probe, expected) in cases {
            let (setting, reason) = problem(&probe, "readiness");
            assert_eq!(setting, expected);
            assert!(reason.contains("zero"), "{reason}");
        }
        let (setting, _) = problem(&base().period(Duration::ZERO), "startup");
        assert_eq!(setting, "probe period");
    }

    #[test]
    fn a_liveness_probe_needs_a_success_threshold_of_one() {
        let probe = Probe::tcp("127.0.0.1:5432").success_threshold(2);
        assert!(probe.validate("db", "readiness").is_ok());
        let (setting, reason) = problem(&probe, "liveness");
        assert_eq!(setting, "liveness probe success_threshold");
        assert!(reason.contains("leave it at 1"), "{reason}");
    }

    #[tokio::test]
    async fn a_check_gives_its_error_as_text() {
        let probe = Probe::check(|| async { Err::<(), _>(std::io::Error::other("warming up")) });
        let Target::Check(check) = &probe.target else { panic!("a check has a check target") };
        assert_eq!(check().await, Err("warming up".to_owned()));
        let probe = Probe::check(|| async { Ok::<_, &str>(()) });
        let Target::Check(check) = &probe.target else { panic!("a check has a check target") };
        assert_eq!(check().await, Ok(()));
    }

    #[test]
    fn messages_name_the_target() {
        assert_eq!(Probe::tcp("127.0.0.1:5432").target.to_string(), "tcp 127.0.0.1:5432");
        assert_eq!(Probe::exec(["sh", "-c", "exit 1"]).target.to_string(), "exec `sh -c 'exit 1'`");
        assert_eq!(command_line(&["echo".into(), "it's".into(), "".into()]), r"echo 'it'\''s' ''");
        assert_eq!(Probe::check(|| async { Err::<(), _>("no") }).target.to_string(), "check");
    }

    #[test]
    fn debug_shows_the_target_and_settings() {
        let debug = format!("{:?}", Probe::exec(["pg_isready"]).failure_threshold(4));
        assert!(debug.contains("Exec([\"pg_isready\"])") && debug.contains("failure_threshold: 4"), "{debug}");
        let debug = format!("{:?}", Probe::check(|| async { Ok::<_, String>(()) }));
        assert!(debug.contains("Check(<closure>)"), "{debug}");
        let debug = format!("{:?}", Readiness::Probe(Probe::tcp("db:1")));
        assert!(debug.starts_with("Probe(Probe { target: Tcp(\"db:1\")"), "{debug}");
    }
}
