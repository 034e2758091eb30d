//! Every action step on the FakeBackend under paused time, with Diego's exact texts and
//! log lines in order with their prefixes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use crate::common;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{fake_harness, harness_with, request, sh, test_config};
use diego_core::{Action, EmitProgressAction, RunAction, SerialAction, TimeoutAction, TryAction};
use diego_executor::CODEPENDENT_STEP_EXITED;
use diego_garden::{
    ByteStream, Capabilities, Capacity, Container, ContainerBackend, ContainerInfo,
    ContainerMetrics, ContainerSpec, ExitStatus, FakeBackend, PortMapping, Process, ProcessSpec,
    Properties, Signal,
};

fn with_source(action: Action, source: &str) -> Action {
    match action {
        Action::Run(mut run) => {
            run.log_source = source.to_string();
            Action::Run(run)
        }
        other => other,
    }
}

fn progress(action: Action, start: &str, success: &str, prefix: &str) -> Action {
    Action::EmitProgress(EmitProgressAction {
        action: Some(Box::new(action)),
        start_message: start.into(),
        success_message: success.into(),
        failure_message_prefix: prefix.into(),
        log_source: String::new(),
    })
}

#[tokio::test(start_paused = true)]
async fn run_exit_zero_logs_output_then_status() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    let done = h
        .run_to_completion("r0", request(sh("echo hello; echo oops >&2; exit 0")))
        .await;
    assert!(!done.run_result.failed);
    let lines = h.prefixed();
    let app: Vec<&String> = lines.iter().filter(|l| l.starts_with("[APP")).collect();
    assert_eq!(
        app,
        [
            "[APP/PROC/WEB/0] OUT hello",
            "[APP/PROC/WEB/0] ERR oops",
            "[APP/PROC/WEB/0] OUT Exit status 0"
        ]
    );
    assert!(lines
        .iter()
        .any(|l| l == "[CELL/0] OUT Cell cell-z1-0 creating container for instance r0"));
}

#[tokio::test(start_paused = true)]
async fn run_non_zero_names_the_log_source() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    let done = h.run_to_completion("r1", request(sh("exit 1"))).await;
    assert!(done.run_result.failed);
    assert_eq!(
        done.run_result.failure_reason,
        "APP/PROC/WEB: Exited with status 1"
    );
    assert!(h
        .prefixed()
        .contains(&"[APP/PROC/WEB/0] OUT Exit status 1".to_string()));

    // The action's own source wins; with none anywhere it is LOG.
    let done = h
        .run_to_completion("r2", request(with_source(sh("exit 4"), "STG")))
        .await;
    assert_eq!(done.run_result.failure_reason, "STG: Exited with status 4");
    let mut no_source = request(sh("exit 5"));
    no_source.log_config.source_name = String::new();
    let done = h.run_to_completion("r3", no_source).await;
    assert_eq!(done.run_result.failure_reason, "LOG: Exited with status 5");
}

#[tokio::test(start_paused = true)]
async fn run_of_a_missing_program_fails() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    let done = h
        .run_to_completion("m", request(RunAction::new("/no/such", "vcap")))
        .await;
    assert!(done.run_result.failed);
    assert!(
        done.run_result.failure_reason.contains("/no/such"),
        "{}",
        done.run_result.failure_reason
    );
}

#[tokio::test(start_paused = true)]
async fn suppressed_output_is_not_logged() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    let mut run = RunAction::new("/bin/sh", "vcap").with_args(["-c", "echo secret; exit 3"]);
    run.suppress_log_output = true;
    let done = h.run_to_completion("q", request(run)).await;
    assert_eq!(
        done.run_result.failure_reason,
        "APP/PROC/WEB: Exited with status 3"
    );
    assert!(!h
        .texts()
        .iter()
        .any(|t| t == "secret" || t.starts_with("Exit status")));
}

// ---- out of memory: a backend whose kills are reported as OOM kills ----

/// What the wrapper changes: kills reported as OOM kills, or signals swallowed.
#[derive(Clone, Copy)]
enum Twist {
    Oom,
    Unkillable,
}

struct OomBackend(FakeBackend, Twist);
struct OomContainer(Arc<dyn Container>, Twist);
struct OomProcess(Arc<dyn Process>, Twist);

