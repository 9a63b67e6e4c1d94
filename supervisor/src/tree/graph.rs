//! A group's members as its owner orders them: in start order, with who
//! depends on whom. A group whose units depend on each other keeps its
//! graph until its members change, so that its start, its strategies, its
//! control calls and its ending read the one sort instead of making their
//! own; the others start in registration order, with nothing to sort.

use std::sync::Arc;

use crate::tree::order;
use crate::tree::unit::{Unit, address};

/// A walk along the dependencies from one unit: `order::dependents` or
/// `order::needs`.
type Follow = fn(usize, &[Vec<usize>], &[usize]) -> Vec<usize>;

pub(crate) struct Graph {
    /// The members in start order.
    order: Vec<Arc<Unit>>,
    /// What each unit depends on, as positions in `order`; empty when no
    /// unit depends on another.
    deps: Adjacency,
    /// Who depends on each unit directly, as positions in `order`.
    dependents: Adjacency,
    /// Each unit's position in `order`, by address; empty, like `deps`,
    /// when no unit depends on another.
    at: foldhash::HashMap<usize, usize>,
}

impl Graph {
    /// The graph of `units`, given in registration order (the units added
    /// at run time after the registered ones). Checked when built or
    /// added, they have no cycle; if they had, they would start in
    /// registration order.
    ///
    /// A handful of allocations whatever the number of units: a group's
    /// run sorts its members when it starts, and a chain of 100 units
    /// with a list per unit took 16 µs to sort, a tenth of its start.
    pub(crate) fn of(units: Vec<Arc<Unit>>) -> Graph {
        if units.iter().all(|unit| unit.settings.depends_on.is_empty()) {
            let empty = Adjacency::default();
            return Graph { order: units, deps: empty.clone(), dependents: empty, at: Default::default() };
        }
        let registered = positions(&units);
        let (order, deps) = if registered.points_back() {
            // Each unit after what it depends on already: the stable sort
            // would keep the registration order.
            (units, registered)
        } else {
            let lists = registered.to_lists();
            let sorted = order::start_order(&lists).unwrap_or_else(|_| (0..units.len()).collect());
            // Each unit's place in start order, by its registration position.
            let mut place = vec![0; units.len()];
            for (position, &at) in sorted.iter().enumerate() {
                place[at] = position;
            }
            let deps = Adjacency::from_lists(sorted.iter().map(|&at| lists[at].iter().map(|&need| place[need])));
            (sorted.into_iter().map(|at| units[at].clone()).collect(), deps)
        };
        let dependents = deps.reversed();
        let mut at = foldhash::HashMap::with_capacity_and_hasher(order.len(), Default::default());
        at.extend(order.iter().enumerate().map(|(position, unit)| (address(unit), position)));
        Graph { order, deps, dependents, at }
    }

    /// The members in start order.
    pub(crate) fn order(&self) -> &[Arc<Unit>] {
        &self.order
    }

    /// What each unit depends on, as positions in [`order`](Self::order).
    pub(crate) fn positions(&self) -> Vec<Vec<usize>> {
        if self.deps.is_empty() { vec![Vec::new(); self.order.len()] } else { self.deps.to_lists() }
    }

    /// The units `unit` depends on directly.
    pub(crate) fn dependencies(&self, unit: &Unit) -> impl Iterator<Item = &Arc<Unit>> {
        self.position(unit).into_iter().flat_map(|at| self.deps.of(at)).map(|&need| &self.order[need])
    }

    /// The units that depend on `unit` directly.
    pub(crate) fn direct_dependents(&self, unit: &Unit) -> impl Iterator<Item = &Arc<Unit>> {
        self.position(unit).into_iter().flat_map(|at| self.dependents.of(at)).map(|&dependent| &self.order[dependent])
    }

    /// The units that depend on `unit`, directly or not, in start order.
    pub(crate) fn dependents(&self, unit: &Unit) -> Vec<Arc<Unit>> {
        self.along(unit, order::dependents)
    }

    /// What `unit` depends on, directly or not, in start order.
    pub(crate) fn needs(&self, unit: &Unit) -> Vec<Arc<Unit>> {
        self.along(unit, order::needs)
    }

    fn along(&self, unit: &Unit, follow: Follow) -> Vec<Arc<Unit>> {
        let Some(at) = self.position(unit) else { return Vec::new() };
        let in_order: Vec<usize> = (0..self.order.len()).collect();
        follow(at, &self.positions(), &in_order).into_iter().map(|at| self.order[at].clone()).collect()
    }

    fn position(&self, unit: &Unit) -> Option<usize> {
        self.at.get(&address(unit)).copied()
    }
}

/// Lists of positions, one per unit, kept end to end in one vector: the
/// list of unit `i` is `targets[starts[i]..starts[i + 1]]`.
#[derive(Debug, Clone, Default, PartialEq)]
struct Adjacency {
    starts: Vec<usize>,
    targets: Vec<usize>,
}

