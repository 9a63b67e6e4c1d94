//! What a macro expands to when its input has errors: the errors, and just
//! enough code that the user's other code sees nothing missing, so that no
//! second error follows from the first. It uses only what every version of
//! the runtime has.

use crate::ast::{Manifest, Supervised, Unit, UnitKind};
use crate::errors::Errors;
use crate::expand;
use crate::typed;
use proc_macro2::TokenStream;
use quote::quote;

/// The errors, then a `Supervisor` with no units; the manifest's task
/// expressions and fns are still used, so that none of them becomes an
/// unused-item warning.
pub(crate) fn manifest(manifest: &Manifest, errors: &syn::Error) -> TokenStream {
    let compile_errors = errors.to_compile_error();
    let mut uses = TokenStream::new();
    used(&manifest.units, &mut uses);
    let private = expand::private_path(manifest.settings.krate.as_ref());
    if manifest.defines_items {
        // Items: the uses go in a closure that is never called, next to the
        // typed form's type (when its line parsed), so that the code using
        // it sees its fields and fns.
        let typed = manifest.handle.as_ref().map(|handle| {
            let fields = typed::fields(handle, &manifest.units, &mut Errors::default());
            let path = |unit: &Unit, group: &str| {
                let name = &unit.name.value;
                let path = if group.is_empty() { name.clone() } else { format!("{group}/{name}") };
                quote!(#path)
            };
            let bodies = typed::Bodies {
                builder: quote!(#private::Supervisor::builder()),
                prelude: TokenStream::new(),
                path: &path,
            };
            typed::items(handle, &fields, &private, &bodies)
        });
        return quote! {
            #compile_errors
            #typed
            const _: fn() = || { #uses };
        };
    }
    quote! {
        {
            #compile_errors
            #uses
            #private::build_manifest(#private::Supervisor::builder())
        }
    }
}

fn used(units: &[Unit], into: &mut TokenStream) {
    for unit in units {
        match &unit.kind {
            UnitKind::Task(expr) => into.extend(quote!(let _ = #expr;)),
            UnitKind::Supervised(path) => into.extend(quote!(let _ = #path;)),
            UnitKind::Group(units) => used(units, into),
            UnitKind::Daemon(_) => {}
        }
    }
}

/// The item as written and the errors; next to an fn that can have them,
/// the type with `NAME` and a `spec()` that never returns, so that its
/// users (`worker::spec()`, `task worker;`) see no error of their own.
pub(crate) fn supervised(input: &Supervised, errors: &syn::Error) -> TokenStream {
    let item = &input.item;
    let compile_errors = errors.to_compile_error();
    let stub = match &input.function {
        // Next to a method, an fn naming `Self` or one that its source file
        // shows in an `impl` or a `trait`, a type would be there too, where
        // it cannot be.
        // Nor next to one named like a primitive type, which it would hide.
        Ok(function) if !function.is_associated() && !crate::valid::is_primitive(&function.sig.ident) => {
            let private = expand::private_path(input.options.krate.as_ref());
            let name = input.unit_name().expect("the item is an fn");
            let facts = expand::policy_facts(None, false, &private, true);
            expand::supervised_items(function, &name, &private, &quote!(loop {}), &quote!(loop {}), &facts)
        }
        _ => TokenStream::new(),
    };
    quote!(#item #stub #compile_errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast;
    use crate::errors::Errors;

    fn error() -> syn::Error {
        syn::Error::new(proc_macro2::Span::call_site(), "the error")
    }

    #[test]
    fn a_manifest_falls_back_to_an_empty_supervisor() {
        let mut errors = Errors::default();
        let parsed =
            ast::manifest::parse(quote!(task a = make_a(); group g {} { task b; daemon c = "c"; }), &mut errors);
        let output = manifest(&parsed, &error()).to_string();
        assert!(output.contains("compile_error ! { \"the error\" }"), "{output}");
        assert!(output.contains("let _ = make_a () ; let _ = b ;"), "{output}");
        assert!(
            output.ends_with("build_manifest (:: supervisor :: __private :: Supervisor :: builder ()) }"),
            "{output}"
        );
        assert!(!output.contains("GroupSpec"), "{output}");
    }

    #[test]
    fn a_typed_manifest_falls_back_to_items() {
        let mut errors = Errors::default();
        let parsed = ast::manifest::parse(quote!(pub struct S; task a = a; group g {} { task b; }), &mut errors);
        let output = manifest(&parsed, &error()).to_string();
        assert!(output.contains("const _ : fn () = || { let _ = a ; let _ = b ; } ;"), "{output}");
        // The type is still defined, with every unit that parsed.
        assert!(output.contains("pub struct S {"), "{output}");
        assert!(output.contains("fn builder () -> :: supervisor :: __private :: SupervisorBuilder { :: supervisor :: __private :: Supervisor :: builder () }"), "{output}");
        assert!(
            output.contains(
                "a : __supervisor_handle . unit (\"a\") , g : SG { b : __supervisor_handle . unit (\"g/b\") ,"
            ),
            "{output}"
        );
    }

    #[test]
    fn an_fn_keeps_a_stub_spec() {
        let mut errors = Errors::default();
        let input = ast::supervised::parse(quote!(), quote!(async fn worker(n: u32) { let x = ; }), &mut errors);
        let output = supervised(&input, &error()).to_string();
        assert!(output.starts_with("async fn worker (n : u32) { let x = ; }"), "{output}");
        assert!(output.contains("struct worker { }"), "{output}");
        assert!(output.contains("fn spec () -> :: supervisor :: __private :: TaskSpec { loop { } }"), "{output}");
    }

    #[test]
    fn nothing_next_to_methods_or_other_items() {
        let mut errors = Errors::default();
        for item in [
            quote!(
                async fn run(&self) {}
            ),
            quote!(
                async fn run() -> Self {}
            ),
            quote!(
                struct S;
            ),
        ] {
            let input = ast::supervised::parse(quote!(), item.clone(), &mut errors);
            let output = supervised(&input, &error()).to_string();
            assert!(!output.contains("spec"), "{output}");
            assert!(output.starts_with(&item.to_string()), "{output}");
        }
        // An fn its source file shows in an `impl`.
        let item = quote!(
            async fn run() {}
        );
        let mut input = ast::supervised::parse(quote!(), item.clone(), &mut errors);
        input.function.as_mut().ok().unwrap().associated = Some(ast::placement::Associated { call: None });
        let output = supervised(&input, &error()).to_string();
        assert!(!output.contains("spec"), "{output}");
        assert!(output.starts_with(&item.to_string()), "{output}");
    }
}
