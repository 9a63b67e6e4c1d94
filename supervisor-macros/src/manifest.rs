//! `supervise! { ... }`: parses the manifest entry by entry, recovering at
//! each `;` so that every error is reported, and checks names and options.

use crate::command::{self, Command};
use crate::duration::{self, DurationValue};
use crate::errors::Errors;
use crate::options::{self, RawOption, Seen};
use crate::policy::{self, Policy};
use crate::signal::{self, SignalValue};
use crate::suggest;
use crate::supervised::crate_path;
use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Path, Token, token};

const KINDS: &[&str] = &["daemon", "task"];
const SETTINGS: &[&str] = &["shutdown_timeout", "shutdown_order", "crate"];
const SHUTDOWN_ORDERS: &[&str] = &["sequential", "concurrent"];
const DAEMON_KEYS: &[&str] = &["stop_timeout", "stop_signal", "dir", "env"];
const TASK_KEYS: &[&str] = &["stop_timeout"];
const ENTRY_EXAMPLE: &str = "`daemon NAME = \"command\";`, `task NAME;`, `task NAME = path_or_closure;` or a setting such as `shutdown_timeout = \"30s\";`";

/// A whole manifest, keeping only the parts that were valid.
#[derive(Default)]
pub(crate) struct Manifest {
    pub(crate) krate: Option<Path>,
    pub(crate) shutdown_timeout: Option<DurationValue>,
    /// `Sequential` or `Concurrent`: the `ShutdownOrder` variant to name.
    pub(crate) shutdown_order: Option<Ident>,
    pub(crate) entries: Vec<Entry>,
}

/// One unit of the manifest.
pub(crate) enum Entry {
    Daemon(Daemon),
    /// `task NAME = EXPR { ... };`
    Task(Task),
    /// `task path;`: an `#[supervised]` fn with its own policy.
    Supervised(Path),
}

/// A unit name written in the manifest.
pub(crate) struct UnitName {
    pub(crate) value: String,
    pub(crate) span: Span,
}

pub(crate) struct Daemon {
    pub(crate) name: UnitName,
    pub(crate) command: Command,
    pub(crate) policy: Policy,
    pub(crate) stop_timeout: Option<DurationValue>,
    pub(crate) stop_signal: Option<SignalValue>,
    pub(crate) dir: Option<LitStr>,
    pub(crate) env: Vec<(String, LitStr)>,
}

pub(crate) struct Task {
    pub(crate) name: UnitName,
    pub(crate) expr: Expr,
    pub(crate) policy: Policy,
    pub(crate) stop_timeout: Option<DurationValue>,
}

/// Parses and checks a manifest, recording every error in `errors`.
pub(crate) fn parse(input: TokenStream, errors: &mut Errors) -> Manifest {
    let mut manifest = Manifest::default();
    let parsed = (|input: ParseStream<'_>| {
        let mut settings = Seen::default();
        while !input.is_empty() {
            if let Err(error) = parse_item(input, &mut manifest, &mut settings, errors) {
                errors.push(error);
                skip_past_semicolon(input);
            }
        }
        Ok(())
    })
    .parse2(input);
    errors.take(parsed);
    check_unique_names(&manifest, errors);
    manifest
}

fn skip_past_semicolon(input: ParseStream<'_>) {
    while !input.is_empty() {
        if input.peek(Token![;]) {
            let _ = input.parse::<Token![;]>();
            return;
        }
        let _ = input.parse::<TokenTree>();
    }
}

/// `;` after an entry, optional at the very end.
fn end_of_entry(input: ParseStream<'_>, what: &str) -> syn::Result<()> {
    if input.is_empty() {
        return Ok(());
    }
    if input.peek(Token![;]) {
        input.parse::<Token![;]>()?;
        return Ok(());
    }
    Err(input.error(format!("expected `;` after {what}")))
}

