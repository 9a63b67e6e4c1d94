//! Whether an `#[supervised]` fn is an associated fn, in an `impl` or a
//! `trait`, when neither `self` nor `Self` says so.
//!
//! An attribute sees only the tokens of its item, and an associated fn
//! without `self` or `Self` has exactly the tokens of a free one; the type
//! placed next to it would then be rustc's error ("struct is not supported
//! in `trait`s or `impl`s"), not ours. So the source file the fn is in is
//! read and parsed, once per file: tokens parsed from a string carry no
//! positions inside a proc macro, so the fns are matched by name, and the
//! answer is only given when the file leaves no doubt.

use proc_macro2::{Ident, TokenStream, TokenTree};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::SystemTime;
use syn::visit::{self, Visit};
use syn::{Attribute, ImplItemFn, ItemFn, ItemImpl, ItemTrait, Macro, Meta, TraitItemFn, Type};

/// A file larger than this is not read: parsing it would slow every build.
const MAX_FILE_LEN: u64 = 4 << 20;

/// An `#[supervised]` fn found to be in an `impl` or a `trait`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Associated {
    /// What a free fn would call instead, e.g. `` `Service::run` ``, when
    /// the file says it plainly.
    pub(crate) call: Option<String>,
}

/// Whether the fn named `ident` is an associated fn, from the source file
/// `ident` is in; `None` when it is free or when that cannot be known.
pub(crate) fn associated(ident: &Ident) -> Option<Associated> {
    // Outside a proc macro (unit tests) there is no source file to read.
    if !proc_macro::is_available() {
        return None;
    }
    let span = ident.span().unwrap();
    let path = span.local_file()?;
    let scanned = scanned(path)?;
    let name = ident.to_string();
    // The ident must be where the file declares an fn of that name: one
    // passed to another macro, or written in its definition, is not at a
    // place of the file that the parse below describes.
    if !declares_fn_at(&scanned.source, span.line(), span.column(), &name) {
        return None;
    }
    scanned.sites.as_ref()?.associated(&name)
}

/// A file as read, with what its parse says of its `#[supervised]` fns
/// (`None` when it does not parse).
struct Scanned {
    source: String,
    sites: Option<Sites>,
}

/// A parsed file, with its length and modification time, so that a file
/// changed since (under a long-lived compiler process) is read again.
struct Cached {
    len: u64,
    modified: Option<SystemTime>,
    scanned: Rc<Scanned>,
}

thread_local! {
    static FILES: RefCell<HashMap<PathBuf, Cached>> = RefCell::new(HashMap::new());
}

/// The file at `path`, from the cache when it has not changed; `None` when
/// it cannot be read or is too large.
fn scanned(path: PathBuf) -> Option<Rc<Scanned>> {
    let metadata = std::fs::metadata(&path).ok()?;
    let (len, modified) = (metadata.len(), metadata.modified().ok());
    if len > MAX_FILE_LEN {
        return None;
    }
    let cached = FILES.with_borrow(|files| {
        files
            .get(&path)
            .filter(|cached| cached.len == len && cached.modified == modified)
            .map(|cached| Rc::clone(&cached.scanned))
    });
    if cached.is_some() {
        return cached;
    }
    let source = std::fs::read_to_string(&path).ok()?;
    let sites = Sites::scan(&source);
    let scanned = Rc::new(Scanned { source, sites });
    FILES.with_borrow_mut(|files| files.insert(path, Cached { len, modified, scanned: Rc::clone(&scanned) }));
    Some(scanned)
}

/// Where a file declares fns that may be `#[supervised]` ones.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Site {
    /// A free `#[supervised]` fn, in a module or a block.
    Free,
    /// An `#[supervised]` fn in an `impl` or a `trait`.
    Associated(Option<String>),
    /// An fn in the tokens of a macro, which may be made `#[supervised]`.
    InMacro,
}

/// The sites of a file by fn name.
#[derive(Debug, Default)]
pub(crate) struct Sites(HashMap<String, Vec<Site>>);

