//! Download and upload steps on the FakeBackend under paused time, against a local HTTP
//! server (only loopback I/O; no timer is waited for).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use crate::common;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use common::{harness_with, request, test_config};
use diego_core::{Action, DownloadAction, RunAction, UploadAction};
use diego_executor::DownloadCacheConfig;
use diego_garden::{FakeBackend, FakeScript, FakeStep, ProcessSpec};

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

fn zip_bytes() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("bin/run.sh", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"#!/bin/sh\n").unwrap();
    zip.finish().unwrap().into_inner()
}

#[tokio::test(start_paused = true)]
async fn download_then_upload_through_a_fake_container() {
    let dir = std::env::temp_dir().join(format!("executor-fake-transfers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let hits = Arc::new(AtomicUsize::new(0));
    let received: Arc<Mutex<Vec<u8>>> = Arc::default();
    let zip = Bytes::from(zip_bytes());
    let addr = {
        let hits = Arc::clone(&hits);
        let received = Arc::clone(&received);
        serve(
            Router::new()
                .route(
                    "/lifecycle.zip",
                    get(move || {
                        let hits = Arc::clone(&hits);
                        let zip = zip.clone();
                        async move {
                            hits.fetch_add(1, Ordering::SeqCst);
                            zip
                        }
                    }),
                )
                .route(
                    "/results",
                    post(move |body: Bytes| {
                        let received = Arc::clone(&received);
                        async move {
                            received.lock().unwrap().extend_from_slice(&body);
                            StatusCode::OK
                        }
                    }),
                ),
        )
        .await
    };
    let fake = FakeBackend::new();
    fake.set_program("/bin/report", |_: &ProcessSpec| {
        FakeScript::new().then(FakeStep::WriteFile(
            "/tmp/report.txt".into(),
            bytes::Bytes::from_static(b"all good"),
        ))
    });
    let mut config = test_config();
    config.temp_dir = Some(dir.join("tmp"));
    config.download_cache = Some(DownloadCacheConfig::new(dir.join("cache"), 1 << 20));
    let mut h = harness_with(Arc::new(fake.clone()), config, None).await;
    let download = DownloadAction {
        artifact: "lifecycle".into(),
        from: format!("http://{addr}/lifecycle.zip"),
        to: "/tmp/lifecycle".into(),
        cache_key: "lifecycle-v1".into(),
        user: "vcap".into(),
        checksum_algorithm: "md5".into(),
        checksum_value: format!("{:x}", md5_of(&zip_bytes())),
        ..DownloadAction::default()
    };
    let upload = UploadAction {
        artifact: "report".into(),
        from: "/tmp/report.txt".into(),
        to: format!("http://{addr}/results"),
        user: "vcap".into(),
        ..UploadAction::default()
    };
    let action = Action::serial([
        download.clone().into(),
        RunAction::new("/bin/sh", "vcap")
            .with_args(["-c", "cat /tmp/lifecycle/bin/run.sh"])
            .into(),
        RunAction::new("/bin/report", "vcap").into(),
        upload.into(),
    ]);
    let done = h.run_to_completion("x1", request(action)).await;
    assert!(!done.run_result.failed, "{:?}", done.run_result);
    assert_eq!(&received.lock().unwrap()[..], b"all good");
    let texts = h.texts();
    let downloaded = format!(
        "Downloaded lifecycle ({})",
        diego_executor::byte_size(zip_bytes().len() as u64)
    );
    for want in [
        "Downloading lifecycle...",
        downloaded.as_str(),
        "#!/bin/sh",
        "Uploading report...",
        "Uploaded report (8B)",
    ] {
        assert!(texts.iter().any(|t| t == want), "{want:?} not in {texts:?}");
    }
    // The second container is served from the cache.
    let done = h.run_to_completion("x2", request(download)).await;
    assert!(!done.run_result.failed);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    for guid in ["x1", "x2"] {
        h.executor.delete(guid).await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn md5_of(data: &[u8]) -> u128 {
    use md5::Digest;
    u128::from_be_bytes(md5::Md5::digest(data).into())
}

#[tokio::test(start_paused = true)]
async fn a_stalled_download_aborts_when_cancelled() {
    let addr = serve(Router::new().route(
        "/stalled",
        get(|| async {
            std::future::pending::<()>().await;
            "never"
        }),
    ))
    .await;
    let fake = FakeBackend::new();
    let mut h = common::fake_harness(&fake).await;
    let download = DownloadAction {
        artifact: "droplet".into(),
        from: format!("http://{addr}/stalled"),
        to: "/app".into(),
        user: "vcap".into(),
        ..DownloadAction::default()
    };
    let started = tokio::time::Instant::now();
    let done = h
        .run_to_completion("s", request(Action::timeout(download.into(), 2_000)))
        .await;
    assert_eq!(started.elapsed(), std::time::Duration::from_secs(2));
    assert_eq!(
        done.run_result.failure_reason,
        "exceeded 2s timeout; cancelled"
    );
    // A cancelled download logs no failure line of its own.
    assert!(!h.texts().iter().any(|t| t == "Downloading droplet failed"));
    h.executor.delete("s").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn cached_files_are_revalidated_with_their_etag() {
    let dir = std::env::temp_dir().join(format!("executor-fake-etag-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let version = Arc::new(AtomicUsize::new(1));
    let full = Arc::new(AtomicUsize::new(0));
    let not_modified = Arc::new(AtomicUsize::new(0));
    let addr = {
        let (version, full, not_modified) = (version.clone(), full.clone(), not_modified.clone());
        serve(Router::new().route(
            "/version",
            get(move |headers: axum::http::HeaderMap| {
                let (version, full, not_modified) =
                    (version.clone(), full.clone(), not_modified.clone());
                async move {
                    let current = version.load(Ordering::SeqCst);
                    let etag = format!("\"v{current}\"");
                    let asked = headers
                        .get("if-none-match")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    if asked == etag {
                        not_modified.fetch_add(1, Ordering::SeqCst);
                        (StatusCode::NOT_MODIFIED, [("etag", etag)], String::new())
                    } else {
                        full.fetch_add(1, Ordering::SeqCst);
                        (
                            StatusCode::OK,
                            [("etag", etag)],
                            format!("version {current}"),
                        )
                    }
                }
            }),
        ))
        .await
    };
    let fake = FakeBackend::new();
    let mut config = test_config();
    config.temp_dir = Some(dir.join("tmp"));
    config.download_cache = Some(DownloadCacheConfig::new(dir.join("cache"), 1 << 20));
    let mut h = harness_with(Arc::new(fake.clone()), config, None).await;
    let fetch_and_show = || {
        Action::serial([
            DownloadAction {
                from: format!("http://{addr}/version"),
                to: "/etc/version.txt".into(),
                cache_key: "version".into(),
                user: "vcap".into(),
                ..DownloadAction::default()
            }
            .into(),
            RunAction::new("/bin/sh", "vcap")
                .with_args(["-c", "cat /etc/version.txt"])
                .into(),
        ])
    };
    for (guid, bump) in [("v1", false), ("v2", false), ("v3", true)] {
        if bump {
            version.store(2, Ordering::SeqCst);
        }
        let done = h.run_to_completion(guid, request(fetch_and_show())).await;
        assert!(!done.run_result.failed, "{:?}", done.run_result);
    }
    let shown: Vec<String> = h
        .texts()
        .into_iter()
        .filter(|t| t.starts_with("version "))
        .collect();
    assert_eq!(shown, ["version 1", "version 1", "version 2"]);
    assert_eq!(full.load(Ordering::SeqCst), 2);
    assert_eq!(not_modified.load(Ordering::SeqCst), 1);
    for guid in ["v1", "v2", "v3"] {
        h.executor.delete(guid).await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
