//! Every check of a parsed macro input that involves more than one value:
//! names and dependencies across the tree, options that only make sense
//! together or for some kinds of unit, probe targets, the annotated fn.
//! Each check records its errors and goes on, so that one invocation
//! reports all of them.

mod signature;
mod tree;

pub(crate) use signature::is_primitive;

use crate::ast::{Manifest, ProbeTuning, Refused, Supervised, TreeOptions, Unit, UnitKind, UnitOptions};
use crate::errors::Errors;
use crate::policy::RestartOn;
use crate::probe::{self, Probe, Readiness};
use crate::typed;
use syn::LitStr;

/// Checks a whole manifest.
pub(crate) fn manifest(manifest: &Manifest, errors: &mut Errors) {
    tree_options(&manifest.settings.tree, &manifest.settings.refused, "; ", errors);
    tree::check(&manifest.units, errors);
    if let Some(handle) = &manifest.handle {
        let _ = typed::fields(handle, &manifest.units, errors);
    }
    for_each_unit(&manifest.units, &mut |unit| unit_options(unit, errors));
}

/// Checks `#[supervised]` and its fn.
pub(crate) fn supervised(input: &Supervised, errors: &mut Errors) {
    signature::check(input, errors);
    if let Some(name) = &input.options.name {
        name_text(name, errors);
    }
    run_options(&input.options, Runs::Task, errors);
}

fn for_each_unit<'a>(units: &'a [Unit], check: &mut impl FnMut(&'a Unit)) {
    for unit in units {
        check(unit);
        if let UnitKind::Group(units) = &unit.kind {
            for_each_unit(units, check);
        }
    }
}

fn unit_options(unit: &Unit, errors: &mut Errors) {
    if unit.name.value.contains('/') {
        errors.push(slash_in_name(unit.name.span));
    }
    if let Some(control) = control_in_name(&unit.name.value, unit.name.span) {
        errors.push(control);
    }
    match &unit.kind {
        UnitKind::Group(_) => {
            policy(&unit.options, errors);
            tree_options(&unit.options.tree, &unit.options.refused, ", ", errors);
        }
        UnitKind::Daemon(_) => run_options(&unit.options, Runs::Daemon, errors),
        UnitKind::Task(_) => run_options(&unit.options, Runs::Task, errors),
        UnitKind::Supervised(_) => run_options(&unit.options, Runs::SupervisedFn, errors),
    }
}

fn slash_in_name(span: proc_macro2::Span) -> syn::Error {
    syn::Error::new(
        span,
        "a unit name cannot contain `/`: it separates a group from its units in paths such as \"storage/postgres\"",
    )
}

/// The error for a unit name `name` (at `span`) that holds a control
/// character: it would break every line of logs and reports naming the
/// unit, as `build()` says too.
fn control_in_name(name: &str, span: proc_macro2::Span) -> Option<syn::Error> {
    let control = name.chars().find(|c| c.is_control())?;
    Some(syn::Error::new(
        span,
        format!(
            "a unit name cannot contain a control character (here `{}`): a line break, tab, escape or other control \
             character would break log lines, reports and terminals; use printable characters such as `-`, `_` or a space",
            control.escape_debug()
        ),
    ))
}

/// `#[supervised(name = "...")]` as a unit name.
fn name_text(name: &LitStr, errors: &mut Errors) {
    let value = name.value();
    if value.contains('/') {
        errors.push(slash_in_name(name.span()));
    }
    if let Some(control) = control_in_name(&value, name.span()) {
        errors.push(control);
    }
}

/// What a unit that runs is.
#[derive(Clone, Copy, PartialEq)]
enum Runs {
    Daemon,
    Task,
    /// A `task path;` entry: the `#[supervised]` fn's own options are out of
    /// the manifest's sight.
    SupervisedFn,
}

/// `ready = completed` waits for a run to end well and rest: the entry's
/// policy must let a success rest (`on = "failure"` or `"never"`).
fn completed_needs_rest(options: &UnitOptions, span: proc_macro2::Span, errors: &mut Errors) {
    if matches!(options.policy.on, Some(RestartOn::Failure | RestartOn::Never)) {
        return;
    }
    errors.spanned_at(
        span,
        "`ready = completed` waits for a run to end well and rest, and this unit's policy restarts a run that succeeds (`on = \"always\"`, the default); add `on = \"failure\"`",
    );
}

