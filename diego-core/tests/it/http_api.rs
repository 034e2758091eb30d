//! The BBS HTTP API end to end through `BbsClient`: every operation, every error kind,
//! bad bodies, and server-sent events over a real connection.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use std::sync::Arc;
use std::time::Duration;

use common::{ik, key, lrp, net, task_request};
use diego_core::bbs::auctioneer_client::RecordingAuctioneer;
use diego_core::bbs::rep_client::RecordingRepClient;
use diego_core::http::{bbs_routes, BbsClient};
use diego_core::store::{ActualLrpFilter, TaskFilter};
use diego_core::*;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

struct Server {
    url: String,
    client: BbsClient,
    bbs: Bbs,
    auctioneer: Arc<RecordingAuctioneer>,
    cancel: CancellationToken,
}

async fn server() -> Server {
    let auctioneer = Arc::new(RecordingAuctioneer::new());
    let bbs = Bbs::builder()
        .auctioneer(auctioneer.clone())
        .rep_client(Arc::new(RecordingRepClient::new()))
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let cancel = CancellationToken::new();
    let api: Arc<dyn BbsApi> = Arc::new(bbs.clone());
    tokio::spawn(diego_core::http::serve(listener, api, cancel.clone()));
    let client = BbsClient::new(url.clone()).unwrap();
    Server {
        url,
        client,
        bbs,
        auctioneer,
        cancel,
    }
}

