//! Unit names with control characters in them: a line break, a carriage
//! return, NUL, ESC, a C1 control. Such a name would break every
//! line-oriented output that names the unit (a plain-text log line forged
//! in two, the shutdown report's table split, an escape sequence sent to a
//! terminal), so `build()` and `add` refuse it, with every other problem at
//! once, in a message that stays on one line. Names with anything printable
//! (unicode, spaces, quotes, `=`, braces) still work.

use std::time::Duration;

use supervisor::{DaemonSpec, Error, GroupSpec, Supervisor, UnitState};

#[path = "support/deadline.rs"]
mod deadline;
use deadline::within;
#[path = "support/specs.rs"]
mod specs;
use specs::idle;

/// Far longer than any call takes when nothing hangs.
const DEADLINE: Duration = Duration::from_secs(20);

/// One of each: a line break, an escape sequence, NUL, a C1 control (NEL).
const HOSTILE: [&str; 4] = ["a\nb", "x\u{1b}[2J", "nul\0", "c1\u{85}"];

/// The names of `err`'s problems, if each is [`Error::NameWithControl`].
fn control_names(err: &Error) -> Vec<&str> {
    err.problems()
        .iter()
        .map(|problem| match problem {
            Error::NameWithControl { name } => name.as_str(),
            other => panic!("not NameWithControl: {other:?}"),
        })
        .collect()
}

/// A message is one line of printable text: nothing in it a terminal or a
/// line-oriented reader would act on.
fn assert_printable(message: &str) {
    assert!(!message.chars().any(char::is_control), "a control character in the message: {message:?}");
}

#[test]
fn each_name_with_a_control_character_is_a_build_error() {
    for name in HOSTILE {
        let err = Supervisor::builder().task(idle(name)).build().unwrap_err();
        assert!(matches!(err, Error::NameWithControl { name: ref got } if got == name), "{name:?}: {err:?}");
        let message = err.to_string();
        assert_printable(&message);
        assert!(message.contains(&format!("`{}`", name.escape_debug())), "{message}");
        assert!(message.contains("printable"), "says what would be right: {message}");
    }
}

#[test]
fn every_name_with_a_control_character_is_reported_at_once() {
    let mut builder = Supervisor::builder();
    for name in HOSTILE {
        builder = builder.task(idle(name));
    }
    let err = builder.build().unwrap_err();
    assert!(matches!(err, Error::Problems(_)), "{err:?}");
    assert_eq!(control_names(&err), HOSTILE);
    let message = err.to_string();
    assert!(message.starts_with("4 problems: 1) "), "{message}");
    assert_printable(&message);
}

#[test]
fn every_kind_of_unit_and_every_depth_is_checked_with_the_other_problems() {
    let err = Supervisor::builder()
        .daemon(DaemonSpec::new("d\r", "sleep").arg("1"))
        .group(GroupSpec::new("g\u{7f}").task(idle("ok")))
        .group(GroupSpec::new("outer").group(GroupSpec::new("inner").task(idle("t\t"))))
        .task(idle("x/y\n"))
        .task(idle("fine"))
        .task(idle(""))
        .build()
        .unwrap_err();
    let problems = err.problems();
    assert_eq!(problems.len(), 6, "{problems:#?}");
    assert!(matches!(&problems[0], Error::NameWithControl { name } if name == "d\r"), "{problems:#?}");
    assert!(matches!(&problems[1], Error::NameWithControl { name } if name == "g\u{7f}"), "{problems:#?}");
    assert!(matches!(&problems[2], Error::NameWithControl { name } if name == "outer/inner/t\t"), "{problems:#?}");
    // Both of what is wrong with it.
    assert!(matches!(&problems[3], Error::NameWithSlash { name } if name == "x/y\n"), "{problems:#?}");
    assert!(matches!(&problems[4], Error::NameWithControl { name } if name == "x/y\n"), "{problems:#?}");
    assert!(matches!(&problems[5], Error::EmptyName { kind: "task" }), "{problems:#?}");
}

/// Two units of one group under the same refused name: refused each, and
/// not named once more, unescaped, as a duplicate.
#[test]
fn a_refused_name_twice_is_not_a_duplicate_too() {
    let err = Supervisor::builder().task(idle("a\nb")).task(idle("a\nb")).build().unwrap_err();
    assert_eq!(control_names(&err), ["a\nb", "a\nb"]);
    assert_printable(&err.to_string());
    let err =
        Supervisor::builder().group(GroupSpec::new("g").task(idle("a\nb")).task(idle("a\nb"))).build().unwrap_err();
    assert_eq!(control_names(&err), ["g/a\nb", "g/a\nb"]);
}

#[tokio::test]
async fn add_refuses_them_the_same() {
    let handle = Supervisor::builder().task(idle("first")).group(GroupSpec::new("jobs")).build().unwrap().start();
    for name in HOSTILE {
        let err = within(DEADLINE, "add", handle.add(idle(name))).await.unwrap_err();
        assert!(matches!(err, Error::NameWithControl { name: ref got } if got == name), "{name:?}: {err:?}");
        assert_printable(&err.to_string());
        let err = within(DEADLINE, "add_to", handle.add_to("jobs", idle(name))).await.unwrap_err();
        let path = format!("jobs/{name}");
        assert!(matches!(err, Error::NameWithControl { name: ref got } if *got == path), "{name:?}: {err:?}");
        let group =
            within(DEADLINE, "add a group", handle.add(GroupSpec::new(name).task(idle("ok")))).await.unwrap_err();
        assert!(matches!(group, Error::NameWithControl { name: ref got } if got == name), "{name:?}: {group:?}");
        let inside =
            within(DEADLINE, "add a group", handle.add(GroupSpec::new("g").task(idle(name)))).await.unwrap_err();
        let path = format!("g/{name}");
        assert!(matches!(inside, Error::NameWithControl { name: ref got } if *got == path), "{name:?}: {inside:?}");
    }
    let both = within(DEADLINE, "add", handle.add(DaemonSpec::new("d\n", ""))).await.unwrap_err();
    assert!(
        matches!(both.problems(), [Error::NameWithControl { .. }, Error::EmptyProgram { .. }]),
        "{:?}",
        both.problems()
    );
    assert_eq!(handle.unit_names(), ["first", "jobs"], "nothing was added");
    within(DEADLINE, "shutdown", handle.shutdown()).await;
}

#[tokio::test]
async fn printable_names_still_work() {
    let names = [
        "café ☕",
        "日本語",
        "with spaces",
        "\"double\" and 'single' quotes",
        "key=value",
        "{braces} [brackets] (parens)",
        "`back`ticks\\",
        "\u{200b}zero width",
    ];
    let mut builder = Supervisor::builder();
    for name in names {
        builder = builder.task(idle(name));
    }
    let handle = builder.group(GroupSpec::new("g ={}").task(idle("é \" x"))).build().unwrap().start();
    for name in names.into_iter().chain(["g ={}", "g ={}/é \" x"]) {
        let status = within(DEADLINE, "wait_ready", handle.wait_ready(name)).await.unwrap();
        assert_eq!((status.name.as_str(), status.state), (name, UnitState::Running));
    }
    within(DEADLINE, "add", handle.add(idle("added = {ok}"))).await.unwrap();
    within(DEADLINE, "add_to", handle.add_to("g ={}", idle("ünïcode 'added'"))).await.unwrap();
    within(DEADLINE, "wait_ready", handle.wait_ready("g ={}/ünïcode 'added'")).await.unwrap();
    let report = within(DEADLINE, "shutdown", handle.shutdown()).await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.units.len(), names.len() + 4, "{report}");
}
