//! The syntax tree of both macros as written: every value already read into
//! its typed form, every part keeping the span of its tokens so that the
//! checks can point at them. What is parsed here is only checked one value
//! at a time; `valid` checks how the values fit together.

pub(crate) mod manifest;
pub(crate) mod placement;
pub(crate) mod supervised;
pub(crate) mod unit;

use crate::command::Command;
use crate::duration::DurationValue;
use crate::policy::Policy;
use crate::probe::{Probe, Readiness, Spanned};
use crate::signal::SignalValue;
use crate::strategy::StrategyValue;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Attribute, Expr, Ident, LitStr, Path, Signature, Visibility};

/// `supervise! { ... }`, keeping what parsed.
pub(crate) struct Manifest {
    /// `pub struct Services;`: the manifest defines a typed handle.
    pub(crate) handle: Option<TypedHandle>,
    /// A `struct` line is written, even a wrong one: the manifest is in
    /// item position, and expands to items.
    pub(crate) defines_items: bool,
    pub(crate) settings: Settings,
    /// The root group's units.
    pub(crate) units: Vec<Unit>,
}

/// `pub struct Services;` at the top of a manifest, with its attributes
/// (such as its doc comment), which the type keeps.
pub(crate) struct TypedHandle {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) ident: Ident,
}

/// The root's `key = value;` settings.
#[derive(Default)]
pub(crate) struct Settings {
    pub(crate) krate: Option<Path>,
    pub(crate) shutdown_timeout: Option<DurationValue>,
    /// `Sequential` or `Concurrent`: the `ShutdownOrder` variant to name.
    pub(crate) shutdown_order: Option<Ident>,
    pub(crate) tree: TreeOptions,
    pub(crate) refused: Refused,
}

/// The keys given whose values were refused, each with its error recorded:
/// the checks of the options that go with them stay quiet, rather than add
/// that a key is missing when it is there but wrong.
#[derive(Default)]
pub(crate) struct Refused(Vec<String>);

impl Refused {
    pub(crate) fn add(&mut self, key: String) {
        self.0.push(key);
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|refused| refused == key)
    }
}

/// How a group, or the root, treats its units: strategy and intensity.
#[derive(Default)]
pub(crate) struct TreeOptions {
    pub(crate) strategy: Option<StrategyValue>,
    /// `intensity = n` with its key.
    pub(crate) intensity: Option<(u32, Ident)>,
    /// `period = "..."` with its key.
    pub(crate) period: Option<(DurationValue, Ident)>,
}

/// One unit of a manifest: a daemon, a task or a group.
pub(crate) struct Unit {
    pub(crate) name: UnitName,
    /// The token that says what the unit is (`daemon`, `task`, `group`).
    pub(crate) keyword: Ident,
    pub(crate) kind: UnitKind,
    pub(crate) options: UnitOptions,
}

pub(crate) enum UnitKind {
    /// `daemon NAME = "command";`
    Daemon(Command),
    /// `task NAME = EXPR;`
    Task(Expr),
    /// `task path;`: an `#[supervised]` fn, named in the manifest by the
    /// last segment of its path.
    Supervised(Path),
    /// `group NAME { options } { units }`
    Group(Vec<Unit>),
}

/// A unit name as written: an identifier or a string; in a `depends_on`,
/// also a path such as `storage/postgres`, which names no sibling.
#[derive(Clone)]
pub(crate) struct UnitName {
    pub(crate) value: String,
    pub(crate) span: Span,
    /// The span of the last part of a path, spanned with the first.
    pub(crate) end: Option<Span>,
}

