//! `diego bbs` and `diego cell` talking mutual TLS both ways (in one process, on a
//! memory store and simulated containers), with certificates made by rcgen.
#![cfg(feature = "daemon")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diego_core::http::tls::{ClientTlsConfig, ServerTlsConfig};
use diego_core::http::BbsClient;
use diego_core::prelude::*;
use diego_core::store::ActualLrpFilter;
use diego_core::{ActualLrpState, DesiredLrp, RunAction, SystemClock};
use diego_executor::daemon::config::{BackendKind, BbsServerConfig, CellServerConfig};
use diego_executor::daemon::{open_store, run_bbs_on, run_cell_on};
use rcgen::{BasicConstraints, CertificateParams, CertifiedKey, IsCa, KeyPair};
use tokio_util::sync::CancellationToken;

struct Pki {
    dir: PathBuf,
    ca: CertifiedKey,
}

impl Pki {
    fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.crt"), cert.pem()).unwrap();
        Pki {
            dir: dir.to_owned(),
            ca: CertifiedKey {
                cert,
                key_pair: key,
            },
        }
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// Writes `name.crt` / `name.key`, valid for localhost and 127.0.0.1.
    fn leaf(&self, name: &str) -> (PathBuf, PathBuf) {
        let params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params
            .signed_by(&key, &self.ca.cert, &self.ca.key_pair)
            .unwrap();
        let (c, k) = (
            self.dir.join(format!("{name}.crt")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    fn server(&self, name: &str) -> ServerTlsConfig {
        let (cert_file, key_file) = self.leaf(name);
        ServerTlsConfig::new(cert_file, key_file).with_client_ca_file(self.ca())
    }

    fn client(&self, name: &str) -> ClientTlsConfig {
        let (cert, key) = self.leaf(name);
        ClientTlsConfig::new(self.ca())
            .with_cert_file(cert)
            .with_key_file(key)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_over_mutual_tls_runs_an_lrp() {
    let dir = std::env::temp_dir().join(format!("diego-daemons-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let pki = Pki::new(&dir.join("pki"));
    let cancel = CancellationToken::new();

    let bbs_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bbs_addr = bbs_listener.local_addr().unwrap();
    let bbs_url = format!("https://127.0.0.1:{}", bbs_addr.port());
    let bbs_config = BbsServerConfig::default()
        .with_listen_address(bbs_addr)
        .with_tls(pki.server("bbs"))
        .with_rep_client_tls(pki.client("bbs-to-rep"))
        .with_convergence_interval_ms(1_000);
    let opened = open_store(&bbs_config.store).await.unwrap();
    let bbs = tokio::spawn(run_bbs_on(
        bbs_config,
        opened,
        bbs_listener,
        Arc::new(SystemClock),
        cancel.clone(),
    ));

    let cell_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cell_addr = cell_listener.local_addr().unwrap();
    let cell_config = CellServerConfig::default()
        .with_cell_id("tls-cell")
        .with_bbs_urls(vec![bbs_url.clone()])
        .with_listen_address(cell_addr)
        .with_backend(BackendKind::Fake)
        .with_work_dir(dir.join("cells"))
        .with_tls(pki.server("rep"))
        .with_bbs_client_tls(pki.client("rep-to-bbs"))
        .with_presence_renew_interval_ms(1_000);
    let cell = tokio::spawn(run_cell_on(cell_config, cell_listener, cancel.clone()));

    let client = BbsClient::with_client(
        &bbs_url,
        pki.client("operator")
            .client_builder()
            .unwrap()
            .build()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.cells().await.map(|c| c.len()).unwrap_or(0) != 1 {
        assert!(
            Instant::now() < deadline,
            "the cell did not register over TLS"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cells = client.cells().await.unwrap();
    assert_eq!(
        cells[0].rep_url,
        format!("https://127.0.0.1:{}", cell_addr.port())
    );

    // The auctioneer reaches the rep over mutual TLS; the rep reports back the same way.
    let lrp = DesiredLrp::new(
        "tls-web",
        "apps",
        "preloaded:cflinuxfs4",
        2,
        RunAction::new("/bin/sleep", "vcap").with_args(["3600"]),
    );
    client.desire_lrp(lrp).await.unwrap();
    loop {
        let rows = client
            .actual_lrps(&ActualLrpFilter::default())
            .await
            .unwrap();
        if rows.len() == 2 && rows.iter().all(|r| r.state == ActualLrpState::Running) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "instances did not run over TLS: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Without a client certificate the BBS refuses the connection.
    let anonymous = BbsClient::with_client(
        &bbs_url,
        ClientTlsConfig::new(pki.ca())
            .client_builder()
            .unwrap()
            .build()
            .unwrap(),
    );
    assert!(anonymous.ping().await.is_err());

    cancel.cancel();
    bbs.await.unwrap().unwrap();
    cell.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn plain_http_on_a_network_address_is_refused_unless_allowed() {
    let config = BbsServerConfig::default().with_listen_address("0.0.0.0:0".parse().unwrap());
    let err = diego_executor::daemon::run_bbs(config, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("listen_address"), "{err}");
    assert!(err.to_string().contains("allow_insecure_remote"), "{err}");
}
