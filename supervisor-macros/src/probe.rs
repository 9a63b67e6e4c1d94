//! Readiness and liveness values: `ready = notified`, `tcp("host:port")`,
//! `http("url")`, `exec("command")`, `output("text")`, read from the option's
//! tokens; and the checks of a probe's address and URL, pure functions of
//! the text.

use crate::command::{self, Command};
use crate::options::RawOption;
use crate::suggest;
use proc_macro2::{Delimiter, Span, TokenTree};
use syn::LitStr;
use syn::parse::{ParseStream, Parser};

/// A probe the supervisor runs against a unit.
pub(crate) enum Probe {
    /// `tcp("host:port")`: a connection succeeds.
    Tcp(LitStr),
    /// `http("http://...")`: a GET answers 2xx or 3xx.
    Http(LitStr),
    /// `exec("command")`: the command exits 0.
    Exec(Command),
}

/// When a unit counts as ready.
pub(crate) enum Readiness {
    /// `started`: once it runs (the default).
    Started,
    /// `notified`: once it says so (`ctx.ready()`, or `READY=1` from a process).
    Notified,
    /// `completed`: a one-shot job, done once a run ends well and rests.
    Completed,
    /// A probe succeeds.
    Probe(Probe),
    /// `output("text")`: a line of the process's output contains the text.
    Output(LitStr),
}

/// A value with the span of the tokens it was read from.
pub(crate) struct Spanned<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
}

const READINESS: &[&str] = &["started", "notified", "completed", "tcp", "http", "exec", "output"];
const PROBES: &[&str] = &["tcp", "http", "exec"];
const READINESS_FORMS: &str = "`started`, `notified`, `completed`, `tcp(\"host:port\")`, `http(\"http://...\")`, `exec(\"command\")` or `output(\"text\")`";
const PROBE_FORMS: &str = "`tcp(\"host:port\")`, `http(\"http://...\")` or `exec(\"command\")`";

/// Reads `ready = ...`.
pub(crate) fn readiness(option: &RawOption) -> syn::Result<Spanned<Readiness>> {
    let (word, span, argument) = form(option, READINESS_FORMS)?;
    let value = match (word.as_str(), argument) {
        ("started", None) => Readiness::Started,
        ("notified", None) => Readiness::Notified,
        ("completed", None) => Readiness::Completed,
        ("output", Some(tokens)) => Readiness::Output(string_argument(tokens, span, "output", "\"listening on\"")?),
        (probe @ ("tcp" | "http" | "exec"), argument) => Readiness::Probe(probe_of(probe, argument, span)?),
        ("started" | "notified" | "completed", Some(_)) => {
            return Err(syn::Error::new(span, format!("`{word}` takes no arguments: write `ready = {word}`")));
        }
        ("output", None) => {
            return Err(syn::Error::new(
                span,
                "`output` takes the text to wait for: `ready = output(\"listening on\")`",
            ));
        }
        _ => return Err(unknown(&word, span, "readiness", READINESS, READINESS_FORMS)),
    };
    Ok(Spanned { value, span })
}

/// Reads `liveness = ...`: a probe.
pub(crate) fn liveness(option: &RawOption) -> syn::Result<Spanned<Probe>> {
    let (word, span, argument) = form(option, PROBE_FORMS)?;
    if !PROBES.contains(&word.as_str()) {
        let hint = match word.as_str() {
            "started" | "notified" | "completed" | "output" => {
                format!("`{word}` says when a unit is ready, not whether it is alive; `liveness` takes {PROBE_FORMS}")
            }
            _ => return Err(unknown(&word, span, "liveness probe", PROBES, PROBE_FORMS)),
        };
        return Err(syn::Error::new(span, hint));
    }
    Ok(Spanned { value: probe_of(&word, argument, span)?, span })
}