#[async_trait]
impl ContainerBackend for OomBackend {
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn create(&self, spec: ContainerSpec) -> diego_garden::Result<Arc<dyn Container>> {
        Ok(Arc::new(OomContainer(self.0.create(spec).await?, self.1)))
    }
    async fn destroy(&self, handle: &str) -> diego_garden::Result<()> {
        self.0.destroy(handle).await
    }
    async fn lookup(&self, handle: &str) -> diego_garden::Result<Arc<dyn Container>> {
        Ok(Arc::new(OomContainer(self.0.lookup(handle).await?, self.1)))
    }
    async fn containers(
        &self,
        filter: &Properties,
    ) -> diego_garden::Result<Vec<Arc<dyn Container>>> {
        self.0.containers(filter).await
    }
    async fn capacity(&self) -> diego_garden::Result<Capacity> {
        self.0.capacity().await
    }
}

#[async_trait]
impl Container for OomContainer {
    fn handle(&self) -> &str {
        self.0.handle()
    }
    async fn run(&self, spec: ProcessSpec) -> diego_garden::Result<Arc<dyn Process>> {
        Ok(Arc::new(OomProcess(self.0.run(spec).await?, self.1)))
    }
    async fn attach(&self, id: &str) -> diego_garden::Result<Arc<dyn Process>> {
        self.0.attach(id).await
    }
    async fn stream_in(&self, path: &str, tar: ByteStream) -> diego_garden::Result<()> {
        self.0.stream_in(path, tar).await
    }
    async fn stream_out(&self, path: &str) -> diego_garden::Result<ByteStream> {
        self.0.stream_out(path).await
    }
    async fn net_in(&self, host: u16, container: u16) -> diego_garden::Result<PortMapping> {
        self.0.net_in(host, container).await
    }
    async fn properties(&self) -> diego_garden::Result<Properties> {
        self.0.properties().await
    }
    async fn set_property(&self, name: &str, value: &str) -> diego_garden::Result<()> {
        self.0.set_property(name, value).await
    }
    async fn remove_property(&self, name: &str) -> diego_garden::Result<()> {
        self.0.remove_property(name).await
    }
    async fn info(&self) -> diego_garden::Result<ContainerInfo> {
        self.0.info().await
    }
    async fn metrics(&self) -> diego_garden::Result<ContainerMetrics> {
        self.0.metrics().await
    }
    async fn stop(&self, kill: bool) -> diego_garden::Result<()> {
        self.0.stop(kill).await
    }
}

#[async_trait]
impl Process for OomProcess {
    fn id(&self) -> &str {
        self.0.id()
    }
    async fn wait(&self) -> diego_garden::Result<ExitStatus> {
        let status = self.0.wait().await?;
        Ok(ExitStatus {
            out_of_memory: matches!(self.1, Twist::Oom) && status.code == 137,
            ..status
        })
    }
    async fn signal(&self, signal: Signal) -> diego_garden::Result<()> {
        match self.1 {
            Twist::Oom => self.0.signal(signal).await,
            Twist::Unkillable => Ok(()),
        }
    }
    fn stdout(&self) -> ByteStream {
        self.0.stdout()
    }
    fn stderr(&self) -> ByteStream {
        self.0.stderr()
    }
}

#[tokio::test(start_paused = true)]
async fn run_reports_out_of_memory() {
    let fake = FakeBackend::new();
    let mut h = harness_with(
        Arc::new(OomBackend(fake.clone(), Twist::Oom)),
        test_config(),
        None,
    )
    .await;
    let done = h.run_to_completion("oom", request(sh("exit 137"))).await;
    assert_eq!(
        done.run_result.failure_reason,
        "APP/PROC/WEB: Exited with status 137 (out of memory)"
    );
    assert!(h
        .prefixed()
        .contains(&"[APP/PROC/WEB/0] OUT Exit status 137 (out of memory)".to_string()));
}

