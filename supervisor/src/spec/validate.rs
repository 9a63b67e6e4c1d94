//! The checks a spec passes before anything runs: names, programs, policies
//! and group settings. Every problem is collected, so that `build()` and
//! `add` report them all at once rather than the first.

use std::borrow::Cow;

use crate::spec::Spec;
use crate::spec::group::{GroupSpec, IntensityLimit};
use crate::{Error, MAX_GROUP_DEPTH, RestartPolicy};

/// The path of `name` in the group at `prefix` (`""` for the root).
pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_owned() } else { format!("{prefix}/{name}") }
}

/// Checks that the groups among `specs` (the units of the group at
/// `prefix`, itself `depth` levels deep) are nested no deeper than
/// [`MAX_GROUP_DEPTH`] levels from the root. Without recursion: a tree too
/// deep for the stack must not overflow it here. Run before the other
/// checks, which recurse.
pub(crate) fn check_depth(prefix: &str, depth: usize, specs: &[Spec]) -> Result<(), Error> {
    let mut deepest: Option<(usize, &str)> = None;
    let mut stack: Vec<(&[Spec], usize, &str)> = Vec::new();
    for group in groups(specs) {
        stack.push((&group.units, depth + 1, &group.name));
    }
    while let Some((units, level, outermost)) = stack.pop() {
        if deepest.is_none_or(|(most, _)| level > most) {
            deepest = Some((level, outermost));
        }
        for group in groups(units) {
            stack.push((&group.units, level + 1, outermost));
        }
    }
    match deepest {
        Some((depth, outermost)) if depth > MAX_GROUP_DEPTH => {
            Err(Error::TooDeep { group: join(prefix, outermost), depth, max: MAX_GROUP_DEPTH })
        }
        _ => Ok(()),
    }
}

/// The groups among `units`.
fn groups(units: &[Spec]) -> impl Iterator<Item = &GroupSpec> {
    units.iter().filter_map(|unit| match unit {
        Spec::Group(group) => Some(group),
        _ => None,
    })
}

/// Drops `specs` a level at a time: the recursive drop of a tree too deep
/// for the stack would overflow it.
pub(crate) fn drop_flat(specs: Vec<Spec>) {
    let mut stack = specs;
    while let Some(spec) = stack.pop() {
        if let Spec::Group(mut group) = spec {
            stack.append(&mut group.units);
        }
    }
}

/// Checks `specs`, the units of the group at `prefix`, and everything in
/// them: names, settings, and dependencies among siblings.
pub(crate) fn check_units(prefix: &str, specs: &[Spec], problems: &mut Vec<Error>) {
    let first = problems.len();
    check_units_naming(prefix, specs, true, problems);
    hint_where_named(&mut problems[first..], |name| spec_named(specs, prefix, name));
}

/// Like [`check_units`], except for names that two of `specs` take (names
/// within the groups among them are checked): the group's index finds
/// those as it is made (`build::root_and_duplicates`), where a set of
/// their own would hash 10k names once more.
pub(crate) fn check_units_but_duplicates(prefix: &str, specs: &[Spec], problems: &mut Vec<Error>) {
    let first = problems.len();
    check_units_naming(prefix, specs, false, problems);
    hint_where_named(&mut problems[first..], |name| spec_named(specs, prefix, name));
}

/// Checks `spec`, a unit added at run time to the group at `prefix`, and
/// everything in it, as `build()` checks a unit of the tree. An unknown
/// dependency inside it is told where a unit of that name is: in `spec`
/// first, as `build()` looks through the tree it is given, then among the
/// units already there (`running`).
pub(crate) fn check_added(
    prefix: &str,
    spec: &Spec,
    problems: &mut Vec<Error>,
    running: impl Fn(&str) -> Option<String>,
) {
    let first = problems.len();
    check_unit(prefix, spec, problems);
    hint_where_named(&mut problems[first..], |name| {
        spec_named(std::slice::from_ref(spec), prefix, name).or_else(|| running(name))
    });
}

