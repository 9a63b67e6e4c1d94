//! The control API ([`ControlApi`]): restart, stop, start, signal and tail
//! a unit over HTTP, for callers that send its bearer token.
//!
//! Everything a caller sends is looked up, never run: a unit path is
//! matched against the supervisor's units, a signal name against the
//! [`Signal`] constants, a line count parsed as a number.

use std::fmt;
use std::sync::Arc;

use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde::Serialize;
use subtle::{Choice, ConstantTimeEq};

use super::routes::{Body, Message, json, method_not_allowed};
use crate::{Error, Signal, SupervisorHandle, UnitStatus};

/// The prefix of every route of the control API.
const PREFIX: &str = "/units";
/// The name the control API goes by in [`Error::InvalidSetting`].
const CONTROL: &str = "control api";
/// The shortest token accepted, in bytes.
pub(crate) const MIN_TOKEN_LEN: usize = 16;
/// The longest token accepted, in bytes.
const MAX_TOKEN_LEN: usize = 4096;
/// Lines `tail` returns when the query does not say.
const DEFAULT_TAIL_LINES: usize = 100;
const ALLOW_WRITE: &str = "POST";
const ALLOW_READ: &str = "GET, HEAD";
/// What a refused caller is told, whatever was wrong with its token.
const UNAUTHORIZED: &str = "unauthorized: send the control API's token as `Authorization: Bearer <token>`";
const ACTIONS: &str = "GET /units/{path}, POST /units/{path}/restart, POST /units/{path}/stop, \
                       POST /units/{path}/start, POST /units/{path}/signal/{SIG}, GET /units/{path}/tail?lines=N";

