//! The `key = value, ...` option lists shared by `#[supervised(...)]` and the
//! `{ ... }` blocks of `supervise!`: their syntax, and the typed readers of
//! one value each.

use crate::errors::Errors;
use crate::limits;
use crate::suggest;
use proc_macro2::{TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Ident, Lit, LitStr, Token};

/// One `key = value` pair, the value kept as tokens until a reader for the
/// key's type looks at it; a bare `key` (a flag such as `critical`) has no
/// value tokens.
pub(crate) struct RawOption {
    pub(crate) key: Ident,
    pub(crate) value: TokenStream,
}

impl RawOption {
    /// The key as written, without a raw-identifier prefix.
    pub(crate) fn name(&self) -> String {
        self.key.unraw().to_string()
    }

    /// Whether the key was written alone, without `= value`.
    pub(crate) fn is_bare(&self) -> bool {
        self.value.is_empty()
    }

    /// The error for a key that needs a value but was written alone.
    pub(crate) fn missing_value(&self) -> syn::Error {
        let name = self.name();
        syn::Error::new(self.key.span(), format!("expected `=` after `{name}`: options are written `{name} = value`"))
    }

    /// Runs `parser` over the whole value.
    fn parse_value<T>(&self, parser: impl Parser<Output = T>) -> syn::Result<T> {
        parser.parse2(self.value.clone())
    }

    /// An error spanned on the value (on the key for a bare key).
    pub(crate) fn error(&self, message: impl std::fmt::Display) -> syn::Error {
        if self.is_bare() {
            return syn::Error::new(self.key.span(), message);
        }
        syn::Error::new_spanned(&self.value, message)
    }
}

/// Parses `key = value, key, ...` (a trailing comma is fine); a key alone
/// is a flag, and only the readers of flags accept one.
pub(crate) fn parse_options(input: ParseStream<'_>) -> syn::Result<Vec<RawOption>> {
    let mut options = Vec::new();
    while !input.is_empty() {
        let key = input
            .call(Ident::parse_any)
            .map_err(|error| syn::Error::new(error.span(), "expected an option such as `restart = \"5s\"`"))?;
        if input.is_empty() || input.peek(Token![,]) {
            options.push(RawOption { key, value: TokenStream::new() });
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
            continue;
        }
        if !input.peek(Token![=]) {
            return Err(RawOption { key, value: TokenStream::new() }.missing_value());
        }
        input.parse::<Token![=]>()?;
        let value = value_tokens(input, |input| input.peek(Token![,]));
        if value.is_empty() {
            return Err(syn::Error::new(key.span(), format!("`{}` has no value after `=`", key.unraw())));
        }
        options.push(RawOption { key, value });
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
    }
    Ok(options)
}

/// Collects token trees until `at_end` says so or the input ends.
pub(crate) fn value_tokens(input: ParseStream<'_>, at_end: fn(ParseStream<'_>) -> bool) -> TokenStream {
    let mut tokens = TokenStream::new();
    while !input.is_empty() && !at_end(input) {
        match input.parse::<TokenTree>() {
            Ok(tree) => tokens.extend([tree]),
            Err(_) => break,
        }
    }
    tokens
}

/// Tracks which keys were given, to reject a key given twice.
#[derive(Default)]
pub(crate) struct Seen {
    first: Vec<Ident>,
}

impl Seen {
    /// `true` for the first occurrence of the key; an error for a repeat.
    pub(crate) fn first(&mut self, option: &RawOption, errors: &mut Errors) -> bool {
        let name = option.name();
        if let Some(first) = self.first.iter().find(|key| key.unraw() == name) {
            errors.spanned(&option.key, format!("`{name}` is given twice; keep only one `{name} = ...`"));
            errors.spanned(first, format!("the first `{name}` is here"));
            return false;
        }
        self.first.push(option.key.clone());
        true
    }
}

/// The error for a key that the context does not know.
pub(crate) fn unknown(option: &RawOption, what: &str, known: &[&str]) -> syn::Error {
    let name = option.name();
    syn::Error::new(
        option.key.span(),
        format!("unknown {what} `{name}`{}; expected {}", suggest::did_you_mean(&name, known), suggest::one_of(known),),
    )
}

/// A string literal such as `name = "worker"`.
pub(crate) fn string(option: &RawOption) -> syn::Result<LitStr> {
    if option.is_bare() {
        return Err(option.missing_value());
    }
    option.parse_value(|input: ParseStream<'_>| input.parse::<LitStr>()).map_err(|_| {
        let name = option.name();
        option.error(format!("`{name}` takes a string literal: `{name} = \"...\"`"))
    })
}

/// A numeric literal with an optional leading minus sign.
pub(crate) enum Number {
    Int(i128),
    Float(f64),
}