fn parse_item(
    input: ParseStream<'_>,
    manifest: &mut Manifest,
    settings: &mut Seen,
    errors: &mut Errors,
) -> syn::Result<()> {
    if input.peek(Token![;]) {
        input.parse::<Token![;]>()?;
        return Ok(());
    }
    let keyword = input
        .call(Ident::parse_any)
        .map_err(|error| syn::Error::new(error.span(), format!("expected an entry: {ENTRY_EXAMPLE}")))?;
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        let value = options::value_tokens(input, |input| input.peek(Token![;]));
        if value.is_empty() {
            return Err(syn::Error::new(keyword.span(), format!("`{}` has no value after `=`", keyword.unraw())));
        }
        end_of_entry(input, "a setting")?;
        let option = RawOption { key: keyword, value };
        if settings.first(&option, errors) {
            read_setting(&option, manifest, errors);
        }
        return Ok(());
    }
    let kind = keyword.unraw().to_string();
    let entry = match kind.as_str() {
        "daemon" => match parse_daemon(input, errors)? {
            Some(daemon) => Entry::Daemon(daemon),
            None => return Ok(()),
        },
        "task" => parse_task(input, errors)?,
        _ => {
            return Err(syn::Error::new(
                keyword.span(),
                format!(
                    "unknown entry kind `{kind}`{}; expected `daemon NAME = \"command\";` or `task NAME;`",
                    suggest::did_you_mean(&kind, KINDS)
                ),
            ));
        }
    };
    manifest.entries.push(entry);
    Ok(())
}

fn read_setting(option: &RawOption, manifest: &mut Manifest, errors: &mut Errors) {
    match option.name().as_str() {
        "shutdown_timeout" => manifest.shutdown_timeout = errors.take(duration::parse(option)),
        "shutdown_order" => manifest.shutdown_order = errors.take(shutdown_order(option)),
        "crate" => manifest.krate = errors.take(crate_path(option)),
        _ => errors.push(options::unknown(option, "setting", SETTINGS)),
    }
}

/// `shutdown_order = "sequential" | "concurrent"`.
fn shutdown_order(option: &RawOption) -> syn::Result<Ident> {
    let expected = "`shutdown_order` takes \"sequential\" or \"concurrent\", e.g. `shutdown_order = \"concurrent\";`";
    let lit = options::string(option).map_err(|_| option.error(expected))?;
    let variant = match lit.value().as_str() {
        "sequential" => "Sequential",
        "concurrent" => "Concurrent",
        other => {
            let hint = match suggest::closest(other, SHUTDOWN_ORDERS) {
                Some(close) => format!(" (did you mean \"{close}\"?)"),
                None => String::new(),
            };
            return Err(syn::Error::new(lit.span(), format!("unknown shutdown order \"{other}\"{hint}; {expected}")));
        }
    };
    Ok(Ident::new(variant, lit.span()))
}

/// A unit name: an identifier or a string literal.
fn parse_unit_name(input: ParseStream<'_>, kind: &str) -> syn::Result<UnitName> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        if lit.value().trim().is_empty() {
            return Err(syn::Error::new(lit.span(), "the unit name cannot be empty"));
        }
        return Ok(UnitName { value: lit.value(), span: lit.span() });
    }
    let ident = input.call(Ident::parse_any).map_err(|error| {
        syn::Error::new(error.span(), format!("expected the {kind}'s name after `{kind}`, e.g. `{kind} worker`"))
    })?;
    Ok(UnitName { value: ident.unraw().to_string(), span: ident.span() })
}

/// The `{ key = value, ... }` block after an entry, if any.
fn parse_option_block(input: ParseStream<'_>) -> syn::Result<Vec<RawOption>> {
    if !input.peek(token::Brace) {
        return Ok(Vec::new());
    }
    let content;
    syn::braced!(content in input);
    options::parse_options(&content)
}

fn parse_daemon(input: ParseStream<'_>, errors: &mut Errors) -> syn::Result<Option<Daemon>> {
    let name = parse_unit_name(input, "daemon")?;
    if !input.peek(Token![=]) {
        return Err(input.error(format!(
            "expected `=` and the command to run: `daemon {} = \"program --flag value\";`",
            name.value
        )));
    }
    input.parse::<Token![=]>()?;
    let command = if input.peek(LitStr) || input.peek(token::Bracket) {
        errors.take(command::parse(input))
    } else {
        return Err(command::parse(input).err().unwrap_or_else(|| input.error("expected a command")));
    };
    let raw = parse_option_block(input)?;
    end_of_entry(input, "the daemon entry")?;

    let mut stop_signal = None;
    let mut dir = None;
    let mut env = Vec::new();
    let (policy, stop_timeout) =
        policy::read_unit_options(&raw, errors, |option, errors| match option.name().as_str() {
            "stop_signal" => stop_signal = errors.take(signal::parse(option)),
            "dir" => dir = errors.take(working_dir(option)),
            "env" => env = errors.take(environment(option)).unwrap_or_default(),
            _ => errors.push(options::unknown(option, "daemon option", &daemon_keys())),
        });
    // An entry whose command is wrong is left out: its error says why.
    Ok(command.map(|command| Daemon { name, command, policy, stop_timeout, stop_signal, dir, env }))
}

