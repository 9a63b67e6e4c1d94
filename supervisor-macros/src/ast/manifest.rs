//! Parses `supervise! { ... }` entry by entry, recovering at each `;` (and
//! at each group's closing brace) so that every error is reported.

use crate::ast::unit::{self, Place};
use crate::ast::{Manifest, Settings, TypedHandle, Unit, UnitKind, UnitName, written_name};
use crate::command;
use crate::duration;
use crate::errors::Errors;
use crate::limits::MAX_GROUP_DEPTH;
use crate::options::{self, RawOption, Seen};
use crate::strategy;
use crate::suggest;
use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, Ident, LitStr, Meta, Path, Token, Visibility, token};

const KINDS: &[&str] = &["daemon", "task", "group"];
const SETTINGS: &[&str] = &["shutdown_timeout", "shutdown_order", "strategy", "intensity", "period", "crate"];
const SHUTDOWN_ORDERS: &[&str] = &["sequential", "concurrent"];
const ENTRY_EXAMPLE: &str = "`daemon NAME = \"command\";`, `task NAME;`, `task NAME = path_or_closure;`, `group NAME { ... } { ... }` or a setting such as `shutdown_timeout = \"30s\";`";

/// Parses a manifest, recording every error in `errors`; what did not
/// parse is left out.
pub(crate) fn parse(input: TokenStream, errors: &mut Errors) -> Manifest {
    let defines_items = defines_items(&input);
    let mut manifest = Manifest { handle: None, defines_items, settings: Settings::default(), units: Vec::new() };
    if let Some(span) = nested_too_deep(&input) {
        errors.spanned_at(
            span,
            format!(
                "this is nested more than {MAX_NESTING} braces deep; at most {MAX_GROUP_DEPTH} levels are supported: \
                 flatten the tree, e.g. with units side by side in one group"
            ),
        );
        return manifest;
    }
    let parsed = (|input: ParseStream<'_>| {
        let attrs = input.call(Attribute::parse_outer)?;
        if input.peek(Token![pub]) || input.peek(Token![struct]) {
            let last = last_token_of_entry(input);
            match typed_handle(input, attrs) {
                Ok(mut handle) => {
                    drop_own_derives(&mut handle, errors);
                    manifest.handle = Some(handle);
                }
                Err(error) => {
                    errors.push(at_last_token(error, last));
                    skip_past_semicolon(input);
                }
            }
        } else {
            // The first entry's: refused as any entry's, the entry read on.
            refuse_attributes(&attrs, errors);
        }
        let mut seen = Seen::default();
        let typed = manifest.handle.as_ref().map(|handle| handle.ident.clone());
        manifest.units = units(input, Some((&mut manifest.settings, &mut seen)), typed.as_ref(), 0, errors);
        Ok(())
    })
    .parse2(input);
    errors.take(parsed);
    manifest
}

/// Whether the manifest is meant to define items (the typed form), so
/// that what it expands to when it has errors is items too: it begins with
/// `pub` (`pub struct Services;`, or a slip such as `pub strcut Services;`),
/// or has a `struct NAME` line anywhere. A unit named `struct`
/// (`daemon struct = "..."`) is no such line.
fn defines_items(input: &TokenStream) -> bool {
    let tokens: Vec<TokenTree> = input.clone().into_iter().collect();
    let attributes = tokens
        .chunks(2)
        .take_while(|pair| {
            matches!(pair, [TokenTree::Punct(hash), TokenTree::Group(group)]
                if hash.as_char() == '#' && group.delimiter() == proc_macro2::Delimiter::Bracket)
        })
        .count();
    let begins_with_pub = matches!(tokens.get(2 * attributes), Some(TokenTree::Ident(ident)) if ident == "pub");
    begins_with_pub
        || tokens
            .windows(2)
            .any(|pair| matches!(pair, [TokenTree::Ident(keyword), TokenTree::Ident(_)] if keyword == "struct"))
}

/// Braces (or other delimiters) nested deeper than this are refused before
/// any parse: the parser reads each level with a few frames of its stack,
/// and a thousand levels overflowed the compiler's. Deep enough for every
/// manifest whose groups the tree's check measures (64 levels).
const MAX_NESTING: usize = 4 * MAX_GROUP_DEPTH;

/// The first delimited group nested more than [`MAX_NESTING`] deep, found
/// without recursion.
fn nested_too_deep(input: &TokenStream) -> Option<proc_macro2::Span> {
    let mut levels = vec![input.clone().into_iter()];
    while let Some(level) = levels.last_mut() {
        match level.next() {
            Some(TokenTree::Group(group)) if levels.len() > MAX_NESTING => return Some(group.span()),
            Some(TokenTree::Group(group)) => levels.push(group.stream().into_iter()),
            Some(_) => {}
            None => {
                levels.pop();
            }
        }
    }
    None
}

/// The traits the typed form implements itself.
const OWN_TRAITS: [&str; 2] = ["Clone", "Debug"];

