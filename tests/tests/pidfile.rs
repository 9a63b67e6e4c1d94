//! The PID file: one instance at a time, stale files replaced, removed at
//! shutdown.

use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::time::Duration;

use supervisor::{Context, Error, PidFile, Supervisor, TaskSpec};

/// A fresh path in a fresh directory for each test; the directory and all in
/// it go when the returned guard drops.
fn fresh_path(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new().prefix("supervisor-pidfile-").tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

fn contents(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// The PID of a process that has already exited.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn a_second_instance_is_refused_and_the_file_goes_with_the_first() {
    let (_dir, path) = fresh_path("app.pid");
    let first = PidFile::create(&path).unwrap();
    assert_eq!(first.path(), path);
    assert_eq!(contents(&path), format!("{}\n", std::process::id()));

    let error = PidFile::create(&path).unwrap_err();
    match &error {
        Error::AlreadyRunning { path: refused, pid } => {
            assert_eq!(refused, &path);
            assert_eq!(*pid, std::process::id());
        }
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    assert!(error.to_string().contains("belongs to running process"), "{error}");
    // The refused attempt left the file, and nothing else, as it was.
    assert_eq!(contents(&path), format!("{}\n", std::process::id()));
    assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);

    drop(first);
    assert!(!path.exists());
    let again = PidFile::create(&path).unwrap();
    drop(again);
    assert!(!path.exists());
}

/// A name as long as a file name may be (255 bytes), some of its
/// characters wider than a byte: the file is made, and goes with its
/// holder. Its temporary name, the name with a suffix, was too long.
#[test]
fn a_pid_file_with_the_longest_name_a_file_may_have() {
    for name in ["p".repeat(251) + ".pid", "é".repeat(125) + "x.pid"] {
        assert_eq!(name.len(), 255);
        let (dir, path) = fresh_path(&name);
        let held = PidFile::create(&path).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(contents(&path), format!("{}\n", std::process::id()));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
        drop(held);
        assert!(!path.exists());
    }
}

/// Set in a run of this test binary where no file may grow (`RLIMIT_FSIZE`
/// of 0): the directory to make the PID file in.
const NO_ROOM: &str = "PIDFILE_TEST_NO_ROOM";

/// A PID file that cannot be written (a full disk, a quota; here a limit on
/// file sizes): an error, and nothing left behind. Its temporary file was
/// left, one per attempt, under a name no later instance removes.
#[test]
fn a_pid_file_that_cannot_be_written_leaves_no_temporary_file() {
    let (dir, _) = fresh_path("unused");
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "with_no_room_a_pid_file_fails_and_leaves_nothing", "--nocapture", "--test-threads", "1"])
        .env(NO_ROOM, dir.path())
        .output()
        .expect("run the child test");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && text.contains("1 passed"), "{text}");
}

/// The child of the test above; passes at once in any other run.
#[tokio::test]
async fn with_no_room_a_pid_file_fails_and_leaves_nothing() {
    let Some(dir) = std::env::var_os(NO_ROOM).map(PathBuf::from) else { return };
    // A write past the limit fails with EFBIG once SIGXFSZ no longer ends
    // the process, as it does by default.
    let _xfsz = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(25)).unwrap();
    let no_room = rustix::process::Rlimit { current: Some(0), maximum: None };
    rustix::process::setrlimit(rustix::process::Resource::Fsize, no_room).unwrap();
    for _ in 0..3 {
        let error = PidFile::create(dir.join("app.pid")).map(drop).unwrap_err();
        assert!(error.to_string().contains("cannot write it"), "{error}");
    }
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_stale_file_from_a_dead_process_is_replaced() {
    let (_dir, path) = fresh_path("stale.pid");
    std::fs::write(&path, format!("{}\n", dead_pid())).unwrap();
    let pid_file = PidFile::create(&path).unwrap();
    assert_eq!(contents(&path), format!("{}\n", std::process::id()));
    drop(pid_file);
    assert!(!path.exists());

    // Garbage left by something else is stale too when nobody holds it.
    std::fs::write(&path, "not a pid").unwrap();
    let pid_file = PidFile::create(&path).unwrap();
    assert_eq!(contents(&path), format!("{}\n", std::process::id()));
    drop(pid_file);
}

