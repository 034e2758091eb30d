//! Health checks on the FakeBackend under paused time: no checks, the legacy monitor,
//! declarative TCP/HTTP startup and liveness checks, readiness flapping, and Diego's
//! texts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use crate::common;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{fake_harness, harness_with, request, test_config, Harness};
use diego_core::{Check, CheckDefinition, HttpCheck, RunAction};
use diego_executor::{
    CheckProber, ContainerEvent, ContainerState, FakeBackendProber, ProbeFailure, ProbeTarget,
    RunRequest,
};
use diego_garden::{FakeBackend, FakeScript, FakeStep, ProcessSpec};
use tokio::time::Instant;

/// `/app/server`: listens on 8080 from 5 s after start until 65 s, then exits 0.
fn server_program(fake: &FakeBackend) {
    fake.set_program("/app/server", |_: &ProcessSpec| {
        FakeScript::new()
            .then(FakeStep::Sleep(Duration::from_secs(5)))
            .then(FakeStep::Listen(8080))
            .then(FakeStep::Sleep(Duration::from_secs(60)))
            .then(FakeStep::Exit(0))
    });
    fake.set_program("/bin/healthcheck", |_: &ProcessSpec| {
        FakeScript::check_listening(8080)
    });
}

fn server_request() -> RunRequest {
    let mut req = request(RunAction::new("/app/server", "vcap"));
    req.ports = vec![8080];
    req
}

fn monitor() -> diego_core::Action {
    let mut run = RunAction::new("/bin/healthcheck", "vcap");
    run.log_source = "HEALTH".into();
    run.suppress_log_output = true;
    run.into()
}

async fn start(h: &mut Harness, guid: &str, req: RunRequest) -> Instant {
    h.reserve(guid).await;
    let started = Instant::now();
    h.executor.run(guid, req).await.unwrap();
    started
}

#[tokio::test(start_paused = true)]
async fn without_checks_running_comes_at_spawn() {
    let fake = FakeBackend::new();
    server_program(&fake);
    let mut h = fake_harness(&fake).await;
    let started = start(&mut h, "n", server_request()).await;
    let running = h.wait_running("n").await;
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(running.routable);
    // Any exit ends it, exit 0 included (an empty reason).
    let done = h.wait_completed("n").await;
    assert_eq!(started.elapsed(), Duration::from_secs(65));
    assert!(!done.run_result.failed);
    assert_eq!(done.run_result.failure_reason, "");
}