/// Takes `Clone` and `Debug` out of the typed form's `derive`s, each with
/// an error on it: the form implements them itself, and a derive of them
/// would be a conflicting implementation, reported by rustc on the macro.
fn drop_own_derives(handle: &mut TypedHandle, errors: &mut Errors) {
    let ident = handle.ident.clone();
    let mut refuse = |derived: &Punctuated<Path, Token![,]>| {
        for last in derived.iter().filter(|path| is_own(path)).filter_map(|path| path.segments.last()) {
            errors.spanned_at(
                last.ident.span(),
                format!(
                    "the typed form `{ident}` is `Clone` and `Debug` already: remove `{}` from this `derive`",
                    last.ident
                ),
            );
        }
    };
    handle.attrs.retain_mut(|attr| {
        if attr.path().is_ident("cfg_attr") {
            // Refused as a plain `derive` is; the attribute goes, so that
            // rustc's conflicting implementation is not reported on top.
            let derives = conditional_derives(attr);
            derives.iter().for_each(&mut refuse);
            return !derives.iter().any(|derived| derived.iter().any(is_own));
        }
        if !attr.path().is_ident("derive") {
            return true;
        }
        let Ok(derived) = attr.parse_args_with(Punctuated::<Path, Token![,]>::parse_terminated) else { return true };
        refuse(&derived);
        let kept: Vec<&Path> = derived.iter().filter(|path| !is_own(path)).collect();
        if kept.len() == derived.len() {
            return true;
        }
        *attr = syn::parse_quote!(#[derive(#(#kept),*)]);
        !kept.is_empty()
    });
}

/// Whether a derived path is one of the traits the typed form implements.
fn is_own(path: &Path) -> bool {
    path.segments.last().is_some_and(|last| OWN_TRAITS.iter().any(|own| last.ident == own))
}

/// The `derive`s inside a `cfg_attr`, nested ones included.
fn conditional_derives(attr: &Attribute) -> Vec<Punctuated<Path, Token![,]>> {
    fn collect(meta: &Meta, derives: &mut Vec<Punctuated<Path, Token![,]>>) {
        let Meta::List(list) = meta else { return };
        if list.path.is_ident("derive") {
            derives.extend(list.parse_args_with(Punctuated::<Path, Token![,]>::parse_terminated));
        } else if list.path.is_ident("cfg_attr")
            && let Ok(parts) = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
        {
            // The first part is the condition.
            parts.iter().skip(1).for_each(|meta| collect(meta, derives));
        }
    }
    let mut derives = Vec::new();
    collect(&attr.meta, &mut derives);
    derives
}

/// `pub struct Services;`, after its attributes.
fn typed_handle(input: ParseStream<'_>, attrs: Vec<Attribute>) -> syn::Result<TypedHandle> {
    let vis: Visibility = input.parse()?;
    let expected = "expected `struct`: a typed manifest starts with `pub struct Services;`";
    if input.is_empty() {
        return Err(input.error(expected));
    }
    input.parse::<Token![struct]>().map_err(|error| syn::Error::new(error.span(), expected))?;
    let expected = "expected the type's name after `struct`: `pub struct Services;`";
    if input.is_empty() {
        return Err(input.error(expected));
    }
    let ident: Ident = input.parse().map_err(|error| syn::Error::new(error.span(), expected))?;
    if input.peek(Token![<]) {
        return Err(input.error(format!("the manifest's type cannot be generic: write `struct {ident};`")));
    }
    if !input.peek(Token![;]) {
        return Err(input.error(format!(
            "expected `;` after `struct {ident}`: its fields are the units of the manifest, e.g. `pub struct {ident};`"
        )));
    }
    input.parse::<Token![;]>()?;
    Ok(TypedHandle { attrs, vis, ident })
}

/// The units of the root (with its settings) or of a group at `level`
/// (the root's is 0), until the input ends; `typed`: the name of the
/// typed form the manifest's first line defines, if it does.
fn units(
    input: ParseStream<'_>,
    mut root: Option<(&mut Settings, &mut Seen)>,
    typed: Option<&Ident>,
    level: usize,
    errors: &mut Errors,
) -> Vec<Unit> {
    let mut units = Vec::new();
    while !input.is_empty() {
        let last = last_token_of_entry(input);
        let stand_in = stand_in(input);
        let root = root.as_mut().map(|(settings, seen)| (&mut **settings, &mut **seen));
        match item(input, root, typed, level, errors) {
            Ok(Some(unit)) => units.push(unit),
            Ok(None) => {}
            Err(error) => {
                errors.push(at_last_token(error, last));
                skip_past_semicolon(input);
                units.extend(stand_in);
            }
        }
    }
    units
}

/// The unit that the entry at the start of `input` names, if its kind and
/// name read (`daemon web`), with nothing to run: kept in the place of an
/// entry whose syntax is wrong after its name (`daemon web { ... }`
/// without its command), as a daemon whose command is wrong is kept, so
/// that its dependents find it and the typed form has its field, rather
/// than each use of it getting an error of its own. Nothing is expanded
/// from a manifest with errors.
fn stand_in(input: ParseStream<'_>) -> Option<Unit> {
    let fork = input.fork();
    fork.call(Attribute::parse_outer).ok()?;
    let keyword = fork.call(Ident::parse_any).ok()?;
    let kind = match keyword.unraw().to_string().as_str() {
        "daemon" => UnitKind::Daemon(command::Command::default()),
        // Not `task jobs::report ...`: a path is read whole by its entry.
        "task" if !fork.peek2(Token![::]) => UnitKind::Task(syn::parse_quote!(())),
        "group" => UnitKind::Group(Vec::new()),
        _ => return None,
    };
    let name = unit::parse_name(&fork, keyword.unraw().to_string().as_str()).ok()?;
    Some(Unit { name, keyword, kind, options: crate::ast::UnitOptions::default() })
}

/// The span of the last token of the entry at the start of `input`, when
/// no `;` ends it: an entry cut short can only be the last one.
fn last_token_of_entry(input: ParseStream<'_>) -> Option<proc_macro2::Span> {
    let mut cursor = input.cursor();
    let mut last = None;
    while let Some((token, next)) = cursor.token_tree() {
        if matches!(&token, TokenTree::Punct(punct) if punct.as_char() == ';') {
            return None;
        }
        last = Some(token.span());
        cursor = next;
    }
    last
}

/// What syn begins an error at the end of the input with.
const END_OF_INPUT: &str = "unexpected end of input, ";

/// An error at the end of the input, which syn spans on the whole macro
/// call, moved to `last`, the last token of the entry cut short, and
/// without syn's preamble: the message says what is expected after it.
fn at_last_token(error: syn::Error, last: Option<proc_macro2::Span>) -> syn::Error {
    let message = error.to_string();
    match (message.strip_prefix(END_OF_INPUT), last) {
        (Some(expected), Some(last)) if error.clone().into_iter().count() == 1 => syn::Error::new(last, expected),
        _ => error,
    }
}

fn skip_past_semicolon(input: ParseStream<'_>) {
    while !input.is_empty() {
        if input.peek(Token![;]) {
            let _ = input.parse::<Token![;]>();
            return;
        }
        let _ = input.parse::<TokenTree>();
    }
}

/// `;` after an entry, optional at the very end.
fn end_of_entry(input: ParseStream<'_>, what: &str) -> syn::Result<()> {
    if input.is_empty() {
        return Ok(());
    }
    if input.peek(Token![;]) {
        input.parse::<Token![;]>()?;
        return Ok(());
    }
    // `daemon web = "web" restart = "1s";`: an option without its braces,
    // which a `;` before it would only make an unknown setting.
    let fork = input.fork();
    if let Ok(key) = fork.call(Ident::parse_any)
        && Place::Daemon.keys().contains(&key.unraw().to_string().as_str())
    {
        let option = if fork.peek(Token![=]) { format!("{} = ...", key.unraw()) } else { key.unraw().to_string() };
        return Err(input.error(format!(
            "expected `;` after {what}; its options go in braces before the `;`, e.g. `{{ {option} }};`"
        )));
    }
    Err(input.error(format!("expected `;` after {what}")))
}

/// One entry or setting; `None` for a setting, a lone `;` or an entry
/// whose errors are recorded.
fn item(
    input: ParseStream<'_>,
    root: Option<(&mut Settings, &mut Seen)>,
    typed: Option<&Ident>,
    level: usize,
    errors: &mut Errors,
) -> syn::Result<Option<Unit>> {
    if input.peek(Token![;]) {
        input.parse::<Token![;]>()?;
        return Ok(None);
    }
    if input.peek(Token![#]) {
        let attrs = input.call(Attribute::parse_outer)?;
        refuse_attributes(&attrs, errors);
    }
    let expected_entry = format!("expected an entry: {ENTRY_EXAMPLE}");
    if input.is_empty() {
        return Err(input.error(expected_entry));
    }
    let keyword = input.call(Ident::parse_any).map_err(|error| syn::Error::new(error.span(), expected_entry))?;
    // `shutdown_timeout: "30s";` at the top, as YAML writes it: a setting,
    // not an unknown kind of entry; told as an option with `:` is.
    let setting_name = keyword.unraw().to_string();
    let colon = input.peek(Token![:]) && !input.peek(Token![::]);
    if colon && root.is_some() && SETTINGS.contains(&setting_name.as_str()) {
        return Err(syn::Error::new(
            keyword.span(),
            format!("expected `=` after `{setting_name}`: settings are written `{setting_name} = value;`"),
        ));
    }
    if input.peek(Token![=]) {
        if let Some(example) = entry_form(&keyword) {
            return Err(syn::Error::new(
                keyword.span(),
                format!("`{}` needs the unit's name before `=`: {example}", keyword.unraw()),
            ));
        }
        input.parse::<Token![=]>()?;
        let mut value = options::value_tokens(input, |input| input.peek(Token![;]) || starts_entry(input));
        // `intensity = 10, period = "60s";`, written as a group's options
        // are: the value is read without its `,`, which is told to be a `;`.
        let comma = split_trailing_comma(&mut value);
        if value.is_empty() {
            return Err(syn::Error::new(keyword.span(), format!("`{}` has no value after `=`", keyword.unraw())));
        }
        // In a group, the setting has an error of its own: it is not there.
        if let Some(comma) = comma.filter(|_| root.is_some()) {
            errors.push(comma_after_setting(&keyword, &value, comma));
        }
        if input.peek(Token![;]) {
            input.parse::<Token![;]>()?;
        } else if !input.is_empty() && comma.is_none() {
            // The next entry follows: the value is read, and so is the entry.
            errors.push(missing_semicolon(&keyword, &value));
        }
        let option = RawOption { key: keyword, value };
        match root {
            Some((settings, seen)) => {
                if seen.first(&option, errors) {
                    setting(&option, settings, errors);
                }
            }
            None => errors.push(setting_in_group(&option)),
        }
        return Ok(None);
    }
    let kind = keyword.unraw().to_string();
    match kind.as_str() {
        "daemon" => daemon(input, keyword, errors).map(Some),
        "task" => task(input, keyword, errors).map(Some),
        "group" => group(input, keyword, typed, level + 1, errors).map(Some),
        // With a typed form already, the line is a second one, which moved
        // to the top would only have the first told to move in its turn.
        "struct" | "pub" => {
            let line = misplaced_struct_line(&keyword, input);
            let message = match typed {
                Some(first) => format!(
                    "a manifest defines one typed form, and this one's is `{}`, on its first line: remove `{line}` \
                     (another type needs a `supervise!` of its own)",
                    first.unraw()
                ),
                None => format!("the typed form's `struct` comes first in the manifest: move `{line}` to the top"),
            };
            Err(syn::Error::new(keyword.span(), message))
        }
        _ => Err(syn::Error::new(
            keyword.span(),
            format!(
                "unknown entry kind `{kind}`{}; expected `daemon NAME = \"command\";`, `task NAME;` or `group NAME {{ ... }} {{ ... }}`",
                suggest::did_you_mean(&kind, KINDS)
            ),
        )),
    }
}

/// The struct line that `keyword` (`pub` or `struct`) begins after the
/// first line, as written (`pub(crate) struct Svc;`), for the error that
/// moves it: the type's name in an example (`pub struct Services;`) had the
/// user rename their type. The example when the line is not one.
fn misplaced_struct_line(keyword: &Ident, input: ParseStream<'_>) -> String {
    let fork = input.fork();
    let visibility = if keyword == "pub" {
        let restricted = match fork.peek(token::Paren).then(|| fork.parse::<TokenTree>()) {
            Some(Ok(TokenTree::Group(scope))) => format!("({})", scope.stream()),
            _ => String::new(),
        };
        if fork.parse::<Token![struct]>().is_err() {
            return "pub struct Services;".to_owned();
        }
        format!("pub{restricted} ")
    } else {
        String::new()
    };
    match fork.call(Ident::parse_any) {
        Ok(name) => format!("{visibility}struct {name};"),
        Err(_) => "pub struct Services;".to_owned(),
    }
}

/// Whether the input is at the start of an entry or a setting (`task b`,
/// `daemon "w"`, `key =`): after a setting's value, it means that the `;`
/// between them is missing.
fn starts_entry(input: ParseStream<'_>) -> bool {
    if !input.peek(Ident::peek_any) {
        return false;
    }
    if input.peek2(Token![=]) {
        return true;
    }
    let fork = input.fork();
    let Ok(keyword) = fork.call(Ident::parse_any) else { return false };
    KINDS.contains(&keyword.unraw().to_string().as_str()) && (fork.peek(Ident::peek_any) || fork.peek(LitStr))
}

/// The error for a setting followed by an entry without a `;` between
/// them, at the end of the setting's value.
fn missing_semicolon(key: &Ident, value: &TokenStream) -> syn::Error {
    let (setting, last) = setting_text(key, value);
    syn::Error::new(last, format!("expected `;` after {setting}"))
}

/// `` `key = value` `` as written, and the span of its last token.
fn setting_text(key: &Ident, value: &TokenStream) -> (String, proc_macro2::Span) {
    let mut written = String::new();
    let mut last = None;
    for token in value.clone() {
        // `-1` as written, not `- 1`.
        if !written.is_empty() && !matches!(last, Some(TokenTree::Punct(_))) {
            written.push(' ');
        }
        written.push_str(&token.to_string());
        last = Some(token);
    }
    let span = last.map_or_else(|| key.span(), |token| token.span());
    (format!("`{} = {written}`", key.unraw()), span)
}

/// Takes a `,` that ends `value` off it, and returns its span.
fn split_trailing_comma(value: &mut TokenStream) -> Option<proc_macro2::Span> {
    let mut tokens: Vec<TokenTree> = value.clone().into_iter().collect();
    match tokens.last() {
        Some(TokenTree::Punct(punct)) if punct.as_char() == ',' => {
            let span = punct.span();
            tokens.pop();
            *value = tokens.into_iter().collect();
            Some(span)
        }
        _ => None,
    }
}

/// The error for a setting ended with `,` (at `comma`) where a `;` ends it.
fn comma_after_setting(key: &Ident, value: &TokenStream, comma: proc_macro2::Span) -> syn::Error {
    let (setting, _) = setting_text(key, value);
    let setting = setting.trim_end_matches('`');
    syn::Error::new(
        comma,
        format!(
            "a setting of the manifest ends with `;`, not `,` (which separates the options in braces): write {setting};`"
        ),
    )
}

/// How an entry of the kind `keyword` is written, if it is an entry's kind:
/// an entry without its name reads like a setting (`daemon = "..."`).
fn entry_form(keyword: &Ident) -> Option<&'static str> {
    match keyword.unraw().to_string().as_str() {
        "daemon" => Some("`daemon worker = \"worker --port 8080\";`"),
        "task" => Some("`task ticker = ticker;`, or `task ticker;` for a `#[supervised]` fn"),
        "group" => Some("`group storage { ... } { ... }`"),
        _ => None,
    }
}

/// Attributes and doc comments on an entry: the manifest is no item list
/// and has nowhere to put them. One error for them all.
fn refuse_attributes(attrs: &[Attribute], errors: &mut Errors) {
    let Some(first) = attrs.first() else { return };
    let message = if first.path().is_ident("doc") {
        "a doc comment cannot document a manifest entry: write the comment with `//`".to_owned()
    } else {
        let written = first.to_token_stream().to_string().replace(' ', "");
        format!(
            "a manifest entry takes no attributes: remove `{written}` (a unit that runs only under a condition is \
             added with the builder or `handle.add`)"
        )
    };
    errors.push(syn::Error::new_spanned(first, message));
}

fn setting(option: &RawOption, settings: &mut Settings, errors: &mut Errors) {
    let before = errors.count();
    read_setting(option, settings, errors);
    if errors.count() > before {
        settings.refused.add(option.name());
    }
}

/// Reads one root setting into its field.
fn read_setting(option: &RawOption, settings: &mut Settings, errors: &mut Errors) {
    let key = option.key.clone();
    match option.name().as_str() {
        "shutdown_timeout" => settings.shutdown_timeout = errors.take(duration::parse(option)),
        "shutdown_order" => settings.shutdown_order = errors.take(shutdown_order(option)),
        "crate" => settings.krate = errors.take(unit::crate_path(option)),
        "strategy" => settings.tree.strategy = errors.take(strategy::parse(option)),
        "intensity" => settings.tree.intensity = errors.take(options::intensity(option)).map(|n| (n, key)),
        "period" => settings.tree.period = errors.take(duration::parse_nonzero(option)).map(|d| (d, key)),
        _ => errors.push(options::unknown(option, "setting", SETTINGS)),
    }
}

/// A `key = value;` inside a group's units.
fn setting_in_group(option: &RawOption) -> syn::Error {
    let name = option.name();
    let message = match name.as_str() {
        "strategy" | "intensity" | "period" => format!(
            "a group's `{name}` goes in its option block, before its units: `group NAME {{ {name} = ... }} {{ ... }}`"
        ),
        _ if SETTINGS.contains(&name.as_str()) => {
            format!("`{name}` is a setting of the whole manifest: write it at the top level, outside every group")
        }
        _ => format!(
            "expected an entry, found a setting `{name} = ...`: a group holds `daemon`, `task` and `group` entries"
        ),
    };
    syn::Error::new(option.key.span(), message)
}

/// `shutdown_order = "sequential" | "concurrent"`.
fn shutdown_order(option: &RawOption) -> syn::Result<Ident> {
    let expected = "`shutdown_order` takes \"sequential\" or \"concurrent\", e.g. `shutdown_order = \"concurrent\";`";
    let lit = options::string(option).map_err(|_| option.error(expected))?;
    let variant = match lit.value().as_str() {
        "sequential" => "Sequential",
        "concurrent" => "Concurrent",
        other => {
            let hint = match suggest::closest(other, SHUTDOWN_ORDERS) {
                Some(close) => format!(" (did you mean \"{close}\"?)"),
                None => String::new(),
            };
            return Err(syn::Error::new(lit.span(), format!("unknown shutdown order \"{other}\"{hint}; {expected}")));
        }
    };
    Ok(Ident::new(variant, lit.span()))
}

/// The `{ key = value, ... }` block after an entry, if any.
fn option_block(input: ParseStream<'_>) -> syn::Result<Vec<RawOption>> {
    if !input.peek(token::Brace) {
        return Ok(Vec::new());
    }
    let content;
    syn::braced!(content in input);
    let parsed = options::parse_options(&content);
    if parsed.is_err() {
        // Left unread, the rest would be a second error ("expected `}`") on
        // the same mistake.
        content.parse::<TokenStream>()?;
    }
    parsed
}

fn daemon(input: ParseStream<'_>, keyword: Ident, errors: &mut Errors) -> syn::Result<Unit> {
    let name = unit::parse_name(input, "daemon")?;
    if !input.peek(Token![=]) {
        return Err(input.error(format!(
            "expected `=` and the command to run: `daemon {} = \"program --flag value\";`",
            written_name(&name.value)
        )));
    }
    input.parse::<Token![=]>()?;
    let command = if input.peek(LitStr) || input.peek(token::Bracket) {
        errors.take(command::parse(input, command::Runs::Daemon))
    } else {
        return Err(command::parse(input, command::Runs::Daemon)
            .err()
            .unwrap_or_else(|| input.error("expected a command")));
    };
    let raw = option_block(input)?;
    end_of_entry(input, "the daemon entry")?;
    let options = unit::read(&raw, Place::Daemon, errors);
    // An entry whose command is wrong stays, with no command (its error says
    // why, and nothing is expanded from a manifest with errors): its name
    // is checked, and its dependents are not told it does not exist.
    let command = command.unwrap_or_default();
    Ok(Unit { name, keyword, kind: UnitKind::Daemon(command), options })
}

fn task(input: ParseStream<'_>, keyword: Ident, errors: &mut Errors) -> syn::Result<Unit> {
    // A keyword is a name (`task type = job;`), as for a daemon or a group:
    // no fn is named by one. A path may begin with one (`task super::job;`).
    let path_from_keyword =
        (input.peek(Token![super]) || input.peek(Token![self]) || input.peek(Token![crate])) && input.peek2(Token![::]);
    let name = if input.peek(LitStr) || (!path_from_keyword && !input.peek(Ident) && input.peek(Ident::peek_any)) {
        unit::parse_name(input, "task")?
    } else {
        let expected =
            "expected the task after `task`: `task ticker;` for a #[supervised] fn, or `task cleanup = cleanup_loop;`";
        if input.is_empty() {
            return Err(input.error(expected));
        }
        let path = input.parse::<Path>().map_err(|error| syn::Error::new(error.span(), expected))?;
        if let Some(generic) = path.segments.iter().find(|segment| !segment.arguments.is_none()) {
            return Err(syn::Error::new_spanned(
                &generic.arguments,
                format!(
                    "a task entry names a #[supervised] fn, which cannot be generic: remove `{}`",
                    generic.arguments.to_token_stream().to_string().replace(' ', "")
                ),
            ));
        }
        // `task api: api;`, as YAML writes a pair: a name and its task, not
        // a `task path;` entry that lacks its `;`.
        if let Some(ident) = path.get_ident().filter(|_| input.peek(Token![:]) && !input.peek(Token![::])) {
            return Err(input.error(format!(
                "expected `=` and the task to run: `task {} = an_async_fn;`",
                written_name(&ident.unraw().to_string())
            )));
        }
        if !input.peek(Token![=]) {
            // `task path { ... };`: an #[supervised] fn, named by its last segment.
            let last = &path.segments.last().expect("a parsed path has a segment").ident;
            let name = UnitName { value: last.unraw().to_string(), span: last.span(), end: None };
            let raw = option_block(input)?;
            end_of_entry(input, "the task entry")?;
            let options = unit::read(&raw, Place::Task, errors);
            return Ok(Unit { name, keyword, kind: UnitKind::Supervised(path), options });
        }
        match path.get_ident() {
            Some(ident) => UnitName { value: ident.unraw().to_string(), span: ident.span(), end: None },
            None => {
                return Err(syn::Error::new_spanned(
                    &path,
                    "a task name is a single identifier (or a string); write `task cleanup = jobs::cleanup;`",
                ));
            }
        }
    };
    if !input.peek(Token![=]) {
        return Err(input
            .error(format!("expected `=` and the task to run: `task {} = an_async_fn;`", written_name(&name.value))));
    }
    input.parse::<Token![=]>()?;
    if input.is_empty() || input.peek(Token![;]) {
        return Err(input.error(format!(
            "expected the task to run after `=`: `task {} = an_async_fn;`",
            written_name(&name.value)
        )));
    }
    let expr = input.call(Expr::parse_without_eager_brace)?;
    let raw = option_block(input)?;
    end_of_entry(input, "the task entry")?;
    let options = unit::read(&raw, Place::Task, errors);
    Ok(Unit { name, keyword, kind: UnitKind::Task(expr), options })
}

/// `group NAME { options } { units }`, or `group NAME { units }`; no `;`
/// after it. `level`: 1 for a group in the root.
fn group(
    input: ParseStream<'_>,
    keyword: Ident,
    typed: Option<&Ident>,
    level: usize,
    errors: &mut Errors,
) -> syn::Result<Unit> {
    let name = unit::parse_name(input, "group")?;
    let example =
        format!("`group {} {{ strategy = \"one_for_all\" }} {{ task a; task b; }}`", written_name(&name.value));
    if !input.peek(token::Brace) {
        return Err(input.error(format!("expected the group's units in braces, e.g. {example}")));
    }
    let first: proc_macro2::Group = input.parse()?;
    let (raw, body) = if input.peek(token::Brace) {
        // A mistake in the options does not hide those of the units.
        let options = errors.take(options::parse_options.parse2(first.stream())).unwrap_or_default();
        let body: proc_macro2::Group = input.parse()?;
        (options, body)
    } else if let Some(options) = options_alone(&first) {
        // `group jobs { max = 3 }`: its options, and no units after them
        // (a group whose units are added at run time, say). Read as its
        // options, each of which was called a setting, or an unknown kind
        // of entry, among units.
        errors.spanned_at(
            first.span(),
            format!(
                "these are the options of `group {name}`, and no units follow them: a group is written \
                 `group {name} {{ options }} {{ units }}`; add its units in braces after the options, `{{}}` for a \
                 group whose units are added at run time",
                name = written_name(&name.value)
            ),
        );
        (options, proc_macro2::Group::new(proc_macro2::Delimiter::Brace, TokenStream::new()))
    } else {
        (Vec::new(), first)
    };
    if input.peek(Token![=]) {
        return Err(input.error(format!("a group has no `=`: it is written {example}")));
    }
    let options = unit::read(&raw, Place::Group, errors);
    // Too deep: the tree's check says so, on this group's name. What is
    // inside is not read (see `nested_too_deep`).
    if level > MAX_GROUP_DEPTH {
        return Ok(Unit { name, keyword, kind: UnitKind::Group(Vec::new()), options });
    }
    let parsed = (|input: ParseStream<'_>| Ok(units(input, None, typed, level, errors))).parse2(body.stream());
    let units = errors.take(parsed).unwrap_or_default();
    Ok(Unit { name, keyword, kind: UnitKind::Group(units), options })
}

/// The options in `block`, the only block of a group, when it holds
/// options and no entry: each key is one of a unit's options.
fn options_alone(block: &proc_macro2::Group) -> Option<Vec<RawOption>> {
    let options = options::parse_options.parse2(block.stream()).ok()?;
    let keys = [Place::Group.keys(), Place::Daemon.keys()].concat();
    let known = |option: &RawOption| keys.contains(&option.name().as_str());
    (!options.is_empty() && options.iter().all(known)).then_some(options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parsed(tokens: TokenStream) -> (Manifest, Vec<String>) {
        let mut errors = Errors::default();
        let manifest = parse(tokens, &mut errors);
        let messages = match errors.into_result() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        };
        (manifest, messages)
    }

    fn names(units: &[Unit]) -> Vec<String> {
        units
            .iter()
            .map(|unit| match &unit.kind {
                UnitKind::Group(units) => format!("{}({})", unit.name.value, names(units).join(" ")),
                _ => unit.name.value.clone(),
            })
            .collect()
    }

    #[test]
    fn parses_the_stage_two_grammar() {
        let (manifest, messages) = parsed(quote! {
            pub struct Services;
            strategy = "one_for_one";
            intensity = 10; period = "60s";
            group storage { strategy = "rest_for_one", intensity = 3, period = "30s", restart = "5s", max = 2 } {
                daemon postgres = "postgres -D /var/lib/pg" { ready = tcp("127.0.0.1:5432") };
                task migrate { depends_on = [postgres], on = "failure" };
                group inner { task deep = deep_fn; }
            }
            task api { depends_on = [storage], ready = notified, critical };
            daemon worker = "worker" { liveness = http("http://127.0.0.1:8081/health"), liveness_period = "10s" };
            task poller { watchdog = "30s" };
        });
        assert!(messages.is_empty(), "{messages:?}");
        assert_eq!(manifest.handle.as_ref().map(|handle| handle.ident.to_string()), Some("Services".to_owned()));
        assert!(manifest.settings.tree.strategy.is_some());
        assert!(manifest.settings.tree.intensity.is_some() && manifest.settings.tree.period.is_some());
        assert_eq!(names(&manifest.units), ["storage(postgres migrate inner(deep))", "api", "worker", "poller"]);
        assert!(matches!(&manifest.units[1].kind, UnitKind::Supervised(_)));
        assert!(manifest.units[0].options.tree.strategy.is_some());
    }

    #[test]
    fn a_group_without_options_and_with_a_semicolon() {
        let (manifest, messages) = parsed(quote! {
            group jobs { task a = a; task b = b }
            group empty {};
            task c = c;
        });
        assert!(messages.is_empty(), "{messages:?}");
        assert_eq!(names(&manifest.units), ["jobs(a b)", "empty()", "c"]);
    }

    #[test]
    fn recovers_inside_groups() {
        let (manifest, messages) = parsed(quote! {
            group g {} {
                deamon x = "x";
                task ok = ok;
                strategy = "one_for_all";
                shutdown_timeout = "1s";
            }
            task after = after;
        });
        assert_eq!(names(&manifest.units), ["g(ok)", "after"]);
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].starts_with("unknown entry kind `deamon` (did you mean `daemon`?)"));
        assert!(messages[1].starts_with("a group's `strategy` goes in its option block"));
        assert!(messages[2].starts_with("`shutdown_timeout` is a setting of the whole manifest"));
    }

    /// One mistake, one error: a mistake in an option block is not told
    /// twice, and one in a group's options hides neither its units' nor
    /// those of the entry after it.
    #[test]
    fn a_mistake_in_an_option_block_is_one_error_and_hides_no_other() {
        for entry in [quote!(daemon a = "a" { restart "5s" };), quote!(task t = j { restart "5s" };)] {
            let (_, messages) = parsed(entry);
            assert_eq!(messages.len(), 1, "{messages:#?}");
            assert!(messages[0].starts_with("expected `=` after `restart`"), "{messages:#?}");
        }
        let (manifest, messages) = parsed(quote! {
            group storage { restart "5s" } { daemon pg = "pg | tee"; }
            daemon web = "web | tee log";
        });
        assert_eq!(messages.len(), 3, "{messages:#?}");
        assert!(messages[0].starts_with("expected `=` after `restart`"), "{messages:#?}");
        assert!(messages[1..].iter().all(|message| message.starts_with("`|` is a shell operator")), "{messages:#?}");
        assert_eq!(names(&manifest.units), ["storage(pg)", "web"]);
    }

    #[test]
    fn a_struct_line_anywhere_makes_items() {
        assert!(
            parsed(quote!(
                pub struct S;
            ))
            .0
            .defines_items
        );
        assert!(parsed(quote!(task a = a; pub struct S;)).0.defines_items);
        assert!(
            parsed(quote!(
                pub struct S<T>;
            ))
            .0
            .defines_items
        );
        assert!(!parsed(quote!(task a = a;)).0.defines_items);
        // A slip in the struct line still makes items: its error is not lost
        // in an expression where items are expected.
        assert!(parsed(quote!(pub strcut S; daemon w = "w";)).0.defines_items);
        assert!(parsed(quote!(#[doc = "x"] pub(crate) S; daemon w = "w";)).0.defines_items);
        // A unit named `struct` is no struct line.
        assert!(!parsed(quote!(daemon struct = "a"; daemon b = "x | y";)).0.defines_items);
        assert!(!parsed(quote!(task struct;)).0.defines_items);
    }

    #[test]
    fn grammar_errors() {
        let first = |tokens| parsed(tokens).1.first().cloned().unwrap_or_default();
        assert!(first(quote!(group g = "x";)).contains("expected the group's units in braces"));
        assert!(first(quote!(group g {} {} = 1;)).contains("a group has no `=`"));
        assert_eq!(first(quote!(task api: api;)), "expected `=` and the task to run: `task api = an_async_fn;`");
        // An option without its braces is told to take them.
        for entry in
            [quote!(daemon w = "w" restart = "1s";), quote!(task a = a critical;), quote!(task jobs::a max = 3;)]
        {
            let message = first(entry);
            assert!(message.starts_with("expected `;` after the "), "{message}");
            assert!(message.contains("; its options go in braces before the `;`, e.g. `{ "), "{message}");
        }
        assert_eq!(first(quote!(daemon w = "w" period = "1s";)), "expected `;` after the daemon entry");
        let (manifest, messages) = parsed(quote!(shutdown_timeout: "30s"; task a = a;));
        assert_eq!(
            messages,
            ["expected `=` after `shutdown_timeout`: settings are written `shutdown_timeout = value;`"]
        );
        assert_eq!(names(&manifest.units), ["a"]);
        // Options without the units' braces after them: one error, on them,
        // and the options read as the group's (each was called a setting).
        let (manifest, messages) = parsed(quote!(group jobs { max = 3, critical } task a = a;));
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(messages[0].starts_with("these are the options of `group jobs`, and no units follow them"));
        assert!(manifest.units[0].options.critical.is_some() && manifest.units[0].options.policy.max.is_some());
        assert_eq!(names(&manifest.units), ["jobs()", "a"]);
        let messages = parsed(quote!(group jobs { stop_timeout = "1s" })).1;
        assert!(messages[0].starts_with("these are the options of `group jobs`"), "{messages:?}");
        assert!(messages[1].starts_with("unknown group option `stop_timeout`"), "{messages:?}");
        // A block of units, or of what is no option, is the group's units.
        assert!(parsed(quote!(group jobs { task a = a })).1.is_empty());
        assert!(first(quote!(group jobs { restrat = "1s" })).starts_with("expected an entry, found a setting"));
        assert!(first(quote!(task a; pub struct S;)).contains("comes first in the manifest: move `pub struct S;`"));
        // The line is named as written, visibility included.
        assert!(
            first(quote!(crate = "sv"; pub(crate) struct Svc;)).contains("move `pub(crate) struct Svc;` to the top")
        );
        assert!(first(quote!(task a; struct Svc;)).contains("move `struct Svc;` to the top"));
        // A second struct line, after the first or in a group, is told to go:
        // moved to the top, it would have the first told to move.
        for second in
            [quote!(pub struct S; pub(crate) struct T; task a;), quote!(pub struct S; group g {} { struct T; })]
        {
            let message = first(second);
            assert!(message.starts_with("a manifest defines one typed form, and this one's is `S`"), "{message}");
            assert!(message.contains("remove `") && message.contains("struct T;`"), "{message}");
        }
        assert!(
            first(quote!(
                pub struct S<T>;
            ))
            .contains("cannot be generic")
        );
        assert!(
            first(quote!(
                pub struct S {
                    a: u8,
                }
            ))
            .contains("expected `;` after `struct S`")
        );
        assert!(
            first(quote!(
                pub fn f();
            ))
            .contains("expected `struct`")
        );
        assert!(first(quote!(strategy = "x_for_y";)).contains("unknown strategy"));
        assert!(first(quote!(intensity = many;)).contains("`intensity` takes a whole number"));
        assert!(first(quote!(restart = "1s";)).starts_with("unknown setting `restart`"));
    }

    /// An entry cut short by the end of the input: syn's error there is
    /// moved onto the entry's last token, without its preamble.
    #[test]
    fn an_entry_cut_short_says_what_comes_next() {
        for (tokens, expected) in [
            (quote!(daemon), "expected the daemon's name after `daemon`"),
            (quote!(daemon x), "expected `=` and the command to run: `daemon x = "),
            (quote!(daemon x =), "expected the command to run"),
            (quote!(task), "expected the task after `task`"),
            (quote!(task x =), "expected the task to run after `=`: `task x = an_async_fn;`"),
            (quote!(group g), "expected the group's units in braces"),
            (quote!(group g {} { daemon y }), "expected `=` and the command to run: `daemon y = "),
            (quote!(pub), "expected `struct`"),
            (quote!(pub struct), "expected the type's name after `struct`"),
        ] {
            let (_, messages) = parsed(tokens);
            assert_eq!(messages.len(), 1, "{messages:?}");
            assert!(messages[0].starts_with(expected), "{messages:?}");
        }
    }

    /// A setting whose `;` is missing is told so, at the end of its value,
    /// which is read as written, and the entry after it is read too: the
    /// value and the entry after it were read as one value, and refused.
    #[test]
    fn a_setting_without_its_semicolon_is_told_so() {
        let (manifest, messages) = parsed(quote! {
            shutdown_timeout = "30s"
            task b = idle;
            intensity = -1
            strategy = "one_for_all"
            group g {} { task c = c; }
            shutdown_order = "concurrent"
        });
        assert_eq!(
            messages,
            [
                "expected `;` after `shutdown_timeout = \"30s\"`",
                "expected `;` after `intensity = -1`",
                "`intensity = -1` is out of range: write a whole number from 1 to 4294967295",
                "expected `;` after `strategy = \"one_for_all\"`",
            ]
        );
        assert!(manifest.settings.shutdown_timeout.is_some() && manifest.settings.tree.strategy.is_some());
        assert!(manifest.settings.shutdown_order.is_some());
        assert_eq!(names(&manifest.units), ["b", "g(c)"]);
        // A value of several tokens is still one value, refused as such.
        let (_, messages) = parsed(quote!(shutdown_timeout = 1 m;));
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(messages[0].starts_with("`shutdown_timeout` takes a duration string"), "{messages:?}");
    }

    /// A name that is no identifier is written as a string in the
    /// examples, as the manifest takes it: `daemon web-1 = ...` would not
    /// parse.
    #[test]
    fn examples_write_names_as_the_manifest_takes_them() {
        let first = |tokens| parsed(tokens).1.first().cloned().unwrap_or_default();
        let message = first(quote!(daemon "web-1" {};));
        assert!(message.contains("`daemon \"web-1\" = \"program --flag value\";`"), "{message}");
        let message = first(quote!(task "clean up";));
        assert!(message.contains("`task \"clean up\" = an_async_fn;`"), "{message}");
        let message = first(quote!(task "9lives" =;));
        assert!(message.contains("`task \"9lives\" = an_async_fn;`"), "{message}");
        let message = first(quote!(group "hot-cache" = "x";));
        assert!(message.contains("`group \"hot-cache\" { strategy"), "{message}");
        // An identifier, a keyword among them, stays bare.
        let message = first(quote!(daemon r#type {};));
        assert!(message.contains("`daemon type = \"program"), "{message}");
        assert_eq!(
            ["db", "type", "_", "ünï", "r#x", "a b", ""].map(written_name),
            ["db", "type", "_", "ünï", "\"r#x\"", "\"a b\"", "\"\""]
        );
    }

    /// A setting ended with `,`, as a group's options are separated, is
    /// told to end with `;`, once, on the comma, and read as written; the
    /// `,` was taken into its value, which was refused as wrong, after an
    /// error that asked for a `;` after the comma.
    #[test]
    fn a_setting_ended_with_a_comma_is_told_to_end_with_a_semicolon() {
        let (manifest, messages) = parsed(quote! {
            intensity = 10, period = "60s";
            shutdown_timeout = "1s",;
            task b = idle;
            strategy = "one_for_all",
        });
        let fix = "a setting of the manifest ends with `;`, not `,` (which separates the options in braces): write";
        assert_eq!(
            messages,
            [
                format!("{fix} `intensity = 10;`"),
                format!("{fix} `shutdown_timeout = \"1s\";`"),
                format!("{fix} `strategy = \"one_for_all\";`"),
            ]
        );
        let settings = &manifest.settings;
        assert!(matches!(settings.tree.intensity, Some((10, _))) && settings.tree.period.is_some());
        assert!(settings.shutdown_timeout.is_some() && settings.tree.strategy.is_some());
        assert_eq!(names(&manifest.units), ["b"]);
        // In a group, a setting has the error that it is not there, alone.
        let (_, messages) = parsed(quote!(group g {} { strategy = "one_for_all", task c = c; }));
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(messages[0].starts_with("a group's `strategy` goes in its option block"), "{messages:?}");
    }

    #[test]
    fn task_paths_take_options_and_their_last_segment_as_name() {
        let (manifest, messages) = parsed(quote!(task jobs::report { critical, on = "never" };));
        assert!(messages.is_empty(), "{messages:?}");
        assert_eq!(manifest.units[0].name.value, "report");
        assert!(manifest.units[0].options.critical.is_some() && manifest.units[0].options.policy.on.is_some());
    }
}
