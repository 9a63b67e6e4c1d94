//! `#[supervised(...)]`: parses the options and the annotated fn, and checks
//! that the fn is one the supervisor can call.

use crate::duration::DurationValue;
use crate::errors::Errors;
use crate::expand;
use crate::options::{self, RawOption};
use crate::policy::{self, Policy};
use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::Parser;
use syn::{FnArg, ItemFn, Signature, Type};

/// Keys of `#[supervised(...)]` besides the policy's.
const OWN_KEYS: &[&str] = &["stop_timeout", "name", "crate"];

/// What the attribute asked for.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) policy: Policy,
    pub(crate) stop_timeout: Option<DurationValue>,
    pub(crate) name: Option<String>,
    pub(crate) krate: Option<syn::Path>,
}

/// How the supervisor calls the annotated fn.
pub(crate) enum Shape {
    /// `async fn f(ctx: Context)`: passed as it is.
    TakesContext,
    /// `async fn f()`: wrapped in `|_| f()`.
    NoArgs,
}

/// A valid annotated fn with its options.
pub(crate) struct Supervised<'a> {
    pub(crate) function: &'a ItemFn,
    pub(crate) shape: Shape,
    pub(crate) name: String,
    pub(crate) options: &'a Options,
}

/// Entry point: the original item followed by its spec, or the original
/// item with every error found.
pub(crate) fn supervised(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let raw = errors.take(options::parse_options.parse2(args)).unwrap_or_default();
    let options = read_options(&raw, &mut errors);
    let function = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            errors.push(syn::Error::new(
                item_keyword_span(&item),
                "#[supervised] goes on an `async fn`, e.g. `#[supervised] async fn worker(ctx: Context)`",
            ));
            let compile_errors = errors.to_compile_errors();
            return quote::quote!(#item #compile_errors);
        }
    };
    let shape = check_signature(&function.sig, &mut errors);
    let name = options.name.clone().unwrap_or_else(|| function.sig.ident.unraw().to_string());
    let expanded = match shape {
        Ok(shape) => expand::supervised(&Supervised { function: &function, shape, name, options: &options }),
        Err(Fallback::Stub) => expand::supervised_stub(&function, &name, &options),
        Err(Fallback::None) => TokenStream::new(),
    };
    let compile_errors = errors.to_compile_errors();
    quote::quote!(#item #expanded #compile_errors)
}

/// Reads the attribute's options, recording every error.
pub(crate) fn read_options(raw: &[RawOption], errors: &mut Errors) -> Options {
    let (mut name, mut krate) = (None, None);
    let (policy, stop_timeout) =
        policy::read_unit_options(raw, errors, |option, errors| match option.name().as_str() {
            "name" => {
                name = errors.take(options::string(option).and_then(|lit| {
                    if lit.value().trim().is_empty() {
                        Err(syn::Error::new(lit.span(), "the unit name cannot be empty"))
                    } else {
                        Ok(lit.value())
                    }
                }));
            }
            "crate" => krate = errors.take(crate_path(option)),
            _ => {
                let known: Vec<&str> = policy::KEYS.iter().chain(OWN_KEYS).copied().collect();
                errors.push(options::unknown(option, "#[supervised] option", &known));
            }
        });
    Options { policy, stop_timeout, name, krate }
}

/// `crate = "path"`: where the runtime crate is, when it is renamed.
pub(crate) fn crate_path(option: &RawOption) -> syn::Result<syn::Path> {
    let message = "`crate` takes the path of the supervisor crate as a string, e.g. `crate = \"supervisor\"`";
    let lit = options::string(option).map_err(|_| option.error(message))?;
    lit.parse::<syn::Path>().map_err(|_| syn::Error::new(lit.span(), message))
}

/// Why no full expansion is possible.
pub(crate) enum Fallback {
    /// Emit a placeholder spec so that users of `f::spec()` see no more errors.
    Stub,
    /// Emit nothing next to the item (it sits where a struct cannot).
    None,
}