/// Splits the value into its word and the tokens inside its parentheses.
fn form(option: &RawOption, forms: &str) -> syn::Result<(String, Span, Option<proc_macro2::TokenStream>)> {
    let name = option.name();
    if option.is_bare() {
        return Err(option.missing_value());
    }
    let mut tokens = option.value.clone().into_iter();
    let (word, span) = match tokens.next() {
        Some(TokenTree::Ident(ident)) => (ident.to_string(), ident.span()),
        Some(TokenTree::Literal(literal)) => {
            let text = literal.to_string();
            let bare = text.trim_matches('"');
            let hint = if READINESS.contains(&bare) {
                format!(": write `{name} = {bare}` without quotes")
            } else {
                String::new()
            };
            return Err(syn::Error::new(literal.span(), format!("`{name}` takes {forms}{hint}")));
        }
        _ => return Err(option.error(format!("`{name}` takes {forms}"))),
    };
    let argument = match tokens.next() {
        None => None,
        Some(TokenTree::Group(group)) if group.delimiter() == Delimiter::Parenthesis => Some(group.stream()),
        Some(other) => return Err(syn::Error::new(other.span(), format!("`{name}` takes {forms}"))),
    };
    if let Some(extra) = tokens.next() {
        if let Some(error) = builder_setting(&name, &extra, tokens) {
            return Err(error);
        }
        return Err(syn::Error::new(extra.span(), format!("unexpected tokens after the value of `{name}`")));
    }
    Ok((word, span, argument))
}

/// The builder's probe setters and the option of the manifest that says
/// the same, after the `readiness_` or `liveness_` of the probe's role.
const SETTERS: &[(&str, &str, &str)] = &[
    ("period", "period", "\"10s\""),
    ("timeout", "timeout", "\"1s\""),
    ("initial_delay", "initial_delay", "\"5s\""),
    ("failure_threshold", "failures", "3"),
    ("success_threshold", "successes", "1"),
];

/// The error for a probe tuned as the builder tunes one, `tcp("...").period("10s")`
/// after `.` (`dot`): the manifest tunes it with an option of the entry,
/// `readiness_period = "10s"`, which the error names, on the setter.
fn builder_setting(name: &str, dot: &TokenTree, mut rest: impl Iterator<Item = TokenTree>) -> Option<syn::Error> {
    if !matches!(dot, TokenTree::Punct(punct) if punct.as_char() == '.') {
        return None;
    }
    let Some(TokenTree::Ident(setter)) = rest.next() else { return None };
    let &(_, option, example) = SETTERS.iter().find(|(builder, ..)| setter == builder)?;
    let role = if name == "ready" { "readiness" } else { "liveness" };
    // The value as written when it is one string or number, else an example.
    let value = match rest.next() {
        Some(TokenTree::Group(group)) if group.stream().into_iter().count() == 1 => {
            match group.stream().into_iter().next() {
                Some(TokenTree::Literal(literal)) => literal.to_string(),
                _ => example.to_owned(),
            }
        }
        _ => example.to_owned(),
    };
    Some(syn::Error::new(
        setter.span(),
        format!(
            "a probe of the manifest is tuned with an option of the entry, beside `{name}`, not with a call on the \
             probe: write `{role}_{option} = {value}`"
        ),
    ))
}

fn probe_of(word: &str, argument: Option<proc_macro2::TokenStream>, span: Span) -> syn::Result<Probe> {
    let Some(tokens) = argument else {
        let example = match word {
            "tcp" => "tcp(\"127.0.0.1:5432\")",
            "http" => "http(\"http://127.0.0.1:8080/health\")",
            _ => "exec(\"pg_isready -h 127.0.0.1\")",
        };
        return Err(syn::Error::new(span, format!("`{word}` takes its target in parentheses, e.g. `{example}`")));
    };
    Ok(match word {
        "tcp" => Probe::Tcp(string_argument(tokens, span, "tcp", "\"127.0.0.1:5432\"")?),
        "http" => Probe::Http(string_argument(tokens, span, "http", "\"http://127.0.0.1:8080/health\"")?),
        _ => {
            // Parsed alone, empty parentheses would be an error at the end
            // of their tokens, which syn spans on the whole macro call.
            if tokens.is_empty() {
                return Err(syn::Error::new(
                    span,
                    "`exec()` has no command: write `exec(\"program args\")`, e.g. `exec(\"pg_isready -h 127.0.0.1\")`",
                ));
            }
            Probe::Exec(exec_command.parse2(tokens)?)
        }
    })
}

/// The command in `exec(...)`, alone: what follows it is told that
/// `exec` takes one command, where syn said only "unexpected token".
fn exec_command(input: ParseStream<'_>) -> syn::Result<Command> {
    let command = command::parse(input, command::Runs::Probe)?;
    if !input.is_empty() {
        return Err(input.error(
            "`exec(...)` takes one command: a string, `exec(\"pg_isready -q\")`, or a list of its words, \
             `exec([\"pg_isready\", \"-q\"])`",
        ));
    }
    Ok(command)
}

