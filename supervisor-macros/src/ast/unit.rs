//! Reads the option list of a unit (`{ restart = "5s", critical }` in a
//! manifest, or the arguments of `#[supervised(...)]`): each key at most
//! once, only the keys its kind takes, each value into its typed form.

use crate::ast::{ProbeTuning, UnitName, UnitOptions};
use crate::command;
use crate::duration;
use crate::errors::Errors;
use crate::limits;
use crate::options::{self, Number, RawOption, Seen};
use crate::policy;
use crate::probe;
use crate::signal;
use crate::strategy;
use crate::suggest;
use proc_macro2::{Span, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Ident, Lit, LitStr, Path, Token};

/// Where an option list is written; each place takes its own keys.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Place {
    /// `daemon NAME = "..." { ... }`
    Daemon,
    /// `task NAME = EXPR { ... }` and `task path { ... }`
    Task,
    /// `group NAME { ... } { ... }`
    Group,
    /// `#[supervised(...)]`
    Attribute,
}

const PROBE_SETTINGS: &[&str] = &["period", "timeout", "initial_delay", "failures", "successes"];

/// Keys of a unit that runs (a task or a daemon), besides the policy's.
const RUN_KEYS: &[&str] = &[
    "stop_timeout",
    "critical",
    "depends_on",
    "ready",
    "readiness_period",
    "readiness_timeout",
    "readiness_initial_delay",
    "readiness_failures",
    "readiness_successes",
    "liveness",
    "liveness_period",
    "liveness_timeout",
    "liveness_initial_delay",
    "liveness_failures",
    "liveness_successes",
    "watchdog",
];
const DAEMON_KEYS: &[&str] = &["stop_signal", "dir", "env", "success_codes"];
const GROUP_KEYS: &[&str] = &["strategy", "intensity", "period", "critical", "depends_on"];
const ATTRIBUTE_KEYS: &[&str] = &["name", "crate"];

impl Place {
    /// Every key this place takes.
    pub(crate) fn keys(self) -> Vec<&'static str> {
        let own: &[&[&str]] = match self {
            Place::Daemon => &[policy::KEYS, RUN_KEYS, DAEMON_KEYS],
            Place::Task => &[policy::KEYS, RUN_KEYS],
            Place::Group => &[GROUP_KEYS, policy::KEYS],
            Place::Attribute => &[policy::KEYS, RUN_KEYS, ATTRIBUTE_KEYS],
        };
        let keys = own.iter().flat_map(|keys| keys.iter().copied());
        // `depends_on` names siblings: only a manifest knows them.
        keys.filter(|key| self != Place::Attribute || *key != "depends_on").collect()
    }

    fn what(self) -> &'static str {
        match self {
            Place::Daemon => "daemon option",
            Place::Task => "task option",
            Place::Group => "group option",
            Place::Attribute => "#[supervised] option",
        }
    }
}

/// The keys as a message lists them: the probe settings folded into one
/// item each, e.g. `readiness_{period, ...}`.
fn expected(keys: &[&str]) -> String {
    let mut shown: Vec<String> = Vec::new();
    for key in keys {
        let folded = ["readiness_", "liveness_"].iter().find_map(|prefix| {
            key.strip_prefix(prefix).filter(|setting| PROBE_SETTINGS.contains(setting)).map(|_| prefix)
        });
        match folded {
            Some(prefix) if key.ends_with(PROBE_SETTINGS[0]) => {
                shown.push(format!("{prefix}{{{}}}", PROBE_SETTINGS.join(", ")));
            }
            Some(_) => {}
            None => shown.push((*key).to_owned()),
        }
    }
    let shown: Vec<&str> = shown.iter().map(String::as_str).collect();
    suggest::one_of(&shown)
}

/// Reads the options of a unit at `place`, recording every error.
pub(crate) fn read(raw: &[RawOption], place: Place, errors: &mut Errors) -> UnitOptions {
    let keys = place.keys();
    let mut options = UnitOptions::default();
    let mut seen = Seen::default();
    for option in raw {
        if !seen.first(option, errors) {
            continue;
        }
        let name = option.name();
        if !keys.contains(&name.as_str()) {
            errors.push(unknown(option, place, &keys));
            continue;
        }
        let before = errors.count();
        apply(&mut options, &name, option, place, errors);
        if errors.count() > before {
            options.refused.add(name);
        }
    }
    options
}

/// Reads one option whose key `place` takes into its field.
fn apply(options: &mut UnitOptions, name: &str, option: &RawOption, place: Place, errors: &mut Errors) {
    if options.policy.apply(option, errors) {
        return;
    }
    let key = option.key.clone();
    match name {
        "stop_timeout" => options.stop_timeout = errors.take(duration::parse(option)),
        "critical" => options.critical = errors.take(options::flag(option)).map(|critical| (critical, key)),
        "depends_on" => options.depends_on = errors.take(names(option)).unwrap_or_default(),
        "ready" => options.readiness = errors.take(probe::readiness(option)),
        "liveness" => options.liveness = errors.take(probe::liveness(option)),
        "watchdog" => options.watchdog = errors.take(duration::parse_nonzero(option)).map(|d| (d, key)),
        "stop_signal" => options.stop_signal = errors.take(signal::parse(option)),
        "dir" => options.dir = errors.take(working_dir(option)),
        "env" => options.env = errors.take(environment(option)).unwrap_or_default(),
        "success_codes" => options.success_codes = errors.take(exit_codes(option)).map(|codes| (codes, key)),
        "strategy" => options.tree.strategy = errors.take(strategy::parse(option)),
        "intensity" => options.tree.intensity = errors.take(options::intensity(option)).map(|n| (n, key)),
        "period" => options.tree.period = errors.take(duration::parse_nonzero(option)).map(|d| (d, key)),
        "name" => options.name = errors.take(unit_name(option)),
        "crate" => options.krate = errors.take(crate_path(option)),
        _ => {
            if let Some(setting) = name.strip_prefix("readiness_") {
                probe_setting(&mut options.readiness_tuning, Role::Readiness, setting, option, errors);
            } else if let Some(setting) = name.strip_prefix("liveness_") {
                probe_setting(&mut options.liveness_tuning, Role::Liveness, setting, option, errors);
            } else {
                unreachable!("`{name}` is one of the keys of {place:?}")
            }
        }
    }
}