/// Checks that the supervisor can call the fn: a free, non-generic
/// `async fn` taking a `Context` or nothing.
pub(crate) fn check_signature(sig: &Signature, errors: &mut Errors) -> Result<Shape, Fallback> {
    if let Some(receiver) = sig.receiver() {
        errors.spanned(
            receiver.self_token,
            "#[supervised] cannot be used on methods: write a free `async fn` that takes a `Context`",
        );
        return Err(Fallback::None);
    }
    let mut valid = true;
    if sig.asyncness.is_none() {
        errors.spanned(sig.fn_token, format!("#[supervised] needs an `async fn`: write `async fn {}`", sig.ident));
        valid = false;
    }
    if let Some(constness) = &sig.constness {
        errors.spanned(constness, "a #[supervised] fn cannot be `const`");
        valid = false;
    }
    if let syn::Safety::Unsafe(unsafety) = &sig.safety {
        errors
            .spanned(unsafety, "a #[supervised] fn cannot be `unsafe`: the supervisor calls it with no further checks");
        valid = false;
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(abi, "a #[supervised] fn cannot have an `extern` ABI");
        valid = false;
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        let generics = &sig.generics;
        errors.spanned(generics, "a #[supervised] fn cannot be generic: the supervisor calls it with a `Context` only");
        valid = false;
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, "a #[supervised] fn cannot be variadic");
        valid = false;
    }
    let mut inputs = sig.inputs.iter();
    let shape = match inputs.next() {
        None => Shape::NoArgs,
        Some(FnArg::Typed(arg)) => {
            if !is_context(&arg.ty) {
                let found = quote::ToTokens::to_token_stream(&arg.ty).to_string();
                errors.spanned(
                    &arg.ty,
                    format!(
                        "the parameter of a #[supervised] fn must be a `Context`, e.g. `ctx: Context`; found `{found}`"
                    ),
                );
                valid = false;
            }
            Shape::TakesContext
        }
        Some(FnArg::Receiver(_)) => unreachable!("receivers are handled above"),
    };
    for extra in inputs {
        errors.spanned(extra, "a #[supervised] fn takes one `Context` parameter or none; remove this parameter");
        valid = false;
    }
    if valid { Ok(shape) } else { Err(Fallback::Stub) }
}

/// `Context`, `supervisor::Context` or any path ending in `Context`.
fn is_context(ty: &Type) -> bool {
    match ty {
        Type::Path(path) if path.qself.is_none() => {
            path.path.segments.last().is_some_and(|last| last.ident == "Context" && last.arguments.is_empty())
        }
        Type::Group(group) => is_context(&group.elem),
        Type::Paren(paren) => is_context(&paren.elem),
        _ => false,
    }
}

