//! Names and dependencies across the tree of groups: a name used twice in a
//! group, and every finding of `graph` about each group's `depends_on`,
//! with the place of a unit that is not a sibling when the name is found
//! elsewhere in the tree.

use crate::ast::{Unit, UnitKind, UnitName, path_text, written_name};
use crate::errors::Errors;
use crate::graph::{self, Dependency, Finding};
use crate::limits::MAX_GROUP_DEPTH;
use crate::suggest;

/// A unit of the tree with the names of the groups it is in.
struct Placed<'a> {
    groups: Vec<&'a str>,
    unit: &'a Unit,
}

/// Checks the root's units and every group's, depth first.
pub(crate) fn check(root: &[Unit], errors: &mut Errors) {
    let mut everything = Vec::new();
    collect(root, &mut Vec::new(), &mut everything);
    group(root, &[], &everything, errors);
}

fn collect<'a>(units: &'a [Unit], groups: &mut Vec<&'a str>, into: &mut Vec<Placed<'a>>) {
    for unit in units {
        into.push(Placed { groups: groups.clone(), unit });
        if let UnitKind::Group(children) = &unit.kind {
            groups.push(&unit.name.value);
            collect(children, groups, into);
            groups.pop();
        }
    }
}

fn group(units: &[Unit], path: &[&str], everything: &[Placed<'_>], errors: &mut Errors) {
    unique_names(units, path, errors);
    dependencies(units, path, everything, errors);
    for unit in units {
        if let UnitKind::Group(children) = &unit.kind {
            let mut inner = path.to_vec();
            inner.push(&unit.name.value);
            if inner.len() > MAX_GROUP_DEPTH {
                errors.spanned_at(
                    unit.name.span,
                    format!(
                        "groups are nested {} levels deep here; at most {MAX_GROUP_DEPTH} levels are supported: \
                         flatten the tree, e.g. with units side by side in one group",
                        inner.len()
                    ),
                );
                continue;
            }
            group(children, &inner, everything, errors);
        }
    }
}

/// "the root group" or "the group `storage/db`".
fn describe_group(path: &[&str]) -> String {
    if path.is_empty() { "the root group".to_owned() } else { format!("the group `{}`", path.join("/")) }
}

/// Names written out, compared. A `task path;` entry's unit name is the
/// fn's `name` option, out of sight here: the expansion compares it with its
/// siblings' by a constant of its own.
fn unique_names(units: &[Unit], path: &[&str], errors: &mut Errors) {
    repeated_entries(units, path, errors);
    let written = |unit: &&Unit| !matches!(unit.kind, UnitKind::Supervised(_));
    for (index, unit) in units.iter().enumerate().filter(|(_, unit)| written(unit)) {
        let name = &unit.name.value;
        if let Some(first) = units[..index].iter().filter(written).find(|earlier| earlier.name.value == *name) {
            errors.spanned_at(
                unit.name.span,
                format!(
                    "duplicate unit name `{name}` in {}: every unit of a group needs its own name",
                    describe_group(path)
                ),
            );
            errors.spanned_at(first.name.span, format!("the first `{name}` is here"));
        }
    }
}

/// A `task path;` entry written twice in a group: one `#[supervised]` fn, so
/// one unit name twice, which no `name` option on the fn can part (the
/// constant that compares the names would say to set one).
fn repeated_entries(units: &[Unit], path: &[&str], errors: &mut Errors) {
    let entries: Vec<(&syn::Path, String)> = units.iter().filter_map(entry_path).collect();
    for (index, (written, text)) in entries.iter().enumerate() {
        let Some((first, _)) = entries[..index].iter().find(|(_, earlier)| earlier == text) else { continue };
        errors.spanned(
            written,
            format!(
                "`task {text};` is written twice in {}: both add the unit of the #[supervised] fn `{text}`, under \
                 the same name; remove one of them",
                describe_group(path)
            ),
        );
        errors.spanned(first, format!("the first `task {text};` is here"));
    }
}

fn dependencies(units: &[Unit], path: &[&str], everything: &[Placed<'_>], errors: &mut Errors) {
    let names: Vec<&str> = units.iter().map(|unit| unit.name.value.as_str()).collect();
    // A dependency that cannot say which unit it names is reported alone:
    // the graph would take it to be on the first (or on the dependent).
    let written: Vec<(usize, &UnitName)> = units
        .iter()
        .enumerate()
        .flat_map(|(index, unit)| unit.options.depends_on.iter().map(move |name| (index, name)))
        .filter(|(_, name)| !ambiguous(units, name, errors))
        .collect();
    let edges: Vec<Dependency<'_>> =
        written.iter().map(|(from, name)| Dependency { from: *from, to: name.value.as_str() }).collect();
    for finding in graph::check(&names, &edges) {
        match finding {
            Finding::Unknown { dependency, closest } => {
                let (from, name) = written[dependency];
                let message =
                    not_a_sibling(&units[from], name, closest.map(|index| &units[index]), path, units, everything);
                errors.push(name.error(message));
            }
            Finding::OnItself { dependency } => {
                let (from, name) = written[dependency];
                errors.push(name.error(format!(
                    "`{}` depends on itself: remove `{}` from its `depends_on`",
                    units[from].name.value, name.value
                )));
            }
            Finding::Repeated { dependency, .. } => {
                let (from, name) = written[dependency];
                errors.push(name.error(format!(
                    "`{}` is listed twice in the `depends_on` of `{}`; keep only one",
                    name.value, units[from].name.value
                )));
            }
            Finding::Cycle { dependency, path: cycle } => {
                let (from, name) = written[dependency];
                errors.spanned_at(
                    name.span,
                    format!(
                        "dependency cycle: {}; this dependency of `{}` on `{}` closes it: units in a cycle could never start, so remove one of these dependencies",
                        graph::describe_cycle(&names, &cycle),
                        units[from].name.value,
                        name.value
                    ),
                );
            }
        }
    }
}

/// Whether a dependency names several entries of the group, and says so:
/// `task path;` entries are named after their fns (fns of one name in two
/// modules, or a fn named like a written unit, each with a unit name of
/// its own that the manifest does not see), and a dependency would be on
/// the first of them only.
fn ambiguous(units: &[Unit], name: &UnitName, errors: &mut Errors) -> bool {
    let named: Vec<&Unit> = units.iter().filter(|unit| unit.name.value == name.value).collect();
    let by_path = |unit: &&Unit| matches!(unit.kind, UnitKind::Supervised(_));
    if named.len() < 2 || !named.iter().any(by_path) || one_entry_repeated(&named) {
        return false;
    }
    let entries: Vec<String> = named
        .iter()
        .map(|unit| match &unit.kind {
            UnitKind::Supervised(path) => format!("`task {};`", path_text(path)),
            _ => format!("the {} `{}`", unit.keyword, unit.name.value),
        })
        .collect();
    let fix = if named.iter().all(by_path) {
        "give their fns names of their own"
    } else {
        "give the fn a name other than the unit's"
    };
    errors.spanned_at(
        name.span,
        format!(
            "`{}` names {} units here ({}): a dependency cannot say which; {fix}",
            name.value,
            entries.len(),
            entries.join(", ")
        ),
    );
    true
}

/// Whether `named` are one `task path;` entry written more than once: the
/// same fn, one unit, whose repetition is an error of its own.
fn one_entry_repeated(named: &[&Unit]) -> bool {
    let paths: Vec<Option<String>> = named.iter().map(|unit| entry_path(unit).map(|(_, text)| text)).collect();
    paths[0].is_some() && paths.iter().all(|path| *path == paths[0])
}

/// The path of a `task path;` entry, and as written; `None` for another
/// unit.
fn entry_path(unit: &Unit) -> Option<(&syn::Path, String)> {
    match &unit.kind {
        UnitKind::Supervised(path) => Some((path, path_text(path))),
        _ => None,
    }
}

/// What a dependency on a `task path;` entry names, for the hint of an
/// unknown one: the entry's name in the manifest, its fn's, which the unit's
/// run-time name (the attribute's `name`, which the manifest cannot see)
/// need not be. Empty when no such entry is among `hinted`.
fn supervised_names(hinted: &[&Unit]) -> String {
    let entries: Vec<(&str, &syn::Path)> = hinted
        .iter()
        .filter_map(|unit| match &unit.kind {
            UnitKind::Supervised(path) => Some((unit.name.value.as_str(), path)),
            _ => None,
        })
        .collect();
    // Entries of one name (`task a::run; task b::run;`) are one name to write.
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in &entries {
        if !names.contains(name) {
            names.push(name);
        }
    }
    match (names.as_slice(), entries.as_slice()) {
        ([], _) => String::new(),
        ([name], [(_, path)]) => format!(
            "; `{name}` is the manifest's name for the #[supervised] fn `{}`, whatever name its attribute gives the unit",
            path_text(path)
        ),
        ([name], _) => {
            let mut paths: Vec<String> = entries.iter().map(|(_, path)| format!("`{}`", path_text(path))).collect();
            let last = paths.pop().unwrap_or_default();
            format!(
                "; `{name}` is the manifest's name for the #[supervised] fns {} and {last}, whatever names their \
                 attributes give the units",
                paths.join(", ")
            )
        }
        ([init @ .., last], _) => {
            let init: Vec<String> = init.iter().map(|name| format!("`{name}`")).collect();
            format!(
                "; {} and `{last}` are the manifest's names for #[supervised] fns, whatever names their attributes \
                 give the units",
                init.join(", ")
            )
        }
    }
}

/// The message for a dependency that names no sibling: where the unit is
/// if it is elsewhere in the tree, else the closest sibling. A path
/// (`storage/postgres`) is looked for where it leads.
fn not_a_sibling(
    unit: &Unit,
    name: &UnitName,
    closest: Option<&Unit>,
    path: &[&str],
    siblings: &[Unit],
    everything: &[Placed<'_>],
) -> String {
    let wanted = name.value.as_str();
    let dependent = unit.name.value.as_str();
    if wanted.contains('/') {
        return by_path(unit, wanted, path, siblings, everything);
    }
    if let Some(depth) = path.iter().position(|group| *group == wanted) {
        let own = describe_group(&path[..=depth]);
        return format!("`{dependent}` is inside {own}: a unit cannot depend on a group it is in");
    }
    let Some(found) = everything.iter().find(|placed| placed.unit.name.value == wanted) else {
        let (hint, hinted) = match closest {
            Some(close) => (format!(" (did you mean `{}`?)", close.name.value), vec![close]),
            None => next_to(dependent, path, siblings),
        };
        return format!(
            "unknown dependency `{wanted}`{hint}: `depends_on` names units of the same group as `{dependent}`, {}{}",
            describe_group(path),
            supervised_names(&hinted)
        );
    };
    let full_path = full_path(found);
    let place = format!(
        "`{wanted}` is not in {} but is `{}`, in {}",
        describe_group(path),
        full_path.join("/"),
        describe_group(&found.groups)
    );
    elsewhere(unit, wanted, found, path, &format!("{place}; `depends_on` names units of the same group, so"))
}

/// The units next to the dependent, each name once, for the hint of an
/// unknown dependency, with those hinted at.
fn next_to<'a>(dependent: &str, path: &[&str], siblings: &'a [Unit]) -> (String, Vec<&'a Unit>) {
    let others: Vec<&Unit> = siblings.iter().filter(|sibling| sibling.name.value != dependent).collect();
    if others.is_empty() {
        return (format!("; `{dependent}` has no siblings in {}", describe_group(path)), vec![]);
    }
    // Two entries may share a name (`task a::run; task b::run;`): it is
    // one name to write.
    let mut names: Vec<&str> = Vec::new();
    for other in &others {
        if !names.contains(&other.name.value.as_str()) {
            names.push(&other.name.value);
        }
    }
    (format!("; the units next to `{dependent}` are {}", suggest::one_of(&names)), others)
}

/// The groups and name of a unit: `["storage", "postgres"]`.
fn full_path<'a>(placed: &Placed<'a>) -> Vec<&'a str> {
    placed.groups.iter().copied().chain([placed.unit.name.value.as_str()]).collect()
}