/// What a probe decides: each takes its own range of `successes`.
#[derive(Clone, Copy)]
enum Role {
    Readiness,
    Liveness,
}

fn probe_setting(tuning: &mut ProbeTuning, role: Role, setting: &str, option: &RawOption, errors: &mut Errors) {
    let key = option.key.clone();
    match setting {
        "period" => tuning.period = errors.take(duration::parse_nonzero(option)).map(|d| (d, key)),
        "timeout" => tuning.timeout = errors.take(duration::parse_nonzero(option)).map(|d| (d, key)),
        "initial_delay" => tuning.initial_delay = errors.take(duration::parse(option)).map(|d| (d, key)),
        "failures" => {
            tuning.failures = errors.take(options::count_from(option, limits::PROBE_THRESHOLD_MIN)).map(|n| (n, key));
        }
        "successes" => {
            let successes = match role {
                Role::Readiness => options::count_from(option, limits::PROBE_THRESHOLD_MIN),
                Role::Liveness => liveness_successes(option),
            };
            tuning.successes = errors.take(successes).map(|n| (n, key));
        }
        _ => unreachable!("`{setting}` is a probe setting"),
    }
}

/// `liveness_successes = 1`, the only value `build()` takes: as in
/// Kubernetes, a single success is enough for a run to count as live.
fn liveness_successes(option: &RawOption) -> syn::Result<u32> {
    match options::number(option) {
        Some(Ok(Number::Int(n))) if n == i128::from(limits::LIVENESS_SUCCESSES) => Ok(limits::LIVENESS_SUCCESSES),
        Some(Ok(_)) => Err(option.error(format!(
            "`liveness_successes = {}` is not allowed: a liveness probe counts a run as live after a single success \
             (as in Kubernetes); write `liveness_successes = {}`, or leave it out",
            option.number_text(),
            limits::LIVENESS_SUCCESSES
        ))),
        // Not a number: the reader of counts says what to write.
        _ => options::count_from(option, limits::PROBE_THRESHOLD_MIN),
    }
}

/// The error for a key this place does not take, with what to write instead
/// when the key belongs elsewhere.
fn unknown(option: &RawOption, place: Place, keys: &[&str]) -> syn::Error {
    let name = option.name();
    let elsewhere = match (name.as_str(), place) {
        ("depends_on", Place::Attribute) => Some(
            "`depends_on` names units of the same group, which only the manifest knows: write it there, e.g. `task worker { depends_on = [db] };`".to_owned(),
        ),
        (key, Place::Task | Place::Attribute | Place::Group) if DAEMON_KEYS.contains(&key) => {
            Some(format!("`{name}` is a daemon option: {}", has_no(place, key)))
        }
        ("strategy" | "intensity" | "period", Place::Task | Place::Daemon | Place::Attribute) => Some(format!(
            "`{name}` is an option of a group (or a setting of the whole manifest): it says how a group restarts its units"
        )),
        _ => None,
    };
    match elsewhere.or_else(|| renamed(&name, place, keys)) {
        Some(message) => syn::Error::new(option.key.span(), message),
        None => syn::Error::new(
            option.key.span(),
            format!(
                "unknown {} `{name}`{}; expected {}",
                place.what(),
                suggest::did_you_mean(&name, keys),
                expected(keys)
            ),
        ),
    }
}

/// A name of the builder API (or its getters) for what the macros name
/// otherwise: the keys that stand for it, and when to write which.
struct Renamed {
    builder: &'static str,
    keys: &'static [&'static str],
    which: &'static str,
}

/// The builder's names that edit distance cannot lead to the macros' own:
/// `max_restarts` is far from `max`.
const RENAMED: &[Renamed] = &[
    Renamed { builder: "max_restarts", keys: &["max"], which: "" },
    Renamed { builder: "restart_limit", keys: &["max"], which: "" },
    Renamed { builder: "delay", keys: &["restart"], which: ", the delay before a restart" },
    Renamed { builder: "base_delay", keys: &["restart"], which: ", the delay before a restart" },
    Renamed { builder: "restart_on", keys: &["on"], which: "" },
    Renamed { builder: "current_dir", keys: &["dir"], which: "" },
    Renamed { builder: "readiness", keys: &["ready"], which: "" },
    Renamed {
        builder: "failure_threshold",
        keys: &["readiness_failures", "liveness_failures"],
        which: ", after the probe it tunes",
    },
    Renamed {
        builder: "success_threshold",
        keys: &["readiness_successes", "liveness_successes"],
        which: ", after the probe it tunes",
    },
    Renamed {
        builder: "initial_delay",
        keys: &["readiness_initial_delay", "liveness_initial_delay"],
        which: ", after the probe it tunes",
    },
    Renamed {
        builder: "timeout",
        keys: &["stop_timeout", "readiness_timeout", "liveness_timeout"],
        which: ": how long a stop waits, or a probe's check may take",
    },
];

/// A value for `key`, for an example.
fn example_value(key: &str) -> &'static str {
    match key {
        "max" | "readiness_failures" | "liveness_failures" => "3",
        "readiness_successes" => "2",
        "liveness_successes" => "1",
        "restart" | "readiness_initial_delay" | "liveness_initial_delay" => "\"5s\"",
        "stop_timeout" => "\"10s\"",
        "readiness_timeout" | "liveness_timeout" => "\"1s\"",
        "on" => "\"failure\"",
        "dir" => "\"/var/lib/worker\"",
        "ready" => "notified",
        _ => unreachable!("`{key}` has an example"),
    }
}

