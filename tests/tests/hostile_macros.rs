//! Hostile and careless use of `supervise!` and `#[supervised]` checked at
//! run time: manifests that compile must build and run as described.
//! Compile-time cases are the `ui/hostile_macro_*.rs` UI tests.

use std::time::Duration;

use supervisor::{Context, UnitState, supervise, supervised};

#[path = "support/deadline.rs"]
mod deadline;
use deadline::{watch_status, within};

/// Generous: only a hang reaches it.
const DEADLINE: Duration = Duration::from_secs(20);

async fn idle(ctx: Context) {
    ctx.ready();
    ctx.cancelled().await;
}

async fn failing(_ctx: Context) -> Result<(), String> {
    Err("boom".to_owned())
}

mod jobs {
    use supervisor::{Context, supervised};

    /// An #[supervised] fn in another module, named in the manifest by path.
    #[supervised(restart = "1ms", max = 0)]
    pub(crate) async fn report(ctx: Context) {
        ctx.ready();
        ctx.cancelled().await;
    }
}

/// Never restarted by its own policy.
#[supervised(on = "never")]
async fn once(_ctx: Context) -> Result<(), String> {
    Err("once".to_owned())
}

supervise! {
    /// Names that are keywords, not identifiers, or not ASCII.
    pub(crate) struct Odd;
    daemon r#type = ["sleep", "30"];
    daemon "web-1" = "sleep 30";
    daemon "日本" = "sleep 30";
    daemon " lead" = "sleep 30";
    task r#match = idle;
    group r#loop {} {
        task "a.b" = idle;
        task jobs::report { depends_on = ["a.b"] };
    }
}

supervise! {
    pub(crate) struct SelfNames;
    task self = idle;
    task type = idle;
    daemon Self = "sleep 30";
    daemon crate = "sleep 30";
    group super {} { task x = idle; }
}