/// Reads the value as a number literal, or `None` when it is not one.
pub(crate) fn number(option: &RawOption) -> Option<syn::Result<Number>> {
    if option.is_bare() {
        return Some(Err(option.missing_value()));
    }
    let parsed = option.parse_value(|input: ParseStream<'_>| {
        let negative = input.parse::<Option<Token![-]>>()?.is_some();
        let lit: Lit = input.parse()?;
        Ok((negative, lit))
    });
    let (negative, lit) = parsed.ok()?;
    let sign = if negative { -1 } else { 1 };
    Some(match lit {
        Lit::Int(int) => int.base10_parse::<i128>().map(|n| Number::Int(sign as i128 * n)),
        Lit::Float(float) => float.base10_parse::<f64>().map(|x| Number::Float(f64::from(sign) * x)),
        _ => return None,
    })
}

/// The restart limit: `-1` for unlimited, else a count of restarts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum MaxRestarts {
    Unlimited,
    AtMost(u32),
}

/// `max = -1 | 0 | n`.
pub(crate) fn max_restarts(option: &RawOption) -> syn::Result<MaxRestarts> {
    const HELP: &str =
        "write `max = -1` for unlimited restarts, `max = 0` to never restart, or `max = n` for at most n restarts";
    match number(option) {
        Some(Ok(Number::Int(limits::MAX_UNLIMITED))) => Ok(MaxRestarts::Unlimited),
        Some(Ok(Number::Int(n))) if n < limits::MAX_UNLIMITED => {
            Err(option.error(format!("`max = {n}` is below {}; {HELP}", limits::MAX_UNLIMITED)))
        }
        Some(Ok(Number::Int(n))) => u32::try_from(n).map(MaxRestarts::AtMost).map_err(|_| {
            option.error(format!(
                "`max = {n}` is too large: at most {} restarts can be counted; write `max = -1` for unlimited restarts",
                u32::MAX
            ))
        }),
        Some(Ok(Number::Float(_))) => Err(option.error(format!("`max` must be a whole number; {HELP}"))),
        Some(Err(error)) => Err(error),
        None => Err(option.error(format!("`max` takes an integer; {HELP}"))),
    }
}

/// A non-negative count such as `window_max = 5`.
pub(crate) fn count(option: &RawOption) -> syn::Result<u32> {
    count_from(option, 0)
}

/// A count of at least `min`, such as `liveness_failures = 3`.
pub(crate) fn count_from(option: &RawOption, min: u32) -> syn::Result<u32> {
    let n = whole_number(option, i128::from(min), i128::from(u32::MAX))?;
    Ok(u32::try_from(n).expect("checked against the range"))
}

/// A whole number in `min..=max`.
pub(crate) fn whole_number(option: &RawOption, min: i128, max: i128) -> syn::Result<i128> {
    let name = option.name();
    match number(option) {
        Some(Ok(Number::Int(n))) if (min..=max).contains(&n) => Ok(n),
        Some(Ok(Number::Int(n))) => {
            Err(option.error(format!("`{name} = {n}` is out of range: write a whole number from {min} to {max}")))
        }
        Some(Err(error)) => Err(error),
        _ => Err(option.error(format!("`{name}` takes a whole number, e.g. `{name} = {}`", min.max(5).min(max)))),
    }
}

/// A number in `min..=max` (integers are accepted as floats).
pub(crate) fn float_in(option: &RawOption, min: f64, max: f64, example: &str) -> syn::Result<f64> {
    let name = option.name();
    let value = match number(option) {
        Some(Ok(Number::Int(n))) => n as f64,
        Some(Ok(Number::Float(x))) => x,
        Some(Err(error)) => return Err(error),
        None => {
            return Err(option.error(format!("`{name}` takes a number, e.g. `{name} = {example}`")));
        }
    };
    if !value.is_finite() || value < min || value > max {
        let range = if max.is_infinite() { format!("at least {min:?}") } else { format!("from {min:?} to {max:?}") };
        return Err(
            option.error(format!("`{name} = {value}` is out of range: it must be {range}, e.g. `{name} = {example}`"))
        );
    }
    Ok(value)
}

