//! Expansion of a checked input: the builder calls a user would write by
//! hand, through `::supervisor::__private` only, with every duration a
//! constant.

use crate::ast::{
    Manifest, ProbeTuning, Supervised, SupervisedFn, TreeOptions, Unit, UnitKind, UnitOptions, path_text,
};
use crate::errors::Errors;
use crate::policy::{Policy, RestartOn};
use crate::probe::{Probe, Readiness};
use crate::typed;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, Path, ReturnType};

/// `::supervisor::__private`, or `<crate>::__private` when renamed.
pub(crate) fn private_path(krate: Option<&Path>) -> TokenStream {
    match krate {
        None => quote!(::supervisor::__private),
        Some(path) => {
            let relative = path.leading_colon.is_none()
                && path
                    .segments
                    .first()
                    .is_some_and(|first| first.ident == "crate" || first.ident == "self" || first.ident == "super");
            if path.leading_colon.is_some() || relative { quote!(#path::__private) } else { quote!(::#path::__private) }
        }
    }
}

/// [`private_path`] as written in a module the expansion nests one level
/// below the user's: a path relative to the user's module (`self::...`,
/// `super::...`) goes one level up first.
fn private_path_below(krate: Option<&Path>) -> TokenStream {
    let Some(path) = krate.filter(|path| path.leading_colon.is_none()) else { return private_path(krate) };
    let mut segments = path.segments.iter();
    match segments.next() {
        Some(first) if first.ident == "self" => quote!(super #(:: #segments)* ::__private),
        Some(first) if first.ident == "super" => quote!(super::#path::__private),
        _ => private_path(krate),
    }
}

/// A span at the user's tokens that still counts as macro output for lints,
/// so that type errors point at the user's code and lints stay quiet.
fn at_user(span: Span) -> Span {
    Span::call_site().located_at(span)
}

/// `tokens` with every span moved to the user's `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut inner = proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(at_user(span));
                token = proc_macro2::TokenTree::Group(inner);
            } else {
                token.set_span(at_user(span));
            }
            token
        })
        .collect()
}

