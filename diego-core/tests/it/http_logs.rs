//! The BBS HTTP API's log route (recent and followed lines over a real connection) and
//! request ids (`X-Vcap-Request-Id`: echoed, made when absent, forwarded to the calls a
//! request causes).
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::task_request;
use diego_core::bbs::auctioneer_client::RecordingAuctioneer;
use diego_core::http::{BbsClient, BbsServer, LogRecord};
use diego_core::log_sink::{LogLine, LogSink, LogStream, RingBufferLogSink};
use diego_core::models::metric_tags::MetricTags;
use diego_core::request_id::{self, REQUEST_ID_HEADER};
use diego_core::*;
use futures::StreamExt;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

async fn start(server: BbsServer) -> (String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let cancel = CancellationToken::new();
    tokio::spawn(server.serve(listener, cancel.clone()));
    (url, cancel)
}

fn plain_bbs() -> Arc<dyn BbsApi> {
    Arc::new(
        Bbs::builder()
            .auctioneer(Arc::new(RecordingAuctioneer::new()))
            .build(),
    )
}

fn line(guid: &str, index: i32, text: &str) -> LogLine {
    LogLine::out(guid, "APP/PROC/WEB", index, Timestamp(7), text.to_owned())
}

#[tokio::test]
async fn recent_lines_then_followed_lines_over_a_real_connection() {
    let logs = Arc::new(RingBufferLogSink::new(100));
    let tags: diego_core::log_sink::LogTags = [("source_id".to_owned(), "app".to_owned())]
        .into_iter()
        .collect();
    logs.emit(line("app", 0, "booting").with_tags(Arc::new(tags.clone())));
    logs.emit(LogLine::err("app", "CELL", 1, Timestamp(8), "oops"));
    logs.emit(line("other", 0, "not mine"));
    let (url, cancel) = start(BbsServer::new(plain_bbs()).log_sink(logs.clone())).await;
    let client = BbsClient::new(url).unwrap();

    let recent = client.recent_logs("app").await.unwrap();
    assert_eq!(
        recent,
        vec![
            LogRecord {
                source_id: "app".into(),
                source_type: "APP/PROC/WEB".into(),
                instance_index: 0,
                stream: LogStream::Out,
                timestamp: Timestamp(7),
                message: "booting".into(),
                tags,
            },
            LogRecord {
                source_id: "app".into(),
                source_type: "CELL".into(),
                instance_index: 1,
                stream: LogStream::Err,
                timestamp: Timestamp(8),
                message: "oops".into(),
                tags: Default::default(),
            },
        ]
    );
    assert!(client.recent_logs("nobody").await.unwrap().is_empty());

    // Follow: the kept lines first, then new ones as they are emitted.
    let mut live = client.follow_logs("app").await.unwrap();
    let first = tokio::time::timeout(WAIT, live.next()).await.unwrap();
    assert_eq!(first.unwrap().unwrap().message, "booting");
    let second = tokio::time::timeout(WAIT, live.next()).await.unwrap();
    assert_eq!(second.unwrap().unwrap().message, "oops");
    logs.emit(line("other", 0, "still not mine"));
    logs.emit(line("app", 2, "ready"));
    let third = tokio::time::timeout(WAIT, live.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((third.message.as_str(), third.instance_index), ("ready", 2));
    let back: LogLine = third.into();
    assert_eq!(back.text(), "ready");

    // A log guid with characters that need escaping in a path.
    logs.emit(line("a b/c", 0, "escaped"));
    let odd = client.recent_logs("a b/c").await.unwrap();
    assert_eq!(odd.len(), 1);
    assert_eq!(odd[0].message, "escaped");
    cancel.cancel();
}

#[tokio::test]
async fn without_a_log_sink_the_route_says_so_and_bad_queries_are_named() {
    let (url, cancel) = start(BbsServer::new(plain_bbs())).await;
    let client = BbsClient::new(url.clone()).unwrap();
    let err = client.recent_logs("app").await.unwrap_err();
    assert_eq!(err.kind(), "Unavailable");
    assert!(err.to_string().contains("without a log sink"), "{err}");
    assert!(client.follow_logs("app").await.is_err());
    let resp = reqwest::get(format!("{url}/v1/logs/app")).await.unwrap();
    assert_eq!(resp.status(), 501);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "Unavailable");
    cancel.cancel();

    let logs = Arc::new(RingBufferLogSink::new(10));
    let (url, cancel) = start(BbsServer::new(plain_bbs()).log_sink(logs)).await;
    let resp = reqwest::get(format!("{url}/v1/logs/app?follow=maybe"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "InvalidRequest");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Invalid field: follow"),
        "{body}"
    );
    cancel.cancel();
}