fn check_units_naming(prefix: &str, specs: &[Spec], duplicates: bool, problems: &mut Vec<Error>) {
    let mut seen = duplicates.then(|| foldhash::HashSet::with_capacity_and_hasher(specs.len(), Default::default()));
    for spec in specs {
        // A name refused for its control characters is not named again,
        // unescaped, as a duplicate.
        if let Some(seen) = &mut seen
            && !spec.name().is_empty()
            && !has_control(spec.name())
            && !seen.insert(spec.name())
        {
            problems.push(Error::DuplicateName { name: join(prefix, spec.name()) });
        }
        check_unit(prefix, spec, problems);
    }
    if specs.iter().all(|spec| spec.depends_on().is_empty()) {
        return;
    }
    let names: Vec<&str> = specs.iter().map(Spec::name).collect();
    let deps: Vec<&[String]> = specs.iter().map(Spec::depends_on).collect();
    check_dependencies(prefix, &names, &deps, problems);
}

/// Checks the dependencies of the units `names` of the group at `prefix`
/// (`deps[i]` for `names[i]`): each names a sibling other than itself, and
/// they form no cycle. An unknown one is hinted a sibling of a close name;
/// [`hint_where_named`] then tells where a unit of that name is, if one is.
pub(crate) fn check_dependencies(prefix: &str, names: &[&str], deps: &[&[String]], problems: &mut Vec<Error>) {
    if deps.iter().all(|needs| needs.is_empty()) {
        return;
    }
    let at = crate::tree::order::positions_by_name(names.iter().copied());
    let position = |name: &str| at.get(name).copied();
    let mut resolved = Vec::with_capacity(names.len());
    // Each hint looks through every unit: a bound keeps thousands of
    // unknown names from costing a pass each.
    let mut hints_left = HINTED_DEPENDENCIES;
    for (unit, needs) in names.iter().zip(deps) {
        let mut found = Vec::new();
        for need in needs.iter() {
            if need == unit {
                problems.push(Error::SelfDependency { unit: join(prefix, unit) });
            } else if let Some(at) = position(need) {
                found.push(at);
            } else {
                let hint = if hints_left == 0 {
                    String::new()
                } else {
                    hints_left -= 1;
                    closest(need, names, unit).map(|close| format!(" (did you mean `{close}`?)")).unwrap_or_default()
                };
                problems.push(Error::UnknownDependency { unit: join(prefix, unit), dependency: need.clone(), hint });
            }
        }
        resolved.push(found);
    }
    if let Some(cycle) = crate::tree::order::cycle(&resolved).filter(|cycle| cycle.len() > 2) {
        let cycle: Vec<String> = cycle.iter().map(|&at| join(prefix, names[at])).collect();
        problems.push(Error::DependencyCycle { cycle: cycle.join(" -> ") });
    }
}

/// Tells each of the first unknown dependencies among `problems` where a
/// unit of its name is, if `find` finds one (its path): a group's check
/// sees only its units, and a unit of that name in another group is a
/// likelier slip than a sibling of a close name.
pub(crate) fn hint_where_named(problems: &mut [Error], find: impl Fn(&str) -> Option<String>) {
    let unknown = problems.iter_mut().filter_map(|problem| match problem {
        Error::UnknownDependency { unit, dependency, hint } => Some((&*unit, &*dependency, hint)),
        _ => None,
    });
    for (unit, dependency, hint) in unknown.take(HINTED_DEPENDENCIES) {
        if let Some(path) = find(dependency) {
            *hint = elsewhere_hint(&path, unit);
        }
    }
}

/// The path of the first unit named `name` among `specs` (the units of
/// the group at `prefix`) and in their groups, depth first.
fn spec_named(specs: &[Spec], prefix: &str, name: &str) -> Option<String> {
    specs.iter().find_map(|spec| {
        let path = join(prefix, spec.name());
        match spec {
            _ if spec.name() == name => Some(path),
            Spec::Group(group) => spec_named(&group.units, &path, name),
            _ => None,
        }
    })
}

