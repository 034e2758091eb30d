//! The `sql` headline group: claim+start throughput of the BBS on the SQL stores —
//! 10,000 ActualLRPs (100 DesiredLRPs × 100 instances desired through the `Bbs`), each
//! claimed then started from 16 concurrent writers; the median of three rounds, each on
//! a fresh database.
//!
//! SQLite runs on a file in a temporary directory (WAL). PostgreSQL uses
//! `DIEGO_BENCH_POSTGRES_URL` or `DIEGO_TEST_POSTGRES_URL` when set (in a fresh schema),
//! else starts a private temporary server with `scripts/postgres-test-server.sh` and
//! stops it afterwards; when neither works the figure is skipped with the reason.
//! `failover_ms` ([`crate::failover`]): two BBS processes on that PostgreSQL with a 15 s
//! lease, the active one killed with SIGKILL, time to the first write through the standby.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use anyhow::Context;
use diego_core::bbs::auctioneer_client::RecordingAuctioneer;
use diego_core::prelude::*;
use diego_core::store::sql::SqlOptions;
use diego_core::store::{ActualLrpFilter, PostgresStore, SqliteStore, Store};
use diego_core::{ActualLrpKey, Bbs};

/// DesiredLRPs in the scenario.
pub const LRPS: usize = 100;
/// Instances of each.
pub const INSTANCES: i32 = 100;
/// Concurrent writers.
pub const WRITERS: usize = 16;

async fn claim_start_rate(store: Arc<dyn Store>) -> anyhow::Result<f64> {
    let bbs = Bbs::builder()
        .store(store)
        .auctioneer(Arc::new(RecordingAuctioneer::new()))
        .build();
    for i in 0..LRPS {
        bbs.desire_lrp(crate::bbs::realistic_lrp(i, INSTANCES))
            .await?;
    }
    // Index-major order: at any moment the 16 writers claim instances of 16 different
    // processes, as reps on many cells do. (In process-major order they would queue on
    // the BBS's per-process lock and measure one writer at a time.)
    let mut keys: Vec<ActualLrpKey> = bbs
        .actual_lrps(&ActualLrpFilter::default())
        .await?
        .into_iter()
        .map(|a| a.key.clone())
        .collect();
    keys.sort_by(|a, b| (a.index, &a.process_guid).cmp(&(b.index, &b.process_guid)));
    let rate = crate::bbs::claim_start_keys(&bbs, keys, WRITERS).await?;
    let rows = bbs.actual_lrps(&ActualLrpFilter::default()).await?;
    let running = rows
        .iter()
        .filter(|a| a.state == diego_core::ActualLrpState::Running)
        .count();
    anyhow::ensure!(
        running == LRPS * INSTANCES as usize,
        "{running} of {} instances are RUNNING",
        LRPS * INSTANCES as usize
    );
    Ok(rate)
}

fn options() -> SqlOptions {
    SqlOptions::default().with_max_connections(WRITERS as u32)
}

/// A private PostgreSQL started by the repository's script; stopped when dropped (the
/// script's `read` ends when its stdin closes, and its EXIT trap stops the server).
struct TempPostgres {
    child: Child,
    url: String,
}

impl TempPostgres {
    fn start() -> anyhow::Result<Self> {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scripts/postgres-test-server.sh"
        );
        anyhow::ensure!(std::path::Path::new(script).exists(), "{script} is missing");
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -e; source '{script}'; start_test_postgres; echo \"$DIEGO_TEST_POSTGRES_URL\"; read -r _ || true"
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot run bash")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let url = line.trim().to_owned();
        if !url.starts_with("postgres://") {
            let _ = child.wait();
            anyhow::bail!("the script did not start PostgreSQL");
        }
        Ok(TempPostgres { child, url })
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let _ = self.child.wait();
    }
}

/// Rounds per store: each a fresh database; the figure is their median (one 10,000-op
/// round of a few seconds swings by ±20 % on a 2-core machine).
pub const ROUNDS: usize = 3;

/// The median of `rounds` runs of `f` (given the round number).
fn median_of(
    rounds: usize,
    mut f: impl FnMut(usize) -> anyhow::Result<f64>,
) -> anyhow::Result<f64> {
    let mut values = (0..rounds)
        .map(&mut f)
        .collect::<anyhow::Result<Vec<f64>>>()?;
    values.sort_by(f64::total_cmp);
    Ok(values[values.len() / 2])
}

/// Prints `sqlite_claim_start_per_sec`, `pg_claim_start_per_sec` (each the median of
/// [`ROUNDS`] rounds) and `failover_ms`.
pub fn run() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    let dir = std::env::temp_dir().join(format!("diego-bench-sqlite-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sqlite = median_of(ROUNDS, |round| {
        rt.block_on(async {
            let file = dir.join(format!("bench-{round}.db"));
            let store = SqliteStore::open_with(&file, options()).await?;
            claim_start_rate(Arc::new(store)).await
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
    crate::print_figure("sqlite_claim_start_per_sec", sqlite?, "ops/s");

    let from_env = std::env::var("DIEGO_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("DIEGO_TEST_POSTGRES_URL"))
        .ok()
        .filter(|u| !u.is_empty());
    let (url, _server) = match from_env {
        Some(url) => (url, None),
        None => match TempPostgres::start() {
            Ok(server) => (server.url.clone(), Some(server)),
            Err(e) => {
                let why = format!("no PostgreSQL URL given and none could be started: {e:#}");
                crate::print_skipped("pg_claim_start_per_sec", &why);
                crate::print_skipped("failover_ms", &why);
                return Ok(());
            }
        },
    };
    let pg = median_of(ROUNDS, |round| {
        let schema = format!("bench_{}_{round}", std::process::id());
        rt.block_on(async {
            let store =
                Arc::new(PostgresStore::connect_with(&url, Some(&schema), options()).await?);
            let rate = claim_start_rate(store.clone()).await;
            // Leave a shared server as it was.
            let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(store.pool())
                .await;
            rate
        })
    });
    crate::print_figure("pg_claim_start_per_sec", pg?, "ops/s");

    let failover = crate::failover::measure(&url)?;
    crate::print_figure("failover_ms", failover, "ms");
    Ok(())
}
