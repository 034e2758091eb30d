//! The executor's allocation and container lifecycle on the FakeBackend, under paused
//! time: states and events, expiry, stop, delete, start-up cleanup, the reaper, the
//! environment and the result file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use crate::common;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{fake_harness, harness_with, request, sh, test_config};
use diego_core::{EnvironmentVariable, ResourceLimits, RunAction};
use diego_executor::{
    AllocationRequest, ContainerEvent, ContainerResource, ContainerState, Error, InstanceIdentity,
    EXPIRED_CONTAINER, FAILED_TO_FETCH_RESULT, MISSING_GARDEN_CONTAINER, OWNER_PROPERTY,
    STOPPED_BEFORE_RUNNING,
};
use diego_garden::{
    ContainerBackend, ContainerSpec, FakeBackend, FakeOperation, FakeScript, FakeStep, ProcessSpec,
};

#[tokio::test(start_paused = true)]
async fn allocation_checks_guids_and_capacity_and_delete_frees() {
    let fake = FakeBackend::new();
    let h = fake_harness(&fake).await;
    let total = h.executor.total_resources();
    let failures = h
        .executor
        .allocate(vec![
            AllocationRequest::new("a", ContainerResource::new(512, 100)),
            AllocationRequest::new("a", ContainerResource::new(1, 1)),
            AllocationRequest::new("", ContainerResource::new(1, 1)),
            AllocationRequest::new("b", ContainerResource::new(513, 1)),
            AllocationRequest::new("c", ContainerResource::new(512, 100)).tag("domain", "apps"),
        ])
        .await;
    let reasons: Vec<(&str, &str)> = failures
        .iter()
        .map(|f| (f.request.guid.as_str(), f.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("a", "container guid not available"),
            ("", "container guid not specified"),
            ("b", "insufficient resources available"),
        ]
    );
    let left = h.executor.remaining_resources();
    assert_eq!(left.memory_mb, 0);
    assert_eq!(left.disk_mb, total.disk_mb - 200);
    assert_eq!(left.containers, total.containers - 2);
    assert_eq!(h.executor.get("c").unwrap().tags["domain"], "apps");
    assert_eq!(h.executor.get("c").unwrap().state, ContainerState::Reserved);

    h.executor.delete("a").await.unwrap();
    h.executor.delete("c").await.unwrap();
    assert_eq!(h.executor.remaining_resources(), total);
    assert!(matches!(
        h.executor.get("a"),
        Err(Error::ContainerNotFound { .. })
    ));
    assert!(matches!(
        h.executor.delete("a").await,
        Err(Error::ContainerNotFound { .. })
    ));
    // Container slots run out too.
    let many: Vec<AllocationRequest> = (0..9)
        .map(|i| AllocationRequest::new(format!("n{i}"), ContainerResource::new(0, 0)))
        .collect();
    let failures = h.executor.allocate(many).await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].request.guid, "n8");
}

#[tokio::test(start_paused = true)]
async fn a_run_goes_reserved_running_completed_and_delete_destroys() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    h.reserve("t1").await;
    assert!(matches!(
        h.next_event("t1").await,
        ContainerEvent::Reserved(c) if c.state == ContainerState::Reserved
    ));
    h.executor
        .run("t1", request(sh("echo hi; sleep 1; exit 0")))
        .await
        .unwrap();
    let running = h.wait_running("t1").await;
    assert!(running.routable, "no checks: routable as soon as running");
    assert_eq!(fake.container_count(), 1);
    let done = h.wait_completed("t1").await;
    assert_eq!(done.state, ContainerState::Completed);
    assert!(!done.run_result.failed, "{:?}", done.run_result);
    assert!(!done.routable);
    // Running a container twice is refused.
    let again = h.executor.run("t1", request(sh("true"))).await;
    assert!(matches!(again, Err(Error::InvalidTransition { .. })));
    // Completed containers keep their resources until deleted.
    assert_ne!(
        h.executor.remaining_resources(),
        h.executor.total_resources()
    );
    h.executor.delete("t1").await.unwrap();
    assert_eq!(fake.container_count(), 0);
    assert_eq!(
        h.executor.remaining_resources(),
        h.executor.total_resources()
    );
    let cell_lines: Vec<String> = h
        .texts()
        .into_iter()
        .filter(|t| t.starts_with("Cell "))
        .collect();
    assert_eq!(
        cell_lines,
        [
            "Cell cell-z1-0 creating container for instance t1",
            "Cell cell-z1-0 successfully created container for instance t1",
            "Cell cell-z1-0 destroying container for instance t1",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn reservations_expire_when_never_run() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    h.reserve("idle").await;
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert_eq!(
        h.executor.get("idle").unwrap().state,
        ContainerState::Reserved
    );
    let done = h.wait_completed("idle").await;
    assert!(done.run_result.failed);
    assert_eq!(done.run_result.failure_reason, EXPIRED_CONTAINER);
    // A container that ran does not expire.
    h.reserve("busy").await;
    h.executor
        .run("busy", request(sh("sleep 120")))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(90)).await;
    assert_eq!(
        h.executor.get("busy").unwrap().state,
        ContainerState::Running
    );
    h.executor.delete("busy").await.unwrap();
    h.executor.delete("idle").await.unwrap();
    assert_eq!(
        h.executor.remaining_resources(),
        h.executor.total_resources()
    );
}

