//! The `key = value, ...` option lists shared by `#[supervised(...)]` and the
//! `{ ... }` blocks of `supervise!`: their syntax, and the typed readers of
//! one value each.

use crate::errors::Errors;
use crate::limits;
use crate::suggest;
use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::ToTokens;
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

    /// The value as written, without the spaces between its tokens: `-1`
    /// rather than `- 1`, for the messages about a number.
    pub(crate) fn number_text(&self) -> String {
        self.value.to_string().split_whitespace().collect()
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
        let value = if input.is_empty() || input.peek(Token![,]) || starts_option(input) {
            TokenStream::new()
        } else if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            let value = value_tokens(input, |input| input.peek(Token![,]) || starts_option(input));
            if value.is_empty() {
                return Err(syn::Error::new(key.span(), format!("`{}` has no value after `=`", key.unraw())));
            }
            value
        } else {
            return Err(RawOption { key, value: TokenStream::new() }.missing_value());
        };
        let option = RawOption { key, value };
        if starts_option(input) {
            return Err(missing_comma(&option, input));
        }
        options.push(option);
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
    }
    Ok(options)
}

/// Whether the input is at `key =`, the start of an option: after a value
/// (or a flag), it means that the `,` between them is missing.
fn starts_option(input: ParseStream<'_>) -> bool {
    input.peek(Ident::peek_any) && input.peek2(Token![=])
}

