//! The `bbs` headline group: claim+start throughput, listing and memory at 250,000
//! ActualLRPs on the MemoryStore.

use std::sync::Arc;
use std::time::Instant;

use diego_core::bbs::auctioneer_client::RecordingAuctioneer;
use diego_core::events::EventItem;
use diego_core::prelude::*;
use diego_core::store::ActualLrpFilter;
use diego_core::{
    ActualLrpInstanceKey, ActualLrpKey, ActualLrpNetInfo, Bbs, Check, CheckDefinition, DesiredLrp,
    EnvironmentVariable, PortMapping, Routes, RunAction,
};
use futures::StreamExt;

/// DesiredLRPs in the scenario.
pub const LRPS: usize = 2_500;
/// Instances of each.
pub const INSTANCES: i32 = 100;

/// A DesiredLRP with realistic fields: routes, env, a run action, a health check.
pub fn realistic_lrp(i: usize, instances: i32) -> DesiredLrp {
    let pg = format!("app-{i:05}-3f9c2d1e-5b7a-4c8e-9d6f-1a2b3c4d5e6f");
    let mut d = DesiredLrp::new(
        pg.as_str(),
        "cf-apps",
        "preloaded:cflinuxfs4",
        instances,
        RunAction::new("/home/vcap/app/bin/server", "vcap").with_args(["--port", "8080"]),
    );
    d.scheduling_info.memory_mb = 256;
    d.scheduling_info.disk_mb = 1_024;
    d.scheduling_info.log_guid = pg.clone();
    d.scheduling_info.routes = Routes::http(&[&format!("app-{i}.apps.example.com")], 8080);
    d.run_info.ports = vec![8080];
    d.run_info.env = (0..8)
        .map(|k| EnvironmentVariable::new(format!("VAR_{k}"), format!("value-{k}-{i}")))
        .collect();
    d.run_info.check_definition = Some(CheckDefinition {
        checks: vec![Check::http(8080, "/health")],
        ..Default::default()
    });
    d.run_info.log_source = "APP/PROC/WEB".into();
    d
}

/// A BBS holding `lrps` × `instances` UNCLAIMED ActualLRPs.
pub async fn populated(lrps: usize, instances: i32) -> anyhow::Result<Bbs> {
    let bbs = Bbs::builder()
        .auctioneer(Arc::new(RecordingAuctioneer::new()))
        .build();
    for i in 0..lrps {
        bbs.desire_lrp(realistic_lrp(i, instances)).await?;
    }
    Ok(bbs)
}

fn rss_mb() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096.0 / (1024.0 * 1024.0))
}

/// Claims then starts every instance once, from `writers` concurrent tasks; returns the
/// pairs per second.
pub async fn claim_start_all(bbs: &Bbs, writers: usize) -> anyhow::Result<f64> {
    let keys: Vec<ActualLrpKey> = bbs
        .actual_lrps(&ActualLrpFilter::default())
        .await?
        .into_iter()
        .map(|a| a.key.clone())
        .collect();
    claim_start_keys(bbs, keys, writers).await
}

/// Claims then starts each of `keys` once, writer `w` of `writers` taking keys `w`,
/// `w + writers`, ...; returns the pairs per second.
pub async fn claim_start_keys(
    bbs: &Bbs,
    keys: Vec<ActualLrpKey>,
    writers: usize,
) -> anyhow::Result<f64> {
    let keys = Arc::new(keys);
    let n = keys.len();
    let start = Instant::now();
    let mut handles = Vec::new();
    for w in 0..writers {
        let bbs = bbs.clone();
        let keys = keys.clone();
        handles.push(tokio::spawn(async move {
            let cell = format!("cell-{w:03}");
            let net = ActualLrpNetInfo {
                address: "10.0.1.7".into(),
                ports: vec![PortMapping {
                    container_port: 8080,
                    host_port: 61_000,
                    ..Default::default()
                }],
                ..Default::default()
            };
            let mut i = w;
            while i < keys.len() {
                let key = &keys[i];
                let ik = ActualLrpInstanceKey::new(format!("inst-{i}"), cell.as_str());
                bbs.claim_actual_lrp(key, &ik).await?;
                bbs.start_actual_lrp(key, &ik, &net, true).await?;
                i += writers;
            }
            Ok::<(), diego_core::Error>(())
        }));
    }
    for h in handles {
        h.await??;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Prints `bbs_rss_250k_mb`, `bbs_claim_start_per_sec` and `bbs_list_actual_250k_ms`.
pub fn run() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let bbs = populated(LRPS, INSTANCES).await?;
        match rss_mb() {
            Some(mb) => crate::print_figure("bbs_rss_250k_mb", mb, "MB"),
            None => crate::print_skipped("bbs_rss_250k_mb", "/proc/self/statm is not readable"),
        }

        // One subscriber drains the LRP events throughout.
        let mut events = bbs.events().subscribe_lrp(None);
        let drain = tokio::spawn(async move {
            let mut seen = 0u64;
            while let Some(item) = events.next().await {
                match item {
                    EventItem::Event(_) => seen += 1,
                    EventItem::Lagged { missed } => seen += missed,
                }
            }
            seen
        });
        let rate = claim_start_all(&bbs, 16).await?;
        crate::print_figure("bbs_claim_start_per_sec", rate, "ops/s");
        drop(drain);

        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            let rows = bbs.actual_lrps(&ActualLrpFilter::default()).await?;
            let ms = start.elapsed().as_secs_f64() * 1_000.0;
            anyhow::ensure!(
                rows.len() == LRPS * INSTANCES as usize,
                "listed {} rows",
                rows.len()
            );
            drop(rows);
            best = best.min(ms);
        }
        crate::print_figure("bbs_list_actual_250k_ms", best, "ms");
        Ok(())
    })
}