/// The hint for a dependency on the unit at `path`, which is not a sibling
/// of the dependent at `dependent`. When it is inside the dependent (a
/// group), the group that holds it is the dependent itself, and no
/// `depends_on` of that group can name it.
fn elsewhere_hint(path: &str, dependent: &str) -> String {
    if crate::tree::paths::is_inside(dependent, path) {
        format!(" (`{path}` is the group that holds `{dependent}`: a unit starts only once its group has started)")
    } else if crate::tree::paths::is_inside(path, dependent) {
        format!(
            " (`{path}` is inside `{dependent}` itself: a group cannot depend on a unit inside itself, as its units \
             start only once it does; order the units inside it with their own depends_on instead)"
        )
    } else {
        // Where the two paths part, their units (or the groups that hold
        // them) are siblings: those may depend on each other.
        let common = path.split('/').zip(dependent.split('/')).take_while(|(a, b)| a == b).count();
        let (theirs, ours) = (sibling_side(path, common), sibling_side(dependent, common));
        let theirs_name = theirs.rsplit('/').next().unwrap_or(theirs);
        if ours == dependent {
            format!(
                " (`{path}` is in another group: a unit may depend only on its siblings; depend on `{theirs_name}`, the \
                 group that holds it)"
            )
        } else {
            format!(
                " (`{path}` is in another group: a unit may depend only on its siblings; make the group `{ours}` depend \
                 on `{theirs_name}` instead)"
            )
        }
    }
}

/// The first `common + 1` names of `path`: the unit, or the group holding
/// it, that is a sibling of the other side's where two paths share their
/// first `common` names.
fn sibling_side(path: &str, common: usize) -> &str {
    match path.match_indices('/').nth(common) {
        Some((at, _)) => &path[..at],
        None => path,
    }
}

/// How many unknown dependencies get a hint (a sibling of a close name in
/// each group, a unit of that name elsewhere in all).
const HINTED_DEPENDENCIES: usize = 20;

/// The sibling closest to `name` by edit distance, if close enough to be a
/// typo.
fn closest<'a>(name: &str, siblings: &[&'a str], unit: &str) -> Option<&'a str> {
    siblings
        .iter()
        .filter(|&&sibling| sibling != unit)
        .map(|&sibling| (strsim::levenshtein(name, sibling), sibling))
        .filter(|&(distance, sibling)| distance <= sibling.len().max(name.len()).div_ceil(3))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, sibling)| sibling)
}

/// Whether `name` holds a control character (a line break, a tab, NUL,
/// ESC, DEL, a C1 control such as NEL): it would break every line-oriented
/// output that names the unit (log lines, the report's table, terminals).
fn has_control(name: &str) -> bool {
    name_flaws(name).control
}

/// What is wrong with a name's characters.
struct NameFlaws {
    slash: bool,
    control: bool,
}

/// One pass over the bytes of `name`, without a branch per byte: every
/// unit's name is looked at, at each build. `char::is_control` is U+0000–
/// U+001F, U+007F and U+0080–U+009F, the last only in a name that is not
/// ASCII.
fn name_flaws(name: &str) -> NameFlaws {
    let (slash, ascii_control) = name.bytes().fold((false, false), |(slash, control), byte| {
        (slash | (byte == b'/'), control | (byte < 0x20) | (byte == 0x7f))
    });
    let control = ascii_control || (!name.is_ascii() && name.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)));
    NameFlaws { slash, control }
}

/// Checks one unit of the group at `prefix` (its name, settings and, for a
/// group, its units), but not whether a sibling has its name.
pub(crate) fn check_unit(prefix: &str, spec: &Spec, problems: &mut Vec<Error>) {
    let (kind, policy) = match spec {
        Spec::Task(task) => ("task", &task.policy),
        Spec::Daemon(daemon) => ("daemon", &daemon.parts.policy),
        Spec::Group(group) => ("group", &group.parts.policy),
    };
    let name = spec.name();
    // No copy of the name for a unit of the root group: the common case, once per unit.
    let path: Cow<'_, str> = if prefix.is_empty() { Cow::Borrowed(name) } else { Cow::Owned(join(prefix, name)) };
    if name.is_empty() {
        problems.push(Error::EmptyName { kind });
    } else {
        let flaws = name_flaws(name);
        if flaws.slash {
            problems.push(Error::NameWithSlash { name: path.to_string() });
        }
        if flaws.control {
            problems.push(Error::NameWithControl { name: path.to_string() });
        }
    }
    check_policy(&path, policy, problems);
    match spec {
        Spec::Task(task) => {
            if let Some(watching) = &task.options.watching {
                watching.validate(&path, true, policy, problems);
            }
        }
        Spec::Daemon(daemon) => {
            daemon.validate(&path, problems);
            if let Some(watching) = &daemon.parts.options.watching {
                watching.validate(&path, false, policy, problems);
            }
        }
        Spec::Group(group) => {
            check_intensity(&path, group.parts.intensity, problems);
            check_units_naming(&path, &group.units, true, problems);
        }
    }
}

