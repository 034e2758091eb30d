//! The BBS's Task rules (SPEC.md, Tasks).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use std::time::Duration;

use common::*;
use diego_core::bbs::completion_callback::{Delivery, TaskCallbackResponse};
use diego_core::bbs::rep_client::RepCall;
use diego_core::*;

fn guid(s: &str) -> TaskGuid {
    TaskGuid::new(s)
}

fn cell(s: &str) -> CellId {
    CellId::new(s)
}

#[tokio::test]
async fn desire_creates_a_pending_task_and_asks_for_placement() {
    let h = harness();
    let mut events = h.bbs.events().subscribe_task();
    h.bbs.desire_task(task_request("t1")).await.unwrap();
    let t = h.bbs.task_by_guid(&guid("t1")).await.unwrap();
    assert_eq!(t.state, TaskState::Pending);
    assert_eq!(t.created_at, T0);
    assert_eq!(drain_names(&mut events, task_name), ["task_created"]);
    let reqs = h.auctioneer.take_task_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].task_guid, "t1");

    let dup = h.bbs.desire_task(task_request("t1")).await.unwrap_err();
    assert!(matches!(dup, Error::ResourceExists), "{dup:?}");
    assert_eq!(dup.to_string(), "the requested resource already exists");
}

#[tokio::test]
async fn invalid_requests_name_every_field_and_write_nothing() {
    let h = harness();
    let mut req = task_request("bad guid");
    req.domain.clear();
    let err = h.bbs.desire_task(req).await.unwrap_err();
    let v = err.validation_errors().expect("InvalidRequest");
    assert!(v.has_field("task_guid") && v.has_field("domain"), "{err}");
    assert!(h.bbs.tasks(&Default::default()).await.unwrap().is_empty());
    assert!(matches!(
        h.bbs.task_by_guid(&guid("nope")).await,
        Err(Error::ResourceNotFound)
    ));
}

#[tokio::test]
async fn start_task_from_the_same_cell_is_not_changed_and_from_another_is_refused() {
    let h = harness();
    h.bbs.desire_task(task_request("t1")).await.unwrap();
    assert!(h.bbs.start_task(&guid("t1"), &cell("c1")).await.unwrap());
    let t = h.bbs.task_by_guid(&guid("t1")).await.unwrap();
    assert_eq!(
        (t.state, t.cell_id.clone()),
        (TaskState::Running, Some(cell("c1")))
    );
    assert!(!h.bbs.start_task(&guid("t1"), &cell("c1")).await.unwrap());
    let e = h
        .bbs
        .start_task(&guid("t1"), &cell("c2"))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "Cannot transition from Running to Running");
    assert_eq!(e.kind(), "InvalidStateTransition");
}

#[tokio::test]
async fn complete_task_rules() {
    let h = harness();
    h.bbs.desire_task(task_request("t1")).await.unwrap();
    let e = h
        .bbs
        .complete_task(&guid("t1"), &cell("c1"), false, "", "out")
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "Cannot transition from Pending to Completed");
    h.bbs.start_task(&guid("t1"), &cell("c1")).await.unwrap();
    let e = h
        .bbs
        .complete_task(&guid("t1"), &cell("c2"), false, "", "out")
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "Running on cell c1 not c2");
    assert_eq!(e.kind(), "RunningOnDifferentCell");
    h.advance(Duration::from_secs(3));
    h.bbs
        .complete_task(&guid("t1"), &cell("c1"), false, "", "the result")
        .await
        .unwrap();
    let t = h.bbs.task_by_guid(&guid("t1")).await.unwrap();
    assert_eq!(t.state, TaskState::Completed);
    assert_eq!(t.result, "the result");
    assert_eq!(t.cell_id, None);
    assert_eq!(t.first_completed_at, T0 + Duration::from_secs(3));
    let e = h
        .bbs
        .complete_task(&guid("t1"), &cell("c1"), false, "", "again")
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Cannot transition from Completed to Completed"
    );
}

