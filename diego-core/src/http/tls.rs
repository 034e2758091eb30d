//! TLS for the HTTP APIs (feature `tls`): rustls servers, optionally verifying client
//! certificates (mutual TLS, as Diego's components do between each other), and reqwest
//! clients that trust a given CA and present a client certificate.
//!
//! Certificates and keys are PEM. Configurations name files (what a TOML config or the
//! command line gives); [`ServerTls::from_pem`] and [`ClientTlsConfig::from_pem`] take the
//! bytes for hosts that keep their certificates elsewhere.
//!
//! ```no_run
//! # async fn run() -> diego_core::Result<()> {
//! use diego_core::http::tls::{serve_tls, ClientTlsConfig, ServerTlsConfig};
//! let server = ServerTlsConfig::new("bbs.crt", "bbs.key")
//!     .with_client_ca_file("ca.crt") // mutual TLS
//!     .load()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8889").await
//!     .map_err(|e| diego_core::Error::unavailable_from("cannot listen", e))?;
//! let app = axum::Router::new();
//! let cancel = tokio_util::sync::CancellationToken::new();
//! tokio::spawn(serve_tls(listener, app, server, cancel));
//!
//! let client = ClientTlsConfig::new("ca.crt")
//!     .with_cert_file("client.crt")
//!     .with_key_file("client.key")
//!     .client_builder()?
//! .build()
//! .map_err(|e| diego_core::Error::unavailable_from("cannot build the client", e))?;
//! let bbs = diego_core::http::BbsClient::with_client("https://127.0.0.1:8889", client);
//! # let _ = bbs; Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// Where a TLS server finds its certificate chain, its key and, for mutual TLS, the CA
/// that signs its clients' certificates: [`ServerTlsConfig::new`], changed with the
/// `with_*` setters (or read from a configuration file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerTlsConfig {
    /// The server's certificate chain (PEM), leaf first.
    pub cert_file: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// When set, clients must present a certificate signed by this CA (PEM).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

impl ServerTlsConfig {
    /// A server with the certificate chain in `cert_file` and its key in `key_file`
    /// (no client certificates asked for).
    pub fn new(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        ServerTlsConfig {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            client_ca_file: None,
        }
    }

    /// With `client_ca_file`: clients must present a certificate signed by this CA
    /// (mutual TLS).
    #[must_use]
    pub fn with_client_ca_file(mut self, client_ca_file: impl Into<PathBuf>) -> Self {
        self.client_ca_file = Some(client_ca_file.into());
        self
    }

    /// Reads the files and builds the server configuration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the file and what is wrong with it.
    pub fn load(&self) -> Result<ServerTls> {
        let cert = read("cert_file", &self.cert_file)?;
        let key = read("key_file", &self.key_file)?;
        let ca = match &self.client_ca_file {
            Some(path) => Some(read("client_ca_file", path)?),
            None => None,
        };
        ServerTls::from_pem(&cert, &key, ca.as_deref())
    }
}

/// A loaded TLS server configuration, ready for [`serve_tls`].
#[derive(Clone, Debug)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    mutual: bool,
}

impl ServerTls {
    /// A server configuration from PEM bytes: the certificate chain, the private key and,
    /// for mutual TLS, the CA certificates that sign clients.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a PEM does not parse or the key does not fit.
    pub fn from_pem(cert_chain: &[u8], key: &[u8], client_ca: Option<&[u8]>) -> Result<Self> {
        let certs = certificates("cert_file", cert_chain)?;
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| invalid_from("key_file", "no usable private key", e))?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::invalid_config_from("tls", e))?;
        let builder = match client_ca {
            Some(ca) => {
                let roots = root_store("client_ca_file", ca)?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| Error::invalid_config_from("client_ca_file", e))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| invalid_from("key_file", "does not fit the certificate", e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            mutual: client_ca.is_some(),
        })
    }

    /// Whether clients must present a certificate.
    pub fn is_mutual(&self) -> bool {
        self.mutual
    }

    /// The rustls configuration.
    pub fn rustls_config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }
}

