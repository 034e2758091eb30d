//! `failover_ms` (the `sql` group): two BBS processes on one PostgreSQL with a 15 s
//! lease; a writer desires tasks through a client that knows both; the active BBS is
//! killed with SIGKILL; the figure is the time from the kill to the first write the
//! standby acknowledges.
//!
//! The BBS processes are this very binary, re-executed with `DIEGO_HEADLINE_BBS` set
//! ([`serve_bbs_if_asked`]), configured like `diego bbs` through `DIEGO_BBS_*`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use diego_core::http::BbsClient;
use diego_core::prelude::*;
use diego_core::{DesireTaskRequest, RunAction, TaskDefinition, TaskGuid};

/// The lease the figure is taken with (Diego's lock TTL).
pub const LEASE_MS: u64 = 15_000;

const ROLE: &str = "DIEGO_HEADLINE_BBS";

/// When this process was started as one of the benchmark's BBS processes, runs it
/// until killed and returns its exit code; otherwise `None`.
pub fn serve_bbs_if_asked() -> Option<std::process::ExitCode> {
    std::env::var_os(ROLE)?;
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("headline bbs: no runtime: {e}");
            return Some(std::process::ExitCode::FAILURE);
        }
    };
    let result = rt.block_on(async {
        let config: diego_executor::daemon::BbsServerConfig =
            diego_executor::daemon::config::load(None, "DIEGO_BBS_")?;
        diego_executor::daemon::run_bbs(config, tokio_util::sync::CancellationToken::new()).await
    });
    Some(match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("headline bbs: {e}");
            std::process::ExitCode::FAILURE
        }
    })
}

struct Bbs {
    child: Child,
    url: String,
}

impl Drop for Bbs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_bbs(pg_url: &str, schema: &str) -> anyhow::Result<Bbs> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let exe = std::env::current_exe().context("cannot find the headline executable")?;
    let child = Command::new(exe)
        .env(ROLE, "1")
        .env("RUST_LOG", "warn")
        .env("DIEGO_BBS_LISTEN_ADDRESS", format!("127.0.0.1:{port}"))
        .env("DIEGO_BBS_STORE__KIND", "postgres")
        .env("DIEGO_BBS_STORE__URL", pg_url)
        .env("DIEGO_BBS_STORE__SCHEMA", schema)
        .env("DIEGO_BBS_LOCK_TTL_MS", LEASE_MS.to_string())
        .env("DIEGO_BBS_LOCK_RETRY_INTERVAL_MS", "1000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start a BBS process")?;
    Ok(Bbs {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

fn task(n: u64) -> DesireTaskRequest {
    DesireTaskRequest {
        task_guid: TaskGuid::new(format!("failover-{n}")),
        domain: "bench".into(),
        task_definition: TaskDefinition::new(
            "preloaded:cflinuxfs4",
            RunAction::new("/bin/true", "vcap"),
        ),
    }
}

/// Measures the failover on the PostgreSQL at `pg_url`: milliseconds from the kill of
/// the active BBS to the first write through the standby.
pub fn measure(pg_url: &str) -> anyhow::Result<f64> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let schema = format!("failover_{}", std::process::id());
    let mut a = start_bbs(pg_url, &schema)?;
    let mut b = start_bbs(pg_url, &schema)?;
    rt.block_on(async {
        let client = BbsClient::with_urls([a.url.clone(), b.url.clone()])?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while client.ping().await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "no BBS became active in 60 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut n = 0;
        for _ in 0..100 {
            client.desire_task(task(n)).await?;
            n += 1;
        }
        let a_active = BbsClient::new(a.url.clone())?.ping().await.is_ok();
        let active = if a_active { &mut a } else { &mut b };
        let _ = active.child.kill();
        let _ = active.child.wait();
        let killed = Instant::now();
        let deadline = killed + Duration::from_millis(LEASE_MS * 4);
        loop {
            if client.desire_task(task(n)).await.is_ok() {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the standby did not take over within {} ms",
                LEASE_MS * 4
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        n += 1;
        let elapsed = killed.elapsed();
        // Nothing acknowledged before the kill is lost.
        for i in 0..n {
            client
                .task_by_guid(&task(i).task_guid)
                .await
                .with_context(|| format!("acknowledged task {i} is missing after failover"))?;
        }
        Ok(elapsed.as_secs_f64() * 1000.0)
    })
}
