//! Durations such as `"5s"` or `"1m 30s"`, parsed with humantime at compile
//! time and expanded to `Duration` constants.

use crate::options::{self, Number, RawOption};
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::quote;
use std::time::Duration;
use syn::Lit;

const EXAMPLES: &str = "e.g. \"5s\", \"250ms\" or \"1m 30s\"";

/// A duration read from the macro input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DurationValue {
    pub(crate) value: Duration,
    pub(crate) span: Span,
}

impl DurationValue {
    /// `Duration::new(secs, nanos)`, a constant expression.
    pub(crate) fn expand(&self, private: &TokenStream) -> TokenStream {
        let secs = self.value.as_secs();
        let nanos = self.value.subsec_nanos();
        quote!(#private::Duration::new(#secs, #nanos))
    }
}

/// Reads a duration string option such as `restart = "5s"`.
pub(crate) fn parse(option: &RawOption) -> syn::Result<DurationValue> {
    read(option, false)
}

/// Reads a duration; `nonzero`: the option takes only one longer than zero.
fn read(option: &RawOption, nonzero: bool) -> syn::Result<DurationValue> {
    let name = option.name();
    // Before the reader of numbers, which would take `s` for a wrong
    // suffix and say to write the number alone.
    if let Some(message) = unquoted(option, nonzero) {
        return Err(option.error(message));
    }
    if let Some(number) = options::number(option) {
        let message = match number? {
            Number::Int(n) if n < 0 => negative_message(&name),
            Number::Float(x) | Number::HugeInt(x) if x < 0.0 => negative_message(&name),
            _ => format!("a duration needs a unit: write it as a string, `{name} = \"5s\"` ({EXAMPLES})"),
        };
        return Err(option.error(message));
    }
    let lit = options::string(option)
        .map_err(|_| option.error(format!("`{name}` takes a duration string, `{name} = \"5s\"` ({EXAMPLES})")))?;
    let value = parse_str(&lit.value()).map_err(|message| syn::Error::new(lit.span(), message))?;
    Ok(DurationValue { value, span: lit.span() })
}

/// Reads a duration that must be longer than zero, such as `period = "30s"`.
pub(crate) fn parse_nonzero(option: &RawOption) -> syn::Result<DurationValue> {
    let duration = read(option, true)?;
    if duration.value.is_zero() {
        let name = option.name();
        return Err(syn::Error::new(
            duration.span,
            format!("`{name}` must be longer than zero, e.g. `{name} = \"30s\"`"),
        ));
    }
    Ok(duration)
}

/// The message for a duration written as numbers with their units but
/// without quotes (`5s`, `1.5s`, `1m 30s`, `-5s`, or a suffix that is no
/// unit, `5x`): a duration is a string, and the message says which to
/// write, keeping the value when it is one. `None` for any other value.
fn unquoted(option: &RawOption, nonzero: bool) -> Option<String> {
    let name = option.name();
    let mut tokens = option.value.clone().into_iter().peekable();
    let negative = matches!(tokens.peek(), Some(TokenTree::Punct(minus)) if minus.as_char() == '-');
    if negative {
        tokens.next();
    }
    // Each number as its digits (`1000` for `1_000`) and its suffix.
    let mut numbers: Vec<(String, String)> = Vec::new();
    for token in tokens {
        let TokenTree::Literal(literal) = token else { return None };
        let number = match Lit::new(literal) {
            Lit::Int(int) => (int.base10_digits().to_owned(), int.suffix().to_owned()),
            Lit::Float(float) => (float.base10_digits().to_owned(), float.suffix().to_owned()),
            _ => return None,
        };
        numbers.push(number);
    }
    if numbers.iter().all(|(_, suffix)| suffix.is_empty()) {
        return None;
    }
    if negative {
        return Some(negative_message(&name));
    }
    let written: Vec<String> = numbers.iter().map(|(digits, suffix)| format!("{digits}{suffix}")).collect();
    let written = written.join(" ");
    let write = |duration: Duration, text: &str| {
        if nonzero && duration.is_zero() {
            format!("a duration is a string, and `{name}` must be longer than zero: write e.g. `{name} = \"30s\"`")
        } else {
            format!("a duration is a string: write `{name} = \"{text}\"`")
        }
    };
    if let Ok(duration) = parse_str(&written) {
        return Some(write(duration, &written));
    }
    let Some(unknown) = numbers.iter().find(|(_, suffix)| !is_unit(suffix)) else {
        // Every suffix is a unit, but humantime does not read the number
        // so (`1e3ms`): the same duration, written as it does.
        return Some(match equivalent(&numbers) {
            Some(duration) => write(duration, &humantime::format_duration(duration).to_string()),
            None => format!("a duration is a string: write it with a unit, `{name} = \"5s\"` ({EXAMPLES})"),
        });
    };
    let what = if unknown.1.is_empty() {
        format!("`{}` has no unit", unknown.0)
    } else {
        format!("`{}` is no unit of time", unknown.1)
    };
    Some(format!("{what}: a duration is a string with a unit, `{name} = \"5s\"` ({EXAMPLES})"))
}

fn negative_message(name: &str) -> String {
    format!("a duration cannot be negative; write a string with a unit: `{name} = \"5s\"` ({EXAMPLES})")
}

/// Whether humantime reads `suffix` as a unit of time, as in `"5s"`.
fn is_unit(suffix: &str) -> bool {
    !suffix.is_empty() && humantime::parse_duration(&format!("1{suffix}")).is_ok()
}

/// The sum of numbers with their units, each of which [`is_unit`], when
/// it is a duration.
fn equivalent(numbers: &[(String, String)]) -> Option<Duration> {
    let mut nanos = 0.0_f64;
    for (digits, unit) in numbers {
        let unit = humantime::parse_duration(&format!("1{unit}")).ok()?;
        nanos += digits.parse::<f64>().ok()? * unit.as_nanos() as f64;
    }
    let nanos = nanos.round();
    // `u64::MAX as f64` rounds up, out of the range of `u64`.
    (nanos.is_finite() && nanos < u64::MAX as f64).then(|| Duration::from_nanos(nanos as u64))
}

/// Parses a humantime duration, with messages that show a good one.
pub(crate) fn parse_str(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("empty duration; write one with a unit, {EXAMPLES}"));
    }
    if trimmed.starts_with('-') {
        return Err(format!("a duration cannot be negative: \"{text}\"; write {EXAMPLES}"));
    }
    if trimmed.chars().all(|c| c.is_ascii_digit() || c == '.') {
        // The number with a unit, when that is a duration (`"5."` is not).
        let hint = [trimmed, trimmed.trim_end_matches('.')].into_iter().find(|number| {
            ["s", "ms"].iter().all(|unit| humantime::parse_duration(&format!("{number}{unit}")).is_ok())
        });
        return Err(match hint {
            Some(number) => format!("the duration \"{text}\" has no unit; write e.g. \"{number}s\" or \"{number}ms\""),
            None if !trimmed.contains(|c: char| c.is_ascii_digit()) => {
                format!("invalid duration \"{text}\": it has neither a number nor a unit; write {EXAMPLES}")
            }
            None => format!("the duration \"{text}\" has no unit; write one with a unit, {EXAMPLES}"),
        });
    }
    humantime::parse_duration(trimmed)
        .map_err(|error| format!("invalid duration \"{text}\": {error}; write {EXAMPLES}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::tests::option;
    use quote::quote;

    #[test]
    fn parses_human_durations() {
        assert_eq!(parse_str("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_str("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_str("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_str("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_str("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_bad_durations() {
        assert!(parse_str("5").unwrap_err().contains("has no unit; write e.g. \"5s\""));
        // Each hint is a duration itself.
        assert_eq!(parse_str("5.").unwrap_err(), "the duration \"5.\" has no unit; write e.g. \"5s\" or \"5ms\"");
        assert_eq!(
            parse_str(".").unwrap_err(),
            "invalid duration \".\": it has neither a number nor a unit; write e.g. \"5s\", \"250ms\" or \"1m 30s\""
        );
        assert_eq!(parse_str("1.5").unwrap_err(), "the duration \"1.5\" has no unit; write e.g. \"1.5s\" or \"1.5ms\"");
        assert!(
            parse_str("1.2.3")
                .unwrap_err()
                .ends_with("has no unit; write one with a unit, e.g. \"5s\", \"250ms\" or \"1m 30s\"")
        );
        for text in ["5", "5.", ".", "1.5", "..", "1.2.3", "007", "99999999999999999999999"] {
            let message = parse_str(text).unwrap_err();
            if let Some(hint) = message.split("write e.g. \"").nth(1).and_then(|rest| rest.split('"').next()) {
                assert!(parse_str(hint).is_ok(), "{text}: {message}");
            }
        }
        assert!(parse_str("").unwrap_err().contains("empty duration"));
        assert!(parse_str("-5s").unwrap_err().contains("cannot be negative"));
        let message = parse_str("5 parsecs").unwrap_err();
        assert!(message.starts_with("invalid duration \"5 parsecs\""), "{message}");
        assert!(message.ends_with("write e.g. \"5s\", \"250ms\" or \"1m 30s\""), "{message}");
    }

    #[test]
    fn reads_options() {
        let parsed = parse(&option(quote!(restart = "1m 30s"))).unwrap();
        assert_eq!(parsed.value, Duration::from_secs(90));
        let expanded = parsed.expand(&quote!(p)).to_string();
        assert_eq!(expanded, "p :: Duration :: new (90u64 , 0u32)");
        let error = |tokens| parse(&option(tokens)).err().unwrap().to_string();
        assert!(error(quote!(restart = 5)).contains("needs a unit"));
        assert!(error(quote!(restart = 1.5)).contains("needs a unit"));
        assert!(error(quote!(restart = -5)).contains("cannot be negative"));
        assert!(error(quote!(restart = five)).contains("takes a duration string"));
        assert!(error(quote!(restart = "5")).contains("has no unit"));
        assert!(parse_nonzero(&option(quote!(period = "0s"))).unwrap_err().to_string().contains("longer than zero"));
        assert_eq!(parse_nonzero(&option(quote!(period = "1ms"))).unwrap().value, Duration::from_millis(1));
    }

    /// A duration written without quotes is told at once to be a string,
    /// with the value written, where the reader of numbers said to drop
    /// the unit as a wrong suffix (and then that the number needs one).
    #[test]
    fn unquoted_durations_are_told_to_be_strings() {
        let error = |tokens: &str| parse(&option(tokens.parse().unwrap())).unwrap_err().to_string();
        assert_eq!(error("restart = 5s"), "a duration is a string: write `restart = \"5s\"`");
        assert_eq!(error("stop_timeout = 10ms"), "a duration is a string: write `stop_timeout = \"10ms\"`");
        assert_eq!(error("watchdog = 1.5s"), "a duration is a string: write `watchdog = \"1.5s\"`");
        assert_eq!(error("window = 1m 30s"), "a duration is a string: write `window = \"1m 30s\"`");
        assert_eq!(error("restart = 1_000ms"), "a duration is a string: write `restart = \"1000ms\"`");
        // Not read by humantime as written: the same duration, as it reads it.
        assert_eq!(error("restart = 1e3ms"), "a duration is a string: write `restart = \"1s\"`");
        assert_eq!(error("restart = 1.5e3ms"), "a duration is a string: write `restart = \"1s 500ms\"`");
        assert!(error("restart = -5s").starts_with("a duration cannot be negative; write a string with a unit"));
        assert_eq!(
            error("restart = 5x"),
            "`x` is no unit of time: a duration is a string with a unit, `restart = \"5s\"` \
             (e.g. \"5s\", \"250ms\" or \"1m 30s\")"
        );
        assert!(error("restart = 5u32").contains("`u32` is no unit of time"));
        assert!(error("restart = 1m 30").contains("`30` has no unit"));
        // Each suggestion is a duration the reader takes.
        for text in ["5s", "10ms", "1.5s", "1m 30s", "1_000ms", "1e3ms", "1.5e3ms", "2h", "0.5s"] {
            let message = error(&format!("restart = {text}"));
            let suggested = message.split('"').nth(1).unwrap();
            let tokens: TokenStream = format!("restart = \"{suggested}\"").parse().unwrap();
            assert!(parse(&option(tokens)).is_ok(), "{text}: {message}");
        }
        // One that must be longer than zero is not told to write zero.
        let message = parse_nonzero(&option("watchdog = 0s".parse().unwrap())).unwrap_err().to_string();
        assert_eq!(
            message,
            "a duration is a string, and `watchdog` must be longer than zero: write e.g. `watchdog = \"30s\"`"
        );
        assert_eq!(error("restart = 0s"), "a duration is a string: write `restart = \"0s\"`");
    }
}
