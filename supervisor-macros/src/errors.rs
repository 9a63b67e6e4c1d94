//! Collects every error of one macro invocation so that all of them are
//! reported together, serde_derive style.

use quote::ToTokens;
use std::fmt::Display;

/// Every error found so far; empty when the input is valid.
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
    /// How many were recorded: a reader that recorded one refused its value.
    count: usize,
}

impl Errors {
    /// Records `error`, keeping the ones recorded before.
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.count += 1;
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// Records an error spanned on `tokens`.
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error at `span`.
    pub(crate) fn spanned_at(&mut self, span: proc_macro2::Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// Records the error of `result`, if any, and passes its value on.
    pub(crate) fn take<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.push(error);
                None
            }
        }
    }

    /// How many errors were recorded so far.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// `Ok` when nothing was recorded, else all recorded errors as one.
    pub(crate) fn into_result(self) -> syn::Result<()> {
        match self.combined {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
