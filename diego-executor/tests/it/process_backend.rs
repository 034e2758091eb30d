//! The important actions and checks for real, on the ProcessBackend: exits, a timeout
//! killing a sleeping process, a codependent pair, downloads from a local HTTP server
//! (checksums, archives, the cache), an upload, HTTP/TCP checks against a server that
//! turns healthy late, and readiness flapping.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use crate::common;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use common::{harness_with, request, sh, test_config, Harness};
use diego_core::log_sink::format_line;
use diego_core::{
    Action, Check, CheckDefinition, DownloadAction, HttpCheck, ResourceLimits, RunAction,
    UploadAction,
};
use diego_executor::{ContainerEvent, DownloadCacheConfig, ExecutorConfig, FAILED_TO_FETCH_RESULT};
use diego_garden::{ContainerBackend, ProcessBackend, ProcessBackendConfig};

/// Generous: real processes on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(60);

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} took more than {PATIENCE:?}"))
}

struct Real {
    h: Harness,
    backend: Arc<ProcessBackend>,
    dir: PathBuf,
}

impl Drop for Real {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn real(name: &str, tweak: impl FnOnce(&mut ExecutorConfig)) -> Real {
    let dir = std::env::temp_dir().join(format!("executor-pb-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut backend_config = ProcessBackendConfig::new(dir.join("containers"));
    backend_config.memory_bytes = Some(8 << 30);
    backend_config.disk_bytes = Some(8 << 30);
    let backend = Arc::new(ProcessBackend::with_config(backend_config).unwrap());
    let mut config = test_config();
    config.apply_action_user = false;
    config.temp_dir = Some(dir.join("tmp"));
    config.download_cache = Some(DownloadCacheConfig::new(dir.join("cache"), 10 << 20));
    tweak(&mut config);
    let h = harness_with(backend.clone(), config, None).await;
    Real { h, backend, dir }
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_exit_zero_and_one_with_logs_in_order() {
    let mut r = real("exits", |_| {}).await;
    let done = within(
        "exit 0",
        r.h.run_to_completion("ok", request(sh("echo one; echo two; echo three; exit 0"))),
    )
    .await;
    assert!(!done.run_result.failed, "{:?}", done.run_result);
    let lines = r.h.logs.lines(common::LOG_GUID);
    let app: Vec<String> = lines
        .iter()
        .filter(|l| l.source_type == "APP/PROC/WEB")
        .map(common::prefixed)
        .collect();
    assert_eq!(
        app,
        [
            "[APP/PROC/WEB/0] OUT one",
            "[APP/PROC/WEB/0] OUT two",
            "[APP/PROC/WEB/0] OUT three",
            "[APP/PROC/WEB/0] OUT Exit status 0"
        ]
    );
    let first = lines
        .iter()
        .find(|l| l.source_type == "APP/PROC/WEB")
        .unwrap();
    let full = format_line(first);
    assert!(full.ends_with("Z [APP/PROC/WEB/0] OUT one"), "{full}");
    assert_eq!(full.as_bytes()[10], b'T', "{full}");

    let done = within(
        "exit 1",
        r.h.run_to_completion("bad", request(sh("echo no >&2; exit 1"))),
    )
    .await;
    assert!(done.run_result.failed);
    assert_eq!(
        done.run_result.failure_reason,
        "APP/PROC/WEB: Exited with status 1"
    );
    assert!(r
        .h
        .prefixed()
        .contains(&"[APP/PROC/WEB/0] ERR no".to_string()));
    for guid in ["ok", "bad"] {
        r.h.executor.delete(guid).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nofile_is_applied() {
    let mut r = real("nofile", |_| {}).await;
    let mut run = RunAction::new("/bin/sh", "vcap").with_args(["-c", "ulimit -n"]);
    run.resource_limits = Some(ResourceLimits {
        nofile: Some(1000),
        nproc: Some(5),
    });
    let done = within("ulimit", r.h.run_to_completion("n", request(run))).await;
    assert!(!done.run_result.failed, "{:?}", done.run_result);
    assert!(
        r.h.texts().contains(&"1000".to_string()),
        "{:?}",
        r.h.texts()
    );
    r.h.executor.delete("n").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_a_sleeping_process() {
    let mut r = real("timeout", |_| {}).await;
    let started = Instant::now();
    let done = within(
        "timeout",
        r.h.run_to_completion("t", request(Action::timeout(sh("exec sleep 30"), 500))),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        done.run_result.failure_reason,
        "exceeded 500ms timeout; cancelled"
    );
    assert!(
        r.h.texts().contains(&"Exit status 143".to_string()),
        "{:?}",
        r.h.texts()
    );
    r.h.executor.delete("t").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_codependent_pair_ends_together() {
    let mut r = real("codependent", |_| {}).await;
    let started = Instant::now();
    let done = within(
        "codependent",
        r.h.run_to_completion(
            "c",
            request(Action::codependent([sh("exec sleep 30"), sh("sleep 0.2")])),
        ),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(done.run_result.failure_reason, "Codependent step exited");
    let info = r.backend.lookup("c").await.unwrap().info().await.unwrap();
    assert!(
        info.process_ids.is_empty(),
        "the sleeper was ended: {info:?}"
    );
    r.h.executor.delete("c").await.unwrap();
}

fn tgz_bytes() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(6);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "bin/hello.txt", &b"hello\n"[..])
        .unwrap();
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Clone)]
struct Files {
    hits: Arc<AtomicUsize>,
    tgz: Bytes,
}

async fn droplet(State(files): State<Files>) -> Bytes {
    files.hits.fetch_add(1, Ordering::SeqCst);
    // Slow enough that concurrent downloads overlap.
    tokio::time::sleep(Duration::from_millis(300)).await;
    files.tgz.clone()
}

fn download(from: String, cache_key: &str, checksum: &str) -> DownloadAction {
    DownloadAction {
        artifact: "droplet".into(),
        from,
        to: "/app".into(),
        cache_key: cache_key.into(),
        log_source: String::new(),
        user: "vcap".into(),
        checksum_algorithm: if checksum.is_empty() {
            String::new()
        } else {
            "SHA256".into()
        },
        checksum_value: checksum.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_verify_checksums_unpack_and_share_the_cache() {
    let mut r = real("download", |_| {}).await;
    let tgz = tgz_bytes();
    let files = Files {
        hits: Arc::default(),
        tgz: Bytes::from(tgz.clone()),
    };
    let addr = serve(
        Router::new()
            .route("/droplet.tgz", get(droplet))
            .route("/config", get(|| async { "port: 8080\n" }))
            .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
            .with_state(files.clone()),
    )
    .await;
    let url = format!("http://{addr}/droplet.tgz");
    let good = sha256(&tgz);

    // A good checksum: unpacked into the container.
    let done = within(
        "download",
        r.h.run_to_completion("d1", request(download(url.clone(), "droplet-1", &good))),
    )
    .await;
    assert!(!done.run_result.failed, "{:?}", done.run_result);
    let unpacked = r
        .backend
        .container_dir("d1")
        .unwrap()
        .join("app/bin/hello.txt");
    assert_eq!(std::fs::read(&unpacked).unwrap(), b"hello\n");
    let size = diego_executor::byte_size(tgz.len() as u64);
    let texts = r.h.texts();
    assert!(texts.contains(&"Downloading droplet...".to_string()));
    assert!(
        texts.contains(&format!("Downloaded droplet ({size})")),
        "{texts:?}"
    );
    assert_eq!(files.hits.load(Ordering::SeqCst), 1);

    // Same key: a cache hit, no new request.
    let done = within(
        "cached",
        r.h.run_to_completion("d2", request(download(url.clone(), "droplet-1", &good))),
    )
    .await;
    assert!(!done.run_result.failed);
    assert_eq!(
        files.hits.load(Ordering::SeqCst),
        1,
        "served from the cache"
    );
    let stats = r.h.executor.download_cache_stats().unwrap();
    assert_eq!((stats.entries, stats.hits), (1, 1));
    assert!(r
        .backend
        .container_dir("d2")
        .unwrap()
        .join("app/bin/hello.txt")
        .exists());

    // A bad checksum fails (and is not cached).
    let bad = "0".repeat(64);
    let done = within(
        "bad checksum",
        r.h.run_to_completion("d3", request(download(url.clone(), "droplet-2", &bad))),
    )
    .await;
    assert_eq!(
        done.run_result.failure_reason,
        format!("Downloading failed; checksum mismatch: expected {bad}, got {good}")
    );
    assert!(r
        .h
        .prefixed()
        .contains(&"[APP/PROC/WEB/0] ERR Downloading droplet failed".to_string()));
    assert_eq!(r.h.executor.download_cache_stats().unwrap().entries, 1);

    // Two containers downloading one new key at once: one request.
    let before = files.hits.load(Ordering::SeqCst);
    for guid in ["p1", "p2"] {
        r.h.reserve(guid).await;
    }
    r.h.executor
        .run("p1", request(download(url.clone(), "droplet-3", &good)))
        .await
        .unwrap();
    r.h.executor
        .run("p2", request(download(url.clone(), "droplet-3", &good)))
        .await
        .unwrap();
    for done in within("concurrent", r.h.wait_all_completed(&["p1", "p2"])).await {
        assert!(!done.run_result.failed, "{:?}", done.run_result);
    }
    assert_eq!(files.hits.load(Ordering::SeqCst), before + 1);

    // A plain file lands as `to`; an error status fails.
    let mut plain = download(format!("http://{addr}/config"), "", "");
    plain.to = "/etc/app/config.yml".into();
    let done = within("plain", r.h.run_to_completion("f1", request(plain))).await;
    assert!(!done.run_result.failed, "{:?}", done.run_result);
    let config = r
        .backend
        .container_dir("f1")
        .unwrap()
        .join("etc/app/config.yml");
    assert_eq!(std::fs::read_to_string(config).unwrap(), "port: 8080\n");
    let missing = download(format!("http://{addr}/missing"), "", "");
    let done = within("404", r.h.run_to_completion("f2", request(missing))).await;
    assert_eq!(
        done.run_result.failure_reason,
        "Downloading failed; Download failed: Status code 404"
    );
    for guid in ["d1", "d2", "d3", "p1", "p2", "f1", "f2"] {
        r.h.executor.delete(guid).await.unwrap();
    }
}

/// A POST route keeping what it receives, and what it received.
fn upload_sink() -> (Arc<Mutex<Vec<u8>>>, axum::routing::MethodRouter) {
    let received: Arc<Mutex<Vec<u8>>> = Arc::default();
    let sink = Arc::clone(&received);
    let route = post(move |body: Bytes| {
        let sink = Arc::clone(&sink);
        async move {
            sink.lock().unwrap().extend_from_slice(&body);
            StatusCode::CREATED
        }
    });
    (received, route)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_post_a_container_file() {
    let mut r = real("upload", |_| {}).await;
    let (received, sink) = upload_sink();
    let addr = serve(Router::new().route("/upload", sink)).await;
    let upload = UploadAction {
        artifact: "result".into(),
        from: "/out.txt".into(),
        to: format!("http://{addr}/upload"),
        log_source: String::new(),
        user: "vcap".into(),
    };
    let action = Action::serial([sh("echo payload > out.txt"), upload.into()]);
    let done = within("upload", r.h.run_to_completion("u", request(action))).await;
    assert!(!done.run_result.failed, "{:?}", done.run_result);
    assert_eq!(&received.lock().unwrap()[..], b"payload\n");
    let texts = r.h.texts();
    assert!(texts.contains(&"Uploading result...".to_string()));
    assert!(
        texts.contains(&"Uploaded result (8B)".to_string()),
        "{texts:?}"
    );
    r.h.executor.delete("u").await.unwrap();
}

/// The result file, an upload's source and a download's destination reached through links
/// the container made (to the host's /etc/passwd, to a host directory) stay in the
/// container; a FIFO or a 10 GB sparse result file fails the task at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_files_behind_links_stay_in_the_container() {
    let mut r = real("links", |_| {}).await;
    let outside = r.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "host secret\n").unwrap();
    let outside_in_root = outside.strip_prefix("/").unwrap().display().to_string();
    let with_result = |script: &str| {
        let mut req = request(sh(script));
        req.result_file = "/result".into();
        req
    };
    let started = Instant::now();
    for (guid, script) in [
        ("to-etc", "ln -s /etc/passwd result".to_string()),
        (
            "to-host",
            format!("ln -s {} result", outside.join("secret").display()),
        ),
        ("fifo", "mkfifo result".to_string()),
        ("sparse", "truncate -s 10G result".to_string()),
    ] {
        let done = within(guid, r.h.run_to_completion(guid, with_result(&script))).await;
        assert!(done.run_result.failed, "{guid}: {:?}", done.run_result);
        assert_eq!(
            done.run_result.failure_reason, FAILED_TO_FETCH_RESULT,
            "{guid}"
        );
        assert!(done.run_result.result.is_empty(), "{guid}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "took {:?}",
        started.elapsed()
    );
    // An absolute link inside the container resolves there.
    let done = within(
        "in-root link",
        r.h.run_to_completion(
            "in-root",
            with_result("mkdir -p etc && echo mine > etc/data && ln -s /etc/data result"),
        ),
    )
    .await;
    assert!(!done.run_result.failed, "{:?}", done.run_result);
    assert_eq!(done.run_result.result, "mine\n");

    // An upload from a link to the host's file sends nothing.
    let (received, sink) = upload_sink();
    let addr = serve(
        Router::new()
            .route("/upload", sink)
            .route("/config", get(|| async { "port: 8080\n" })),
    )
    .await;
    let upload = UploadAction {
        artifact: String::new(),
        from: "/out.txt".into(),
        to: format!("http://{addr}/upload"),
        log_source: String::new(),
        user: "vcap".into(),
    };
    let link = format!("ln -s {} out.txt", outside.join("secret").display());
    let action = Action::serial([sh(&link), upload.into()]);
    let done = within("upload", r.h.run_to_completion("up", request(action))).await;
    assert!(done.run_result.failed, "{:?}", done.run_result);
    assert!(
        done.run_result
            .failure_reason
            .starts_with("Uploading failed"),
        "{}",
        done.run_result.failure_reason
    );
    assert!(
        received.lock().unwrap().is_empty(),
        "the host's file was uploaded"
    );

    // A download through a link to a host directory lands inside the container.
    let mut fetch = download(format!("http://{addr}/config"), "", "");
    fetch.to = "/cfg/config.yml".into();
    let link = format!(
        "mkdir -p ./{outside_in_root} && ln -s {} cfg",
        outside.display()
    );
    let action = Action::serial([sh(&link), fetch.into()]);
    let done = within("download", r.h.run_to_completion("down", request(action))).await;
    assert!(!done.run_result.failed, "{:?}", done.run_result);
    let landed = r
        .backend
        .container_dir("down")
        .unwrap()
        .join(&outside_in_root)
        .join("config.yml");
    assert_eq!(std::fs::read_to_string(landed).unwrap(), "port: 8080\n");
    let left: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["secret"], "written outside the container");
    assert_eq!(
        std::fs::read_to_string(outside.join("secret")).unwrap(),
        "host secret\n"
    );
    for guid in [
        "to-etc", "to-host", "fifo", "sparse", "in-root", "up", "down",
    ] {
        r.h.executor.delete(guid).await.unwrap();
    }
}

#[derive(Clone)]
struct App {
    healthy_at: Instant,
    ready: Arc<AtomicBool>,
    user_agents: Arc<Mutex<Vec<String>>>,
}

async fn health(State(app): State<App>, headers: axum::http::HeaderMap) -> StatusCode {
    let agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    app.user_agents.lock().unwrap().push(agent);
    if Instant::now() >= app.healthy_at {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn ready(State(app): State<App>) -> StatusCode {
    if app.ready.load(Ordering::SeqCst) {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT // anything but 200 fails
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_checks_wait_for_health_and_readiness_flaps() {
    let mut r = real("checks", |config| {
        config.unhealthy_monitoring_interval = Duration::from_millis(100);
    })
    .await;
    let app = App {
        healthy_at: Instant::now() + Duration::from_millis(1500),
        ready: Arc::default(),
        user_agents: Arc::default(),
    };
    let addr = serve(
        Router::new()
            .route("/health", get(health))
            .route("/ready", get(ready))
            .with_state(app.clone()),
    )
    .await;
    let port = u32::from(addr.port());
    let mut req = request(sh("exec sleep 60"));
    req.check_definition = Some(CheckDefinition {
        checks: vec![Check::http(port, "/health"), Check::tcp(port)],
        readiness_checks: vec![Check {
            tcp_check: None,
            http_check: Some(HttpCheck {
                port,
                path: "/ready".into(),
                request_timeout_ms: 0,
                interval_ms: 100,
            }),
        }],
        log_source: String::new(),
    });
    req.start_timeout = Duration::from_secs(30);
    r.h.reserve("web").await;
    r.h.executor.run("web", req).await.unwrap();
    let running = within("healthy", r.h.wait_running("web")).await;
    assert!(
        Instant::now() >= app.healthy_at,
        "running before the server turned healthy"
    );
    assert!(!running.routable);
    assert!(app
        .user_agents
        .lock()
        .unwrap()
        .iter()
        .all(|a| a == "diego-healthcheck"));
    let mut flips = Vec::new();
    for on in [true, false, true] {
        app.ready.store(on, Ordering::SeqCst);
        let event = within("readiness flip", r.h.next_event("web")).await;
        match event {
            ContainerEvent::RoutableChanged(c) => flips.push(c.routable),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(flips, [true, false, true]);
    within("delete", r.h.executor.delete("web")).await.unwrap();
    assert!(r.backend.lookup("web").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_check_that_never_connects_times_out() {
    let mut r = real("tcp", |config| {
        config.unhealthy_monitoring_interval = Duration::from_millis(100);
    })
    .await;
    // A port nobody listens on: bind, note, release.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut req = request(sh("exec sleep 60"));
    req.check_definition = Some(CheckDefinition {
        checks: vec![Check::tcp(u32::from(port))],
        ..CheckDefinition::default()
    });
    req.start_timeout = Duration::from_millis(500);
    let done = within("never healthy", r.h.run_to_completion("tcp", req)).await;
    let reason = done.run_result.failure_reason;
    assert!(
        reason.starts_with("Instance never healthy after 500ms: Timed out after 500ms ("),
        "{reason}"
    );
    assert!(
        reason.ends_with(&format!(
            "attempts) waiting for startup check to succeed: failed to make TCP connection to \
             127.0.0.1:{port}: dial tcp 127.0.0.1:{port}: connect: connection refused"
        )),
        "{reason}"
    );
    r.h.executor.delete("tcp").await.unwrap();
}
