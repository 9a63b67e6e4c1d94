//! The typed form of `supervise!`: with `pub struct Services;` first, the
//! manifest defines that type, a `UnitRef` field per unit nested as the
//! groups are, and a type per group (`ServicesStorage` for the group
//! `storage`) that dereferences to the group's own `UnitRef`.
//!
//! Here: the fields and types a manifest gives (names made identifiers,
//! clashes found), and the items they make. `valid` reports the clashes;
//! `expand` and `fallback` pass in how each unit's path is written.

use crate::ast::{TypedHandle, Unit, UnitKind};
use crate::errors::Errors;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ext::IdentExt;
use syn::{Attribute, Ident, Meta};

/// The private field of the root that holds the `SupervisorHandle`.
const HANDLE_FIELD: &str = "__supervisor_handle";
/// The private field of a group's type that holds its own `UnitRef`.
const UNIT_FIELD: &str = "__supervisor_unit";

/// A unit's field in the typed form.
pub(crate) struct Field<'a> {
    pub(crate) unit: &'a Unit,
    pub(crate) ident: Ident,
    /// The names of the groups the unit is in, from the root.
    pub(crate) groups: Vec<&'a str>,
    /// A group's type and its own fields; `None` for a task or a daemon.
    pub(crate) group: Option<(Ident, Vec<Field<'a>>)>,
}

/// The fields of the root, with the groups' types; the clashes the
/// identifiers make (two names made the same identifier, or two groups the
/// same type name) are recorded in `errors`, and the later entry is left
/// out.
pub(crate) fn fields<'a>(handle: &TypedHandle, units: &'a [Unit], errors: &mut Errors) -> Vec<Field<'a>> {
    let mut types = vec![(handle.ident.unraw().to_string(), None)];
    fields_of(&handle.ident, units, &[], &mut types, errors)
}

/// What a field is made from, as the user wrote it.
fn field_source(unit: &Unit) -> String {
    match &unit.kind {
        UnitKind::Supervised(path) => format!("`task {};`", crate::ast::path_text(path)),
        _ => format!("`{}`", unit.name.value),
    }
}

fn fields_of<'a>(
    owner: &Ident,
    units: &'a [Unit],
    groups: &[&'a str],
    types: &mut Vec<(String, Option<&'a Unit>)>,
    errors: &mut Errors,
) -> Vec<Field<'a>> {
    let reserved = if groups.is_empty() { HANDLE_FIELD } else { UNIT_FIELD };
    let mut fields: Vec<Field<'a>> = Vec::new();
    for unit in units {
        let ident = field_ident(unit);
        let text = ident.unraw().to_string();
        if text == reserved {
            errors.spanned_at(
                unit.name.span,
                format!(
                    "`{text}` is the name of a private field of the typed form `{}`: rename the unit",
                    owner.unraw()
                ),
            );
            continue;
        }
        if let Some(first) = fields.iter().find(|field| field.ident.unraw() == text) {
            // The same name written out twice, or the same `task path;`
            // entry, is `valid`'s error already; a `task path;` entry's
            // field is named after its fn.
            let after_fn = [first.unit, unit].iter().any(|unit| matches!(unit.kind, UnitKind::Supervised(_)));
            let same = field_source(first.unit) == field_source(unit);
            if !same && (after_fn || first.unit.name.value != unit.name.value) {
                errors.spanned_at(
                    unit.name.span,
                    format!(
                        "{} and {} both become the field `{text}` of the typed form `{}`: rename one of them{}",
                        field_source(first.unit),
                        field_source(unit),
                        owner.unraw(),
                        if after_fn { " (a `task path;` entry's field is named after its fn)" } else { "" }
                    ),
                );
            }
            continue;
        }
        let group = match &unit.kind {
            UnitKind::Group(children) => {
                let mut path = groups.to_vec();
                path.push(unit.name.value.as_str());
                let ty = group_type(types[0].0.as_str(), &path, unit.name.span);
                let ty_text = ty.to_string();
                if let Some((_, first)) = types.iter().find(|(taken, _)| *taken == ty_text) {
                    let clash = match first {
                        Some(first) => format!("the group `{}` also has", first.name.value),
                        None => "it is the name of the typed form itself, and".to_owned(),
                    };
                    errors.spanned_at(
                        unit.name.span,
                        format!(
                            "the group `{}` has the type `{ty_text}` in the typed form, and {clash} that name: rename one of them",
                            path.join("/")
                        ),
                    );
                    continue;
                }
                types.push((ty_text, Some(unit)));
                let children = fields_of(&ty, children, &path, types, errors);
                Some((ty, children))
            }
            _ => None,
        };
        fields.push(Field { unit, ident, groups: groups.to_vec(), group });
    }
    fields
}

