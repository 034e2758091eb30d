//! The main job's code path: the local cluster starts, the demo app answers, and
//! shutdown leaves nothing behind.
#![cfg(all(feature = "local-cluster", feature = "fixture-app"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use diego_executor::local_cluster::{LocalCluster, LocalClusterOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_cluster_serves_the_demo_and_stops_cleanly() {
    let mut opts = LocalClusterOptions::new(env!("CARGO_BIN_EXE_diego-fixture-app"));
    opts.api_addr = "127.0.0.1:0".parse().unwrap();
    opts.router_addr = "127.0.0.1:0".parse().unwrap();
    opts.work_dir = std::env::temp_dir().join(format!("diego-local-test-{}", std::process::id()));
    opts.print_logs = false;
    let work_dir = opts.work_dir.clone();
    let local = LocalCluster::start(opts).await.unwrap();
    local
        .wait_until_ready(3, Duration::from_secs(60))
        .await
        .unwrap();
    let urls = local.demo_urls().await.unwrap();
    assert_eq!(urls.len(), 3);
    let http = reqwest::Client::new();
    for (index, url) in &urls {
        let body = http
            .get(format!("{url}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, format!("hello from instance {index}\n"));
    }
    // Through the router, by host name, round robin over the three instances.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let r = http
            .get(format!("{}/", local.router_url()))
            .header("Host", "demo.localhost")
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            seen.insert(r.text().await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen.len(),
        3,
        "every instance answered through the router: {seen:?}"
    );
    let r = http
        .get(format!("{}/", local.router_url()))
        .header("Host", "nope.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // The BBS API answers too.
    let api = format!("{}/v1/actual_lrps/list", local.api_url());
    let rows: serde_json::Value = http
        .post(api)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3);
    // The `diego` command line against the running cluster (what the README says to try).
    #[cfg(feature = "cli")]
    {
        let api_url = local.api_url().to_string();
        let out = tokio::task::spawn_blocking(move || {
            assert_cmd::Command::cargo_bin("diego")
                .unwrap()
                .args(["--bbs-url", &api_url, "actual-lrps"])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{table}");
        let running = table
            .lines()
            .filter(|l| l.starts_with("demo") && l.contains(" RUNNING "))
            .count();
        assert_eq!(running, 3, "{table}");
    }
    // App logs arrive with the instance's source and index.
    assert!(local
        .logs()
        .lines("demo")
        .iter()
        .any(|l| l.text().contains("listening")));
    // ...and through the API (what `diego logs demo` shows).
    let client = diego_core::http::BbsClient::new(local.api_url()).unwrap();
    let served = client.recent_logs("demo").await.unwrap();
    assert!(
        served.iter().any(|l| l.message.contains("listening")),
        "{served:?}"
    );
    local.shutdown().await;
    assert!(!work_dir.exists(), "the work directory is removed");
    for (_, url) in urls {
        assert!(
            http.get(format!("{url}/ping")).send().await.is_err(),
            "instances are gone"
        );
    }
}