#[tokio::test]
async fn keyword_and_odd_names_build_run_and_have_fields() {
    let odd = Odd::start();
    let handle = odd.handle().clone();
    for name in ["type", "web-1", "日本", " lead", "match", "loop/a.b", "loop/report"] {
        watch_status(DEADLINE, &handle, name, |status| status.state == UnitState::Running).await;
    }
    assert_eq!(odd.r#type.path(), "type");
    assert_eq!(odd.web_1.path(), "web-1");
    assert_eq!(odd.日本.path(), "日本");
    assert_eq!(odd._lead.path(), " lead");
    assert_eq!(odd.r#loop.a_b.path(), "loop/a.b");
    assert_eq!(odd.r#loop.report.path(), "loop/report");
    assert!(odd.r#match.wait_ready().await.is_ok());
    let _ = handle.shutdown().await;
}

#[tokio::test]
async fn self_and_crate_names_are_units() {
    let services = SelfNames::start();
    let handle = services.handle().clone();
    for name in ["self", "Self", "crate", "super/x", "type"] {
        watch_status(DEADLINE, &handle, name, |status| status.state == UnitState::Running).await;
    }
    // A keyword names a task as it names a daemon or a group.
    assert_eq!(services.r#type.path(), "type");
    let _ = handle.shutdown().await;
}

#[tokio::test]
async fn manifest_options_keep_the_fns_own_policy() {
    // `task once { max = 3 }` adds to the fn's own `on = "never"`.
    let sup = supervise! {
        task once { max = 3 };
    };
    let handle = sup.start();
    let status = watch_status(DEADLINE, &handle, "once", |status| !status.state.is_active()).await;
    assert_eq!(status.state, UnitState::Exited, "{status:?}");
    assert_eq!(status.restarts_total, 0, "{status:?}");
    let _ = handle.shutdown().await;
}

#[tokio::test]
async fn manifest_options_override_the_fns_own() {
    let sup = supervise! {
        task failing = failing { restart = "1ms", max = 2 };
        task jobs::report { max = 1 };
    };
    let handle = sup.start();
    let status = watch_status(DEADLINE, &handle, "failing", |status| status.state == UnitState::Failed).await;
    assert_eq!(status.restarts_total, 2, "{status:?}");
    watch_status(DEADLINE, &handle, "report", |status| status.state == UnitState::Running).await;
    let _ = handle.shutdown().await;
}

#[tokio::test]
async fn two_manifests_in_one_fn_and_one_in_a_block() {
    #[supervised]
    async fn local(ctx: Context) {
        ctx.cancelled().await;
    }
    let a = supervise! { task local; };
    let b = supervise! { task local; task other = local; };
    let (a, b) = (a.start(), b.start());
    watch_status(DEADLINE, &a, "local", |status| status.state == UnitState::Running).await;
    watch_status(DEADLINE, &b, "other", |status| status.state == UnitState::Running).await;
    let _ = a.shutdown().await;
    let _ = b.shutdown().await;
}

#[tokio::test]
async fn typed_manifest_inside_a_fn_with_a_local_supervised_fn() {
    #[supervised]
    async fn local(ctx: Context) {
        ctx.ready();
        ctx.cancelled().await;
    }
    supervise! {
        struct Local;
        task local;
        group g {} { task local; }
    }
    let services = Local::start();
    services.local.wait_ready().await.unwrap();
    services.g.local.wait_ready().await.unwrap();
    assert_eq!(services.g.local.path(), "g/local");
    let _ = services.handle().shutdown().await;
}

#[tokio::test]
async fn command_strings_split_like_a_shell_and_env_keys_unraw() {
    let sup = supervise! {
        daemon q = r#"sh -c 'printf "<%s>" "$0" "$r"; echo' "a b" "c\"d""# { env = { r = "raw" }, on = "never" };
        daemon k = ["sh", "-c", "echo \"[$type]\""] { env = { r#type = "kw" }, on = "never" };
    };
    let handle = sup.start();
    watch_status(DEADLINE, &handle, "q", |status| status.state == UnitState::Exited).await;
    watch_status(DEADLINE, &handle, "k", |status| status.state == UnitState::Exited).await;
    let q = handle.tail("q", 10).unwrap();
    assert!(q.iter().any(|line| line.contains("<a b><raw>")), "{q:?}");
    let k = handle.tail("k", 10).unwrap();
    assert!(k.iter().any(|line| line.contains("[kw]")), "{k:?}");
    let _ = handle.shutdown().await;
}

#[tokio::test]
async fn dependencies_across_odd_names_order_the_start() {
    let sup = supervise! {
        task "first one" = idle;
        daemon r#then = "sleep 30" { depends_on = ["first one"], ready = started };
        group "last-group" { depends_on = [r#then] } { task inner = idle; }
    };
    let handle = sup.start();
    let status = watch_status(DEADLINE, &handle, "last-group/inner", |status| status.state == UnitState::Running).await;
    assert!(status.running);
    assert!(handle.status("first one").unwrap().ready);
    let _ = handle.shutdown().await;
}

supervise! {
    /// `gen` is reserved from edition 2024 (this crate's): its field is
    /// `r#gen`, as a keyword's is.
    pub(crate) struct Reserved;
    daemon "gen" = "sleep 30";
    group r#gen2 {} { task r#gen = idle; }
}

#[tokio::test]
async fn a_unit_named_gen_has_a_raw_field() {
    let services = Reserved::start();
    assert!(within(DEADLINE, "gen", services.r#gen.wait_ready()).await.is_ok());
    assert!(within(DEADLINE, "gen2/gen", services.gen2.r#gen.wait_ready()).await.is_ok());
    assert_eq!((services.r#gen.path(), services.gen2.r#gen.path()), ("gen", "gen2/gen"));
    let _ = services.handle().shutdown().await;
}

/// A manifest written by a `macro_rules!` macro, which hands each option's
/// value on as an `expr` fragment (an invisible group around its tokens).
macro_rules! api_after_db {
    ($($key:ident = $value:expr),*) => {
        supervise! {
            task db = idle;
            task api = idle { $($key = $value),* };
        }
    };
}

#[tokio::test]
async fn option_values_handed_on_as_fragments_are_read_as_written() {
    let sup = api_after_db!(depends_on = [db], ready = notified, liveness = exec("true"), max = -1, restart = "1s");
    let handle = sup.start();
    within(DEADLINE, "api", handle.wait_ready("api")).await.expect("api is ready");
    let db = handle.status("db").expect("db");
    let api = handle.status("api").expect("api");
    assert!(db.last_start <= api.last_start, "api started after db: {db:?} {api:?}");
    let _ = handle.shutdown().await;
}

/// A module whose own types are called `str`, `bool` and `u32` (legal
/// Rust): the expansion names the primitives by a path of its own.
#[allow(non_camel_case_types, dead_code)]
mod own_primitives {
    use supervisor::{Context, supervise, supervised};

    struct str;
    struct bool;
    struct u32;

    #[supervised(restart = "1s", window = "1m", window_max = 3, on = "failure")]
    pub(crate) async fn worker(ctx: Context) {
        ctx.ready();
        ctx.cancelled().await;
    }

    supervise! {
        pub(crate) struct Typed;
        task worker;
        daemon other = "sleep 30";
    }

    pub(crate) fn untyped() -> supervisor::Supervisor {
        supervise! { task worker; daemon other = "sleep 30"; }
    }
}

#[tokio::test]
async fn a_module_with_types_named_like_primitives_expands() {
    let typed = own_primitives::Typed::start();
    assert!(within(DEADLINE, "worker", typed.worker.wait_ready()).await.is_ok());
    let _ = typed.handle().shutdown().await;
    let handle = own_primitives::untyped().start();
    assert!(within(DEADLINE, "worker", handle.wait_ready("worker")).await.is_ok());
    let _ = handle.shutdown().await;
}
