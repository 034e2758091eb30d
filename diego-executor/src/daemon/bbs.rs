//! `diego bbs`: the BBS, the auctioneer and the converger of one process, active only
//! while it holds the leader lock in the store.
//!
//! The HTTP API listens all the time. A standby answers every API call with 503 and
//! "not the active BBS" (naming the active one when it knows it), so clients given
//! several BBS URLs move on to the next. The active BBS writes through a
//! [`FencedStore`] carrying its lease's fencing token: once another process has taken
//! the lock over, none of its writes can land any more. When it cannot renew the lease
//! before it ends, it stops acting and goes back to waiting.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::response::IntoResponse;
use diego_auction::AuctionRunner;
use diego_core::http::server::{ApiError, BbsServer};
use diego_core::store::{FencedStore, MemoryStore, Store};
use diego_core::{Bbs, BbsApi, BbsConfig, Clock, SystemClock};
use diego_core::{ConvergenceConfig, Converger};
use diego_core::{Lease, Lock};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::config::{BbsServerConfig, StoreConfig, StoreKind};
use crate::error::{Error, Result};
use crate::http::{HttpCellClientFactory, HttpClientConfig, HttpRepClient};

/// The name of the BBS's leader lock.
pub const BBS_LOCK: &str = "bbs";

/// The start of the message a standby answers with.
pub const NOT_ACTIVE: &str = "not the active BBS";

/// A store and the lock the BBS processes elect their leader with (the leases of the
/// cells' presences live there too).
#[derive(Clone, Debug)]
pub struct OpenedStore {
    /// The records.
    pub store: Arc<dyn Store>,
    /// The leader lock: [`open_store`] gives the store's own, in the same database. The
    /// active BBS fences its writes with this lock's lease, which the store checks
    /// against its own lock, so another lock needs a store that checks its fences.
    pub lock: Arc<dyn Lock>,
}

/// The store a configuration names, opened (SQL stores run their migrations).
enum Opened {
    Memory(Arc<MemoryStore>),
    Sqlite(Arc<diego_core::store::SqliteStore>),
    Postgres(Arc<diego_core::store::PostgresStore>),
}

async fn open(config: &StoreConfig) -> Result<Opened> {
    let options = || -> Result<diego_core::store::sql::SqlOptions> {
        Ok(diego_core::store::sql::SqlOptions::with_keys(key_ring(
            config,
        )?))
    };
    Ok(match config.kind {
        StoreKind::Memory => Opened::Memory(Arc::new(MemoryStore::new())),
        StoreKind::Sqlite => {
            let path = config
                .path
                .as_ref()
                .ok_or_else(|| Error::Config("store.path: required for sqlite".into()))?;
            Opened::Sqlite(Arc::new(
                diego_core::store::SqliteStore::open_with(path, options()?).await?,
            ))
        }
        StoreKind::Postgres => {
            let url = config
                .url
                .as_ref()
                .ok_or_else(|| Error::Config("store.url: required for postgres".into()))?;
            Opened::Postgres(Arc::new(
                diego_core::store::PostgresStore::connect_with(
                    url,
                    config.schema.as_deref(),
                    options()?,
                )
                .await?,
            ))
        }
    })
}

/// Opens the store a configuration names (running migrations of the SQL stores).
///
/// # Errors
/// [`Error::Config`] for a bad configuration, the store's error when it cannot be
/// reached.
pub async fn open_store(config: &StoreConfig) -> Result<OpenedStore> {
    Ok(match open(config).await? {
        Opened::Memory(s) => OpenedStore {
            store: s.clone(),
            lock: s,
        },
        Opened::Sqlite(s) => OpenedStore {
            store: s.clone(),
            lock: s,
        },
        Opened::Postgres(s) => OpenedStore {
            store: s.clone(),
            lock: s,
        },
    })
}