/// The field of a unit: its name as written, with what an identifier
/// cannot hold (`-`, `.`, ...) made `_`; a keyword becomes a raw
/// identifier (`r#type`), and `self` and the like get a trailing `_`.
pub(crate) fn field_ident(unit: &Unit) -> Ident {
    let span = Span::call_site().located_at(unit.name.span);
    let name = &unit.name.value;
    let mut text: String = name.chars().map(|c| if c.is_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if text.starts_with(|c: char| c.is_numeric()) {
        text.insert(0, '_');
    }
    ident(&text, span).unwrap_or_else(|| {
        let ascii: String = text.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        ident(&ascii, span).unwrap_or_else(|| Ident::new(&format!("{ascii}_"), span))
    })
}

/// `text` as an identifier, raw if it is a keyword, or with a trailing
/// `_` if it cannot be raw either; `None` if it is no identifier at all.
fn ident(text: &str, span: Span) -> Option<Ident> {
    // Reserved from edition 2024, which syn reads as a plain identifier: the
    // caller's edition decides, so it is raw for all (`r#gen` is valid in
    // every edition).
    if text == "gen" {
        return Some(Ident::new_raw(text, span));
    }
    let mut ident = syn::parse_str::<Ident>(text)
        .or_else(|_| syn::parse_str::<Ident>(&format!("r#{text}")))
        .or_else(|_| syn::parse_str::<Ident>(&format!("{text}_")))
        .ok()?;
    ident.set_span(span);
    Some(ident)
}

/// The type of a group: the typed form's name and the group's path in
/// UpperCamelCase, `ServicesStorageCache` for the group `storage/cache`.
/// The typed form's name is an identifier, so the type is one too as long
/// as each character added can continue one: any other (`①`, `²`) is
/// written as its code point, `U2460`, so that the type stays an
/// identifier, apart from the other groups' types.
fn group_type(root: &str, path: &[&str], span: Span) -> Ident {
    let mut text = root.to_owned();
    let mut push = |c: char| {
        if continues_ident(c) {
            text.push(c);
        } else {
            text.push_str(&format!("U{:X}", u32::from(c)));
        }
    };
    for name in path {
        let words: Vec<&str> = name.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()).collect();
        if words.is_empty() {
            "Group".chars().for_each(&mut push);
        }
        for word in words {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                first.to_uppercase().for_each(&mut push);
                chars.for_each(&mut push);
            }
        }
    }
    let span = Span::call_site().located_at(span);
    // Not reached: `text` is an identifier's characters after one's start.
    ident(&text, span).unwrap_or_else(|| Ident::new("__SupervisorGroup", span))
}

/// Whether `c` can follow the first character of an identifier.
fn continues_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || (!c.is_ascii() && syn::parse_str::<Ident>(&format!("_{c}")).is_ok())
}

/// What the items of the typed form are made of besides the fields.
pub(crate) struct Bodies<'a> {
    /// The body of `builder()`: a `SupervisorBuilder` with every unit.
    pub(crate) builder: TokenStream,
    /// Items placed first in `from_handle()`, which the paths may use.
    pub(crate) prelude: TokenStream,
    /// The path of a unit as an `Into<Cow<'static, str>>` expression, from
    /// the unit and the path of its group (`""` at the root).
    pub(crate) path: &'a dyn Fn(&Unit, &str) -> TokenStream,
}