#[test]
fn an_unlocked_file_naming_a_live_process_is_not_taken_over() {
    let (_dir, path) = fresh_path("other.pid");
    let mut other = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(&path, format!("{}\n", other.id())).unwrap();
    let error = PidFile::create(&path).unwrap_err();
    assert!(matches!(error, Error::AlreadyRunning { pid, .. } if pid == other.id()), "{error:?}");
    other.kill().unwrap();
    other.wait().unwrap();
    assert_eq!(contents(&path), format!("{}\n", other.id()));
}

#[test]
fn a_file_that_cannot_be_written_is_an_io_error() {
    let (_dir, path) = fresh_path("x.pid");
    let path = path.with_file_name("missing-dir").join("x.pid");
    let error = PidFile::create(&path).unwrap_err();
    assert!(matches!(error, Error::Io { .. }), "{error:?}");
    assert!(error.to_string().contains("x.pid"), "{error}");
}

#[tokio::test]
async fn the_supervisor_holds_its_pid_file_until_shutdown() {
    let (_dir, path) = fresh_path("supervisor.pid");
    let build = || {
        Supervisor::builder()
            .task(TaskSpec::new("ticker", |ctx: Context| async move { ctx.cancelled().await }))
            .pid_file(&path)
            .build()
    };
    let handle = build().unwrap().start();
    assert_eq!(contents(&path), format!("{}\n", std::process::id()));
    assert!(matches!(build(), Err(Error::AlreadyRunning { .. })));
    // The refused build left the running instance's file alone.
    assert!(path.exists());

    let report = handle.shutdown().await;
    assert!(report.is_clean());
    assert!(!path.exists(), "the PID file outlived the shutdown");
    // And now another instance may start.
    let handle = build().unwrap().start();
    handle.shutdown().await;
    assert!(!path.exists());
}

/// A supervisor that ends with its runtime (dropped before a shutdown)
/// releases its PID file as it ends, not when its last handle goes: the
/// program may start another instance with the same file.
#[test]
fn a_supervisor_ended_with_its_runtime_releases_its_pid_file() {
    let (_dir, path) = fresh_path("dropped.pid");
    let build = || {
        Supervisor::builder()
            .task(TaskSpec::new("ticker", |ctx: Context| async move { ctx.cancelled().await }))
            .pid_file(&path)
            .build()
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let handle = runtime.block_on(async { build().unwrap().start() });
    assert!(path.exists());
    drop(runtime);
    let other = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report = other.block_on(async { tokio::time::timeout(Duration::from_secs(10), handle.wait()).await });
    let report = report.expect("the supervisor ended with its runtime");
    assert_eq!(report.cause, supervisor::ShutdownCause::RuntimeDropped);
    assert!(!path.exists(), "the PID file outlived the supervisor, held by its handle");
    let again = build();
    assert!(again.is_ok(), "{:?}", again.err());
    drop(handle);
}

/// Runs `PidFile::create(path)` on a thread of its own and waits for it at
/// most `DEADLINE`, so that a test fails, rather than hangs, when it blocks.
fn create_in_time(path: &std::path::Path) -> Result<PidFile, Error> {
    const DEADLINE: Duration = Duration::from_secs(10);
    let (sender, receiver) = std::sync::mpsc::channel();
    let path = path.to_owned();
    std::thread::spawn(move || {
        let _ = sender.send(PidFile::create(&path));
    });
    receiver.recv_timeout(DEADLINE).unwrap_or_else(|_| panic!("PidFile::create still runs after {DEADLINE:?}"))
}

fn assert_refused_as_not_a_regular_file(result: Result<PidFile, Error>, what: &str) {
    match result {
        Err(error @ Error::Io { .. }) => {
            let message = error.to_string();
            assert!(message.contains("not a regular file") && message.contains(what), "{message}");
        }
        other => panic!("expected an I/O error naming a {what}, got {other:?}"),
    }
}

#[test]
fn a_fifo_at_the_path_is_refused_at_once() {
    let (_dir, path) = fresh_path("fifo.pid");
    rustix::fs::mknodat(rustix::fs::CWD, &path, rustix::fs::FileType::Fifo, rustix::fs::Mode::from(0o644), 0)
        .expect("mkfifo");
    assert_refused_as_not_a_regular_file(create_in_time(&path), "FIFO");
    // Left as it was found, and nothing else left beside it.
    assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_fifo());
    assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);

    // Through the builder too.
    let error = Supervisor::builder().pid_file(&path).build().unwrap_err();
    assert!(error.to_string().contains("not a regular file"), "{error}");
}