/// The message for a dependency on a unit found elsewhere in the tree, at
/// `found`, not in the dependent's group: what to depend on instead.
/// `place`: where it is and why it will not do, to begin with, before
/// "depend on ..."; `wanted`: the dependency as written.
fn elsewhere(unit: &Unit, wanted: &str, found: &Placed<'_>, path: &[&str], place: &str) -> String {
    let dependent = unit.name.value.as_str();
    // The units under the closest group both are in: the dependent's side
    // should depend on the other side.
    let common = path.iter().zip(&found.groups).take_while(|(a, b)| a == b).count();
    let full_path = full_path(found);
    let target_side = full_path[common];
    if common == path.len() && target_side == dependent && matches!(unit.kind, UnitKind::Group(_)) {
        // The holder to depend on is the dependent itself: no dependency
        // of the group can name it, so none is suggested.
        let full = full_path.join("/");
        let at = if full == wanted { format!("`{wanted}` is") } else { format!("`{wanted}` is `{full}`,") };
        format!(
            "{at} inside the group `{dependent}` itself: a group cannot depend on a unit inside itself \
             (its units start only once it does, so it would wait for itself); remove `{wanted}` from the `depends_on` \
             of `{dependent}`, and order the units inside it with their own `depends_on`"
        )
    } else if common == path.len() {
        format!("{place} depend on the group that holds it: `depends_on = [{}]`", written_name(target_side))
    } else {
        let dependent_side = path[common];
        let (group, dependency) = (written_name(dependent_side), written_name(target_side));
        format!(
            "{place} make the group `{dependent_side}` depend on `{target_side}` instead: `group {group} {{ depends_on = [{dependency}] }} {{ ... }}`"
        )
    }
}