#[tokio::test(start_paused = true)]
async fn a_backend_create_failure_completes_the_container() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    fake.fail_next(FakeOperation::Create, 1);
    h.reserve("c1").await;
    let err = h.executor.run("c1", request(sh("true"))).await.unwrap_err();
    assert!(matches!(err, Error::CreateFailed { .. }), "{err}");
    let done = h.wait_completed("c1").await;
    assert!(done
        .run_result
        .failure_reason
        .starts_with("failed to create container: "));
    h.executor.delete("c1").await.unwrap();
    assert_eq!(
        h.executor.remaining_resources(),
        h.executor.total_resources()
    );
}

#[tokio::test(start_paused = true)]
async fn stop_terminates_and_kills_after_the_graceful_interval() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    h.reserve("s1").await;
    h.executor
        .run("s1", request(sh("trap '' TERM; echo up; sleep 600")))
        .await
        .unwrap();
    h.wait_running("s1").await;
    let started = tokio::time::Instant::now();
    h.executor.stop("s1").await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    let done = h.executor.get("s1").unwrap();
    assert!(done.run_result.stopped);
    assert!(h
        .texts()
        .contains(&"Exit status 137 (exceeded 10s graceful shutdown interval)".to_string()));
    assert!(h
        .texts()
        .contains(&"Cell cell-z1-0 stopping instance s1".to_string()));

    // Stopping a reservation completes it as stopped-before-running.
    h.reserve("s2").await;
    h.executor.stop("s2").await.unwrap();
    let s2 = h.executor.get("s2").unwrap();
    assert_eq!(s2.run_result.failure_reason, STOPPED_BEFORE_RUNNING);
    assert!(s2.run_result.stopped);
    h.executor.delete("s1").await.unwrap();
    h.executor.delete("s2").await.unwrap();
    assert_eq!(fake.container_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn deleting_a_running_container_stops_it_first() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    h.reserve("d1").await;
    h.executor
        .run("d1", request(sh("sleep 600")))
        .await
        .unwrap();
    h.wait_running("d1").await;
    h.executor.delete("d1").await.unwrap();
    let done = h.wait_completed("d1").await;
    assert!(done.run_result.stopped);
    assert_eq!(fake.container_count(), 0);
    assert_eq!(
        h.executor.remaining_resources(),
        h.executor.total_resources()
    );
}

#[tokio::test(start_paused = true)]
async fn start_up_destroys_only_its_own_leftovers() {
    let fake = FakeBackend::new();
    fake.create(ContainerSpec::new("mine").property(OWNER_PROPERTY, "executor"))
        .await
        .unwrap();
    fake.create(ContainerSpec::new("other").property(OWNER_PROPERTY, "someone-else"))
        .await
        .unwrap();
    fake.create(ContainerSpec::new("plain")).await.unwrap();
    let _h = fake_harness(&fake).await;
    assert!(fake.lookup("mine").await.is_err());
    assert!(fake.lookup("other").await.is_ok());
    assert!(fake.lookup("plain").await.is_ok());
}