/// The message for a name of the builder API that the macros spell
/// otherwise (`max_restarts` for `max`), saying what to write instead.
fn renamed(name: &str, place: Place, keys: &[&str]) -> Option<String> {
    let what = place.what();
    let who = if place == Place::Attribute { "#[supervised]" } else { "the manifest" };
    match name {
        "restart_policy" => {
            return Some(format!(
                "unknown {what} `{name}`: {who} takes the restart policy's settings as options of their own, \
                 e.g. `restart = \"5s\", max = 3, on = \"failure\"`"
            ));
        }
        "args" | "arg" => {
            return Some(format!(
                "unknown {what} `{name}`: a daemon's arguments are written in its command, \
                 e.g. `daemon worker = [\"worker\", \"--port\", \"8080\"];`"
            ));
        }
        _ => {}
    }
    let renamed = RENAMED.iter().find(|renamed| renamed.builder == name)?;
    let taken: Vec<&str> = renamed.keys.iter().copied().filter(|key| keys.contains(key)).collect();
    let which = renamed.which;
    if let Some(first) = taken.first() {
        let example = example_value(first);
        return Some(format!(
            "unknown {what} `{name}`: {who} calls it {}{which} (e.g. `{first} = {example}`)",
            suggest::one_of(&taken)
        ));
    }
    let all = suggest::one_of(renamed.keys);
    let message = match renamed.keys {
        [key] if DAEMON_KEYS.contains(key) && place != Place::Daemon => {
            format!("{who} calls it {all}, a daemon option: {}", has_no(place, key))
        }
        keys if keys.iter().all(|key| DAEMON_KEYS.contains(key)) => format!("{who} calls it {all}, a daemon option"),
        _ => format!("{who} calls it {all}{which}, an option of a task or a daemon"),
    };
    Some(format!("unknown {what} `{name}`: {message}"))
}

/// Why a task, or a group, has no use for the daemon option `key`, one
/// of [`DAEMON_KEYS`].
fn has_no(place: Place, key: &str) -> &'static str {
    if place == Place::Group {
        return "a group runs no program of its own; set it on each daemon of the group";
    }
    task_has_no(key)
}

/// Why a task has no use for the daemon option `key`, one of
/// [`DAEMON_KEYS`].
fn task_has_no(key: &str) -> &'static str {
    match key {
        "stop_signal" => "a task is stopped by cancelling its `Context`",
        "dir" | "env" => "a task runs inside this process, with its environment and working directory",
        "success_codes" => "a task succeeds by returning `Ok(())` (or `()`), not with an exit code",
        _ => unreachable!("`{key}` is a daemon option"),
    }
}

/// A unit name: an identifier or a string literal.
pub(crate) fn parse_name(input: ParseStream<'_>, kind: &str) -> syn::Result<UnitName> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        if lit.value().trim().is_empty() {
            return Err(syn::Error::new(lit.span(), "the unit name cannot be empty"));
        }
        return Ok(UnitName { value: lit.value(), span: lit.span(), end: None });
    }
    let expected = format!("expected the {kind}'s name after `{kind}`, e.g. `{kind} worker`");
    if input.is_empty() {
        // syn's error at the end, which the manifest moves onto the keyword.
        return Err(input.error(expected));
    }
    let ident = input.call(Ident::parse_any).map_err(|error| syn::Error::new(error.span(), expected))?;
    Ok(UnitName { value: ident.unraw().to_string(), span: ident.span(), end: None })
}

/// `depends_on = [a, "b-c"]`.
fn names(option: &RawOption) -> syn::Result<Vec<UnitName>> {
    const EXAMPLE: &str = "`depends_on = [postgres, migrate]`";
    if option.is_bare() {
        return Err(option.missing_value());
    }
    let mut tokens = option.value.clone().into_iter();
    let list = match (tokens.next(), tokens.next()) {
        (Some(TokenTree::Group(group)), None) if group.delimiter() == proc_macro2::Delimiter::Bracket => group,
        (Some(TokenTree::Ident(ident)), None) => {
            let name = ident.unraw();
            return Err(syn::Error::new(
                ident.span(),
                format!("`depends_on` takes a list of names: write `depends_on = [{name}]`"),
            ));
        }
        _ => return Err(option.error(format!("`depends_on` takes a list of unit names, e.g. {EXAMPLE}"))),
    };
    if let Some(error) = bare_name_with_punctuation(&list.stream()).or_else(|| names_without_comma(&list.stream())) {
        return Err(error);
    }
    (|input: ParseStream<'_>| Punctuated::<UnitName, Token![,]>::parse_terminated_with(input, dependency))
        .parse2(list.stream())
        .map(|names| names.into_iter().collect())
        .map_err(|error| {
            syn::Error::new(
                error.span(),
                format!("`depends_on` takes names of units of the same group, e.g. {EXAMPLE}"),
            )
        })
}

/// The error for two names of a `depends_on` without the `,` between them
/// (`[db cache]`), on the second, which the list's parser would call no
/// name of a unit.
fn names_without_comma(list: &proc_macro2::TokenStream) -> Option<syn::Error> {
    let is_name = |token: &TokenTree| match token {
        TokenTree::Ident(_) => true,
        TokenTree::Literal(literal) => matches!(Lit::new(literal.clone()), Lit::Str(_)),
        _ => false,
    };
    let tokens: Vec<TokenTree> = list.clone().into_iter().collect();
    tokens.windows(2).find(|pair| pair.iter().all(is_name)).map(|pair| {
        syn::Error::new(
            pair[1].span(),
            format!(
                "expected `,` between `{}` and `{}`: `depends_on` lists names separated by commas, e.g. \
                 `depends_on = [postgres, migrate]`",
                pair[0], pair[1]
            ),
        )
    })
}

/// The error for a name with `-` or `.` in it written bare in a
/// `depends_on` (`web-1`, as `daemon "web-1"` names a unit): it reads as
/// `web - 1`, and the fix is the name as a string.
fn bare_name_with_punctuation(list: &proc_macro2::TokenStream) -> Option<syn::Error> {
    let mut entries = vec![Vec::new()];
    for token in list.clone() {
        match &token {
            TokenTree::Punct(punct) if punct.as_char() == ',' => entries.push(Vec::new()),
            _ => entries.last_mut().expect("one entry at least").push(token),
        }
    }
    let joins = |token: &TokenTree| matches!(token, TokenTree::Punct(punct) if matches!(punct.as_char(), '-' | '.'));
    let entry = entries.into_iter().find(|entry| {
        matches!(entry.first(), Some(TokenTree::Ident(_)))
            && entry.iter().any(joins)
            && entry.iter().all(|token| matches!(token, TokenTree::Ident(_) | TokenTree::Literal(_)) || joins(token))
    })?;
    let written: String = entry.iter().map(ToString::to_string).collect();
    let tokens: proc_macro2::TokenStream = entry.into_iter().collect();
    Some(syn::Error::new_spanned(
        tokens,
        format!(
            "`{written}` is no identifier, and a name that is none is written as a string: `depends_on = [{written:?}]`"
        ),
    ))
}

/// A name in a `depends_on`; or a path such as `storage/postgres`, read
/// whole for the check of the tree to say what to depend on instead.
fn dependency(input: ParseStream<'_>) -> syn::Result<UnitName> {
    let mut name: UnitName = input.parse()?;
    while input.peek(Token![/]) {
        input.parse::<Token![/]>()?;
        let part: UnitName = input.parse()?;
        name.value = format!("{}/{}", name.value, part.value);
        name.end = Some(part.end.unwrap_or(part.span));
    }
    Ok(name)
}

impl syn::parse::Parse for UnitName {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        parse_name(input, "unit")
    }
}

