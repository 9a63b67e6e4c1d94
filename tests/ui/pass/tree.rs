//! Three levels of groups with their strategies, intensity, policies,
//! dependencies, probes and critical units, settings of the root, and
//! daemon exit codes.

use supervisor::{Context, Supervisor, supervise, supervised};

#[supervised(restart = "1s")]
async fn indexer(ctx: Context) {
    ctx.cancelled().await;
}

async fn api(ctx: Context) -> anyhow::Result<()> {
    ctx.cancelled().await;
    Ok(())
}

fn main() {
    let sup: Supervisor = supervise! {
        strategy = "one_for_all";
        intensity = 10; period = "60s";
        shutdown_timeout = "30s";
        group storage { strategy = "rest_for_one", intensity = 3, period = "30s", restart = "5s", max = 2 } {
            daemon postgres = "postgres -D /var/lib/pg" {
                success_codes = [0, 143], critical, ready = tcp("127.0.0.1:5432"), readiness_failures = 2,
            };
            group cache { strategy = "one_for_one", critical = false, on = "failure" } {
                daemon redis = ["redis-server", "--port", "6380"] { stop_signal = "INT" };
                group warmers { intensity = 1, period = "1s", critical, depends_on = [redis] } {
                    task indexer { max = 1, ready = notified, watchdog = "10s" };
                    task "warm-up" = |_ctx: Context| async {} { on = "never", depends_on = [indexer] };
                }
            }
            task migrate = |_ctx: Context| async { Ok::<_, std::io::Error>(()) } {
                on = "failure", critical = true, depends_on = [postgres, cache],
                liveness = tcp("localhost:5432"), liveness_period = "1m",
            };
        }
        group "empty-options" {} {
            daemon job = "sh -c 'exit 3'" { success_codes = [3], max = 0 };
        }
        task api = api { critical, depends_on = ["empty-options", storage] };
    };
    let _ = sup;
}