fn check_policy(path: &str, policy: &RestartPolicy, problems: &mut Vec<Error>) {
    if let Err(error) = policy.validate(path) {
        problems.push(error);
    }
}

/// Checks a group's intensity limit; `owner` names the group (`"the root
/// group"` for the supervisor's own).
pub(crate) fn check_intensity(owner: &str, limit: Option<IntensityLimit>, problems: &mut Vec<Error>) {
    let Some(limit) = limit else { return };
    let invalid = |reason: &str| Error::InvalidSetting {
        unit: owner.to_owned(),
        setting: "intensity",
        reason: reason.to_owned(),
    };
    if limit.max == 0 {
        problems.push(invalid(
            "0 restarts would give up at the first failure; allow at least 1, e.g. intensity(3, 30s), or use max_restarts(0) on the unit",
        ));
    }
    if limit.period.is_zero() {
        problems.push(invalid("the period must be longer than zero, e.g. intensity(3, 30s)"));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{DaemonSpec, GroupSpec, TaskSpec};

    #[test]
    fn control_characters_are_told_as_char_is_control_tells_them() {
        let samples = (0..0x800).chain([0x2028, 0x200b, 0xfeff, 0x1f600]).filter_map(char::from_u32);
        for c in samples {
            let name = format!("a{c}b");
            assert_eq!(has_control(&name), c.is_control(), "{:?}", c);
        }
        assert!(!has_control("é✓ naïve {x=\"y\"}"));
    }

    fn task(name: &str) -> Spec {
        TaskSpec::new(name, |_ctx| async {}).into()
    }

    fn problems_of(specs: &[Spec]) -> Vec<String> {
        let mut problems = Vec::new();
        check_units("", specs, &mut problems);
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn what_no_process_can_be_given_is_a_build_error() {
        let daemon = |name: &str| DaemonSpec::new(name, "sleep").arg("1");
        let specs: [Spec; 7] = [
            DaemonSpec::new("program", "sle\0ep").into(),
            daemon("arg").arg("x\0").into(),
            daemon("key").env("K\0", "v").into(),
            daemon("equals").env("K=V", "v").into(),
            daemon("empty").env("", "v").into(),
            daemon("value").env("K", "v\0").into(),
            daemon("dir").current_dir("/tmp\0x").into(),
        ];
        let problems = problems_of(&specs);
        let settings: Vec<&str> =
            problems.iter().map(|problem| problem.split(" of `").next().expect("a setting")).collect();
        assert_eq!(settings, ["program", "args", "env", "env", "env", "env", "current_dir"], "{problems:#?}");
        assert!(problems[1].contains("argument 2") && problems[1].contains("NUL byte"), "{}", problems[1]);
        assert!(problems_of(&[daemon("fine").env("PORT", "8080").current_dir("/tmp").into()]).is_empty());
    }

    #[test]
    fn thousands_of_unknown_dependencies_get_a_hint_for_the_first_few_only() {
        let mut specs: Vec<Spec> = (0..2000).map(|at| task(&format!("unit-{at}"))).collect();
        let typos = (0..2000).map(|at| format!("unit-{at}x"));
        specs.push(TaskSpec::new("hub", |_ctx| async {}).depends_on(typos).into());
        let problems = problems_of(&specs);
        assert_eq!(problems.len(), 2000);
        let hinted = problems.iter().filter(|problem| problem.contains("did you mean")).count();
        assert_eq!(hinted, HINTED_DEPENDENCIES, "{:?}", &problems[..3]);
        assert!(problems[0].contains("`unit-0x`") && problems[0].contains("did you mean `unit-0`"), "{}", problems[0]);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let specs = [
            task("a"),
            task("a"),
            task("x/y"),
            GroupSpec::new("g").intensity(0, Duration::ZERO).task(task_spec("b")).task(task_spec("b")).into(),
            DaemonSpec::new("d", "").into(),
        ];
        let problems = problems_of(&specs);
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(problems[0].contains("`a` is used twice"));
        assert!(problems[1].contains("`x/y` contains `/`"));
        assert!(problems[2].contains("intensity of `g`") && problems[2].contains("at least 1"));
        assert!(problems[3].contains("intensity of `g`") && problems[3].contains("longer than zero"));
        assert!(problems[4].contains("`g/b` is used twice"));
        assert!(problems[5].contains("empty program"));
    }

    fn task_spec(name: &str) -> TaskSpec {
        TaskSpec::new(name, |_ctx| async {})
    }

    #[test]
    fn a_group_that_depends_on_a_unit_inside_itself_is_told_so() {
        let storage =
            GroupSpec::new("storage").depends_on(["postgres"]).daemon(DaemonSpec::new("postgres", "postgres"));
        let problems = problems_of(&[storage.into()]);
        assert_eq!(
            problems,
            [
                "`storage` depends on `postgres`, which is not a unit of its group (`storage/postgres` is inside `storage` itself: a group cannot depend on a unit inside itself, as its units start only once it does; order the units inside it with their own depends_on instead)"
            ]
        );
        // Deeper, and in a group that is not the root.
        let inner = GroupSpec::new("inner").daemon(DaemonSpec::new("pg", "pg"));
        let storage = GroupSpec::new("storage").depends_on(["pg"]).group(inner);
        let problems = problems_of(&[GroupSpec::new("outer").group(storage).into()]);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].contains("(`outer/storage/inner/pg` is inside `outer/storage` itself:"), "{}", problems[0]);
        // A sibling group's unit: depend on that group.
        let web = task_spec("web").depends_on(["pg"]);
        let problems = problems_of(&[web.into(), GroupSpec::new("storage").daemon(DaemonSpec::new("pg", "pg")).into()]);
        assert!(
            problems[0].ends_with(
                "(`storage/pg` is in another group: a unit may depend only on its siblings; depend on `storage`, the group that holds it)"
            ),
            "{}",
            problems[0]
        );
        // A group named like the start of another: `store` holds nothing of `storage`.
        let storage = GroupSpec::new("storage").daemon(DaemonSpec::new("pg", "pg"));
        let store = GroupSpec::new("store").depends_on(["pg"]).task(task_spec("x"));
        let problems = problems_of(&[storage.into(), store.into()]);
        assert!(problems[0].contains("(`storage/pg` is in another group:"), "{}", problems[0]);
    }

    #[test]
    fn a_unit_of_an_outer_group_is_where_a_dependency_is_found() {
        let cases: [(Vec<Spec>, &str); 3] = [
            // `g/u` names the root's `db`: told where it is, not a sibling of a close name.
            (
                vec![
                    task("db"),
                    GroupSpec::new("g").task(task_spec("u").depends_on(["db"])).task(task_spec("dc")).into(),
                ],
                "(`db` is in another group: a unit may depend only on its siblings; make the group `g` depend on `db` instead)",
            ),
            // Deeper: `g/h/w` names `u`, which is `g/u`.
            (
                vec![
                    GroupSpec::new("g")
                        .task(task_spec("u"))
                        .group(GroupSpec::new("h").task(task_spec("w").depends_on(["u"])))
                        .into(),
                ],
                "(`g/u` is in another group: a unit may depend only on its siblings; make the group `g/h` depend on `u` instead)",
            ),
            // Its own group.
            (
                vec![GroupSpec::new("g").task(task_spec("u").depends_on(["g"])).into()],
                "(`g` is the group that holds `g/u`: a unit starts only once its group has started)",
            ),
        ];
        for (specs, hint) in cases {
            let problems = problems_of(&specs);
            assert_eq!(problems.len(), 1, "{problems:#?}");
            assert!(problems[0].ends_with(hint), "{}", problems[0]);
        }
    }

    #[test]
    fn names_may_repeat_across_groups() {
        let specs = [task("a"), GroupSpec::new("g").task(task_spec("a")).into()];
        assert!(problems_of(&specs).is_empty());
    }
}
