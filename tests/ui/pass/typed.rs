//! The typed form: a type per manifest and per group, documented and
//! warning-free under strict lints, public or not, at the top of a module,
//! inside a fn body and with the crate renamed.
#![deny(warnings, unused_qualifications, missing_docs, unreachable_pub)]
#![deny(missing_debug_implementations, unused_results, rust_2018_idioms)]

use supervisor::{Context, SupervisorBuilder, SupervisorHandle, UnitRef, supervise, supervised};

/// A documented public task.
#[supervised(restart = "1s")]
pub async fn indexer(ctx: Context) {
    ctx.cancelled().await;
}

async fn api(ctx: Context) -> anyhow::Result<()> {
    ctx.cancelled().await;
    Ok(())
}

supervise! {
    pub struct Services;
    strategy = "one_for_one";
    intensity = 10; period = "60s";
    group storage { strategy = "rest_for_one", intensity = 3, period = "30s", restart = "5s", max = 2 } {
        daemon postgres = "postgres -D /var/lib/pg" {
            ready = tcp("127.0.0.1:5432"), readiness_period = "1s", readiness_timeout = "500ms",
            success_codes = [0, 143],
        };
        task migrate = |_ctx: Context| async {} { depends_on = [postgres], on = "failure" };
        group "hot-cache" { depends_on = [migrate] } {
            daemon redis = "redis-server" { ready = output("Ready to accept connections") };
            task indexer { depends_on = [redis], ready = notified, watchdog = "30s" };
        }
    }
    task api = api { depends_on = [storage], ready = notified, critical };
    daemon "web-1" = "web" {
        depends_on = [api],
        liveness = http("http://127.0.0.1:8081/health"), liveness_period = "10s", liveness_failures = 3,
    };
    daemon r#type = "kind" { liveness = exec("pg_isready -q"), liveness_initial_delay = "5s", liveness_successes = 1 };
}

mod private {
    use supervisor::{Context, supervise};

    async fn job(ctx: Context) {
        ctx.cancelled().await;
    }

    supervise! {
        /// Its own doc comment.
        pub(crate) struct Jobs;
        task job = job;
        group nightly {} { task report = job; }
    }
}

pub extern crate supervisor as renamed;

mod renamed_crate {
    renamed::supervise! {
        struct Renamed;
        crate = "renamed";
        daemon web = "web";
    }

    pub(crate) fn check() {
        let _: fn() -> Renamed = Renamed::start;
    }
}

fn types(services: &Services) -> (&UnitRef, &UnitRef, &UnitRef, &UnitRef, &SupervisorHandle) {
    let storage: &UnitRef = &services.storage;
    (storage, &services.storage.hot_cache.indexer, &services.web_1, &services.r#type, services.handle())
}

fn main() {
    let _: fn() -> Services = Services::start;
    let _: fn() -> SupervisorBuilder = Services::builder;
    let _: fn(SupervisorHandle) -> Services = Services::from_handle;
    let _: fn(&Services) -> usize = |services| types(services).0.path().len();
    let _: fn(&private::Jobs) -> &UnitRef = |jobs| &jobs.nightly.report;
    let _: fn() -> private::Jobs = private::Jobs::start;
    renamed_crate::check();

    supervise! {
        struct Local;
        task api = api;
        group g {} { task indexer; }
    }
    let _: fn(&Local) -> (&UnitRef, &UnitRef, &UnitRef) = |local| (&local.api, &local.g, &local.g.indexer);
    let _: fn(&Local) -> String = |local| format!("{local:?} {:?}", local.g);
}
