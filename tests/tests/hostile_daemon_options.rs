//! Hostile and careless use of the options of `DaemonSpec` and of the handle
//! calls on daemons: the environment set, removed and cleared in every order
//! (with keys and values no shell would take), working directories that are
//! missing, files, FIFOs, relative, empty or removed between runs, success
//! codes at their bounds, every kind of stop signal, signals sent where and
//! when they make little sense, tail bounds at 0, 1 and `usize::MAX`,
//! temporary and critical daemons, and programs that are not programs.
//!
//! Every wait has a deadline (a hang fails the test); every process a test
//! sees is checked to be gone, reaped, at its end.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::process::{Pid, test_kill_process_group};
use supervisor::{
    Context, DaemonSpec, Error, Event, EventKind, ExitReason, GroupSpec, MaxRestarts, Output, Readiness, RestartOn,
    RestartPolicy, ShutdownCause, ShutdownReport, Signal, StopOutcome, Supervisor, SupervisorHandle, TaskSpec,
    UnitState, UnitStatus,
};
use tokio::sync::broadcast;

#[path = "support/deadline.rs"]
mod deadline;
use deadline::{next_event, wait_at_rest, wait_for, wait_running, wait_state, wait_status, wait_tail, within};
#[path = "support/specs.rs"]
mod specs;
use specs::{no_delay, run_once, sh, start};

/// Far longer than any step takes when nothing hangs.
const DEADLINE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// Helpers

/// The events of `unit` up to and including the first that matches `last`.
async fn events_until(
    events: &mut broadcast::Receiver<Event>,
    unit: &str,
    last: impl Fn(&EventKind) -> bool,
) -> Vec<EventKind> {
    let mut kinds = Vec::new();
    loop {
        let event = next_event(DEADLINE, events, |event| event.unit == unit).await;
        let done = last(&event.kind);
        kinds.push(event.kind);
        if done {
            return kinds;
        }
    }
}

/// The state letter of `/proc/<pid>/stat` (`R`, `S`, `Z`, ...), if the pid exists.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Whether the pid exists at all, zombie included.
fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether the process runs (a zombie has ended: it only waits to be reaped).
fn alive(pid: u32) -> bool {
    proc_state(pid).is_some_and(|state| state != 'Z' && state != 'X')
}

/// Whether any process is still in process group `pgid`.
fn group_exists(pgid: u32) -> bool {
    let pid = Pid::from_raw(i32::try_from(pgid).expect("a pid fits an i32")).expect("a pid is positive");
    test_kill_process_group(pid).is_ok()
}

/// A unit's run is over for good: its leader was reaped (no zombie, no
/// process) and nothing of its group lives on.
async fn assert_gone(pgid: u32) {
    wait_for(DEADLINE, &format!("group {pgid} to be empty"), || (!group_exists(pgid)).then_some(())).await;
    wait_for(DEADLINE, &format!("leader {pgid} to be reaped"), || (!exists(pgid)).then_some(())).await;
}

/// The report names each unit once.
fn assert_each_once(report: &ShutdownReport) {
    let mut seen = HashSet::new();
    for line in &report.units {
        assert!(seen.insert(line.name.clone()), "`{}` is reported twice: {report:#?}", line.name);
    }
}

async fn shut_down(handle: &SupervisorHandle, units: usize) -> ShutdownReport {
    let report = within(DEADLINE, "the shutdown", handle.shutdown()).await;
    assert_each_once(&report);
    assert_eq!(report.units.len(), units, "{report:#?}");
    report
}

/// A fresh empty directory for one test, removed when dropped.
struct ScratchDir(PathBuf);

impl std::ops::Deref for ScratchDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<OsStr> for ScratchDir {
    fn as_ref(&self) -> &OsStr {
        self.0.as_os_str()
    }
}