/// What a TLS client trusts and, for mutual TLS, which certificate it presents:
/// [`ClientTlsConfig::new`], changed with the `with_*` setters (or read from a
/// configuration file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClientTlsConfig {
    /// The CA certificates (PEM) the server's certificate must chain to.
    pub ca_file: PathBuf,
    /// The client's certificate chain (PEM), for servers that require one.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// The client's private key (PEM), with `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl ClientTlsConfig {
    /// A client trusting the CA certificates in `ca_file`, presenting no certificate.
    pub fn new(ca_file: impl Into<PathBuf>) -> Self {
        ClientTlsConfig {
            ca_file: ca_file.into(),
            cert_file: None,
            key_file: None,
        }
    }

    /// With `cert_file`: the client's certificate chain, for servers that require one
    /// (with [`ClientTlsConfig::with_key_file`]).
    #[must_use]
    pub fn with_cert_file(mut self, cert_file: impl Into<PathBuf>) -> Self {
        self.cert_file = Some(cert_file.into());
        self
    }

    /// With `key_file`: the client's private key, with `cert_file`.
    #[must_use]
    pub fn with_key_file(mut self, key_file: impl Into<PathBuf>) -> Self {
        self.key_file = Some(key_file.into());
        self
    }

    /// A reqwest client builder that trusts only `ca_file` and presents the client
    /// certificate when one is configured.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the file and what is wrong with it, or a
    /// certificate without its key (or the reverse).
    pub fn client_builder(&self) -> Result<reqwest::ClientBuilder> {
        let ca = read("ca_file", &self.ca_file)?;
        let identity = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Some((read("cert_file", cert)?, read("key_file", key)?)),
            (None, None) => None,
            (Some(_), None) => return Err(invalid("key_file", "missing: cert_file needs it")),
            (None, Some(_)) => return Err(invalid("cert_file", "missing: key_file needs it")),
        };
        Self::from_pem(&ca, identity.as_ref().map(|(c, k)| (&c[..], &k[..])))
    }

    /// A reqwest client builder from PEM bytes: the CA certificates to trust and,
    /// optionally, the client's certificate chain and key.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a PEM does not parse.
    pub fn from_pem(ca: &[u8], identity: Option<(&[u8], &[u8])>) -> Result<reqwest::ClientBuilder> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .connect_timeout(Duration::from_secs(5));
        for cert in certificates("ca_file", ca)? {
            let cert = reqwest::Certificate::from_der(&cert)
                .map_err(|e| Error::invalid_config_from("ca_file", e))?;
            builder = builder.add_root_certificate(cert);
        }
        if let Some((cert, key)) = identity {
            // Validate each half first, so an error names the file at fault.
            certificates("cert_file", cert)?;
            PrivateKeyDer::from_pem_slice(key)
                .map_err(|e| invalid_from("key_file", "no usable private key", e))?;
            let mut pem = cert.to_vec();
            pem.push(b'\n');
            pem.extend_from_slice(key);
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| Error::invalid_config_from("cert_file", e))?;
            builder = builder.identity(identity);
        }
        Ok(builder)
    }
}

/// Serves `app` over TLS on `listener` until `cancel` fires; in-flight requests get up to
/// 10 s to finish.
///
/// # Errors
/// The listener fails.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: ServerTls,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let listener = listener.into_std()?;
    let handle = axum_server::Handle::new();
    let shutdown = handle.clone();
    tokio::spawn(async move {
        cancel.cancelled().await;
        shutdown.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    let config = axum_server::tls_rustls::RustlsConfig::from_config(tls.config);
    axum_server::from_tcp_rustls(listener, config)
        .handle(handle)
        .serve(app.into_make_service())
        .await
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(field: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| invalid_from(field, format_args!("cannot read {}", path.display()), e))
}

fn certificates(field: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| invalid_from(field, "not a PEM certificate", e))?;
    if certs.is_empty() {
        return Err(invalid(field, "holds no PEM certificate"));
    }
    Ok(certs)
}

fn root_store(field: &str, pem: &[u8]) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(field, pem)? {
        roots
            .add(cert)
            .map_err(|e| invalid_from(field, "not a usable CA certificate", e))?;
    }
    Ok(roots)
}

fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::invalid_config(format!("{field}: {}", reason.into()))
}

/// `field: what: <cause>`, keeping the cause.
fn invalid_from(
    field: &str,
    what: impl std::fmt::Display,
    cause: impl Into<crate::error::BoxError>,
) -> Error {
    Error::invalid_config_from(format_args!("{field}: {what}"), cause)
}