#[tokio::test]
async fn every_task_operation() {
    let s = server().await;
    let c: &dyn BbsApi = &s.client;
    s.client.ping().await.unwrap();
    c.desire_task(task_request("t1")).await.unwrap();
    assert!(matches!(
        c.desire_task(task_request("t1")).await,
        Err(Error::ResourceExists)
    ));
    assert_eq!(
        c.task_by_guid(&TaskGuid::new("t1")).await.unwrap().state,
        TaskState::Pending
    );
    assert!(matches!(
        c.task_by_guid(&TaskGuid::new("nope")).await,
        Err(Error::ResourceNotFound)
    ));
    assert!(c
        .start_task(&TaskGuid::new("t1"), &CellId::new("c1"))
        .await
        .unwrap());
    assert!(!c
        .start_task(&TaskGuid::new("t1"), &CellId::new("c1"))
        .await
        .unwrap());
    let e = c
        .complete_task(&TaskGuid::new("t1"), &CellId::new("c2"), false, "", "")
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "Running on cell c1 not c2");
    assert!(matches!(e, Error::RunningOnDifferentCell { .. }));
    c.complete_task(&TaskGuid::new("t1"), &CellId::new("c1"), false, "", "42")
        .await
        .unwrap();
    let e = c.cancel_task(&TaskGuid::new("t1")).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "Cannot transition from Completed to Completed"
    );
    c.resolving_task(&TaskGuid::new("t1")).await.unwrap();
    c.delete_task(&TaskGuid::new("t1")).await.unwrap();
    c.desire_task(task_request("t2")).await.unwrap();
    c.reject_task(&TaskGuid::new("t2"), "no room")
        .await
        .unwrap();
    c.fail_task(&TaskGuid::new("t2"), "given up").await.unwrap();
    assert!(matches!(
        c.reject_task(&TaskGuid::new("t2"), "x").await,
        Err(Error::BadRequest)
    ));
    c.desire_task(task_request("t3")).await.unwrap();
    c.cancel_task(&TaskGuid::new("t3")).await.unwrap();
    let listed = c
        .tasks(&TaskFilter {
            domain: Some("tasks".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    let mut bad = task_request("bad guid");
    bad.domain.clear();
    let e = c.desire_task(bad).await.unwrap_err();
    let v = e.validation_errors().expect("the fields come back");
    assert!(v.has_field("task_guid") && v.has_field("domain"));
    s.cancel.cancel();
}

#[tokio::test]
async fn every_lrp_operation() {
    let s = server().await;
    let c: &dyn BbsApi = &s.client;
    c.register_cell(&CellPresence {
        cell_id: CellId::new("c1"),
        rep_address: "c1:1800".into(),
        capacity: CellCapacity {
            memory_mb: 1024,
            disk_mb: 1024,
            containers: 10,
        },
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(c.cells().await.unwrap().len(), 1);
    assert_eq!(
        c.cell_by_id(&CellId::new("c1")).await.unwrap().rep_address,
        "c1:1800"
    );
    c.upsert_domain("apps", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(c.domains().await.unwrap(), ["apps"]);

    c.desire_lrp(lrp("web", 3)).await.unwrap();
    assert_eq!(s.auctioneer.requested_indices().len(), 3);
    assert!(matches!(
        c.desire_lrp(lrp("web", 3)).await,
        Err(Error::ResourceExists)
    ));
    assert_eq!(c.desired_lrps(&Default::default()).await.unwrap().len(), 1);
    assert_eq!(
        c.desired_lrp_scheduling_infos(&Default::default())
            .await
            .unwrap()[0]
            .instances,
        3
    );
    assert_eq!(
        c.desired_lrp_by_process_guid(&ProcessGuid::new("web"))
            .await
            .unwrap()
            .scheduling_info
            .instances,
        3
    );
    let a = ik("a", "c1");
    c.claim_actual_lrp(&key("web", 0), &a).await.unwrap();
    assert!(matches!(
        c.claim_actual_lrp(&key("web", 0), &ik("b", "c2")).await,
        Err(Error::ActualLrpCannotBeClaimed)
    ));
    c.start_actual_lrp(&key("web", 0), &a, &net(61000), true)
        .await
        .unwrap();
    assert!(matches!(
        c.start_actual_lrp(&key("web", 0), &ik("b", "c2"), &net(1), true)
            .await,
        Err(Error::ActualLrpCannotBeStarted)
    ));
    let rows = c
        .actual_lrps(&ActualLrpFilter {
            cell_id: Some(CellId::new("c1")),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, ActualLrpState::Running);
    c.fail_actual_lrp(&key("web", 1), "insufficient resources: disk")
        .await
        .unwrap();
    assert!(matches!(
        c.fail_actual_lrp(&key("web", 0), "x").await,
        Err(Error::ActualLrpCannotBeFailed)
    ));
    c.crash_actual_lrp(&key("web", 0), &a, "boom")
        .await
        .unwrap();
    assert!(matches!(
        c.crash_actual_lrp(&key("web", 0), &a, "again").await,
        Err(Error::ActualLrpCannotBeCrashed)
    ));
    let b = ik("b", "c1");
    c.claim_actual_lrp(&key("web", 0), &b).await.unwrap();
    c.start_actual_lrp(&key("web", 0), &b, &net(61001), true)
        .await
        .unwrap();
    assert!(c
        .evacuate_running_actual_lrp(&key("web", 0), &b, &net(61001))
        .await
        .unwrap());
    c.remove_evacuating_actual_lrp(&key("web", 0), &b)
        .await
        .unwrap();
    let x = ik("x", "c1");
    c.claim_actual_lrp(&key("web", 0), &x).await.unwrap();
    assert!(!c
        .evacuate_claimed_actual_lrp(&key("web", 0), &x)
        .await
        .unwrap());
    c.claim_actual_lrp(&key("web", 0), &x).await.unwrap();
    c.start_actual_lrp(&key("web", 0), &x, &net(1), true)
        .await
        .unwrap();
    assert!(!c
        .evacuate_crashed_actual_lrp(&key("web", 0), &x, "oom")
        .await
        .unwrap());
    c.claim_actual_lrp(&key("web", 2), &x).await.unwrap();
    assert!(!c
        .evacuate_stopped_actual_lrp(&key("web", 2), &x)
        .await
        .unwrap());
    assert!(matches!(
        c.remove_actual_lrp(&key("web", 1), Some(&ik("z", "c9")))
            .await,
        Err(Error::ActualLrpCannotBeRemoved)
    ));
    c.remove_actual_lrp(&key("web", 1), None).await.unwrap();
    c.retire_actual_lrp(&key("web", 0)).await.unwrap();
    c.update_desired_lrp(
        &ProcessGuid::new("web"),
        DesiredLrpUpdate {
            instances: Some(1),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    c.remove_desired_lrp(&ProcessGuid::new("web"))
        .await
        .unwrap();
    assert!(matches!(
        c.remove_desired_lrp(&ProcessGuid::new("web")).await,
        Err(Error::ResourceNotFound)
    ));
    c.remove_cell(&CellId::new("c1")).await.unwrap();
    assert!(c.cells().await.unwrap().is_empty());
    s.cancel.cancel();
}

#[tokio::test]
async fn bad_bodies_get_clear_json_errors() {
    let s = server().await;
    let http = reqwest::Client::new();
    // Malformed JSON.
    let r = http
        .post(format!("{}/v1/tasks/desire", s.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["type"], "InvalidRequest");
    // Unknown fields are refused.
    let r = http
        .post(format!("{}/v1/tasks/start", s.url))
        .json(&serde_json::json!({"task_guid": "t", "cell_id": "c", "bogus": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("bogus"),
        "{body}"
    );
    // Too large.
    let big = "x".repeat(5 * 1024 * 1024);
    let r = http
        .post(format!("{}/v1/tasks/desire", s.url))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["message"], "the request body is too large");
    // Validation errors name every field.
    let r = http
        .post(format!("{}/v1/desired_lrp/desire", s.url))
        .json(&serde_json::json!({"process_guid": "a b", "domain": "", "rootfs": "x", "instances": -1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["process_guid", "domain", "rootfs", "instances", "action"]
    );
    // The server's own router answers /ping.
    let app = bbs_routes(Arc::new(s.bbs.clone()));
    drop(app);
    assert_eq!(
        http.get(format!("{}/ping", s.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    s.cancel.cancel();
}

async fn next(s: &mut EventStream<LrpEvent>) -> EventItem<LrpEvent> {
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn events_stream_over_sse_with_the_cell_filter() {
    let s = server().await;
    let c: &dyn BbsApi = &s.client;
    let mut all = c.subscribe_lrp_events(None).await.unwrap();
    let mut on_c1 = c
        .subscribe_lrp_events(Some(CellId::new("c1")))
        .await
        .unwrap();
    let mut tasks = c.subscribe_task_events().await.unwrap();
    c.desire_lrp(lrp("web", 1)).await.unwrap();
    c.claim_actual_lrp(&key("web", 0), &ik("a", "c1"))
        .await
        .unwrap();
    c.desire_task(task_request("t1")).await.unwrap();
    let mut names = Vec::new();
    for _ in 0..3 {
        match next(&mut all).await {
            EventItem::Event(e) => names.push(e.event.name()),
            EventItem::Lagged { .. } => panic!("lagged"),
        }
    }
    assert_eq!(
        names,
        [
            "desired_lrp_created",
            "actual_lrp_instance_created",
            "actual_lrp_instance_changed"
        ]
    );
    match next(&mut on_c1).await {
        EventItem::Event(e) => match &e.event {
            LrpEvent::ActualLrpInstanceChanged { after, .. } => {
                assert_eq!(after.state, ActualLrpState::Claimed);
                assert!(e.seq > 0);
            }
            other => panic!("unexpected {other:?}"),
        },
        other => panic!("unexpected {other:?}"),
    }
    let t = tokio::time::timeout(Duration::from_secs(10), tasks.next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(t, EventItem::Event(e) if e.event.name() == "task_created"));
    s.cancel.cancel();
}

#[tokio::test]
async fn an_unreachable_bbs_is_unavailable() {
    let client = BbsClient::new("http://127.0.0.1:1").unwrap();
    let e = client.domains().await.unwrap_err();
    assert_eq!(e.kind(), "Unavailable");
}

#[tokio::test]
async fn completion_callbacks_over_http_follow_the_retry_rules() {
    use diego_core::bbs::completion_callback::{
        CompletionCallback, Delivery, TaskCallbackResponse,
    };
    use diego_core::http::HttpCompletionCallback;
    use std::sync::atomic::{AtomicU16, Ordering};

    // A receiver answering with a status the test sets.
    let status = Arc::new(AtomicU16::new(200));
    let seen = Arc::new(parking_lot::Mutex::new(Vec::<serde_json::Value>::new()));
    let app = axum::Router::new().route(
        "/done",
        axum::routing::post({
            let status = status.clone();
            let seen = seen.clone();
            move |body: axum::Json<serde_json::Value>| {
                let status = status.clone();
                let seen = seen.clone();
                async move {
                    seen.lock().push(body.0);
                    axum::http::StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/done", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let cb = HttpCompletionCallback::new(Duration::from_secs(5)).unwrap();
    let body = TaskCallbackResponse {
        task_guid: TaskGuid::new("t"),
        failed: false,
        failure_reason: String::new(),
        result: "42".into(),
        annotation: String::new(),
        created_at: Timestamp(1),
    };
    assert_eq!(cb.deliver(&url, &body).await, Delivery::Delivered);
    assert_eq!(seen.lock()[0]["result"], "42");
    status.store(500, Ordering::SeqCst);
    assert_eq!(
        cb.deliver(&url, &body).await,
        Delivery::Delivered,
        "any status but 503/504 counts"
    );
    status.store(503, Ordering::SeqCst);
    assert!(matches!(cb.deliver(&url, &body).await, Delivery::Retry(_)));
    status.store(504, Ordering::SeqCst);
    assert!(matches!(cb.deliver(&url, &body).await, Delivery::Retry(_)));
    // Nobody listening: a network error that is not worth retrying.
    assert!(matches!(
        cb.deliver("http://127.0.0.1:1/done", &body).await,
        Delivery::GiveUp(_)
    ));
}