fn string_argument(tokens: proc_macro2::TokenStream, span: Span, word: &str, example: &str) -> syn::Result<LitStr> {
    let message = format!("`{word}(...)` takes one string, e.g. `{word}({example})`");
    syn::parse2::<LitStr>(tokens.clone()).map_err(|_| {
        if tokens.is_empty() { syn::Error::new(span, message) } else { syn::Error::new_spanned(tokens, message) }
    })
}

fn unknown(word: &str, span: Span, what: &str, known: &[&str], forms: &str) -> syn::Error {
    syn::Error::new(span, format!("unknown {what} `{word}`{}; expected {forms}", suggest::did_you_mean(word, known)))
}

/// Checks a TCP probe's `host:port`: it refuses what `build()` refuses
/// (the runtime's `validate_tcp`), with the fix.
pub(crate) fn check_tcp(address: &str) -> Result<(), String> {
    let example = "e.g. tcp(\"127.0.0.1:5432\") or tcp(\"[::1]:5432\")";
    if address.contains("://") {
        return Err(format!(
            "`tcp` takes `host:port`, not a URL: write {example}, or probe the URL with http(\"{address}\")"
        ));
    }
    if address.chars().any(char::is_whitespace) {
        return Err(format!("the address {address:?} contains a space; write `host:port`, {example}"));
    }
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(format!("the address {address:?} opens a `[` it does not close; {example}"));
        };
        let Some(port) = after.strip_prefix(':') else {
            return Err(format!("the address {address:?} has no port: write `[{host}]:PORT`, {example}"));
        };
        check_ipv6(host, &format!("the address {address:?}"), example)?;
        (host, port)
    } else {
        let Some((host, port)) = address.rsplit_once(':') else {
            return Err(format!("the address {address:?} has no port: write `host:port`, {example}"));
        };
        if host.contains(':') {
            return Err(format!("write an IPv6 address in brackets: tcp(\"[{host}]:{port}\")"));
        }
        check_host_name(host, &format!("the address {address:?}"), example)?;
        (host, port)
    };
    if host.is_empty() {
        return Err(format!("the address {address:?} has no host: write `host:port`, {example}"));
    }
    check_port(port, address, example)
}

/// The longest URL the runtime's parser (`http::Uri`) takes.
const MAX_URL_LEN: usize = u16::MAX as usize - 1;

/// Checks an HTTP probe's URL, `http://host[:port][/path][?query]`: it
/// refuses what `build()` refuses (the runtime's `validate_http`, which
/// parses it as an `http::Uri`), with the fix.
pub(crate) fn check_http(url: &str) -> Result<(), String> {
    let example = "e.g. http(\"http://127.0.0.1:8080/health\")";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("the URL {url:?} has no scheme: write `http://host:port/path`, {example}"));
    };
    if scheme.eq_ignore_ascii_case("https") {
        return Err(format!(
            "HTTP probes speak plain HTTP to the unit, without TLS: write an `http://` URL, {example}"
        ));
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(format!("the URL {url:?} is not an `http://` URL; {example}"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("the URL {url:?} contains a space; write it percent-encoded (`%20`), {example}"));
    }
    if url.len() > MAX_URL_LEN {
        return Err(format!(
            "the URL is {} bytes long; a probe's URL holds at most {MAX_URL_LEN}: shorten it, {example}",
            url.len()
        ));
    }
    let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    check_authority(authority, url, example)?;
    check_path(path, url, example)
}

/// Checks the `host[:port]` of an HTTP probe's URL.
fn check_authority(authority: &str, url: &str, example: &str) -> Result<(), String> {
    if authority.contains('@') {
        return Err(format!("the URL {url:?} has user information, which probes do not send; {example}"));
    }
    if let Some(c) = authority.chars().find(|&c| !is_host_char(c)) {
        return Err(format!(
            "the URL {url:?} has `{c}` in its host, which a host cannot hold: write a name, an IPv4 address \
             or an IPv6 address in brackets, {example}"
        ));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err(format!("the URL {url:?} opens a `[` it does not close; {example}"));
        };
        let port = match after.strip_prefix(':') {
            None if after.is_empty() => None,
            None => return Err(format!("the URL {url:?} has something after `]` that is not `:port`; {example}")),
            Some(port) => Some(port),
        };
        check_ipv6(host, &format!("the URL {url:?}"), example)?;
        (host, port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err("write an IPv6 host in brackets, e.g. http(\"http://[::1]:8080/health\")".to_owned());
            }
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        check_host_name(host, &format!("the URL {url:?}"), example)?;
        (host, port)
    };
    if host.is_empty() {
        return Err(format!("the URL {url:?} has no host; {example}"));
    }
    match port {
        Some(port) => check_port(port, url, example),
        None => Ok(()),
    }
}