/// The options of a unit that runs: a task or a daemon.
fn run_options(options: &UnitOptions, runs: Runs, errors: &mut Errors) {
    let is_daemon = runs == Runs::Daemon;
    // A `task path;` entry's options go over the fn's own, out of sight here:
    // an option whose partner the fn sets is sound, and the expansion checks
    // the pair with the fn's.
    if runs != Runs::SupervisedFn {
        policy(options, errors);
    }
    if let Some(readiness) = &options.readiness {
        match &readiness.value {
            Readiness::Probe(probe) => probe_target(probe, errors),
            Readiness::Output(text) if !is_daemon => errors.spanned(
                text,
                "`output(...)` waits for a line of a process's output; a task says it is ready with `ready = notified` and `ctx.ready()`",
            ),
            Readiness::Output(text) if text.value().is_empty() => errors.spanned(
                text,
                "an empty text is in every line: write the text that shows the process is ready, e.g. `output(\"listening on\")`",
            ),
            Readiness::Output(text) if text.value().contains(['\n', '\r']) => errors.spanned(
                text,
                "the text holds a line break, and the output is matched one line at a time: write text from one line, e.g. `output(\"listening on\")`",
            ),
            // The policy is the entry's: a `task path;` entry's may be the fn's.
            Readiness::Completed if runs != Runs::SupervisedFn => completed_needs_rest(options, readiness.span, errors),
            Readiness::Started | Readiness::Notified | Readiness::Completed | Readiness::Output(_) => {}
        }
    }
    // A probe given but refused has its own error: its settings are not
    // without a probe.
    let readiness_probe =
        matches!(&options.readiness, Some(readiness) if matches!(readiness.value, Readiness::Probe(_)));
    if !readiness_probe && !options.refused.contains("ready") {
        tuning_without_probe(&options.readiness_tuning, "ready", "readiness", runs, errors);
    }
    match &options.liveness {
        Some(liveness) => probe_target(&liveness.value, errors),
        None if options.refused.contains("liveness") => {}
        None => tuning_without_probe(&options.liveness_tuning, "liveness", "liveness", runs, errors),
    }
}

fn tuning_without_probe(tuning: &ProbeTuning, key: &str, what: &str, runs: Runs, errors: &mut Errors) {
    let example =
        format!("`{key} = tcp(\"127.0.0.1:8080\")`, `http(\"http://127.0.0.1:8080/health\")` or `exec(\"command\")`");
    for setting in tuning.keys() {
        let message = if runs == Runs::SupervisedFn {
            format!(
                "`{setting}` tunes a {what} probe, and this entry sets none: the manifest cannot see a probe set on the `#[supervised]` fn, so tune it there, or set the probe here beside its settings, e.g. {example}"
            )
        } else {
            format!("`{setting}` tunes a {what} probe, and there is none: add one, e.g. {example}")
        };
        errors.spanned(setting, message);
    }
}

fn probe_target(probe: &Probe, errors: &mut Errors) {
    let (lit, checked) = match probe {
        Probe::Tcp(address) => (address, probe::check_tcp(&address.value())),
        Probe::Http(url) => (url, probe::check_http(&url.value())),
        Probe::Exec(_) => return,
    };
    if let Err(message) = checked {
        errors.spanned(lit, message);
    }
}

/// The restart policy's options that only make sense together; one whose
/// partner was given but refused has that error only.
fn policy(options: &UnitOptions, errors: &mut Errors) {
    let policy = &options.policy;
    let refused = &options.refused;
    match (&policy.window, &policy.window_max) {
        (Some((_, key)), None) if !refused.contains("window_max") => errors.spanned(
            key,
            "`window` needs `window_max`: write `window = \"30s\", window_max = 5` for at most 5 restarts within 30s",
        ),
        (None, Some((_, key))) if !refused.contains("window") => errors.spanned(
            key,
            "`window_max` needs `window`: write `window = \"30s\", window_max = 5` for at most 5 restarts within 30s",
        ),
        _ => {}
    }
    if let (Some((_, key)), None) = (&policy.max_delay, &policy.backoff)
        && !refused.contains("backoff")
    {
        errors.spanned(key, "`max_delay` caps an exponential backoff: add `backoff = 2.0` (or remove `max_delay`)");
    }
}

