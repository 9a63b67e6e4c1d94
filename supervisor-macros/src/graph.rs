//! The dependency graph of one group, as pure data: which `depends_on`
//! names are unknown (with the closest sibling), name the unit itself, are
//! repeated, or close a cycle. Units and dependencies go in by index;
//! findings come out by index, for the caller to put spans on.

use crate::suggest;

/// `units[from]` depends on the unit named `to`.
pub(crate) struct Dependency<'a> {
    pub(crate) from: usize,
    pub(crate) to: &'a str,
}

/// What is wrong with one dependency.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Finding {
    /// `to` names no unit of the group; `closest` is the sibling it may mean.
    Unknown { dependency: usize, closest: Option<usize> },
    /// A unit that depends on itself.
    OnItself { dependency: usize },
    /// The same name twice in one unit's list; `first` is the first one.
    Repeated { dependency: usize, first: usize },
    /// `dependency` closes a cycle: `path[0]` depends on `path[1]`, ...,
    /// and the last unit of `path` depends, through `dependency`, on
    /// `path[0]`.
    Cycle { dependency: usize, path: Vec<usize> },
}

/// Every finding about `dependencies` among `units` (the names of one
/// group, in registration order): first those of each dependency in
/// order, then each cycle, found depth first in registration order, on the
/// dependency that closes it. Units with a duplicate name are found by
/// their first occurrence.
pub(crate) fn check(units: &[&str], dependencies: &[Dependency<'_>]) -> Vec<Finding> {
    let mut findings = Vec::new();
    // edges[unit]: (dependency index, unit depended on), in written order.
    let mut edges: Vec<Vec<(usize, usize)>> = vec![Vec::new(); units.len()];
    for (index, dependency) in dependencies.iter().enumerate() {
        let first = dependencies[..index]
            .iter()
            .position(|earlier| earlier.from == dependency.from && earlier.to == dependency.to);
        if let Some(first) = first {
            findings.push(Finding::Repeated { dependency: index, first });
            continue;
        }
        match units.iter().position(|name| *name == dependency.to) {
            Some(target) if target == dependency.from || units[dependency.from] == dependency.to => {
                findings.push(Finding::OnItself { dependency: index });
            }
            Some(target) => edges[dependency.from].push((index, target)),
            None => {
                let others: Vec<&str> =
                    units.iter().enumerate().filter(|(i, _)| *i != dependency.from).map(|(_, name)| *name).collect();
                let closest = suggest::closest(dependency.to, &others)
                    .and_then(|name| units.iter().position(|unit| *unit == name));
                findings.push(Finding::Unknown { dependency: index, closest });
            }
        }
    }
    findings.extend(cycles(&edges));
    findings
}

/// The dependency closing each cycle, depth first from each unit in
/// registration order: every edge back to a unit still on the path.
fn cycles(edges: &[Vec<(usize, usize)>]) -> Vec<Finding> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::New; edges.len()];
    let mut found = Vec::new();
    for start in 0..edges.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // The current path: each unit with the index of its next edge.
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::OnPath;
        while let Some(&mut (unit, ref mut next)) = path.last_mut() {
            let Some(&(dependency, target)) = edges[unit].get(*next) else {
                marks[unit] = Mark::Done;
                path.pop();
                continue;
            };
            *next += 1;
            match marks[target] {
                Mark::New => {
                    marks[target] = Mark::OnPath;
                    path.push((target, 0));
                }
                Mark::OnPath => {
                    let from =
                        path.iter().position(|&(on_path, _)| on_path == target).expect("the unit is on the path");
                    let cycle = path[from..].iter().map(|&(on_path, _)| on_path).collect();
                    found.push(Finding::Cycle { dependency, path: cycle });
                }
                Mark::Done => {}
            }
        }
    }
    found
}