/// The control API: `POST /units/{path}/restart`, `/stop`, `/start` and
/// `/signal/{SIG}`, `GET /units/{path}/tail?lines=N` and
/// `GET /units/{path}`, for callers that send its bearer token. It is off
/// unless given to [`HttpEndpoint::control`](super::HttpEndpoint::control)
/// or [`Routes::control`](super::Routes::control).
///
/// | request | does | answer |
/// | --- | --- | --- |
/// | `GET /units/{path}` | nothing | `{"unit", "status"}`: the unit's [`UnitStatus`] |
/// | `POST /units/{path}/restart` | [`SupervisorHandle::restart`] | `{"unit", "done", "status"}` once it is done |
/// | `POST /units/{path}/stop` | [`SupervisorHandle::stop_unit`] | the same |
/// | `POST /units/{path}/start` | [`SupervisorHandle::start_unit`] | the same |
/// | `POST /units/{path}/signal/{SIG}` | [`SupervisorHandle::signal`]; `SIG` as in [`Signal::from_name`] (`HUP`, `SIGUSR1`) | the same |
/// | `GET /units/{path}/tail?lines=N` | [`SupervisorHandle::tail`], 100 lines unless `lines` says | `{"unit", "lines"}` |
///
/// A unit path is the unit's full path, its `/` kept as they are
/// (`/units/storage/db/restart`) or written `%2F`; any other byte may be
/// percent-encoded too. A `GET` or `HEAD` of a path that names a unit is
/// that unit's status, whatever its last name: `GET /units/jobs/tail` is
/// the status of a unit `jobs/tail` if there is one, and else the tail of
/// `jobs` (the tail of `jobs/tail` is `GET /units/jobs/tail/tail`). A
/// caller is refused with:
///
/// - **401** when the `Authorization: Bearer <token>` header is missing,
///   malformed, repeated or holds another token, before anything else is
///   looked at, with one answer for all of these (`WWW-Authenticate:
///   Bearer`), so the answer tells nothing of the token or of the units;
/// - **404** for a unit that does not exist, listing the units (the caller
///   has the token);
/// - **400** for a signal that is not one of [`Signal`]'s, a line count that
///   is not a number, or a unit path that is empty or not UTF-8;
/// - **405** for another method (`Allow` says which);
/// - **409** when the unit cannot do it now (a signal to a task or to a
///   daemon that is not running, a unit in a group that is not running);
/// - **503** once a shutdown has begun.
///
/// Every action that changes something is logged (`tracing`, INFO),
/// without the token, once it is done or refused: the line says which, and
/// why a refused one was.
///
/// # Security
///
/// The token is compared in constant time ([`subtle`](https://docs.rs/subtle)):
/// every byte of the expected token is compared whatever the caller sent,
/// and the lengths too, so the time an answer takes tells nothing about
/// how much of a guess was right. Nothing a caller sends is run: unit
/// paths are looked up among the units, signals among the constants of
/// [`Signal`]. Serve it on a Unix socket
/// ([`HttpEndpoint::unix_socket`](super::HttpEndpoint::unix_socket),
/// created `0600`) or on loopback; over a network, only behind TLS.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), supervisor::Error> {
/// use supervisor::http::{ControlApi, HttpEndpoint};
/// use supervisor::{DaemonSpec, Supervisor};
///
/// let handle = Supervisor::builder().daemon(DaemonSpec::new("web", "sleep").arg("300")).build()?.start();
/// // A long random secret, from the environment, a file or a secret store.
/// let token = std::env::var("SUPERVISOR_TOKEN").unwrap_or_else(|_| "0123456789abcdef0123456789abcdef".to_owned());
/// let server = HttpEndpoint::new()
///     .addr("127.0.0.1:0".parse().unwrap())
///     .control(ControlApi::new(token)?)
///     .serve(&handle)
///     .await?;
/// // curl -X POST -H "Authorization: Bearer $SUPERVISOR_TOKEN" http://127.0.0.1:PORT/units/web/restart
/// # let _ = server;
/// handle.shutdown().await;
///
/// assert!(ControlApi::new("short").is_err()); // 16 bytes at least
/// # Ok(())
/// # }
/// ```
///
/// # Caveats
///
/// - Whoever has the token can stop and signal every unit: keep it as you
///   keep a password, and give it to the control API only where operators
///   are the only ones who reach it.
/// - There is one token, with every right; a request asking more than its
///   caller should have must be refused in front of it (a reverse proxy).
/// - A restart answers once it is done: a unit with a long stop timeout
///   keeps the request open that long.
#[derive(Clone)]
pub struct ControlApi {
    token: Arc<[u8]>,
}