#[tokio::test]
async fn request_ids_are_echoed_and_made_when_absent() {
    let (url, cancel) = start(BbsServer::new(plain_bbs())).await;
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{url}/v1/domains/list"))
        .header("X-Vcap-Request-Id", "trace-abc")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()[REQUEST_ID_HEADER], "trace-abc");

    // Errors carry it too.
    let resp = http
        .post(format!("{url}/v1/tasks/get_by_task_guid"))
        .header(REQUEST_ID_HEADER, "trace-404")
        .json(&serde_json::json!({"task_guid": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()[REQUEST_ID_HEADER], "trace-404");

    // Absent: a fresh UUID per request.
    let mut made = Vec::new();
    for _ in 0..2 {
        let resp = http.get(format!("{url}/ping")).send().await.unwrap();
        let id = resp.headers()[REQUEST_ID_HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(id.matches('-').count(), 4, "{id}");
        made.push(id);
    }
    assert_ne!(made[0], made[1]);
    cancel.cancel();
}

/// A rep client recording the request id current when each call is made.
#[derive(Debug, Default)]
struct IdRecordingRepClient {
    ids: Mutex<Vec<Option<String>>>,
}

#[async_trait]
impl RepClient for IdRecordingRepClient {
    async fn stop_lrp_instance(
        &self,
        _: &CellPresence,
        _: &ActualLrpKey,
        _: &ActualLrpInstanceKey,
    ) -> Result<()> {
        self.ids.lock().push(request_id::current());
        Ok(())
    }

    async fn cancel_task(&self, _: &CellPresence, _: &TaskGuid) -> Result<()> {
        self.ids.lock().push(request_id::current());
        Ok(())
    }

    async fn update_lrp_instance(
        &self,
        _: &CellPresence,
        _: &ActualLrpKey,
        _: &ActualLrpInstanceKey,
        _: &MetricTags,
    ) -> Result<()> {
        self.ids.lock().push(request_id::current());
        Ok(())
    }
}

#[tokio::test]
async fn a_request_id_sent_through_the_client_reaches_the_rep_call_it_causes() {
    let reps = Arc::new(IdRecordingRepClient::default());
    let bbs = Bbs::builder()
        .auctioneer(Arc::new(RecordingAuctioneer::new()))
        .rep_client(reps.clone())
        .build();
    let (url, cancel) = start(BbsServer::new(Arc::new(bbs.clone()))).await;
    let client = BbsClient::new(url).unwrap();
    bbs.register_cell(&CellPresence {
        cell_id: CellId::new("c1"),
        rep_address: "127.0.0.1:1".into(),
        capacity: CellCapacity {
            memory_mb: 1024,
            disk_mb: 1024,
            containers: 10,
        },
        ..Default::default()
    })
    .await
    .unwrap();
    bbs.desire_task(task_request("t1")).await.unwrap();
    bbs.start_task(&TaskGuid::new("t1"), &CellId::new("c1"))
        .await
        .unwrap();
    assert!(request_id::current().is_none());
    request_id::scope("trace-cancel", client.cancel_task(&TaskGuid::new("t1")))
        .await
        .unwrap();
    assert_eq!(
        reps.ids.lock().clone(),
        vec![Some("trace-cancel".to_owned())]
    );
    cancel.cancel();
}

#[tokio::test]
async fn stopping_the_server_ends_open_log_and_event_streams() {
    let logs = Arc::new(RingBufferLogSink::new(10));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let cancel = CancellationToken::new();
    let server = tokio::spawn(
        BbsServer::new(plain_bbs())
            .log_sink(logs.clone())
            .serve(listener, cancel.clone()),
    );
    let client = BbsClient::new(url).unwrap();
    let mut live = client.follow_logs("app").await.unwrap();
    let mut events = client.subscribe_task_events().await.unwrap();
    logs.emit(line("app", 0, "one"));
    let first = tokio::time::timeout(WAIT, live.next()).await.unwrap();
    assert_eq!(first.unwrap().unwrap().message, "one");
    cancel.cancel();
    tokio::time::timeout(WAIT, server)
        .await
        .expect("the server stops although streams were open")
        .unwrap()
        .unwrap();
    let end = tokio::time::timeout(WAIT, live.next()).await.unwrap();
    assert!(end.as_ref().is_none_or(|r| r.is_err()), "{end:?}");
    assert!(tokio::time::timeout(WAIT, events.next())
        .await
        .unwrap()
        .is_none());
}
