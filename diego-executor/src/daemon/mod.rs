//! The daemons of a multi-machine deployment (feature `daemon`): `diego bbs` (the BBS,
//! auctioneer and converger behind the leader lock, with the HTTP API) and `diego cell`
//! (a rep and an executor on a container backend, registered with the BBS over HTTP).

pub mod bbs;
pub mod cell;
pub mod config;

pub use bbs::{open_store, rotate_keys, run_bbs, run_bbs_on, OpenedStore};
pub use cell::{run_cell, run_cell_on};
pub use config::{BackendKind, BbsServerConfig, CellServerConfig, StoreConfig, StoreKind};

/// Serves `app` on `listener` (over TLS when configured) until `cancel` fires; `what`
/// names the API in the log when it stops on an error.
fn spawn_server(
    what: &'static str,
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Option<&diego_core::http::tls::ServerTlsConfig>,
    cancel: &tokio_util::sync::CancellationToken,
) -> crate::Result<tokio::task::JoinHandle<()>> {
    let cancel = cancel.clone();
    let tls = tls.map(|t| t.load()).transpose()?;
    Ok(tokio::spawn(async move {
        let served = match tls {
            Some(tls) => diego_core::http::tls::serve_tls(listener, app, tls, cancel).await,
            None => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move { cancel.cancelled().await })
                    .await
            }
        };
        if let Err(e) = served {
            tracing::warn!(error = %e, "{what} stopped");
        }
    }))
}
