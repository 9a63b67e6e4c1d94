//! Stop signal names, checked at compile time.

use crate::options::{self, RawOption};
use crate::suggest;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The signals `Signal` has constants for, without the `SIG` prefix.
pub(crate) const SIGNALS: &[&str] =
    &["HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM", "ALRM", "CHLD", "CONT", "STOP", "TSTP", "WINCH", "PIPE"];

/// A known signal.
pub(crate) struct SignalValue {
    pub(crate) name: &'static str,
}

impl SignalValue {
    /// `Signal::TERM` and the like.
    pub(crate) fn expand(&self, private: &TokenStream) -> TokenStream {
        let name = format_ident!("{}", self.name);
        quote!(#private::Signal::#name)
    }
}

/// Reads `stop_signal = "TERM"` (or `"SIGTERM"`).
pub(crate) fn parse(option: &RawOption) -> syn::Result<SignalValue> {
    let lit = options::string(option)
        .map_err(|_| option.error("`stop_signal` takes a signal name as a string, e.g. `stop_signal = \"INT\"`"))?;
    lookup(&lit.value()).map(|name| SignalValue { name }).map_err(|message| syn::Error::new(lit.span(), message))
}

/// The canonical name of a signal written `"TERM"` or `"SIGTERM"`.
pub(crate) fn lookup(text: &str) -> Result<&'static str, String> {
    let bare = text.strip_prefix("SIG").unwrap_or(text);
    if let Some(&name) = SIGNALS.iter().find(|&&name| name == bare) {
        return Ok(name);
    }
    let upper = text.to_ascii_uppercase();
    let upper_bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let hint = if SIGNALS.contains(&upper_bare) {
        format!(" (signal names are upper case: \"{upper}\")")
    } else {
        match suggest::closest(upper_bare, SIGNALS) {
            Some(name) if text.starts_with("SIG") => format!(" (did you mean \"SIG{name}\"?)"),
            Some(name) => format!(" (did you mean \"{name}\"?)"),
            None => String::new(),
        }
    };
    Err(format!("unknown signal \"{text}\"{hint}; known signals: {}", suggest::one_of(SIGNALS)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::tests::option;

    #[test]
    fn known_signals() {
        assert_eq!(lookup("TERM"), Ok("TERM"));
        assert_eq!(lookup("SIGTERM"), Ok("TERM"));
        assert_eq!(lookup("SIGUSR1"), Ok("USR1"));
        assert_eq!(lookup("WINCH"), Ok("WINCH"));
    }

    #[test]
    fn unknown_signals() {
        assert!(lookup("SIGTREM").unwrap_err().starts_with("unknown signal \"SIGTREM\" (did you mean \"SIGTERM\"?)"));
        assert!(lookup("TRM").unwrap_err().starts_with("unknown signal \"TRM\" (did you mean \"TERM\"?)"));
        assert!(lookup("term").unwrap_err().contains("signal names are upper case: \"TERM\""));
        assert!(lookup("sigint").unwrap_err().contains("upper case: \"SIGINT\""));
        assert!(lookup("BANANA").unwrap_err().starts_with("unknown signal \"BANANA\"; known signals: `HUP`"));
    }

    /// The runtime's `Signal::from_name` knows exactly the names the macros
    /// accept, under the same canonical name, among every POSIX signal.
    #[test]
    fn the_runtime_knows_the_same_signals() {
        const POSIX: &[&str] = &[
            "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "EMT", "FPE", "KILL", "USR1", "SEGV", "USR2",
            "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU",
            "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL", "PWR", "INFO", "LOST", "SYS", "UNUSED", "RTMIN", "RTMAX",
        ];
        for name in POSIX.iter().flat_map(|name| [name.to_string(), format!("SIG{name}")]) {
            let runtime = supervisor::Signal::from_name(&name).map(supervisor::Signal::name);
            assert_eq!(lookup(&name).ok(), runtime, "{name}");
        }
        for name in SIGNALS {
            assert!(POSIX.contains(name), "{name} is not a POSIX signal name");
        }
    }

    #[test]
    fn options() {
        let expanded = parse(&option(quote::quote!(stop_signal = "SIGINT"))).unwrap();
        assert_eq!(expanded.expand(&quote!(p)).to_string(), "p :: Signal :: INT");
        assert!(parse(&option(quote::quote!(stop_signal = 2))).is_err());
    }
}
