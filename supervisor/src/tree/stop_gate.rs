//! The order of a concurrent stop among units that depend on each other:
//! each unit is asked to stop as soon as every unit that depends on it has
//! stopped, not once a whole layer of units has, so that a slow unit holds
//! back only what it depends on.

/// Which units of a concurrent stop may be asked now. Units are named by
/// their index in the list the gate was made for.
#[derive(Debug)]
pub(crate) struct StopGate {
    /// For each unit, the units it depends on.
    needs: Vec<Vec<usize>>,
    /// For each unit, how many of the units that depend on it have not
    /// stopped yet.
    waiting_for: Vec<usize>,
    /// For each unit, whether it has stopped.
    stopped: Vec<bool>,
    /// Free to ask and not taken yet.
    free: Vec<usize>,
}

impl StopGate {
    /// A gate over `members`, positions into `deps` in start order, where
    /// `deps[p]` lists the positions the unit at `p` depends on. A
    /// dependency outside `members` is not waited for. The gate's indices
    /// are indices into `members`.
    pub(crate) fn among(deps: &[Vec<usize>], members: &[usize]) -> StopGate {
        let mut index = vec![None; deps.len()];
        for (at, &position) in members.iter().enumerate() {
            index[position] = Some(at);
        }
        let needs: Vec<Vec<usize>> =
            members.iter().map(|&position| deps[position].iter().filter_map(|&need| index[need]).collect()).collect();
        let mut waiting_for = vec![0; members.len()];
        for &need in needs.iter().flatten() {
            waiting_for[need] += 1;
        }
        let free = (0..members.len()).filter(|&at| waiting_for[at] == 0).collect();
        StopGate { needs, waiting_for, stopped: vec![false; members.len()], free }
    }

    /// Takes the units free to be asked, the most recently started first
    /// (the reverse of the gate's order), as a sequential stop would.
    pub(crate) fn take_free(&mut self) -> Vec<usize> {
        let mut free = std::mem::take(&mut self.free);
        free.sort_unstable_by(|a, b| b.cmp(a));
        free
    }

    /// Unit `at` has stopped (or was not running when its turn came): each
    /// unit it depends on that no other unit waits for any more is free.
    /// A unit said stopped twice counts once.
    pub(crate) fn stopped(&mut self, at: usize) {
        if std::mem::replace(&mut self.stopped[at], true) {
            return;
        }
        for &need in &self.needs[at] {
            self.waiting_for[need] -= 1;
            if self.waiting_for[need] == 0 {
                self.free.push(need);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stops every unit the gate frees, in the order it frees them, each
    /// at once; returns the rounds of units asked together.
    fn rounds(gate: &mut StopGate) -> Vec<Vec<usize>> {
        let mut rounds = Vec::new();
        loop {
            let free = gate.take_free();
            if free.is_empty() {
                return rounds;
            }
            for &at in &free {
                gate.stopped(at);
            }
            rounds.push(free);
        }
    }

    #[test]
    fn without_dependencies_every_unit_is_free_the_newest_first() {
        let mut gate = StopGate::among(&[vec![], vec![], vec![]], &[0, 1, 2]);
        assert_eq!(rounds(&mut gate), vec![vec![2, 1, 0]]);
    }

    #[test]
    fn a_unit_is_free_once_its_own_dependents_stopped_not_a_whole_layer() {
        // 0 db; 1 api needs db; 2 lone.
        let mut gate = StopGate::among(&[vec![], vec![0], vec![]], &[0, 1, 2]);
        assert_eq!(gate.take_free(), vec![2, 1], "db waits for api");
        gate.stopped(1);
        assert_eq!(gate.take_free(), vec![0], "db is free although lone still runs");
        gate.stopped(0);
        gate.stopped(2);
        assert_eq!(gate.take_free(), Vec::<usize>::new());
    }

    #[test]
    fn a_unit_with_several_dependents_waits_for_the_last() {
        // 0 db; 1 and 2 need db; 3 needs 1 and db.
        let mut gate = StopGate::among(&[vec![], vec![0], vec![0], vec![1, 0]], &[0, 1, 2, 3]);
        assert_eq!(gate.take_free(), vec![3, 2]);
        gate.stopped(2);
        assert_eq!(gate.take_free(), Vec::<usize>::new(), "1 waits for 3, db for 1 and 3");
        gate.stopped(3);
        assert_eq!(gate.take_free(), vec![1]);
        gate.stopped(1);
        assert_eq!(gate.take_free(), vec![0]);
    }

    #[test]
    fn a_unit_said_stopped_twice_counts_once() {
        // 0 needed by 1 and 2.
        let mut gate = StopGate::among(&[vec![], vec![0], vec![0]], &[0, 1, 2]);
        assert_eq!(gate.take_free(), vec![2, 1]);
        gate.stopped(1);
        gate.stopped(1);
        assert_eq!(gate.take_free(), Vec::<usize>::new(), "2 still runs");
        gate.stopped(2);
        assert_eq!(gate.take_free(), vec![0]);
    }

    #[test]
    fn a_dependency_named_twice_is_waited_for_once() {
        let mut gate = StopGate::among(&[vec![], vec![0, 0]], &[0, 1]);
        assert_eq!(rounds(&mut gate), vec![vec![1], vec![0]]);
    }

    #[test]
    fn only_members_take_part_and_their_indices_are_their_places_among_them() {
        // Positions: 0 a; 1 b needs a; 2 c needs b; 3 d needs a. Members:
        // b, c, d (a is not stopped here).
        let deps = [vec![], vec![0], vec![1], vec![0]];
        let mut gate = StopGate::among(&deps, &[1, 2, 3]);
        // Indices: 0 b, 1 c, 2 d; b waits for c.
        assert_eq!(rounds(&mut gate), vec![vec![2, 1], vec![0]]);
    }

    #[test]
    fn a_chain_stops_one_link_at_a_time_from_its_end() {
        let deps = [vec![], vec![0], vec![1], vec![2]];
        let mut gate = StopGate::among(&deps, &[0, 1, 2, 3]);
        assert_eq!(rounds(&mut gate), vec![vec![3], vec![2], vec![1], vec![0]]);
    }

    #[test]
    fn an_empty_gate_frees_nothing() {
        let mut gate = StopGate::among(&[], &[]);
        assert!(gate.take_free().is_empty());
    }
}