impl AsRef<Path> for ScratchDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch_dir(test: &str) -> ScratchDir {
    let dir = std::env::temp_dir().join(format!("supervisor-options-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    ScratchDir(dir)
}

/// The environment `env` printed, as a map (every value is one line here).
fn env_map(tail: &[String]) -> BTreeMap<String, String> {
    tail.iter()
        .map(|line| {
            let shown: String = line.chars().take(80).collect();
            let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("not a variable: {shown:?}"));
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

/// Runs `specs` (each once, to its end) and returns each one's final status
/// and tail, then shuts down.
async fn run_all(specs: Vec<DaemonSpec>) -> Vec<(String, UnitStatus, Vec<String>)> {
    let names: Vec<String> = specs.iter().map(|spec| spec.name().to_owned()).collect();
    let handle = start(specs);
    let mut results = Vec::new();
    for name in &names {
        let status = wait_at_rest(DEADLINE, &handle, name).await;
        let tail = handle.tail(name, usize::MAX).unwrap();
        results.push((name.clone(), status, tail));
    }
    shut_down(&handle, names.len()).await;
    results
}

fn build_error(spec: DaemonSpec) -> Error {
    match Supervisor::builder().daemon(spec).build() {
        Ok(_) => panic!("the spec was accepted"),
        Err(error) => error,
    }
}

// ---------------------------------------------------------------------------
// The environment

/// `env`, `env_remove` and `env_clear` apply in the order they are called,
/// for set and inherited variables alike; odd but legal keys and values
/// (spaces, `=` in the value, empty, non-UTF-8, 100 KiB) reach the child
/// byte for byte.
#[tokio::test]
async fn the_environment_the_child_sees_is_the_calls_applied_in_order() {
    let home = std::env::var("HOME").expect("the tests run with a HOME");
    let big = "v".repeat(100 * 1024);
    let spec = DaemonSpec::new("env", "env")
        .env("TWICE", "first")
        .env("TWICE", "second")
        .env("SET_REMOVED", "x")
        .env_remove("SET_REMOVED")
        .env_remove("REMOVED_SET")
        .env("REMOVED_SET", "back")
        .env("SET_REMOVED_SET", "1")
        .env_remove("SET_REMOVED_SET")
        .env("SET_REMOVED_SET", "3")
        .env_remove("HOME")
        .env_remove("NEVER_SET_ANYWHERE")
        .env("EMPTY", "")
        .env("EQUALS", "a=b=c")
        .env("SPACED KEY", " spaced value ")
        .env("LÉ", "ünïcode")
        .env(OsStr::from_bytes(b"RAW\xff"), OsStr::from_bytes(b"v\xfe"))
        .restart(run_once());
    let big_spec = sh("big", "printf %s \"$BIG\" | wc -c; [ \"$BIG\" = \"$EXPECTED\" ] && echo same")
        .env("BIG", &big)
        .env("EXPECTED", &big)
        .restart(run_once());
    let results = run_all(vec![spec, big_spec]).await;
    let (_, status, tail) = &results[0];
    assert_eq!(status.exit_code, Some(0), "{status:?}");
    let env = env_map(tail);
    assert_eq!(env.get("TWICE").map(String::as_str), Some("second"));
    assert_eq!(env.get("SET_REMOVED"), None);
    assert_eq!(env.get("REMOVED_SET").map(String::as_str), Some("back"));
    assert_eq!(env.get("SET_REMOVED_SET").map(String::as_str), Some("3"));
    assert_eq!(env.get("HOME"), None, "HOME={home} was inherited");
    assert_eq!(env.get("EMPTY").map(String::as_str), Some(""));
    assert_eq!(env.get("EQUALS").map(String::as_str), Some("a=b=c"));
    assert_eq!(env.get("SPACED KEY").map(String::as_str), Some(" spaced value "));
    assert_eq!(env.get("LÉ").map(String::as_str), Some("ünïcode"));
    assert_eq!(env.get("RAW\u{FFFD}").map(String::as_str), Some("v\u{FFFD}"));
    let (_, status, tail) = &results[1];
    assert_eq!(status.exit_code, Some(0), "{status:?}");
    assert_eq!(tail, &[big.len().to_string(), "same".to_owned()]);
    // The rest is inherited.
    assert!(env.contains_key("PATH"), "{env:?}");
}

/// Set in a run of this test binary whose `PATH` holds a program found
/// nowhere else: the directory it is in.
const ONLY_ON_PATH: &str = "HOSTILE_OPTIONS_ONLY_ON_PATH";

/// `env_clear` and `env_remove("PATH")`: "the program is still looked up in
/// the supervisor's `PATH`". It was looked up in glibc's default
/// (`/bin:/usr/bin`) instead, and a program found only on the supervisor's
/// `PATH` failed to start ("is it installed and on PATH?"). The supervisor
/// runs in a child of this test, its `PATH` led by a scratch directory.
#[test]
fn without_a_path_of_its_own_a_program_is_looked_up_on_the_supervisors() {
    let dir = scratch_dir("only-on-path");
    let program = dir.join("only-here");
    std::fs::write(&program, "#!/bin/sh\necho found\n").unwrap();
    std::fs::set_permissions(&program, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let name = "a_program_only_on_the_supervisors_path_runs_without_a_path_of_its_own";
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env(ONLY_ON_PATH, &*dir)
        .env("PATH", path)
        .output()
        .expect("run the child test");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && text.contains("1 passed"), "{text}");
}

/// The child of the test above; passes at once in any other run.
#[tokio::test]
async fn a_program_only_on_the_supervisors_path_runs_without_a_path_of_its_own() {
    if std::env::var_os(ONLY_ON_PATH).is_none() {
        return;
    }
    let specs = vec![
        DaemonSpec::new("kept", "only-here").restart(run_once()),
        DaemonSpec::new("cleared", "only-here").env_clear().restart(run_once()),
        DaemonSpec::new("removed", "only-here").env_remove("PATH").restart(run_once()),
        DaemonSpec::new("cleared-elsewhere", "only-here").env_clear().current_dir("/").restart(run_once()),
    ];
    for (name, status, tail) in run_all(specs).await {
        assert_eq!((status.state, status.last_error.as_deref()), (UnitState::Exited, None), "{name}: {status:?}");
        assert_eq!(tail, ["found"], "{name}");
    }
}

/// `env_clear` in every position: it forgets what came before it (set or
/// removed) and keeps what comes after; calling it twice is the same as
/// once; an invalid key forgotten by it is no error.
#[tokio::test]
async fn env_clear_forgets_what_came_before_and_keeps_what_comes_after() {
    let specs = vec![
        DaemonSpec::new("clear-then-set", "env").env_clear().env("A", "1"),
        DaemonSpec::new("set-then-clear", "env").env("A", "1").env_clear(),
        DaemonSpec::new("clear-set-clear-set", "env").env_clear().env("A", "1").env_clear().env("B", "2"),
        DaemonSpec::new("clear-set-remove", "env").env_clear().env("A", "1").env("B", "2").env_remove("A"),
        DaemonSpec::new("remove-clear-set", "env").env_remove("A").env_clear().env("A", "again"),
        DaemonSpec::new("clear-remove-unknown", "env").env_clear().env_remove("NOPE"),
        // The invalid key is forgotten: nothing is left to refuse.
        DaemonSpec::new("invalid-then-clear", "env").env("BAD=KEY", "1").env_remove("").env_clear().env("C", "3"),
    ];
    let specs = specs.into_iter().map(|spec| spec.restart(run_once())).collect();
    let expected: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        ("clear-then-set", vec!["A=1"]),
        ("set-then-clear", vec![]),
        ("clear-set-clear-set", vec!["B=2"]),
        ("clear-set-remove", vec!["B=2"]),
        ("remove-clear-set", vec!["A=again"]),
        ("clear-remove-unknown", vec![]),
        ("invalid-then-clear", vec!["C=3"]),
    ]);
    for (name, status, tail) in run_all(specs).await {
        assert_eq!(status.exit_code, Some(0), "{name}: {status:?}");
        assert_eq!(tail, expected[name.as_str()], "{name}");
    }
}

/// The README: "the program is still looked up in the supervisor's `PATH`
/// unless you set one with `env`". `env_remove("PATH")` sets none: the
/// program (here one outside `/bin` and `/usr/bin`, the default search path
/// of an exec with no `PATH`) is still found, and the child has no `PATH`.
#[tokio::test]
async fn env_remove_path_still_finds_the_program_in_the_supervisors_path() {
    let Some(program) = ["git", "cargo", "rustc"].into_iter().find(|program| {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .unwrap_or_default();
        !found.is_empty() && !found.starts_with("/bin/") && !found.starts_with("/usr/bin/")
    }) else {
        panic!("no program outside /bin and /usr/bin to look up");
    };
    let specs = vec![
        DaemonSpec::new("removed", program).arg("--version").env_remove("PATH").restart(run_once()),
        DaemonSpec::new("cleared", program).arg("--version").env_clear().env_remove("PATH").restart(run_once()),
        // Not `sh`: a shell makes up a `PATH` of its own when it has none.
        DaemonSpec::new("child-has-none", "env").env_remove("PATH").env_remove("HOME").restart(run_once()),
    ];
    let results = run_all(specs).await;
    for (name, status, tail) in &results[..2] {
        assert_eq!(status.exit_code, Some(0), "{name}: {status:?} {tail:?}");
    }
    let env = env_map(&results[2].2);
    assert!(!env.contains_key("PATH") && !env.contains_key("HOME"), "{env:?}");
    assert!(!env.is_empty(), "the rest is inherited");
}

/// Keys and values no process can be given are typed errors naming the
/// setting and the key, from `build()` and from `add()`, whichever of `env`
/// and `env_remove` carries them, and wherever they are among the calls.
#[tokio::test]
async fn impossible_keys_are_typed_errors_naming_the_key() {
    let bad = || {
        [
            ("remove-empty", DaemonSpec::new("remove-empty", "true").env_remove(""), "\"\""),
            ("remove-nul", DaemonSpec::new("remove-nul", "true").env_remove("K\0EY"), "K\\0EY"),
            ("eq-first", DaemonSpec::new("eq-first", "true").env("=X", "1"), "=X"),
            ("raw-eq", DaemonSpec::new("raw-eq", "true").env(OsStr::from_bytes(b"R\xffW=1"), "1"), "R\\xFFW=1"),
            ("after-clear", DaemonSpec::new("after-clear", "true").env_clear().env("A=B", "1"), "A=B"),
            (
                "nul-value-after-good",
                DaemonSpec::new("nul-value-after-good", "true").env("GOOD", "1").env("SECRET", "a\0b"),
                "SECRET",
            ),
        ]
    };
    for (name, spec, needle) in bad() {
        let error = build_error(spec);
        match &error {
            Error::InvalidSetting { unit, setting: "env", reason } => {
                assert_eq!(unit, name);
                assert!(reason.contains(needle), "{name}: {reason:?} should name {needle:?}");
            }
            other => panic!("{name}: {other:?}"),
        }
        // The value itself (maybe a secret) is never shown.
        assert!(!error.to_string().contains("a\0b") && !error.to_string().contains("a\\0b"), "{error}");
    }
    let handle = start([DaemonSpec::new("sleeper", "sleep").arg("1000")]);
    let sleeper = wait_running(DEADLINE, &handle, "sleeper").await;
    for (name, spec, _) in bad() {
        let error = within(DEADLINE, "add", handle.add(spec)).await.unwrap_err();
        assert!(matches!(&error, Error::InvalidSetting { setting: "env", .. }), "{name}: {error:?}");
        assert!(handle.status(name).is_none());
    }
    shut_down(&handle, 1).await;
    assert_gone(sleeper).await;
}

// ---------------------------------------------------------------------------
// The working directory

/// A working directory that cannot be entered is a failed run whose
/// `last_error` (and `Exited` event) names the directory, whatever is wrong
/// with it; the run's program is never started.
#[tokio::test]
async fn working_directories_that_cannot_be_entered_are_named_in_the_error() {
    let dir = scratch_dir("bad-cwd");
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let fifo = dir.join("a-fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let loop_link = dir.join("loop");
    std::os::unix::fs::symlink(&loop_link, &loop_link).unwrap();
    let dangling = dir.join("dangling");
    std::os::unix::fs::symlink(dir.join("gone"), &dangling).unwrap();
    let missing = dir.join("missing");
    let under_file = file.join("sub");
    let cases: Vec<(&str, PathBuf)> = vec![
        ("missing", missing),
        ("file", file),
        ("fifo", fifo),
        ("symlink-loop", loop_link),
        ("dangling", dangling),
        ("under-a-file", under_file),
        ("relative-missing", PathBuf::from("no/such/relative/dir")),
    ];
    let marker = dir.join("started");
    let handle =
        start(cases.iter().map(|(name, path)| {
            sh(name, "touch \"$MARK\"").env("MARK", &marker).current_dir(path).restart(run_once())
        }));
    for (name, path) in &cases {
        let status = wait_at_rest(DEADLINE, &handle, name).await;
        assert_eq!(status.pid, None, "{name}");
        let error = status.last_error.clone().unwrap_or_else(|| panic!("{name}: no last_error: {status:?}"));
        let shown = path.display().to_string();
        assert!(error.contains(&shown), "{name}: {error:?} should name {shown:?}");
        assert!(error.contains("`sh`"), "{name}: {error:?} should name the program");
    }
    assert!(!marker.exists(), "a program ran in a directory it could not enter");
    let report = shut_down(&handle, cases.len()).await;
    assert!(report.units.iter().all(|unit| unit.outcome == StopOutcome::NotRunning), "{report:#?}");
}

/// Set for the `child_*` tests below: the directory their daemons may not
/// enter.
const LOCKED_DIR: &str = "SUPERVISOR_OPTIONS_LOCKED_DIR";
/// What a child prints before each daemon's `last_error`.
const LAST_ERROR: &str = "LAST_ERROR:";

/// Runs `specs` once each, to their end, and prints each one's
/// `last_error` for the parent.
async fn print_last_errors(specs: Vec<DaemonSpec>) {
    let names: Vec<String> = specs.iter().map(|spec| spec.name().to_owned()).collect();
    let handle = start(specs.into_iter().map(|spec| spec.restart(run_once())));
    for name in &names {
        let status = wait_at_rest(DEADLINE, &handle, name).await;
        println!("{LAST_ERROR}{name}:{}", status.last_error.unwrap_or_default());
    }
    shut_down(&handle, names.len()).await;
}

/// Runs the ignored test `child` of this binary with `LOCKED_DIR` set to
/// `dir`, made a directory that the child's user may not enter: as
/// `nobody` when the tests run as root (who may enter any directory). The
/// `last_error` each of its daemons printed; `None` when the child cannot
/// be run as another user (a container without CAP_SETUID).
fn last_errors_of_child_locked_out_of(child: &str, dir: &Path) -> Option<Vec<String>> {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    std::fs::create_dir(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", child, "--ignored", "--nocapture"])
        .env(LOCKED_DIR, dir)
        .stdin(std::process::Stdio::null());
    if rustix::process::geteuid().is_root() {
        command.uid(65534).gid(65534);
    }
    let output = command.output();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = match output {
        Ok(output) => output,
        // Root without the right to change its user, or a test binary that
        // `nobody` may not run.
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("skipped: cannot run the child as another user: {error}");
            return None;
        }
        Err(error) => panic!("cannot run the child: {error}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}\n{stdout}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    Some(stdout.lines().filter_map(|line| line.split_once(LAST_ERROR)).map(|(_, rest)| rest.to_owned()).collect())
}

/// The daemons of the test below, run as a child process; does nothing
/// otherwise.
#[tokio::test]
#[ignore = "run as a child process by the test below"]
async fn child_runs_daemons_in_a_directory_it_may_not_enter() {
    let Some(dir) = std::env::var_os(LOCKED_DIR) else { return };
    print_last_errors(
        [
            DaemonSpec::new("on-path", "sh").args(["-c", "true"]),
            DaemonSpec::new("by-path", "/bin/sh").args(["-c", "true"]),
            DaemonSpec::new("relative", "./run.sh"),
        ]
        .into_iter()
        .map(|spec| spec.current_dir(&dir))
        .collect(),
    )
    .await;
}

/// A working directory that exists but that the supervisor's user may not
/// enter (no search permission) is named as the cause of the failed run.
/// Its "permission denied" was read as the program's: "`/usr/bin/sh`,
/// where PATH finds it, is not executable", or "is it executable?", about
/// a program that is, and the directory was never named.
#[tokio::test]
async fn a_working_directory_that_may_not_be_entered_is_named_as_the_cause() {
    let scratch = scratch_dir("locked-cwd");
    let locked = scratch.join("locked");
    let Some(errors) =
        last_errors_of_child_locked_out_of("child_runs_daemons_in_a_directory_it_may_not_enter", &locked)
    else {
        return;
    };
    assert_eq!(errors.len(), 3, "{errors:?}");
    let shown = locked.display().to_string();
    for error in errors {
        assert!(error.contains(&shown) && error.contains("cannot be entered"), "should name {shown:?}: {error:?}");
        assert!(error.contains("Permission denied"), "{error:?}");
        assert!(!error.contains("executable"), "blames the program: {error:?}");
    }
}

/// The daemons of the test below, run as a child process; does nothing
/// otherwise.
#[tokio::test]
#[ignore = "run as a child process by the test below"]
async fn child_looks_programs_up_on_a_path_it_may_not_search_all_of() {
    let Some(dir) = std::env::var_os(LOCKED_DIR) else { return };
    let mut path = std::ffi::OsString::from(&dir);
    path.push(":/usr/bin:/bin:");
    path.push(&dir);
    print_last_errors(vec![
        DaemonSpec::new("missing", "supervisor-test-no-such-program").env("PATH", &path),
        // Found past the directory it may not search, as a shell finds it.
        DaemonSpec::new("found", "sh").args(["-c", "exit 3"]).env("PATH", &path),
    ])
    .await;
}

/// A program that is not installed, looked up on a `PATH` with a
/// directory the supervisor's user may not search (one of another user's,
/// kept by `su` or a container's `ENV PATH`), is told as not found on
/// PATH, naming that directory. The lookup goes on past such a directory
/// and fails with "permission denied" when no other holds the program,
/// which was told as the program's: "is it executable?", of a program that
/// is nowhere.
#[tokio::test]
async fn a_program_missing_from_a_path_with_a_directory_that_may_not_be_searched_is_not_found() {
    let scratch = scratch_dir("locked-path");
    let locked = scratch.join("locked");
    let Some(errors) =
        last_errors_of_child_locked_out_of("child_looks_programs_up_on_a_path_it_may_not_search_all_of", &locked)
    else {
        return;
    };
    let [missing, found] = errors.as_slice() else { panic!("{errors:?}") };
    let missing = missing.strip_prefix("missing:").unwrap_or_else(|| panic!("{missing:?}"));
    let locked_shown = format!("`{}`", locked.display());
    assert!(missing.contains("supervisor-test-no-such-program"), "{missing:?}");
    assert!(missing.contains("not found on PATH"), "{missing:?}");
    assert_eq!(missing.matches(&locked_shown).count(), 1, "names the directory, once: {missing:?}");
    assert!(!missing.contains("executable"), "blames a program that is nowhere: {missing:?}");
    assert_eq!(found, "found:exited with code 3", "found past the directory it may not search");
}

/// An empty working directory is no directory at all: `build()` refuses
/// it, or at least the failed run says the directory is empty instead of
/// printing nothing where its name should be.
#[tokio::test]
async fn an_empty_working_directory_is_refused_or_named() {
    match Supervisor::builder().daemon(DaemonSpec::new("empty-dir", "true").current_dir("").restart(run_once())).build()
    {
        Err(Error::InvalidSetting { unit, setting: "current_dir", .. }) => assert_eq!(unit, "empty-dir"),
        Err(other) => panic!("{other:?}"),
        Ok(sup) => {
            let handle = sup.start();
            let status = wait_at_rest(DEADLINE, &handle, "empty-dir").await;
            shut_down(&handle, 1).await;
            let error = status.last_error.expect("a failed run");
            assert!(!error.contains("directory  "), "the directory's name is missing: {error:?}");
            assert!(error.contains("empty"), "{error:?} should say the directory is empty");
        }
    }
}

/// A relative working directory is taken from the supervisor's own working
/// directory when the run starts, as `std::process::Command` does.
#[tokio::test]
async fn a_relative_working_directory_is_relative_to_the_supervisor() {
    let dir = scratch_dir("relative-cwd");
    let target = dir.canonicalize().unwrap();
    let here = std::env::current_dir().unwrap().canonicalize().unwrap();
    let up = "../".repeat(here.components().count() - 1);
    let relative = PathBuf::from(format!("{up}{}", target.strip_prefix("/").unwrap().display()));
    assert!(relative.is_relative());
    let results =
        run_all(vec![DaemonSpec::new("pwd", "pwd").arg("-P").current_dir(&relative).restart(run_once())]).await;
    let (_, status, tail) = &results[0];
    assert_eq!(status.exit_code, Some(0), "{status:?}");
    assert_eq!(tail, &[target.display().to_string()]);
}

/// A working directory removed between runs fails the next run, naming the
/// directory; made again, the run after that works. The tail keeps the
/// lines of the runs before.
#[tokio::test]
async fn a_working_directory_removed_between_runs_fails_that_run_naming_it() {
    let dir = scratch_dir("removed-cwd");
    let work = dir.join("work");
    std::fs::create_dir(&work).unwrap();
    let handle = start([sh("worker", "echo \"in $(pwd -P)\"; exit 4").current_dir(&work).restart(run_once())]);
    let first = wait_at_rest(DEADLINE, &handle, "worker").await;
    assert_eq!(first.exit_code, Some(4), "{first:?}");
    std::fs::remove_dir(&work).unwrap();
    let mut events = handle.subscribe();
    within(DEADLINE, "start_unit", handle.start_unit("worker")).await.unwrap();
    let exited = next_event(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Exited { .. })).await;
    let EventKind::Exited { reason: ExitReason::SpawnFailed(reason) } = &exited.kind else {
        panic!("{exited:?}");
    };
    assert!(reason.contains(&work.display().to_string()), "{reason:?}");
    let second = wait_at_rest(DEADLINE, &handle, "worker").await;
    assert_eq!((second.exit_code, second.pid), (None, None), "{second:?}");
    assert!(second.last_error.as_deref().is_some_and(|error| error.contains(&work.display().to_string())));
    std::fs::create_dir(&work).unwrap();
    within(DEADLINE, "start_unit", handle.start_unit("worker")).await.unwrap();
    let shown = format!("in {}", work.canonicalize().unwrap().display());
    wait_tail(DEADLINE, &handle, "worker", "the third run's line", |tail| tail.len() == 2).await;
    let third = wait_at_rest(DEADLINE, &handle, "worker").await;
    assert_eq!(third.exit_code, Some(4), "{third:?}");
    assert_eq!(handle.tail("worker", 10).unwrap(), [shown.clone(), shown]);
    shut_down(&handle, 1).await;
}

// ---------------------------------------------------------------------------
// Success codes

/// Duplicates and the bounds 0 and 255 are accepted; every code outside
/// `0..=255`, however far, is a typed error naming it, at `build()` and
/// at `add()`.
#[tokio::test]
async fn success_codes_at_and_beyond_their_bounds() {
    for codes in [vec![i32::MIN], vec![i32::MAX], vec![0, 256], vec![-255], vec![0, 0, -1]] {
        let shown = codes.iter().find(|code| !(0..=255).contains(*code)).unwrap().to_string();
        let error = build_error(sh("job", "true").success_codes(codes.clone()));
        assert!(
            matches!(&error, Error::InvalidSetting { setting: "success_codes", reason, .. } if reason.contains(&shown)),
            "{codes:?}: {error:?}"
        );
    }
    let on_failure = || no_delay().on(RestartOn::Failure).max_restarts(MaxRestarts::AtMost(1));
    let handle = start([sh("dup", "exit 255").success_codes([255, 255, 0, 0]).restart(on_failure())]);
    let error = within(DEADLINE, "add", handle.add(sh("late", "true").success_codes([300]))).await.unwrap_err();
    assert!(matches!(&error, Error::InvalidSetting { setting: "success_codes", .. }), "{error:?}");
    let status = wait_state(DEADLINE, &handle, "dup", UnitState::Exited).await;
    assert_eq!((status.exit_code, status.restart_count, status.last_error), (Some(255), 0, None));
    shut_down(&handle, 1).await;
}

/// With `RestartOn::Always`, a success code restarts like any ending; once
/// the limit is reached, a run that ended with a success code is `Exited`
/// ("`Failed` always means something failed") with no `last_error`, and a
/// run killed by a signal is `Failed` whatever codes are listed.
#[tokio::test]
async fn success_codes_with_restart_always_and_signals() {
    let always = || no_delay().on(RestartOn::Always).max_restarts(MaxRestarts::AtMost(2));
    let handle = start([
        sh("coded", "exit 7").success_codes([7]).restart(always()),
        // 9 and 137 listed: a SIGKILL is no exit code.
        sh("killed", "kill -KILL $$").success_codes([0, 9, 137]).restart(always()),
    ]);
    let coded = wait_at_rest(DEADLINE, &handle, "coded").await;
    assert_eq!(
        (coded.state, coded.exit_code, coded.restart_count, coded.last_error.clone()),
        (UnitState::Exited, Some(7), 2, None),
        "{coded:?}"
    );
    let killed = wait_at_rest(DEADLINE, &handle, "killed").await;
    assert_eq!((killed.state, killed.signal, killed.restart_count), (UnitState::Failed, Some(9), 2), "{killed:?}");
    assert!(killed.last_error.is_some(), "{killed:?}");
    let report = shut_down(&handle, 2).await;
    assert_eq!(report.exit_code(), 1, "a unit gave up: {report:#?}");
}

// ---------------------------------------------------------------------------
// Critical daemons

async fn critical_end(spec: DaemonSpec, poke: impl AsyncFnOnce(&SupervisorHandle)) -> (ShutdownReport, u32) {
    let name = spec.name().to_owned();
    let handle = start([DaemonSpec::new("bystander", "sleep").arg("1000"), spec.critical()]);
    let bystander = wait_running(DEADLINE, &handle, "bystander").await;
    poke(&handle).await;
    let report = within(DEADLINE, "the supervisor's end", handle.wait()).await;
    assert_each_once(&report);
    assert!(matches!(&report.cause, ShutdownCause::CriticalEnded { unit, .. } if *unit == name), "{report:#?}");
    assert_gone(bystander).await;
    (report, bystander)
}

/// A critical daemon that ends for good ends the supervisor: cleanly when
/// it exits 0 or with a listed success code, as a failure when it exits
/// with another code or is killed by a signal (sent with `handle.signal`).
#[tokio::test]
async fn a_critical_daemon_ends_the_supervisor_cleanly_only_on_success() {
    let on_failure = || run_once().on(RestartOn::Failure).max_restarts(MaxRestarts::AtMost(0));
    let cases: Vec<(&str, DaemonSpec, bool)> = vec![
        ("zero", sh("job", "exit 0").restart(on_failure()), false),
        ("listed", sh("job", "exit 143").success_codes([0, 143]).restart(on_failure()), false),
        ("code", sh("job", "exit 3").restart(on_failure()), true),
        ("never-code", sh("job", "exit 3").restart(run_once()), true),
    ];
    for (case, spec, failed) in cases {
        let (report, _) = critical_end(spec, async |_| {}).await;
        assert!(
            matches!(report.cause, ShutdownCause::CriticalEnded { failed: f, .. } if f == failed),
            "{case}: {report:#?}"
        );
        assert_eq!(report.exit_code(), i32::from(failed), "{case}: {report:#?}");
    }
    let sleeper = DaemonSpec::new("job", "sleep").arg("1000").success_codes([0, 9, 137]).restart(run_once());
    let (report, _) = critical_end(sleeper, async |handle| {
        wait_running(DEADLINE, handle, "job").await;
        handle.signal("job", Signal::KILL).unwrap();
    })
    .await;
    assert!(matches!(report.cause, ShutdownCause::CriticalEnded { failed: true, .. }), "{report:#?}");
    assert_eq!(report.exit_code(), 1);
}

// ---------------------------------------------------------------------------
// Stop signals

/// `stop_signal(KILL)`: the stop is at once, and it is a requested stop
/// (`Stopped`, signal 9, no `last_error`, not forced), not a failure.
#[tokio::test]
async fn a_sigkill_stop_signal_stops_at_once_as_a_requested_stop() {
    let handle = start([DaemonSpec::new("brutal", "sh")
        .args(["-c", "trap '' TERM; sleep 1000 & wait"])
        .stop_signal(Signal::KILL)
        .stop_timeout(Duration::from_secs(60))]);
    let pid = wait_running(DEADLINE, &handle, "brutal").await;
    let mut events = handle.subscribe();
    let began = Instant::now();
    within(DEADLINE, "stop_unit", handle.stop_unit("brutal")).await.unwrap();
    assert!(began.elapsed() < Duration::from_secs(5), "the stop took {:?}", began.elapsed());
    let stopped = next_event(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Stopped { .. })).await;
    assert!(matches!(stopped.kind, EventKind::Stopped { forced: false, .. }), "{stopped:?}");
    let status = handle.status("brutal").unwrap();
    assert_eq!((status.state, status.signal, status.last_error), (UnitState::Stopped, Some(9), None));
    assert_gone(pid).await;
    shut_down(&handle, 1).await;
}

/// Stop signals whose default action does not end a process (`STOP`,
/// `TSTP`, `CONT`, `CHLD`, `WINCH`): each stop waits the stop timeout, then
/// kills the group; none hangs, none leaves a process, each says it was
/// forced.
#[tokio::test]
async fn stop_signals_that_end_nothing_fall_back_to_sigkill_after_the_timeout() {
    let timeout = Duration::from_millis(300);
    let signals = [Signal::STOP, Signal::TSTP, Signal::CONT, Signal::CHLD, Signal::WINCH];
    let handle =
        start(signals.iter().map(|signal| {
            DaemonSpec::new(signal.name(), "sleep").arg("1000").stop_signal(*signal).stop_timeout(timeout)
        }));
    let mut pids = Vec::new();
    for signal in signals {
        pids.push(wait_running(DEADLINE, &handle, signal.name()).await);
    }
    let mut events = handle.subscribe();
    let began = Instant::now();
    let stops = signals.iter().map(|signal| handle.stop_unit(signal.name()));
    for result in within(DEADLINE, "the stops", futures_util::future::join_all(stops)).await {
        result.unwrap();
    }
    let took = began.elapsed();
    assert!(took >= timeout && took < Duration::from_secs(5), "the stops took {took:?}");
    for _ in signals {
        let stopped = next_event(DEADLINE, &mut events, |event| matches!(event.kind, EventKind::Stopped { .. })).await;
        assert!(matches!(stopped.kind, EventKind::Stopped { forced: true, .. }), "{stopped:?}");
    }
    for signal in signals {
        let status = handle.status(signal.name()).unwrap();
        assert_eq!((status.state, status.signal, status.last_error), (UnitState::Stopped, Some(9), None), "{signal}");
    }
    for pid in pids {
        assert_gone(pid).await;
    }
    shut_down(&handle, signals.len()).await;
}

/// A stop signal the program answers with an exit code, even one that is
/// not a success code: a requested stop, `Stopped` with that code and no
/// `last_error`; the shutdown report calls it graceful.
#[tokio::test]
async fn a_handled_stop_signal_ends_in_stopped_with_the_programs_code() {
    let handle = start([
        sh("hup", "trap 'exit 7' HUP; echo up; while :; do sleep 0.01; done").stop_signal(Signal::HUP),
        sh("usr1", "trap 'exit 0' USR1; echo up; while :; do sleep 0.01; done").stop_signal(Signal::USR1),
    ]);
    for name in ["hup", "usr1"] {
        wait_tail(DEADLINE, &handle, name, "the trap", |tail| tail == ["up"]).await;
    }
    within(DEADLINE, "stop_unit", handle.stop_unit("hup")).await.unwrap();
    let status = handle.status("hup").unwrap();
    assert_eq!(
        (status.state, status.exit_code, status.signal, status.last_error),
        (UnitState::Stopped, Some(7), None, None)
    );
    let pid = wait_running(DEADLINE, &handle, "usr1").await;
    let report = shut_down(&handle, 2).await;
    let usr1 = report.units.iter().find(|unit| unit.name == "usr1").unwrap();
    assert_eq!((usr1.state, usr1.outcome), (UnitState::Stopped, StopOutcome::Graceful), "{report:#?}");
    assert_eq!(report.exit_code(), 0, "{report:#?}");
    assert_gone(pid).await;
}

// ---------------------------------------------------------------------------
// handle.signal

/// `handle.signal` on what is not a running daemon: a group, a path into a
/// group, names that only look like paths, a daemon of a group in backoff,
/// and on every unit once the supervisor has ended.
#[tokio::test]
async fn signals_to_groups_paths_and_after_the_end_are_typed_errors() {
    let handle = Supervisor::builder()
        .group(
            GroupSpec::new("g")
                .daemon(DaemonSpec::new("d", "sleep").arg("1000"))
                .daemon(sh("flaky", "exit 1").restart(RestartPolicy::new().delay(Duration::from_secs(3600)))),
        )
        .task(TaskSpec::new("t", |ctx: Context| async move { ctx.cancelled().await }))
        .daemon(sh("never-ready", "exec sleep 1000").readiness(Readiness::OutputLine("never".to_owned())))
        .daemon(DaemonSpec::new("waiter", "sleep").arg("1000").depends_on(["never-ready"]))
        .build()
        .unwrap()
        .start();
    let pid = wait_running(DEADLINE, &handle, "g/d").await;
    let never_ready = wait_running(DEADLINE, &handle, "never-ready").await;
    wait_state(DEADLINE, &handle, "waiter", UnitState::Waiting).await;
    assert!(matches!(handle.signal("waiter", Signal::HUP), Err(Error::NotRunning { .. })));
    assert!(matches!(handle.signal("g", Signal::HUP), Err(Error::WrongKind { .. })));
    assert!(matches!(handle.signal("t", Signal::HUP), Err(Error::WrongKind { .. })));
    for name in ["", "/", "d", "g/", "/g/d", "g//d", "g/d/", "g/d/x"] {
        let answer = handle.signal(name, Signal::HUP);
        assert!(matches!(answer, Err(Error::UnknownUnit { .. })), "{name:?}: {answer:?}");
    }
    wait_state(DEADLINE, &handle, "g/flaky", UnitState::Backoff).await;
    assert!(matches!(handle.signal("g/flaky", Signal::HUP), Err(Error::NotRunning { .. })));
    // SIGCONT to a running daemon does nothing to it.
    handle.signal("g/d", Signal::CONT).unwrap();
    assert!(alive(pid));
    shut_down(&handle, 6).await;
    for name in ["g/d", "g/flaky", "never-ready", "waiter"] {
        let answer = handle.signal(name, Signal::HUP);
        assert!(matches!(answer, Err(Error::NotRunning { .. })), "{name}: {answer:?}");
    }
    assert!(matches!(handle.signal("g", Signal::HUP), Err(Error::WrongKind { .. })));
    assert_gone(pid).await;
    assert_gone(never_ready).await;
}

/// During a shutdown a daemon still stopping can be signalled; a `SIGKILL`
/// sent that way ends its stop early, and the shutdown neither hangs nor
/// starts it again.
#[tokio::test]
async fn a_signal_during_the_shutdown_reaches_the_run_being_stopped() {
    let handle = start([sh("stubborn", "trap '' TERM; echo up; while :; do sleep 0.01; done")
        .stop_timeout(Duration::from_secs(60))
        .restart(no_delay())]);
    wait_tail(DEADLINE, &handle, "stubborn", "the trap", |tail| tail == ["up"]).await;
    let pid = wait_running(DEADLINE, &handle, "stubborn").await;
    let shutdown = tokio::spawn({
        let handle = handle.clone();
        async move { handle.shutdown().await }
    });
    wait_state(DEADLINE, &handle, "stubborn", UnitState::Stopping).await;
    assert!(handle.is_shutting_down());
    handle.signal("stubborn", Signal::KILL).unwrap();
    let report = within(DEADLINE, "the shutdown", shutdown).await.unwrap();
    assert_each_once(&report);
    assert_eq!(report.units[0].state, UnitState::Stopped, "{report:#?}");
    assert!(report.units[0].took < Duration::from_secs(10), "{report:#?}");
    let status = handle.status("stubborn").unwrap();
    assert_eq!((status.state, status.pid, status.restart_count), (UnitState::Stopped, None, 0), "{status:?}");
    assert!(matches!(handle.signal("stubborn", Signal::KILL), Err(Error::NotRunning { .. })));
    assert_gone(pid).await;
}

/// A signal sent with `handle.signal` that kills the daemon is an outside
/// kill: a failed run with the signal in its status and event, restarted
/// by the policy; with `RestartOn::Never` it stays down, with the signal
/// in `last_error`.
#[tokio::test]
async fn a_signal_that_kills_the_daemon_is_a_failed_run() {
    let handle = start([
        DaemonSpec::new("restarted", "sleep").arg("1000").restart(no_delay()),
        DaemonSpec::new("once", "sleep").arg("1000").restart(run_once()),
    ]);
    let mut events = handle.subscribe();
    let first = wait_running(DEADLINE, &handle, "restarted").await;
    handle.signal("restarted", Signal::TERM).unwrap();
    let exited = next_event(DEADLINE, &mut events, |event| {
        event.unit == "restarted" && matches!(event.kind, EventKind::Exited { .. })
    })
    .await;
    assert_eq!(exited.kind, EventKind::Exited { reason: ExitReason::Signal(15) });
    let status =
        wait_status(DEADLINE, &handle, "restarted", |status| status.restart_count == 1 && status.pid.is_some()).await;
    assert_eq!(status.signal, Some(15), "{status:?}");
    assert_gone(first).await;
    let once = wait_running(DEADLINE, &handle, "once").await;
    handle.signal("once", Signal::USR1).unwrap();
    let status = wait_at_rest(DEADLINE, &handle, "once").await;
    assert_eq!((status.signal, status.pid), (Some(10), None), "{status:?}");
    let error = status.last_error.expect("a failed run");
    assert!(error.contains("10") || error.contains("USR1"), "{error:?}");
    assert_gone(once).await;
    let second = status_pid(&handle, "restarted");
    shut_down(&handle, 2).await;
    assert_gone(second).await;
}

fn status_pid(handle: &SupervisorHandle, name: &str) -> u32 {
    handle.status(name).and_then(|status| status.pid).expect("a running unit")
}

// ---------------------------------------------------------------------------
// Output and the tail

/// The bounds at their extremes: `tail_lines(0)` and `tail_bytes(0)` keep
/// nothing, `tail_lines(1)` the last line, `usize::MAX` everything; a
/// byte bound of 1 keeps one entry, the marker; `handle.tail` with 0 and
/// `usize::MAX` lines. An output-line readiness still sees lines the tail
/// does not keep.
#[tokio::test]
async fn tail_bounds_at_zero_one_and_the_maximum() {
    let script = "for i in 1 2 3 4 5; do echo line$i; done; echo last";
    let handle = start([
        sh("lines-0", script).tail_lines(0).restart(run_once()),
        sh("bytes-0", script).tail_bytes(0).restart(run_once()),
        sh("lines-1", script).tail_lines(1).restart(run_once()),
        sh("bytes-1", script).tail_bytes(1).restart(run_once()),
        sh("max", script).tail_lines(usize::MAX).tail_bytes(usize::MAX).restart(run_once()),
        sh("ready-untailed", "echo i-am-ready; exec sleep 1000")
            .tail_lines(0)
            .readiness(Readiness::OutputLine("am-ready".to_owned())),
    ]);
    let all = ["line1", "line2", "line3", "line4", "line5", "last"];
    for name in ["lines-0", "bytes-0", "lines-1", "bytes-1", "max"] {
        let status = wait_at_rest(DEADLINE, &handle, name).await;
        assert_eq!(status.exit_code, Some(0), "{name}: {status:?}");
    }
    assert_eq!(handle.tail("lines-0", usize::MAX).unwrap(), Vec::<String>::new());
    assert_eq!(handle.tail("bytes-0", usize::MAX).unwrap(), Vec::<String>::new());
    assert_eq!(handle.tail("lines-1", usize::MAX).unwrap(), ["last"]);
    let one = handle.tail("bytes-1", usize::MAX).unwrap();
    assert_eq!(one.len(), 1, "{one:?}");
    assert!(one[0].starts_with("[…") && one[0].contains("bytes not kept"), "{one:?}");
    assert_eq!(handle.tail("max", usize::MAX).unwrap(), all);
    assert_eq!(handle.tail("max", 0).unwrap(), Vec::<String>::new());
    assert_eq!(handle.tail("max", 1).unwrap(), ["last"]);
    let ready = within(DEADLINE, "ready", handle.wait_ready("ready-untailed")).await.unwrap();
    assert!(ready.ready);
    assert!(handle.tail("ready-untailed", usize::MAX).unwrap().is_empty());
    let pid = status_pid(&handle, "ready-untailed");
    shut_down(&handle, 6).await;
    assert_gone(pid).await;
}

/// The README's caveat: "The tail is per unit, not per run: lines of
/// earlier runs stay until pushed out by newer ones", and the tail is
/// complete when the state says the run has ended, for every run.
#[tokio::test]
async fn the_tail_keeps_the_lines_of_earlier_runs() {
    let dir = scratch_dir("runs");
    let script = r#"n=$(cat "$DIR/n" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$DIR/n"; echo "run $n"; echo "run $n again"; exit 1"#;
    let policy = || no_delay().max_restarts(MaxRestarts::AtMost(3));
    std::fs::create_dir(dir.join("b")).unwrap();
    let handle = start([
        sh("all", script).env("DIR", &dir).restart(policy()),
        sh("last-three", script).env("DIR", dir.join("b")).tail_lines(3).restart(policy()),
    ]);
    let status = wait_state(DEADLINE, &handle, "all", UnitState::Failed).await;
    assert_eq!(status.restart_count, 3);
    let expected: Vec<String> = (1..=4).flat_map(|n| [format!("run {n}"), format!("run {n} again")]).collect();
    assert_eq!(handle.tail("all", usize::MAX).unwrap(), expected);
    let status = wait_at_rest(DEADLINE, &handle, "last-three").await;
    let runs = status.restart_count + 1;
    let tail = handle.tail("last-three", usize::MAX).unwrap();
    let expected = [format!("run {} again", runs - 1), format!("run {runs}"), format!("run {runs} again")];
    assert_eq!(tail, expected, "{status:?}");
    shut_down(&handle, 2).await;
}

/// Empty lines, lone and doubled carriage returns, NULs and invalid UTF-8
/// on both streams, in arrival order.
#[tokio::test]
async fn odd_bytes_and_empty_lines_are_kept_as_the_readme_says() {
    let script = r"printf 'a\n\n\nb\n'; printf 'x\0y\n'; printf '\377\376\n'; printf '\r\n'; printf 'tail-no-newline'";
    let results = run_all(vec![sh("odd", script).restart(run_once())]).await;
    let (_, status, tail) = &results[0];
    assert_eq!(status.exit_code, Some(0), "{status:?}");
    assert_eq!(tail, &["a", "", "", "b", "x\0y", "\u{FFFD}\u{FFFD}", "", "tail-no-newline"]);
}

/// `Readiness::OutputLine` needs captured output; with `Output::Discard`
/// or `Output::Inherit` no line is ever read, so the unit can never become
/// ready and everything that depends on it waits for ever. A careless spec
/// the library could refuse, as it refuses an `OutputLine` on a task or an
/// empty text, with a typed error from `build()`.
#[tokio::test]
async fn an_output_line_readiness_without_captured_output_is_refused() {
    for output in [Output::Discard, Output::Inherit] {
        let spec = sh("web", "echo listening; exec sleep 1000")
            .output(output)
            .readiness(Readiness::OutputLine("listening".to_owned()));
        match Supervisor::builder().daemon(spec).build() {
            Err(Error::InvalidSetting { unit, setting, .. }) => {
                assert_eq!((unit.as_str(), setting), ("web", "readiness"), "{output:?}");
            }
            Err(other) => panic!("{output:?}: {other:?}"),
            Ok(sup) => {
                let handle = sup.start();
                let pid = wait_running(DEADLINE, &handle, "web").await;
                let ready = tokio::time::timeout(Duration::from_secs(2), handle.wait_ready("web")).await;
                shut_down(&handle, 1).await;
                assert_gone(pid).await;
                panic!("{output:?}: build() accepted the spec; wait_ready after 2 s: {ready:?}");
            }
        }
    }
}

/// A ready text with a line break is never found: the output is matched
/// one line at a time, each without its line break (and `\r` ends a piece
/// of a progress line). Refused by `build()` and by `add`, naming the text.
#[tokio::test]
async fn an_output_line_readiness_with_a_line_break_is_refused() {
    for text in ["listening\non", "ready\r", "\n"] {
        let spec = || sh("web", "echo listening; exec sleep 1000").readiness(Readiness::OutputLine(text.to_owned()));
        match Supervisor::builder().daemon(spec()).build() {
            Err(Error::InvalidSetting { unit, setting, reason }) => {
                assert_eq!((unit.as_str(), setting), ("web", "readiness"), "{text:?}");
                assert!(reason.contains(&format!("{text:?}")) && reason.contains("line break"), "{reason}");
            }
            other => panic!("{text:?}: {:?}", other.map(drop)),
        }
        let handle = start([]);
        let added = within(DEADLINE, "add", handle.add(spec())).await;
        assert!(matches!(added, Err(Error::InvalidSetting { setting: "readiness", .. })), "{text:?}: {added:?}");
        shut_down(&handle, 0).await;
    }
}

// ---------------------------------------------------------------------------
// Temporary daemons

/// A temporary daemon that ends is forgotten: `Exited` event, `Finished`,
/// `Removed`; then `status` is `None`, `tail`, `remove`, `signal`,
/// `start_unit` and `wait_state` say `UnknownUnit` (none hangs), the name
/// can be added again, and the shutdown report does not name it.
#[tokio::test]
async fn a_temporary_daemon_is_forgotten_once_it_ends() {
    let handle = start([DaemonSpec::new("sleeper", "sleep").arg("1000")]);
    let sleeper = wait_running(DEADLINE, &handle, "sleeper").await;
    let mut events = handle.subscribe();
    within(DEADLINE, "add", handle.add(sh("job", "echo bye; exit 3").restart(run_once()).temporary())).await.unwrap();
    let kinds = events_until(&mut events, "job", |kind| matches!(kind, EventKind::Removed)).await;
    assert!(kinds.contains(&EventKind::Exited { reason: ExitReason::Code(3) }), "{kinds:?}");
    assert!(handle.status("job").is_none());
    assert!(matches!(handle.tail("job", 10), Err(Error::UnknownUnit { .. })));
    assert!(matches!(within(DEADLINE, "remove", handle.remove("job")).await, Err(Error::UnknownUnit { .. })));
    assert!(matches!(handle.signal("job", Signal::HUP), Err(Error::UnknownUnit { .. })));
    assert!(matches!(within(DEADLINE, "start_unit", handle.start_unit("job")).await, Err(Error::UnknownUnit { .. })));
    assert!(matches!(
        within(DEADLINE, "wait_state", handle.wait_state("job", UnitState::Exited)).await,
        Err(Error::UnknownUnit { .. })
    ));
    assert_eq!(handle.unit_names(), ["sleeper"]);
    // A wait for the end of a temporary daemon, begun before it ends: the
    // unit is forgotten in the turn that ends it, so the wait may only say
    // it is gone (as documented for a unit removed meanwhile); it never hangs.
    within(DEADLINE, "add", handle.add(sh("waited", "sleep 0.1").restart(run_once()).temporary())).await.unwrap();
    let waited = within(DEADLINE, "wait_state", handle.wait_state("waited", UnitState::Exited)).await;
    assert!(
        matches!(&waited, Ok(status) if status.state == UnitState::Exited)
            || matches!(waited, Err(Error::UnknownUnit { .. })),
        "{waited:?}"
    );
    wait_for(DEADLINE, "`waited` to be forgotten", || handle.status("waited").is_none().then_some(())).await;
    // The name is free again.
    within(DEADLINE, "add", handle.add(sh("job", "echo again; exec sleep 1000").temporary())).await.unwrap();
    let pid = wait_running(DEADLINE, &handle, "job").await;
    wait_tail(DEADLINE, &handle, "job", "the new run's line", |tail| tail == ["again"]).await;
    let report = shut_down(&handle, 2).await;
    assert!(report.units.iter().any(|unit| unit.name == "job"));
    assert_gone(pid).await;
    assert_gone(sleeper).await;
}

/// A temporary daemon that cannot start fails, gives up and is forgotten;
/// the only trace of why is its `Exited` event, which names the program.
/// One stopped by hand stays (it has not ended for good) and can be started
/// again; one that is running can be removed.
#[tokio::test]
async fn temporary_daemons_that_cannot_start_or_are_stopped_by_hand() {
    let handle = start([DaemonSpec::new("sleeper", "sleep").arg("1000")]);
    let sleeper = wait_running(DEADLINE, &handle, "sleeper").await;
    let mut events = handle.subscribe();
    let missing =
        DaemonSpec::new("missing", "/no/such/program-xyz").restart(no_delay().max_restarts(MaxRestarts::AtMost(1)));
    within(DEADLINE, "add", handle.add(missing.temporary())).await.unwrap();
    let kinds = events_until(&mut events, "missing", |kind| matches!(kind, EventKind::Removed)).await;
    let reasons: Vec<&String> = kinds
        .iter()
        .filter_map(|kind| match kind {
            EventKind::Exited { reason: ExitReason::SpawnFailed(reason) } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{kinds:?}");
    assert!(reasons.iter().all(|reason| reason.contains("/no/such/program-xyz")), "{reasons:?}");
    assert!(kinds.iter().any(|kind| matches!(kind, EventKind::GaveUp { .. })), "{kinds:?}");
    assert!(handle.status("missing").is_none());

    within(DEADLINE, "add", handle.add(DaemonSpec::new("held", "sleep").arg("1000").temporary())).await.unwrap();
    let first = wait_running(DEADLINE, &handle, "held").await;
    within(DEADLINE, "stop_unit", handle.stop_unit("held")).await.unwrap();
    assert_eq!(handle.status("held").map(|status| status.state), Some(UnitState::Stopped));
    assert_gone(first).await;
    within(DEADLINE, "start_unit", handle.start_unit("held")).await.unwrap();
    let second = wait_running(DEADLINE, &handle, "held").await;
    let removed = within(DEADLINE, "remove", handle.remove("held")).await.unwrap();
    assert_eq!((removed.state, removed.outcome), (UnitState::Stopped, StopOutcome::Graceful), "{removed:?}");
    assert_gone(second).await;
    shut_down(&handle, 1).await;
    assert_gone(sleeper).await;
}

// ---------------------------------------------------------------------------
// Programs that are not programs

/// A program named without a `/` that the `PATH` lookup finds as a
/// directory, or as a file that is not executable: the error says which
/// one it found and what it is, not "is it executable?" of a directory.
#[tokio::test]
async fn a_bare_name_found_on_path_as_a_directory_or_a_plain_file_says_so() {
    let dir = scratch_dir("on-path");
    std::fs::create_dir(dir.join("mytool")).unwrap();
    std::fs::write(dir.join("myscript"), "#!/bin/sh\necho hi\n").unwrap();
    let path = std::env::join_paths([dir.to_path_buf(), PathBuf::from("/usr/bin"), PathBuf::from("/bin")]).unwrap();
    let once = || no_delay().max_restarts(MaxRestarts::AtMost(0));
    let specs = ["mytool", "myscript"]
        .map(|program| DaemonSpec::new(program, program).env("PATH", &path).restart(once()))
        .to_vec();
    let results = run_all(specs).await;
    let errors: Vec<String> =
        results.iter().map(|(_, status, _)| status.last_error.clone().unwrap_or_default()).collect();
    let tool = dir.join("mytool").display().to_string();
    let script = dir.join("myscript").display().to_string();
    assert!(errors[0].contains(&format!("`{tool}`, where PATH finds it, is a directory, not a program")), "{errors:?}");
    assert!(errors[1].contains(&format!("`{script}`, where PATH finds it, is not executable")), "{errors:?}");
}

/// Files that cannot be run: each is a failed run whose `last_error` names
/// the program and the cause, with the hint that fits (a directory is not
/// told to be made executable).
#[tokio::test]
async fn files_that_are_not_programs_fail_with_a_fitting_reason() {
    let dir = scratch_dir("not-programs");
    let write = |name: &str, text: &str, mode: u32| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        path
    };
    let not_executable = write("not-executable", "#!/bin/sh\necho hi\n", 0o644);
    let shebang_to_dir = write("shebang-to-dir", "#!/tmp\necho hi\n", 0o755);
    let empty = write("empty", "", 0o755);
    let dangling = dir.join("dangling");
    std::os::unix::fs::symlink(dir.join("gone"), &dangling).unwrap();
    let fifo = dir.join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let once = || no_delay().max_restarts(MaxRestarts::AtMost(0));
    let cases: Vec<(&str, PathBuf, Vec<&str>)> = vec![
        ("not-executable", not_executable, vec!["not-executable", "executable?"]),
        ("shebang-to-dir", shebang_to_dir, vec!["shebang-to-dir"]),
        ("dangling", dangling, vec!["dangling", "no such file"]),
        ("fifo", fifo, vec!["fifo", "ermission denied"]),
        ("dir-with-slash", PathBuf::from("/tmp/"), vec!["/tmp/", "ermission denied", "a directory, not a program"]),
        ("dir", PathBuf::from("/tmp"), vec!["/tmp", "a directory, not a program"]),
        ("dot", PathBuf::from("."), vec!["`.`", "a directory, not a program"]),
        ("dot-dot", PathBuf::from(".."), vec!["`..`", "a directory, not a program"]),
    ];
    let specs: Vec<DaemonSpec> = cases
        .iter()
        .map(|(name, path, _)| DaemonSpec::new(*name, path).restart(once()))
        .chain([DaemonSpec::new("empty", &empty).restart(once())])
        .collect();
    let results = run_all(specs).await;
    for ((name, status, _), (_, _, needles)) in results.iter().zip(&cases) {
        assert_eq!(status.state, UnitState::Failed, "{name}: {status:?}");
        let error = status.last_error.clone().unwrap_or_else(|| panic!("{name}: no last_error"));
        for needle in needles {
            assert!(error.contains(needle), "{name}: {error:?} should mention {needle:?}");
        }
    }
    // An empty executable file: the kernel refuses it; the C library may run
    // it with `sh` instead (and it does nothing). Either is an honest ending.
    let (_, status, _) = &results[cases.len()];
    assert!(
        status.exit_code == Some(0) || status.last_error.as_deref().is_some_and(|error| error.contains("empty")),
        "{status:?}"
    );
}

/// The same file, a script without a `#!` line, run by its path and found
/// on a `PATH` set with `env`: it behaves the same, failing each time with
/// a reason that says the `#!` line is missing. It once ran under `/bin/sh`
/// when found on a `PATH` set with `env` (std then execs with `execvp`,
/// which falls back to a shell) and failed with a bare "Exec format error"
/// when named by its path.
#[tokio::test]
async fn a_script_without_a_shebang_behaves_the_same_however_it_is_found() {
    let dir = scratch_dir("no-shebang");
    let path = dir.join("script");
    std::fs::write(&path, "echo ran\n").unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let results = run_all(vec![
        DaemonSpec::new("by-path", &path).restart(run_once()),
        DaemonSpec::new("by-path-with-env-path", &path).env("PATH", "/usr/bin:/bin").restart(run_once()),
        DaemonSpec::new("on-env-path", "script")
            .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
            .restart(run_once()),
    ])
    .await;
    let outcomes: Vec<(Option<i32>, Vec<String>)> =
        results.iter().map(|(_, status, tail)| (status.exit_code, tail.clone())).collect();
    assert!(outcomes.windows(2).all(|pair| pair[0] == pair[1]), "{outcomes:?}");
    for (name, status, _) in &results {
        if let Some(error) = &status.last_error {
            assert!(error.contains("#!"), "{name}: {error:?} does not say the `#!` line is missing");
        }
    }
}

/// A daemon's own settings (`env`, `args`, `success_codes`, ...) are checked
/// like every other setting: a problem in a group names the unit by its
/// path, as the readiness check beside it does, from `build()` and from
/// `add_to()`. Today they name the bare unit name (`d`, not `g/d`): with a
/// `db` in two groups, the error does not say which.
#[tokio::test]
async fn daemon_setting_errors_name_the_unit_by_its_path() {
    let bad = || DaemonSpec::new("d", "true").env("A=B", "1");
    let error = Supervisor::builder().group(GroupSpec::new("g").daemon(bad())).build().map(drop).unwrap_err();
    assert!(matches!(&error, Error::InvalidSetting { unit, setting: "env", .. } if unit == "g/d"), "{error:?}");
    let error = Supervisor::builder()
        .group(GroupSpec::new("g").daemon(DaemonSpec::new("d", "")))
        .build()
        .map(drop)
        .unwrap_err();
    assert!(matches!(&error, Error::EmptyProgram { unit } if unit == "g/d"), "{error:?}");
    let handle = Supervisor::builder().group(GroupSpec::new("g")).build().unwrap().start();
    let error = within(DEADLINE, "add_to", handle.add_to("g", bad())).await.unwrap_err();
    shut_down(&handle, 1).await;
    assert!(matches!(&error, Error::InvalidSetting { unit, setting: "env", .. } if unit == "g/d"), "{error:?}");
}

/// The README: "`build()?; // Err: every problem at once (names, programs,
/// policies, settings)`". A daemon with several bad settings reports only
/// the first one its checks meet; the user fixes one, builds, and meets
/// the next.
#[test]
fn every_bad_setting_of_one_daemon_is_reported_at_once() {
    let spec = DaemonSpec::new("d", "true").arg("a\0b").env("A=B", "1").current_dir("/tm\0p").success_codes([]);
    let error = build_error(spec);
    let settings: Vec<&str> = match &error {
        Error::Problems(problems) => problems
            .iter()
            .filter_map(|problem| match problem {
                Error::InvalidSetting { setting, .. } => Some(*setting),
                _ => None,
            })
            .collect(),
        Error::InvalidSetting { setting, .. } => vec![*setting],
        other => panic!("{other:?}"),
    };
    for wanted in ["args", "env", "current_dir", "success_codes"] {
        assert!(settings.contains(&wanted), "{wanted} is not reported: {error}");
    }
}

/// `Debug` of a spec shows the environment's keys, never its values.
#[test]
fn a_specs_debug_shows_env_keys_but_no_values() {
    let spec = DaemonSpec::new("d", "true").env("API_TOKEN", "hunter2-secret").env_remove("OTHER");
    let shown = format!("{spec:?}");
    assert!(shown.contains("API_TOKEN") && shown.contains("OTHER"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

/// A program found on a `PATH` given with `env` gets the name it was given
/// as its `argv[0]`, as when the supervisor's own `PATH` finds it, not the
/// path where it was found.
#[tokio::test]
async fn a_program_found_on_a_given_path_keeps_its_name_as_argv0() {
    let results = run_all(vec![
        DaemonSpec::new("given-path", "sh")
            .args(["-c", "echo \"$0\""])
            .env("PATH", "/usr/bin:/bin")
            .restart(run_once()),
        DaemonSpec::new("own-path", "sh").args(["-c", "echo \"$0\""]).restart(run_once()),
    ])
    .await;
    for (name, status, tail) in &results {
        assert_eq!(status.exit_code, Some(0), "{name}: {status:?}");
        assert_eq!(tail, &["sh"], "{name}");
    }
}

/// `Readiness::OutputLine`: "the line is in the unit's tail by then". The
/// readiness was once told just before the line went into the tail, so a
/// `tail` right after `wait_ready` could miss it.
#[tokio::test]
async fn a_unit_ready_by_a_line_has_the_line_in_its_tail() {
    for round in 0..20 {
        let spec = sh("d", "echo before; echo listening on 8080; exec sleep 30")
            .readiness(supervisor::Readiness::OutputLine("listening".into()));
        let handle = Supervisor::builder().daemon(spec).build().unwrap().start();
        tokio::time::timeout(DEADLINE, handle.wait_ready("d")).await.expect("ready in time").unwrap();
        let tail = handle.tail("d", 10).unwrap();
        handle.shutdown().await;
        assert_eq!(tail, ["before", "listening on 8080"], "round {round}");
    }
}