impl UnitName {
    /// An error spanned on the whole name, a path from its first part to
    /// its last.
    pub(crate) fn error(&self, message: impl std::fmt::Display) -> syn::Error {
        match self.end {
            Some(end) => {
                let (first, last) = (Ident::new("first", self.span), Ident::new("last", end));
                syn::Error::new_spanned(quote!(#first #last), message)
            }
            None => syn::Error::new(self.span, message),
        }
    }
}

/// The options of a unit, or of `#[supervised]`; each reader fills only
/// the keys its kind takes, so the others stay empty.
#[derive(Default)]
pub(crate) struct UnitOptions {
    pub(crate) policy: Policy,
    pub(crate) stop_timeout: Option<DurationValue>,
    /// `critical` or `critical = true | false`, with its key.
    pub(crate) critical: Option<(bool, Ident)>,
    pub(crate) depends_on: Vec<UnitName>,
    pub(crate) readiness: Option<Spanned<Readiness>>,
    pub(crate) readiness_tuning: ProbeTuning,
    pub(crate) liveness: Option<Spanned<Probe>>,
    pub(crate) liveness_tuning: ProbeTuning,
    pub(crate) watchdog: Option<(DurationValue, Ident)>,
    pub(crate) stop_signal: Option<SignalValue>,
    pub(crate) dir: Option<LitStr>,
    pub(crate) env: Vec<(String, LitStr)>,
    /// `success_codes = [0, 143]`: each code with its span, and the key.
    pub(crate) success_codes: Option<(Vec<(i32, Span)>, Ident)>,
    /// A group's strategy and intensity.
    pub(crate) tree: TreeOptions,
    /// `#[supervised(name = "...")]`.
    pub(crate) name: Option<LitStr>,
    /// `#[supervised(crate = "...")]`.
    pub(crate) krate: Option<Path>,
    pub(crate) refused: Refused,
}

/// `readiness_period`, `liveness_failures` and the like: the settings of
/// a probe, each with its key.
#[derive(Default)]
pub(crate) struct ProbeTuning {
    pub(crate) period: Option<(DurationValue, Ident)>,
    pub(crate) timeout: Option<(DurationValue, Ident)>,
    pub(crate) initial_delay: Option<(DurationValue, Ident)>,
    pub(crate) failures: Option<(u32, Ident)>,
    pub(crate) successes: Option<(u32, Ident)>,
}

impl ProbeTuning {
    /// The keys given, for errors about all of them.
    pub(crate) fn keys(&self) -> Vec<&Ident> {
        let durations = [&self.period, &self.timeout, &self.initial_delay];
        let counts = [&self.failures, &self.successes];
        durations
            .into_iter()
            .flatten()
            .map(|(_, key)| key)
            .chain(counts.into_iter().flatten().map(|(_, key)| key))
            .collect()
    }
}

/// `#[supervised(...)]` and the item it is on.
pub(crate) struct Supervised {
    pub(crate) options: UnitOptions,
    /// The item exactly as written; it is emitted unchanged.
    pub(crate) item: TokenStream,
    /// The item read as an fn, or why it is not one.
    pub(crate) function: Result<SupervisedFn, NotAFn>,
}

/// An fn (its attributes skipped) whose body is kept as tokens, unparsed (tracing-attributes'
/// `MaybeItemFn`): a syntax error in the body is rustc's to report, on the
/// body as written.
pub(crate) struct SupervisedFn {
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) body: TokenStream,
    /// Found to be in an `impl` or a `trait` from its source file, when
    /// neither `self` nor `Self` says so.
    pub(crate) associated: Option<placement::Associated>,
}

/// The item under `#[supervised]` is not an fn with a body.
pub(crate) struct NotAFn {
    /// The token that says what it is instead (`struct`, `impl`, ...).
    pub(crate) span: Span,
    /// An fn without a body, such as one declared in a trait.
    pub(crate) bodiless_fn: bool,
}

impl Supervised {
    /// The unit name: `name = "..."`, else the fn's name.
    pub(crate) fn unit_name(&self) -> Option<String> {
        use syn::ext::IdentExt;
        let function = self.function.as_ref().ok()?;
        Some(self.options.name.as_ref().map_or_else(|| function.sig.ident.unraw().to_string(), LitStr::value))
    }
}

/// A unit name as a manifest writes it, for the examples of messages:
/// bare when it reads as one identifier (`postgres`, `type`), else as a
/// string (`"web-1"`), since `daemon web-1 = ...` or `depends_on = [web-1]`
/// would not parse.
pub(crate) fn written_name(name: &str) -> String {
    use syn::ext::IdentExt;
    use syn::parse::Parser;
    let bare = !name.starts_with("r#") && Ident::parse_any.parse_str(name).is_ok_and(|ident| ident == name);
    if bare { name.to_owned() } else { format!("{name:?}") }
}

/// `path` as written, without spaces: `jobs::report`.
pub(crate) fn path_text(path: &Path) -> String {
    quote!(#path).to_string().replace(' ', "")
}
