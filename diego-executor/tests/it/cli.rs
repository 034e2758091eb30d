//! The `diego` command line against a running BBS (its HTTP API in this process).
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use assert_cmd::Command;
use diego_core::bbs::auctioneer_client::RecordingAuctioneer;
use diego_core::prelude::*;
use diego_core::Bbs;
use tokio_util::sync::CancellationToken;

async fn bbs() -> (String, Bbs, CancellationToken) {
    let bbs = Bbs::builder()
        .auctioneer(Arc::new(RecordingAuctioneer::new()))
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let cancel = CancellationToken::new();
    let api: Arc<dyn BbsApi> = Arc::new(bbs.clone());
    tokio::spawn(diego_core::http::serve(listener, api, cancel.clone()));
    (url, bbs, cancel)
}

/// Runs `diego ARGS` (off the runtime's threads) and returns its output.
async fn diego(url: &str, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut cmd = Command::cargo_bin("diego").unwrap();
    cmd.arg("--bbs-url").arg(url).args(args);
    if let Some(input) = stdin {
        cmd.write_stdin(input.to_owned());
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

const LRP: &str = r#"{"process_guid": "web", "domain": "apps", "rootfs": "preloaded:cflinuxfs4",
  "instances": 2, "memory_mb": 128, "action": {"run": {"path": "/app", "user": "vcap"}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drives_a_bbs() {
    let (url, bbs, cancel) = bbs().await;
    let out = diego(&url, &["desire-lrp", "-"], Some(LRP)).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("desired LRP web"));

    let out = diego(&url, &["desired-lrps"], None).await;
    let t = text(&out);
    assert!(t.starts_with("PROCESS GUID"), "{t}");
    assert!(t.contains("web") && t.contains("apps"), "{t}");

    let out = diego(&url, &["--json", "actual-lrps"], None).await;
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);

    let out = diego(&url, &["scale", "web", "3"], None).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(bbs.actual_lrps(&Default::default()).await.unwrap().len(), 3);

    let routes = r#"{"cf-router": [{"hostnames": ["web.example"], "port": 8080}]}"#;
    let out = diego(&url, &["update-routes", "web", routes], None).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = diego(&url, &["desired-lrps"], None).await;
    assert!(text(&out).contains("web.example"));

    let task = r#"{"task_guid": "t1", "domain": "jobs", "task_definition":
      {"rootfs": "preloaded:cflinuxfs4", "action": {"run": {"path": "/bin/true", "user": "vcap"}}}}"#;
    let out = diego(&url, &["desire-task", "-"], Some(task)).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = diego(&url, &["tasks"], None).await;
    assert!(text(&out).contains("t1") && text(&out).contains("Pending"));
    let out = diego(&url, &["cancel-task", "t1"], None).await;
    assert!(out.status.success());
    let out = diego(&url, &["--json", "task", "t1"], None).await;
    let t: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(t["failure_reason"], "task was cancelled");

    let out = diego(&url, &["set-domain", "apps", "--ttl", "60"], None).await;
    assert!(out.status.success());
    let out = diego(&url, &["domains"], None).await;
    assert_eq!(text(&out).trim(), "apps");

    let out = diego(&url, &["delete-lrp", "web"], None).await;
    assert!(out.status.success());
    let out = diego(&url, &["cells"], None).await;
    assert!(text(&out).starts_with("CELL"));
    cancel.cancel();
}

