//! The main job: a whole Diego on this machine — BBS, auctioneer, converger, two cells
//! running real processes, and the BBS HTTP API on localhost — with a demo app deployed
//! (3 instances of the fixture app behind an HTTP health check, route `demo.localhost`).
//!
//! Run: `cargo run --release --example local_cluster` (Ctrl-C stops everything and
//! destroys every container). Set `DIEGO_API_ADDR` / `DIEGO_ROUTER_ADDR` to move the API
//! off 127.0.0.1:8889 and the router off 127.0.0.1:8888.

use std::time::Duration;

use diego_core::EnvironmentVariable;
use diego_executor::local_cluster::{
    LocalCluster, LocalClusterOptions, DEMO_HOSTNAME, DEMO_PROCESS_GUID,
};

/// When set, this binary acts as the demo app itself (the cluster runs it as one).
const FIXTURE_ENV: &str = "DIEGO_FIXTURE_APP";

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if std::env::var_os(FIXTURE_ENV).is_some() {
        let args = <diego_executor::fixture_app::Args as clap::Parser>::parse();
        return Ok(rt.block_on(diego_executor::fixture_app::run(args))?);
    }
    rt.block_on(async {
        let mut opts = LocalClusterOptions::new(std::env::current_exe()?);
        opts.app_env = vec![EnvironmentVariable::new(FIXTURE_ENV, "1")];
        if let Ok(addr) = std::env::var("DIEGO_API_ADDR") {
            opts.api_addr = addr.parse()?;
        }
        if let Ok(addr) = std::env::var("DIEGO_ROUTER_ADDR") {
            opts.router_addr = addr.parse()?;
        }
        println!(
            "starting a local Diego: BBS + auctioneer + converger + {} cells ...",
            opts.cells
        );
        let local = LocalCluster::start(opts).await?;
        println!("BBS API: {}", local.api_url());
        println!(
            "deploying the demo app (3 instances of the fixture app, route {DEMO_HOSTNAME}) ..."
        );
        local.wait_until_ready(3, Duration::from_secs(60)).await?;
        println!("\nthe demo app is RUNNING:");
        for (index, url) in local.demo_urls().await? {
            println!("  instance {index}: {url}");
        }
        let first = local
            .demo_urls()
            .await?
            .first()
            .map(|(_, u)| u.clone())
            .unwrap_or_default();
        let api = local.api_url();
        let router = local.router_url();
        println!(
            "\ntry:\n  curl -H 'Host: {DEMO_HOSTNAME}' {router}/   # through the router, round robin\n  \
             curl {first}/            # an instance answers directly\n  \
             curl -s -X POST {api}/v1/actual_lrps/list -d '{{}}'   # what runs where\n  \
             diego --bbs-url {api} logs {DEMO_PROCESS_GUID} --follow   # the demo's logs\n  \
             curl -X POST {first}/exit/1   # kill an instance and watch it come back\n\n\
             Ctrl-C stops everything.\n"
        );
        if std::env::var_os("DIEGO_LOCAL_EXIT_WHEN_READY").is_some() {
            local.shutdown().await;
            return Ok(());
        }
        tokio::signal::ctrl_c().await?;
        println!("stopping: destroying containers ...");
        local.shutdown().await;
        println!("stopped.");
        Ok(())
    })
}