/// A backend that stops listing some containers, as if it had lost them.
struct Forgetful {
    fake: FakeBackend,
    hidden: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl ContainerBackend for Forgetful {
    fn capabilities(&self) -> diego_garden::Capabilities {
        self.fake.capabilities()
    }
    async fn create(
        &self,
        spec: ContainerSpec,
    ) -> diego_garden::Result<Arc<dyn diego_garden::Container>> {
        self.fake.create(spec).await
    }
    async fn destroy(&self, handle: &str) -> diego_garden::Result<()> {
        self.fake.destroy(handle).await
    }
    async fn lookup(&self, handle: &str) -> diego_garden::Result<Arc<dyn diego_garden::Container>> {
        self.fake.lookup(handle).await
    }
    async fn containers(
        &self,
        filter: &diego_garden::Properties,
    ) -> diego_garden::Result<Vec<Arc<dyn diego_garden::Container>>> {
        let hidden = self.hidden.lock().unwrap().clone();
        let mut listed = self.fake.containers(filter).await?;
        listed.retain(|c| !hidden.iter().any(|h| h == c.handle()));
        Ok(listed)
    }
    async fn capacity(&self) -> diego_garden::Result<diego_garden::Capacity> {
        self.fake.capacity().await
    }
}

#[tokio::test(start_paused = true)]
async fn the_reaper_destroys_strangers_and_completes_lost_containers() {
    let fake = FakeBackend::new();
    let backend = Arc::new(Forgetful {
        fake: fake.clone(),
        hidden: Mutex::new(Vec::new()),
    });
    let mut h = harness_with(backend.clone(), test_config(), None).await;
    for guid in ["kept", "lost"] {
        h.reserve(guid).await;
        h.executor
            .run(guid, request(sh("sleep 600")))
            .await
            .unwrap();
        h.wait_running(guid).await;
    }
    fake.create(ContainerSpec::new("stranger").property(OWNER_PROPERTY, "executor"))
        .await
        .unwrap();
    backend.hidden.lock().unwrap().push("lost".to_string());

    let reaper = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn({
        let executor = h.executor.clone();
        let cancel = reaper.clone();
        async move { executor.run_reaper(cancel).await }
    });
    let started = tokio::time::Instant::now();
    let done = h.wait_completed("lost").await;
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(60),
        "one reap interval"
    );
    assert_eq!(done.run_result.failure_reason, MISSING_GARDEN_CONTAINER);
    assert!(fake.lookup("stranger").await.is_err());
    assert_eq!(
        h.executor.get("kept").unwrap().state,
        ContainerState::Running
    );
    reaper.cancel();
    task.await.unwrap();
    h.executor.delete("kept").await.unwrap();
    h.executor.delete("lost").await.unwrap();
    assert_eq!(fake.container_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn processes_get_the_instance_environment_limits_and_user() {
    let fake = FakeBackend::new();
    let seen: Arc<Mutex<Vec<ProcessSpec>>> = Arc::default();
    let record = Arc::clone(&seen);
    fake.set_program("/app/start", move |spec: &ProcessSpec| {
        record.lock().unwrap().push(spec.clone());
        FakeScript::new()
    });
    let mut h = fake_harness(&fake).await;
    let mut run = RunAction::new("/app/start", "vcap");
    run.env = vec![EnvironmentVariable::new("ACTION_VAR", "a")];
    run.resource_limits = Some(ResourceLimits {
        nofile: Some(1024),
        nproc: Some(7),
    });
    let mut req = request(run);
    req.ports = vec![8080];
    req.env = vec![EnvironmentVariable::new("APP_VAR", "b")];
    req.instance = Some(InstanceIdentity {
        guid: "ig-9".into(),
        index: 2,
    });
    let done = h.run_to_completion("e1", req).await;
    assert!(!done.run_result.failed, "{:?}", done.run_result);
    let port = done.ports[0];
    assert_eq!(port.container_port, 8080);
    let spec = seen.lock().unwrap()[0].clone();
    let get = |name: &str| {
        spec.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name} missing in {:?}", spec.env))
    };
    assert_eq!(get("INSTANCE_GUID"), "ig-9");
    assert_eq!(get("INSTANCE_INDEX"), "2");
    assert_eq!(get("CF_INSTANCE_GUID"), "ig-9");
    assert_eq!(get("CF_INSTANCE_INDEX"), "2");
    assert_eq!(get("CF_INSTANCE_IP"), "127.0.0.1");
    assert_eq!(get("CF_INSTANCE_PORT"), port.host_port.to_string());
    assert_eq!(
        get("CF_INSTANCE_ADDR"),
        format!("127.0.0.1:{}", port.host_port)
    );
    assert_eq!(
        get("CF_INSTANCE_PORTS"),
        format!(r#"[{{"external":{},"internal":8080}}]"#, port.host_port)
    );
    assert_eq!(get("PORT"), "8080");
    assert_eq!(get("APP_VAR"), "b");
    assert_eq!(get("ACTION_VAR"), "a");
    assert_eq!(spec.limits.nofile, Some(1024), "nofile applied");
    assert_eq!(spec.user.as_deref(), Some("vcap"));
    assert_eq!(spec.dir, None, "no dir: the user's home");
    h.executor.delete("e1").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_result_file_is_read_after_success_up_to_the_limit() {
    let fake = FakeBackend::new();
    fake.set_program("/bin/small", |_: &ProcessSpec| {
        FakeScript::new().then(FakeStep::WriteFile(
            "/tmp/result.json".into(),
            Bytes::from_static(b"{\"ok\":true}"),
        ))
    });
    fake.set_program("/bin/exact", |_: &ProcessSpec| {
        FakeScript::new().then(FakeStep::WriteFile(
            "/tmp/result".into(),
            Bytes::from(vec![b'x'; 51_200]),
        ))
    });
    fake.set_program("/bin/big", |_: &ProcessSpec| {
        FakeScript::new().then(FakeStep::WriteFile(
            "/tmp/result".into(),
            Bytes::from(vec![b'x'; 51_201]),
        ))
    });
    let mut h = fake_harness(&fake).await;
    let with_result = |path: &str, file: &str| {
        let mut r = request(RunAction::new(path, "vcap"));
        r.result_file = file.to_string();
        r
    };
    let small = h
        .run_to_completion("r1", with_result("/bin/small", "/tmp/result.json"))
        .await;
    assert!(!small.run_result.failed);
    assert_eq!(small.run_result.result, "{\"ok\":true}");
    let exact = h
        .run_to_completion("r2", with_result("/bin/exact", "/tmp/result"))
        .await;
    assert!(!exact.run_result.failed);
    assert_eq!(exact.run_result.result.len(), 51_200);
    let big = h
        .run_to_completion("r3", with_result("/bin/big", "/tmp/result"))
        .await;
    assert!(big.run_result.failed);
    assert_eq!(big.run_result.failure_reason, FAILED_TO_FETCH_RESULT);
    assert!(big.run_result.result.is_empty());
    let missing = h
        .run_to_completion("r4", with_result("/bin/small", "/tmp/nope"))
        .await;
    assert_eq!(missing.run_result.failure_reason, FAILED_TO_FETCH_RESULT);
    // A run that failed keeps its own reason; no result is read.
    let mut failing = request(sh("exit 2"));
    failing.result_file = "/tmp/result".into();
    let failed = h.run_to_completion("r5", failing).await;
    assert_eq!(
        failed.run_result.failure_reason,
        "APP/PROC/WEB: Exited with status 2"
    );
    for guid in ["r1", "r2", "r3", "r4", "r5"] {
        h.executor.delete(guid).await.unwrap();
    }
    assert_eq!(fake.container_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn events_lag_explicitly_for_slow_subscribers() {
    let fake = FakeBackend::new();
    let mut config = test_config();
    config.event_buffer = 2;
    let mut h = harness_with(Arc::new(fake.clone()), config, None).await;
    let requests: Vec<AllocationRequest> = (0..5)
        .map(|i| AllocationRequest::new(format!("g{i}"), ContainerResource::new(1, 1)))
        .collect();
    assert!(h.executor.allocate(requests).await.is_empty());
    use futures::StreamExt;
    assert_eq!(
        h.events.next().await,
        Some(ContainerEvent::Lagged { missed: 3 })
    );
    match h.events.next().await {
        Some(ContainerEvent::Reserved(c)) => assert_eq!(c.guid, "g3"),
        other => panic!("{other:?}"),
    }
}