/// `desire-lrp FILE`, `desired-lrp GUID`, `actual-lrps --cell` and `events`, with the
/// BBS's address from `DIEGO_BBS_URL` instead of `--bbs-url`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_lrp_a_cells_instances_and_events_with_the_url_from_the_environment() {
    use diego_core::{ActualLrpInstanceKey, ActualLrpKey};
    let (url, bbs, cancel) = bbs().await;
    let from_env = |args: &[&str]| {
        let mut cmd = Command::cargo_bin("diego").unwrap();
        cmd.env("DIEGO_BBS_URL", &url).args(args);
        cmd
    };
    let run = |mut cmd: Command| async move {
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    };
    let dir = std::env::temp_dir().join(format!("diego-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("web.json");
    std::fs::write(&file, LRP).unwrap();
    let out = run(from_env(&["desire-lrp", file.to_str().unwrap()])).await;
    assert!(out.status.success(), "{}", text(&out));
    std::fs::remove_dir_all(&dir).unwrap();

    let out = run(from_env(&["--json", "desired-lrp", "web"])).await;
    let lrp: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(lrp["process_guid"], "web", "{lrp}");

    bbs.claim_actual_lrp(
        &ActualLrpKey::new("web", 1, "apps"),
        &ActualLrpInstanceKey::new("i-1", "cell-a"),
    )
    .await
    .unwrap();
    let out = run(from_env(&["--json", "actual-lrps", "--cell", "cell-a"])).await;
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["key"]["index"], 1, "{rows:?}");

    // `events --count 1` ends after the first event; scaling makes events until then.
    let events = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::cargo_bin("diego").unwrap();
        cmd.env("DIEGO_BBS_URL", &url)
            .args(["events", "--count", "1"]);
        cmd.timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap()
    });
    let mut instances = 2;
    while !events.is_finished() {
        instances += 1;
        let update = diego_core::DesiredLrpUpdate {
            instances: Some(instances),
            ..Default::default()
        };
        bbs.update_desired_lrp(&diego_core::ProcessGuid::new("web"), update)
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let out = events.await.unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).trim().starts_with("actual_lrp_")
            || text(&out).trim().starts_with("desired_lrp_"),
        "{}",
        text(&out)
    );
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_2_and_refusals_exit_1() {
    let (url, _bbs, cancel) = bbs().await;
    let out = diego(&url, &["desire-lrp", "-"], Some("{not json")).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("invalid DesiredLRP"));
    let bad = r#"{"process_guid": "a b", "domain": "", "rootfs": "x"}"#;
    let out = diego(&url, &["desire-lrp", "-"], Some(bad)).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("Invalid field: process_guid"),
        "{}",
        text(&out)
    );
    let out = diego(&url, &["scale", "nope", "3"], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("the requested resource could not be found"));
    let out = diego(&url, &["no-such-command"], None).await;
    assert_eq!(out.status.code(), Some(2));
    let out = diego("http://127.0.0.1:1", &["cells"], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("unreachable"), "{}", text(&out));
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_recent_and_followed() {
    use diego_core::log_sink::{LogLine, LogSink, RingBufferLogSink};
    use diego_core::Timestamp;

    let logs = Arc::new(RingBufferLogSink::new(100));
    let line = |i: i32, text: &str| {
        LogLine::out(
            "app-1",
            "APP/PROC/WEB",
            i,
            Timestamp(1_700_000_000_000_000_000),
            text.to_owned(),
        )
    };
    logs.emit(line(0, "booting"));
    logs.emit(line(1, "listening on 8080"));
    let api: Arc<dyn BbsApi> = Arc::new(
        Bbs::builder()
            .auctioneer(Arc::new(RecordingAuctioneer::new()))
            .build(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let cancel = CancellationToken::new();
    tokio::spawn(
        diego_core::http::BbsServer::new(api)
            .log_sink(logs.clone())
            .serve(listener, cancel.clone()),
    );

    let out = diego(&url, &["logs", "app-1"], None).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "2023-11-14T22:13:20Z [APP/PROC/WEB/0] OUT booting",
            "2023-11-14T22:13:20Z [APP/PROC/WEB/1] OUT listening on 8080",
        ]
    );
    let out = diego(&url, &["--json", "logs", "app-1"], None).await;
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[1]["message"], "listening on 8080");
    assert_eq!(rows[1]["instance_index"], 1);

    // Follow: the kept lines, then one written while it runs.
    let writer = {
        let logs = logs.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            logs.emit(line(2, "GET / 200"));
        })
    };
    let out = diego(
        &url,
        &["--json", "logs", "app-1", "--follow", "--count", "3"],
        None,
    )
    .await;
    writer.await.unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let messages: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["message"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(messages, ["booting", "listening on 8080", "GET / 200"]);

    // Bad input exits 2; a BBS without logs exits 1 and says why.
    let out = diego(&url, &["logs", " "], None).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = diego(&url, &["logs", "app-1", "--count", "2"], None).await;
    assert_eq!(out.status.code(), Some(2), "--count needs --follow");
    cancel.cancel();
    let (plain_url, _bbs, plain_cancel) = bbs().await;
    let out = diego(&plain_url, &["logs", "app-1"], None).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("without a log sink"), "{}", text(&out));
    plain_cancel.cancel();
}