#[tokio::test(start_paused = true)]
async fn timeout_cancels_its_child_with_go_durations() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    let started = tokio::time::Instant::now();
    let done = h
        .run_to_completion("t1", request(Action::timeout(sh("sleep 100"), 5_000)))
        .await;
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(
        done.run_result.failure_reason,
        "exceeded 5s timeout; cancelled"
    );
    let done = h
        .run_to_completion("t2", request(Action::timeout(sh("sleep 100"), 500)))
        .await;
    assert_eq!(
        done.run_result.failure_reason,
        "exceeded 500ms timeout; cancelled"
    );
    let done = h
        .run_to_completion("t3", request(Action::timeout(sh("sleep 100"), 60_000)))
        .await;
    assert_eq!(
        done.run_result.failure_reason,
        "exceeded 1m0s timeout; cancelled"
    );
    // A child that ignores SIGTERM is killed after the graceful interval.
    let started = tokio::time::Instant::now();
    let done = h
        .run_to_completion(
            "t4",
            request(Action::timeout(sh("trap '' TERM; sleep 100"), 1_000)),
        )
        .await;
    assert_eq!(started.elapsed(), Duration::from_secs(11));
    assert_eq!(
        done.run_result.failure_reason,
        "exceeded 1s timeout; cancelled"
    );
    // In time: the child's own result.
    let done = h
        .run_to_completion("t5", request(Action::timeout(sh("sleep 1; exit 3"), 5_000)))
        .await;
    assert_eq!(
        done.run_result.failure_reason,
        "APP/PROC/WEB: Exited with status 3"
    );
}

#[tokio::test(start_paused = true)]
async fn try_ignores_failure_and_serial_stops_at_the_first_error() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    let done = h
        .run_to_completion(
            "s1",
            request(Action::serial([
                Action::try_(sh("echo one; exit 9")),
                sh("echo two"),
                sh("echo three; exit 2"),
                sh("echo four"),
            ])),
        )
        .await;
    assert_eq!(
        done.run_result.failure_reason,
        "APP/PROC/WEB: Exited with status 2"
    );
    let texts = h.texts();
    let app: Vec<&str> = texts
        .iter()
        .map(String::as_str)
        .filter(|t| !t.starts_with("Cell "))
        .collect();
    assert_eq!(
        app,
        [
            "one",
            "Exit status 9",
            "two",
            "Exit status 0",
            "three",
            "Exit status 2"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn parallel_waits_for_all_and_joins_errors() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    let started = tokio::time::Instant::now();
    let done = h
        .run_to_completion(
            "p1",
            request(Action::parallel([
                with_source(sh("sleep 1; exit 1"), "A"),
                sh("sleep 3"),
                with_source(sh("sleep 2; exit 2"), "B"),
            ])),
        )
        .await;
    assert_eq!(started.elapsed(), Duration::from_secs(3), "waits for all");
    assert_eq!(
        done.run_result.failure_reason,
        "A: Exited with status 1; B: Exited with status 2"
    );
    let done = h
        .run_to_completion("p2", request(Action::parallel([sh("true"), sh("true")])))
        .await;
    assert!(!done.run_result.failed);
}

#[tokio::test(start_paused = true)]
async fn codependent_ends_the_group_at_the_first_exit() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    let started = tokio::time::Instant::now();
    let done = h
        .run_to_completion(
            "c1",
            request(Action::codependent([sh("sleep 2"), sh("sleep 100")])),
        )
        .await;
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(done.run_result.failure_reason, CODEPENDENT_STEP_EXITED);
    assert_eq!(done.run_result.failure_reason, "Codependent step exited");
    let done = h
        .run_to_completion(
            "c2",
            request(Action::codependent([
                sh("sleep 100"),
                with_source(sh("sleep 1; exit 7"), "SIDE"),
            ])),
        )
        .await;
    assert_eq!(done.run_result.failure_reason, "SIDE: Exited with status 7");
}

