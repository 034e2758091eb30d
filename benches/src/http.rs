//! The `http` headline group: BBS HTTP API throughput (`http_desire_task_per_sec`).
//! It also prints the router's figures (`router_rps`, `router_nginx_ratio`).

use std::sync::Arc;
use std::time::Instant;

use diego_core::bbs::auctioneer_client::RecordingAuctioneer;
use diego_core::http::BbsClient;
use diego_core::prelude::*;
use diego_core::{Bbs, DesireTaskRequest, RunAction, TaskDefinition};
use tokio_util::sync::CancellationToken;

/// Concurrent keep-alive clients.
const CLIENTS: usize = 16;
/// Tasks each client desires.
const PER_CLIENT: usize = 1_000;

/// Prints `http_desire_task_per_sec`: tasks desired over the HTTP API from 16 concurrent
/// keep-alive clients.
pub fn run() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let bbs = Bbs::builder()
            .auctioneer(Arc::new(RecordingAuctioneer::new()))
            .build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let cancel = CancellationToken::new();
        let api: Arc<dyn BbsApi> = Arc::new(bbs.clone());
        let server = tokio::spawn(diego_core::http::serve(listener, api, cancel.clone()));
        let start = Instant::now();
        let mut handles = Vec::new();
        for c in 0..CLIENTS {
            let client = BbsClient::new(url.clone())?;
            handles.push(tokio::spawn(async move {
                for i in 0..PER_CLIENT {
                    let req = DesireTaskRequest {
                        task_guid: format!("task-{c}-{i}").into(),
                        domain: "bench".into(),
                        task_definition: TaskDefinition::new(
                            "preloaded:cflinuxfs4",
                            RunAction::new("/bin/true", "vcap"),
                        ),
                    };
                    client.desire_task(req).await?;
                }
                Ok::<(), diego_core::Error>(())
            }));
        }
        for h in handles {
            h.await??;
        }
        let rate = (CLIENTS * PER_CLIENT) as f64 / start.elapsed().as_secs_f64();
        crate::print_figure("http_desire_task_per_sec", rate, "ops/s");
        cancel.cancel();
        let _ = server.await;
        Ok::<(), anyhow::Error>(())
    })?;
    crate::router::run()
}