#[test]
fn a_device_or_a_symlink_at_the_path_is_refused_at_once() {
    let (_dir, path) = fresh_path("zero.pid");
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    assert_refused_as_not_a_regular_file(create_in_time(&path), "symbolic link");
    assert_eq!(std::fs::read_link(&path).unwrap(), PathBuf::from("/dev/zero"));

    // A symbolic link to a regular file is refused as well: what it points
    // to is not ours to judge.
    let target = path.with_file_name("target");
    let stale = format!("{}\n", dead_pid());
    std::fs::write(&target, &stale).unwrap();
    let link = path.with_file_name("link.pid");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert_refused_as_not_a_regular_file(create_in_time(&link), "symbolic link");
    assert_eq!(contents(&target), stale);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
}

#[test]
fn a_huge_stale_file_is_read_only_in_part_and_replaced() {
    let (_dir, path) = fresh_path("huge.pid");
    // A sparse file of 1 TiB: reading it whole would take for ever.
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(1 << 40).unwrap();
    drop(file);
    let pid_file = create_in_time(&path).unwrap();
    assert_eq!(contents(&path), format!("{}\n", std::process::id()));
    drop(pid_file);
    assert!(!path.exists());
}

#[test]
fn the_loser_of_a_race_for_a_stale_file_is_told_the_truth() {
    let (_dir, path) = fresh_path("race.pid");
    let dead = dead_pid();
    std::fs::write(&path, format!("{dead}\n")).unwrap();
    // Another instance has locked the stale file to replace it, and has not
    // replaced it yet: the file names a dead process, but a live one holds
    // it.
    let winner = std::fs::File::open(&path).unwrap();
    rustix::fs::flock(&winner, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    let error = create_in_time(&path).unwrap_err();
    let message = error.to_string();
    assert!(!matches!(error, Error::AlreadyRunning { pid, .. } if pid == dead), "{message}");
    assert!(!message.contains(&format!("running process {dead}")), "{message}");
    assert!(message.contains("locked by another process"), "{message}");
    assert!(message.contains(&format!("{dead}")) && message.contains("not running"), "{message}");
    // The file is left to its holder.
    assert_eq!(contents(&path), format!("{dead}\n"));

    // Once the holder has put its own file in place, a newcomer is refused
    // with the holder's PID.
    let holder = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let replacement = path.with_file_name("replacement");
    std::fs::write(&replacement, format!("{}\n", holder.id())).unwrap();
    let lock = std::fs::File::open(&replacement).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    std::fs::rename(&replacement, &path).unwrap();
    drop(winner);
    let error = create_in_time(&path).unwrap_err();
    assert!(matches!(error, Error::AlreadyRunning { pid, .. } if pid == holder.id()), "{error:?}");
    kill(holder);
}

#[test]
fn two_instances_racing_for_a_stale_file_end_with_one_winner_named_truly() {
    let (_dir, path) = fresh_path("contest.pid");
    for _ in 0..50 {
        std::fs::write(&path, format!("{}\n", dead_pid())).unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    PidFile::create(&path)
                })
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|racer| racer.join().unwrap()).collect();
        let winners = results.iter().filter(|result| result.is_ok()).count();
        assert_eq!(winners, 1, "{results:?}");
        for result in &results {
            if let Err(error) = result {
                // The winner is this very process.
                assert!(matches!(error, Error::AlreadyRunning { pid, .. } if *pid == std::process::id()), "{error:?}");
            }
        }
        drop(results);
        assert!(!path.exists());
    }
}

fn kill(mut child: std::process::Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}