impl ControlApi {
    /// The control API with its bearer token: 16 to 4096 bytes of visible
    /// ASCII (no spaces or control characters), for instance 32 random bytes
    /// written in hex (`openssl rand -hex 32`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] (setting `token`) for a token too short,
    /// too long, or with a byte that is not visible ASCII; the message does
    /// not show the token.
    ///
    /// # Examples
    ///
    /// ```
    /// use supervisor::Error;
    /// use supervisor::http::ControlApi;
    ///
    /// let api = ControlApi::new("f3a9c2d417e8b6a05c9d2e7f1b4a8c36")?;
    /// assert!(!format!("{api:?}").contains("f3a9")); // never shown
    /// assert!(matches!(ControlApi::new("with spaces in the token"), Err(Error::InvalidSetting { setting: "token", .. })));
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// # Caveats
    ///
    /// The token stays in the process's memory while the control API is
    /// served; to change it, serve a new endpoint (or routes) with a new
    /// `ControlApi` and stop the old one.
    pub fn new(token: impl Into<String>) -> Result<ControlApi, Error> {
        let token = token.into();
        let invalid = |reason: String| Error::InvalidSetting { unit: CONTROL.to_owned(), setting: "token", reason };
        if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&token.len()) {
            return Err(invalid(format!(
                "it is {} bytes long; give one of {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} bytes, such as the output of \
                 `openssl rand -hex 32`",
                token.len()
            )));
        }
        if !token.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(invalid(
                "it holds a space, a control character or a byte that is not ASCII; use visible ASCII only, such as \
                 the output of `openssl rand -hex 32`"
                    .to_owned(),
            ));
        }
        Ok(ControlApi { token: Arc::from(token.into_bytes()) })
    }

    /// Whether the request carries exactly one `Authorization: Bearer`
    /// header with the token.
    fn authorizes(&self, parts: &Parts) -> bool {
        let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        let Some(given) = bearer(value) else {
            return false;
        };
        bool::from(token_matches(&self.token, given))
    }

    /// The answer to a request under `/units`.
    pub(crate) async fn answer(&self, handle: &SupervisorHandle, parts: &Parts) -> Response<Body> {
        if !self.authorizes(parts) {
            tracing::warn!(method = %parts.method, path = parts.uri.path(), "control API: refused a request without the right token");
            let mut response = json(StatusCode::UNAUTHORIZED, &Message { error: UNAUTHORIZED.to_owned() });
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
        // `GET /units/jobs/tail` could be the tail of `jobs` or the status of
        // `jobs/tail`: a unit of that path decides it.
        let reads = parts.method == Method::GET || parts.method == Method::HEAD;
        if reads
            && let Some(whole) = whole_path(parts.uri.path())
            && let Some(status) = handle.status(&whole)
        {
            return json(StatusCode::OK, &Done { unit: &whole, done: None, status: Some(status) });
        }
        let (unit, action) = match parse(parts.uri.path(), parts.uri.query()) {
            Ok(parsed) => parsed,
            Err(Refusal::BadRequest(error)) => return json(StatusCode::BAD_REQUEST, &Message { error }),
            Err(Refusal::NoUnit(error)) => {
                return json(
                    StatusCode::NOT_FOUND,
                    &UnknownUnit { error, units: handle.unit_names(), actions: ACTIONS },
                );
            }
        };
        let (allowed, allow) =
            if action.changes() { (parts.method == Method::POST, ALLOW_WRITE) } else { (reads, ALLOW_READ) };
        if !allowed {
            return method_not_allowed(&parts.method, allow);
        }
        let done = match &action {
            Action::Status => {
                return match handle.status(&unit) {
                    Some(status) => json(StatusCode::OK, &Done { unit: &unit, done: None, status: Some(status) }),
                    None => refuse(handle, &unknown(&unit, handle)),
                };
            }
            Action::Tail(lines) => {
                return match handle.tail(&unit, *lines) {
                    Ok(lines) => json(StatusCode::OK, &Tail { unit: &unit, lines }),
                    Err(error) => refuse(handle, &error),
                };
            }
            Action::Restart => handle.restart(&unit).await,
            Action::Stop => handle.stop_unit(&unit).await,
            Action::Start => handle.start_unit(&unit).await,
            Action::Signal(signal) => handle.signal(&unit, *signal),
        };
        // Once done or refused, which the line says: an audit of the log
        // must not read a refused call (an unknown unit) as carried out.
        match &done {
            Ok(()) => tracing::info!(unit = %unit.escape_debug(), action = %action, "control API: done"),
            Err(error) => tracing::info!(unit = %unit.escape_debug(), action = %action, %error, "control API: refused"),
        }
        match done {
            Ok(()) => {
                let done = Some(action.to_string());
                json(StatusCode::OK, &Done { unit: &unit, done, status: handle.status(&unit) })
            }
            Err(error) => refuse(handle, &error),
        }
    }
}

impl fmt::Debug for ControlApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlApi").field("token", &"<hidden>").finish()
    }
}

/// Whether `path` belongs to the control API.
pub(crate) fn is_control_path(path: &str) -> bool {
    path == PREFIX || path.strip_prefix(PREFIX).is_some_and(|rest| rest.starts_with('/'))
}

