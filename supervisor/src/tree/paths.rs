//! Finding units by path (`"storage/db"`) and listing them all, depth first
//! in registration order.

use std::sync::Arc;

use crate::Error;
use crate::tree::members::Members;
use crate::tree::unit::Unit;

/// The unit at `path` under `root`, and the group it belongs to.
pub(crate) fn lookup(root: &Arc<Unit>, path: &str) -> Result<(Arc<Unit>, Arc<Unit>), Error> {
    find(root, path).ok_or_else(|| unknown_unit(root, path))
}

/// Whether the unit at `path` is inside the group at `group` (at any depth).
pub(crate) fn is_inside(path: &str, group: &str) -> bool {
    path.strip_prefix(group).is_some_and(|rest| rest.starts_with('/'))
}

/// The path of the group that holds the unit at `path` (`""` for the root).
pub(crate) fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(group, _)| group)
}

/// The groups above the unit at `path`, nearest first, as far as they are
/// found (the root not included).
pub(crate) fn groups_above<'a>(root: &'a Arc<Unit>, path: &'a str) -> impl Iterator<Item = Arc<Unit>> + 'a {
    std::iter::successors(Some(parent(path)), |group| Some(parent(group)))
        .take_while(|group| !group.is_empty())
        .filter_map(|group| find(root, group).map(|(_, unit)| unit))
}

/// Like [`lookup`], `None` for a path that names no unit.
fn find(root: &Arc<Unit>, path: &str) -> Option<(Arc<Unit>, Arc<Unit>)> {
    // A byte scan: `rsplit_once` took three times as long on a short name.
    let Some(slash) = path.bytes().rposition(|byte| byte == b'/') else {
        // A unit of the root, the most common: found without splitting.
        return Some((root.clone(), member(root, path)?));
    };
    let (groups, name) = (&path[..slash], &path[slash + 1..]);
    let mut group = root.clone();
    for step in groups.split('/') {
        group = member(&group, step)?;
    }
    let unit = member(&group, name)?;
    Some((group, unit))
}

/// The unit `name` of `group`, if `group` is a group and has one.
fn member(group: &Unit, name: &str) -> Option<Arc<Unit>> {
    group.group()?.members().get(name).cloned()
}

/// Calls `visit` with every unit under `root`, depth first in registration
/// order: a group, then its units.
pub(crate) fn walk(root: &Unit, visit: &mut impl FnMut(&Arc<Unit>)) {
    walk_in_groups(root, &mut |_, _, unit| visit(unit));
}

/// Calls `visit` with every unit under `root` in the order a shutdown
/// stops units that depend on none: the newest first, a group's units
/// before the group.
pub(crate) fn walk_newest_first(root: &Unit, visit: &mut impl FnMut(&Arc<Unit>)) {
    let Some(group) = root.group() else { return };
    let members = group.members();
    for unit in members.iter().rev() {
        walk_newest_first(unit, visit);
        visit(unit);
    }
}

/// Like [`walk`], with the group each unit belongs to and its members.
///
/// Each group is walked under its read lock rather than over a copy of its
/// members: for 100k statuses, cloning and dropping each unit's `Arc` (and
/// the copy's large block) took a fifth of the time. `visit` is handed the
/// members so that it never takes that lock again: a second read waits
/// behind the group's owner if it is waiting to write.
pub(crate) fn walk_in_groups(root: &Unit, visit: &mut impl FnMut(&Unit, &Members<Arc<Unit>>, &Arc<Unit>)) {
    let Some(group) = root.group() else { return };
    let members = group.members();
    for unit in members.iter() {
        visit(root, &members, unit);
        walk_in_groups(unit, visit);
    }
}

/// How many names an error lists before it says how many more there are.
const LISTED: usize = 20;

/// The error for `path`, which names no unit under `root`: it lists the
/// units there are.
pub(crate) fn unknown_unit(root: &Unit, path: &str) -> Error {
    let mut names = Vec::new();
    let mut more = 0usize;
    walk(root, &mut |unit| {
        if names.len() < LISTED {
            names.push(String::from(unit.path.as_str()));
        } else {
            more += 1;
        }
    });
    let mut known = if names.is_empty() { "(none)".to_owned() } else { names.join(", ") };
    if more > 0 {
        known.push_str(&format!(" and {more} more"));
    }
    Error::UnknownUnit { name: path.to_owned(), known }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::build;
    use crate::{Context, GroupSpec, TaskSpec};

    fn idle(name: &str) -> TaskSpec {
        TaskSpec::new(name, |ctx: Context| async move { ctx.cancelled().await })
    }

    /// `web` at the root, `storage/db` and `storage/cache/redis` below it.
    fn tree() -> Arc<Unit> {
        let cache = GroupSpec::new("cache").task(idle("redis"));
        let storage = GroupSpec::new("storage").task(idle("db")).group(cache);
        build::root_and_duplicates(GroupSpec::new("root").task(idle("web")).group(storage)).0
    }

    fn found(root: &Arc<Unit>, path: &str) -> Option<(String, String)> {
        let (group, unit) = lookup(root, path).ok()?;
        Some((group.path.to_string(), unit.path.to_string()))
    }

    #[test]
    fn a_path_finds_its_unit_and_the_group_it_belongs_to() {
        let root = tree();
        let pair = |group: &str, unit: &str| Some((group.to_owned(), unit.to_owned()));
        assert_eq!(found(&root, "web"), pair("", "web"));
        assert_eq!(found(&root, "storage"), pair("", "storage"));
        assert_eq!(found(&root, "storage/db"), pair("storage", "storage/db"));
        assert_eq!(found(&root, "storage/cache/redis"), pair("storage/cache", "storage/cache/redis"));
    }

    #[test]
    fn the_groups_above_a_unit_come_nearest_first_without_the_root() {
        let root = tree();
        let above = |path: &str| groups_above(&root, path).map(|group| group.path.to_string()).collect::<Vec<_>>();
        assert_eq!(above("storage/cache/redis"), ["storage/cache", "storage"]);
        assert_eq!(above("storage/db"), ["storage"]);
        assert!(above("web").is_empty());
        // A group that is not there is skipped.
        assert_eq!(above("storage/gone/x"), ["storage"]);
    }

    #[test]
    fn a_path_that_names_no_unit_is_an_error_listing_the_known_ones() {
        let root = tree();
        let long = "storage/".repeat(100_000) + "db";
        for path in ["", "/", "db", "/web", "web/", "storage//db", "storage/db/", "web/db", "storage/nope", &long] {
            match lookup(&root, path) {
                Err(Error::UnknownUnit { name, known }) => {
                    assert_eq!(name, path);
                    assert!(known.contains("storage/cache/redis"), "{known}");
                }
                Err(other) => panic!("{path:?}: {other}"),
                Ok((_, unit)) => panic!("{path:?} found `{}`", unit.path),
            }
        }
    }
}
