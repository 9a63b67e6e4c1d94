//! Checks that the item under `#[supervised]` is an fn the supervisor can
//! call: a free, non-generic `async fn` that takes a `supervisor::Context`
//! or nothing.

use crate::ast::Supervised;
use crate::errors::Errors;
use syn::ext::IdentExt;
use syn::{FnArg, GenericArgument, PathArguments, Type};

/// Records every error of the item's signature.
pub(crate) fn check(input: &Supervised, errors: &mut Errors) {
    let function = match &input.function {
        Ok(function) => function,
        Err(not_a_fn) if not_a_fn.bodiless_fn => {
            errors.spanned_at(
                not_a_fn.span,
                "#[supervised] needs an fn with a body, e.g. `#[supervised] async fn worker(ctx: Context) { ... }`",
            );
            return;
        }
        Err(not_a_fn) => {
            errors.spanned_at(
                not_a_fn.span,
                "#[supervised] goes on an `async fn`, e.g. `#[supervised] async fn worker(ctx: Context)`",
            );
            return;
        }
    };
    let sig = &function.sig;
    if let Some(receiver) = sig.receiver() {
        errors.spanned(
            receiver.self_token,
            "#[supervised] cannot be used on methods: write a free `async fn` that takes a `Context` (it may call the method)",
        );
        return;
    }
    if let Some(span) = function.self_span() {
        errors.spanned_at(
            span,
            "#[supervised] cannot be used on associated fns (this one names `Self`): write a free `async fn` that takes a `Context` (it may call this one)",
        );
        return;
    }
    if let Some(associated) = &function.associated {
        let call = associated.call.as_deref().unwrap_or("this one");
        errors.spanned(
            &sig.ident,
            format!(
                "#[supervised] cannot be used on associated fns: write a free `async fn` that takes a `Context` (it may call {call})"
            ),
        );
        return;
    }
    if sig.asyncness.is_none() {
        errors.spanned(sig.fn_token, format!("#[supervised] needs an `async fn`: write `async fn {}`", sig.ident));
    }
    if is_primitive(&sig.ident) {
        let name = sig.ident.unraw();
        errors.spanned(
            &sig.ident,
            format!(
                "`{name}` is the name of a primitive type: #[supervised] gives the fn a type of its name, which would take \
                 `{name}` over in this module; rename the fn, e.g. `{name}_task`, and keep its unit name with `name = \"{name}\"`"
            ),
        );
    }
    if let Some(constness) = &sig.constness {
        errors.spanned(constness, "a #[supervised] fn cannot be `const`");
    }
    if let syn::Safety::Unsafe(unsafety) = &sig.safety {
        errors
            .spanned(unsafety, "a #[supervised] fn cannot be `unsafe`: the supervisor calls it with no further checks");
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(abi, "a #[supervised] fn cannot have an `extern` ABI");
    }
    generics(&sig.generics, errors);
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, "a #[supervised] fn cannot be variadic");
    }
    let mut inputs = sig.inputs.iter();
    if let Some(FnArg::Typed(arg)) = inputs.next()
        && let Err(message) = context_type(&arg.ty)
    {
        errors.spanned(&arg.ty, message);
    }
    for extra in inputs {
        errors.spanned(extra, "a #[supervised] fn takes one `Context` parameter or none; remove this parameter");
    }
}

/// The primitive types: a struct of one of these names would shadow it
/// in the whole module.
const PRIMITIVES: &[&str] = &[
    "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
    "f16", "f32", "f64", "f128",
];

/// Whether `ident` names a primitive type.
pub(crate) fn is_primitive(ident: &syn::Ident) -> bool {
    PRIMITIVES.contains(&ident.unraw().to_string().as_str())
}

/// A generic fn, or one with a `where` clause, cannot be called with a
/// `Context` alone. The error goes on `<...>`, else on the `where` clause:
/// the tokens of `Generics` leave the `where` clause out, and an error on
/// no tokens would land on the whole attribute.
fn generics(generics: &syn::Generics, errors: &mut Errors) {
    const MESSAGE: &str = "a #[supervised] fn cannot be generic: the supervisor calls it with a `Context` only";
    if !generics.params.is_empty() {
        errors.spanned(generics, MESSAGE);
    } else if let Some(where_clause) = &generics.where_clause {
        errors.spanned(where_clause, format!("{MESSAGE}; remove the `where` clause"));
    }
}

