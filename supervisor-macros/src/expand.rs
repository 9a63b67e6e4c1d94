//! Expansion: the builder calls a user would write by hand, through
//! `::supervisor::__private` only, with every duration a constant.

use crate::manifest::{Daemon, Entry, Manifest, Task};
use crate::supervised::{Options, Shape, Supervised};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType};

/// `::supervisor::__private`, or `<crate>::__private` when renamed.
pub(crate) fn private_path(krate: Option<&syn::Path>) -> TokenStream {
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

/// `.stop_timeout(...)` if given.
fn stop_timeout(timeout: Option<&crate::duration::DurationValue>, private: &TokenStream) -> TokenStream {
    match timeout {
        Some(timeout) => {
            let timeout = timeout.expand(private);
            quote!(.stop_timeout(#timeout))
        }
        None => TokenStream::new(),
    }
}

/// The items placed next to an `#[supervised]` fn: a type of the same name
/// (types and values live in different namespaces) whose associated
/// `NAME` and `spec()` describe the task.
pub(crate) fn supervised(input: &Supervised<'_>) -> TokenStream {
    let function = input.function;
    let options = input.options;
    let private = private_path(options.krate.as_ref());
    let ident = &function.sig.ident;
    let call = match input.shape {
        Shape::TakesContext => quote!(#ident),
        Shape::NoArgs => quote!(|_| #ident()),
    };
    let span = match &function.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => ident.span(),
    };
    let task_spec = respan(quote!(#private::TaskSpec::new), span);
    let new = quote_spanned!(at_user(span)=> #task_spec(Self::NAME, #call));
    let policy = options.policy.expand(&private);
    let stop = stop_timeout(options.stop_timeout.as_ref(), &private);
    let body = quote!(#new #policy #stop);
    items(function, &input.name, &private, &body)
}

/// The same items for an fn that had errors: `spec()` never returns, so
/// that its users see no further errors.
pub(crate) fn supervised_stub(function: &ItemFn, name: &str, options: &Options) -> TokenStream {
    let private = private_path(options.krate.as_ref());
    items(function, name, &private, &quote!(loop {}))
}

fn items(function: &ItemFn, name: &str, private: &TokenStream, body: &TokenStream) -> TokenStream {
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
            #vis const NAME: &str = #name;

            #[doc = #spec_doc]
            #vis fn spec() -> #private::TaskSpec {
                #body
            }
        }
    }
}

/// The `Supervisor` a manifest describes: one builder chain, then an
/// infallible build (names and commands were checked above).
pub(crate) fn manifest(manifest: &Manifest) -> TokenStream {
    let private = private_path(manifest.krate.as_ref());
    let mut calls = TokenStream::new();
    if let Some(timeout) = &manifest.shutdown_timeout {
        let timeout = timeout.expand(&private);
        calls.extend(quote!(.shutdown_timeout(#timeout)));
    }
    if let Some(order) = &manifest.shutdown_order {
        calls.extend(quote!(.shutdown_order(#private::ShutdownOrder::#order)));
    }
    let mut names = Vec::new();
    for entry in &manifest.entries {
        match entry {
            Entry::Daemon(daemon) => {
                let name = &daemon.name.value;
                names.push(KnownName::Literal(name.clone()));
                let spec = daemon_spec(daemon, &private);
                calls.extend(quote!(.daemon(#spec)));
            }
            Entry::Task(task) => {
                let name = &task.name.value;
                names.push(KnownName::Literal(name.clone()));
                let spec = task_spec(task, &private);
                calls.extend(quote!(.task(#spec)));
            }
            Entry::Supervised(path) => {
                names.push(KnownName::Supervised(path));
                calls.extend(quote!(.task(#path::spec())));
            }
        }
    }
    let name_check = name_checks(&names, &private);
    quote! {
        {
            #name_check
            #private::build_manifest(#private::Supervisor::builder() #calls)
        }
    }
}

/// A unit name in a manifest: written out, or only known once the
/// `#[supervised]` fn's `NAME` constant is evaluated.
enum KnownName<'a> {
    Literal(String),
    Supervised(&'a syn::Path),
}

impl KnownName<'_> {
    fn expr(&self) -> TokenStream {
        match self {
            KnownName::Literal(name) => quote!(#name),
            KnownName::Supervised(path) => quote!(#path::NAME),
        }
    }

    fn describe(&self) -> String {
        match self {
            KnownName::Literal(name) => format!("the unit `{name}`"),
            KnownName::Supervised(path) => format!("`task {};`", path_string(path)),
        }
    }
}

/// Literal names were compared while validating; a `task path;` entry gets
/// one const assertion per other entry, spanned on its path, so that a clash
/// names both units.
fn name_checks(names: &[KnownName<'_>], private: &TokenStream) -> TokenStream {
    let mut checks = TokenStream::new();
    for (i, name) in names.iter().enumerate() {
        let KnownName::Supervised(path) = name else { continue };
        for other in names.iter().skip(i + 1).chain(names.iter().take(i).filter(|o| matches!(o, KnownName::Literal(_))))
        {
            let message = format!(
                "{} has the same unit name as {}; every unit needs a unique name (rename one with #[supervised(name = \"...\")])",
                name.describe(),
                other.describe()
            );
            let (a, b) = (name.expr(), other.expr());
            checks.extend(quote_spanned! {path.span()=>
                const _: () = #private::assert_distinct_names(#a, #b, #message);
            });
        }
    }
    checks
}

fn path_string(path: &syn::Path) -> String {
    path.segments.iter().map(|segment| segment.ident.to_string()).collect::<Vec<_>>().join("::")
}

fn daemon_spec(daemon: &Daemon, private: &TokenStream) -> TokenStream {
    let name = &daemon.name.value;
    let program = &daemon.command.program;
    let mut spec = quote!(#private::DaemonSpec::new(#name, #program));
    let args = &daemon.command.args;
    if !args.is_empty() {
        spec.extend(quote!(.args([#(#args),*])));
    }
    for (key, value) in &daemon.env {
        spec.extend(quote!(.env(#key, #value)));
    }
    if let Some(dir) = &daemon.dir {
        spec.extend(quote!(.current_dir(#dir)));
    }
    spec.extend(daemon.policy.expand(private));
    spec.extend(stop_timeout(daemon.stop_timeout.as_ref(), private));
    if let Some(signal) = &daemon.stop_signal {
        let signal = signal.expand(private);
        spec.extend(quote!(.stop_signal(#signal)));
    }
    spec
}

fn task_spec(task: &Task, private: &TokenStream) -> TokenStream {
    let name = &task.name.value;
    let expr = &task.expr;
    let span = expr.span();
    let task_spec = respan(quote!(#private::TaskSpec::new), span);
    let mut spec = quote_spanned!(at_user(span)=> #task_spec(#name, #expr));
    spec.extend(task.policy.expand(private));
    spec.extend(stop_timeout(task.stop_timeout.as_ref(), private));
    spec
}