impl Sites {
    /// The sites of `source`; `None` when it does not parse.
    pub(crate) fn scan(source: &str) -> Option<Sites> {
        let file = syn::parse_file(source).ok()?;
        let mut collector = Collector { sites: Sites::default(), owners: Vec::new() };
        collector.visit_file(&file);
        Some(collector.sites)
    }

    /// Whether the `#[supervised]` fn `name` is an associated fn: only when
    /// every fn of that name that can be one is in an `impl` or a `trait`.
    /// A free one of the same name, or one in a macro's tokens, leaves it
    /// unknown (so it is left to rustc); so does no fn at all, as for an
    /// attribute that another macro wrote.
    pub(crate) fn associated(&self, name: &str) -> Option<Associated> {
        let sites = self.0.get(name)?;
        let mut calls = Vec::new();
        for site in sites {
            match site {
                Site::Associated(call) => calls.push(call),
                Site::Free | Site::InMacro => return None,
            }
        }
        let first = *calls.first()?;
        let call = if calls.iter().all(|call| *call == first) { first.clone() } else { None };
        Some(Associated { call })
    }

    fn add(&mut self, name: String, site: Site) {
        self.0.entry(name).or_default().push(site);
    }
}

/// How the fns of an `impl` or a `trait` are called from outside.
#[derive(Clone)]
enum Owner {
    /// `Service::`, or `<Service as Trait>::` in a trait's impl; `None`
    /// for a self type that is not a plain path.
    Impl(Option<String>),
    /// A trait's name.
    Trait(String),
}

struct Collector {
    sites: Sites,
    /// The `impl`s and `trait`s the visit is in, innermost last.
    owners: Vec<Owner>,
}

impl Collector {
    fn associated(&mut self, attrs: &[Attribute], ident: &Ident) {
        if !attrs.iter().any(is_supervised) {
            return;
        }
        let call = match self.owners.last() {
            Some(Owner::Impl(Some(prefix))) => Some(format!("`{prefix}::{ident}`")),
            Some(Owner::Trait(name)) => Some(format!("`{ident}` of a type that implements `{name}`")),
            Some(Owner::Impl(None)) | None => None,
        };
        self.sites.add(ident.to_string(), Site::Associated(call));
    }
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item_fn(&mut self, item: &'ast ItemFn) {
        if item.attrs.iter().any(is_supervised) {
            self.sites.add(item.sig.ident.to_string(), Site::Free);
        }
        visit::visit_item_fn(self, item);
    }

    fn visit_item_impl(&mut self, item: &'ast ItemImpl) {
        let self_ty = plain_path(&item.self_ty);
        let prefix = match &item.trait_ {
            None => self_ty,
            Some((path, _)) => self_ty.map(|self_ty| format!("<{self_ty} as {}>", path_text(path))),
        };
        self.owners.push(Owner::Impl(prefix));
        visit::visit_item_impl(self, item);
        self.owners.pop();
    }

    fn visit_item_trait(&mut self, item: &'ast ItemTrait) {
        self.owners.push(Owner::Trait(item.ident.to_string()));
        visit::visit_item_trait(self, item);
        self.owners.pop();
    }

    fn visit_impl_item_fn(&mut self, item: &'ast ImplItemFn) {
        self.associated(&item.attrs, &item.sig.ident);
        visit::visit_impl_item_fn(self, item);
    }

    fn visit_trait_item_fn(&mut self, item: &'ast TraitItemFn) {
        self.associated(&item.attrs, &item.sig.ident);
        visit::visit_trait_item_fn(self, item);
    }

    fn visit_macro(&mut self, mac: &'ast Macro) {
        fns_in_tokens(mac.tokens.clone(), &mut self.sites);
        visit::visit_macro(self, mac);
    }
}

/// `#[supervised]`, `#[supervisor::supervised(...)]`, or a `cfg_attr` that
/// may be one.
fn is_supervised(attr: &Attribute) -> bool {
    let path = attr.path();
    if path.segments.last().is_some_and(|last| last.ident == "supervised") {
        return true;
    }
    match &attr.meta {
        Meta::List(list) if path.is_ident("cfg_attr") => has_ident(list.tokens.clone(), "supervised"),
        _ => false,
    }
}