/// Whether `ty` can be `supervisor::Context`, with the fix when it cannot.
/// Only what no name of it can be is refused here: a reference, an
/// `impl Trait`, `std::task::Context` written out (or with its lifetime).
/// Any other type (`Context`, `supervisor::Context`, an alias of it such as
/// `use supervisor::Context as SvContext;` or `type Ctx = Context;`) is left
/// to the compiler: the generated code converts the run's `Context` into
/// it, and a type that is not ours is an error on it that says so.
fn context_type(ty: &Type) -> Result<(), String> {
    let written = type_text(ty);
    match ty {
        Type::Group(group) => context_type(&group.elem),
        Type::Paren(paren) => context_type(&paren.elem),
        Type::Path(path) if path.qself.is_none() => {
            let segments: Vec<String> = path.path.segments.iter().map(|segment| segment.ident.to_string()).collect();
            let Some(last) = path.path.segments.last() else { return Ok(()) };
            let is_std = matches!(segments.first().map(String::as_str), Some("std" | "core"))
                && segments.get(1).is_some_and(|second| second == "task");
            let has_lifetime = match &last.arguments {
                PathArguments::AngleBracketed(args) => {
                    args.args.iter().any(|arg| matches!(arg, GenericArgument::Lifetime(_)))
                }
                _ => false,
            };
            if last.ident == "Context" && (is_std || has_lifetime || segments.len() == 2 && segments[0] == "task") {
                return Err(std_context(&written));
            }
            Ok(())
        }
        Type::Reference(reference) => {
            if let Err(message) = context_type(&reference.elem)
                && message.contains("std::task::Context")
            {
                return Err(std_context(&written));
            }
            Err(format!(
                "a #[supervised] fn takes its `Context` by value, e.g. `ctx: Context`; found `{written}`: remove the `&`"
            ))
        }
        Type::ImplTrait(_) => Err(format!(
            "the parameter of a #[supervised] fn must be a `Context`, e.g. `ctx: Context`; found `{written}`"
        )),
        _ => Ok(()),
    }
}

fn std_context(written: &str) -> String {
    format!(
        "`{written}` is `std::task::Context`, the context a future is polled with; a #[supervised] fn takes a `supervisor::Context`: write `ctx: supervisor::Context` (or `use supervisor::Context;`)"
    )
}

