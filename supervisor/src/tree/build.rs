//! Turning checked specs into the units of the tree.

use std::sync::Arc;

use crate::run::process::ProcessBody;
use crate::run::task::TaskBody;
use crate::spec::validate::join;
use crate::spec::{Spec, UnitOptions};
use crate::tree::members::Members;
use crate::tree::unit::{Body, GroupBody, Settings, Unit};
use crate::{DEFAULT_TASK_STOP_TIMEOUT, GroupSpec, RestartPolicy};

/// The unit for `spec` in the group at `prefix`, with its own units if it
/// is a group. `added`: added at run time.
pub(crate) fn unit(prefix: &str, spec: Spec, added: bool) -> Arc<Unit> {
    let name: Arc<str> = spec.name().into();
    let path: Arc<str> = if prefix.is_empty() { name.clone() } else { join(prefix, &name).into() };
    let (body, settings) = match spec {
        Spec::Task(spec) => {
            let (settings, factory) = spec.into_parts();
            let settings = Settings {
                policy: settings.policy,
                stop_timeout: settings.stop_timeout,
                options: settings.options,
                added,
            };
            (Body::Task(TaskBody::new(factory)), settings)
        }
        Spec::Daemon(spec) => {
            let settings = Settings {
                policy: spec.policy.clone(),
                stop_timeout: spec.stop_timeout,
                options: spec.options.clone(),
                added,
            };
            (Body::Process(Box::new(ProcessBody::new(spec))), settings)
        }
        Spec::Group(spec) => {
            let members = members(&path, spec.units, false);
            let body = GroupBody::new(spec.strategy, spec.intensity, members);
            // A group's stop is its units' stops; it has no grace period of its own.
            let settings =
                Settings { policy: spec.policy, stop_timeout: DEFAULT_TASK_STOP_TIMEOUT, options: spec.options, added };
            (Body::Group(Box::new(body)), settings)
        }
    };
    Arc::new(Unit::new(name, path, body, settings))
}

/// The units of the group at `prefix`. Names were checked: a duplicate is
/// skipped rather than allowed to shadow the first.
pub(crate) fn members(prefix: &str, specs: Vec<Spec>, added: bool) -> Members<Arc<Unit>> {
    let mut members = Members::with_capacity(specs.len());
    for spec in specs {
        let unit = unit(prefix, spec, added);
        members.push(unit.name.clone(), unit);
    }
    members
}

/// The root group; `spec`'s name and restart policy are not used.
pub(crate) fn root(spec: GroupSpec) -> Arc<Unit> {
    let body = GroupBody::new(spec.strategy, spec.intensity, members("", spec.units, false));
    let settings = Settings {
        policy: RestartPolicy::new(),
        stop_timeout: DEFAULT_TASK_STOP_TIMEOUT,
        options: UnitOptions { critical: true, ..UnitOptions::default() },
        added: false,
    };
    Arc::new(Unit::new("".into(), "".into(), Body::Group(Box::new(body)), settings))
}