#[tokio::test]
async fn cancel_fails_the_task_and_tells_its_cell() {
    let h = harness();
    h.register_cell("c1").await;
    h.bbs.desire_task(task_request("t1")).await.unwrap();
    h.bbs.start_task(&guid("t1"), &cell("c1")).await.unwrap();
    h.bbs.cancel_task(&guid("t1")).await.unwrap();
    let t = h.bbs.task_by_guid(&guid("t1")).await.unwrap();
    assert_eq!(t.state, TaskState::Completed);
    assert!(t.failed);
    assert_eq!(t.failure_reason, "task was cancelled");
    assert_eq!(t.result, "");
    assert_eq!(
        h.reps.take_calls(),
        [RepCall::CancelTask {
            cell_id: cell("c1"),
            task_guid: guid("t1")
        }]
    );
    let e = h.bbs.cancel_task(&guid("t1")).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "Cannot transition from Completed to Completed"
    );

    // A pending task is cancelled without a cell to tell.
    h.bbs.desire_task(task_request("t2")).await.unwrap();
    h.bbs.cancel_task(&guid("t2")).await.unwrap();
    assert!(h.reps.take_calls().is_empty());
}

#[tokio::test]
async fn fail_task_and_truncated_reasons() {
    let h = harness();
    h.bbs.desire_task(task_request("t1")).await.unwrap();
    let long = "x".repeat(2_000);
    h.bbs.fail_task(&guid("t1"), &long).await.unwrap();
    let t = h.bbs.task_by_guid(&guid("t1")).await.unwrap();
    assert!(t.failed);
    assert_eq!(t.failure_reason.len(), 1_013 + "(truncated)".len());
    assert!(t.failure_reason.ends_with("(truncated)"));
    let e = h.bbs.fail_task(&guid("t1"), "again").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "Cannot transition from Completed to Completed"
    );
}

#[tokio::test]
async fn reject_counts_then_fails_after_max_retries() {
    let h = harness();
    h.bbs.desire_task(task_request("t1")).await.unwrap();
    h.bbs.start_task(&guid("t1"), &cell("c1")).await.unwrap();
    for n in 1..=3 {
        h.bbs
            .reject_task(&guid("t1"), "insufficient resources: memory")
            .await
            .unwrap();
        let t = h.bbs.task_by_guid(&guid("t1")).await.unwrap();
        assert_eq!(t.state, TaskState::Pending);
        assert_eq!(t.rejection_count, n);
        assert_eq!(t.rejection_reason, "insufficient resources: memory");
        assert_eq!(t.cell_id, Some(cell("c1")), "the cell id is kept");
    }
    // Not re-auctioned at once: convergence does it.
    assert_eq!(h.auctioneer.take_task_requests().len(), 1);
    h.bbs
        .reject_task(&guid("t1"), "insufficient resources: memory")
        .await
        .unwrap();
    let t = h.bbs.task_by_guid(&guid("t1")).await.unwrap();
    assert_eq!(t.state, TaskState::Completed);
    assert!(t.failed);
    assert_eq!(t.failure_reason, "insufficient resources: memory");
    let e = h.bbs.reject_task(&guid("t1"), "x").await.unwrap_err();
    assert!(matches!(e, Error::BadRequest), "{e:?}");
    assert_eq!(e.to_string(), "the request received is invalid");
}

#[tokio::test]
async fn resolving_and_delete() {
    let h = harness();
    let mut events = h.bbs.events().subscribe_task();
    h.bbs.desire_task(task_request("t1")).await.unwrap();
    h.bbs.fail_task(&guid("t1"), "boom").await.unwrap();
    let e = h.bbs.delete_task(&guid("t1")).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "Cannot transition from Completed to Resolving"
    );
    h.bbs.resolving_task(&guid("t1")).await.unwrap();
    let e = h.bbs.resolving_task(&guid("t1")).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "Cannot transition from Resolving to Resolving"
    );
    h.bbs.delete_task(&guid("t1")).await.unwrap();
    assert!(matches!(
        h.bbs.task_by_guid(&guid("t1")).await,
        Err(Error::ResourceNotFound)
    ));
    assert_eq!(
        drain_names(&mut events, task_name),
        [
            "task_created",
            "task_changed",
            "task_changed",
            "task_removed"
        ]
    );
    // Pending → resolving is refused with Diego's text.
    h.bbs.desire_task(task_request("t2")).await.unwrap();
    let e = h.bbs.resolving_task(&guid("t2")).await.unwrap_err();
    assert_eq!(e.to_string(), "Cannot transition from Pending to Resolving");
}