/// A type as a person writes it: `&mut Context<'_>`, not `& mut Context < '_ >`.
pub(crate) fn type_text(ty: &Type) -> String {
    let text = quote::ToTokens::to_token_stream(ty).to_string();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != ' ' {
            out.push(c);
            continue;
        }
        let before = out.chars().last();
        let after = chars.peek().copied();
        let glue_after = matches!(before, Some('&' | '<' | '(' | '[' | ':' | '\'' | '*'));
        let glue_before = matches!(after, Some('<' | '>' | ')' | ']' | ',' | ':' | ';'))
            || after == Some('(') && before.is_some_and(|c| c.is_alphanumeric() || c == '_');
        if !glue_after && !glue_before {
            out.push(' ');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast;
    use proc_macro2::TokenStream;
    use quote::quote;

    fn messages(item: TokenStream) -> Vec<String> {
        let mut errors = Errors::default();
        let input = ast::supervised::parse(TokenStream::new(), item, &mut errors);
        check(&input, &mut errors);
        match errors.into_result() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn message(item: TokenStream) -> String {
        messages(item).join(" | ")
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
            quote!(
                async fn f() {}
            ),
            quote!(
                async fn f() {
                    struct A;
                    impl A {
                        fn new() -> Self {
                            A
                        }
                    }
                }
            ),
            quote!(
                async fn f() {
                    self::helper();
                }
            ),
        ] {
            assert!(messages(item.clone()).is_empty(), "{item}: {:?}", messages(item.clone()));
        }
    }

    #[test]
    fn rejects_what_cannot_be_supervised() {
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
            .ends_with("cannot be generic: the supervisor calls it with a `Context` only; remove the `where` clause")
        );
        assert!(
            message(quote!(
                async fn f(ctx: impl Sized) {}
            ))
            .contains("must be a `Context`, e.g. `ctx: Context`; found `impl Sized`")
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
        assert!(
            message(quote!(
                struct S;
            ))
            .contains("goes on an `async fn`")
        );
        assert!(
            message(quote!(
                async fn f(ctx: Context);
            ))
            .contains("needs an fn with a body")
        );
    }

    /// A type that can name our `Context` under another name is the
    /// compiler's to judge: the conversion of the run's `Context` into it
    /// fails, on it, when it is not ours.
    #[test]
    fn other_names_of_the_context_are_left_to_the_compiler() {
        for item in [
            quote!(
                async fn f(ctx: SvContext) {}
            ),
            quote!(
                async fn f(ctx: Ctx) {}
            ),
            quote!(
                async fn f(ctx: (Context)) {}
            ),
            quote!(
                async fn f(ctx: <Run as HasContext>::Context) {}
            ),
            quote!(
                async fn f(ctx: context!()) {}
            ),
            quote!(
                async fn f(port: u16) {}
            ),
        ] {
            assert!(messages(item.clone()).is_empty(), "{item}: {:?}", messages(item.clone()));
        }
        assert!(
            message(quote!(
                async fn f(ctx: &SvContext) {}
            ))
            .contains("takes its `Context` by value, e.g. `ctx: Context`; found `&SvContext`: remove the `&`")
        );
    }

    #[test]
    fn a_body_is_never_parsed() {
        assert!(messages(quote!(async fn f(ctx: Context) { let x = ; })).is_empty());
    }

    #[test]
    fn associated_fns_that_name_self() {
        let expected = "cannot be used on associated fns (this one names `Self`)";
        assert!(
            message(quote!(
                async fn f(ctx: Context) -> Self {}
            ))
            .contains(expected)
        );
        assert!(
            message(quote!(
                async fn f(ctx: Context) {
                    Self::helper().await
                }
            ))
            .contains(expected)
        );
        // A type of its own in the body has its own `Self`.
        assert!(
            messages(quote!(
                async fn f(ctx: Context) {
                    struct Node {
                        next: Option<Box<Self>>,
                    }
                    struct Pair(Box<Self>, u8);
                    enum List {
                        Nil,
                        Cons(u8, Box<Self>),
                    }
                    impl Node {
                        fn new() -> Self {
                            Node { next: None }
                        }
                    }
                }
            ))
            .is_empty()
        );
        assert!(
            message(quote!(
                async fn f(ctx: Context) {
                    struct Pair(u8);
                    Self::helper().await
                }
            ))
            .contains(expected)
        );
    }

    #[test]
    fn associated_fns_found_in_their_file() {
        let with = |call: Option<&str>| {
            let mut errors = Errors::default();
            let mut input = ast::supervised::parse(
                TokenStream::new(),
                quote!(
                    async fn run(n: u32) {}
                ),
                &mut errors,
            );
            let function = input.function.as_mut().ok().unwrap();
            function.associated = Some(ast::placement::Associated { call: call.map(str::to_owned) });
            check(&input, &mut errors);
            errors.into_result().unwrap_err().into_iter().map(|e| e.to_string()).collect::<Vec<_>>()
        };
        // The only error: the others would not help while it is there.
        assert_eq!(
            with(Some("`Service::run`")),
            [
                "#[supervised] cannot be used on associated fns: write a free `async fn` that takes a `Context` (it may call `Service::run`)"
            ]
        );
        assert_eq!(
            with(None),
            [
                "#[supervised] cannot be used on associated fns: write a free `async fn` that takes a `Context` (it may call this one)"
            ]
        );
    }

    #[test]
    fn contexts_that_are_not_ours() {
        for item in [
            quote!(
                async fn f(cx: std::task::Context<'_>) {}
            ),
            quote!(
                async fn f(cx: core::task::Context) {}
            ),
            quote!(
                async fn f(cx: task::Context) {}
            ),
            quote!(
                async fn f(cx: Context<'static>) {}
            ),
            quote!(
                async fn f(cx: &mut Context<'_>) {}
            ),
        ] {
            assert!(
                message(item.clone()).contains("is `std::task::Context`, the context a future is polled with"),
                "{item}"
            );
        }
        assert_eq!(
            messages(quote!(
                async fn f(cx: &mut Context<'_>) {}
            )),
            [
                "`&mut Context<'_>` is `std::task::Context`, the context a future is polled with; a #[supervised] fn takes a `supervisor::Context`: write `ctx: supervisor::Context` (or `use supervisor::Context;`)"
            ]
        );
        assert!(
            message(quote!(
                async fn f(ctx: &Context) {}
            ))
            .contains("takes its `Context` by value")
        );
    }

    #[test]
    fn types_read_as_written() {
        let text = |ty: TokenStream| type_text(&syn::parse2(ty).unwrap());
        assert_eq!(text(quote!(&mut std::task::Context<'_>)), "&mut std::task::Context<'_>");
        assert_eq!(text(quote!(Vec<(u8, String)>)), "Vec<(u8, String)>");
        assert_eq!(text(quote!([u8; 4])), "[u8; 4]");
        assert_eq!(text(quote!(*const u8)), "*const u8");
        assert_eq!(text(quote!(impl Fn(u8) -> u8)), "impl Fn(u8) -> u8");
    }
}
