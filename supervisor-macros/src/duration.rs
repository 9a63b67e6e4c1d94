//! Durations such as `"5s"` or `"1m 30s"`, parsed with humantime at compile
//! time and expanded to `Duration` constants.

use crate::options::{self, Number, RawOption};
use proc_macro2::{Span, TokenStream};
use quote::quote;
use std::time::Duration;

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
    let name = option.name();
    if let Some(number) = options::number(option) {
        let message = match number? {
            Number::Int(n) if n < 0 => {
                format!("a duration cannot be negative; write a string with a unit: `{name} = \"5s\"` ({EXAMPLES})")
            }
            Number::Float(x) | Number::HugeInt(x) if x < 0.0 => {
                format!("a duration cannot be negative; write a string with a unit: `{name} = \"5s\"` ({EXAMPLES})")
            }
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
    let duration = parse(option)?;
    if duration.value.is_zero() {
        let name = option.name();
        return Err(syn::Error::new(
            duration.span,
            format!("`{name}` must be longer than zero, e.g. `{name} = \"30s\"`"),
        ));
    }
    Ok(duration)
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
}