/// The token of an `Authorization: Bearer <token>` value; the scheme's case
/// does not matter (RFC 9110).
fn bearer(value: &HeaderValue) -> Option<&[u8]> {
    let value = value.as_bytes();
    let scheme = value.get(..7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then(|| value[7..].trim_ascii())
}

/// Whether `given` is `expected`, in constant time: every byte of
/// `expected` is compared whatever `given` holds and however long it is,
/// and the lengths are compared with the same primitive, so the time taken
/// depends on the length of `expected` only. The answer is a
/// [`subtle::Choice`], which only `subtle`'s constant-time operations make.
pub(crate) fn token_matches(expected: &[u8], given: &[u8]) -> Choice {
    let same_length = (expected.len() as u64).ct_eq(&(given.len() as u64));
    let mut same_bytes = Choice::from(1);
    for (at, byte) in expected.iter().enumerate() {
        // Past the end of `given`: compared with 0, which no token holds.
        same_bytes &= byte.ct_eq(given.get(at).unwrap_or(&0));
    }
    same_length & same_bytes
}

/// What a request asks of a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Status,
    Restart,
    Stop,
    Start,
    Signal(Signal),
    Tail(usize),
}

impl Action {
    /// Whether it changes something (and needs `POST`).
    fn changes(&self) -> bool {
        !matches!(self, Action::Status | Action::Tail(_))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Status => f.write_str("status"),
            Action::Restart => f.write_str("restart"),
            Action::Stop => f.write_str("stop"),
            Action::Start => f.write_str("start"),
            Action::Signal(signal) => write!(f, "signal {signal}"),
            Action::Tail(lines) => write!(f, "tail {lines}"),
        }
    }
}

/// Why a request is refused before any unit is touched.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// 400.
    BadRequest(String),
    /// 404: no unit is named.
    NoUnit(String),
}

/// The unit and the action of a path under `/units` (still
/// percent-encoded) and its query.
///
/// The last segment is the action when it is one (`restart`, `stop`,
/// `start`, `tail`); `signal/{SIG}` when the segment before the last is
/// `signal`; otherwise the whole path names the unit. Signal names are
/// upper case and actions lower case, so `a/signal/stop` is the unit
/// `a/signal` stopped, never `SIGSTOP` sent to `a`.
fn parse(path: &str, query: Option<&str>) -> Result<(String, Action), Refusal> {
    let rest = path.strip_prefix(PREFIX).and_then(|rest| rest.strip_prefix('/')).unwrap_or_default();
    let segments: Vec<&str> = rest.split('/').collect();
    let (unit, action) = match segments.as_slice() {
        [unit @ .., last] if !unit.is_empty() && ["restart", "stop", "start", "tail"].contains(last) => {
            let action = match *last {
                "restart" => Action::Restart,
                "stop" => Action::Stop,
                "start" => Action::Start,
                _ => Action::Tail(tail_lines(query)?),
            };
            (unit, action)
        }
        [unit @ .., "signal", name] if !unit.is_empty() => {
            let name = decode(name)?;
            let signal = Signal::from_name(&name).ok_or_else(|| {
                Refusal::BadRequest(format!(
                    "unknown signal `{}`; send one of HUP, INT, QUIT, KILL, USR1, USR2, PIPE, ALRM, TERM, CHLD, \
                     CONT, STOP, TSTP, WINCH (with or without SIG)",
                    name.escape_debug()
                ))
            })?;
            (unit, Action::Signal(signal))
        }
        unit => (unit, Action::Status),
    };
    let mut names = Vec::with_capacity(unit.len());
    for segment in unit {
        names.push(decode(segment)?);
    }
    let unit = names.join("/");
    if unit.is_empty() {
        return Err(Refusal::NoUnit(format!("name a unit: {ACTIONS}")));
    }
    if unit.split('/').any(str::is_empty) {
        return Err(Refusal::BadRequest(format!(
            "`{}` is not a unit path: a path is names joined by single `/`, such as `storage/db`",
            unit.escape_debug()
        )));
    }
    Ok((unit, action))
}

/// The whole of a path under `/units`, percent-decoded, as the path of a
/// unit, whatever its last names are.
fn whole_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix(PREFIX)?.strip_prefix('/')?;
    percent_decode_str(rest).decode_utf8().ok().map(std::borrow::Cow::into_owned)
}

