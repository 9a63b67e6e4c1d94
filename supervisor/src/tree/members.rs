//! The units of one group, as everyone else sees them: looked up by name,
//! listed in registration order. Only the group's owner changes it.
//!
//! Removing a unit leaves a hole that a later compaction closes, so that
//! adding and removing many units costs no shifting of the rest.

use foldhash::HashMap;
use std::sync::Arc;

/// A group's members, in registration order.
#[derive(Debug)]
pub(crate) struct Members<T> {
    slots: Vec<Option<T>>,
    by_name: HashMap<Arc<str>, usize>,
}

impl<T> Default for Members<T> {
    fn default() -> Self {
        Members { slots: Vec::new(), by_name: HashMap::default() }
    }
}

impl<T> Members<T> {
    /// Room for `count` members without growing.
    pub(crate) fn with_capacity(count: usize) -> Self {
        Members {
            slots: Vec::with_capacity(count),
            by_name: HashMap::with_capacity_and_hasher(count, Default::default()),
        }
    }

    /// Adds `member` last; `false` (and nothing added) if the name is taken.
    pub(crate) fn push(&mut self, name: Arc<str>, member: T) -> bool {
        if self.by_name.contains_key(&name) {
            return false;
        }
        self.by_name.insert(name, self.slots.len());
        self.slots.push(Some(member));
        true
    }

    pub(crate) fn get(&self, name: &str) -> Option<&T> {
        self.by_name.get(name).and_then(|&slot| self.slots[slot].as_ref())
    }

    /// Removes the member named `name`, if there is one.
    pub(crate) fn remove(&mut self, name: &str) -> Option<T> {
        let slot = self.by_name.remove(name)?;
        let member = self.slots[slot].take();
        if self.slots.len() > 64 && self.by_name.len() < self.slots.len() / 2 {
            self.compact();
        }
        member
    }

    /// Every member, in registration order.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        self.slots.iter().flatten()
    }

    /// Every member in registration order, with a hole where one was
    /// removed: positions stay put until a removal closes the holes.
    pub(crate) fn slots(&self) -> &[Option<T>] {
        &self.slots
    }

    /// How many members there are.
    pub(crate) fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Closes the holes left by removals.
    fn compact(&mut self) {
        let mut moved = Vec::with_capacity(self.by_name.len());
        let mut index: Vec<(usize, Arc<str>)> = self.by_name.iter().map(|(name, &slot)| (slot, name.clone())).collect();
        index.sort_unstable_by_key(|&(slot, _)| slot);
        for (new_slot, (old_slot, name)) in index.into_iter().enumerate() {
            moved.push(self.slots[old_slot].take());
            self.by_name.insert(name, new_slot);
        }
        self.slots = moved;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(members: &Members<u32>) -> Vec<u32> {
        members.iter().copied().collect()
    }

    #[test]
    fn keeps_registration_order_and_refuses_a_taken_name() {
        let mut members = Members::default();
        assert!(members.push("b".into(), 1));
        assert!(members.push("a".into(), 2));
        assert!(!members.push("b".into(), 3));
        assert_eq!(names(&members), [1, 2]);
        assert_eq!(members.get("a"), Some(&2));
        assert_eq!(members.get("c"), None);
    }

    #[test]
    fn removal_and_compaction_keep_order_and_lookups() {
        let mut members = Members::default();
        for i in 0..1000u32 {
            assert!(members.push(i.to_string().into(), i));
        }
        for i in (0..1000u32).filter(|i| i % 3 != 0) {
            assert_eq!(members.remove(&i.to_string()), Some(i));
        }
        let left: Vec<u32> = (0..1000).filter(|i| i % 3 == 0).collect();
        assert_eq!(names(&members), left);
        assert_eq!(members.len(), left.len());
        assert!(members.slots.len() < 1000, "compacted");
        for i in &left {
            assert_eq!(members.get(&i.to_string()), Some(i));
        }
        assert!(members.push("1".into(), 1));
        assert_eq!(members.iter().last(), Some(&1));
    }
}
