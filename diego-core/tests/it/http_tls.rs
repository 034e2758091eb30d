//! The BBS API over TLS and mutual TLS, with certificates made by rcgen.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use diego_core::http::tls::{serve_tls, ClientTlsConfig, ServerTls, ServerTlsConfig};
use diego_core::http::BbsClient;
use diego_core::prelude::*;
use diego_core::{Bbs, Error};
use rcgen::{BasicConstraints, CertificateParams, CertifiedKey, IsCa, KeyPair};
use tokio_util::sync::CancellationToken;

struct Pki {
    ca_pem: String,
    ca: CertifiedKey,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: cert.pem(),
            ca: CertifiedKey {
                cert,
                key_pair: key,
            },
        }
    }

    /// A leaf certificate for `names`, signed by this CA: (cert PEM, key PEM).
    fn leaf(&self, names: &[&str]) -> (String, String) {
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params
            .signed_by(&key, &self.ca.cert, &self.ca.key_pair)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

async fn start(tls: ServerTls) -> (String, CancellationToken) {
    let bbs: Arc<dyn BbsApi> = Arc::new(Bbs::builder().build());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let cancel = CancellationToken::new();
    tokio::spawn(serve_tls(
        listener,
        diego_core::http::bbs_routes(bbs),
        tls,
        cancel.clone(),
    ));
    (format!("https://localhost:{port}"), cancel)
}

fn client(url: &str, ca: &str, identity: Option<&(String, String)>) -> BbsClient {
    let http = ClientTlsConfig::from_pem(
        ca.as_bytes(),
        identity.map(|(c, k)| (c.as_bytes(), k.as_bytes())),
    )
    .unwrap()
    .build()
    .unwrap();
    BbsClient::with_client(url, http)
}

#[tokio::test]
async fn server_tls_serves_clients_that_trust_its_ca() {
    let pki = Pki::new("diego test ca");
    let (cert, key) = pki.leaf(&["localhost", "127.0.0.1"]);
    let tls = ServerTls::from_pem(cert.as_bytes(), key.as_bytes(), None).unwrap();
    assert!(!tls.is_mutual());
    let (url, cancel) = start(tls).await;

    let good = client(&url, &pki.ca_pem, None);
    good.ping().await.unwrap();
    assert!(good.domains().await.unwrap().is_empty());

    // A client trusting another CA refuses the server.
    let other = Pki::new("another ca");
    let err = client(&url, &other.ca_pem, None).ping().await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    cancel.cancel();
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    let pki = Pki::new("diego test ca");
    let (cert, key) = pki.leaf(&["localhost"]);
    let tls =
        ServerTls::from_pem(cert.as_bytes(), key.as_bytes(), Some(pki.ca_pem.as_bytes())).unwrap();
    assert!(tls.is_mutual());
    let (url, cancel) = start(tls).await;

    let identity = pki.leaf(&["rep-1"]);
    client(&url, &pki.ca_pem, Some(&identity))
        .ping()
        .await
        .unwrap();

    // No client certificate: the handshake fails.
    let err = client(&url, &pki.ca_pem, None).ping().await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");

    // A certificate from a CA the server does not trust fails too.
    let rogue = Pki::new("rogue ca").leaf(&["rep-1"]);
    let err = client(&url, &pki.ca_pem, Some(&rogue))
        .ping()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    cancel.cancel();
}

#[test]
fn bad_files_are_named_in_the_error() {
    let dir = std::env::temp_dir().join(format!("diego-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = ServerTlsConfig::new(dir.join("nope.crt"), dir.join("nope.key"));
    let err = missing.load().unwrap_err();
    // The file system's error is kept as the cause.
    let cause = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    assert_eq!(cause, Some(std::io::ErrorKind::NotFound), "{err}");
    let err = err.to_string();
    assert!(
        err.contains("cert_file") && err.contains("nope.crt"),
        "{err}"
    );

    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let pki = Pki::new("ca");
    let (_, key) = pki.leaf(&["localhost"]);
    let key_file = dir.join("key.pem");
    std::fs::write(&key_file, key).unwrap();
    let err = ServerTlsConfig::new(garbage.clone(), key_file.clone())
        .load()
        .unwrap_err();
    assert_eq!(err.kind(), "InvalidConfiguration");
    assert!(err.to_string().contains("cert_file"), "{err}");

    // A key that does not belong to the certificate.
    let (cert, _) = pki.leaf(&["localhost"]);
    let (_, other_key) = pki.leaf(&["localhost"]);
    let err = ServerTls::from_pem(cert.as_bytes(), other_key.as_bytes(), None).unwrap_err();
    assert!(err.to_string().contains("key_file"), "{err}");

    let err = ClientTlsConfig::new(garbage)
        .with_key_file(key_file)
        .client_builder()
        .unwrap_err();
    assert!(err.to_string().contains("cert_file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