/// Re-encrypts every row of the configured SQL store under its active key, online;
/// returns how many rows were rewritten.
///
/// # Errors
/// [`Error::Config`] for a memory store (nothing is at rest) or a bad key setup; the
/// store's error when a row is under a key that is not configured.
pub async fn rotate_keys(config: &StoreConfig) -> Result<u64> {
    match open(config).await? {
        Opened::Memory(_) => Err(Error::Config(
            "store.kind: a memory store keeps nothing at rest to re-encrypt".into(),
        )),
        Opened::Sqlite(s) => Ok(s.rotate().await?),
        Opened::Postgres(s) => Ok(s.rotate().await?),
    }
}

/// The encryption keys of a store configuration.
///
/// # Errors
/// [`Error::Config`] when the active key is not among the keys.
pub fn key_ring(config: &StoreConfig) -> Result<diego_core::store::sql::KeyRing> {
    use diego_core::store::sql::{EncryptionKey, KeyRing};
    let Some(active) = &config.active_key else {
        if !config.keys.is_empty() {
            return Err(Error::Config(
                "store.active_key: required when store.keys are given".into(),
            ));
        }
        return Ok(KeyRing::plaintext());
    };
    let keys = config
        .keys
        .iter()
        .map(|(label, passphrase)| EncryptionKey::from_passphrase(label.clone(), passphrase))
        .collect();
    KeyRing::new(keys, active).map_err(|e| Error::Config(format!("store.keys: {e}")))
}

/// What the HTTP listener serves: the active BBS's API, or the standby answer.
#[derive(Clone)]
struct Switch {
    current: Arc<ArcSwap<axum::Router>>,
}

impl Switch {
    fn standby(active_url: Option<&str>) -> axum::Router {
        let message = match active_url {
            Some(url) => format!("{NOT_ACTIVE}; the active BBS is at {url}"),
            None => format!("{NOT_ACTIVE}; no BBS holds the lock yet"),
        };
        axum::Router::new().fallback(move || {
            let message = message.clone();
            async move { ApiError(diego_core::Error::unavailable(message)).into_response() }
        })
    }

    fn router(&self) -> axum::Router {
        let current = self.current.clone();
        axum::Router::new().fallback_service(tower::service_fn(
            move |req: axum::extract::Request| {
                let router = axum::Router::clone(&current.load());
                async move { tower::ServiceExt::oneshot(router, req).await }
            },
        ))
    }
}

/// Runs `diego bbs` until `cancel` fires.
///
/// # Errors
/// A bad configuration, a store that cannot be opened, or a port that cannot be bound.
pub async fn run_bbs(config: BbsServerConfig, cancel: CancellationToken) -> Result<()> {
    config.validate()?;
    // The database may not be up yet: wait for it (a bad configuration fails at once).
    let opened = loop {
        match open_store(&config.store).await {
            Ok(opened) => break opened,
            Err(Error::Bbs(e @ diego_core::Error::Unavailable { .. })) => {
                warn!(error = %e, "cannot open the store yet");
            }
            Err(e) => return Err(e),
        }
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    };
    let listener = tokio::net::TcpListener::bind(config.listen_address)
        .await
        .map_err(|e| Error::io(format!("cannot listen on {}", config.listen_address), e))?;
    run_bbs_on(config, opened, listener, Arc::new(SystemClock), cancel).await
}