fn has_ident(tokens: TokenStream, name: &str) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == name,
        TokenTree::Group(group) => has_ident(group.stream(), name),
        _ => false,
    })
}

/// Every `fn NAME` in a macro's tokens, which may expand to an
/// `#[supervised]` fn of that name.
fn fns_in_tokens(tokens: TokenStream, sites: &mut Sites) {
    let mut after_fn = false;
    for token in tokens {
        match token {
            TokenTree::Ident(ident) if after_fn => {
                sites.add(ident.to_string(), Site::InMacro);
                after_fn = false;
            }
            TokenTree::Ident(ident) => after_fn = ident == "fn",
            TokenTree::Group(group) => {
                fns_in_tokens(group.stream(), sites);
                after_fn = false;
            }
            TokenTree::Punct(_) | TokenTree::Literal(_) => after_fn = false,
        }
    }
}

/// A type that is a plain path, as a path to call through, without its
/// generic arguments (they are inferred): `Service`, `jobs::Service`.
fn plain_path(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(path) if path.qself.is_none() => Some(path_text(&path.path)),
        Type::Group(group) => plain_path(&group.elem),
        Type::Paren(paren) => plain_path(&paren.elem),
        _ => None,
    }
}

fn path_text(path: &syn::Path) -> String {
    let segments: Vec<String> = path.segments.iter().map(|segment| segment.ident.to_string()).collect();
    let leading = if path.leading_colon.is_some() { "::" } else { "" };
    format!("{leading}{}", segments.join("::"))
}

/// Whether `source` declares an fn named `name` at `line` and `column`
/// (1-based, as `proc_macro::Span` gives them): `name` is there, after the
/// `fn` keyword. The column is tried as a byte and as a char offset.
fn declares_fn_at(source: &str, line: usize, column: usize, name: &str) -> bool {
    let Some(line_start) = line_start(source, line) else {
        return false;
    };
    let text = &source[line_start..];
    let text = text.split_inclusive('\n').next().unwrap_or(text);
    let Some(offset) = column.checked_sub(1) else {
        return false;
    };
    let by_char = text.char_indices().nth(offset).map(|(index, _)| index);
    [Some(offset), by_char].into_iter().flatten().any(|start| {
        let Some(rest) = text.get(start..) else {
            return false;
        };
        let whole_word = rest.strip_prefix(name).is_some_and(|after| !after.starts_with(is_ident_char));
        let before = source[..line_start + start].trim_end();
        whole_word && before.strip_suffix("fn").is_some_and(|before| !before.ends_with(is_ident_char))
    })
}