/// The message for a dependency written as a path (`storage/postgres`),
/// from the root or from the dependent's group: the advice a dependency on
/// the unit's name gets, which says what to depend on instead.
fn by_path(unit: &Unit, wanted: &str, path: &[&str], siblings: &[Unit], everything: &[Placed<'_>]) -> String {
    let dependent = unit.name.value.as_str();
    let parts: Vec<&str> = wanted.split('/').collect();
    let relative: Vec<&str> = path.iter().copied().chain(parts.iter().copied()).collect();
    let found =
        [&parts, &relative].into_iter().find_map(|parts| everything.iter().find(|placed| full_path(placed) == **parts));
    let own = describe_group(path);
    let Some(found) = found else {
        let (hint, hinted) = next_to(dependent, path, siblings);
        return format!(
            "unknown dependency `{wanted}`: no unit is at that path, and `depends_on` names units of the same group as \
             `{dependent}`, {own}, not paths{hint}{}",
            supervised_names(&hinted)
        );
    };
    let name = found.unit.name.value.as_str();
    let full_path = full_path(found);
    if std::ptr::eq(found.unit, unit) {
        return format!("`{wanted}` is `{dependent}` itself: remove it from the `depends_on` of `{dependent}`");
    }
    if path.starts_with(&full_path) {
        let inside = describe_group(&full_path);
        return format!("`{dependent}` is inside {inside}: a unit cannot depend on a group it is in");
    }
    let not_a_name = format!("`{wanted}` is a path, and `depends_on` names units of the same group, not paths");
    if found.groups == path {
        let written = written_name(name);
        return format!("{not_a_name}: `{name}` is next to `{dependent}`, in {own}: write its name, `{written}`");
    }
    let place = format!("{not_a_name}: `{name}` is in {}, not in {own}; so", describe_group(&found.groups));
    elsewhere(unit, wanted, found, path, &place)
}

#[cfg(test)]
mod tests {
    use crate::valid::tests::messages;
    use quote::quote;

    fn one(tokens: proc_macro2::TokenStream) -> String {
        let mut all = messages(tokens);
        assert_eq!(all.len(), 1, "{all:#?}");
        all.remove(0)
    }

    #[test]
    fn a_name_that_a_written_unit_and_a_fn_share_is_no_dependency() {
        let message = one(quote! { daemon worker = "w"; task jobs::worker; task api = api { depends_on = [worker] }; });
        assert_eq!(
            message,
            "`worker` names 2 units here (the daemon `worker`, `task jobs::worker;`): a dependency cannot say \
             which; give the fn a name other than the unit's"
        );
        // Not read as a dependency on itself either.
        let message = one(quote! { daemon db = "postgres"; task jobs::db { depends_on = [db] }; });
        assert!(message.starts_with("`db` names 2 units here (the daemon `db`, `task jobs::db;`)"), "{message}");
    }

    /// The fix of a dependency on a unit of another group names the groups
    /// as the manifest takes them: a name that is no identifier as a string.
    #[test]
    fn a_dependency_elsewhere_is_told_the_fix_with_string_names() {
        let message =
            one(quote! { group "my-db" {} { daemon pg = "postgres"; } task api = api { depends_on = [pg] }; });
        assert!(message.ends_with("depend on the group that holds it: `depends_on = [\"my-db\"]`"), "{message}");
        let message = one(quote! {
            group "my-db" {} { daemon pg = "postgres"; }
            group "api v2" {} { task x = x { depends_on = ["my-db"] }; }
        });
        assert!(message.ends_with("`group \"api v2\" { depends_on = [\"my-db\"] } { ... }`"), "{message}");
        let message = one(quote! { group g {} { daemon "p-1" = "p"; task a = a { depends_on = ["g/p-1"] }; } });
        assert!(message.ends_with("write its name, `\"p-1\"`"), "{message}");
    }

    /// An entry whose syntax is wrong after its name is still a unit named
    /// so: its dependents find it, where each was told that it did not
    /// exist, beside the error of its syntax.
    #[test]
    fn an_entry_with_wrong_syntax_after_its_name_is_still_found() {
        let all = messages(quote! {
            daemon db { restart = "1s" };
            task cache = ;
            group jobs = "x";
            task api = api { depends_on = [db, cache, jobs] };
        });
        assert_eq!(all.len(), 3, "{all:#?}");
        assert!(all[0].starts_with("expected `=` and the command to run: `daemon db = "), "{all:#?}");
        assert!(all[1].starts_with("expected the task to run after `=`"), "{all:#?}");
        assert!(all[2].starts_with("expected the group's units in braces"), "{all:#?}");
    }

    /// The same `task path;` entry twice is told to be removed, once, where
    /// the constant that compares the names said to rename the fn's unit
    /// (both entries' unit), a dependency on it was called ambiguous and
    /// the typed form's field a clash.
    #[test]
    fn a_task_path_entry_written_twice_is_told_to_go() {
        let all = messages(quote! {
            pub struct Services;
            task worker;
            group g {} { task jobs::run; task jobs::run { max = 1 }; }
            task worker { max = 1 };
            task api = api { depends_on = [worker] };
        });
        assert_eq!(
            all,
            [
                "`task worker;` is written twice in the root group: both add the unit of the #[supervised] fn \
                 `worker`, under the same name; remove one of them",
                "the first `task worker;` is here",
                "`task jobs::run;` is written twice in the group `g`: both add the unit of the #[supervised] fn \
                 `jobs::run`, under the same name; remove one of them",
                "the first `task jobs::run;` is here",
            ]
        );
        // Two fns of one name are two entries, which the constant compares.
        assert!(messages(quote!(task a::run; task b::run;)).is_empty());
    }

    #[test]
    fn duplicate_names_within_a_group() {
        let all = messages(quote! {
            daemon worker = "a";
            group g { daemon worker = "b"; task worker = w; }
            daemon worker = "c";
        });
        assert_eq!(
            all,
            [
                "duplicate unit name `worker` in the root group: every unit of a group needs its own name",
                "the first `worker` is here",
                "duplicate unit name `worker` in the group `g`: every unit of a group needs its own name",
                "the first `worker` is here",
            ]
        );
    }

    /// A `task path;` entry is named by its fn's `name` option, which the
    /// expansion compares: fns of one name in two modules may be two units.
    #[test]
    fn task_path_entries_are_not_compared_by_their_fns_names() {
        assert!(messages(quote! { task a::run; task b::run; daemon run = "r"; }).is_empty());
    }

    /// `levels` groups, each in the one before, with a daemon in the
    /// innermost.
    fn nested(levels: usize) -> proc_macro2::TokenStream {
        (1..levels).fold(quote! { group g {} { daemon d = "sleep"; } }, |inner, _| quote! { group g {} { #inner } })
    }

    #[test]
    fn groups_nested_deeper_than_the_runtime_supports() {
        assert_eq!(crate::limits::MAX_GROUP_DEPTH, supervisor::MAX_GROUP_DEPTH, "both crates agree");
        assert!(messages(nested(crate::limits::MAX_GROUP_DEPTH)).is_empty());
        let message = one(nested(crate::limits::MAX_GROUP_DEPTH + 1));
        assert_eq!(
            message,
            "groups are nested 65 levels deep here; at most 64 levels are supported: flatten the tree, e.g. with units side by side in one group"
        );
        // Far deeper: one error, where a parse of every level overflowed
        // the compiler's stack.
        assert_eq!(one(nested(200)), message);
        let message = one(nested(3_000));
        assert!(message.contains("at most 64 levels are supported"), "{message}");
    }

    /// A daemon whose command is wrong is still a unit: its name is checked,
    /// and its dependents find it. It used to be left out, and its
    /// dependents were told it did not exist.
    #[test]
    fn a_daemon_with_a_wrong_command_is_still_named_and_found() {
        let message = one(quote! { daemon db = "postgres -D $PGDATA"; task api = api { depends_on = [db] }; });
        assert!(message.starts_with("`$PGDATA` is expanded by a shell"), "{message}");
        let all = messages(quote! { daemon "w/1" = "a | b"; });
        assert_eq!(all.len(), 2, "{all:#?}");
        assert!(all.iter().any(|message| message.starts_with("a unit name cannot contain `/`")), "{all:#?}");
    }

    #[test]
    fn unknown_dependencies() {
        let message = one(quote! { daemon postgres = "pg"; task api = api { depends_on = [postgress] }; });
        assert_eq!(
            message,
            "unknown dependency `postgress` (did you mean `postgres`?): `depends_on` names units of the same group as `api`, the root group"
        );
        let message = one(quote! { daemon a = "a"; daemon b = "b"; task api = api { depends_on = [zzz] }; });
        assert!(message.contains("; the units next to `api` are `a` or `b`:"), "{message}");
        let message = one(quote! { group g {} { task api = api { depends_on = [zzz] }; } });
        assert!(message.contains("; `api` has no siblings in the group `g`:"), "{message}");
    }

    /// A `task path;` entry is named in the manifest by its fn, whatever
    /// name its attribute gives the unit at run time: the hint says so.
    #[test]
    fn an_unknown_dependency_near_a_supervised_fn_says_how_it_is_named() {
        let message = one(quote! {
            group storage {} { task jobs::migrate; task api = api { depends_on = ["db-migrate"] }; }
        });
        assert_eq!(
            message,
            "unknown dependency `db-migrate` (did you mean `migrate`?): `depends_on` names units of the same group as \
             `api`, the group `storage`; `migrate` is the manifest's name for the #[supervised] fn `jobs::migrate`, \
             whatever name its attribute gives the unit"
        );
        let message = one(quote! { task worker; task poller; task api = api { depends_on = [custom] }; });
        assert!(
            message.ends_with(
                "; the units next to `api` are `worker` or `poller`: `depends_on` names units of the same group as \
                 `api`, the root group; `worker` and `poller` are the manifest's names for #[supervised] fns, \
                 whatever names their attributes give the units"
            ),
            "{message}"
        );
        // A written unit needs no such word.
        let message = one(quote! { daemon migrate = "m"; task api = api { depends_on = ["db-migrate"] }; });
        assert!(message.ends_with("the root group"), "{message}");
    }

    /// Entries of one name are one name to write, in the list of the units
    /// next to the dependent and in the word on #[supervised] fns.
    #[test]
    fn the_units_next_to_a_dependent_are_named_once() {
        let message = one(quote! { task a::run; task b::run; task c = c; task e = e { depends_on = [zzzzzz] }; });
        assert_eq!(
            message,
            "unknown dependency `zzzzzz`; the units next to `e` are `run` or `c`: `depends_on` names units of the \
             same group as `e`, the root group; `run` is the manifest's name for the #[supervised] fns `a::run` and \
             `b::run`, whatever names their attributes give the units"
        );
        let all = messages(quote! { task a = a; task a = a; task b = b; task e = e { depends_on = [zzzzzz] }; });
        assert!(all.last().unwrap().contains("; the units next to `e` are `a` or `b`:"), "{all:#?}");
    }

    /// A path to a unit gets the advice its name gets: what to depend on
    /// instead. It was read as a list of names that went wrong at its `/`,
    /// or, as a string, as the name of no unit.
    #[test]
    fn dependencies_by_path() {
        let expected = "`g/p` is a path, and `depends_on` names units of the same group, not paths: `p` is in the \
                        group `g`, not in the root group; so depend on the group that holds it: `depends_on = [g]`";
        assert_eq!(one(quote! { group g {} { task p = p; } task a = a { depends_on = [g/p] }; }), expected);
        assert_eq!(one(quote! { group g {} { task p = p; } task a = a { depends_on = ["g/p"] }; }), expected);
        // From the dependent's group, or from the root.
        for written in [quote!(h / q), quote!(g / h / q)] {
            let message =
                one(quote! { group g {} { group h {} { task q = q; } task a = a { depends_on = [#written] }; } });
            assert!(message.ends_with("so depend on the group that holds it: `depends_on = [h]`"), "{message}");
        }
        let message = one(quote! {
            group g {} { task p = p; }
            group k {} { task a = a { depends_on = [g/p] }; }
        });
        assert!(
            message.ends_with("so make the group `k` depend on `g` instead: `group k { depends_on = [g] } { ... }`"),
            "{message}"
        );
        // A sibling, the dependent itself, a group it is in.
        let message = one(quote! { group g {} { task p = p; task a = a { depends_on = [g/p] }; } });
        assert!(message.ends_with(": `p` is next to `a`, in the group `g`: write its name, `p`"), "{message}");
        let message = one(quote! { group g {} { task a = a { depends_on = [g/a] }; } });
        assert_eq!(message, "`g/a` is `a` itself: remove it from the `depends_on` of `a`");
        let message = one(quote! { group g {} { group h {} { task a = a { depends_on = [g/h] }; } } });
        assert_eq!(message, "`a` is inside the group `g/h`: a unit cannot depend on a group it is in");
        let message = one(quote! { group g { depends_on = [g/p] } { task p = p; } });
        assert!(message.starts_with("`g/p` is inside the group `g` itself: a group cannot depend"), "{message}");
        // Nothing there.
        let message = one(quote! { group g {} { task p = p; } task a = a { depends_on = [g/x] }; });
        assert_eq!(
            message,
            "unknown dependency `g/x`: no unit is at that path, and `depends_on` names units of the same group as \
             `a`, the root group, not paths; the units next to `a` are `g`"
        );
    }

    #[test]
    fn dependencies_outside_the_group() {
        // Inside a sibling group: depend on the group.
        let message = one(quote! {
            group storage {} { daemon postgres = "pg"; }
            task api = api { depends_on = [postgres] };
        });
        assert_eq!(
            message,
            "`postgres` is not in the root group but is `storage/postgres`, in the group `storage`; `depends_on` names units of the same group, so depend on the group that holds it: `depends_on = [storage]`"
        );
        // Outside the dependent's group: its group depends instead.
        let message = one(quote! {
            daemon web = "web";
            group jobs {} { group nightly {} { task report = report { depends_on = [web] }; } }
        });
        assert!(
            message.starts_with("`web` is not in the group `jobs/nightly` but is `web`, in the root group;"),
            "{message}"
        );
        assert!(
            message.ends_with(
                "make the group `jobs` depend on `web` instead: `group jobs { depends_on = [web] } { ... }`"
            )
        );
        // In a cousin group.
        let message = one(quote! {
            group cache {} { daemon redis = "redis"; }
            group storage {} { task warm = warm { depends_on = [redis] }; }
        });
        assert!(message.contains("is `cache/redis`, in the group `cache`;"), "{message}");
        assert!(message.contains("make the group `storage` depend on `cache` instead"), "{message}");
        // Its own group.
        let message = one(quote! { group storage {} { task migrate = m { depends_on = [storage] }; } });
        assert_eq!(message, "`migrate` is inside the group `storage`: a unit cannot depend on a group it is in");
        // A unit inside the group itself: no `depends_on` of the group can name it.
        let message = one(quote! { group storage { depends_on = [postgres] } { daemon postgres = "postgres"; } });
        assert_eq!(
            message,
            "`postgres` is `storage/postgres`, inside the group `storage` itself: a group cannot depend on a unit inside itself (its units start only once it does, so it would wait for itself); remove `postgres` from the `depends_on` of `storage`, and order the units inside it with their own `depends_on`"
        );
        let message = one(quote! {
            group outer {} { group storage { depends_on = [pg] } { group inner {} { daemon pg = "pg"; } } }
        });
        assert!(
            message.starts_with("`pg` is `outer/storage/inner/pg`, inside the group `storage` itself"),
            "{message}"
        );
    }

    #[test]
    fn self_repeated_and_cyclic_dependencies() {
        assert_eq!(
            one(quote!(task a = a { depends_on = [a] };)),
            "`a` depends on itself: remove `a` from its `depends_on`"
        );
        assert_eq!(
            one(quote!(task a = a { depends_on = [b, b] }; task b = b;)),
            "`b` is listed twice in the `depends_on` of `a`; keep only one"
        );
        let message = one(quote! {
            task a = a { depends_on = [b] };
            task b = b { depends_on = [c] };
            task c = c { depends_on = [a] };
        });
        assert!(message.starts_with("dependency cycle: a -> b -> c -> a; this dependency of `c` on `a` closes it"));
        // Groups are units of their parent's graph.
        let message = one(quote! {
            group storage { depends_on = [api] } {}
            task api = api { depends_on = [storage] };
        });
        assert!(message.starts_with("dependency cycle: storage -> api -> storage;"), "{message}");
    }

    #[test]
    fn every_group_is_checked() {
        let all = messages(quote! {
            group a {} { group b {} { task x = x { depends_on = [y] }; task y = y { depends_on = [x] }; } }
            task z = z { depends_on = [nope] };
        });
        assert_eq!(all.len(), 2, "{all:#?}");
        assert!(all[0].starts_with("unknown dependency `nope`"));
        assert!(all[1].starts_with("dependency cycle: x -> y -> x;"));
    }
}