/// `name = "..."` of `#[supervised]`.
fn unit_name(option: &RawOption) -> syn::Result<LitStr> {
    let lit = options::string(option)?;
    if lit.value().trim().is_empty() {
        return Err(syn::Error::new(lit.span(), "the unit name cannot be empty"));
    }
    Ok(lit)
}

/// `crate = "path"`: where the runtime crate is, when it is renamed.
pub(crate) fn crate_path(option: &RawOption) -> syn::Result<Path> {
    let message = "`crate` takes the path of the supervisor crate as a string, e.g. `crate = \"supervisor\"`";
    let lit = options::string(option).map_err(|_| option.error(message))?;
    let path = lit.parse::<Path>().map_err(|_| syn::Error::new(lit.span(), message))?;
    // A crate's path names a module: `supervisor<T>` would be pasted
    // before `::__private` and fail there, in rustc's words.
    if path.segments.iter().any(|segment| !segment.arguments.is_none()) {
        return Err(syn::Error::new(lit.span(), format!("{message}, without generic arguments")));
    }
    Ok(path)
}

fn working_dir(option: &RawOption) -> syn::Result<LitStr> {
    let message = "`dir` takes the working directory as a string, e.g. `dir = \"/var/lib/worker\"`";
    let lit = options::string(option).map_err(|_| option.error(message))?;
    if lit.value().is_empty() {
        return Err(syn::Error::new(lit.span(), message));
    }
    if lit.value().contains('\0') {
        return Err(syn::Error::new(lit.span(), "the working directory contains a NUL byte, which no path can"));
    }
    if let Some(expansion) = command::path_expansion(&lit.value()) {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "`{expansion}` is expanded by a shell, but nothing expands the working directory: the daemon \
                 would be started in {:?} as written; write the absolute path, e.g. `dir = \"/var/lib/worker\"`",
                lit.value()
            ),
        ));
    }
    Ok(lit)
}

/// How `env` is written, for its messages.
const ENV_EXAMPLE: &str = "`env = { RUST_LOG = \"info\", PORT = \"8080\" }`";

/// `env = { KEY = "value", ... }`.
fn environment(option: &RawOption) -> syn::Result<Vec<(String, LitStr)>> {
    if let Some(error) = variables_without_comma(&option.value) {
        return Err(error);
    }
    let pairs = (|input: ParseStream<'_>| {
        let content;
        syn::braced!(content in input);
        Punctuated::<(String, Span, LitStr), Token![,]>::parse_terminated_with(&content, |input| {
            let (key, span) = if input.peek(LitStr) {
                let lit: LitStr = input.parse()?;
                (lit.value(), lit.span())
            } else {
                let ident = input.call(Ident::parse_any)?;
                (ident.unraw().to_string(), ident.span())
            };
            input.parse::<Token![=]>()?;
            let value: LitStr = input.parse()?;
            Ok((key, span, value))
        })
    })
    .parse2(option.value.clone())
    .map_err(|error| {
        syn::Error::new(error.span(), format!("`env` takes a map of variables to strings: {ENV_EXAMPLE}"))
    })?;
    let mut errors = Errors::default();
    let mut env: Vec<(String, LitStr)> = Vec::new();
    let mut first_spans: Vec<Span> = Vec::new();
    for (key, span, value) in pairs {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            errors.push(syn::Error::new(
                span,
                format!("invalid environment variable name {key:?}: it must be non-empty, without `=`"),
            ));
        } else if value.value().contains('\0') {
            errors.push(syn::Error::new(
                value.span(),
                format!("the value of `{key}` contains a NUL byte, which no environment variable can hold"),
            ));
        } else if let Some(index) = env.iter().position(|(seen, _)| *seen == key) {
            errors.push(syn::Error::new(span, format!("`{key}` is set twice in `env`; keep only one")));
            errors.push(syn::Error::new(first_spans[index], format!("the first `{key}` is here")));
        } else {
            env.push((key, value));
            first_spans.push(span);
        }
    }
    errors.into_result().map(|()| env)
}