/// A flag: `critical` alone or `critical = true | false`.
pub(crate) fn flag(option: &RawOption) -> syn::Result<bool> {
    if option.is_bare() {
        return Ok(true);
    }
    let name = option.name();
    option.parse_value(|input: ParseStream<'_>| input.parse::<syn::LitBool>()).map(|lit| lit.value).map_err(|_| {
        option.error(format!("`{name}` is a flag: write `{name}` alone, or `{name} = true` / `{name} = false`"))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use quote::quote;

    pub(crate) fn options(tokens: TokenStream) -> Vec<RawOption> {
        parse_options.parse2(tokens).unwrap()
    }

    pub(crate) fn option(tokens: TokenStream) -> RawOption {
        let mut options = options(tokens);
        assert_eq!(options.len(), 1);
        options.remove(0)
    }

    fn parse_error(tokens: TokenStream) -> String {
        match parse_options.parse2(tokens) {
            Ok(_) => panic!("expected an error"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn parses_key_value_lists() {
        let parsed = options(quote!(restart = "5s", max = -1, crate = "x", env = { A = "b" },));
        let names: Vec<String> = parsed.iter().map(RawOption::name).collect();
        assert_eq!(names, ["restart", "max", "crate", "env"]);
        assert_eq!(parsed[1].value.to_string(), "- 1");
        assert!(options(quote!()).is_empty());
    }

    #[test]
    fn bare_keys_are_flags() {
        let parsed = options(quote!(critical, max = 1, other));
        assert!(parsed[0].is_bare() && !parsed[1].is_bare() && parsed[2].is_bare());
        assert!(flag(&parsed[0]).unwrap());
        assert!(!flag(&option(quote!(critical = false))).unwrap());
        assert!(flag(&option(quote!(critical = "yes"))).unwrap_err().to_string().contains("is a flag"));
        assert!(string(&parsed[2]).err().unwrap().to_string().contains("expected `=` after `other`"));
        assert!(max_restarts(&option(quote!(max))).unwrap_err().to_string().contains("expected `=` after `max`"));
    }

    #[test]
    fn syntax_errors() {
        assert!(parse_error(quote!(restart "5s")).contains("expected `=` after `restart`"));
        assert!(parse_error(quote!(restart = , max = 1)).contains("`restart` has no value"));
        assert!(parse_error(quote!("5s")).contains("expected an option"));
    }

    #[test]
    fn repeated_keys() {
        let parsed = options(quote!(max = 1, max = 2));
        let mut seen = Seen::default();
        let mut errors = Errors::default();
        assert!(seen.first(&parsed[0], &mut errors));
        assert!(!seen.first(&parsed[1], &mut errors));
        let message = errors.into_result().unwrap_err().to_string();
        assert!(message.contains("`max` is given twice"), "{message}");
    }

    #[test]
    fn unknown_keys() {
        let error = unknown(&option(quote!(restat = "1s")), "task option", &["restart", "max"]);
        assert_eq!(
            error.to_string(),
            "unknown task option `restat` (did you mean `restart`?); expected `restart` or `max`"
        );
    }

    #[test]
    fn max_values() {
        let max = |tokens| max_restarts(&option(tokens));
        assert_eq!(max(quote!(max = -1)).unwrap(), MaxRestarts::Unlimited);
        assert_eq!(max(quote!(max = 0)).unwrap(), MaxRestarts::AtMost(0));
        assert_eq!(max(quote!(max = 3)).unwrap(), MaxRestarts::AtMost(3));
        assert!(max(quote!(max = -2)).unwrap_err().to_string().contains("below -1"));
        assert!(max(quote!(max = 1.5)).unwrap_err().to_string().contains("whole number"));
        assert!(max(quote!(max = "3")).unwrap_err().to_string().contains("takes an integer"));
        assert!(max(quote!(max = 99999999999)).unwrap_err().to_string().contains("too large"));
    }

    #[test]
    fn counts_and_floats() {
        assert_eq!(count(&option(quote!(window_max = 5))).unwrap(), 5);
        assert!(count(&option(quote!(window_max = -5))).is_err());
        assert!(count(&option(quote!(window_max = "5"))).is_err());
        assert!(
            count_from(&option(quote!(liveness_failures = 0)), 1)
                .unwrap_err()
                .to_string()
                .contains("`liveness_failures = 0` is out of range: write a whole number from 1 to 4294967295")
        );
        assert_eq!(whole_number(&option(quote!(code = 255)), 0, 255).unwrap(), 255);
        assert!(whole_number(&option(quote!(code = 256)), 0, 255).is_err());
        let backoff = |tokens| float_in(&option(tokens), 1.0, f64::INFINITY, "2.0");
        assert_eq!(backoff(quote!(backoff = 2.0)).unwrap(), 2.0);
        assert_eq!(backoff(quote!(backoff = 3)).unwrap(), 3.0);
        assert!(backoff(quote!(backoff = 0.5)).unwrap_err().to_string().contains("at least 1.0"));
        let jitter = |tokens| float_in(&option(tokens), 0.0, 1.0, "0.1");
        assert!(jitter(quote!(jitter = 1.5)).unwrap_err().to_string().contains("from 0.0 to 1.0"));
        assert!(jitter(quote!(jitter = "x")).unwrap_err().to_string().contains("takes a number"));
    }

    #[test]
    fn strings() {
        assert_eq!(string(&option(quote!(name = "a"))).unwrap().value(), "a");
        assert!(string(&option(quote!(name = a))).err().unwrap().to_string().contains("string literal"));
    }
}
