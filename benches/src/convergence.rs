//! The `convergence` headline group: one full pass over 250,000 ActualLRPs of 2,500
//! DesiredLRPs on 1,000 cells (MemoryStore), with nothing to do and with 1% missing, 1% on
//! a vanished cell, 1% crashed past their backoff and 1% extra.

use std::sync::Arc;
use std::time::Duration;

use diego_core::bbs::rep_client::RecordingRepClient;
use diego_core::convergence::Converger;
use diego_core::prelude::*;
use diego_core::store::{ActualLrpFilter, Precondition, Record, WriteBatch};
use diego_core::{
    ActualLrp, ActualLrpInstanceKey, ActualLrpKey, ActualLrpNetInfo, ActualLrpState, Bbs,
    CellCapacity, CellId, CellPresence, Clock, ManualClock, Timestamp,
};

use crate::bbs::realistic_lrp;

const LRPS: usize = 2_500;
const INSTANCES: i32 = 100;
const CELLS: usize = 1_000;

fn cell_id(i: usize) -> CellId {
    CellId::new(format!("cell-{i:04}"))
}

/// A BBS with every instance RUNNING on one of `CELLS` live cells, in a fresh domain.
async fn converged_world(clock: Arc<ManualClock>) -> anyhow::Result<Bbs> {
    let bbs = Bbs::builder()
        .clock(clock)
        .auctioneer(Arc::new(
            diego_core::bbs::auctioneer_client::RecordingAuctioneer::new(),
        ))
        .rep_client(Arc::new(RecordingRepClient::new()))
        .build();
    for i in 0..CELLS {
        bbs.register_cell(&CellPresence {
            cell_id: cell_id(i),
            rep_address: format!("10.0.{}.{}:1800", i / 250, i % 250),
            capacity: CellCapacity {
                memory_mb: 65_536,
                disk_mb: 131_072,
                containers: 500,
            },
            ..Default::default()
        })
        .await?;
    }
    bbs.upsert_domain("cf-apps", Duration::ZERO).await?;
    let net = ActualLrpNetInfo {
        address: "10.0.0.1".into(),
        ..Default::default()
    };
    for i in 0..LRPS {
        bbs.desire_lrp(realistic_lrp(i, INSTANCES)).await?;
    }
    let rows = bbs.actual_lrps(&ActualLrpFilter::default()).await?;
    for (n, row) in rows.iter().enumerate() {
        let ik = ActualLrpInstanceKey::new(format!("inst-{n}"), cell_id(n % CELLS));
        bbs.claim_actual_lrp(&row.key, &ik).await?;
        bbs.start_actual_lrp(&row.key, &ik, &net, true).await?;
    }
    Ok(bbs)
}

/// Breaks 1% of the instances in each of four ways; returns the cells to drop.
async fn inject_faults(bbs: &Bbs, now: Timestamp) -> anyhow::Result<Vec<CellId>> {
    let rows = bbs.actual_lrps(&ActualLrpFilter::default()).await?;
    let one_percent = rows.len() / 100;
    // Missing: delete rows 0, 100, 200, ...
    let mut batch = WriteBatch::new();
    for row in rows.iter().step_by(100).take(one_percent) {
        batch.delete(
            diego_core::store::RecordKey::ActualLrp(diego_core::store::ActualLrpRowKey::of(row)),
            Precondition::None,
        );
    }
    // Crashed past backoff: rows 1, 101, ... CRASHED (3 crashes) an hour ago.
    for row in rows.iter().skip(1).step_by(100).take(one_percent) {
        let mut crashed = ActualLrp::clone(row);
        crashed.state = ActualLrpState::Crashed;
        crashed.instance_key = None;
        crashed.net_info = None;
        crashed.crash_count = 3;
        crashed.since = now - Duration::from_secs(3_600);
        crashed.modification_tag = row.modification_tag.incremented();
        batch.put(Record::actual_lrp(crashed), Precondition::None);
    }
    // Extra: two RUNNING rows above the desired count for half of the LRPs.
    for (n, row) in rows
        .iter()
        .filter(|r| r.key.index == 0)
        .take(one_percent / 2)
        .enumerate()
    {
        for extra in [INSTANCES, INSTANCES + 1] {
            let mut x = ActualLrp::clone(row);
            x.key = ActualLrpKey::new(row.key.process_guid.clone(), extra, row.key.domain.clone());
            x.instance_key = Some(ActualLrpInstanceKey::new(
                format!("extra-{n}-{extra}"),
                cell_id(n % 900),
            ));
            x.modification_tag = diego_core::ModificationTag::fresh();
            batch.put(Record::actual_lrp(x), Precondition::None);
        }
    }
    bbs.store().write(batch).await?;
    // On a vanished cell: the last 1% of the cells stop renewing.
    Ok((CELLS - CELLS / 100..CELLS).map(cell_id).collect())
}

/// Prints `converge_noop_250k_ms` and `converge_250k_ms`.
pub fn run() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let clock = Arc::new(ManualClock::new(Timestamp(1_767_225_600_000_000_000)));
        let bbs = converged_world(clock.clone()).await?;
        let converger = Converger::builder(bbs.clone()).build();

        let noop = converger.converge_once().await?;
        anyhow::ensure!(
            noop.actions_taken == 0 && noop.running == LRPS * INSTANCES as usize,
            "the no-op world was not converged: {noop:?}"
        );
        crate::print_figure(
            "converge_noop_250k_ms",
            noop.duration.as_secs_f64() * 1e3,
            "ms",
        );

        let lost = inject_faults(&bbs, clock.now()).await?;
        for id in &lost {
            bbs.remove_cell(id).await?;
        }
        let report = converger.converge_once().await?;
        let one = LRPS * INSTANCES as usize / 100;
        anyhow::ensure!(
            report.missing == one && report.crashed_restarted == one && report.extra == one,
            "unexpected pass: {report:?}"
        );
        anyhow::ensure!(
            report.suspected >= one - one / 10,
            "unexpected pass: {report:?}"
        );
        crate::print_figure(
            "converge_250k_ms",
            report.duration.as_secs_f64() * 1e3,
            "ms",
        );
        Ok(())
    })
}
