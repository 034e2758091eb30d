//! Configuration of `diego bbs` and `diego cell`: defaults, then a TOML file, then
//! environment variables (`DIEGO_BBS_...` / `DIEGO_CELL_...`, nested keys joined by `__`,
//! e.g. `DIEGO_BBS_STORE__KIND=postgres`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use diego_core::http::tls::{ClientTlsConfig, ServerTlsConfig};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use diego_core::setter;

/// Where the BBS keeps its state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreConfig {
    /// `memory` (lost on exit), `sqlite` (a file, one BBS) or `postgres` (shared by
    /// several BBS processes, one active).
    pub kind: StoreKind,
    /// The SQLite file (kind `sqlite`).
    pub path: Option<PathBuf>,
    /// The PostgreSQL URL (kind `postgres`), e.g. `postgres://diego@db/diego`.
    pub url: Option<String>,
    /// The PostgreSQL schema the tables live in (default: the connection's).
    pub schema: Option<String>,
    /// Encryption at rest: the key the BBS writes with (a label of `keys`).
    pub active_key: Option<String>,
    /// Encryption keys: label → passphrase. Rows name the label they were written with.
    #[serde(default)]
    pub keys: std::collections::BTreeMap<String, String>,
}

/// The kind of store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// In memory: for trying things out; nothing survives a restart.
    Memory,
    /// A SQLite file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Memory,
            path: None,
            url: None,
            schema: None,
            active_key: None,
            keys: Default::default(),
        }
    }
}

impl StoreConfig {
    setter!(with_kind => kind: StoreKind);
    setter!(with_path => path: Some(impl Into<PathBuf>));
    setter!(with_url => url: Some(impl Into<String>));
    setter!(with_schema => schema: Some(impl Into<String>));
    setter!(with_active_key => active_key: Some(impl Into<String>));
    setter!(with_keys => keys: std::collections::BTreeMap<String, String>);
}

/// `diego bbs`: the BBS, auctioneer and converger behind the leader lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BbsServerConfig {
    /// Where the HTTP API listens.
    pub listen_address: SocketAddr,
    /// The URL other processes reach this BBS at (told to clients by standbys).
    /// Default: `http(s)://listen_address`.
    pub advertise_url: Option<String>,
    /// Allow listening on a non-loopback address without TLS.
    pub allow_insecure_remote: bool,
    /// This process's name in the lock (default: host name and pid).
    pub owner: Option<String>,
    /// The state.
    pub store: StoreConfig,
    /// How long the leader lease lasts without renewal, in milliseconds (15 s).
    pub lock_ttl_ms: u64,
    /// How often the lease is renewed, or a standby tries to take it, in milliseconds.
    pub lock_retry_interval_ms: u64,
    /// How often convergence runs, in milliseconds (30 s).
    pub convergence_interval_ms: u64,
    /// How long a cell presence lives without renewal, in milliseconds (15 s).
    pub cell_presence_ttl_ms: u64,
    /// TLS for the API (with `client_ca_file`: mutual TLS).
    pub tls: Option<ServerTlsConfig>,
    /// TLS towards the reps.
    pub rep_client_tls: Option<ClientTlsConfig>,
}

impl Default for BbsServerConfig {
    fn default() -> Self {
        BbsServerConfig {
            listen_address: SocketAddr::from(([127, 0, 0, 1], 8889)),
            advertise_url: None,
            allow_insecure_remote: false,
            owner: None,
            store: StoreConfig::default(),
            lock_ttl_ms: 15_000,
            lock_retry_interval_ms: 1_000,
            convergence_interval_ms: 30_000,
            cell_presence_ttl_ms: diego_core::models::cell::DEFAULT_CELL_PRESENCE_TTL_MS,
            tls: None,
            rep_client_tls: None,
        }
    }
}