#[tokio::test(start_paused = true)]
async fn the_legacy_monitor_checks_until_healthy_then_until_unhealthy() {
    let fake = FakeBackend::new();
    server_program(&fake);
    let mut h = fake_harness(&fake).await;
    let mut req = server_request();
    req.monitor = Some(monitor());
    let started = start(&mut h, "m", req).await;
    let running = h.wait_running("m").await;
    // Checks at 2, 4, 6 s; listening from 5 s.
    assert_eq!(started.elapsed(), Duration::from_secs(6));
    assert!(running.routable);
    let done = h.wait_completed("m").await;
    // Exit 0 at 65 s does not end it; the liveness check at 6 + 2×30 = 66 s does.
    assert_eq!(started.elapsed(), Duration::from_secs(66));
    assert_eq!(
        done.run_result.failure_reason,
        "Instance became unhealthy: HEALTH: Exited with status 1"
    );
    let cell: Vec<String> = h
        .prefixed()
        .into_iter()
        .filter(|l| l.starts_with("[CELL/0]") && !l.contains("Cell "))
        .collect();
    assert_eq!(
        cell,
        [
            "[CELL/0] OUT Starting health monitoring of container",
            "[CELL/0] OUT Container became healthy",
            "[CELL/0] ERR Container became unhealthy",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_legacy_monitor_gives_up_at_the_start_timeout() {
    let fake = FakeBackend::new();
    server_program(&fake);
    fake.set_program("/app/quiet", |_: &ProcessSpec| FakeScript::never_exit());
    let mut h = fake_harness(&fake).await;
    let mut req = request(RunAction::new("/app/quiet", "vcap"));
    req.ports = vec![8080];
    req.monitor = Some(monitor());
    req.start_timeout = Duration::from_secs(10);
    let started = start(&mut h, "q", req).await;
    let done = h.wait_completed("q").await;
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert_eq!(
        done.run_result.failure_reason,
        "Instance never healthy after 10s: HEALTH: Exited with status 1"
    );
    assert_eq!(fake.container_count(), 1);
    h.executor.delete("q").await.unwrap();
    assert_eq!(fake.container_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn exits_before_healthy_crash_at_once_unless_clean() {
    let fake = FakeBackend::new();
    server_program(&fake);
    let mut h = fake_harness(&fake).await;
    let mut req = request(common::sh("sleep 3; exit 1"));
    req.ports = vec![8080];
    req.monitor = Some(monitor());
    let started = start(&mut h, "x1", req).await;
    let done = h.wait_completed("x1").await;
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(
        done.run_result.failure_reason,
        "APP/PROC/WEB: Exited with status 1"
    );
    // Exit 0 before healthy is tolerated: it stays created until the checks decide.
    let mut req = request(common::sh("sleep 3; exit 0"));
    req.ports = vec![8080];
    req.monitor = Some(monitor());
    req.start_timeout = Duration::from_secs(20);
    let started = start(&mut h, "x0", req).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(h.executor.get("x0").unwrap().state, ContainerState::Created);
    let done = h.wait_completed("x0").await;
    assert_eq!(started.elapsed(), Duration::from_secs(20));
    assert!(done
        .run_result
        .failure_reason
        .starts_with("Instance never healthy after 20s"));
}

fn tcp_checks() -> CheckDefinition {
    CheckDefinition {
        checks: vec![Check::tcp(8080)],
        ..CheckDefinition::default()
    }
}

#[tokio::test(start_paused = true)]
async fn declarative_tcp_startup_then_liveness() {
    let fake = FakeBackend::new();
    server_program(&fake);
    let mut h = fake_harness(&fake).await;
    let mut req = server_request();
    req.check_definition = Some(tcp_checks());
    // The legacy monitor is ignored when checks are declared.
    req.monitor = Some(common::sh("exit 1"));
    let started = start(&mut h, "d", req).await;
    let running = h.wait_running("d").await;
    // Attempts at 0, 2, 4, 6 s.
    assert_eq!(started.elapsed(), Duration::from_secs(6));
    assert!(running.routable, "no readiness checks: routable at once");
    let done = h.wait_completed("d").await;
    // Liveness every 30 s from 6 s: 36 passes, 66 fails.
    assert_eq!(started.elapsed(), Duration::from_secs(66));
    let reason = "Instance became unhealthy: Liveness check unsuccessful: failed to make TCP \
                  connection to 127.0.0.1:8080: dial tcp 127.0.0.1:8080: connect: connection refused";
    assert_eq!(done.run_result.failure_reason, reason);
    assert!(h.prefixed().contains(&format!("[HEALTH/0] ERR {reason}")));
}

#[tokio::test(start_paused = true)]
async fn declarative_startup_times_out_with_attempts() {
    let fake = FakeBackend::new();
    fake.set_program("/app/quiet", |_: &ProcessSpec| FakeScript::never_exit());
    let mut h = fake_harness(&fake).await;
    let mut req = request(RunAction::new("/app/quiet", "vcap"));
    req.ports = vec![8080];
    req.check_definition = Some(CheckDefinition {
        checks: vec![Check::http(8080, "/health")],
        log_source: "HEALTHCHECK".into(),
        ..CheckDefinition::default()
    });
    req.start_timeout = Duration::from_secs(5);
    let started = start(&mut h, "t", req).await;
    let done = h.wait_completed("t").await;
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    let reason = "Instance never healthy after 5s: Timed out after 5s (4 attempts) waiting for \
                  startup check to succeed: failed to make HTTP request to '/health' on port \
                  8080: connection refused";
    assert_eq!(done.run_result.failure_reason, reason);
    assert!(h
        .prefixed()
        .contains(&format!("[HEALTHCHECK/0] ERR {reason}")));
}

/// Startup TCP checks go to the fake; HTTP answers come from a switch: 200 when on,
/// else the failure given.
#[derive(Debug)]
struct Switch {
    fake: FakeBackendProber,
    on: AtomicBool,
    failure: ProbeFailure,
}

#[async_trait]
impl CheckProber for Switch {
    async fn tcp(&self, target: &ProbeTarget, timeout: Duration) -> Result<(), ProbeFailure> {
        self.fake.tcp(target, timeout).await
    }
    async fn http(
        &self,
        _target: &ProbeTarget,
        _path: &str,
        _timeout: Duration,
    ) -> Result<(), ProbeFailure> {
        if self.on.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(self.failure.clone())
        }
    }
}

#[tokio::test(start_paused = true)]
async fn readiness_flips_routable_only() {
    let fake = FakeBackend::new();
    fake.set_program("/app/web", |_: &ProcessSpec| FakeScript::listen());
    let switch = Arc::new(Switch {
        fake: FakeBackendProber::new(fake.clone()),
        on: AtomicBool::new(false),
        failure: ProbeFailure::Connection("refused".into()),
    });
    let mut h = harness_with(Arc::new(fake.clone()), test_config(), Some(switch.clone())).await;
    let mut req = request(RunAction::new("/app/web", "vcap"));
    req.ports = vec![8080];
    req.check_definition = Some(CheckDefinition {
        checks: vec![Check::tcp(8080)],
        readiness_checks: vec![Check {
            tcp_check: None,
            http_check: Some(HttpCheck {
                port: 8080,
                path: "/ready".into(),
                request_timeout_ms: 0,
                interval_ms: 1_000,
            }),
        }],
        log_source: String::new(),
    });
    start(&mut h, "r", req).await;
    let running = h.wait_running("r").await;
    assert!(!running.routable, "readiness checks: not routable at first");
    let mut flips = Vec::new();
    for on in [true, false, true] {
        tokio::time::sleep(Duration::from_secs(5)).await;
        switch.on.store(on, Ordering::SeqCst);
        match h.next_event("r").await {
            ContainerEvent::RoutableChanged(c) => flips.push(c.routable),
            other => panic!("{other:?}"),
        }
        assert_eq!(h.executor.get("r").unwrap().state, ContainerState::Running);
    }
    assert_eq!(flips, [true, false, true]);
    let texts = h.texts();
    assert!(texts.contains(
        &"Container passed the readiness health check. Container marked ready and added to route pool."
            .to_string()
    ));
    assert!(texts.contains(
        &"Container failed the readiness health check. Container marked not ready and removed from route pool."
            .to_string()
    ));
    h.executor.delete("r").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn http_check_failures_say_status_and_timeouts() {
    for (failure, text) in [
        (
            ProbeFailure::Status {
                code: 503,
                elapsed: Duration::from_millis(12),
            },
            "received status code 503 in 12ms",
        ),
        (ProbeFailure::TimedOut, "timed out after 1.00 seconds"),
    ] {
        let fake = FakeBackend::new();
        fake.set_program("/app/web", |_: &ProcessSpec| FakeScript::listen());
        let switch = Arc::new(Switch {
            fake: FakeBackendProber::new(fake.clone()),
            on: AtomicBool::new(true),
            failure,
        });
        let mut h = harness_with(Arc::new(fake.clone()), test_config(), Some(switch.clone())).await;
        let mut req = request(RunAction::new("/app/web", "vcap"));
        req.ports = vec![8080];
        req.check_definition = Some(CheckDefinition {
            checks: vec![Check::http(8080, "")],
            ..CheckDefinition::default()
        });
        start(&mut h, "h", req).await;
        h.wait_running("h").await;
        switch.on.store(false, Ordering::SeqCst);
        let done = h.wait_completed("h").await;
        assert_eq!(
            done.run_result.failure_reason,
            format!(
                "Instance became unhealthy: Liveness check unsuccessful: failed to make HTTP \
                 request to '/' on port 8080: {text}"
            )
        );
    }
}