/// The type of the typed form, its groups' types, and their impls.
pub(crate) fn items(
    handle: &TypedHandle,
    fields: &[Field<'_>],
    private: &TokenStream,
    bodies: &Bodies<'_>,
) -> TokenStream {
    let TypedHandle { attrs, vis, ident, .. } = handle;
    let name = ident.unraw().to_string();
    let handle_field = Ident::new(HANDLE_FIELD, Span::call_site());
    let documented = attrs.iter().any(|attr| attr.path().is_ident("doc"));
    let doc = (!documented).then(|| {
        let doc = format!(
            "The units of a `supervise!` manifest, as `UnitRef`s nested as its groups are. \
             `{name}::start()` starts them; `{name}::builder()` gives the `SupervisorBuilder` with every unit, \
             and `{name}::from_handle(handle)` the typed form of the supervisor it builds."
        );
        quote!(#[doc = #doc])
    });
    let cfgs = cfgs(attrs);
    let mut items = TokenStream::new();
    let mut group_types = TokenStream::new();
    let declared = declarations(fields, vis, private, &cfgs, &mut group_types);
    let debug = debug_fields(fields);
    let values = values(fields, "", bodies);
    let start_doc = format!(
        "Starts the manifest's units on the current tokio runtime, as `Supervisor::start` does, and returns their `{name}`.\n\n\
         Dropping every clone of it (and of its handle) shuts the supervisor down.\n\n\
         # Panics\n\nOutside a tokio runtime."
    );
    let builder_doc = "The `SupervisorBuilder` with every unit, strategy and setting of the manifest, to add what the \
                       manifest does not say (a PID file, health checks, settings); start what it builds with \
                       `from_handle(supervisor.start())`.";
    let from_handle_doc = format!(
        "The `{name}` of a running supervisor, such as one built from `{name}::builder()`. \
         The fields name units by path: on a supervisor without them their calls say `Error::UnknownUnit`."
    );
    let handle_doc =
        "The handle of the supervisor, for the calls that name no unit (`shutdown`, `statuses`, `subscribe`, ...).";
    let builder = &bodies.builder;
    let prelude = &bodies.prelude;
    items.extend(quote! {
        #(#attrs)*
        #doc
        #[derive(::core::clone::Clone)]
        #[allow(dead_code, non_snake_case, unreachable_pub)]
        #vis struct #ident {
            #declared
            #handle_field: #private::SupervisorHandle,
        }

        #cfgs
        // It names the type: a `#[deprecated]` type is not used by its own items.
        #[allow(dead_code, unreachable_pub, deprecated)]
        impl #ident {
            #[doc = #start_doc]
            #[must_use = "dropping it and every clone of its handle shuts the supervisor down"]
            #[track_caller]
            #vis fn start() -> Self {
                Self::from_handle(#private::build_manifest(Self::builder()).start())
            }

            #[doc = #builder_doc]
            #vis fn builder() -> #private::SupervisorBuilder {
                #builder
            }

            #[doc = #from_handle_doc]
            #[must_use]
            #vis fn from_handle(#handle_field: #private::SupervisorHandle) -> Self {
                #prelude
                #ident { #values #handle_field }
            }

            #[doc = #handle_doc]
            #[must_use]
            #vis fn handle(&self) -> &#private::SupervisorHandle {
                &self.#handle_field
            }
        }

        #cfgs
        #[allow(deprecated)]
        impl ::core::fmt::Debug for #ident {
            fn fmt(&self, __supervisor_f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                __supervisor_f.debug_struct(#name) #debug .finish_non_exhaustive()
            }
        }
    });
    items.extend(group_types);
    items
}