/// `a -> b -> c -> a` for a cycle's path.
pub(crate) fn describe_cycle(units: &[&str], path: &[usize]) -> String {
    let mut names: Vec<&str> = path.iter().map(|&unit| units[unit]).collect();
    names.push(units[path[0]]);
    names.join(" -> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(units: &[&str], dependencies: &[(usize, &str)]) -> Vec<Finding> {
        let dependencies: Vec<Dependency<'_>> =
            dependencies.iter().map(|&(from, to)| Dependency { from, to }).collect();
        check(units, &dependencies)
    }

    #[test]
    fn a_sound_graph_has_no_findings() {
        let units = ["db", "migrate", "api", "worker"];
        assert!(findings(&units, &[(1, "db"), (2, "db"), (2, "migrate"), (3, "api"), (3, "db")]).is_empty());
        assert!(findings(&[], &[]).is_empty());
    }

    #[test]
    fn unknown_names_suggest_the_closest_sibling() {
        let units = ["postgres", "api"];
        assert_eq!(findings(&units, &[(1, "postgress")]), [Finding::Unknown { dependency: 0, closest: Some(0) }]);
        assert_eq!(findings(&units, &[(1, "redis")]), [Finding::Unknown { dependency: 0, closest: None }]);
        // A unit is never suggested as its own dependency.
        assert_eq!(findings(&["apis", "api"], &[(1, "apii")]), [Finding::Unknown { dependency: 0, closest: Some(0) }]);
    }

    #[test]
    fn self_and_repeated_dependencies() {
        let units = ["a", "b"];
        assert_eq!(findings(&units, &[(0, "a")]), [Finding::OnItself { dependency: 0 }]);
        assert_eq!(
            findings(&units, &[(0, "b"), (1, "a"), (0, "b")]),
            [Finding::Repeated { dependency: 2, first: 0 }, Finding::Cycle { dependency: 1, path: vec![0, 1] },]
        );
    }

    #[test]
    fn a_cycle_is_found_on_the_dependency_that_closes_it() {
        let units = ["a", "b", "c", "d"];
        let found = findings(&units, &[(0, "b"), (1, "c"), (2, "a"), (3, "a")]);
        assert_eq!(found, [Finding::Cycle { dependency: 2, path: vec![0, 1, 2] }]);
        assert_eq!(describe_cycle(&units, &[0, 1, 2]), "a -> b -> c -> a");
        // Found from the first unit in registration order that is on it.
        let found = findings(&units, &[(3, "c"), (2, "d")]);
        assert_eq!(found, [Finding::Cycle { dependency: 0, path: vec![2, 3] }]);
    }

    #[test]
    fn every_cycle_is_reported() {
        // Two separate cycles, and one that shares a unit with another.
        let units = ["a", "b", "c", "d", "e"];
        let found = findings(&units, &[(0, "b"), (1, "a"), (2, "d"), (3, "c"), (3, "e"), (4, "d")]);
        assert_eq!(
            found,
            [
                Finding::Cycle { dependency: 1, path: vec![0, 1] },
                Finding::Cycle { dependency: 3, path: vec![2, 3] },
                Finding::Cycle { dependency: 5, path: vec![3, 4] },
            ]
        );
    }

    #[test]
    fn shared_dependencies_are_not_cycles() {
        // A diamond: d depends on b and c, which both depend on a.
        let units = ["a", "b", "c", "d"];
        assert!(findings(&units, &[(3, "b"), (3, "c"), (1, "a"), (2, "a")]).is_empty());
    }

    #[test]
    fn long_chains_do_not_overflow() {
        let names: Vec<String> = (0..10_000).map(|i| format!("u{i}")).collect();
        let units: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut dependencies: Vec<(usize, &str)> = (1..units.len()).map(|i| (i - 1, units[i])).collect();
        dependencies.push((units.len() - 1, units[0]));
        let found = findings(&units, &dependencies);
        assert!(
            matches!(&found[..], [Finding::Cycle { dependency, path }] if *dependency == 9_999 && path.len() == 10_000)
        );
    }
}
