//! The `e2e` headline group: whole clusters in one process.
//!
//! - `e2e_fake_instances_per_sec`: 100,000 instances (1,000 LRPs × 100) desired on 1,000
//!   FakeBackend cells; instances RUNNING per second of wall time until all are.
//! - `e2e_process_200_running_ms`: 200 instances of the fixture app with TCP health checks
//!   on 4 ProcessBackend cells, desire → all RUNNING.
//! - `crash_restart_ms`: a RUNNING fixture app instance (no checks) is killed → RUNNING again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diego_core::prelude::*;
use diego_core::store::ActualLrpFilter;
use diego_core::{ActualLrpState, Check, CheckDefinition, DesiredLrp, Presence, RunAction};
use diego_executor::cluster::BackendFactory;
use diego_executor::{Cluster, Resources};
use diego_garden::{ContainerBackend, FakeBackend, FakeScript, FakeStep, ProcessBackend};

async fn count_running(c: &Cluster) -> anyhow::Result<usize> {
    Ok(c.bbs()
        .actual_lrps(&ActualLrpFilter::default())
        .await?
        .iter()
        .filter(|r| r.presence == Presence::Ordinary && r.state == ActualLrpState::Running)
        .count())
}

async fn wait_running(c: &Cluster, n: usize, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while count_running(c).await? < n {
        if Instant::now() >= deadline {
            anyhow::bail!(
                "not all {n} instances RUNNING within {limit:?}: {}",
                instance_summary(c).await?
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

/// How many instances are in each state, and the first crash reasons and placement
/// errors: what a failed wait reports.
async fn instance_summary(c: &Cluster) -> anyhow::Result<String> {
    let rows = c.bbs().actual_lrps(&ActualLrpFilter::default()).await?;
    let mut states = std::collections::BTreeMap::<String, usize>::new();
    let mut reasons = std::collections::BTreeSet::new();
    for r in &rows {
        *states
            .entry(format!("{:?}/{:?}", r.state, r.presence))
            .or_default() += 1;
        for reason in [&r.crash_reason, &r.placement_error] {
            if !reason.is_empty() && reasons.len() < 5 {
                reasons.insert(reason.clone());
            }
        }
    }
    Ok(format!("{states:?}, reasons {reasons:?}"))
}

async fn fake_cluster_rate() -> anyhow::Result<f64> {
    let factory: BackendFactory = Arc::new(|_| {
        let b = FakeBackend::new();
        b.set_program("/app/server", |_| FakeScript::new().then(FakeStep::Forever));
        Ok(Arc::new(b) as Arc<dyn ContainerBackend>)
    });
    let c = Cluster::builder(factory)
        .cells(1_000)
        .cell_resources(Resources {
            memory_mb: 65_536,
            disk_mb: 131_072,
            containers: 500,
        })
        .start()
        .await?;
    let start = Instant::now();
    for i in 0..1_000 {
        let mut d = DesiredLrp::new(
            format!("app-{i:04}").as_str(),
            "bench",
            "preloaded:cflinuxfs4",
            100,
            RunAction::new("/app/server", "vcap"),
        );
        d.scheduling_info.memory_mb = 64;
        d.scheduling_info.disk_mb = 64;
        c.bbs().desire_lrp(d).await?;
    }
    wait_running(&c, 100_000, Duration::from_secs(120)).await?;
    let rate = 100_000.0 / start.elapsed().as_secs_f64();
    c.shutdown().await;
    Ok(rate)
}

/// Why a figure that needs the fixture app is skipped.
pub(crate) const NO_FIXTURE_APP: &str =
    "diego-fixture-app is not next to headline (cargo build --release --workspace --bins)";

/// The fixture app next to this binary, when it was built.
pub(crate) fn fixture_app() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.join("diego-fixture-app");
    p.exists().then_some(p)
}

async fn process_cluster(dir: &std::path::Path, cells: usize) -> anyhow::Result<Cluster> {
    let base = dir.to_path_buf();
    let factory: BackendFactory = Arc::new(move |id| {
        Ok(Arc::new(ProcessBackend::new(base.join(id.as_str()))?) as Arc<dyn ContainerBackend>)
    });
    Ok(Cluster::builder(factory)
        .cells(cells)
        .executor_config(|c| c.with_apply_action_user(false))
        .start()
        .await?)
}

fn fixture_lrp(app: &std::path::Path, instances: i32, checks: bool) -> DesiredLrp {
    let mut d = DesiredLrp::new(
        "fixture",
        "bench",
        "preloaded:cflinuxfs4",
        instances,
        RunAction::new(app.to_string_lossy(), "vcap"),
    );
    d.scheduling_info.memory_mb = 32;
    d.run_info.ports = vec![8080];
    if checks {
        d.run_info.check_definition = Some(CheckDefinition {
            checks: vec![Check::tcp(8080)],
            ..Default::default()
        });
    }
    d
}

async fn process_200_ms(app: &std::path::Path) -> anyhow::Result<f64> {
    let dir = std::env::temp_dir().join(format!("diego-e2e-200-{}", std::process::id()));
    let c = process_cluster(&dir, 4).await?;
    let start = Instant::now();
    c.bbs().desire_lrp(fixture_lrp(app, 200, true)).await?;
    let r = wait_running(&c, 200, Duration::from_secs(60)).await;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    r.map(|()| ms)
}

async fn crash_restart_ms(app: &std::path::Path) -> anyhow::Result<f64> {
    let dir = std::env::temp_dir().join(format!("diego-e2e-crash-{}", std::process::id()));
    let c = process_cluster(&dir, 1).await?;
    c.bbs().desire_lrp(fixture_lrp(app, 1, false)).await?;
    wait_running(&c, 1, Duration::from_secs(30)).await?;
    let row = c
        .bbs()
        .actual_lrps(&ActualLrpFilter::default())
        .await?
        .remove(0);
    let net = row
        .net_info
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no net info"))?;
    let url = format!("http://{}:{}/exit/9", net.address, net.ports[0].host_port);
    let start = Instant::now();
    let _ = reqwest::Client::new().post(url).send().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = c.bbs().actual_lrps(&ActualLrpFilter::default()).await?;
        if rows
            .iter()
            .any(|r| r.state == ActualLrpState::Running && r.crash_count == 1)
        {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the instance did not come back");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ms = start.elapsed().as_secs_f64() * 1e3;
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ms)
}

/// Prints the group's figures.
pub fn run() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let rate = fake_cluster_rate().await?;
        crate::print_figure("e2e_fake_instances_per_sec", rate, "instances/s");
        match fixture_app() {
            None => {
                crate::print_skipped("e2e_process_200_running_ms", NO_FIXTURE_APP);
                crate::print_skipped("crash_restart_ms", NO_FIXTURE_APP);
            }
            Some(app) => {
                crate::print_figure(
                    "e2e_process_200_running_ms",
                    process_200_ms(&app).await?,
                    "ms",
                );
                crate::print_figure("crash_restart_ms", crash_restart_ms(&app).await?, "ms");
            }
        }
        Ok(())
    })
}
