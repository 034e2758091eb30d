//! `diego cell`: a rep and an executor on a container backend, registered with the BBS
//! over HTTP, serving the rep API to the auctioneer and the converger.

use std::sync::Arc;
use std::time::Duration;

use diego_core::http::BbsClient;
use diego_garden::{
    ContainerBackend, FakeBackend, LinuxBackend, LinuxBackendConfig, ProcessBackend,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::config::{BackendKind, CellServerConfig};
use crate::error::{Error, Result};
use crate::http::RepServer;
use crate::rep::{Rep, RepConfig};
use crate::{CheckProber, Executor, ExecutorConfig, FakeBackendProber, Resources};

/// Runs `diego cell` until `cancel` fires (or an evacuation asked for over the API is
/// over). Its containers are destroyed on the way out.
///
/// # Errors
/// A bad configuration, a backend that cannot start, or a port that cannot be bound.
pub async fn run_cell(config: CellServerConfig, cancel: CancellationToken) -> Result<()> {
    config.validate()?;
    let listener = tokio::net::TcpListener::bind(config.listen_address)
        .await
        .map_err(|e| Error::io(format!("cannot listen on {}", config.listen_address), e))?;
    run_cell_on(config, listener, cancel).await
}

/// Runs `diego cell` on a bound listener.
///
/// # Errors
/// A bad configuration or a backend that cannot start.
pub async fn run_cell_on(
    config: CellServerConfig,
    listener: tokio::net::TcpListener,
    cancel: CancellationToken,
) -> Result<()> {
    config.validate()?;
    let bbs = bbs_client(&config)?;
    let (backend, prober) = backend(&config)?;
    let mut executor = Executor::builder(backend).config(ExecutorConfig {
        cell_id: config.cell_id.clone(),
        owner_name: format!("executor-{}", config.cell_id),
        total_resources: Some(Resources {
            memory_mb: config.memory_mb,
            disk_mb: config.disk_mb,
            containers: config.containers,
        }),
        // Plain processes run as the cell's own user (the action's user names a user
        // inside a container's root filesystem, which a process backend does not have).
        apply_action_user: config.backend == BackendKind::Linux,
        ..ExecutorConfig::default()
    });
    if let Some(prober) = prober {
        executor = executor.prober(prober);
    }
    let executor = executor.build().await?;
    let url = config.advertised_url();
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| config.listen_address.to_string());
    let rep = Rep::new(
        Arc::new(bbs),
        executor,
        RepConfig {
            zone: config.zone.clone(),
            rep_address: address,
            rep_url: url.clone(),
            presence_renew_interval: Duration::from_millis(config.presence_renew_interval_ms),
            ..RepConfig::new(config.cell_id.as_str())
        },
    );

    let server = RepServer::new(rep.clone())
        .on_evacuated(cancel.clone())
        .router();
    let serving = super::spawn_server("rep API", listener, server, config.tls.as_ref(), &cancel)?;

    // The BBS may not be up (or active) yet: keep trying until it takes the presence.
    loop {
        match rep.register().await {
            Ok(()) => break,
            Err(e) => warn!(error = %e, "cannot register with the BBS yet"),
        }
        tokio::select! {
            () = cancel.cancelled() => {
                let _ = serving.await;
                return Ok(());
            }
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    info!(cell_id = %config.cell_id, %url, "cell registered");
    rep.run(cancel.clone()).await;
    for c in rep.executor().list() {
        let _ = rep.executor().delete(&c.guid).await;
    }
    let _ = serving.await;
    Ok(())
}

fn bbs_client(config: &CellServerConfig) -> Result<BbsClient> {
    let http = match &config.bbs_client_tls {
        Some(tls) => tls
            .client_builder()?
            .pool_max_idle_per_host(16)
            .build()
            .map_err(|e| Error::Config(format!("bbs_client_tls: {e}")))?,
        None => reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(16)
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?,
    };
    Ok(BbsClient::with_client_urls(config.bbs_urls.clone(), http)?)
}

type Backend = (Arc<dyn ContainerBackend>, Option<Arc<dyn CheckProber>>);

fn backend(config: &CellServerConfig) -> Result<Backend> {
    let dir = config.work_dir.join(&config.cell_id);
    Ok(match config.backend {
        BackendKind::Process => (Arc::new(ProcessBackend::new(dir)?), None),
        BackendKind::Linux => {
            let rootfs = config
                .rootfs
                .clone()
                .ok_or_else(|| Error::Config("rootfs: required when backend is linux".into()))?;
            let mut linux = LinuxBackendConfig::new(dir, "preloaded:cflinuxfs4");
            linux.preloaded.insert("cflinuxfs4".into(), rootfs);
            (Arc::new(LinuxBackend::new(linux)?), None)
        }
        BackendKind::Fake => {
            let fake = FakeBackend::new();
            let prober: Arc<dyn CheckProber> = Arc::new(FakeBackendProber::new(fake.clone()));
            (Arc::new(fake), Some(prober))
        }
    })
}