/// Whether `c` may be in the authority of a URL (`http::Uri`'s table, less
/// `%`: no host can be percent-encoded, and `@` is refused on its own).
fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!$&'()*+,-.:;=@[]_~".contains(c)
}

/// Checks the path and query of an HTTP probe's URL for the characters
/// `http::Uri` refuses unencoded; like it, leaves the fragment unchecked.
fn check_path(path: &str, url: &str, example: &str) -> Result<(), String> {
    let path = &path[..path.find('#').unwrap_or(path.len())];
    let (path, query) = path.split_at(path.find('?').unwrap_or(path.len()));
    let refused = path.chars().find(|c| matches!(c, '<' | '>' | '`')).map(|c| (c, "path"));
    let refused = refused.or_else(|| query.chars().find(|c| matches!(c, '"' | '<' | '>')).map(|c| (c, "query")));
    match refused {
        Some((c, part)) => Err(format!(
            "the URL {url:?} has `{c}` in its {part}, which a URL holds only percent-encoded: write `%{:02X}`, {example}",
            u32::from(c)
        )),
        None => Ok(()),
    }
}

/// Checks the address in a pair of brackets: an IPv6 address, as the
/// runtime parses it. `whole` names the address or URL it is in.
fn check_ipv6(host: &str, whole: &str, example: &str) -> Result<(), String> {
    if host.is_empty() || host.parse::<std::net::Ipv6Addr>().is_ok() {
        // An empty host has an error of its own.
        return Ok(());
    }
    Err(format!("{whole} has `[{host}]`, which is not an IPv6 address: brackets hold one such as `[::1]`; {example}"))
}

/// Checks a host that is not in brackets: a name or an IPv4 address, with
/// none of the characters that `build()` refuses in it (they would make it
/// user information, a path or half an IPv6 address). `whole` names the
/// address or URL it is in.
fn check_host_name(host: &str, whole: &str, example: &str) -> Result<(), String> {
    match host.chars().find(|&c| c.is_control() || matches!(c, '/' | '@' | '[' | ']')) {
        None => Ok(()),
        Some('@') => Err(format!(
            "{whole} has user information (`user@`), which a probe cannot send: write the host alone, {example}"
        )),
        Some('/') => {
            Err(format!("{whole} has a `/` in its host: a probe connects to `host:port`, without a path; {example}"))
        }
        Some('[' | ']') => Err(format!(
            "{whole} has a bracket in its host: brackets go around a whole IPv6 address, as in `[::1]`; {example}"
        )),
        Some(c) => Err(format!("{whole} has the control character {c:?} in its host; {example}")),
    }
}