/// The span of the keyword that says what the item is (`struct`, `impl`,
/// ...), skipping attributes and visibility.
fn item_keyword_span(item: &TokenStream) -> Span {
    let mut tokens = item.clone().into_iter().peekable();
    while let Some(token) = tokens.next() {
        match token {
            TokenTree::Punct(punct) if punct.as_char() == '#' => {
                tokens.next();
            }
            TokenTree::Ident(ident) if ident == "pub" => {
                if matches!(tokens.peek(), Some(TokenTree::Group(_))) {
                    tokens.next();
                }
            }
            other => return other.span(),
        }
    }
    Span::call_site()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn errors_of(args: TokenStream, item: TokenStream) -> Vec<String> {
        let output = supervised(args, item).to_string();
        output
            .split("compile_error ! {")
            .skip(1)
            .map(|rest| rest.split('}').next().unwrap().trim().to_owned())
            .collect()
    }

    fn signature(item: TokenStream) -> (Result<Shape, Fallback>, Vec<String>) {
        let function: ItemFn = syn::parse2(item).unwrap();
        let mut errors = Errors::default();
        let shape = check_signature(&function.sig, &mut errors);
        let messages = match errors.into_result() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        };
        (shape, messages)
    }

    #[test]
    fn accepts_context_or_nothing() {
        for item in [
            quote!(
                async fn f(ctx: Context) {}
            ),
            quote!(
                async fn f(_: supervisor::Context) -> Result<(), E> {
                    Ok(())
                }
            ),
            quote!(
                pub async fn f(mut ctx: ::supervisor::Context) -> anyhow::Result<()> {
                    Ok(())
                }
            ),
        ] {
            let (shape, messages) = signature(item);
            assert!(matches!(shape, Ok(Shape::TakesContext)), "{messages:?}");
        }
        assert!(matches!(
            signature(quote!(
                async fn f() {}
            ))
            .0,
            Ok(Shape::NoArgs)
        ));
    }

    #[test]
    fn rejects_what_cannot_be_supervised() {
        let message = |item| signature(item).1.join(" | ");
        assert!(
            message(quote!(
                fn f(ctx: Context) {}
            ))
            .contains("needs an `async fn`: write `async fn f`")
        );
        assert!(
            message(quote!(
                async fn f(&self) {}
            ))
            .contains("cannot be used on methods")
        );
        assert!(matches!(
            signature(quote!(
                async fn f(self) {}
            ))
            .0,
            Err(Fallback::None)
        ));
        assert!(
            message(quote!(
                async fn f<T>(ctx: Context) {}
            ))
            .contains("cannot be generic")
        );
        assert!(
            message(quote!(
                async fn f(ctx: Context)
                where
                    u8: Copy,
                {
                }
            ))
            .contains("cannot be generic")
        );
        assert!(
            message(quote!(
                async fn f(n: u32) {}
            ))
            .contains("must be a `Context`, e.g. `ctx: Context`; found `u32`")
        );
        assert!(
            message(quote!(
                async fn f(ctx: &Context) {}
            ))
            .contains("found `& Context`")
        );
        assert!(
            message(quote!(
                async fn f(ctx: Context, n: u32) {}
            ))
            .contains("remove this parameter")
        );
        assert!(
            message(quote!(
                async unsafe fn f() {}
            ))
            .contains("cannot be `unsafe`")
        );
        assert!(
            message(quote!(
                const async fn f() {}
            ))
            .contains("cannot be `const`")
        );
        assert!(
            message(quote!(
                async extern "C" fn f() {}
            ))
            .contains("`extern` ABI")
        );
        assert!(matches!(
            signature(quote!(
                fn f() {}
            ))
            .0,
            Err(Fallback::Stub)
        ));
    }

    #[test]
    fn reads_options() {
        let raw = options::parse_options
            .parse2(quote!(restart = "5s", name = "custom", crate = "renamed", stop_timeout = "10s"))
            .unwrap();
        let mut errors = Errors::default();
        let options = read_options(&raw, &mut errors);
        errors.into_result().unwrap();
        assert_eq!(options.name.as_deref(), Some("custom"));
        assert!(options.krate.is_some());
        assert!(options.stop_timeout.is_some());
        assert!(options.policy.delay.is_some());
    }

    #[test]
    fn reports_every_error_at_once() {
        let messages = errors_of(
            quote!(restat = "5s", max = -2, name = "", crate = "not a path", restart = 5),
            quote!(
                fn worker(n: u32) {}
            ),
        );
        let expected = [
            "unknown #[supervised] option `restat` (did you mean `restart`?)",
            "`max = -2` is below -1",
            "the unit name cannot be empty",
            "`crate` takes the path",
            "a duration needs a unit",
            "needs an `async fn`",
            "must be a `Context`",
        ];
        assert_eq!(messages.len(), expected.len(), "{messages:#?}");
        for (message, expected) in messages.iter().zip(expected) {
            assert!(message.contains(expected), "{message} / {expected}");
        }
    }

    #[test]
    fn not_a_fn() {
        let messages = errors_of(
            quote!(),
            quote!(
                #[derive(Debug)]
                pub struct S;
            ),
        );
        assert_eq!(messages.len(), 1);
        assert!(messages[0].contains("goes on an `async fn`"));
        let output = supervised(
            quote!(),
            quote!(
                struct S;
            ),
        )
        .to_string();
        assert!(output.starts_with("struct S ;"), "{output}");
    }

    #[test]
    fn keeps_the_fn_and_adds_its_spec() {
        let output = supervised(
            quote!(max = 2),
            quote!(
                async fn worker(ctx: Context) {}
            ),
        )
        .to_string();
        assert!(output.starts_with("async fn worker (ctx : Context) { }"), "{output}");
        assert!(output.contains("struct worker { }"), "{output}");
        assert!(output.contains("const NAME : & str = \"worker\""), "{output}");
        assert!(!output.contains("compile_error"), "{output}");
    }
}