impl BbsServerConfig {
    setter!(with_listen_address => listen_address: SocketAddr);
    setter!(with_advertise_url => advertise_url: Some(impl Into<String>));
    setter!(with_allow_insecure_remote => allow_insecure_remote: bool);
    setter!(with_owner => owner: Some(impl Into<String>));
    setter!(with_store => store: StoreConfig);
    setter!(with_lock_ttl_ms => lock_ttl_ms: u64);
    setter!(with_lock_retry_interval_ms => lock_retry_interval_ms: u64);
    setter!(with_convergence_interval_ms => convergence_interval_ms: u64);
    setter!(with_cell_presence_ttl_ms => cell_presence_ttl_ms: u64);
    setter!(with_tls => tls: impl Into<Option<ServerTlsConfig>>);
    setter!(with_rep_client_tls => rep_client_tls: impl Into<Option<ClientTlsConfig>>);
}

/// Which container backend a cell runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// Plain host processes in their own directories (no isolation; they run as the
    /// cell's own user, whatever user the action names).
    Process,
    /// Linux namespaces, cgroups and a root filesystem (needs root).
    Linux,
    /// Simulated containers (tests and benchmarks).
    Fake,
}

/// `diego cell`: a rep and an executor on a container backend, registered with the BBS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CellServerConfig {
    /// The cell's id (`^[a-zA-Z0-9_-]+$`).
    pub cell_id: String,
    /// Availability zone.
    pub zone: String,
    /// The BBS URLs, tried in order (the active one answers).
    pub bbs_urls: Vec<String>,
    /// Where the rep's HTTP API listens.
    pub listen_address: SocketAddr,
    /// The URL the auctioneer reaches this rep at (default: `http(s)://listen_address`).
    pub advertise_url: Option<String>,
    /// Allow listening on a non-loopback address without TLS.
    pub allow_insecure_remote: bool,
    /// The container backend.
    pub backend: BackendKind,
    /// Where containers live.
    pub work_dir: PathBuf,
    /// The root filesystem tarball or directory for the `linux` backend.
    pub rootfs: Option<PathBuf>,
    /// Memory offered, in MB.
    pub memory_mb: u64,
    /// Disk offered, in MB.
    pub disk_mb: u64,
    /// Containers offered.
    pub containers: u64,
    /// How often the cell renews its presence, in milliseconds (5 s; keep it well under
    /// the BBS's `cell_presence_ttl_ms`).
    pub presence_renew_interval_ms: u64,
    /// TLS for the rep API.
    pub tls: Option<ServerTlsConfig>,
    /// TLS towards the BBS.
    pub bbs_client_tls: Option<ClientTlsConfig>,
}

impl Default for CellServerConfig {
    fn default() -> Self {
        CellServerConfig {
            cell_id: "cell-1".into(),
            zone: "z1".into(),
            bbs_urls: vec!["http://127.0.0.1:8889".into()],
            listen_address: SocketAddr::from(([127, 0, 0, 1], 1800)),
            advertise_url: None,
            allow_insecure_remote: false,
            backend: BackendKind::Process,
            work_dir: std::env::temp_dir().join("diego-cell"),
            rootfs: None,
            memory_mb: 8 * 1024,
            disk_mb: 32 * 1024,
            containers: 256,
            presence_renew_interval_ms: 5_000,
            tls: None,
            bbs_client_tls: None,
        }
    }
}

impl CellServerConfig {
    setter!(with_cell_id => cell_id: impl Into<String>);
    setter!(with_zone => zone: impl Into<String>);
    setter!(with_bbs_urls => bbs_urls: Vec<String>);
    setter!(with_listen_address => listen_address: SocketAddr);
    setter!(with_advertise_url => advertise_url: Some(impl Into<String>));
    setter!(with_allow_insecure_remote => allow_insecure_remote: bool);
    setter!(with_backend => backend: BackendKind);
    setter!(with_work_dir => work_dir: impl Into<PathBuf>);
    setter!(with_rootfs => rootfs: Some(impl Into<PathBuf>));
    setter!(with_memory_mb => memory_mb: u64);
    setter!(with_disk_mb => disk_mb: u64);
    setter!(with_containers => containers: u64);
    setter!(with_presence_renew_interval_ms => presence_renew_interval_ms: u64);
    setter!(with_tls => tls: impl Into<Option<ServerTlsConfig>>);
    setter!(with_bbs_client_tls => bbs_client_tls: impl Into<Option<ClientTlsConfig>>);
}