fn daemon_keys() -> Vec<&'static str> {
    policy::KEYS.iter().chain(DAEMON_KEYS).copied().collect()
}

fn task_keys() -> Vec<&'static str> {
    policy::KEYS.iter().chain(TASK_KEYS).copied().collect()
}

fn working_dir(option: &RawOption) -> syn::Result<LitStr> {
    let message = "`dir` takes the working directory as a string, e.g. `dir = \"/var/lib/worker\"`";
    let lit = options::string(option).map_err(|_| option.error(message))?;
    if lit.value().is_empty() {
        return Err(syn::Error::new(lit.span(), message));
    }
    Ok(lit)
}

/// `env = { KEY = "value", ... }`.
fn environment(option: &RawOption) -> syn::Result<Vec<(String, LitStr)>> {
    const EXAMPLE: &str = "`env = { RUST_LOG = \"info\", PORT = \"8080\" }`";
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
    .map_err(|error| syn::Error::new(error.span(), format!("`env` takes a map of variables to strings: {EXAMPLE}")))?;
    let mut errors = Errors::default();
    let mut env: Vec<(String, LitStr)> = Vec::new();
    let mut first_spans: Vec<Span> = Vec::new();
    for (key, span, value) in pairs {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            errors.push(syn::Error::new(
                span,
                format!("invalid environment variable name {key:?}: it must be non-empty, without `=`"),
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

fn parse_task(input: ParseStream<'_>, errors: &mut Errors) -> syn::Result<Entry> {
    let name = if input.peek(LitStr) {
        parse_unit_name(input, "task")?
    } else {
        let path = input.call(Path::parse_mod_style).map_err(|error| {
            syn::Error::new(
                error.span(),
                "expected the task after `task`: `task ticker;` for a #[supervised] fn, or `task cleanup = cleanup_loop;`",
            )
        })?;
        if !input.peek(Token![=]) {
            if input.peek(token::Brace) {
                let block: TokenTree = input.parse()?;
                errors.spanned(
                    block,
                    format!(
                        "`task {0};` takes its options from the #[supervised] attribute of `{0}`; to set them here, write `task {0} = {0} {{ ... }};`",
                        quote::ToTokens::to_token_stream(&path).to_string().replace(' ', "")
                    ),
                );
            }
            end_of_entry(input, "the task entry")?;
            return Ok(Entry::Supervised(path));
        }
        match path.get_ident() {
            Some(ident) => UnitName { value: ident.unraw().to_string(), span: ident.span() },
            None => {
                return Err(syn::Error::new_spanned(
                    &path,
                    "a task name is a single identifier (or a string); write `task cleanup = jobs::cleanup;`",
                ));
            }
        }
    };
    if !input.peek(Token![=]) {
        return Err(input.error(format!("expected `=` and the task to run: `task {} = an_async_fn;`", name.value)));
    }
    input.parse::<Token![=]>()?;
    let expr = input.call(Expr::parse_without_eager_brace)?;
    let raw = parse_option_block(input)?;
    end_of_entry(input, "the task entry")?;

    let (policy, stop_timeout) = policy::read_unit_options(&raw, errors, |option, errors| {
        errors.push(options::unknown(option, "task option", &task_keys()));
    });
    Ok(Entry::Task(Task { name, expr, policy, stop_timeout }))
}

/// Rejects a unit name used twice, noting the first use; entries whose
/// name comes from an `#[supervised]` fn are checked when the generated
/// code is compiled.
fn check_unique_names(manifest: &Manifest, errors: &mut Errors) {
    let mut seen: Vec<(String, Span)> = Vec::new();
    for entry in &manifest.entries {
        let (value, span) = match entry {
            Entry::Daemon(daemon) => (daemon.name.value.clone(), daemon.name.span),
            Entry::Task(task) => (task.name.value.clone(), task.name.span),
            Entry::Supervised(path) => {
                let text = quote::ToTokens::to_token_stream(path).to_string().replace(' ', "");
                (format!("{text}::NAME"), syn::spanned::Spanned::span(path))
            }
        };
        if let Some((_, first)) = seen.iter().find(|(name, _)| *name == value) {
            let shown = value.trim_end_matches("::NAME");
            errors.push(syn::Error::new(span, format!("duplicate unit name `{shown}`: every unit needs its own name")));
            errors.push(syn::Error::new(*first, format!("the first `{shown}` is here")));
        } else {
            seen.push((value, span));
        }
    }
}