/// `intensity` and `period` come together; one whose partner was given but
/// refused has that error only. `between`: what separates the two where
/// they are written, `"; "` for the manifest's settings (each a line that
/// ends with `;`), `", "` in a group's option block.
fn tree_options(tree: &TreeOptions, refused: &Refused, between: &str, errors: &mut Errors) {
    match (&tree.intensity, &tree.period) {
        (Some((n, key)), None) if !refused.contains("period") => errors.spanned(
            key,
            format!(
                "`intensity` needs `period`: write `intensity = {n}{between}period = \"60s\"` for at most {n} restarts \
                 within 60s"
            ),
        ),
        (None, Some((_, key))) if !refused.contains("intensity") => errors.spanned(
            key,
            format!(
                "`period` needs `intensity`: write `intensity = 3{between}period = \"30s\"` for at most 3 restarts \
                 within 30s"
            ),
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast;
    use proc_macro2::TokenStream;
    use quote::quote;

    /// Every message of parsing and checking a manifest.
    pub(crate) fn messages(tokens: TokenStream) -> Vec<String> {
        let mut errors = Errors::default();
        let parsed = ast::manifest::parse(tokens, &mut errors);
        manifest(&parsed, &mut errors);
        match errors.into_result() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn one(tokens: TokenStream) -> String {
        let mut all = messages(tokens);
        assert_eq!(all.len(), 1, "{all:#?}");
        all.remove(0)
    }

    #[test]
    fn a_sound_manifest_passes() {
        let all = messages(quote! {
            strategy = "one_for_all"; intensity = 10; period = "60s";
            group storage { strategy = "rest_for_one", intensity = 3, period = "30s", restart = "5s", max = 2 } {
                daemon postgres = "postgres -D /var/lib/pg" { ready = tcp("127.0.0.1:5432"), readiness_period = "1s" };
                task migrate { depends_on = [postgres], on = "failure" };
            }
            task api { depends_on = [storage], ready = notified, critical };
            daemon worker = "worker" { liveness = http("http://127.0.0.1:8081/health"), liveness_period = "10s", ready = output("up") };
            task poller { watchdog = "30s", window = "1m", window_max = 3 };
        });
        assert!(all.is_empty(), "{all:#?}");
    }

    #[test]
    fn options_that_go_together() {
        // Each with the fix written as it is at its place: the manifest's
        // settings end with `;`, a group's options are separated by `,`.
        assert!(one(quote!(intensity = 3;)).starts_with("`intensity` needs `period`: write `intensity = 3; period = "));
        assert!(one(quote!(period = "1s";)).starts_with("`period` needs `intensity`: write `intensity = 3; period = "));
        assert!(
            one(quote!(group g { intensity = 3 } {}))
                .starts_with("`intensity` needs `period`: write `intensity = 3, period")
        );
        assert!(
            one(quote!(group g { period = "1s" } {}))
                .starts_with("`period` needs `intensity`: write `intensity = 3, period")
        );
        assert!(one(quote!(task t = t { window = "1s" };)).starts_with("`window` needs `window_max`"));
        assert!(one(quote!(group g { window_max = 2 } {})).starts_with("`window_max` needs `window`"));
        assert!(one(quote!(task t = t { max_delay = "1s" };)).starts_with("`max_delay` caps"));
        assert!(
            one(quote!(task t = t { readiness_period = "1s" };))
                .starts_with("`readiness_period` tunes a readiness probe")
        );
        assert!(one(quote!(task t = t { ready = notified, readiness_timeout = "1s" };)).contains("there is none"));
        assert!(
            one(quote!(daemon d = "d" { liveness_failures = 3 };))
                .starts_with("`liveness_failures` tunes a liveness probe")
        );
    }

    /// A `task path;` entry's options go over the fn's, which may set the
    /// partner: the expansion checks the pair with the fn's own.
    #[test]
    fn a_task_path_entry_may_take_the_partner_from_its_fn() {
        for entry in [
            quote!(task flaky { max_delay = "5s" };),
            quote!(task flaky { window = "10s" };),
            quote!(group g {} { task jobs::flaky { window_max = 1 }; }),
        ] {
            assert!(messages(entry.clone()).is_empty(), "{entry}: {:#?}", messages(entry.clone()));
        }
    }

    /// An option whose partner was given but refused has the partner's
    /// error only, not one that says the partner is missing.
    #[test]
    fn no_error_follows_a_refused_partner() {
        assert!(one(quote!(task t = t { window = "0s", window_max = 1 };)).starts_with("the restart window must be"));
        assert!(one(quote!(task t = t { window = "30s", window_max = -1 };)).contains("`window_max = -1`"));
        assert!(one(quote!(task t = t { backoff = 0.5, max_delay = "1m" };)).starts_with("`backoff = 0.5`"));
        assert!(one(quote!(intensity = 0; period = "1s";)).starts_with("`intensity = 0` allows no restart"));
        assert!(one(quote!(group g { intensity = 3, period = "0s" } {})).starts_with("`period` must be longer"));
        assert!(one(quote!(task t = t { ready = tcpp("a:1"), readiness_period = "1s" };)).contains("`tcpp`"));
        assert!(one(quote!(task t = t { liveness = notified, liveness_period = "1s" };)).contains("not whether"));
    }

    #[test]
    fn readiness_that_does_not_fit_the_unit() {
        assert!(
            one(quote!(task t = t { ready = output("up") };))
                .contains("a task says it is ready with `ready = notified`")
        );
        assert!(one(quote!(daemon d = "d" { ready = output("") };)).starts_with("an empty text is in every line"));
    }

    #[test]
    fn probe_targets() {
        assert!(one(quote!(daemon d = "d" { ready = tcp("localhost") };)).contains("has no port"));
        assert!(one(quote!(daemon d = "d" { liveness = http("localhost:80/health") };)).contains("has no scheme"));
        assert!(one(quote!(task t = t { liveness = tcp("[::1]:99999") };)).contains("is not a port"));
        assert!(one(quote!(task t = t { ready = tcp("[zz]:80") };)).contains("which is not an IPv6 address"));
        assert!(one(quote!(task t = t { ready = http("http://[zz]/") };)).contains("which is not an IPv6 address"));
    }

    #[test]
    fn names_with_a_slash() {
        assert!(one(quote!(daemon "a/b" = "x";)).starts_with("a unit name cannot contain `/`"));
        assert!(one(quote!(group "a/b" {})).starts_with("a unit name cannot contain `/`"));
    }
}