/// Loads a configuration: defaults, then `file` (TOML, when given), then the environment
/// variables starting with `env_prefix` (nested keys joined by `__`; `..._URL` is left
/// to the command line client, which reads `DIEGO_BBS_URL`).
///
/// # Errors
/// [`Error::Config`] naming the key and the reason (unknown keys are refused).
pub fn load<T>(file: Option<&Path>, env_prefix: &str) -> Result<T>
where
    T: Serialize + for<'de> Deserialize<'de> + Default,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        if !file.exists() {
            return Err(Error::Config(format!(
                "config file {} does not exist",
                file.display()
            )));
        }
        figment = figment.merge(Toml::file(file));
    }
    figment = figment.merge(Env::prefixed(env_prefix).split("__").ignore(&["url"]));
    figment.extract().map_err(|e| {
        let errors: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
        Error::Config(errors.join("; "))
    })
}

impl BbsServerConfig {
    /// Checks what the types cannot.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field and the reason.
    pub fn validate(&self) -> Result<()> {
        check_listen(
            "listen_address",
            self.listen_address,
            self.tls.is_some(),
            self.allow_insecure_remote,
        )?;
        match self.store.kind {
            StoreKind::Sqlite if self.store.path.is_none() => {
                return Err(Error::Config(
                    "store.path: required when store.kind is sqlite".into(),
                ))
            }
            StoreKind::Postgres if self.store.url.is_none() => {
                return Err(Error::Config(
                    "store.url: required when store.kind is postgres".into(),
                ))
            }
            _ => {}
        }
        if let Some(active) = &self.store.active_key {
            if !self.store.keys.contains_key(active) {
                return Err(Error::Config(format!(
                    "store.active_key: {active:?} is not a label of store.keys"
                )));
            }
        }
        if self.lock_ttl_ms == 0 {
            return Err(Error::Config("lock_ttl_ms: must be > 0".into()));
        }
        if self.lock_retry_interval_ms == 0 || self.lock_retry_interval_ms >= self.lock_ttl_ms {
            return Err(Error::Config(
                "lock_retry_interval_ms: must be > 0 and < lock_ttl_ms".into(),
            ));
        }
        if self.convergence_interval_ms == 0 {
            return Err(Error::Config("convergence_interval_ms: must be > 0".into()));
        }
        if self.cell_presence_ttl_ms == 0 {
            return Err(Error::Config("cell_presence_ttl_ms: must be > 0".into()));
        }
        Ok(())
    }

    /// The URL clients reach this BBS at.
    pub fn advertised_url(&self) -> String {
        advertised(&self.advertise_url, self.listen_address, self.tls.is_some())
    }
}

impl CellServerConfig {
    /// Checks what the types cannot.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field and the reason.
    pub fn validate(&self) -> Result<()> {
        let id_ok = !self.cell_id.is_empty()
            && self
                .cell_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !id_ok {
            return Err(Error::Config("cell_id: must match ^[a-zA-Z0-9_-]+$".into()));
        }
        diego_core::http::check_bbs_urls(&self.bbs_urls).map_err(|e| match e {
            diego_core::Error::InvalidConfig { message, .. } => Error::Config(message),
            other => Error::Bbs(other),
        })?;
        check_listen(
            "listen_address",
            self.listen_address,
            self.tls.is_some(),
            self.allow_insecure_remote,
        )?;
        if self.memory_mb == 0 {
            return Err(Error::Config("memory_mb: must be > 0".into()));
        }
        if self.presence_renew_interval_ms == 0 {
            return Err(Error::Config(
                "presence_renew_interval_ms: must be > 0".into(),
            ));
        }
        if self.containers == 0 {
            return Err(Error::Config("containers: must be > 0".into()));
        }
        if self.backend == BackendKind::Linux && self.rootfs.is_none() {
            return Err(Error::Config(
                "rootfs: required when backend is linux".into(),
            ));
        }
        Ok(())
    }