async fn wait_for_gone(h: &Harness, g: &str) {
    for _ in 0..1_000 {
        if h.bbs.task_by_guid(&guid(g)).await.is_err() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("task {g} was not deleted");
}

async fn wait_for_attempts(h: &Harness, n: usize) {
    for _ in 0..1_000 {
        if h.callback.attempts().len() >= n {
            // Let the worker finish its step after the attempt.
            for _ in 0..100 {
                tokio::task::yield_now().await;
            }
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!(
        "expected {n} callback attempts, saw {}",
        h.callback.attempts().len()
    );
}

fn with_callback(g: &str) -> DesireTaskRequest {
    let mut r = task_request(g);
    r.task_definition.completion_callback_url = "http://cc.example/done".into();
    r.task_definition.annotation = "note".into();
    r
}

#[tokio::test]
async fn a_delivered_callback_deletes_the_task() {
    let h = harness();
    h.bbs.desire_task(with_callback("t1")).await.unwrap();
    h.bbs.start_task(&guid("t1"), &cell("c1")).await.unwrap();
    h.bbs
        .complete_task(&guid("t1"), &cell("c1"), false, "", "42")
        .await
        .unwrap();
    wait_for_gone(&h, "t1").await;
    let attempts = h.callback.attempts();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].0, "http://cc.example/done");
    assert_eq!(
        attempts[0].1,
        TaskCallbackResponse {
            task_guid: guid("t1"),
            failed: false,
            failure_reason: String::new(),
            result: "42".into(),
            annotation: "note".into(),
            created_at: T0,
        }
    );
}

#[tokio::test]
async fn callbacks_retry_only_retryable_failures_then_stay_resolving() {
    let h = harness();
    h.callback.script(vec![
        Delivery::Retry("503".into()),
        Delivery::Retry("timeout".into()),
    ]);
    h.bbs.desire_task(with_callback("t1")).await.unwrap();
    h.bbs.cancel_task(&guid("t1")).await.unwrap();
    wait_for_gone(&h, "t1").await;
    assert_eq!(h.callback.attempts().len(), 3);

    let h = harness();
    h.callback.script(vec![Delivery::Retry("503".into()); 3]);
    h.bbs.desire_task(with_callback("t2")).await.unwrap();
    h.bbs.fail_task(&guid("t2"), "x").await.unwrap();
    wait_for_attempts(&h, 3).await;
    let t = h.bbs.task_by_guid(&guid("t2")).await.unwrap();
    assert_eq!(
        t.state,
        TaskState::Resolving,
        "after 3 failures the task stays Resolving"
    );

    let h = harness();
    h.callback
        .script(vec![Delivery::GiveUp("connection refused".into())]);
    h.bbs.desire_task(with_callback("t3")).await.unwrap();
    h.bbs.fail_task(&guid("t3"), "x").await.unwrap();
    wait_for_attempts(&h, 1).await;
    assert_eq!(
        h.callback.attempts().len(),
        1,
        "a non-retryable failure is not retried"
    );
    let t = h.bbs.task_by_guid(&guid("t3")).await.unwrap();
    assert_eq!(t.state, TaskState::Resolving);
}

#[test]
fn the_callback_body_omits_an_empty_annotation() {
    let body = TaskCallbackResponse {
        task_guid: guid("t"),
        failed: true,
        failure_reason: "r".into(),
        result: String::new(),
        annotation: String::new(),
        created_at: Timestamp(5),
    };
    let json = serde_json::to_value(&body).unwrap();
    assert!(json.get("annotation").is_none());
    assert_eq!(json["created_at"], 5);
    assert_eq!(json["task_guid"], "t");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cells_starting_one_task_one_wins() {
    for round in 0..20 {
        let h = harness();
        let g = format!("t{round}");
        h.bbs.desire_task(task_request(&g)).await.unwrap();
        let mut handles = Vec::new();
        for c in ["c1", "c2"] {
            let bbs = h.bbs.clone();
            let g = guid(&g);
            handles.push(tokio::spawn(
                async move { bbs.start_task(&g, &cell(c)).await },
            ));
        }
        let mut started = 0;
        let mut refused = 0;
        for handle in handles {
            match handle.await.unwrap() {
                Ok(true) => started += 1,
                Err(Error::InvalidStateTransition { .. }) => refused += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((started, refused), (1, 1));
    }
}
