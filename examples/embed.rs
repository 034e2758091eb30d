//! Embed diego-rs in your own process with the Rust API, no HTTP: a BBS, the auctioneer,
//! convergence and one cell composed by hand (what `Cluster` does for you), then an LRP
//! desired, run, crashed and restarted on simulated containers.
//!
//! Run: `cargo run --example embed`

use std::sync::Arc;
use std::time::Duration;

use diego_auction::AuctionRunner;
use diego_core::convergence::Converger;
use diego_core::prelude::*;
use diego_core::store::ActualLrpFilter;
use diego_core::{ActualLrpState, Bbs, DesiredLrp, MemoryStore, RunAction};
use diego_executor::{Executor, ExecutorConfig, LocalReps, Rep, RepConfig, Resources};
use diego_garden::{FakeBackend, FakeScript, FakeStep};
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        // 1. The BBS on a store, with the auctioneer and the way to reach cells.
        let reps = Arc::new(LocalReps::new());
        let auctioneer = AuctionRunner::new();
        let bbs = Bbs::builder()
            .store(Arc::new(MemoryStore::new()))
            .auctioneer(Arc::new(auctioneer.clone()))
            .rep_client(reps.clone())
            .build();
        let api: Arc<dyn BbsApi> = Arc::new(bbs.clone());
        let cancel = CancellationToken::new();

        // 2. The auction rounds and convergence, as background tasks of this process.
        tokio::spawn(
            auctioneer
                .builder(api.clone(), reps.clone())
                .run(cancel.clone()),
        );
        let converger = Converger::builder(bbs.clone()).build();
        tokio::spawn({
            let cancel = cancel.clone();
            async move { converger.run(cancel).await }
        });

        // 3. One cell: an executor over a container backend, and its rep.
        let backend = FakeBackend::new();
        backend.set_program("/app/server", |_| {
            // Serves for two seconds, then crashes.
            FakeScript::new()
                .then(FakeStep::Sleep(Duration::from_secs(2)))
                .then(FakeStep::Exit(1))
        });
        let executor = Executor::builder(Arc::new(backend))
            .config(
                ExecutorConfig::default()
                    .with_cell_id("cell-1")
                    .with_total_resources(Resources {
                        memory_mb: 4096,
                        disk_mb: 8192,
                        containers: 64,
                    }),
            )
            .build()
            .await?;
        let rep = Rep::new(api.clone(), executor, RepConfig::new("cell-1"));
        rep.register().await?;
        reps.insert(rep.clone());
        tokio::spawn({
            let cancel = cancel.clone();
            async move { rep.run(cancel).await }
        });

        // 4. Desire an LRP and watch it run, crash and come back.
        bbs.desire_lrp(DesiredLrp::new(
            "web",
            "apps",
            "preloaded:cflinuxfs4",
            2,
            RunAction::new("/app/server", "vcap"),
        ))
        .await?;
        for second in 0..6 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let rows = bbs.actual_lrps(&ActualLrpFilter::default()).await?;
            let states: Vec<String> = rows
                .iter()
                .map(|r| format!("#{} {} (crashes: {})", r.key.index, r.state, r.crash_count))
                .collect();
            println!("t+{}s: {}", second + 1, states.join(", "));
            if rows
                .iter()
                .all(|r| r.crash_count >= 1 && r.state == ActualLrpState::Running)
            {
                println!("both instances crashed once and were restarted at once");
                break;
            }
        }
        cancel.cancel();
        Ok(())
    })
}
