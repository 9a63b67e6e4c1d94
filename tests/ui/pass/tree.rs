//! Three levels of groups with their strategies, intensity, policies and
//! critical units, settings of the root, and daemon exit codes.

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
            daemon postgres = "postgres -D /var/lib/pg" { success_codes = [0, 143], critical };
            group cache { strategy = "one_for_one", critical = false, on = "failure" } {
                daemon redis = ["redis-server", "--port", "6380"] { stop_signal = "INT" };
                group warmers { intensity = 0, period = "1s", critical } {
                    task indexer { max = 1 };
                    task "warm-up" = |_ctx: Context| async {} { on = "never" };
                }
            }
            task migrate = |_ctx: Context| async { Ok::<_, std::io::Error>(()) } { on = "failure", critical = true };
        }
        group "empty-options" {} {
            daemon job = "sh -c 'exit 3'" { success_codes = [3], max = 0 };
        }
        task api = api { critical };
    };
    let _ = sup;
}