/// The items placed next to an `#[supervised]` fn: a type of the same name
/// (types and values live in different namespaces) whose associated
/// `NAME` and `spec()` describe the task.
pub(crate) fn supervised(input: &Supervised, function: &SupervisedFn) -> TokenStream {
    let options = &input.options;
    let private = private_path(options.krate.as_ref());
    let ident = &function.sig.ident;
    let call = match function.sig.inputs.first() {
        Some(FnArg::Typed(arg)) => {
            // The parameter is converted from our `Context`, so that one of
            // another type is reported, on its type, as not ours.
            // Bindings of the expansion are named apart from the user's
            // items: a `const ctx` in scope would be read as a pattern.
            let convert = respan(quote!(#private::FromContext::from_context(__supervisor_ctx)), arg.ty.span());
            quote!(|__supervisor_ctx| #ident(#convert))
        }
        _ => quote!(|_| #ident()),
    };
    let span = match &function.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => ident.span(),
    };
    let task_spec = respan(quote!(#private::TaskSpec::new), span);
    let mut body = quote_spanned!(at_user(span)=> #task_spec(Self::NAME, #call));
    body.extend(options.policy.expand(&private));
    body.extend(run_setters(options, &private));
    let setters = options.policy.setters(&private);
    let policy = quote!(#private::RestartPolicy::new() #setters);
    let name = input.unit_name().expect("a valid input is an fn");
    let completed = options.readiness.as_ref().is_some_and(|readiness| matches!(readiness.value, Readiness::Completed));
    let facts = policy_facts(Some(&options.policy), completed, &private, true);
    supervised_items(function, &name, &private, &body, &policy, &facts)
}

/// The name of the constant of an `#[supervised]` fn's type that says
/// whether its attribute sets `backoff`.
const BACKOFF_FACT: &str = "__SUPERVISOR_BACKOFF";
/// The name of the constant of an `#[supervised]` fn's type that holds its
/// attribute's `window_max` and `window`, if set.
const WINDOW_FACT: &str = "__SUPERVISOR_WINDOW";
/// The name of the constant of an `#[supervised]` fn's type that says
/// whether its attribute makes it a one-shot job (`ready = completed`) and
/// whether its policy restarts a run that succeeds.
const ONE_SHOT_FACT: &str = "__SUPERVISOR_ONE_SHOT";

/// The constants through which a manifest's `task path;` entry completes
/// its options with those of the fn's attribute (`max_delay` over the fn's
/// `backoff`, `window` over its `window_max` and the reverse); `None` for
/// an fn whose attribute had errors, which has them all (so that no error
/// follows in the manifest). `public`: as items of an impl, not of a trait.
pub(crate) fn policy_facts(
    policy: Option<&Policy>,
    completed: bool,
    private: &TokenStream,
    public: bool,
) -> TokenStream {
    let backoff = policy.is_none_or(|policy| policy.backoff.is_some());
    // An fn with errors is no one-shot job that a success restarts.
    let restarts_success = policy.is_some_and(|policy| matches!(policy.on, None | Some(RestartOn::Always)));
    let window = match policy {
        Some(Policy { window: Some((period, _)), window_max: Some((max, _)), .. }) => {
            let period = period.expand(private);
            quote!(#private::Some((#max, #period)))
        }
        Some(_) => quote!(#private::None),
        None => quote!(#private::Some((0u32, #private::Duration::ZERO))),
    };
    let (backoff_fact, window_fact) = (format_ident!("{}", BACKOFF_FACT), format_ident!("{}", WINDOW_FACT));
    let one_shot_fact = format_ident!("{}", ONE_SHOT_FACT);
    let vis = public.then(|| quote!(pub));
    quote! {
        #[doc(hidden)]
        #vis const #backoff_fact: #private::bool = #backoff;
        #[doc(hidden)]
        #vis const #window_fact: #private::Option<(#private::u32, #private::Duration)> = #window;
        #[doc(hidden)]
        #vis const #one_shot_fact: (#private::bool, #private::bool) = (#completed, #restarts_success);
    }
}

/// The type next to an `#[supervised]` fn, with `NAME`, `spec()` and the
/// trait `supervise!` reads them through; also used, with bodies that
/// never return, for an fn that had errors.
pub(crate) fn supervised_items(
    function: &SupervisedFn,
    name: &str,
    private: &TokenStream,
    spec: &TokenStream,
    policy: &TokenStream,
    facts: &TokenStream,
) -> TokenStream {
    let vis = &function.vis;
    let ident = &function.sig.ident;
    let type_doc = format!(
        "The supervised task `{name}`: `{ident}::spec()` is the `TaskSpec` of the `#[supervised]` fn `{ident}`."
    );
    let name_doc = format!("The unit name of `{ident}`: `{name:?}`.");
    let spec_doc =
        format!("The `TaskSpec` that runs `{ident}` with the restart policy of its `#[supervised]` attribute.");
    quote! {
        #[doc = #type_doc]
        #[allow(non_camel_case_types, dead_code, missing_docs, missing_debug_implementations, missing_copy_implementations, unreachable_pub)]
        #vis struct #ident {}

        #[allow(dead_code, missing_docs, unreachable_pub)]
        impl #ident {
            #[doc = #name_doc]
            #vis const NAME: &#private::str = #name;

            #[doc = #spec_doc]
            // It calls the fn: a `#[deprecated]` fn is not used by its own spec.
            #[allow(deprecated)]
            #vis fn spec() -> #private::TaskSpec {
                #spec
            }

            #facts
        }

        impl #private::Supervised for #ident {
            const NAME: &'static #private::str = #name;

            fn spec() -> #private::TaskSpec {
                #ident::spec()
            }

            fn policy() -> #private::RestartPolicy {
                #policy
            }
        }
    }
}

/// `.stop_timeout(...)`, `.critical()`, readiness, liveness and the
/// watchdog of a task or a daemon.
fn run_setters(options: &UnitOptions, private: &TokenStream) -> TokenStream {
    let mut setters = TokenStream::new();
    if let Some(timeout) = &options.stop_timeout {
        let timeout = timeout.expand(private);
        setters.extend(quote!(.stop_timeout(#timeout)));
    }
    setters.extend(critical(options));
    setters.extend(watching(options, private));
    setters
}

fn critical(options: &UnitOptions) -> TokenStream {
    match &options.critical {
        Some((true, key)) => quote_spanned!(key.span()=> .critical()),
        _ => TokenStream::new(),
    }
}

/// `.readiness(...)`, `.liveness(...)` and `.watchdog(...)`.
fn watching(options: &UnitOptions, private: &TokenStream) -> TokenStream {
    let mut setters = TokenStream::new();
    if let Some(readiness) = &options.readiness {
        let value = match &readiness.value {
            Readiness::Started => quote!(#private::Readiness::Started),
            Readiness::Notified => quote!(#private::Readiness::Notified),
            Readiness::Completed => quote!(#private::Readiness::Completed),
            Readiness::Probe(probe) => {
                let probe = self::probe(probe, readiness.span, &options.readiness_tuning, private);
                quote!(#private::Readiness::Probe(#probe))
            }
            Readiness::Output(text) => quote!(#private::Readiness::OutputLine(#private::String::from(#text))),
        };
        setters.extend(quote!(.readiness(#value)));
    }
    if let Some(liveness) = &options.liveness {
        let probe = probe(&liveness.value, liveness.span, &options.liveness_tuning, private);
        setters.extend(quote!(.liveness(#probe)));
    }
    if let Some((period, _)) = &options.watchdog {
        let period = period.expand(private);
        setters.extend(quote!(.watchdog(#period)));
    }
    setters
}

/// A `Probe` with its settings; `http(...)` goes through a helper whose
/// bound says, on the probe, that it needs the runtime's `http` feature.
fn probe(probe: &Probe, span: Span, tuning: &ProbeTuning, private: &TokenStream) -> TokenStream {
    let mut tokens = match probe {
        Probe::Tcp(addr) => quote!(#private::Probe::tcp(#addr)),
        Probe::Http(url) => {
            let helper = respan(quote!(#private::http_probe::<#private::HttpProbe>), span);
            quote!(#helper(#url))
        }
        Probe::Exec(command) => {
            let words = std::iter::once(&command.program).chain(&command.args);
            quote!(#private::Probe::exec([#(#words),*]))
        }
    };
    let durations =
        [("period", &tuning.period), ("timeout", &tuning.timeout), ("initial_delay", &tuning.initial_delay)];
    for (setter, value) in durations {
        if let Some((duration, _)) = value {
            let setter = format_ident!("{}", setter);
            let duration = duration.expand(private);
            tokens.extend(quote!(.#setter(#duration)));
        }
    }
    if let Some((n, _)) = &tuning.failures {
        tokens.extend(quote!(.failure_threshold(#n)));
    }
    if let Some((n, _)) = &tuning.successes {
        tokens.extend(quote!(.success_threshold(#n)));
    }
    tokens
}

/// The `Supervisor` a manifest describes: one builder chain, then an
/// infallible build (names, commands and dependencies were checked); with
/// a `struct` line, the type of the typed form, whose `builder()` is that
/// chain.
pub(crate) fn manifest(manifest: &Manifest) -> TokenStream {
    let private = private_path(manifest.settings.krate.as_ref());
    let mut calls = TokenStream::new();
    let settings = &manifest.settings;
    if let Some(timeout) = &settings.shutdown_timeout {
        let timeout = timeout.expand(&private);
        calls.extend(quote!(.shutdown_timeout(#timeout)));
    }
    if let Some(order) = &settings.shutdown_order {
        calls.extend(quote!(.shutdown_order(#private::ShutdownOrder::#order)));
    }
    calls.extend(tree_setters(&settings.tree, &private));
    let mut supervised = SupervisedEntries::default();
    supervised.collect(&manifest.units);
    let mut checks = supervised.prelude(settings.krate.as_ref());
    calls.extend(units(&manifest.units, &supervised, &private, &mut checks));
    let Some(handle) = &manifest.handle else {
        return quote! {
            {
                #checks
                #private::build_manifest(#private::Supervisor::builder() #calls)
            }
        };
    };
    // The clashes of field and type names were reported by `valid`.
    let fields = typed::fields(handle, &manifest.units, &mut Errors::default());
    let path = |unit: &Unit, group: &str| match &unit.kind {
        UnitKind::Supervised(_) => {
            let name = supervised.runtime_name(unit);
            if group.is_empty() { name } else { quote!(#private::unit_path(#group, #name)) }
        }
        _ => {
            let name = &unit.name.value;
            let path = if group.is_empty() { name.clone() } else { format!("{group}/{name}") };
            quote!(#path)
        }
    };
    let bodies = typed::Bodies {
        builder: quote! {
            #checks
            #private::Supervisor::builder() #calls
        },
        prelude: supervised.prelude(settings.krate.as_ref()),
        path: &path,
    };
    typed::items(handle, &fields, &private, &bodies)
}

/// `.strategy(...)` and `.intensity(n, period)`.
fn tree_setters(tree: &TreeOptions, private: &TokenStream) -> TokenStream {
    let mut setters = TokenStream::new();
    if let Some(strategy) = &tree.strategy {
        let strategy = strategy.expand(private);
        setters.extend(quote!(.strategy(#strategy)));
    }
    if let (Some((n, _)), Some((period, _))) = (&tree.intensity, &tree.period) {
        let period = period.expand(private);
        setters.extend(quote!(.intensity(#n, #period)));
    }
    setters
}

/// The `task path;` entries of a manifest, numbered depth first: each is
/// reached through an alias that falls back, when the path names no
/// `#[supervised]` fn, to a type whose use says so.
#[derive(Default)]
struct SupervisedEntries<'a> {
    entries: Vec<&'a Unit>,
}

impl<'a> SupervisedEntries<'a> {
    fn collect(&mut self, units: &'a [Unit]) {
        for unit in units {
            match &unit.kind {
                UnitKind::Supervised(_) => self.entries.push(unit),
                UnitKind::Group(children) => self.collect(children),
                UnitKind::Daemon(_) | UnitKind::Task(_) => {}
            }
        }
    }

    fn index(&self, unit: &Unit) -> usize {
        self.entries.iter().position(|entry| std::ptr::eq(*entry, unit)).expect("every `task path;` is collected")
    }

    /// The alias of the entry's path, spanned on the path so that errors
    /// about it point there.
    fn alias(&self, index: usize) -> syn::Ident {
        format_ident!("__supervisor_task_{}", index, span = at_user(self.path_span(index)))
    }

    fn path_span(&self, index: usize) -> Span {
        match &self.entries[index].kind {
            UnitKind::Supervised(path) => path.span(),
            _ => unreachable!("only `task path;` entries are collected"),
        }
    }

    /// The aliases, and the fallback behind each: reached through a glob
    /// import, which a named import shadows, so only when the path has no
    /// type of its name, i.e. is not an `#[supervised]` fn; it is
    /// `PlainFn`, whose use says so.
    fn prelude(&self, krate: Option<&Path>) -> TokenStream {
        if self.entries.is_empty() {
            return TokenStream::new();
        }
        // Written in the fallback module, below the user's.
        let private = private_path_below(krate);
        let mut aliases = TokenStream::new();
        let mut fallbacks = TokenStream::new();
        for (index, unit) in self.entries.iter().enumerate() {
            let UnitKind::Supervised(path) = &unit.kind else { unreachable!("only `task path;` entries") };
            let alias = self.alias(index);
            aliases.extend(respan(
                quote! {
                    #[allow(unused_imports)]
                    use #path as #alias;
                },
                path.span(),
            ));
            fallbacks.extend(quote!(pub type #alias = #private::PlainFn;));
        }
        // A plain fn's alias has the constants of an `#[supervised]` fn's
        // type through a trait (an inherent constant comes first), so that
        // its entry has only the error that it is not one.
        let facts = policy_facts(None, false, &private, false);
        quote! {
            #aliases
            #[allow(non_camel_case_types, non_snake_case, dead_code, unreachable_pub)]
            mod __supervisor_fallback {
                #fallbacks
                pub trait __SupervisorPolicyFacts {
                    #facts
                }
                impl __SupervisorPolicyFacts for #private::PlainFn {}
            }
            #[allow(unused_imports)]
            use __supervisor_fallback::*;
        }
    }

    /// The unit name of a unit as an expression: its literal name, or the
    /// `NAME` of the `#[supervised]` fn of a `task path;` entry.
    fn runtime_name(&self, unit: &Unit) -> TokenStream {
        match &unit.kind {
            UnitKind::Supervised(path) => {
                let alias = self.alias(self.index(unit));
                // On the path, all of it: an error about `NAME` (the path
                // names a module, say) points at the entry, not the call.
                respan(quote!(#alias::NAME), path.span())
            }
            _ => {
                let name = &unit.name.value;
                quote!(#name)
            }
        }
    }
}

/// The builder calls of the units of one group, and into `checks` the
/// name checks that need the `NAME` of `#[supervised]` fns.
fn units(
    units: &[Unit],
    supervised: &SupervisedEntries<'_>,
    private: &TokenStream,
    checks: &mut TokenStream,
) -> TokenStream {
    checks.extend(name_checks(units, supervised, private));
    let mut calls = TokenStream::new();
    for unit in units {
        let options = &unit.options;
        let mut tail = TokenStream::new();
        if !options.depends_on.is_empty() {
            let names = options.depends_on.iter().map(|name| {
                let sibling =
                    units.iter().find(|unit| unit.name.value == name.value).expect("dependencies were checked");
                supervised.runtime_name(sibling)
            });
            tail.extend(quote!(.depends_on([#(#names),*])));
        }
        let name = &unit.name.value;
        calls.extend(match &unit.kind {
            UnitKind::Daemon(command) => {
                let program = &command.program;
                let mut spec = quote!(#private::DaemonSpec::new(#name, #program));
                let args = &command.args;
                if !args.is_empty() {
                    spec.extend(quote!(.args([#(#args),*])));
                }
                for (key, value) in &options.env {
                    spec.extend(quote!(.env(#key, #value)));
                }
                if let Some(dir) = &options.dir {
                    spec.extend(quote!(.current_dir(#dir)));
                }
                spec.extend(options.policy.expand(private));
                spec.extend(run_setters(options, private));
                if let Some(signal) = &options.stop_signal {
                    let signal = signal.expand(private);
                    spec.extend(quote!(.stop_signal(#signal)));
                }
                if let Some((codes, _)) = &options.success_codes {
                    let codes = codes.iter().map(|(code, _)| code);
                    spec.extend(quote!(.success_codes([#(#codes),*])));
                }
                quote!(.daemon(#spec #tail))
            }
            UnitKind::Task(expr) => {
                let span = expr.span();
                let task_spec = respan(quote!(#private::TaskSpec::new), span);
                let mut spec = quote_spanned!(at_user(span)=> #task_spec(#name, #expr));
                spec.extend(options.policy.expand(private));
                spec.extend(run_setters(options, private));
                quote!(.task(#spec #tail))
            }
            UnitKind::Supervised(path) => {
                let alias = supervised.alias(supervised.index(unit));
                let entry = respan(quote!(<#alias as #private::SupervisedEntry<_>>), path.span());
                one_shot_check(options, &alias, path, private, checks);
                let spec = if options.policy.is_default() {
                    quote!(#entry::spec(#alias))
                } else {
                    let setters = over_fns_policy(&options.policy, &alias, path, private, checks);
                    quote!(#entry::spec_with(#alias, |__supervisor_policy| __supervisor_policy #setters))
                };
                // `critical = false` over an attribute's `critical`: no setter
                // can say it, as a manifest's setters only add to the spec.
                let spec = match &options.critical {
                    Some((false, key)) => quote_spanned!(key.span()=> #private::not_critical(#spec)),
                    _ => spec,
                };
                let setters = run_setters(options, private);
                quote!(.task(#spec #setters #tail))
            }
            UnitKind::Group(children) => {
                let mut spec = quote!(#private::GroupSpec::new(#name));
                spec.extend(tree_setters(&options.tree, private));
                spec.extend(options.policy.expand(private));
                spec.extend(critical(options));
                spec.extend(tail);
                spec.extend(self::units(children, supervised, private, checks));
                quote!(.group(#spec))
            }
        });
    }
    calls
}

/// The setters of a `task path;` entry's policy options, applied over the
/// `#[supervised]` fn's policy: an option that goes with another the entry
/// does not set (`max_delay` with `backoff`, `window` with `window_max`)
/// takes it from the fn's attribute, through the constants of the fn's
/// type, and into `checks` goes one that fails, on the option, when the fn
/// does not set it either.
fn over_fns_policy(
    policy: &Policy,
    alias: &syn::Ident,
    path: &Path,
    private: &TokenStream,
    checks: &mut TokenStream,
) -> TokenStream {
    let mut setters = policy.setters(private);
    let (backoff, window) = (format_ident!("{}", BACKOFF_FACT), format_ident!("{}", WINDOW_FACT));
    let fn_text = path_text(path);
    let example = "`window = \"30s\", window_max = 5` for at most 5 restarts within 30s";
    let mut check = |fails: TokenStream, key: &Ident, message: String| {
        checks.extend(compile_check(&fails, &message, key.span(), private));
    };
    match (&policy.window, &policy.window_max) {
        (Some((period, key)), None) => {
            let period = period.expand(private);
            setters.extend(quote! {
                .window(
                    match #alias::#window {
                        #private::Some((__supervisor_max, _)) => __supervisor_max,
                        #private::None => 0u32,
                    },
                    #period,
                )
            });
            check(
                quote!(#alias::#window.is_none()),
                key,
                format!(
                    "`window` needs `window_max`, and the #[supervised] fn `{fn_text}` sets no window to take it from: \
                     write {example}, here or on the fn"
                ),
            );
        }
        (None, Some((max, key))) => {
            setters.extend(quote! {
                .window(
                    #max,
                    match #alias::#window {
                        #private::Some((_, __supervisor_period)) => __supervisor_period,
                        #private::None => #private::Duration::ZERO,
                    },
                )
            });
            check(
                quote!(#alias::#window.is_none()),
                key,
                format!(
                    "`window_max` needs `window`, and the #[supervised] fn `{fn_text}` sets no window to take it from: \
                     write {example}, here or on the fn"
                ),
            );
        }
        _ => {}
    }
    if let (Some((_, key)), None) = (&policy.max_delay, &policy.backoff) {
        check(
            quote!(!#alias::#backoff),
            key,
            format!(
                "`max_delay` caps an exponential backoff, and neither this entry nor the #[supervised] fn `{fn_text}` \
                 sets one: add `backoff = 2.0`, here or on the fn (or remove `max_delay`)"
            ),
        );
    }
    setters
}

/// Into `checks`, for a `task path;` entry that sets `ready` or `on`, one
/// that fails when the entry's options over the fn's make a one-shot job
/// (`ready = completed`) whose policy restarts a success, which `valid`
/// refuses where it sees both.
fn one_shot_check(options: &UnitOptions, alias: &Ident, path: &Path, private: &TokenStream, checks: &mut TokenStream) {
    if options.readiness.is_none() && options.policy.on.is_none() {
        return;
    }
    let fact = format_ident!("{}", ONE_SHOT_FACT);
    let completed = match &options.readiness {
        Some(readiness) => {
            let completed = matches!(readiness.value, Readiness::Completed);
            quote!(#completed)
        }
        None => quote!(#alias::#fact.0),
    };
    let restarts_success = match options.policy.on {
        Some(on) => {
            let restarts = on == RestartOn::Always;
            quote!(#restarts)
        }
        None => quote!(#alias::#fact.1),
    };
    let span = options.readiness.as_ref().map_or_else(|| path.span(), |readiness| readiness.span);
    let message = format!(
        "`ready = completed` waits for a run to end well and rest, and the policy of `{}`, this entry's options over \
         its #[supervised] fn's, restarts a run that succeeds: add `on = \"failure\"`",
        path_text(path)
    );
    checks.extend(compile_check(&quote!(#completed && #restarts_success), &message, span, private));
}

/// A constant whose evaluation fails with `message`, at `span`, when
/// `fails` holds: a check of what only the compiler knows (the constants
/// of an `#[supervised]` fn's type).
fn compile_check(fails: &TokenStream, message: &str, span: Span, private: &TokenStream) -> TokenStream {
    respan(
        quote! {
            const _: () = if #fails {
                #private::panic!("{}", #message)
            };
        },
        span,
    )
}

/// The check of a group's unit names that only the compiler knows, those
/// of `task path;` entries (names written out were compared by `valid`):
/// the group's names in one list, and one constant per entry that a clash
/// can involve, whose evaluation fails, on that entry, when an earlier
/// sibling has its name. The expansion and the checks' evaluation are
/// linear in the entries (a constant per pair made both quadratic). The
/// message is put together in the constant from the entry's part, the
/// earlier sibling's (`EARLIER`, one per unit) and the fix.
fn name_checks(units: &[Unit], supervised: &SupervisedEntries<'_>, private: &TokenStream) -> TokenStream {
    let is_supervised = |unit: &Unit| matches!(unit.kind, UnitKind::Supervised(_));
    let Some(first_supervised) = units.iter().position(is_supervised) else { return TokenStream::new() };
    let names = units.iter().map(|unit| supervised.runtime_name(unit));
    let flags = units.iter().map(is_supervised);
    let earlier = units.iter().map(|unit| format!("{} of {}", named(unit), describe(unit)));
    let mut checks = TokenStream::new();
    // An entry before the first `task path;` one has no earlier one to clash with.
    for (at, unit) in units.iter().enumerate().skip(first_supervised) {
        let head = format!("{} has the unit name", describe(unit));
        let span = match &unit.kind {
            UnitKind::Supervised(path) => path.span(),
            _ => unit.name.span,
        };
        checks.extend(respan(
            quote! {
                const _: () = if let #private::Some(__supervisor_earlier) =
                    #private::earlier_same_name(NAMES, SUPERVISED, #at)
                {
                    let __supervisor_message = #private::Message::of(&[#head, EARLIER[__supervisor_earlier], CLASH_FIX]);
                    #private::panic!("{}", __supervisor_message.as_str())
                };
            },
            span,
        ));
    }
    quote! {
        const _: () = {
            const NAMES: &[&#private::str] = &[#(#names),*];
            const SUPERVISED: &[#private::bool] = &[#(#flags),*];
            const EARLIER: &[&#private::str] = &[#(#earlier),*];
            const CLASH_FIX: &#private::str = #CLASH_FIX;
            #checks
        };
    }
}

/// How a clash's message ends: why, and the fix.
const CLASH_FIX: &str = " (an #[supervised] fn is named by its `name` option, else after the fn); every unit of a group \
                         needs its own name: rename the fn's unit with #[supervised(name = \"...\")]";

/// A unit, as a clash's message names it.
fn describe(unit: &Unit) -> String {
    match &unit.kind {
        UnitKind::Supervised(path) => format!("`task {};`", path_text(path)),
        _ => format!("the {} `{}`", unit.keyword, unit.name.value),
    }
}

/// The name of a unit that a clash's message writes out: a `task path;`
/// entry's is the compiler's to know.
fn named(unit: &Unit) -> String {
    match &unit.kind {
        UnitKind::Supervised(_) => String::new(),
        _ => format!(" \"{}\"", unit.name.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast;
    use crate::errors::Errors;
    use crate::valid;

    fn expanded(tokens: TokenStream) -> String {
        let mut errors = Errors::default();
        let parsed = ast::manifest::parse(tokens, &mut errors);
        valid::manifest(&parsed, &mut errors);
        errors.into_result().unwrap();
        manifest(&parsed).to_string()
    }

    fn squash(text: &str) -> String {
        text.replace(' ', "")
    }

    #[test]
    fn groups_strategies_and_dependencies() {
        let output = squash(&expanded(quote! {
            strategy = "one_for_all"; intensity = 10; period = "60s";
            group storage { strategy = "rest_for_one", intensity = 3, period = "30s", max = 2, critical, depends_on = [web] } {
                daemon postgres = "postgres -D /var/lib/pg";
                task migrate = migrate { depends_on = [postgres], critical = false };
            }
            daemon web = "web";
        }));
        let p = "::supervisor::__private";
        let expected = [
            format!("{p}::Supervisor::builder().strategy({p}::Strategy::OneForAll).intensity(10u32,{p}::Duration::new(60u64,0u32))"),
            format!(".group({p}::GroupSpec::new(\"storage\").strategy({p}::Strategy::RestForOne).intensity(3u32,{p}::Duration::new(30u64,0u32))"),
            format!(".restart({p}::RestartPolicy::new().max_restarts({p}::MaxRestarts::AtMost(2u32))).critical().depends_on([\"web\"])"),
            format!(".daemon({p}::DaemonSpec::new(\"postgres\",\"postgres\").args([\"-D\",\"/var/lib/pg\"]))"),
            format!(".task({p}::TaskSpec::new(\"migrate\",migrate).depends_on([\"postgres\"])))"),
            format!(".daemon({p}::DaemonSpec::new(\"web\",\"web\"))"),
        ]
        .concat();
        assert!(output.contains(&squash(&expected)), "{output}\n{expected}");
    }

    #[test]
    fn supervised_entries_go_through_their_alias() {
        let output = squash(&expanded(quote! {
            task jobs::report { on = "never", stop_timeout = "1s" };
            task other = other { depends_on = [report] };
        }));
        let contains = |expected: &str| assert!(output.contains(&squash(expected)), "{output}\n{expected}");
        contains("use jobs::report as __supervisor_task_0;");
        contains("pub type __supervisor_task_0 = ::supervisor::__private::PlainFn;");
        contains("use __supervisor_fallback::*;");
        contains(
            ".task(<__supervisor_task_0 as ::supervisor::__private::SupervisedEntry<_>>::spec_with(__supervisor_task_0, |__supervisor_policy| __supervisor_policy.on(::supervisor::__private::RestartOn::Never)).stop_timeout(",
        );
        contains(".depends_on([__supervisor_task_0::NAME])");
        contains("const NAMES: &[&::supervisor::__private::str] = &[__supervisor_task_0::NAME, \"other\"];");
        contains("const SUPERVISED: &[::supervisor::__private::bool] = &[true, false];");
    }

    #[test]
    fn daemon_options() {
        let output = squash(&expanded(quote!(daemon d = "d" { success_codes = [0, 143], stop_signal = "INT" };)));
        assert!(
            output.contains(".stop_signal(::supervisor::__private::Signal::INT).success_codes([0i32,143i32])"),
            "{output}"
        );
    }

    #[test]
    fn readiness_liveness_and_watchdog() {
        let output = squash(&expanded(quote! {
            daemon db = "pg" {
                ready = tcp("127.0.0.1:5432"), readiness_period = "2s", readiness_failures = 2,
                liveness = exec("pg_isready -q"), liveness_timeout = "1s", liveness_initial_delay = "5s",
                liveness_successes = 1, watchdog = "30s",
            };
            task api = api { ready = notified, liveness = http("http://127.0.0.1:8081/health") };
            daemon web = "web" { ready = output("listening on") };
        }));
        let p = "::supervisor::__private";
        let contains = |expected: &str| assert!(output.contains(&squash(expected)), "{output}\n{expected}");
        contains(&format!(
            ".readiness({p}::Readiness::Probe({p}::Probe::tcp(\"127.0.0.1:5432\").period({p}::Duration::new(2u64,0u32)).failure_threshold(2u32)))"
        ));
        contains(&format!(
            ".liveness({p}::Probe::exec([\"pg_isready\",\"-q\"]).timeout({p}::Duration::new(1u64,0u32)).initial_delay({p}::Duration::new(5u64,0u32)).success_threshold(1u32))"
        ));
        contains(&format!(".watchdog({p}::Duration::new(30u64,0u32))"));
        contains(&format!(
            ".readiness({p}::Readiness::Notified).liveness({p}::http_probe::<{p}::HttpProbe>(\"http://127.0.0.1:8081/health\"))"
        ));
        contains(&format!(".readiness({p}::Readiness::OutputLine({p}::String::from(\"listening on\")))"));
    }

    #[test]
    fn the_typed_form_defines_its_types() {
        let output = squash(&expanded(quote! {
            pub struct Services;
            group storage { strategy = "one_for_all" } { daemon postgres = "pg"; group jobs {} { task report; } }
            task api = api;
        }));
        let contains = |expected: &str| assert!(output.contains(&squash(expected)), "{output}\n{expected}");
        contains("pub struct Services { #[doc = \"The group `storage`");
        contains("pub storage: ServicesStorage,");
        contains("__supervisor_handle: ::supervisor::__private::SupervisorHandle,");
        contains("pub fn builder() -> ::supervisor::__private::SupervisorBuilder {");
        contains(
            "::supervisor::__private::Supervisor::builder().group(::supervisor::__private::GroupSpec::new(\"storage\")",
        );
        contains("use report as __supervisor_task_0;");
        contains(
            "Services { storage: ServicesStorage { postgres: __supervisor_handle.unit(\"storage/postgres\"), jobs: ServicesStorageJobs { report: __supervisor_handle.unit(::supervisor::__private::unit_path(\"storage/jobs\", __supervisor_task_0::NAME)), __supervisor_unit: __supervisor_handle.unit(\"storage/jobs\") },",
        );
        contains("api: __supervisor_handle.unit(\"api\"), __supervisor_handle }");
        contains("impl ::core::ops::Deref for ServicesStorageJobs { type Target = ::supervisor::__private::UnitRef;");
        assert!(!output.contains("build_manifest(::supervisor::__private::Supervisor::builder()"), "{output}");
    }

    #[test]
    fn clash_messages_name_both_entries() {
        let output = squash(&expanded(quote!(daemon worker = "w"; task jobs::run; task other;)));
        let contains = |expected: &str| assert!(output.contains(&squash(expected)), "{output}\n{expected}");
        contains(
            "const NAMES: &[&::supervisor::__private::str] = &[\"worker\", __supervisor_task_0::NAME, __supervisor_task_1::NAME];",
        );
        contains(
            r#"const EARLIER: &[&::supervisor::__private::str] = &[" \"worker\" of the daemon `worker`", " of `task jobs::run;`", " of `task other;`"];"#,
        );
        // One check for each entry from the first `task path;` on, each
        // with the head of its message.
        let checks: Vec<&str> = output.split("earlier_same_name(NAMES,SUPERVISED,").skip(1).collect();
        assert_eq!(checks.len(), 2, "{output}");
        assert!(checks[0].starts_with("1usize)"), "{output}");
        let message_of =
            |head: &str| squash(&format!("Message::of(&[\"{head}\", EARLIER[__supervisor_earlier], CLASH_FIX])"));
        assert!(checks[0].contains(&message_of("`task jobs::run;` has the unit name")), "{output}");
        assert!(checks[1].starts_with("2usize)"), "{output}");
        assert!(checks[1].contains(&message_of("`task other;` has the unit name")), "{output}");
        assert_eq!(
            format!("`task jobs::run;` has the unit name{}{CLASH_FIX}", " \"worker\" of the daemon `worker`"),
            "`task jobs::run;` has the unit name \"worker\" of the daemon `worker` (an #[supervised] fn is named by its `name` option, else after the fn); every unit of a group needs its own name: rename the fn's unit with #[supervised(name = \"...\")]"
        );
    }

    #[test]
    fn the_name_checks_grow_with_the_entries_not_with_their_pairs() {
        let manifest = |entries: usize| {
            let paths = (0..entries).map(|at| quote::format_ident!("job_{at}"));
            expanded(quote!(#(task jobs::#paths;)*)).len()
        };
        let (hundred, four_hundred) = (manifest(100), manifest(400));
        // A constant per pair made 400 entries 16 times the size of 100.
        assert!(four_hundred < hundred * 9 / 2, "100 entries: {hundred} bytes; 400: {four_hundred}");
    }

    #[test]
    fn a_group_without_task_paths_has_no_name_checks() {
        let output = squash(&expanded(quote!(daemon worker = "w"; task other = other;)));
        assert!(!output.contains("NAMES"), "{output}");
    }
}
