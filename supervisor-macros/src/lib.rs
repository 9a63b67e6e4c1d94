//! Compile-checked `#[supervised]` tasks and `supervise!` manifests for the
//! [`supervisor`](https://docs.rs/supervisor) crate.
//!
//! Use these macros through their re-exports, `supervisor::supervised` and
//! `supervisor::supervise`, where their documentation has runnable examples.
//! Both expand to the plain builder calls of the runtime crate; every
//! option is checked at compile time and every duration becomes a
//! `Duration` constant, so nothing is parsed at run time.

mod ast;
mod command;
mod duration;
mod errors;
mod expand;
mod fallback;
mod graph;
mod limits;
mod options;
mod policy;
mod probe;
mod signal;
mod strategy;
mod suffixes;
mod suggest;
mod typed;
mod valid;

use proc_macro::TokenStream;

/// Makes an `async fn` a supervised task with a restart policy.
///
/// ```text
/// #[supervised(restart = "5s", max = -1, on = "failure")]
/// async fn worker(ctx: Context) -> anyhow::Result<()> { ... }
/// ```
///
/// The fn stays an ordinary fn with its own name; `worker::spec()` returns
/// its `TaskSpec` and `worker::NAME` its unit name.
///
/// Options: `restart` (delay), `max` (`-1` = unlimited), `on`
/// (`"always" | "failure" | "never"`), `backoff`, `max_delay`, `jitter`,
/// `reset_after`, `window` + `window_max`, `stop_timeout`, `name`, and
/// `crate` (the path of the runtime crate when it is renamed); `critical`,
/// `ready`, `liveness` with their `readiness_*`/`liveness_*` settings, and
/// `watchdog`.
///
/// The fn's body is kept as tokens, never parsed: an error in it is the
/// compiler's, where it is, and the spec is still generated.
///
/// The fn must be a free fn: on an associated fn (in an `impl` or a
/// `trait`) the attribute is an error on the fn's name, which says what a
/// free fn would call instead. Without `self` or `Self` in it, an
/// associated fn has the tokens of a free one, so the attribute reads the
/// source file it is in to tell them apart.
///
/// The attribute makes a type of the fn's name (`worker::spec()`,
/// `worker::NAME`), so an fn named like a primitive type (`u8`, `str`,
/// `f64`, ...) is an error: that type would hide the primitive in the whole
/// module. Name the fn otherwise and keep the unit's name with
/// `name = "u8"`.
///
/// # Caveats
///
/// An fn named like a crate the package depends on (`futures`, `tracing`)
/// makes a type of that name, which hides the crate's paths in the module
/// (`tracing::info!` there is an error), and a manifest's `task futures;`
/// is ambiguous to rustc between the two: name the fn otherwise (and keep
/// the unit's name with `name = "futures"`), or write `task self::futures;`.
///
/// The file tells them apart by name: when one file has both a free and an
/// associated `#[supervised]` fn of the same name, or when another macro
/// wrote the attribute or the fn, the associated one is left to rustc's
/// error ("struct is not supported in `trait`s or `impl`s").
///
/// # Equivalent code
///
/// ```text
/// TaskSpec::new("worker", worker)
///     .restart(RestartPolicy::new()
///         .delay(Duration::new(5, 0))
///         .max_restarts(MaxRestarts::Unlimited)
///         .on(RestartOn::Failure))
/// ```
#[proc_macro_attribute]
pub fn supervised(args: TokenStream, item: TokenStream) -> TokenStream {
    supervised_tokens(args.into(), item.into()).into()
}

/// `#[supervised]` on `proc_macro2` tokens: parse, check, then expand, or
/// fall back to what causes no further errors.
fn supervised_tokens(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let mut errors = errors::Errors::default();
    suffixes::check(&args, &mut errors);
    let input = ast::supervised::parse(args, item, &mut errors);
    valid::supervised(&input, &mut errors);
    match (errors.into_result(), &input.function) {
        (Ok(()), Ok(function)) => {
            let item = &input.item;
            let expanded = expand::supervised(&input, function);
            quote::quote!(#item #expanded)
        }
        (Err(error), _) => fallback::supervised(&input, &error),
        (Ok(()), Err(_)) => unreachable!("an item that is not an fn is an error"),
    }
}

/// A manifest of daemons, tasks and groups, checked at compile time, that
/// evaluates to a `Supervisor`; with `pub struct Services;` as its first
/// line, it defines that type instead: a typed handle whose fields are the
/// units' `UnitRef`s, nested as the groups are.
///
/// ```text
/// let sup: Supervisor = supervise! {
///     shutdown_timeout = "30s";
///     daemon worker = "worker --port 8080" { restart = "5s", max = -1 };
///     daemon web = ["python3", "-m", "http.server", "8000"];
///     task ticker;
///     task cleanup = cleanup_loop { restart = "1s", max = 3 };
/// };
/// ```
///
/// Groups nest up to 64 levels, with their own strategy, intensity and
/// policy; `depends_on` names units of the same group:
///
/// ```text
/// supervise! {
///     strategy = "one_for_one";
///     intensity = 10; period = "60s";
///     group storage { strategy = "rest_for_one", intensity = 3, period = "30s", restart = "5s", max = 2 } {
///         daemon postgres = "postgres -D /var/lib/pg" { ready = tcp("127.0.0.1:5432") };
///         task migrate { depends_on = [postgres], ready = completed, on = "failure" };
///     }
///     task api { depends_on = [storage], ready = notified, critical };
/// }
/// ```
///
/// An unknown dependency (with the closest sibling), a cycle (on the
/// dependency that closes it), a unit of another group, a duplicate name
/// in a group, an unknown strategy and a malformed probe address are
/// compile errors on the offending token.
///
/// The typed form:
///
/// ```text
/// supervise! {
///     pub struct Services;
///     group storage {} { daemon postgres = "postgres"; }
///     task api = api { depends_on = [storage] };
/// }
///
/// let services = Services::start();          // or Services::from_handle(Services::builder()....build()?.start())
/// services.storage.postgres.restart().await?;
/// services.storage.stop().await?;            // ServicesStorage: Deref<Target = UnitRef>
/// services.handle().shutdown().await;
/// ```
///
/// # Equivalent code
///
/// ```text
/// Supervisor::builder()
///     .shutdown_timeout(Duration::new(30, 0))
///     .daemon(DaemonSpec::new("worker", "worker").args(["--port", "8080"])
///         .restart(RestartPolicy::new().delay(Duration::new(5, 0)).max_restarts(MaxRestarts::Unlimited)))
///     .daemon(DaemonSpec::new("web", "python3").args(["-m", "http.server", "8000"]))
///     .task(ticker::spec())
///     .task(TaskSpec::new("cleanup", cleanup_loop)
///         .restart(RestartPolicy::new().delay(Duration::new(1, 0)).max_restarts(MaxRestarts::AtMost(3))))
///     .build()
///     .unwrap() // the names and commands were checked at compile time
/// ```
#[proc_macro]
pub fn supervise(input: TokenStream) -> TokenStream {
    manifest_tokens(input.into()).into()
}

/// `supervise!` on `proc_macro2` tokens: parse, check, then expand, or
/// fall back to what causes no further errors.
fn manifest_tokens(input: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let mut errors = errors::Errors::default();
    suffixes::check(&input, &mut errors);
    let manifest = ast::manifest::parse(input, &mut errors);
    valid::manifest(&manifest, &mut errors);
    match errors.into_result() {
        Ok(()) => expand::manifest(&manifest),
        Err(error) => fallback::manifest(&manifest, &error),
    }
}