/// The byte offset of the 1-based `line`.
fn line_start(source: &str, line: usize) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let mut start = 0;
    for _ in 1..line {
        start += source[start..].find('\n')? + 1;
    }
    Some(start)
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn associated(source: &str, name: &str) -> Option<Associated> {
        Sites::scan(source).expect("the source parses").associated(name)
    }

    fn call(source: &str, name: &str) -> Option<String> {
        associated(source, name).expect("an associated fn").call
    }

    #[test]
    fn an_fn_in_an_impl() {
        let source = "struct Service;\nimpl Service {\n    #[supervised]\n    async fn run(_ctx: Context) {}\n}\n";
        assert_eq!(call(source, "run").as_deref(), Some("`Service::run`"));
        let source = "impl<T> jobs::Service<T> { #[supervisor::supervised(max = 1)] async fn run() {} }";
        assert_eq!(call(source, "run").as_deref(), Some("`jobs::Service::run`"));
        let source = "impl Job for Service { #[supervised] async fn run() {} }";
        assert_eq!(call(source, "run").as_deref(), Some("`<Service as Job>::run`"));
        let source = "impl Job for &Service { #[supervised] async fn run() {} }";
        assert_eq!(call(source, "run"), None);
    }

    #[test]
    fn an_fn_in_a_trait() {
        let source = "trait Job { #[supervised] async fn run(_ctx: Context) {} }";
        assert_eq!(call(source, "run").as_deref(), Some("`run` of a type that implements `Job`"));
    }

    #[test]
    fn free_fns() {
        assert_eq!(associated("#[supervised] async fn run(_ctx: Context) {}", "run"), None);
        // An associated fn of the same name without the attribute is not one.
        let source = "#[supervised] async fn run() {}\nstruct Other;\nimpl Other { fn run() {} }";
        assert_eq!(associated(source, "run"), None);
        assert_eq!(associated("mod jobs { mod inner { #[supervised] async fn run() {} } }", "run"), None);
        // An fn in a block is free, even in the body of an associated fn.
        let source = "impl S { fn f() { #[supervised] async fn run() {} } }";
        assert_eq!(associated(source, "run"), None);
        let source = "fn main() { let _ = || { #[supervised] async fn run() {} }; }";
        assert_eq!(associated(source, "run"), None);
    }

    #[test]
    fn nested_impls() {
        let source = "mod jobs { impl S { #[supervised] async fn run() {} } }";
        assert_eq!(call(source, "run").as_deref(), Some("`S::run`"));
        let source = "fn main() { struct S; impl S { #[supervised] async fn run() {} } }";
        assert_eq!(call(source, "run").as_deref(), Some("`S::run`"));
        // The innermost impl names the fn.
        let source = "impl A { fn f() { impl B { #[supervised] async fn run() {} } } }";
        assert_eq!(call(source, "run").as_deref(), Some("`B::run`"));
        // Two impls: no one name to give.
        let source = "impl A { #[supervised] async fn run() {} } impl B { #[supervised] async fn run() {} }";
        assert_eq!(call(source, "run"), None);
    }

    #[test]
    fn the_same_name_free_and_associated_is_unknown() {
        let source = "#[supervised] async fn run() {}\nimpl S { #[supervised] async fn run() {} }";
        assert_eq!(associated(source, "run"), None);
        let source = "impl S { #[supervised] async fn run() {} }\nfn main() { #[supervised] async fn run() {} }";
        assert_eq!(associated(source, "run"), None);
    }

    #[test]
    fn fns_in_macros_are_unknown() {
        let source =
            "impl S { #[supervised] async fn run() {} }\nmacro_rules! m { () => { #[supervised] async fn run() {} } }";
        assert_eq!(associated(source, "run"), None);
        let source = "impl S { #[supervised] async fn run() {} }\nitems! { fn run() {} }";
        assert_eq!(associated(source, "run"), None);
    }

    #[test]
    fn cfg_attr_counts() {
        let source = "impl S { #[cfg_attr(all(), supervised)] async fn run() {} }";
        assert_eq!(call(source, "run").as_deref(), Some("`S::run`"));
        let source = "impl S { #[supervised] async fn run() {} }\n#[cfg_attr(all(), supervised)] async fn run() {}";
        assert_eq!(associated(source, "run"), None);
    }

    #[test]
    fn no_match() {
        let source = "impl S { #[supervised] async fn run() {} }";
        assert_eq!(associated(source, "other"), None);
        assert_eq!(associated("impl S { async fn run() {} }", "run"), None);
        assert!(Sites::scan("fn f( {").is_none());
    }

    #[test]
    fn the_ident_must_be_where_an_fn_is_declared() {
        let source = "impl S {\n    #[supervised]\n    async fn run() {}\n}\nmake!(run);\nasync fn\n    split() {}\n";
        assert!(declares_fn_at(source, 3, 14, "run"));
        assert!(!declares_fn_at(source, 3, 13, "run"));
        assert!(!declares_fn_at(source, 3, 14, "ru"));
        assert!(!declares_fn_at(source, 5, 7, "run"));
        assert!(declares_fn_at(source, 7, 5, "split"));
        assert!(!declares_fn_at(source, 9, 1, "run"));
        assert!(!declares_fn_at(source, 0, 1, "run"));
        // A column in chars, after a wider char.
        let source = "/* é */ fn run() {}";
        assert!(declares_fn_at(source, 1, 12, "run"));
        assert!(declares_fn_at(source, 1, 13, "run"));
        assert!(!declares_fn_at("ffn run() {}", 1, 5, "run"));
    }
}