/// Runs `diego bbs` on an opened store and a bound listener (for hosts and tests that
/// choose them).
///
/// # Errors
/// A bad TLS configuration.
pub async fn run_bbs_on(
    config: BbsServerConfig,
    opened: OpenedStore,
    listener: tokio::net::TcpListener,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
) -> Result<()> {
    let url = config.advertised_url();
    let owner = config.owner.clone().unwrap_or_else(|| url.clone());
    let switch = Switch {
        current: Arc::new(ArcSwap::from_pointee(Switch::standby(None))),
    };
    let server = super::spawn_server(
        "BBS API",
        listener,
        switch.router(),
        config.tls.as_ref(),
        &cancel,
    )?;
    info!(%url, %owner, "BBS waiting for the lock");

    let ttl = Duration::from_millis(config.lock_ttl_ms);
    let retry = Duration::from_millis(config.lock_retry_interval_ms);
    let rep_clients = rep_client_config(&config)?;
    while !cancel.is_cancelled() {
        match opened
            .lock
            .acquire(BBS_LOCK, &owner, ttl, clock.now())
            .await
        {
            Ok(Some(lease)) => {
                info!(token = lease.token, "BBS is active");
                let active = cancel.child_token();
                activate(
                    &config,
                    &opened,
                    &lease,
                    &rep_clients,
                    &switch,
                    clock.clone(),
                    &active,
                );
                hold(&opened, &owner, lease, ttl, retry, clock.as_ref(), &cancel).await;
                active.cancel();
                switch.current.store(Arc::new(Switch::standby(None)));
                if !cancel.is_cancelled() {
                    warn!("BBS lost the lock; waiting to take it again");
                }
            }
            Ok(None) => {
                let holder = opened.lock.holder(BBS_LOCK).await.ok().flatten();
                let active_url = holder.as_ref().map(|l| l.owner.as_str());
                switch.current.store(Arc::new(Switch::standby(active_url)));
            }
            Err(e) => warn!(error = %e, "cannot reach the lock"),
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(retry) => {}
        }
    }
    if let Err(e) = opened.lock.release(BBS_LOCK, &owner).await {
        warn!(error = %e, "cannot release the lock");
    }
    let _ = server.await;
    Ok(())
}

fn rep_client_config(config: &BbsServerConfig) -> Result<HttpCellClientFactory> {
    let http = HttpClientConfig::default();
    let factory = match &config.rep_client_tls {
        Some(tls) => {
            let client = tls
                .client_builder()?
                .connect_timeout(http.connect_timeout)
                .build()
                .map_err(|e| Error::Config(format!("rep_client_tls: {e}")))?;
            HttpCellClientFactory::with_client(http, client)
        }
        None => HttpCellClientFactory::new(http)?,
    };
    Ok(factory)
}

/// Starts the active BBS's parts under `active` and points the API at them.
fn activate(
    config: &BbsServerConfig,
    opened: &OpenedStore,
    lease: &Lease,
    cells: &HttpCellClientFactory,
    switch: &Switch,
    clock: Arc<dyn Clock>,
    active: &CancellationToken,
) {
    let store: Arc<dyn Store> = Arc::new(FencedStore::new(opened.store.clone(), lease.fence()));
    let runner = AuctionRunner::new();
    let bbs = Bbs::builder()
        .store(store)
        .lock(opened.lock.clone())
        .clock(clock)
        .auctioneer(Arc::new(runner.clone()))
        .rep_client(Arc::new(HttpRepClient::from(cells.clone())))
        .config(
            BbsConfig::default()
                .with_cell_presence_ttl(Duration::from_millis(config.cell_presence_ttl_ms)),
        )
        .build();
    let api: Arc<dyn BbsApi> = Arc::new(bbs.clone());
    tokio::spawn({
        let run = runner.builder(api.clone(), Arc::new(cells.clone()));
        let active = active.clone();
        async move { run.run(active).await }
    });
    let converger = Converger::builder(bbs)
        .config(
            ConvergenceConfig::default()
                .with_convergence_interval(Duration::from_millis(config.convergence_interval_ms)),
        )
        .build();
    tokio::spawn({
        let active = active.clone();
        async move { converger.run(active).await }
    });
    switch.current.store(Arc::new(BbsServer::new(api).router()));
}

/// Renews `lease` until the process is cancelled or the lease cannot be kept.
async fn hold(
    opened: &OpenedStore,
    owner: &str,
    mut lease: Lease,
    ttl: Duration,
    retry: Duration,
    clock: &dyn Clock,
    cancel: &CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(retry) => {}
        }
        match opened.lock.acquire(BBS_LOCK, owner, ttl, clock.now()).await {
            Ok(Some(renewed)) if renewed.token == lease.token => lease = renewed,
            Ok(Some(_)) | Ok(None) => return,
            Err(e) => {
                warn!(error = %e, "cannot renew the lock");
                // Stop acting before the lease can end under us: one more retry must
                // still fall inside it.
                if clock.now() + retry >= lease.expires_at {
                    return;
                }
            }
        }
    }
}
