//! Parses `#[supervised(...)]`: its options, and the item it is on as an fn
//! whose body stays tokens (it is emitted as written, so a syntax error in
//! it is reported by rustc, where it is).

use crate::ast::placement;
use crate::ast::unit::{self, Place};
use crate::ast::{NotAFn, Supervised, SupervisedFn};
use crate::errors::Errors;
use crate::options;
use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Signature, Token, Visibility};

/// Parses the attribute's arguments and its item, recording every error.
pub(crate) fn parse(args: TokenStream, item: TokenStream, errors: &mut Errors) -> Supervised {
    let raw = errors.take(options::parse_options.parse2(args)).unwrap_or_default();
    let options = unit::read(&raw, Place::Attribute, errors);
    let item = without_another_supervised(item, errors);
    let function = maybe_fn.parse2(item.clone()).map_err(|_| not_a_fn(&item)).map(|mut function| {
        if !function.is_associated() {
            function.associated = placement::associated(&function.sig.ident);
        }
        function
    });
    Supervised { options, item, function }
}

/// `item` without a second `#[supervised]`, which is refused: it would
/// make the fn's items twice.
fn without_another_supervised(item: TokenStream, errors: &mut Errors) -> TokenStream {
    let split = |input: ParseStream<'_>| Ok((input.call(Attribute::parse_outer)?, input.parse::<TokenStream>()?));
    let Ok((attrs, rest)) = split.parse2(item.clone()) else { return item };
    let is_supervised = |attr: &Attribute| attr.path().segments.last().is_some_and(|last| last.ident == "supervised");
    let Some(second) = attrs.iter().find(|attr| is_supervised(attr)) else { return item };
    errors.push(syn::Error::new_spanned(second, "`#[supervised]` is given twice: keep one, with every option in it"));
    let kept = attrs.iter().filter(|attr| !is_supervised(attr));
    quote::quote!(#(#kept)* #rest)
}

/// Outer attributes, visibility, signature and a braced body kept as
/// tokens (tracing-attributes' `MaybeItemFn`).
fn maybe_fn(input: ParseStream<'_>) -> syn::Result<SupervisedFn> {
    input.call(Attribute::parse_outer)?;
    let vis: Visibility = input.parse()?;
    let sig: Signature = input.parse()?;
    let body = match input.parse::<TokenTree>()? {
        TokenTree::Group(group) if group.delimiter() == Delimiter::Brace => group.stream(),
        other => return Err(syn::Error::new(other.span(), "expected the fn's body")),
    };
    if !input.is_empty() {
        return Err(input.error("unexpected tokens after the fn"));
    }
    Ok(SupervisedFn { vis, sig, body, associated: None })
}

impl SupervisedFn {
    /// The first `Self` in the signature or the body, outside items nested
    /// in the body: a free fn cannot name `Self`, so the fn is in an `impl`
    /// or a `trait`. (Without `self` or `Self`, an associated fn looks
    /// exactly like a free one to an attribute: see `placement`.)
    pub(crate) fn self_span(&self) -> Option<Span> {
        let sig = quote::ToTokens::to_token_stream(&self.sig);
        find_self(sig, false).or_else(|| find_self(self.body.clone(), true))
    }

    /// Whether the fn is one that nothing can be placed next to: a method,
    /// an fn that names `Self`, or one that its source file shows in an
    /// `impl` or a `trait`.
    pub(crate) fn is_associated(&self) -> bool {
        self.sig.receiver().is_some() || self.self_span().is_some() || self.associated.is_some()
    }
}

/// The first `Self` in `tokens`; in a body (`skip_items`), not inside a
/// nested `impl`, `trait`, `struct` or `enum`, which has a `Self` of its
/// own (`struct Node { next: Option<Box<Self>> }`).
fn find_self(tokens: TokenStream, skip_items: bool) -> Option<Span> {
    let mut tokens = tokens.into_iter();
    while let Some(token) = tokens.next() {
        match token {
            TokenTree::Ident(ident) if ident == "Self" => return Some(ident.span()),
            TokenTree::Ident(ident)
                if skip_items && ["impl", "trait", "struct", "enum"].iter().any(|&k| ident == k) =>
            {
                // To its body, or to the `;` of a tuple or unit struct.
                for token in tokens.by_ref() {
                    match &token {
                        TokenTree::Group(group) if group.delimiter() == Delimiter::Brace => break,
                        TokenTree::Punct(punct) if punct.as_char() == ';' => break,
                        _ => {}
                    }
                }
            }
            TokenTree::Group(group) => {
                if let Some(span) = find_self(group.stream(), skip_items) {
                    return Some(span);
                }
            }
            _ => {}
        }
    }
    None
}

/// What the item is, when it is not an fn with a body.
fn not_a_fn(item: &TokenStream) -> NotAFn {
    let bodiless_fn = (|input: ParseStream<'_>| {
        input.call(Attribute::parse_outer)?;
        input.parse::<Visibility>()?;
        input.parse::<Signature>()?;
        input.parse::<Token![;]>()?;
        Ok(())
    })
    .parse2(item.clone())
    .is_ok();
    NotAFn { span: item_keyword_span(item), bodiless_fn }
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

    fn parsed(args: TokenStream, item: TokenStream) -> Supervised {
        let mut errors = Errors::default();
        let parsed = parse(args, item, &mut errors);
        errors.into_result().unwrap();
        parsed
    }

    #[test]
    fn keeps_the_body_as_tokens() {
        let input =
            parsed(quote!(restart = "1s"), quote!(#[doc = "x"] pub async fn worker(ctx: Context) { let x = ; }));
        let function = input.function.as_ref().ok().unwrap();
        assert_eq!(function.sig.ident, "worker");
        assert_eq!(function.body.to_string(), "let x = ;");
        assert!(matches!(function.vis, Visibility::Public(_)));
        assert!(input.options.policy.delay.is_some());
        assert_eq!(input.unit_name().as_deref(), Some("worker"));
    }

    #[test]
    fn the_name_option_names_the_unit() {
        let input = parsed(
            quote!(name = "custom"),
            quote!(
                async fn worker() {}
            ),
        );
        assert_eq!(input.unit_name().as_deref(), Some("custom"));
    }

    #[test]
    fn other_items_are_not_fns() {
        let not_a_fn = |item| parsed(quote!(), item).function.err().unwrap();
        assert!(
            !not_a_fn(quote!(
                #[derive(Debug)]
                pub struct S;
            ))
            .bodiless_fn
        );
        assert!(
            not_a_fn(quote!(
                async fn run(ctx: Context);
            ))
            .bodiless_fn
        );
        assert!(!not_a_fn(quote!(impl S {})).bodiless_fn);
    }
}
