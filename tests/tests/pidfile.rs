//! The PID file: one instance at a time, stale files replaced, removed at
//! shutdown.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use supervisor::{Context, Error, PidFile, Supervisor, TaskSpec};

/// A fresh path in a fresh directory for each test.
fn fresh_path(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "supervisor-pidfile-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
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
    let path = fresh_path("app.pid");
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

#[test]
fn a_stale_file_from_a_dead_process_is_replaced() {
    let path = fresh_path("stale.pid");
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
    let path = fresh_path("other.pid");
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
    let path = fresh_path("x.pid").with_file_name("missing-dir").join("x.pid");
    let error = PidFile::create(&path).unwrap_err();
    assert!(matches!(error, Error::Io { .. }), "{error:?}");
    assert!(error.to_string().contains("x.pid"), "{error}");
}

#[tokio::test]
async fn the_supervisor_holds_its_pid_file_until_shutdown() {
    let path = fresh_path("supervisor.pid");
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