impl Adjacency {
    fn from_lists<L: IntoIterator<Item = usize>>(lists: impl ExactSizeIterator<Item = L>) -> Adjacency {
        let mut starts = Vec::with_capacity(lists.len() + 1);
        let mut targets = Vec::new();
        starts.push(0);
        for list in lists {
            targets.extend(list);
            starts.push(targets.len());
        }
        Adjacency { starts, targets }
    }

    fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    fn of(&self, unit: usize) -> &[usize] {
        &self.targets[self.starts[unit]..self.starts[unit + 1]]
    }

    /// Whether every list names only units before its own.
    fn points_back(&self) -> bool {
        (0..self.len()).all(|unit| self.of(unit).iter().all(|&target| target < unit))
    }

    /// Who names each unit, in increasing order.
    fn reversed(&self) -> Adjacency {
        let mut counts = vec![0; self.len() + 1];
        for &target in &self.targets {
            counts[target + 1] += 1;
        }
        for unit in 1..counts.len() {
            counts[unit] += counts[unit - 1];
        }
        let starts = counts.clone();
        let mut next = counts;
        let mut targets = vec![0; self.targets.len()];
        for unit in 0..self.len() {
            for &target in self.of(unit) {
                targets[next[target]] = unit;
                next[target] += 1;
            }
        }
        Adjacency { starts, targets }
    }

    fn to_lists(&self) -> Vec<Vec<usize>> {
        (0..self.len()).map(|unit| self.of(unit).to_vec()).collect()
    }
}

/// What each of `units` depends on, as positions among them.
fn positions(units: &[Arc<Unit>]) -> Adjacency {
    let at = order::positions_by_name(units.iter().map(|unit| unit.name()));
    Adjacency::from_lists(
        units.iter().map(|unit| unit.settings.depends_on.iter().filter_map(|name| at.get(&**name).copied())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;
    use crate::tree::build;
    use crate::{Context, TaskSpec};

    fn unit(name: &str, depends_on: &[&str]) -> Arc<Unit> {
        let spec = TaskSpec::new(name, |ctx: Context| async move { ctx.cancelled().await });
        build::unit("", Spec::from(spec.depends_on(depends_on.iter().copied())), false, None)
    }

    fn names<'a>(units: impl IntoIterator<Item = &'a Arc<Unit>>) -> Vec<&'a str> {
        units.into_iter().map(|unit| unit.name()).collect()
    }

    #[test]
    fn units_are_sorted_once_with_who_depends_on_whom() {
        let (web, api, db, cache) = (unit("web", &["api"]), unit("api", &["db"]), unit("db", &[]), unit("cache", &[]));
        let graph = Graph::of(vec![web.clone(), api.clone(), db.clone(), cache.clone()]);
        assert_eq!(names(graph.order()), ["db", "api", "web", "cache"]);
        assert_eq!(names(graph.dependencies(&web)), ["api"]);
        assert_eq!(names(graph.direct_dependents(&db)), ["api"]);
        assert_eq!(names(&graph.dependents(&db)), ["api", "web"]);
        assert_eq!(names(&graph.needs(&web)), ["db", "api"]);
        assert_eq!(graph.positions(), [vec![], vec![0], vec![1], vec![]]);
        // A unit that is not a member has no place in it.
        let stranger = unit("api", &["db"]);
        assert!(graph.dependencies(&stranger).next().is_none() && graph.dependents(&stranger).is_empty());
    }

    #[test]
    fn units_registered_after_what_they_need_keep_their_order() {
        let (db, api, web, jobs) =
            (unit("db", &[]), unit("api", &["db"]), unit("web", &["api", "db"]), unit("jobs", &["db"]));
        let graph = Graph::of(vec![db.clone(), api.clone(), web.clone(), jobs.clone()]);
        assert_eq!(names(graph.order()), ["db", "api", "web", "jobs"]);
        assert_eq!(graph.positions(), [vec![], vec![0], vec![1, 0], vec![0]]);
        assert_eq!(names(graph.direct_dependents(&db)), ["api", "web", "jobs"]);
        assert_eq!(names(graph.dependencies(&web)), ["api", "db"]);
        assert_eq!(names(&graph.dependents(&api)), ["web"]);
    }

    #[test]
    fn an_adjacency_reversed_lists_who_names_each_unit_in_order() {
        let lists = vec![vec![], vec![0], vec![0, 1], vec![2], vec![]];
        let adjacency = Adjacency::from_lists(lists.iter().map(|list| list.iter().copied()));
        assert_eq!(adjacency.to_lists(), lists);
        assert!(adjacency.points_back());
        assert_eq!(adjacency.reversed().to_lists(), [vec![1, 2], vec![2], vec![3], vec![], vec![]]);
        let forward = Adjacency::from_lists([vec![1], vec![]].into_iter());
        assert!(!forward.points_back());
        assert_eq!(forward.reversed().to_lists(), [vec![], vec![0]]);
    }

    #[test]
    fn without_dependencies_the_order_is_the_registration_order() {
        let graph = Graph::of(vec![unit("b", &[]), unit("a", &[])]);
        assert_eq!(names(graph.order()), ["b", "a"]);
        assert_eq!(graph.positions(), [Vec::<usize>::new(), vec![]]);
        assert!(graph.dependents(&graph.order()[0]).is_empty());
    }
}
