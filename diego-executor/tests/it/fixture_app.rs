//! The fixture app answers every route it documents.
#![cfg(feature = "fixture-app")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

struct Running(tokio::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(extra: &[&str]) -> (Running, String, std::path::PathBuf) {
    let port = free_port();
    let side = free_port();
    let up = std::env::temp_dir().join(format!("fixture-up-{}-{port}", std::process::id()));
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_diego-fixture-app"))
        .arg("--touch-when-up")
        .arg(&up)
        .args(extra)
        .env("PORT", port.to_string())
        .env("SIDE_PORT", side.to_string())
        .env("INSTANCE_INDEX", "7")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..500 {
        if up.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(up.exists(), "the fixture app never came up");
    (Running(child), format!("http://127.0.0.1:{port}"), up)
}

#[tokio::test]
async fn answers_its_routes() {
    let (_app, url, up) = start(&[]).await;
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let http = http.clone();
        let url = format!("{url}{path}");
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(get("/ping").await, "pong");
    assert_eq!(get("/index").await, "7");
    assert_eq!(get("/").await, "hello from instance 7\n");
    let env: serde_json::Value = serde_json::from_str(&get("/env").await).unwrap();
    assert_eq!(env["INSTANCE_INDEX"], "7");
    assert_eq!(get("/counter").await, "0");
    let inc = http
        .post(format!("{url}/counter"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(inc, "1");
    assert_eq!(get("/counter").await, "1");
    assert!(get("/started-at").await.parse::<u64>().unwrap() > 0);
    assert_eq!(get("/sleep/20").await, "slept 20ms");
    std::fs::remove_file(up).unwrap();
}

#[tokio::test]
async fn exits_on_request_and_after_a_delay() {
    let (mut app, url, up) = start(&[]).await;
    reqwest::Client::new()
        .post(format!("{url}/exit/3"))
        .send()
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), app.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(3));
    std::fs::remove_file(up).unwrap();

    let (mut app, _url, up) = start(&["--exit-after-ms", "200", "--exit-code", "4"]).await;
    let status = tokio::time::timeout(Duration::from_secs(20), app.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(4));
    std::fs::remove_file(up).unwrap();
}

#[tokio::test]
async fn can_ignore_sigterm() {
    let (mut app, url, up) = start(&["--ignore-sigterm"]).await;
    let pid = app.0.id().unwrap();
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.0.try_wait().unwrap().is_none(), "SIGTERM was ignored");
    assert_eq!(
        reqwest::get(format!("{url}/ping"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "pong"
    );
    app.0.start_kill().unwrap();
    app.0.wait().await.unwrap();
    std::fs::remove_file(up).unwrap();
}
