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
    deps: Vec<Vec<usize>>,
    /// Who depends on each unit directly, as positions in `order`.
    dependents: Vec<Vec<usize>>,
    /// Each unit's position in `order`, by address; empty, like `deps`,
    /// when no unit depends on another.
    at: foldhash::HashMap<usize, usize>,
}

impl Graph {
    /// The graph of `units`, given in registration order (the units added
    /// at run time after the registered ones). Checked when built or
    /// added, they have no cycle; if they had, they would start in
    /// registration order.
    pub(crate) fn of(units: Vec<Arc<Unit>>) -> Graph {
        if units.iter().all(|unit| unit.depends_on.is_empty()) {
            return Graph { order: units, deps: Vec::new(), dependents: Vec::new(), at: Default::default() };
        }
        let mut registered = positions(&units);
        let sorted = order::start_order(&registered).unwrap_or_else(|_| (0..units.len()).collect());
        // Each unit's place in start order, by its registration position.
        let mut place = vec![0; units.len()];
        for (position, &at) in sorted.iter().enumerate() {
            place[at] = position;
        }
        let deps: Vec<Vec<usize>> = sorted
            .iter()
            .map(|&at| std::mem::take(&mut registered[at]).into_iter().map(|need| place[need]).collect())
            .collect();
        let order: Vec<Arc<Unit>> = sorted.into_iter().map(|at| units[at].clone()).collect();
        let mut dependents = vec![Vec::new(); order.len()];
        for (unit, needs) in deps.iter().enumerate() {
            for &need in needs {
                dependents[need].push(unit);
            }
        }
        let at = order.iter().enumerate().map(|(position, unit)| (address(unit), position)).collect();
        Graph { order, deps, dependents, at }
    }

    /// The members in start order.
    pub(crate) fn order(&self) -> &[Arc<Unit>] {
        &self.order
    }

    /// What each unit depends on, as positions in [`order`](Self::order).
    pub(crate) fn positions(&self) -> Vec<Vec<usize>> {
        if self.deps.is_empty() { vec![Vec::new(); self.order.len()] } else { self.deps.clone() }
    }

    /// The units `unit` depends on directly.
    pub(crate) fn dependencies(&self, unit: &Unit) -> impl Iterator<Item = &Arc<Unit>> {
        self.position(unit).into_iter().flat_map(|at| &self.deps[at]).map(|&need| &self.order[need])
    }

    /// The units that depend on `unit` directly.
    pub(crate) fn direct_dependents(&self, unit: &Unit) -> impl Iterator<Item = &Arc<Unit>> {
        self.position(unit).into_iter().flat_map(|at| &self.dependents[at]).map(|&dependent| &self.order[dependent])
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
        follow(at, &self.deps, &in_order).into_iter().map(|at| self.order[at].clone()).collect()
    }

    fn position(&self, unit: &Unit) -> Option<usize> {
        self.at.get(&address(unit)).copied()
    }
}

/// What each of `units` depends on, as positions among them.
fn positions(units: &[Arc<Unit>]) -> Vec<Vec<usize>> {
    let at = order::positions_by_name(units.iter().map(|unit| &*unit.name));
    units.iter().map(|unit| unit.depends_on.iter().filter_map(|name| at.get(&**name).copied()).collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;
    use crate::tree::build;
    use crate::{Context, TaskSpec};

    fn unit(name: &str, depends_on: &[&str]) -> Arc<Unit> {
        let spec = TaskSpec::new(name, |ctx: Context| async move { ctx.cancelled().await });
        build::unit("", Spec::from(spec.depends_on(depends_on.iter().copied())), false)
    }

    fn names<'a>(units: impl IntoIterator<Item = &'a Arc<Unit>>) -> Vec<&'a str> {
        units.into_iter().map(|unit| &*unit.name).collect()
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
    fn without_dependencies_the_order_is_the_registration_order() {
        let graph = Graph::of(vec![unit("b", &[]), unit("a", &[])]);
        assert_eq!(names(graph.order()), ["b", "a"]);
        assert_eq!(graph.positions(), [Vec::<usize>::new(), vec![]]);
        assert!(graph.dependents(&graph.order()[0]).is_empty());
    }
}
