//! A rep served over HTTP on 127.0.0.1:0, driven through the HTTP clients: state,
//! perform, stop, cancel, update, evacuate, ping, error answers, a killed and a hung
//! server, and request ids forwarded from the BBS to the rep. Real sockets, so real
//! time (with generous limits).
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::wait_for;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use diego_auction::{CellClient, CellClientFactory, Work};
use diego_core::bbs::auctioneer_client::RecordingAuctioneer;
use diego_core::http::{BbsClient, BbsServer};
use diego_core::request_id::{self, REQUEST_ID_HEADER};
use diego_core::store::ActualLrpFilter;
use diego_core::*;
use diego_executor::http::{
    HttpCellClient, HttpCellClientFactory, HttpClientConfig, HttpRepClient, RepServer,
};
use diego_executor::{Executor, ExecutorConfig, Rep, RepConfig, Resources};
use diego_garden::{FakeBackend, FakeScript, FakeStep};
use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(20);

struct Cell {
    bbs: Bbs,
    auctioneer: Arc<RecordingAuctioneer>,
    rep: Rep,
    url: String,
    client: HttpCellClient,
    server: JoinHandle<std::io::Result<()>>,
    cancel: CancellationToken,
    evacuated: CancellationToken,
}

/// A BBS (reaching reps over HTTP) and one cell `cell-1` whose rep serves HTTP.
async fn cell() -> Cell {
    let auctioneer = Arc::new(RecordingAuctioneer::new());
    let bbs = Bbs::builder()
        .auctioneer(auctioneer.clone())
        .rep_client(Arc::new(
            HttpRepClient::new(HttpClientConfig::default()).unwrap(),
        ))
        .build();
    let backend = FakeBackend::new();
    backend.set_program("/app/server", |_| {
        FakeScript::new()
            .then(FakeStep::Listen(0))
            .then(FakeStep::Forever)
    });
    backend.set_program("/bin/forever", |_| {
        FakeScript::new().then(FakeStep::Forever)
    });
    let executor = Executor::builder(Arc::new(backend))
        .config(
            ExecutorConfig::default()
                .with_cell_id("cell-1")
                .with_owner_name("executor-cell-1")
                .with_total_resources(Resources {
                    memory_mb: 1024,
                    disk_mb: 4096,
                    containers: 10,
                }),
        )
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = RepConfig::new("cell-1");
    config.rep_address = addr.to_string();
    config.rep_url = format!("http://{addr}");
    let rep = Rep::new(Arc::new(bbs.clone()), executor, config);
    let cancel = CancellationToken::new();
    let evacuated = CancellationToken::new();
    tokio::spawn({
        let rep = rep.clone();
        let cancel = cancel.clone();
        async move { rep.run(cancel).await }
    });
    let server = tokio::spawn(
        RepServer::new(rep.clone())
            .on_evacuated(evacuated.clone())
            .serve(listener, cancel.clone()),
    );
    rep.register().await.unwrap();
    let url = format!("http://{addr}");
    let client = HttpCellClient::new("cell-1", &url, &HttpClientConfig::default()).unwrap();
    Cell {
        bbs,
        auctioneer,
        rep,
        url,
        client,
        server,
        cancel,
        evacuated,
    }
}

fn web(instances: i32, memory_mb: i32) -> DesiredLrp {
    let mut d = DesiredLrp::new(
        "web",
        "apps",
        "preloaded:cflinuxfs4",
        instances,
        RunAction::new("/app/server", "vcap"),
    );
    d.scheduling_info.memory_mb = memory_mb;
    d.scheduling_info.disk_mb = 64;
    d.run_info.ports = vec![8080];
    d
}

fn task(guid: &str) -> DesireTaskRequest {
    let mut def = TaskDefinition::new(
        "preloaded:cflinuxfs4",
        RunAction::new("/bin/forever", "vcap"),
    );
    def.memory_mb = 64;
    DesireTaskRequest {
        task_guid: TaskGuid::new(guid),
        domain: "jobs".into(),
        task_definition: def,
    }
}

