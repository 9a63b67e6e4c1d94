//! The units of one group, as everyone else sees them: looked up by name,
//! listed in registration order. Only the group's owner changes it.
//!
//! Removing a unit leaves a hole that a later compaction closes, so that
//! adding and removing many units costs no shifting of the rest.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

/// What a group looks its members up by.
pub(crate) trait Named {
    fn name(&self) -> &str;
}

/// A group's members, in registration order.
#[derive(Debug)]
pub(crate) struct Members<T> {
    slots: Vec<Option<T>>,
    /// The slot of each member, hashed by its name. A slot number rather
    /// than a copy of the name: 5 bytes a bucket where a name and an index
    /// took 25, in every group of 10k units.
    by_name: HashTable<u32>,
    /// Seeded per group: names can come from outside (units added at run
    /// time), and must not be chosen to collide.
    hasher: RandomState,
}

impl<T> Default for Members<T> {
    fn default() -> Self {
        Members { slots: Vec::new(), by_name: HashTable::new(), hasher: RandomState::default() }
    }
}

impl<T: Named> Members<T> {
    /// Room for `count` members without growing.
    pub(crate) fn with_capacity(count: usize) -> Self {
        Members {
            slots: Vec::with_capacity(count),
            by_name: HashTable::with_capacity(count),
            hasher: RandomState::default(),
        }
    }

    /// Adds `member` last; gives it back (and adds nothing) if its name is
    /// taken.
    ///
    /// A group holds at most `u32::MAX` slots, removed units' holes
    /// included; past that a member is refused as if its name were taken.
    /// Each unit takes hundreds of bytes: the memory runs out long before.
    pub(crate) fn push(&mut self, member: T) -> Result<(), T> {
        let hash = self.hasher.hash_one(member.name());
        let Ok(slot) = u32::try_from(self.slots.len()) else { return Err(member) };
        let Members { slots, by_name, hasher } = self;
        if by_name.find(hash, |&slot| named(slots, slot) == member.name()).is_some() {
            return Err(member);
        }
        by_name.insert_unique(hash, slot, |&slot| hasher.hash_one(named(slots, slot)));
        slots.push(Some(member));
        Ok(())
    }

    pub(crate) fn get(&self, name: &str) -> Option<&T> {
        let hash = self.hasher.hash_one(name);
        let slot = *self.by_name.find(hash, |&slot| named(&self.slots, slot) == name)?;
        self.slots[slot as usize].as_ref()
    }

    /// Removes the member named `name`, if there is one.
    pub(crate) fn remove(&mut self, name: &str) -> Option<T> {
        let hash = self.hasher.hash_one(name);
        let found = self.by_name.find_entry(hash, |&slot| named(&self.slots, slot) == name).ok()?;
        let (slot, _) = found.remove();
        let member = self.slots[slot as usize].take();
        if self.slots.len() > 64 && self.by_name.len() < self.slots.len() / 2 {
            self.compact();
        }
        member
    }

    /// Closes the holes left by removals. The index keeps its buckets:
    /// each name hashes as it did, and only the number of its slot moves
    /// down, so that no name is read or hashed again, however long.
    fn compact(&mut self) {
        // The new number of each slot: how many members come before it.
        let mut renumbered = Vec::with_capacity(self.slots.len());
        let mut members_before = 0u32;
        for slot in &self.slots {
            renumbered.push(members_before);
            members_before += u32::from(slot.is_some());
        }
        self.slots.retain(Option::is_some);
        for slot in self.by_name.iter_mut() {
            *slot = renumbered[*slot as usize];
        }
    }
}

impl<T> Members<T> {
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
}

/// The name of the member in `slot`, which the index holds only for a
/// slot with a member in it.
fn named<T: Named>(slots: &[Option<T>], slot: u32) -> &str {
    slots[slot as usize].as_ref().map_or("", Named::name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member: its name and a value to tell members apart.
    type Member = (String, u32);

    impl Named for Member {
        fn name(&self) -> &str {
            &self.0
        }
    }

    fn member(name: &str, value: u32) -> Member {
        (name.to_owned(), value)
    }

    fn values(members: &Members<Member>) -> Vec<u32> {
        members.iter().map(|(_, value)| *value).collect()
    }

    fn value(members: &Members<Member>, name: &str) -> Option<u32> {
        members.get(name).map(|(_, value)| *value)
    }

    #[test]
    fn keeps_registration_order_and_refuses_a_taken_name() {
        let mut members = Members::default();
        assert!(members.push(member("b", 1)).is_ok());
        assert!(members.push(member("a", 2)).is_ok());
        assert!(members.push(member("b", 3)).is_err());
        assert_eq!(values(&members), [1, 2]);
        assert_eq!(value(&members, "a"), Some(2));
        assert_eq!(value(&members, "b"), Some(1));
        assert_eq!(value(&members, "c"), None);
        assert_eq!(members.len(), 2);
    }

    #[test]
    fn removal_and_compaction_keep_order_and_lookups() {
        let mut members = Members::default();
        for i in 0..1000u32 {
            assert!(members.push(member(&i.to_string(), i)).is_ok());
        }
        for i in (0..1000u32).filter(|i| i % 3 != 0) {
            assert_eq!(members.remove(&i.to_string()).map(|(_, value)| value), Some(i));
            assert_eq!(value(&members, &i.to_string()), None);
        }
        let left: Vec<u32> = (0..1000).filter(|i| i % 3 == 0).collect();
        assert_eq!(values(&members), left);
        assert_eq!(members.len(), left.len());
        assert!(members.slots.len() < 1000, "compacted");
        for &i in &left {
            assert_eq!(value(&members, &i.to_string()), Some(i));
            assert!(members.push(member(&i.to_string(), 0)).is_err(), "`{i}` is still taken after compaction");
        }
        assert!(members.push(member("1", 1)).is_ok());
        assert_eq!(values(&members).last(), Some(&1));
        assert_eq!(members.remove("nobody"), None);
    }

    #[test]
    fn a_name_removed_can_be_taken_again() {
        let mut members = Members::default();
        for round in 0..200u32 {
            assert!(members.push(member("again", round)).is_ok(), "round {round}");
            assert!(members.push(member(&format!("other-{round}"), round)).is_ok());
            assert_eq!(members.remove("again").map(|(_, value)| value), Some(round));
        }
        assert_eq!(value(&members, "again"), None);
        assert_eq!(members.len(), 200);
        assert_eq!(values(&members), (0..200).collect::<Vec<_>>());
    }
}