    /// The URL the auctioneer reaches this rep at.
    pub fn advertised_url(&self) -> String {
        advertised(&self.advertise_url, self.listen_address, self.tls.is_some())
    }
}

fn check_listen(field: &str, addr: SocketAddr, tls: bool, allow: bool) -> Result<()> {
    if !addr.ip().is_loopback() && !tls && !allow {
        return Err(Error::Config(format!(
            "{field}: {addr} is not a loopback address; configure tls, or set \
             allow_insecure_remote = true to serve plain HTTP to the network"
        )));
    }
    Ok(())
}

fn advertised(explicit: &Option<String>, addr: SocketAddr, tls: bool) -> String {
    match explicit {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("{}://{addr}", if tls { "https" } else { "http" }),
    }
}

#[cfg(test)]
mod tests {
    // figment's Jail hands back its own (large) error type.
    #![allow(clippy::unwrap_used, clippy::result_large_err)]
    use super::*;

    #[test]
    fn defaults_are_valid_and_local() {
        let bbs = BbsServerConfig::default();
        bbs.validate().unwrap();
        assert_eq!(bbs.advertised_url(), "http://127.0.0.1:8889");
        CellServerConfig::default().validate().unwrap();
    }

    #[test]
    fn file_then_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "bbs.toml",
                r#"
                listen_address = "127.0.0.1:9000"
                [store]
                kind = "sqlite"
                path = "/tmp/x.sqlite"
                "#,
            )?;
            jail.set_env("DIEGO_BBS_LOCK_TTL_MS", "5000");
            jail.set_env("DIEGO_BBS_STORE__KIND", "postgres");
            jail.set_env("DIEGO_BBS_STORE__URL", "postgres://db/diego");
            let c: BbsServerConfig = load(Some(Path::new("bbs.toml")), "DIEGO_BBS_").unwrap();
            assert_eq!(c.listen_address.port(), 9000);
            assert_eq!(c.lock_ttl_ms, 5000);
            assert_eq!(c.store.kind, StoreKind::Postgres);
            assert_eq!(c.store.url.as_deref(), Some("postgres://db/diego"));
            c.validate().unwrap();
            Ok(())
        });
    }

    #[test]
    fn errors_name_the_field() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "lock_ttl_ms = \"soon\"\n")?;
            let e = load::<BbsServerConfig>(Some(Path::new("bad.toml")), "DIEGO_BBS_")
                .unwrap_err()
                .to_string();
            assert!(e.contains("lock_ttl_ms"), "{e}");
            jail.create_file("unknown.toml", "colour = \"blue\"\n")?;
            let e = load::<BbsServerConfig>(Some(Path::new("unknown.toml")), "DIEGO_BBS_")
                .unwrap_err()
                .to_string();
            assert!(e.contains("colour"), "{e}");
            Ok(())
        });
        let e = load::<BbsServerConfig>(Some(Path::new("/nonexistent/bbs.toml")), "DIEGO_BBS_")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/bbs.toml"), "{e}");

        let c = BbsServerConfig {
            listen_address: "0.0.0.0:8889".parse().unwrap(),
            ..Default::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("listen_address"));
        let c = BbsServerConfig {
            store: StoreConfig {
                kind: StoreKind::Sqlite,
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("store.path"));
        let c = CellServerConfig {
            cell_id: "bad id".into(),
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("cell_id"));
        let c = CellServerConfig {
            bbs_urls: vec!["ftp://x".into()],
            ..Default::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("bbs_urls[0]"));
    }
}