async fn running_rows(bbs: &Bbs) -> Vec<Arc<ActualLrp>> {
    bbs.actual_lrps(&ActualLrpFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.state == ActualLrpState::Running)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_perform_stop_update_and_cancel_over_http() {
    let c = cell().await;
    c.client.ping().await.unwrap();

    let state = c.client.state().await.unwrap();
    assert_eq!(state.cell_id.as_str(), "cell-1");
    assert_eq!(state.rep_url, c.url);
    assert_eq!(state.total_resources.memory_mb, 1024);
    assert_eq!(state.available_resources, state.total_resources);
    assert!(state.lrps.is_empty() && !state.evacuating);

    // Perform: an LRP instance that fits is taken; one that does not is handed back.
    c.bbs.desire_lrp(web(1, 256)).await.unwrap();
    let mut lrps = c.auctioneer.take_lrp_requests();
    assert_eq!(lrps.len(), 1);
    let mut huge = lrps[0].clone();
    huge.process_guid = ProcessGuid::new("huge");
    huge.resource.memory_mb = 1 << 20;
    lrps.push(huge.clone());
    let not_taken = c
        .client
        .perform(Work {
            cell_id: CellId::new("cell-1"),
            lrps,
            tasks: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(not_taken.lrps, vec![huge]);
    wait_for("the instance RUNNING on cell-1", LIMIT, || async {
        running_rows(&c.bbs).await.len() == 1
    })
    .await;
    let state = c.client.state().await.unwrap();
    assert_eq!(state.lrps.len(), 1);
    assert_eq!(state.available_resources.memory_mb, 1024 - 256);

    // Work naming another cell comes back whole.
    let other = Work {
        cell_id: CellId::new("cell-2"),
        lrps: vec![LrpStartRequest::new(&web(1, 1).scheduling_info, vec![5])],
        tasks: Vec::new(),
    };
    assert_eq!(c.client.perform(other.clone()).await.unwrap(), other);

    // Update (metric tags) and stop, through the client.
    let row = running_rows(&c.bbs).await.remove(0);
    let ik = row.instance_key.clone().unwrap();
    c.client
        .update_lrp_instance(&row.key, &ik, &MetricTags::new())
        .await
        .unwrap();
    let wrong_cell = ActualLrpInstanceKey::new(ik.instance_guid.clone(), "cell-9");
    let err = c
        .client
        .stop_lrp_instance(&row.key, &wrong_cell)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "InvalidRequest");
    assert!(
        err.to_string()
            .contains("Invalid field: actual_lrp_instance_key.cell_id"),
        "{err}"
    );
    c.client.stop_lrp_instance(&row.key, &ik).await.unwrap();
    wait_for("the stopped instance's container gone", LIMIT, || async {
        c.rep.executor().list().is_empty()
    })
    .await;
    assert!(running_rows(&c.bbs).await.is_empty());

    // The path must name the body's instance.
    let body = serde_json::json!({
        "actual_lrp_key": row.key,
        "actual_lrp_instance_key": ik,
    });
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/v1/lrps/other/instances/{}/stop",
            c.url, ik.instance_guid
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(err["type"], "InvalidRequest");
    assert!(err["message"]
        .as_str()
        .unwrap()
        .contains("Invalid field: actual_lrp_key.process_guid"));

    // Tasks: taken, then cancelled by the BBS through its HTTP rep client.
    c.bbs.desire_task(task("job-1")).await.unwrap();
    let tasks = c.auctioneer.take_task_requests();
    let not_taken = c
        .client
        .perform(Work {
            cell_id: CellId::new("cell-1"),
            lrps: Vec::new(),
            tasks,
        })
        .await
        .unwrap();
    assert!(not_taken.is_empty());
    wait_for("the task Running", LIMIT, || async {
        c.bbs
            .task_by_guid(&TaskGuid::new("job-1"))
            .await
            .is_ok_and(|t| t.state == TaskState::Running)
    })
    .await;
    assert_eq!(c.rep.executor().list().len(), 1);
    c.bbs.cancel_task(&TaskGuid::new("job-1")).await.unwrap();
    wait_for("the cancelled task's container gone", LIMIT, || async {
        c.rep.executor().list().is_empty()
    })
    .await;
    // Cancelling what the cell does not run is fine.
    c.client
        .cancel_task(&TaskGuid::new("unknown"))
        .await
        .unwrap();
    c.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bbs_stops_instances_of_a_removed_lrp_over_http() {
    let c = cell().await;
    c.bbs.desire_lrp(web(2, 128)).await.unwrap();
    let lrps = c.auctioneer.take_lrp_requests();
    let work = Work {
        cell_id: CellId::new("cell-1"),
        lrps,
        tasks: Vec::new(),
    };
    assert!(c.client.perform(work).await.unwrap().is_empty());
    wait_for("2 RUNNING", LIMIT, || async {
        running_rows(&c.bbs).await.len() == 2
    })
    .await;
    assert_eq!(c.rep.executor().list().len(), 2);
    c.bbs
        .remove_desired_lrp(&ProcessGuid::new("web"))
        .await
        .unwrap();
    wait_for("both containers stopped and gone", LIMIT, || async {
        c.rep.executor().list().is_empty()
    })
    .await;
    c.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evacuate_over_http() {
    // An empty cell: evacuation is over at once and the host is told.
    let c = cell().await;
    let answer = c.client.evacuate().await.unwrap();
    assert_eq!(answer.ping_path, "/ping");
    tokio::time::timeout(LIMIT, c.evacuated.cancelled())
        .await
        .expect("the evacuation of an empty cell ends");
    assert!(c.rep.is_evacuating());
    c.cancel.cancel();

    // A busy cell: it refuses new work while its instance is handed over.
    let c = cell().await;
    c.bbs.desire_lrp(web(1, 128)).await.unwrap();
    let lrps = c.auctioneer.take_lrp_requests();
    let work = Work {
        cell_id: CellId::new("cell-1"),
        lrps: lrps.clone(),
        tasks: Vec::new(),
    };
    assert!(c.client.perform(work).await.unwrap().is_empty());
    wait_for("RUNNING", LIMIT, || async {
        running_rows(&c.bbs).await.len() == 1
    })
    .await;
    c.client.evacuate().await.unwrap();
    // A second request is answered the same, without a second evacuation.
    assert_eq!(c.client.evacuate().await.unwrap().ping_path, "/ping");
    wait_for("the cell to say it evacuates", LIMIT, || async {
        c.client.state().await.is_ok_and(|s| s.evacuating)
    })
    .await;
    let more = Work {
        cell_id: CellId::new("cell-1"),
        lrps: vec![LrpStartRequest::new(&web(3, 1).scheduling_info, vec![2])],
        tasks: Vec::new(),
    };
    assert_eq!(c.client.perform(more.clone()).await.unwrap(), more);
    // The instance was handed over: an EVACUATING copy, the ORDINARY row auctioned again.
    wait_for("an evacuating copy", LIMIT, || async {
        c.bbs
            .actual_lrps(&ActualLrpFilter::default())
            .await
            .unwrap()
            .iter()
            .any(|r| r.presence == Presence::Evacuating)
    })
    .await;
    assert!(!c.evacuated.is_cancelled(), "its container is still kept");
    c.client.ping().await.unwrap();
    c.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_a_killed_rep_and_a_hung_one_give_clear_errors() {
    let c = cell().await;
    let http = reqwest::Client::new();
    for (body, why) in [
        ("{not json", "malformed"),
        (r#"{"cell_id": "cell-1", "nope": 1}"#, "unknown field"),
    ] {
        let resp = http
            .post(format!("{}/work", c.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{why}");
        let err: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(err["type"], "InvalidRequest", "{why}");
    }
    let resp = http
        .post(format!("{}/work", c.url))
        .json(&serde_json::json!({ "cell_id": "x".repeat(5 * 1024 * 1024) }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    // Killed: every call fails at once with an error naming the cell, never a hang.
    c.client.ping().await.unwrap();
    c.cancel.cancel();
    c.server.abort();
    let _ = c.server.await;
    let started = Instant::now();
    let err = c.client.state().await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, diego_auction::Error::CellUnreachable { .. }),
        "{err:?}"
    );
    assert!(
        text.contains("cell-1") && text.contains("unreachable"),
        "{text}"
    );
    let err = c.client.perform(Work::new("cell-1")).await.unwrap_err();
    assert!(err.to_string().contains("unreachable"), "{err}");
    let err = c.client.ping().await.unwrap_err();
    assert_eq!(err.kind(), "Unavailable");
    assert!(c
        .client
        .cancel_task(&TaskGuid::new("t"))
        .await
        .unwrap_err()
        .to_string()
        .contains("cancel task"),);
    assert!(started.elapsed() < Duration::from_secs(5));

    // Hung: it accepts connections and never answers; the timeout ends the call.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_url = format!("http://{}", hung.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            open.push(socket);
        }
    });
    let config = HttpClientConfig::default()
        .with_state_timeout(Duration::from_millis(300))
        .with_request_timeout(Duration::from_millis(300));
    let slow = HttpCellClient::new("cell-h", &hung_url, &config).unwrap();
    let started = Instant::now();
    let err = slow.state().await.unwrap_err();
    assert!(err.to_string().contains("no answer in time"), "{err}");
    let err = slow.ping().await.unwrap_err();
    assert!(err.to_string().contains("no answer in time"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cells_without_an_http_address_are_named() {
    let factory = HttpCellClientFactory::new(HttpClientConfig::default()).unwrap();
    let presence = CellPresence {
        cell_id: CellId::new("cell-9"),
        rep_address: "in-process:cell-9".into(),
        ..Default::default()
    };
    assert!(factory.client(&presence).is_none());
    let reps = HttpRepClient::from(factory.clone());
    let err = reps
        .cancel_task(&presence, &TaskGuid::new("t"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("cell cell-9 has no HTTP address"),
        "{err}"
    );
    let presence = CellPresence {
        rep_address: "127.0.0.1:1800".into(),
        ..presence
    };
    let client = factory.client_of(&presence).unwrap();
    assert_eq!(client.base_url(), "http://127.0.0.1:1800");
}

/// A stand-in rep recording the request id of every call it gets.
async fn recording_rep() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| {
        let record = record.clone();
        async move {
            let id = headers
                .get(REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            record.lock().push((uri.path().to_owned(), id));
            (axum::http::StatusCode::ACCEPTED, "{}")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_sent_to_the_bbs_reaches_the_rep_call_it_causes() {
    let (rep_url, seen) = recording_rep().await;
    let bbs = Bbs::builder()
        .auctioneer(Arc::new(RecordingAuctioneer::new()))
        .rep_client(Arc::new(
            HttpRepClient::new(HttpClientConfig::default()).unwrap(),
        ))
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bbs_url = format!("http://{}", listener.local_addr().unwrap());
    let cancel = CancellationToken::new();
    tokio::spawn(BbsServer::new(Arc::new(bbs.clone())).serve(listener, cancel.clone()));
    bbs.register_cell(&CellPresence {
        cell_id: CellId::new("cell-r"),
        rep_address: rep_url.trim_start_matches("http://").into(),
        rep_url: rep_url.clone(),
        capacity: CellCapacity {
            memory_mb: 1024,
            disk_mb: 1024,
            containers: 10,
        },
        ..Default::default()
    })
    .await
    .unwrap();
    bbs.desire_task(task("job-9")).await.unwrap();
    bbs.start_task(&TaskGuid::new("job-9"), &CellId::new("cell-r"))
        .await
        .unwrap();

    // Raw: the BBS echoes the id and passes it on to the rep.
    let resp = reqwest::Client::new()
        .post(format!("{bbs_url}/v1/tasks/cancel"))
        .header("X-Vcap-Request-Id", "trace-raw")
        .json(&serde_json::json!({"task_guid": "job-9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()[REQUEST_ID_HEADER], "trace-raw");
    assert_eq!(
        seen.lock().clone(),
        vec![("/v1/tasks/job-9/cancel".to_owned(), "trace-raw".to_owned())]
    );

    // Through BbsClient inside a scope: the same path, the scope's id.
    bbs.desire_task(task("job-10")).await.unwrap();
    bbs.start_task(&TaskGuid::new("job-10"), &CellId::new("cell-r"))
        .await
        .unwrap();
    let client = BbsClient::new(bbs_url).unwrap();
    request_id::scope("trace-client", client.cancel_task(&TaskGuid::new("job-10")))
        .await
        .unwrap();
    assert_eq!(
        seen.lock().last().cloned(),
        Some((
            "/v1/tasks/job-10/cancel".to_owned(),
            "trace-client".to_owned()
        ))
    );
    cancel.cancel();
}
