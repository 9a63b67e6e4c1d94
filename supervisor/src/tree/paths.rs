//! Finding units by path (`"storage/db"`) and listing them all, depth first
//! in registration order.

use std::sync::Arc;

use crate::Error;
use crate::tree::members::Members;
use crate::tree::unit::Unit;

/// The unit at `path` under `root`, and the group it belongs to.
pub(crate) fn lookup(root: &Arc<Unit>, path: &str) -> Result<(Arc<Unit>, Arc<Unit>), Error> {
    let mut parent = root.clone();
    let mut names = path.split('/').peekable();
    while let Some(name) = names.next() {
        let found = parent.group().and_then(|group| group.members().get(name).cloned());
        let Some(unit) = found else { return Err(unknown(root, path)) };
        if names.peek().is_none() {
            return Ok((parent, unit));
        }
        parent = unit;
    }
    Err(unknown(root, path))
}

/// Calls `visit` with every unit under `root`, depth first in registration
/// order: a group, then its units.
pub(crate) fn walk(root: &Unit, visit: &mut impl FnMut(&Arc<Unit>)) {
    walk_in_groups(root, &mut |_, unit| visit(unit));
}

/// Like [`walk`], with the members of the group each unit belongs to.
///
/// Each group is walked under its read lock rather than over a copy of its
/// members: for 100k statuses, cloning and dropping each unit's `Arc` (and
/// the copy's large block) took a fifth of the time. `visit` is handed the
/// members so that it never takes that lock again: a second read waits
/// behind the group's owner if it is waiting to write.
pub(crate) fn walk_in_groups(root: &Unit, visit: &mut impl FnMut(&Members<Arc<Unit>>, &Arc<Unit>)) {
    let Some(group) = root.group() else { return };
    let members = group.members();
    for unit in members.iter() {
        visit(&members, unit);
        walk_in_groups(unit, visit);
    }
}

/// How many names an error lists before it says how many more there are.
const LISTED: usize = 20;

fn unknown(root: &Unit, path: &str) -> Error {
    let mut names = Vec::new();
    let mut more = 0usize;
    walk(root, &mut |unit| {
        if names.len() < LISTED {
            names.push(unit.path.to_string());
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