/// A percent-decoded segment.
fn decode(segment: &str) -> Result<String, Refusal> {
    match percent_decode_str(segment).decode_utf8() {
        Ok(decoded) => Ok(decoded.into_owned()),
        Err(_) => Err(Refusal::BadRequest(format!("`{}` is not UTF-8 once percent-decoded", segment.escape_debug()))),
    }
}

/// The `lines` of a tail's query.
fn tail_lines(query: Option<&str>) -> Result<usize, Refusal> {
    let value = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find_map(|(key, value)| (key == "lines").then_some(value));
    match value {
        None => Ok(DEFAULT_TAIL_LINES),
        Some(value) => value.parse().map_err(|_| {
            Refusal::BadRequest(format!("lines=`{}` is not a number of lines, such as lines=50", value.escape_debug()))
        }),
    }
}

/// The error the handle gives for a unit that does not exist.
fn unknown(unit: &str, handle: &SupervisorHandle) -> Error {
    Error::UnknownUnit { name: unit.to_owned(), known: handle.unit_names().join(", ") }
}

/// The answer to an error of the handle.
fn refuse(handle: &SupervisorHandle, error: &Error) -> Response<Body> {
    let status = match error {
        Error::UnknownUnit { .. } => {
            let units = handle.unit_names();
            return json(StatusCode::NOT_FOUND, &UnknownUnit { error: error.to_string(), units, actions: ACTIONS });
        }
        Error::NotRunning { .. } | Error::WrongKind { .. } | Error::GroupNotRunning { .. } => StatusCode::CONFLICT,
        Error::ShuttingDown { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    json(status, &Message { error: error.to_string() })
}

#[derive(Serialize)]
struct UnknownUnit {
    error: String,
    units: Vec<String>,
    actions: &'static str,
}

#[derive(Serialize)]
struct Done<'a> {
    unit: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    done: Option<String>,
    status: Option<UnitStatus>,
}

#[derive(Serialize)]
struct Tail<'a> {
    unit: &'a str,
    lines: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_tokens_match() {
        assert!(bool::from(token_matches(b"0123456789abcdef", b"0123456789abcdef")));
    }

    #[test]
    fn tokens_of_equal_length_that_differ_anywhere_do_not_match() {
        let expected = b"0123456789abcdef";
        for at in 0..expected.len() {
            let mut given = *expected;
            given[at] ^= 0x01;
            assert!(!bool::from(token_matches(expected, &given)), "a difference at byte {at} went unseen");
        }
    }

    #[test]
    fn tokens_of_another_length_do_not_match() {
        let expected = b"0123456789abcdef";
        assert!(!bool::from(token_matches(expected, b"")));
        assert!(!bool::from(token_matches(expected, b"0123456789abcde")), "a prefix");
        assert!(!bool::from(token_matches(expected, b"0123456789abcdef0")), "an extension");
        assert!(!bool::from(token_matches(expected, &[0; 16][..15])));
        // A guess padded with the zeros that stand for missing bytes.
        let mut padded = expected.to_vec();
        padded.push(0);
        assert!(!bool::from(token_matches(expected, &padded)));
        assert!(!bool::from(token_matches(b"", b"x")));
    }

    #[test]
    fn the_comparison_is_subtles_constant_time_primitive() {
        // `Choice` is made only by `subtle`'s constant-time operations: a
        // comparison that returned early with a `bool` would not compile
        // here.
        let verdict: subtle::Choice = token_matches(b"0123456789abcdef", b"0123456789abcdeX");
        assert_eq!(verdict.unwrap_u8(), 0);
        assert_eq!(token_matches(b"0123456789abcdef", b"0123456789abcdef").unwrap_u8(), 1);
    }

    #[test]
    fn bearer_reads_the_token_of_any_case_of_the_scheme() {
        let token = |value: &'static str| bearer(&HeaderValue::from_static(value)).map(<[u8]>::to_vec);
        assert_eq!(token("Bearer abc"), Some(b"abc".to_vec()));
        assert_eq!(token("bearer abc "), Some(b"abc".to_vec()));
        assert_eq!(token("BEARER abc"), Some(b"abc".to_vec()));
        assert_eq!(token("Basic abc"), None);
        assert_eq!(token("Bearer"), None);
        assert_eq!(token("Bearerabc"), None);
    }

    #[test]
    fn paths_name_a_unit_and_an_action() {
        let parsed = |path: &str, query: Option<&str>| parse(path, query);
        assert_eq!(parsed("/units/web/restart", None), Ok(("web".to_owned(), Action::Restart)));
        assert_eq!(parsed("/units/storage/db/stop", None), Ok(("storage/db".to_owned(), Action::Stop)));
        assert_eq!(parsed("/units/storage%2Fdb/start", None), Ok(("storage/db".to_owned(), Action::Start)));
        assert_eq!(parsed("/units/my%20web", None), Ok(("my web".to_owned(), Action::Status)));
        assert_eq!(parsed("/units/web/signal/HUP", None), Ok(("web".to_owned(), Action::Signal(Signal::HUP))));
        assert_eq!(parsed("/units/a/b/signal/SIGUSR1", None), Ok(("a/b".to_owned(), Action::Signal(Signal::USR1))));
        assert_eq!(parsed("/units/a/signal/stop", None), Ok(("a/signal".to_owned(), Action::Stop)));
        assert_eq!(parsed("/units/web/tail", None), Ok(("web".to_owned(), Action::Tail(100))));
        assert_eq!(parsed("/units/web/tail", Some("x=1&lines=7")), Ok(("web".to_owned(), Action::Tail(7))));
        assert_eq!(parsed("/units/restart", None), Ok(("restart".to_owned(), Action::Status)));
        assert_eq!(parsed("/units/web/bogus", None), Ok(("web/bogus".to_owned(), Action::Status)));
    }

    #[test]
    fn malformed_paths_are_refused() {
        let refused = |path: &str, query: Option<&str>| parse(path, query).unwrap_err();
        assert!(matches!(refused("/units/web/signal/9", None), Refusal::BadRequest(_)));
        assert!(matches!(refused("/units/web/signal/term", None), Refusal::BadRequest(_)));
        assert!(matches!(refused("/units/web/signal/KILL;rm%20-rf", None), Refusal::BadRequest(_)));
        assert!(matches!(refused("/units/web/tail", Some("lines=-1")), Refusal::BadRequest(_)));
        assert!(matches!(refused("/units/web/tail", Some("lines=ten")), Refusal::BadRequest(_)));
        assert!(matches!(refused("/units/web/tail", Some("lines")), Refusal::BadRequest(_)));
        assert!(matches!(refused("/units/%ff/restart", None), Refusal::BadRequest(_)));
        assert!(matches!(refused("/units/a//b/restart", None), Refusal::BadRequest(_)));
        assert!(matches!(refused("/units/web/", None), Refusal::BadRequest(_)));
        assert!(matches!(refused("/units/", None), Refusal::NoUnit(_)));
        assert!(matches!(refused("/units", None), Refusal::NoUnit(_)));
    }

    #[test]
    fn tokens_are_checked() {
        assert!(ControlApi::new("0123456789abcdef").is_ok());
        assert!(ControlApi::new("0123456789abcde").is_err());
        assert!(ControlApi::new("x".repeat(MAX_TOKEN_LEN + 1)).is_err());
        assert!(ControlApi::new("0123456789abcdef\n").is_err());
        assert!(ControlApi::new("0123456789abcdéf").is_err());
    }

    #[test]
    fn only_units_paths_belong_to_the_control_api() {
        assert!(is_control_path("/units"));
        assert!(is_control_path("/units/web/restart"));
        assert!(!is_control_path("/unitsx"));
        assert!(!is_control_path("/livez"));
    }
}
