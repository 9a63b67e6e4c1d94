//! `strategy = "one_for_one" | "one_for_all" | "rest_for_one"`: what a group
//! restarts when one of its units is restarted.

use crate::options::{self, RawOption};
use crate::suggest;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote_spanned};

/// The strategies as written, with the `Strategy` variant each names.
const STRATEGIES: &[(&str, &str)] =
    &[("one_for_one", "OneForOne"), ("one_for_all", "OneForAll"), ("rest_for_one", "RestForOne")];

/// A known strategy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StrategyValue {
    /// The `Strategy` variant, e.g. `"RestForOne"`.
    pub(crate) variant: &'static str,
    pub(crate) span: Span,
}

impl StrategyValue {
    /// `Strategy::RestForOne` and the like.
    pub(crate) fn expand(&self, private: &TokenStream) -> TokenStream {
        let variant = format_ident!("{}", self.variant, span = self.span);
        quote_spanned!(self.span=> #private::Strategy::#variant)
    }
}

/// Reads `strategy = "rest_for_one"`.
pub(crate) fn parse(option: &RawOption) -> syn::Result<StrategyValue> {
    let names: Vec<&str> = STRATEGIES.iter().map(|(name, _)| *name).collect();
    let expected = format!("`strategy` takes {}", quoted(&names));
    let lit =
        options::string(option).map_err(|_| option.error(format!("{expected}, e.g. `strategy = \"one_for_all\"`")))?;
    lookup(&lit.value())
        .map(|variant| StrategyValue { variant, span: lit.span() })
        .map_err(|message| syn::Error::new(lit.span(), message))
}

/// The `Strategy` variant of a strategy written `"one_for_one"`.
pub(crate) fn lookup(text: &str) -> Result<&'static str, String> {
    if let Some((_, variant)) = STRATEGIES.iter().find(|(name, _)| *name == text) {
        return Ok(variant);
    }
    let names: Vec<&str> = STRATEGIES.iter().map(|(name, _)| *name).collect();
    // `OneForAll`, `one-for-all` and `oneforall` all mean `one_for_all`.
    let squashed = text.to_ascii_lowercase().replace(['_', '-', ' '], "");
    let by_shape = STRATEGIES.iter().find(|(name, _)| name.replace('_', "") == squashed).map(|(name, _)| *name);
    let hint = match by_shape.or_else(|| suggest::closest(text, &names)) {
        Some(name) => format!(" (did you mean \"{name}\"?)"),
        None => String::new(),
    };
    Err(format!("unknown strategy \"{text}\"{hint}; expected {}", quoted(&names)))
}

/// `"a", "b" or "c"`.
fn quoted(names: &[&str]) -> String {
    match names {
        [init @ .., last] if !init.is_empty() => {
            let init: Vec<String> = init.iter().map(|name| format!("\"{name}\"")).collect();
            format!("{} or \"{last}\"", init.join(", "))
        }
        _ => names.iter().map(|name| format!("\"{name}\"")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::tests::option;
    use quote::quote;

    #[test]
    fn known_strategies() {
        assert_eq!(lookup("one_for_one"), Ok("OneForOne"));
        assert_eq!(lookup("one_for_all"), Ok("OneForAll"));
        assert_eq!(lookup("rest_for_one"), Ok("RestForOne"));
    }

    #[test]
    fn unknown_strategies_list_the_three() {
        let expected = "expected \"one_for_one\", \"one_for_all\" or \"rest_for_one\"";
        let message = lookup("one_for_none").unwrap_err();
        assert!(message.starts_with("unknown strategy \"one_for_none\" (did you mean \"one_for_one\"?)"), "{message}");
        assert!(message.ends_with(expected), "{message}");
        assert!(lookup("OneForAll").unwrap_err().contains("(did you mean \"one_for_all\"?)"));
        assert!(lookup("rest-for-one").unwrap_err().contains("(did you mean \"rest_for_one\"?)"));
        assert_eq!(lookup("simple").unwrap_err(), format!("unknown strategy \"simple\"; {expected}"));
    }

    #[test]
    fn options() {
        let value = parse(&option(quote!(strategy = "rest_for_one"))).unwrap();
        assert_eq!(value.expand(&quote!(p)).to_string(), "p :: Strategy :: RestForOne");
        let error = parse(&option(quote!(strategy = one_for_one))).unwrap_err().to_string();
        assert!(error.starts_with("`strategy` takes \"one_for_one\""), "{error}");
    }
}
