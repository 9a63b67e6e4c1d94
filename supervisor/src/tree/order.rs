//! Dependency order within a group, pure: start order (a stable
//! topological sort of the registration order), the units that depend on
//! one transitively, and cycles (a concurrent stop's order is
//! [`stop_gate`](super::stop_gate)'s). Units are positions in registration
//! order; `deps[i]` lists the positions unit `i` depends on.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Each name's position among `names`, the first if a name repeats: for
/// finding dependencies in constant time, so that a long chain of them
/// costs no quadratic search.
pub(crate) fn positions_by_name<'a>(
    names: impl ExactSizeIterator<Item = &'a str>,
) -> foldhash::HashMap<&'a str, usize> {
    let mut at = foldhash::HashMap::with_capacity_and_hasher(names.len(), Default::default());
    for (index, name) in names.enumerate() {
        at.entry(name).or_insert(index);
    }
    at
}

/// The start order: every unit after the units it depends on, otherwise in
/// registration order. `Err` with a cycle (see [`cycle`]) if there is one.
pub(crate) fn start_order(deps: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let mut waiting_on: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents = vec![Vec::new(); deps.len()];
    for (unit, needs) in deps.iter().enumerate() {
        for &need in needs {
            dependents[need].push(unit);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..deps.len()).filter(|&unit| waiting_on[unit] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(deps.len());
    while let Some(Reverse(unit)) = ready.pop() {
        order.push(unit);
        for &dependent in &dependents[unit] {
            waiting_on[dependent] -= 1;
            if waiting_on[dependent] == 0 {
                ready.push(Reverse(dependent));
            }
        }
    }
    if order.len() == deps.len() { Ok(order) } else { Err(cycle(deps).unwrap_or_default()) }
}

/// A dependency cycle, as the units along it (the first repeated at the
/// end: `[a, b, c, a]`), if there is one.
pub(crate) fn cycle(deps: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::New; deps.len()];
    for root in 0..deps.len() {
        if marks[root] != Mark::New {
            continue;
        }
        // An explicit stack: (unit, next dependency to look at).
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        marks[root] = Mark::OnPath;
        while let Some(&mut (unit, ref mut next)) = path.last_mut() {
            if let Some(&need) = deps[unit].get(*next) {
                *next += 1;
                match marks[need] {
                    Mark::OnPath => {
                        let start = path.iter().position(|&(on, _)| on == need).unwrap_or(0);
                        let mut found: Vec<usize> = path[start..].iter().map(|&(on, _)| on).collect();
                        found.push(need);
                        return Some(found);
                    }
                    Mark::New => {
                        marks[need] = Mark::OnPath;
                        path.push((need, 0));
                    }
                    Mark::Done => {}
                }
            } else {
                marks[unit] = Mark::Done;
                path.pop();
            }
        }
    }
    None
}

/// The units that depend on `unit`, directly or through others, in `order`.
pub(crate) fn dependents(unit: usize, deps: &[Vec<usize>], order: &[usize]) -> Vec<usize> {
    let mut affected = vec![false; deps.len()];
    affected[unit] = true;
    let mut found = Vec::new();
    // In start order, every dependency comes before its dependents.
    for &candidate in order {
        if candidate != unit && deps[candidate].iter().any(|&need| affected[need]) {
            affected[candidate] = true;
            found.push(candidate);
        }
    }
    found
}

/// What `unit` needs, directly or through others, in `order`.
pub(crate) fn needs(unit: usize, deps: &[Vec<usize>], order: &[usize]) -> Vec<usize> {
    let mut needed = vec![false; deps.len()];
    for &need in &deps[unit] {
        needed[need] = true;
    }
    // In reverse start order, every dependent comes before its dependencies.
    for &candidate in order.iter().rev() {
        if needed[candidate] {
            for &need in &deps[candidate] {
                needed[need] = true;
            }
        }
    }
    order.iter().copied().filter(|&candidate| needed[candidate]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_found_at_its_first_position() {
        let at = positions_by_name(["a", "b", "a"].into_iter());
        assert_eq!((at.get("a"), at.get("b"), at.get("c")), (Some(&0), Some(&1), None));
    }

    #[test]
    fn without_dependencies_the_start_order_is_the_registration_order() {
        assert_eq!(start_order(&[vec![], vec![], vec![]]), Ok(vec![0, 1, 2]));
    }

    #[test]
    fn a_unit_starts_after_its_dependencies_and_the_rest_keeps_its_place() {
        // 0 needs 2; 1 needs nothing; 2 needs nothing; 3 needs 0.
        let deps = [vec![2], vec![], vec![], vec![0]];
        assert_eq!(start_order(&deps), Ok(vec![1, 2, 0, 3]));
    }

    #[test]
    fn a_cycle_is_named_whole() {
        let deps = [vec![1], vec![2], vec![0], vec![]];
        assert_eq!(start_order(&deps), Err(vec![0, 1, 2, 0]));
        assert_eq!(cycle(&[vec![0]]), Some(vec![0, 0]));
        assert_eq!(cycle(&[vec![], vec![0]]), None);
    }

    #[test]
    fn a_long_chain_sorts_without_deep_recursion() {
        let deps: Vec<Vec<usize>> = (0..100_000).map(|i| if i == 0 { vec![] } else { vec![i - 1] }).collect();
        assert_eq!(start_order(&deps).map(|order| order.len()), Ok(100_000));
        let mut looped = deps.clone();
        looped[0] = vec![99_999];
        assert_eq!(cycle(&looped).map(|cycle| cycle.len()), Some(100_001));
    }

    #[test]
    fn dependents_and_needs_are_transitive() {
        // 1 needs 0; 2 needs 1; 3 needs nothing; 4 needs 0 and 3.
        let deps = [vec![], vec![0], vec![1], vec![], vec![0, 3]];
        let order = start_order(&deps).unwrap();
        assert_eq!(dependents(0, &deps, &order), [1, 2, 4]);
        assert_eq!(dependents(3, &deps, &order), [4]);
        assert_eq!(dependents(2, &deps, &order), Vec::<usize>::new());
        assert_eq!(needs(2, &deps, &order), [0, 1]);
        assert_eq!(needs(4, &deps, &order), [0, 3]);
    }
}
