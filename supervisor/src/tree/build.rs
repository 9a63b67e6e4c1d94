//! Turning checked specs into the units of the tree.

use std::sync::Arc;

use smol_str::{SmolStr, SmolStrBuilder};

use crate::run::process::ProcessBody;
use crate::run::task::TaskBody;
use crate::spec::{Spec, UnitOptions};
use crate::tree::members::Members;
use crate::tree::unit::{Body, GroupBody, Settings, Unit};
use crate::{DEFAULT_TASK_STOP_TIMEOUT, Error, GroupSpec, RestartPolicy};

/// The unit for `spec` in the group at `prefix`, with its own units if it
/// is a group. `added`: added at run time. `previous`: the settings of the
/// unit made just before, to share if they are the same.
pub(crate) fn unit(prefix: &str, spec: Spec, added: bool, previous: Option<&Arc<Settings>>) -> Arc<Unit> {
    // Made here, in the unit, rather than shared with the spec: the path is
    // read with the unit (a status, a report line), and 100k statuses took
    // twice as long with the paths made apart from them.
    let path = unit_path(prefix, spec.name());
    let (body, settings) = match spec {
        Spec::Task(spec) => {
            let (settings, factory) = spec.into_parts();
            let settings = Settings::new(settings.policy, settings.stop_timeout, settings.options);
            (Body::Task(TaskBody::new(factory)), settings)
        }
        Spec::Daemon(spec) => {
            let settings =
                Settings::new(spec.parts.policy.clone(), spec.parts.stop_timeout, spec.parts.options.clone());
            (Body::Process(Box::new(ProcessBody::new(spec))), settings)
        }
        Spec::Group(spec) => {
            let members = members(&path, spec.units, false);
            let body = GroupBody::new(spec.parts.strategy, spec.parts.intensity, members);
            // A group's stop is its units' stops; it has no grace period of its own.
            let settings = Settings::new(spec.parts.policy, DEFAULT_TASK_STOP_TIMEOUT, spec.parts.options);
            (Body::Group(Box::new(body)), settings)
        }
    };
    Arc::new(Unit::new(path, body, settings.shared_with(previous), added))
}

/// The path of the unit `name` of the group at `prefix`: kept inline
/// when short, as most are, so that a unit takes one allocation.
fn unit_path(prefix: &str, name: &str) -> SmolStr {
    if prefix.is_empty() {
        return SmolStr::new(name);
    }
    let mut path = SmolStrBuilder::new();
    path.push_str(prefix);
    path.push('/');
    path.push_str(name);
    path.finish()
}

/// The units of the group at `prefix`. Names were checked: a duplicate is
/// skipped rather than allowed to shadow the first.
pub(crate) fn members(prefix: &str, specs: Vec<Spec>, added: bool) -> Members<Arc<Unit>> {
    members_and_duplicates(prefix, specs, added, &mut Vec::new())
}

/// Like [`members`], for names not checked yet: each unit whose name an
/// earlier one took is left out, and named in `duplicates`.
fn members_and_duplicates(
    prefix: &str,
    specs: Vec<Spec>,
    added: bool,
    duplicates: &mut Vec<Error>,
) -> Members<Arc<Unit>> {
    let mut members = Members::with_capacity(specs.len());
    let mut previous: Option<Arc<Settings>> = None;
    for spec in specs {
        let unit = unit(prefix, spec, added, previous.as_ref());
        previous = Some(unit.settings.clone());
        if let Err(taken) = members.push(unit) {
            duplicates.push(Error::DuplicateName { name: taken.path.to_string() });
        }
    }
    members
}

/// The root group, and an error for each name that two of its units take
/// (each unit after the first is left out); `spec`'s name and restart
/// policy are not used. Its units' names need not have been checked
/// against each other (those of the groups among them must): the root's
/// index finds them as it is made, where a check beforehand would hash
/// every name once more.
pub(crate) fn root_and_duplicates(spec: GroupSpec) -> (Arc<Unit>, Vec<Error>) {
    let mut duplicates = Vec::new();
    let members = members_and_duplicates("", spec.units, false, &mut duplicates);
    let body = GroupBody::new(spec.parts.strategy, spec.parts.intensity, members);
    let options = UnitOptions { critical: true, ..UnitOptions::default() };
    let settings = Settings::new(RestartPolicy::new(), DEFAULT_TASK_STOP_TIMEOUT, options);
    (Arc::new(Unit::new("".into(), Body::Group(Box::new(body)), Arc::new(settings), false)), duplicates)
}

/// A root task unit named `name` that waits for its stop: for the engine's
/// unit tests.
#[cfg(test)]
pub(crate) fn idle_unit(name: &str) -> Arc<Unit> {
    let spec = crate::TaskSpec::new(name, |ctx: crate::Context| async move { ctx.cancelled().await });
    unit("", Spec::from(spec), false, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TaskSpec;

    fn task(name: &str) -> Spec {
        TaskSpec::new(name, |_ctx| async {}).into()
    }

    #[test]
    fn a_name_is_the_last_part_of_the_path() {
        let unit = unit("storage/main", task("db"), false, None);
        assert_eq!(&*unit.path, "storage/main/db");
        assert_eq!(unit.name(), "db");
        assert_eq!(self::unit("", task("db"), false, None).name(), "db");
        assert_eq!(root_and_duplicates(GroupSpec::new("root")).0.name(), "");
        // A group path too long for the name's offset to be kept.
        let deep = "g".repeat(70_000);
        let unit = self::unit(&deep, task("db"), false, None);
        assert_eq!((unit.name(), unit.path.len()), ("db", 70_003));
    }

    #[test]
    fn the_root_names_each_unit_whose_name_an_earlier_one_took() {
        let root =
            GroupSpec::new("root").task(TaskSpec::new("a", |_ctx| async {})).task(TaskSpec::new("b", |_ctx| async {}));
        let root = root.task(TaskSpec::new("a", |_ctx| async {})).task(TaskSpec::new("a", |_ctx| async {}));
        let (root, duplicates) = root_and_duplicates(root);
        let names: Vec<String> = duplicates.iter().map(ToString::to_string).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(duplicates.iter().all(|error| matches!(error, Error::DuplicateName { name } if name == "a")));
        let kept: Vec<String> =
            root.group().expect("a group").units().iter().map(|unit| unit.path.to_string()).collect();
        assert_eq!(kept, ["a", "b"]);
    }

    #[test]
    fn a_group_of_units_alike_keeps_one_copy_of_their_settings() {
        let mut specs: Vec<Spec> = (0..100).map(|i| task(&format!("t{i}"))).collect();
        specs.push(TaskSpec::new("slow", |_ctx| async {}).stop_timeout(std::time::Duration::from_secs(60)).into());
        specs.push(task("after"));
        let members = members("", specs, false);
        let units: Vec<&Arc<Unit>> = members.iter().collect();
        assert!(units[..100].iter().all(|unit| Arc::ptr_eq(&unit.settings, &units[0].settings)));
        assert!(!Arc::ptr_eq(&units[100].settings, &units[0].settings));
        assert_eq!(units[100].settings.stop_timeout, std::time::Duration::from_secs(60));
        assert_eq!(units[101].settings.stop_timeout, DEFAULT_TASK_STOP_TIMEOUT);
        assert_eq!(members.get("t42").map(|unit| unit.name()), Some("t42"));
    }
}