/// The field declarations of one level, and into `types` the types of its
/// groups.
fn declarations(
    fields: &[Field<'_>],
    vis: &syn::Visibility,
    private: &TokenStream,
    cfgs: &TokenStream,
    types: &mut TokenStream,
) -> TokenStream {
    let mut declared = TokenStream::new();
    for field in fields {
        let ident = &field.ident;
        let path = unit_path(field);
        let doc = match &field.group {
            Some((ty, _)) => format!(
                "The group `{path}`: its own calls (`status()`, `restart()`, ...) through `Deref<Target = UnitRef>`, its units as fields (see `{ty}`)."
            ),
            None => format!("The {} `{path}`.", field.unit.keyword.unraw()),
        };
        let ty = match &field.group {
            Some((ty, children)) => {
                let group = group_items(field, ty, children, vis, private, cfgs, types);
                types.extend(group);
                quote!(#ty)
            }
            None => quote!(#private::UnitRef),
        };
        declared.extend(quote! {
            #[doc = #doc]
            #vis #ident: #ty,
        });
    }
    declared
}

/// The type of one group and its impls.
fn group_items(
    field: &Field<'_>,
    ty: &Ident,
    children: &[Field<'_>],
    vis: &syn::Visibility,
    private: &TokenStream,
    cfgs: &TokenStream,
    types: &mut TokenStream,
) -> TokenStream {
    let unit_field = Ident::new(UNIT_FIELD, Span::call_site());
    let path = unit_path(field);
    let doc = format!(
        "The group `{path}` of a typed `supervise!` manifest: the group's own `UnitRef` through `Deref`, and a field per unit of it."
    );
    let declared = declarations(children, vis, private, cfgs, types);
    let debug = debug_fields(children);
    let name = ty.to_string();
    quote! {
        #cfgs
        #[doc = #doc]
        #[derive(::core::clone::Clone)]
        #[allow(dead_code, non_snake_case, unreachable_pub)]
        #vis struct #ty {
            #declared
            #unit_field: #private::UnitRef,
        }

        #cfgs
        impl ::core::ops::Deref for #ty {
            type Target = #private::UnitRef;

            fn deref(&self) -> &#private::UnitRef {
                &self.#unit_field
            }
        }

        #cfgs
        impl ::core::fmt::Debug for #ty {
            fn fmt(&self, __supervisor_f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                __supervisor_f.debug_struct(#name).field("path", &self.#unit_field.path()) #debug .finish_non_exhaustive()
            }
        }
    }
}

/// The typed form's `cfg` attributes, for every item that goes with it:
/// its impls and its groups' types are there exactly when it is. Of a
/// `cfg_attr`, only the `cfg`s it adds (its other attributes, such as a
/// `derive`, are the type's alone).
fn cfgs(attrs: &[Attribute]) -> TokenStream {
    attrs.iter().filter_map(|attr| conditions(&attr.meta)).map(|meta| quote!(#[#meta])).collect()
}

/// `meta` if it is a `cfg`, or a `cfg_attr` with the `cfg`s it holds.
fn conditions(meta: &Meta) -> Option<TokenStream> {
    if meta.path().is_ident("cfg") {
        return Some(quote!(#meta));
    }
    let Meta::List(list) = meta else { return None };
    if !list.path.is_ident("cfg_attr") {
        return None;
    }
    // The predicate, then the attributes, split at the commas outside any
    // delimiter (a predicate such as `true` is no `Meta`).
    let mut parts = Vec::new();
    let mut part = TokenStream::new();
    for token in list.tokens.clone() {
        match &token {
            proc_macro2::TokenTree::Punct(punct) if punct.as_char() == ',' => parts.push(std::mem::take(&mut part)),
            _ => part.extend([token]),
        }
    }
    parts.push(part);
    let mut parts = parts.into_iter().filter(|part| !part.is_empty());
    let predicate = parts.next()?;
    let kept: Vec<TokenStream> =
        parts.filter_map(|part| syn::parse2::<Meta>(part).ok()).filter_map(|meta| conditions(&meta)).collect();
    if kept.is_empty() {
        return None;
    }
    Some(quote!(cfg_attr(#predicate, #(#kept),*)))
}

fn debug_fields(fields: &[Field<'_>]) -> TokenStream {
    fields
        .iter()
        .map(|field| {
            let ident = &field.ident;
            let name = ident.unraw().to_string();
            quote!(.field(#name, &self.#ident))
        })
        .collect()
}

/// `a: handle.unit("a"), g: ServicesG { __supervisor_unit: ..., ... },`.
fn values(fields: &[Field<'_>], group: &str, bodies: &Bodies<'_>) -> TokenStream {
    let handle = Ident::new(HANDLE_FIELD, Span::call_site());
    let unit_field = Ident::new(UNIT_FIELD, Span::call_site());
    let mut values = TokenStream::new();
    for field in fields {
        let ident = &field.ident;
        let path = (bodies.path)(field.unit, group);
        let unit = quote!(#handle.unit(#path));
        values.extend(match &field.group {
            Some((ty, children)) => {
                let inner = unit_path(field);
                let children = self::values(children, &inner, bodies);
                quote!(#ident: #ty { #children #unit_field: #unit },)
            }
            None => quote!(#ident: #unit,),
        });
    }
    values
}

/// The path of a unit as the manifest names it (a `task path;` entry by
/// its fn's name), for docs and for the groups, whose names are literal.
fn unit_path(field: &Field<'_>) -> String {
    field.groups.iter().copied().chain([field.unit.name.value.as_str()]).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast;

    fn parsed(tokens: TokenStream) -> ast::Manifest {
        let mut errors = Errors::default();
        let manifest = ast::manifest::parse(tokens, &mut errors);
        errors.into_result().unwrap();
        manifest
    }

    fn names(fields: &[Field<'_>]) -> Vec<String> {
        fields.iter().map(|field| field.ident.to_string()).collect()
    }

    #[test]
    fn names_become_identifiers() {
        let manifest = parsed(quote! {
            pub struct S;
            daemon "my-web.1" = "w"; task r#type = t; daemon "self" = "s"; daemon "9lives" = "n";
            task jobs::report; daemon "_" = "u";
        });
        let mut errors = Errors::default();
        let fields = fields(manifest.handle.as_ref().unwrap(), &manifest.units, &mut errors);
        assert!(errors.into_result().is_ok());
        assert_eq!(names(&fields), ["my_web_1", "r#type", "self_", "_9lives", "report", "__"]);
    }

    #[test]
    fn groups_get_types_named_by_path() {
        let manifest = parsed(quote! {
            pub struct Services;
            group storage {} { group "hot-cache" {} { daemon redis = "redis"; } }
        });
        let mut errors = Errors::default();
        let fields = fields(manifest.handle.as_ref().unwrap(), &manifest.units, &mut errors);
        let (storage, children) = fields[0].group.as_ref().unwrap();
        assert_eq!(storage, "ServicesStorage");
        let (cache, redis) = children[0].group.as_ref().unwrap();
        assert_eq!(cache, "ServicesStorageHotCache");
        assert_eq!(unit_path(&redis[0]), "storage/hot-cache/redis");
    }

    #[test]
    fn group_types_are_identifiers_whatever_the_names() {
        let types = |tokens: TokenStream| {
            let manifest = parsed(tokens);
            let mut errors = Errors::default();
            let fields = fields(manifest.handle.as_ref().unwrap(), &manifest.units, &mut errors);
            assert!(errors.into_result().is_ok());
            let mut types = Vec::new();
            let mut level = &fields;
            while let Some((ty, children)) = level.first().and_then(|field| field.group.as_ref()) {
                types.push(ty.to_string());
                level = children;
            }
            types
        };
        assert_eq!(
            types(quote!(pub struct 服务; group "2024" {} { group "①" {} { task x = idle; } })),
            ["服务2024", "服务2024U2460"]
        );
        assert_eq!(types(quote!(pub struct Дом; group "²3" {} { task x = idle; })), ["ДомUB23"]);
        assert_eq!(types(quote!(struct _1; group "m²" {} { task x = idle; })), ["_1MUB2"]);
        assert_eq!(types(quote!(struct S; group "9" {} {})), ["S9"]);
    }

    #[test]
    fn the_cfgs_of_the_type_go_to_its_items() {
        let manifest = parsed(quote! {
            #[cfg(feature = "typed")]
            #[cfg_attr(unix, derive(Default), cfg(test))]
            #[cfg_attr(true, cfg_attr(unix, cfg(all()), doc = "x"))]
            #[cfg_attr(unix, allow(dead_code))]
            /// Documented.
            pub struct S;
        });
        let attrs = &manifest.handle.as_ref().unwrap().attrs;
        assert_eq!(
            cfgs(attrs).to_string(),
            quote! {
                #[cfg(feature = "typed")]
                #[cfg_attr(unix, cfg(test))]
                #[cfg_attr(true, cfg_attr(unix, cfg(all())))]
            }
            .to_string()
        );
    }

    #[test]
    fn clashes_are_errors_and_left_out() {
        let manifest = parsed(quote! {
            pub struct Services;
            daemon "a-b" = "x"; daemon a_b = "y"; daemon __supervisor_handle = "z";
            group storage_cache {} {}
            group storage {} { group cache {} {} }
            group "--" {} {}
        });
        let mut errors = Errors::default();
        let fields = fields(manifest.handle.as_ref().unwrap(), &manifest.units, &mut errors);
        let messages: Vec<String> = errors.into_result().unwrap_err().into_iter().map(|e| e.to_string()).collect();
        assert_eq!(
            messages,
            [
                "`a-b` and `a_b` both become the field `a_b` of the typed form `Services`: rename one of them",
                "`__supervisor_handle` is the name of a private field of the typed form `Services`: rename the unit",
                "the group `storage/cache` has the type `ServicesStorageCache` in the typed form, and the group `storage_cache` also has that name: rename one of them",
            ]
        );
        assert_eq!(names(&fields), ["a_b", "storage_cache", "storage", "__"]);
        assert_eq!(fields[3].group.as_ref().unwrap().0, "ServicesGroup");
    }
}