fn check_port(port: &str, whole: &str, example: &str) -> Result<(), String> {
    if port.is_empty() {
        return Err(format!("{whole:?} has an empty port; {example}"));
    }
    match port.parse::<u16>() {
        Ok(0) => Err(format!("port 0 in {whole:?} cannot be probed; write the port the unit listens on, {example}")),
        Ok(_) => Ok(()),
        Err(_) => Err(format!("`{port}` in {whole:?} is not a port: write a number from 1 to 65535, {example}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::tests::option;
    use quote::quote;

    fn ready(tokens: proc_macro2::TokenStream) -> syn::Result<Readiness> {
        readiness(&option(tokens)).map(|spanned| spanned.value)
    }

    fn error(result: syn::Result<impl Sized>) -> String {
        match result {
            Ok(_) => panic!("expected an error"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn readiness_forms() {
        assert!(matches!(ready(quote!(ready = started)).unwrap(), Readiness::Started));
        assert!(matches!(ready(quote!(ready = notified)).unwrap(), Readiness::Notified));
        assert!(matches!(ready(quote!(ready = completed)).unwrap(), Readiness::Completed));
        assert!(error(ready(quote!(ready = completed()))).contains("takes no arguments"));
        assert!(matches!(ready(quote!(ready = tcp("127.0.0.1:5432"))).unwrap(), Readiness::Probe(Probe::Tcp(_))));
        assert!(matches!(ready(quote!(ready = http("http://a/b"))).unwrap(), Readiness::Probe(Probe::Http(_))));
        assert!(matches!(ready(quote!(ready = output("listening"))).unwrap(), Readiness::Output(_)));
        match ready(quote!(ready = exec("pg_isready -h 127.0.0.1"))).unwrap() {
            Readiness::Probe(Probe::Exec(command)) => {
                assert_eq!(command.program, "pg_isready");
                assert_eq!(command.args, ["-h", "127.0.0.1"]);
            }
            _ => panic!("expected an exec probe"),
        }
        assert!(matches!(ready(quote!(ready = exec(["a", "b c"]))).unwrap(), Readiness::Probe(Probe::Exec(_))));
    }

    #[test]
    fn readiness_errors() {
        assert!(
            error(ready(quote!(ready = notifed))).starts_with("unknown readiness `notifed` (did you mean `notified`?)")
        );
        assert!(error(ready(quote!(ready = "notified"))).ends_with("write `ready = notified` without quotes"));
        assert!(error(ready(quote!(ready = tcp))).contains("takes its target in parentheses"));
        assert!(error(ready(quote!(ready = tcp(5432)))).contains("`tcp(...)` takes one string"));
        assert!(error(ready(quote!(ready = notified()))).contains("takes no arguments"));
        assert!(error(ready(quote!(ready = output))).contains("takes the text to wait for"));
        assert!(error(ready(quote!(ready = exec("a | b")))).contains("shell operator"));
        assert!(
            error(ready(quote!(ready = exec("a", "b")))).ends_with("not several strings: write `exec([\"a\", \"b\"])`")
        );
        assert!(error(ready(quote!(ready = exec(["a"], "b")))).starts_with("`exec(...)` takes one command: a string"));
        assert!(error(ready(quote!(ready))).contains("expected `=` after `ready`"));
        // Tuned as the builder tunes a probe: told the option that does it.
        assert!(
            error(ready(quote!(ready = tcp("a:1").period("2s"))))
                .ends_with("not with a call on the probe: write `readiness_period = \"2s\"`")
        );
        let message = error(liveness(&option(quote!(liveness = exec("true").failure_threshold(5).period("1s")))));
        assert!(message.ends_with("write `liveness_failures = 5`"), "{message}");
        let message = error(ready(quote!(ready = tcp("a:1").timeout(Duration::from_secs(1)))));
        assert!(message.ends_with("write `readiness_timeout = \"1s\"`"), "{message}");
        assert_eq!(error(ready(quote!(ready = tcp("a:1").retries(3)))), "unexpected tokens after the value of `ready`");
    }

    #[test]
    fn liveness_forms() {
        assert!(matches!(liveness(&option(quote!(liveness = tcp("a:1")))).unwrap().value, Probe::Tcp(_)));
        assert!(error(liveness(&option(quote!(liveness = notified)))).contains("not whether it is alive"));
        assert!(error(liveness(&option(quote!(liveness = htp("x"))))).contains("(did you mean `http`?)"));
    }

    #[test]
    fn tcp_addresses() {
        for good in ["127.0.0.1:5432", "localhost:80", "[::1]:5432", "db.internal:65535"] {
            assert_eq!(check_tcp(good), Ok(()), "{good}");
        }
        for (bad, expected) in [
            ("127.0.0.1", "has no port"),
            (":5432", "has no host"),
            ("localhost:", "empty port"),
            ("localhost:http", "is not a port"),
            ("localhost:70000", "is not a port"),
            ("localhost:0", "port 0"),
            ("::1:5432", "IPv6 address in brackets"),
            ("[::1]", "has no port"),
            ("[::1:5432", "does not close"),
            ("http://localhost:80", "not a URL"),
            ("local host:80", "contains a space"),
            ("[not-an-ip]:5432", "has `[not-an-ip]`, which is not an IPv6 address"),
            ("user@db:5432", "has user information (`user@`), which a probe cannot send"),
            ("db/primary:5432", "has a `/` in its host"),
            ("a]:80", "brackets go around a whole IPv6 address"),
            ("a\u{1}:80", "control character"),
        ] {
            let message = check_tcp(bad).unwrap_err();
            assert!(message.contains(expected), "{bad}: {message}");
        }
    }

    #[test]
    fn http_urls() {
        for good in [
            "http://127.0.0.1:8080/health",
            "http://localhost",
            "HTTP://a/b?c=d",
            "http://[::1]:80/",
            "http://a:1#x<y>",
        ] {
            assert_eq!(check_http(good), Ok(()), "{good}");
        }
        for (bad, expected) in [
            ("127.0.0.1:8080/health", "has no scheme"),
            ("https://a/health", "without TLS"),
            ("ftp://a/b", "not an `http://` URL"),
            ("http:///health", "has no host"),
            ("http://a:port/", "is not a port"),
            ("http://a:/", "empty port"),
            ("http://a b/", "contains a space"),
            ("http://user@a/", "user information"),
            ("http://::1:80/", "IPv6 host in brackets"),
            ("http://[zz]:8080/health", "has `[zz]`, which is not an IPv6 address"),
            ("http://a%2e/", "has `%` in its host"),
            ("http://bücher.example/", "has `ü` in its host"),
            ("http://a]/", "brackets go around a whole IPv6 address"),
            ("http://[::1]x/", "something after `]` that is not `:port`"),
            ("http://a/<x>", "has `<` in its path, which a URL holds only percent-encoded: write `%3C`"),
            ("http://a/?q=\"x\"", "has `\"` in its query, which a URL holds only percent-encoded: write `%22`"),
            (&format!("http://a/{}", "x".repeat(MAX_URL_LEN)), "bytes long"),
        ] {
            let message = check_http(bad).unwrap_err();
            assert!(message.contains(expected), "{bad}: {message}");
        }
    }
}

/// The macros refuse the probe targets that `build()` refuses: every
/// address and URL made of these parts is tried on both sides.
#[cfg(test)]
mod runtime_agrees {
    use super::{MAX_URL_LEN, check_http, check_tcp};
    use supervisor::{Probe, Readiness, Supervisor, TaskSpec};

    const HOSTS: &[&str] = &[
        "",
        "a",
        "db.internal",
        "127.0.0.1",
        "[::1]",
        "[fe80::1%eth0]",
        "[zz]",
        "[not-an-ip]",
        "[]",
        "[::1",
        "::1",
        "a]",
        "a[",
        "a[b]",
        "[::1]x",
        "user@db",
        "@db",
        "db/primary",
        "a b",
        "a\u{1}b",
        "a\u{a0}b",
        "bücher.example",
        "a%2e",
        "a\"b",
        "a|b",
        "a`b",
        "a{b}",
        "a\\b",
        "a^b",
        "a<b>",
        "a!$&'()*+,;=b",
        "a_b-c~",
    ];
    const PORTS: &[Option<&str>] =
        &[None, Some(""), Some("80"), Some("0"), Some("65535"), Some("65536"), Some("+80"), Some("x"), Some("8:0")];
    const PATHS: &[&str] = &[
        "",
        "/",
        "/health",
        "?",
        "#",
        "/a b",
        "/<x>",
        "/a`b",
        "/a\"b",
        "/{j}|[k]^\\",
        "/é",
        "/%zz",
        "?q=\"x\"",
        "?q=<",
        "?q=`{}|",
        "#frag",
        "#a<b",
        "#a b",
        "/a?b#c",
    ];

    fn runtime_accepts(probe: Probe) -> bool {
        let task = TaskSpec::new("task", |_ctx| async {}).readiness(Readiness::Probe(probe));
        Supervisor::builder().task(task).build().is_ok()
    }

    fn addresses() -> impl Iterator<Item = String> {
        HOSTS.iter().flat_map(|host| {
            PORTS.iter().map(move |port| match port {
                Some(port) => format!("{host}:{port}"),
                None => (*host).to_owned(),
            })
        })
    }

    #[test]
    fn tcp_addresses_exactly() {
        for address in addresses().chain(["tcp://a:80".to_owned()]) {
            let runtime = runtime_accepts(Probe::tcp(address.as_str()));
            assert_eq!(check_tcp(&address).is_ok(), runtime, "tcp({address:?}): build() accepts it: {runtime}");
        }
    }

    #[test]
    fn http_urls() {
        for scheme in ["http://", "HTTP://", "https://", "ftp://", "", "http:/"] {
            for authority in addresses() {
                for path in PATHS {
                    let url = format!("{scheme}{authority}{path}");
                    let runtime = runtime_accepts(Probe::http(url.as_str()));
                    assert_eq!(check_http(&url).is_ok(), runtime, "http({url:?}): build() accepts it: {runtime}");
                }
            }
        }
        for length in [MAX_URL_LEN, MAX_URL_LEN + 1] {
            let url = format!("http://a/{}", "x".repeat(length - "http://a/".len()));
            assert_eq!(check_http(&url).is_ok(), runtime_accepts(Probe::http(url.as_str())), "{length} bytes");
        }
    }
}