/// The error for `option` followed by another option without a `,`,
/// spanned from the end of the one to the key of the other.
fn missing_comma(option: &RawOption, input: ParseStream<'_>) -> syn::Error {
    let Ok(next) = input.fork().call(Ident::parse_any) else {
        return input.error("expected `,` between two options");
    };
    let last = option.value.clone().into_iter().last().map_or_else(|| option.key.to_token_stream(), TokenStream::from);
    let (name, next_name) = (option.name(), next.unraw());
    syn::Error::new_spanned(
        quote::quote!(#last #next),
        format!(
            "expected `,` between `{name}` and `{next_name}`: options are separated by commas, \
             e.g. `restart = \"5s\", max = 3`"
        ),
    )
}

/// Collects token trees until `at_end` says so or the input ends.
pub(crate) fn value_tokens(input: ParseStream<'_>, at_end: fn(ParseStream<'_>) -> bool) -> TokenStream {
    let mut tokens = TokenStream::new();
    while !input.is_empty() && !at_end(input) {
        match input.parse::<TokenTree>() {
            // A value forwarded by a `macro_rules!` macro as an `expr` (or
            // other) fragment comes in an invisible group: its tokens are
            // the value, as written at the macro's call.
            Ok(TokenTree::Group(group)) if group.delimiter() == Delimiter::None => tokens.extend(group.stream()),
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
    /// A whole number beyond `i128`, as the nearest `f64` (or an infinity):
    /// out of every whole range, yet a finite factor for `backoff`.
    HugeInt(f64),
}

/// Reads the value as a number literal, or `None` when it is not one.
pub(crate) fn number(option: &RawOption) -> Option<syn::Result<Number>> {
    if option.is_bare() {
        return Some(Err(option.missing_value()));
    }
    let (negative, lit) = option.parse_value(signed_literal).ok()?;
    let signed = |x: f64| if negative { -x } else { x };
    // Digits beyond the range of `f64` read as an infinity, which no reader accepts.
    let float = |digits: &str| signed(digits.parse::<f64>().unwrap_or(f64::INFINITY));
    let number = match &lit {
        // `3f32` is a float, as rustc reads it.
        Lit::Int(int) if FLOAT_SUFFIXES.contains(&int.suffix()) => Number::Float(float(int.base10_digits())),
        Lit::Int(int) => match int.base10_parse::<i128>() {
            Ok(n) => Number::Int(if negative { -n } else { n }),
            // Too long for i128: each reader says which range it misses.
            Err(_) => Number::HugeInt(float(int.base10_digits())),
        },
        Lit::Float(lit) => Number::Float(float(lit.base10_digits())),
        _ => return None,
    };
    let (name, text) = (option.name(), option.number_text());
    let plain = text.strip_suffix(suffix_of(&lit)).unwrap_or(&text);
    if let Err(message) = suffix_fits(&lit, &number, &format!("write `{name} = {plain}`, without a suffix")) {
        return Some(Err(option.error(format!("`{name} = {text}`: {message}"))));
    }
    Some(Ok(number))
}

/// The suffix of a number literal, `""` for none.
pub(crate) fn suffix_of(lit: &Lit) -> &str {
    match lit {
        Lit::Int(int) => int.suffix(),
        Lit::Float(float) => float.suffix(),
        _ => "",
    }
}

/// The suffixes of float literals.
pub(crate) const FLOAT_SUFFIXES: &[&str] = &["f16", "f32", "f64", "f128"];

/// The range of each integer suffix.
const INT_SUFFIXES: &[(&str, i128, i128)] = &[
    ("i8", i8::MIN as i128, i8::MAX as i128),
    ("i16", i16::MIN as i128, i16::MAX as i128),
    ("i32", i32::MIN as i128, i32::MAX as i128),
    ("i64", i64::MIN as i128, i64::MAX as i128),
    ("i128", i128::MIN, i128::MAX),
    ("isize", i64::MIN as i128, i64::MAX as i128),
    ("u8", 0, u8::MAX as i128),
    ("u16", 0, u16::MAX as i128),
    ("u32", 0, u32::MAX as i128),
    ("u64", 0, u64::MAX as i128),
    ("u128", 0, i128::MAX),
    ("usize", 0, u64::MAX as i128),
];

/// Whether the literal's suffix, if any, is one rustc knows for it and
/// its type holds the value (`-1u32` and `300u8` do not; `3u8` does).
/// `fix`: what to write instead, for the message.
pub(crate) fn suffix_fits(lit: &Lit, number: &Number, fix: &str) -> Result<(), String> {
    let suffix = suffix_of(lit);
    if suffix.is_empty() {
        return Ok(());
    }
    let holds = match (number, FLOAT_SUFFIXES.contains(&suffix)) {
        (Number::Float(x) | Number::HugeInt(x), true) => {
            let max = match suffix {
                "f16" => 65504.0,
                "f32" => f64::from(f32::MAX),
                _ => f64::MAX,
            };
            !x.is_finite() || x.abs() <= max
        }
        (Number::Int(_) | Number::HugeInt(_), false) => {
            let Some((_, min, max)) = INT_SUFFIXES.iter().find(|(name, ..)| *name == suffix) else {
                return Err(format!("`{suffix}` is not a suffix of an integer; {fix}"));
            };
            matches!(number, Number::Int(n) if (*min..=*max).contains(n))
        }
        _ => return Err(format!("`{suffix}` is not a suffix of a float; {fix}")),
    };
    if holds {
        Ok(())
    } else {
        Err(format!("the number does not fit in `{suffix}`, the type its suffix gives it; {fix}"))
    }
}

/// A literal with at most one leading minus sign: `syn` reads `-1` as one
/// negative literal, so after a minus of its own, `--1` would read as the
/// negation of `-1`, and `max = --1` (a slip for `-1`, unlimited) as 1.
pub(crate) fn signed_literal(input: ParseStream<'_>) -> syn::Result<(bool, Lit)> {
    let negative = input.parse::<Option<Token![-]>>()?.is_some();
    if input.peek(Token![-]) {
        return Err(input.error("one minus sign at most"));
    }
    Ok((negative, input.parse()?))
}

/// ` (`3f32` is a float: its suffix makes it one)` when the value is a
/// whole number made a float by its suffix, else nothing.
fn float_by_suffix(option: &RawOption) -> String {
    match option.parse_value(signed_literal) {
        Ok((_, Lit::Int(int))) if FLOAT_SUFFIXES.contains(&int.suffix()) => {
            format!(" (`{}` is a float: its suffix `{}` makes it one)", option.number_text(), int.suffix())
        }
        _ => String::new(),
    }
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
    let below = || {
        let text = option.number_text();
        Err(option.error(format!("`max = {text}` is below {}; {HELP}", limits::MAX_UNLIMITED)))
    };
    let too_large = || {
        option.error(format!(
            "`max = {}` is too large: write a whole number from {} to {}, e.g. `max = 5` for at most 5 restarts, \
             or `max = -1` for unlimited restarts",
            option.number_text(),
            limits::MAX_UNLIMITED,
            u32::MAX
        ))
    };
    match number(option) {
        Some(Ok(Number::Int(limits::MAX_UNLIMITED))) => Ok(MaxRestarts::Unlimited),
        Some(Ok(Number::Int(n))) if n < limits::MAX_UNLIMITED => below(),
        Some(Ok(Number::Int(n))) => u32::try_from(n).map(MaxRestarts::AtMost).map_err(|_| too_large()),
        Some(Ok(Number::HugeInt(x))) if x < 0.0 => below(),
        Some(Ok(Number::HugeInt(_))) => Err(too_large()),
        Some(Ok(Number::Float(_))) => {
            Err(option.error(format!("`max` must be a whole number{}; {HELP}", float_by_suffix(option))))
        }
        Some(Err(error)) => Err(error),
        None => Err(option.error(format!("`max` takes an integer; {HELP}"))),
    }
}

/// A non-negative count such as `window_max = 5`.
pub(crate) fn count(option: &RawOption) -> syn::Result<u32> {
    count_from(option, 0)
}

/// `intensity = n`: how many restarts a group allows within its period; at
/// least one, as `build()` requires.
pub(crate) fn intensity(option: &RawOption) -> syn::Result<u32> {
    match number(option) {
        Some(Ok(Number::Int(0))) => Err(option.error(format!(
            "`intensity = 0` allows no restart, so the group would give up at the first failure: \
             allow at least {}, e.g. `intensity = 3`, or write `max = 0` on a unit that must never restart",
            limits::INTENSITY_MIN
        ))),
        _ => count_from(option, limits::INTENSITY_MIN),
    }
}

/// A count of at least `min`, such as `liveness_failures = 3`.
pub(crate) fn count_from(option: &RawOption, min: u32) -> syn::Result<u32> {
    let n = whole_number(option, i128::from(min), i128::from(u32::MAX))?;
    Ok(u32::try_from(n).expect("checked against the range"))
}

/// A whole number in `min..=max`.
pub(crate) fn whole_number(option: &RawOption, min: i128, max: i128) -> syn::Result<i128> {
    let name = option.name();
    let out_of_range = |text: String| {
        Err(option.error(format!("`{name} = {text}` is out of range: write a whole number from {min} to {max}")))
    };
    match number(option) {
        Some(Ok(Number::Int(n))) if (min..=max).contains(&n) => Ok(n),
        Some(Ok(Number::Int(n))) => out_of_range(n.to_string()),
        Some(Ok(Number::HugeInt(_))) => out_of_range(option.number_text()),
        Some(Err(error)) => Err(error),
        _ => Err(option.error(format!(
            "`{name}` takes a whole number{}, e.g. `{name} = {}`",
            float_by_suffix(option),
            min.max(5).min(max)
        ))),
    }
}

/// A finite number in `min..=max` (integers are accepted as floats).
pub(crate) fn float_in(option: &RawOption, min: f64, max: f64, example: &str) -> syn::Result<f64> {
    let name = option.name();
    let value = match number(option) {
        Some(Ok(Number::Int(n))) => n as f64,
        Some(Ok(Number::Float(x) | Number::HugeInt(x))) => x,
        Some(Err(error)) => return Err(error),
        None => {
            return Err(option.error(format!("`{name}` takes a number, e.g. `{name} = {example}`")));
        }
    };
    let range = if max.is_infinite() { format!("at least {min:?}") } else { format!("from {min:?} to {max:?}") };
    if !value.is_finite() {
        let text = option.number_text();
        return Err(option.error(format!(
            "`{name} = {text}` does not fit in an `f64` and would be infinite: it must be finite and {range}, \
             e.g. `{name} = {example}`"
        )));
    }
    if value < min || value > max {
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
    fn a_missing_comma_is_asked_for() {
        let expected = "expected `,` between `restart` and `max`: options are separated by commas";
        assert!(parse_error(quote!(restart = "5s" max = 3)).starts_with(expected));
        assert!(parse_error(quote!(critical max = 3)).starts_with("expected `,` between `critical` and `max`"));
        assert!(
            parse_error(quote!(ready = tcp("a:1") liveness = tcp("a:1"))).contains("between `ready` and `liveness`")
        );
        // Inside a value, `key = value` is the value's own.
        assert_eq!(options(quote!(env = { A = "b" }, max = 1)).len(), 2);
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
        // A slip for `-1` is not read as the negation of `-1`.
        assert!(max(quote!(max = --1)).unwrap_err().to_string().contains("takes an integer"));
        assert!(max(quote!(max = 99999999999)).unwrap_err().to_string().contains("too large"));
        assert_eq!(
            max(quote!(max = 99999999999999999999999999999999999999999)).unwrap_err().to_string(),
            "`max = 99999999999999999999999999999999999999999` is too large: write a whole number from -1 to 4294967295, \
             e.g. `max = 5` for at most 5 restarts, or `max = -1` for unlimited restarts"
        );
        let message = max(quote!(max = -99999999999999999999999999999999999999999)).unwrap_err().to_string();
        assert!(message.starts_with("`max = -99999999999999999999999999999999999999999` is below -1;"), "{message}");
    }

    #[test]
    fn suffixes() {
        let max = |tokens| max_restarts(&option(tokens)).map_err(|error| error.to_string());
        assert_eq!(max(quote!(max = 3u8)).unwrap(), MaxRestarts::AtMost(3));
        assert_eq!(max(quote!(max = -1i64)).unwrap(), MaxRestarts::Unlimited);
        assert_eq!(
            max(quote!(max = 3f32)).unwrap_err(),
            "`max` must be a whole number (`3f32` is a float: its suffix `f32` makes it one); write `max = -1` for \
             unlimited restarts, `max = 0` to never restart, or `max = n` for at most n restarts"
        );
        assert_eq!(
            max(quote!(max = -1u32)).unwrap_err(),
            "`max = -1u32`: the number does not fit in `u32`, the type its suffix gives it; write `max = -1`, without a suffix"
        );
        assert!(max(quote!(max = 300u8)).unwrap_err().contains("does not fit in `u8`"));
        let tokens: TokenStream = "max = 3abc".parse().unwrap();
        assert!(max(tokens).unwrap_err().contains("`abc` is not a suffix of an integer"));
        let tokens: TokenStream = "backoff = 1.5u8".parse().unwrap();
        let backoff = |tokens| float_in(&option(tokens), 1.0, f64::INFINITY, "2.0");
        assert!(backoff(tokens).unwrap_err().to_string().contains("`u8` is not a suffix of a float"));
        assert_eq!(backoff(quote!(backoff = 2f64)).unwrap(), 2.0);
        assert_eq!(backoff(quote!(backoff = 1.5f32)).unwrap(), 1.5);
        assert!(backoff(quote!(backoff = 1e300f32)).unwrap_err().to_string().contains("does not fit in `f32`"));
        let count = |tokens| count(&option(tokens)).map_err(|error| error.to_string());
        assert_eq!(count(quote!(window_max = 5u32)).unwrap(), 5);
        assert!(
            count(quote!(window_max = 5f64))
                .unwrap_err()
                .contains("(`5f64` is a float: its suffix `f64` makes it one)")
        );
    }

    #[test]
    fn intensities() {
        assert_eq!(intensity(&option(quote!(intensity = 1))).unwrap(), 1);
        let message = intensity(&option(quote!(intensity = 0))).unwrap_err().to_string();
        assert!(message.starts_with("`intensity = 0` allows no restart"), "{message}");
        assert!(message.contains("e.g. `intensity = 3`, or write `max = 0`"), "{message}");
        assert!(intensity(&option(quote!(intensity = -1))).unwrap_err().to_string().contains("from 1 to 4294967295"));
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
        assert_eq!(
            backoff(quote!(backoff = 1e309)).unwrap_err().to_string(),
            "`backoff = 1e309` does not fit in an `f64` and would be infinite: it must be finite and at least 1.0, \
             e.g. `backoff = 2.0`"
        );
        // A whole number too long for any integer is still a finite factor.
        assert_eq!(backoff(quote!(backoff = 99999999999999999999999999999999999999999)).unwrap(), 1e41);
        let huge = "1".repeat(400);
        let huge: TokenStream = format!("backoff = {huge}").parse().unwrap();
        assert!(backoff(huge).unwrap_err().to_string().contains("would be infinite"));
        assert!(
            whole_number(&option(quote!(code = 99999999999999999999999999999999999999999)), 0, 255)
                .unwrap_err()
                .to_string()
                .contains("is out of range: write a whole number from 0 to 255")
        );
    }

    #[test]
    fn strings() {
        assert_eq!(string(&option(quote!(name = "a"))).unwrap().value(), "a");
        assert!(string(&option(quote!(name = a))).err().unwrap().to_string().contains("string literal"));
    }
}