#[tokio::test(start_paused = true)]
async fn emit_progress_logs_around_its_action() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    let done = h
        .run_to_completion(
            "e1",
            request(progress(
                sh("true"),
                "Staging...",
                "Staged",
                "Staging failed",
            )),
        )
        .await;
    assert!(!done.run_result.failed);
    let done = h
        .run_to_completion(
            "e2",
            request(progress(sh("exit 3"), "Starting", "never", "Start failed")),
        )
        .await;
    // The failure reason has no prefix.
    assert_eq!(
        done.run_result.failure_reason,
        "APP/PROC/WEB: Exited with status 3"
    );
    let lines: Vec<String> = h
        .prefixed()
        .into_iter()
        .filter(|l| !l.contains("Cell "))
        .collect();
    assert_eq!(
        lines,
        [
            "[APP/PROC/WEB/0] OUT Staging...",
            "[APP/PROC/WEB/0] OUT Exit status 0",
            "[APP/PROC/WEB/0] OUT Staged",
            "[APP/PROC/WEB/0] OUT Starting",
            "[APP/PROC/WEB/0] OUT Exit status 3",
            "[APP/PROC/WEB/0] ERR Start failed: APP/PROC/WEB: Exited with status 3",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn missing_children_are_invalid_action_types() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    for (guid, action) in [
        (
            "i1",
            Action::Timeout(TimeoutAction {
                action: None,
                timeout_ms: 5,
                log_source: String::new(),
            }),
        ),
        ("i2", Action::Try(TryAction::default())),
        ("i3", Action::EmitProgress(EmitProgressAction::default())),
    ] {
        let done = h.run_to_completion(guid, request(action)).await;
        assert_eq!(done.run_result.failure_reason, "invalid action type");
    }
    let empty = Action::Serial(SerialAction::default());
    let done = h.run_to_completion("i4", request(empty)).await;
    assert!(!done.run_result.failed, "an empty serial does nothing");
}

#[tokio::test(start_paused = true)]
async fn setup_failures_complete_before_the_action() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    let mut req = request(sh("echo main"));
    req.setup = Some(with_source(sh("exit 6"), "SETUP"));
    let done = h.run_to_completion("su", req).await;
    assert_eq!(
        done.run_result.failure_reason,
        "SETUP: Exited with status 6"
    );
    assert!(!h.texts().contains(&"main".to_string()));
}

#[tokio::test(start_paused = true)]
async fn sidecars_exit_ends_the_group() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    let mut req = request(sh("sleep 100"));
    req.sidecars = vec![with_source(sh("sleep 3"), "SIDECAR")];
    let started = tokio::time::Instant::now();
    let done = h.run_to_completion("sc", req).await;
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(done.run_result.failure_reason, "Codependent step exited");
    let mut req = request(sh("sleep 100"));
    req.sidecars = vec![with_source(sh("sleep 1; exit 1"), "SIDECAR")];
    let done = h.run_to_completion("sc2", req).await;
    assert_eq!(
        done.run_result.failure_reason,
        "SIDECAR: Exited with status 1"
    );
}

#[tokio::test(start_paused = true)]
async fn stop_cancels_a_serial_between_steps() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    h.reserve("x").await;
    h.executor
        .run(
            "x",
            request(Action::serial([sh("sleep 5"), sh("echo after")])),
        )
        .await
        .unwrap();
    h.wait_running("x").await;
    h.executor.stop("x").await.unwrap();
    let done = h.executor.get("x").unwrap();
    assert!(done.run_result.stopped);
    assert!(done.run_result.failed);
    assert!(!h.texts().contains(&"after".to_string()));
}

#[tokio::test(start_paused = true)]
async fn a_log_rate_limit_drops_and_counts_without_blocking() {
    let fake = FakeBackend::new();
    let mut h = fake_harness(&fake).await;
    let mut req = request(sh("echo 1; echo 2; echo 3; echo 4; echo 5; exit 0"));
    req.log_rate_limit = Some(diego_core::log_sink::LogLimit {
        lines_per_second: Some(3),
        bytes_per_second: None,
    });
    let started = tokio::time::Instant::now();
    let done = h.run_to_completion("rl", req).await;
    assert!(!done.run_result.failed);
    assert_eq!(started.elapsed(), Duration::ZERO, "never waits");
    let app: Vec<String> = h
        .prefixed()
        .into_iter()
        .filter(|l| l.starts_with("[APP"))
        .collect();
    assert_eq!(
        app,
        [
            "[APP/PROC/WEB/0] OUT 1",
            "[APP/PROC/WEB/0] OUT 2",
            "[APP/PROC/WEB/0] OUT 3",
            "[APP/PROC/WEB/0] ERR 3 log lines dropped: log rate limit exceeded",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_process_that_survives_sigkill_is_given_up_on() {
    let fake = FakeBackend::new();
    let mut h = harness_with(
        Arc::new(OomBackend(fake.clone(), Twist::Unkillable)),
        test_config(),
        None,
    )
    .await;
    let started = tokio::time::Instant::now();
    let done = h
        .run_to_completion("z", request(Action::timeout(sh("sleep 600"), 1_000)))
        .await;
    // 1 s timeout + 10 s graceful shutdown + 1 s after SIGKILL.
    assert_eq!(started.elapsed(), Duration::from_secs(12));
    assert_eq!(
        done.run_result.failure_reason,
        "exceeded 1s timeout; process did not exit"
    );
    fake.destroy("z").await.unwrap();
}