/// The error for two variables of an `env` without the `,` between them
/// (`env = { A = "1" B = "2" }`), on the second, where the map's parser
/// said only that `env` takes a map.
fn variables_without_comma(value: &proc_macro2::TokenStream) -> Option<syn::Error> {
    let Some(TokenTree::Group(map)) = value.clone().into_iter().next() else { return None };
    let tokens: Vec<TokenTree> = map.stream().into_iter().collect();
    tokens.windows(4).find_map(|window| match window {
        [
            key,
            TokenTree::Punct(equals),
            TokenTree::Literal(value),
            next @ (TokenTree::Ident(_) | TokenTree::Literal(_)),
        ] if equals.as_char() == '=' && matches!(Lit::new(value.clone()), Lit::Str(_)) => Some(syn::Error::new(
            next.span(),
            format!(
                "expected `,` between `{key} = {value}` and `{next}`: the variables of `env` are separated by \
                     commas, e.g. {ENV_EXAMPLE}"
            ),
        )),
        _ => None,
    })
}

/// `success_codes = [0, 143]`.
fn exit_codes(option: &RawOption) -> syn::Result<Vec<(i32, Span)>> {
    const EXAMPLE: &str = "`success_codes = [0, 143]`";
    let (min, max) = limits::EXIT_CODES.into_inner();
    if let Some(error) = codes_without_comma(&option.value) {
        return Err(error);
    }
    let lits = (|input: ParseStream<'_>| {
        let content;
        syn::bracketed!(content in input);
        Punctuated::<(bool, Lit), Token![,]>::parse_terminated_with(&content, options::signed_literal)
    })
    .parse2(option.value.clone())
    .map_err(|_| option.error(format!("`success_codes` takes a list of exit codes, e.g. {EXAMPLE}")))?;
    if lits.is_empty() {
        return Err(option
            .error(format!("`success_codes` is empty: list the exit codes that count as success, e.g. {EXAMPLE}")));
    }
    let mut errors = Errors::default();
    let mut codes: Vec<(i32, Span)> = Vec::new();
    for (minus, lit) in lits {
        let span = lit.span();
        let code = match &lit {
            Lit::Int(int) if !options::FLOAT_SUFFIXES.contains(&int.suffix()) => {
                int.base10_parse::<i128>().ok().map(|n| if minus { -n } else { n })
            }
            _ => None,
        };
        let fix = |code: i128| format!("write {code}, without a suffix");
        if let Some(Err(message)) = code.map(|code| options::suffix_fits(&lit, &Number::Int(code), &fix(code))) {
            let text = quote::ToTokens::to_token_stream(&lit);
            errors.push(syn::Error::new(span, format!("exit code {}{text}: {message}", if minus { "-" } else { "" })));
            continue;
        }
        match code {
            Some(code) if (min..=max).contains(&code) => {
                let code = i32::try_from(code).expect("exit codes fit in i32");
                if let Some((_, first)) = codes.iter().find(|(seen, _)| *seen == code) {
                    errors.push(syn::Error::new(span, format!("exit code {code} is listed twice; keep only one")));
                    errors.push(syn::Error::new(*first, format!("the first {code} is here")));
                } else {
                    codes.push((code, span));
                }
            }
            Some(code) => errors.push(syn::Error::new(
                span,
                format!("{code} is not an exit code: a process exits with a code from {min} to {max}"),
            )),
            None => errors.push(syn::Error::new(
                span,
                format!("`success_codes` takes whole numbers from {min} to {max}, e.g. {EXAMPLE}"),
            )),
        }
    }
    errors.into_result().map(|()| codes)
}

