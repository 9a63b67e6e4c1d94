//! Strings with a suffix (`"5s"ms`): rustc refuses them in code, but hands
//! them to a macro as they are, where reading the value alone would drop
//! the suffix without a word. (Numbers with a suffix are judged where they
//! are read: `max = 3u32` is Rust, `restart = 5s` a duration to quote.)

use proc_macro2::{TokenStream, TokenTree};
use syn::Lit;

use crate::errors::Errors;

/// Refuses, on the literal, every string with a suffix among `tokens`, at
/// any depth.
pub(crate) fn check(tokens: &TokenStream, errors: &mut Errors) {
    for token in tokens.clone() {
        match token {
            TokenTree::Group(group) => check(&group.stream(), errors),
            TokenTree::Literal(literal) => {
                if let Lit::Str(string) = Lit::new(literal)
                    && !string.suffix().is_empty()
                {
                    let message = format!(
                        "unexpected suffix `{}` after the string {:?}: a string takes no suffix; remove it, or put \
                         it inside the quotes",
                        string.suffix(),
                        string.value()
                    );
                    errors.spanned_at(string.span(), message);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn messages(tokens: TokenStream) -> Vec<String> {
        let mut errors = Errors::default();
        check(&tokens, &mut errors);
        let Err(error) = errors.into_result() else { return Vec::new() };
        error.into_iter().map(|error| error.to_string()).collect()
    }

    #[test]
    fn strings_with_a_suffix_are_refused_at_any_depth() {
        let found = messages(quote!(task a { restart = "5s"ms, name = "w"x }; group g {} { daemon d = "sleep 1"s; }));
        assert_eq!(
            found,
            [
                "unexpected suffix `ms` after the string \"5s\": a string takes no suffix; remove it, or put it inside \
                 the quotes",
                "unexpected suffix `x` after the string \"w\": a string takes no suffix; remove it, or put it inside \
                 the quotes",
                "unexpected suffix `s` after the string \"sleep 1\": a string takes no suffix; remove it, or put it \
                 inside the quotes",
            ]
        );
    }

    #[test]
    fn strings_without_a_suffix_and_numbers_pass() {
        assert!(
            messages(quote!(task a = run(5u64, 1.5f32, "x", r"y", 'c', b"z") { max = 3ms, restart = 5s };)).is_empty()
        );
    }
}