/// The error for two exit codes of a `success_codes` without the `,`
/// between them (`[0 143]`), on the second, where the list's parser said
/// only that it takes a list of exit codes.
fn codes_without_comma(value: &proc_macro2::TokenStream) -> Option<syn::Error> {
    let Some(TokenTree::Group(list)) = value.clone().into_iter().next() else { return None };
    let tokens: Vec<TokenTree> = list.stream().into_iter().collect();
    let at = tokens.windows(2).position(|pair| match pair {
        [TokenTree::Literal(_), TokenTree::Literal(_)] => true,
        [TokenTree::Literal(_), TokenTree::Punct(minus)] => minus.as_char() == '-',
        _ => false,
    })?;
    let (code, next) = (&tokens[at], &tokens[at + 1]);
    // A negative code is written with its minus, `-1`.
    let next_text = match (next, tokens.get(at + 2)) {
        (TokenTree::Punct(_), Some(number)) => format!("-{number}"),
        _ => next.to_string(),
    };
    Some(syn::Error::new(
        next.span(),
        format!(
            "expected `,` between `{code}` and `{next_text}`: `success_codes` lists exit codes separated by commas, \
             e.g. `success_codes = [0, 143]`"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::tests::options;
    use quote::quote;

    fn read_at(place: Place, tokens: proc_macro2::TokenStream) -> (UnitOptions, Vec<String>) {
        let mut errors = Errors::default();
        let options = read(&options(tokens), place, &mut errors);
        let messages = match errors.into_result() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        };
        (options, messages)
    }

    #[test]
    fn reads_every_unit_option() {
        let (options, messages) = read_at(
            Place::Daemon,
            quote!(
                restart = "1s",
                stop_timeout = "2s",
                critical,
                depends_on = [db, "other-unit"],
                ready = tcp("127.0.0.1:5432"),
                readiness_period = "1s",
                readiness_timeout = "500ms",
                readiness_initial_delay = "0s",
                readiness_failures = 2,
                readiness_successes = 1,
                liveness = http("http://a/health"),
                liveness_period = "10s",
                liveness_failures = 3,
                watchdog = "30s",
                stop_signal = "INT",
                dir = "/tmp",
                env = { A = "b" },
                success_codes = [0, 143],
            ),
        );
        assert!(messages.is_empty(), "{messages:?}");
        assert!(options.policy.delay.is_some() && options.stop_timeout.is_some());
        assert!(matches!(options.critical, Some((true, _))));
        let names: Vec<&str> = options.depends_on.iter().map(|name| name.value.as_str()).collect();
        assert_eq!(names, ["db", "other-unit"]);
        assert!(options.readiness.is_some() && options.liveness.is_some());
        assert_eq!(options.readiness_tuning.keys().len(), 5);
        assert_eq!(options.liveness_tuning.keys().len(), 2);
        assert!(options.watchdog.is_some() && options.stop_signal.is_some() && options.dir.is_some());
        let codes: Vec<i32> = options.success_codes.unwrap().0.iter().map(|(code, _)| *code).collect();
        assert_eq!(codes, [0, 143]);
    }

    #[test]
    fn reads_group_options() {
        let (options, messages) = read_at(
            Place::Group,
            quote!(strategy = "rest_for_one", intensity = 3, period = "30s", restart = "5s", max = 2, critical = false),
        );
        assert!(messages.is_empty(), "{messages:?}");
        assert!(options.tree.strategy.is_some() && options.tree.intensity.is_some() && options.tree.period.is_some());
        assert!(matches!(options.critical, Some((false, _))));
    }

    #[test]
    fn each_place_takes_its_own_keys() {
        let (_, messages) = read_at(Place::Task, quote!(stop_signal = "INT"));
        assert_eq!(messages, ["`stop_signal` is a daemon option: a task is stopped by cancelling its `Context`"]);
        // Each daemon option with its own reason, where all gave that of
        // `stop_signal`.
        let (_, messages) = read_at(
            Place::Attribute,
            quote!(env = { A = "b" }, dir = "/srv", success_codes = [0], stop_signal = "INT"),
        );
        assert_eq!(
            messages,
            [
                "`env` is a daemon option: a task runs inside this process, with its environment and working directory",
                "`dir` is a daemon option: a task runs inside this process, with its environment and working directory",
                "`success_codes` is a daemon option: a task succeeds by returning `Ok(())` (or `()`), not with an exit \
                 code",
                "`stop_signal` is a daemon option: a task is stopped by cancelling its `Context`",
            ]
        );
        for key in DAEMON_KEYS {
            assert!(!task_has_no(key).is_empty(), "{key}");
        }
        let (_, messages) = read_at(Place::Attribute, quote!(depends_on = [db]));
        assert!(messages[0].starts_with("`depends_on` names units of the same group"), "{messages:?}");
        // A group is told why a group, not a task, has no use for it.
        let (_, messages) = read_at(Place::Group, quote!(dir = "/srv", current_dir = "/srv"));
        assert_eq!(
            messages,
            [
                "`dir` is a daemon option: a group runs no program of its own; set it on each daemon of the group",
                "unknown group option `current_dir`: the manifest calls it `dir`, a daemon option: a group runs no \
                 program of its own; set it on each daemon of the group",
            ]
        );
        let (_, messages) = read_at(Place::Group, quote!(stop_timeout = "1s"));
        assert!(messages[0].starts_with("unknown group option `stop_timeout`; expected `strategy`"), "{messages:?}");
        let (_, messages) = read_at(Place::Daemon, quote!(strategy = "one_for_all"));
        assert!(messages[0].starts_with("`strategy` is an option of a group"), "{messages:?}");
    }

    /// The builder's names for options the macros name otherwise are told
    /// the macros' names, where edit distance found none and the message
    /// listed every key.
    #[test]
    fn builder_names_are_told_the_macros_names() {
        let message = |place, tokens| read_at(place, tokens).1.join(" | ");
        assert_eq!(
            message(Place::Task, quote!(max_restarts = 3)),
            "unknown task option `max_restarts`: the manifest calls it `max` (e.g. `max = 3`)"
        );
        assert_eq!(
            message(Place::Attribute, quote!(delay = "5s")),
            "unknown #[supervised] option `delay`: #[supervised] calls it `restart`, the delay before a restart \
             (e.g. `restart = \"5s\"`)"
        );
        assert_eq!(
            message(Place::Daemon, quote!(current_dir = "/srv")),
            "unknown daemon option `current_dir`: the manifest calls it `dir` (e.g. `dir = \"/var/lib/worker\"`)"
        );
        assert_eq!(
            message(Place::Task, quote!(current_dir = "/srv")),
            "unknown task option `current_dir`: the manifest calls it `dir`, a daemon option: a task runs inside this \
             process, with its environment and working directory"
        );
        assert_eq!(
            message(Place::Group, quote!(readiness = notified)),
            "unknown group option `readiness`: the manifest calls it `ready`, an option of a task or a daemon"
        );
        assert_eq!(
            message(Place::Group, quote!(max_restarts = 3)),
            "unknown group option `max_restarts`: the manifest calls it `max` (e.g. `max = 3`)"
        );
        assert_eq!(
            message(Place::Task, quote!(failure_threshold = 3)),
            "unknown task option `failure_threshold`: the manifest calls it `readiness_failures` or \
             `liveness_failures`, after the probe it tunes (e.g. `readiness_failures = 3`)"
        );
        assert!(
            message(Place::Daemon, quote!(args = ["a"])).contains("a daemon's arguments are written in its command")
        );
        assert!(message(Place::Task, quote!(restart_policy = "x")).contains("as options of their own"));
        // Each example is read without an error where it is suggested.
        for renamed in RENAMED {
            for place in [Place::Daemon, Place::Task, Place::Group, Place::Attribute] {
                let text = message(place, format!("{} = 1", renamed.builder).parse().unwrap());
                if let Some(example) = text.split("(e.g. `").nth(1).and_then(|rest| rest.split('`').next()) {
                    let (_, errors) = read_at(place, example.parse().unwrap());
                    assert!(errors.is_empty(), "{example} at {place:?}: {errors:?}");
                }
            }
        }
    }

    /// The names of [`RENAMED`] are the builder API's: each call below
    /// compiles only while they are.
    #[test]
    fn renamed_names_are_the_builders() {
        let second = std::time::Duration::from_secs(1);
        let policy = supervisor::RestartPolicy::new().max_restarts(3).delay(second);
        let _ = (policy.restart_limit(), policy.base_delay(), policy.restart_on());
        let probe = supervisor::Probe::tcp("127.0.0.1:1")
            .failure_threshold(3)
            .success_threshold(1)
            .initial_delay(second)
            .timeout(second);
        let _ = supervisor::DaemonSpec::new("d", "true")
            .current_dir("/")
            .args(["a"])
            .arg("b")
            .readiness(supervisor::Readiness::Probe(probe))
            .restart(policy);
        let builders: Vec<&str> = RENAMED.iter().map(|renamed| renamed.builder).collect();
        assert_eq!(
            builders,
            [
                "max_restarts",
                "restart_limit",
                "delay",
                "base_delay",
                "restart_on",
                "current_dir",
                "readiness",
                "failure_threshold",
                "success_threshold",
                "initial_delay",
                "timeout"
            ]
        );
        // Each stands for keys that some place takes.
        let every: Vec<&str> = [Place::Daemon, Place::Group].into_iter().flat_map(Place::keys).collect();
        for renamed in RENAMED {
            assert!(renamed.keys.iter().all(|key| every.contains(key)), "{}", renamed.builder);
            assert!(renamed.keys.iter().all(|key| !example_value(key).is_empty()));
        }
    }

    #[test]
    fn unknown_keys_list_the_probe_settings_once() {
        let (_, messages) = read_at(Place::Task, quote!(liveness_perod = "1s"));
        assert_eq!(messages.len(), 1);
        assert!(messages[0].starts_with("unknown task option `liveness_perod` (did you mean `liveness_period`?)"));
        assert!(
            messages[0].contains(
                "`ready`, `readiness_{period, timeout, initial_delay, failures, successes}`, `liveness`, `liveness_{period, timeout, initial_delay, failures, successes}` or `watchdog`"
            ),
            "{}",
            messages[0]
        );
    }

    #[test]
    fn value_errors() {
        let error = |place, tokens| read_at(place, tokens).1.join(" | ");
        assert!(error(Place::Task, quote!(depends_on = db)).contains("write `depends_on = [db]`"));
        assert!(error(Place::Task, quote!(depends_on = [1])).contains("`depends_on` takes names of units"));
        assert_eq!(
            error(Place::Task, quote!(depends_on = [db cache])),
            "expected `,` between `db` and `cache`: `depends_on` lists names separated by commas, e.g. \
             `depends_on = [postgres, migrate]`"
        );
        assert!(
            error(Place::Task, quote!(depends_on = [db, "web-1" "api"]))
                .starts_with("expected `,` between `\"web-1\"` and `\"api\"`")
        );
        assert!(error(Place::Task, quote!(critical = 1)).contains("`critical` is a flag"));
        assert_eq!(
            error(Place::Daemon, quote!(env = { A = "1" B = "2", "C" = "3" })),
            "expected `,` between `A = \"1\"` and `B`: the variables of `env` are separated by commas, e.g. \
             `env = { RUST_LOG = \"info\", PORT = \"8080\" }`"
        );
        assert!(
            error(Place::Daemon, quote!(env = { A = "1", B = "2" "C" = "3" }))
                .starts_with("expected `,` between `B = \"2\"` and `\"C\"`")
        );
        assert!(error(Place::Task, quote!(watchdog = "0s")).contains("longer than zero"));
        assert!(error(Place::Task, quote!(readiness_failures = 0)).contains("from 1 to"));
        assert!(error(Place::Group, quote!(intensity = -1)).contains("out of range"));
        assert!(error(Place::Group, quote!(intensity = 0)).starts_with("`intensity = 0` allows no restart"));
        assert!(
            error(Place::Task, quote!(liveness_successes = 2))
                .starts_with("`liveness_successes = 2` is not allowed: a liveness probe counts a run as live")
        );
        assert!(error(Place::Task, quote!(liveness_successes = 0)).contains("write `liveness_successes = 1`"));
        assert!(error(Place::Task, quote!(liveness_successes = "1")).contains("takes a whole number"));
        assert!(error(Place::Task, quote!(readiness_successes = 2)).is_empty());
        assert!(error(Place::Daemon, quote!(success_codes = [])).contains("`success_codes` is empty"));
        assert!(error(Place::Daemon, quote!(success_codes = [256])).contains("256 is not an exit code"));
        assert!(error(Place::Daemon, quote!(success_codes = [-1])).contains("-1 is not an exit code"));
        assert!(error(Place::Daemon, quote!(success_codes = [--1])).contains("takes a list of exit codes"));
        assert!(error(Place::Daemon, quote!(success_codes = [0, 0])).contains("exit code 0 is listed twice"));
        assert!(error(Place::Daemon, quote!(success_codes = 0)).contains("takes a list of exit codes"));
        assert_eq!(
            error(Place::Daemon, quote!(success_codes = [0, 1 143])),
            "expected `,` between `1` and `143`: `success_codes` lists exit codes separated by commas, e.g. \
             `success_codes = [0, 143]`"
        );
        assert!(error(Place::Daemon, quote!(success_codes = [0 - 1])).starts_with("expected `,` between `0` and `-1`"));
        assert!(error(Place::Task, quote!(restart = "1s", restart = "2s")).contains("`restart` is given twice"));
    }

    /// A name with `-` or `.` written bare in a `depends_on` is told to be
    /// a string, on the whole name, where the list was called wrong on its
    /// `-`.
    #[test]
    fn a_bare_name_with_a_dash_is_told_to_be_a_string() {
        let (options, messages) = read_at(Place::Task, quote!(depends_on = [db, web - 1, "api.v2"]));
        assert_eq!(
            messages,
            ["`web-1` is no identifier, and a name that is none is written as a string: `depends_on = [\"web-1\"]`"]
        );
        assert!(options.depends_on.is_empty());
        let (_, messages) = read_at(Place::Task, quote!(depends_on = [api.v2]));
        assert!(messages[0].starts_with("`api.v2` is no identifier"), "{messages:?}");
        // A path is read whole, for the advice of the tree's check.
        assert!(read_at(Place::Task, quote!(depends_on = [g / web])).1.is_empty());
    }

    #[test]
    fn refused_values_are_noted() {
        let (options, messages) = read_at(Place::Group, quote!(intensity = 0, period = "1s", window = "0s"));
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(options.refused.contains("intensity") && options.refused.contains("window"));
        assert!(!options.refused.contains("period"));
    }

    /// Whether the macros accept the options at `place`.
    fn macro_accepts(place: Place, tokens: proc_macro2::TokenStream) -> bool {
        read_at(place, tokens).1.is_empty()
    }

    /// The runtime's `build()` accepts exactly the intensities the macros
    /// accept, at and beyond the bound, in a group and in the root.
    #[test]
    fn intensities() {
        let min = limits::INTENSITY_MIN;
        for n in [min - 1, min, min + 1, u32::MAX] {
            let period = std::time::Duration::from_secs(1);
            let group = supervisor::GroupSpec::new("group").intensity(n, period).task(task());
            let runtime_accepts = supervisor::Supervisor::builder().group(group).build().is_ok();
            let root_accepts = supervisor::Supervisor::builder().intensity(n, period).task(task()).build().is_ok();
            assert_eq!(root_accepts, runtime_accepts, "intensity = {n}");
            assert_eq!(macro_accepts(Place::Group, quote!(intensity = #n)), runtime_accepts, "intensity = {n}");
        }
    }

    /// The runtime's `build()` accepts exactly the success thresholds of
    /// probes that the macros accept.
    #[test]
    fn probe_thresholds() {
        for n in [0_u32, 1, 2, 3] {
            let probe = || supervisor::Probe::tcp("127.0.0.1:5432").success_threshold(n);
            let accepts = |spec: supervisor::TaskSpec| supervisor::Supervisor::builder().task(spec).build().is_ok();
            let readiness = task().readiness(supervisor::Readiness::Probe(probe()));
            let tokens = quote!(ready = tcp("127.0.0.1:5432"), readiness_successes = #n);
            assert_eq!(macro_accepts(Place::Task, tokens), accepts(readiness), "readiness_successes = {n}");
            let tokens = quote!(liveness = tcp("127.0.0.1:5432"), liveness_successes = #n);
            assert_eq!(
                macro_accepts(Place::Task, tokens),
                accepts(task().liveness(probe())),
                "liveness_successes = {n}"
            );
        }
    }

    fn task() -> supervisor::TaskSpec {
        supervisor::TaskSpec::new("task", |_ctx| async {})
    }

    /// The runtime's `build()` accepts exactly the exit codes the macros
    /// accept, at and beyond each bound.
    #[test]
    fn exit_codes_with_suffixes() {
        let read = |tokens| {
            let mut errors = Errors::default();
            let options = read(&options(tokens), Place::Daemon, &mut errors);
            let messages = errors.into_result().err().map(|error| error.to_string());
            (
                options.success_codes.map(|(codes, _)| codes.into_iter().map(|(code, _)| code).collect::<Vec<_>>()),
                messages,
            )
        };
        assert_eq!(read(quote!(success_codes = [0u8, 143i32])).0, Some(vec![0, 143]));
        assert_eq!(
            read(quote!(success_codes = [-1u8])).1.as_deref(),
            Some(
                "exit code -1u8: the number does not fit in `u8`, the type its suffix gives it; write -1, without a suffix"
            )
        );
        assert!(read(quote!(success_codes = [1f32])).1.unwrap().starts_with("`success_codes` takes whole numbers"));
    }

    #[test]
    fn exit_codes() {
        let macro_accepts = |code: i128| {
            let literal = proc_macro2::Literal::i128_unsuffixed(code.abs());
            let tokens =
                if code < 0 { quote!(success_codes = [-#literal]) } else { quote!(success_codes = [#literal]) };
            let mut errors = Errors::default();
            let options = read(&options(tokens), Place::Daemon, &mut errors);
            errors.into_result().is_ok() && options.success_codes.is_some()
        };
        let runtime_accepts = |code: i128| {
            let code = i32::try_from(code).expect("the codes tried fit in i32");
            supervisor::Supervisor::builder()
                .daemon(supervisor::DaemonSpec::new("daemon", "true").success_codes([code]))
                .build()
                .is_ok()
        };
        let (min, max) = limits::EXIT_CODES.into_inner();
        for code in [min - 1, min, min + 1, (min + max) / 2, max - 1, max, max + 1, -143, 1_000] {
            assert_eq!(macro_accepts(code), runtime_accepts(code), "success_codes = [{code}]");
        }
        assert!(macro_accepts(min) && macro_accepts(max) && !macro_accepts(max + 1));
        assert!(!macro_accepts(i128::from(i32::MAX) + 1), "a code beyond i32 is an error, not a wrap");
    }
}
