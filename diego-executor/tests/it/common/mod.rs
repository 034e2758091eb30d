//! Shared helpers of the executor's integration tests.
#![allow(dead_code)]

pub mod cluster;

use std::sync::Arc;

use diego_core::log_sink::{format_line, RingBufferLogSink};
use diego_core::{Action, LogLine};
use diego_executor::{
    AllocationRequest, CheckProber, Container, ContainerEvent, ContainerEventStream,
    ContainerResource, Executor, ExecutorConfig, FakeBackendProber, LogConfig, Resources,
    RunRequest,
};
use diego_garden::{ContainerBackend, FakeBackend};
use futures::StreamExt;

/// The log guid every test container logs under.
pub const LOG_GUID: &str = "log-guid";

pub struct Harness {
    pub executor: Executor,
    pub logs: Arc<RingBufferLogSink>,
    pub events: ContainerEventStream,
}

pub fn test_config() -> ExecutorConfig {
    ExecutorConfig::default()
        .with_cell_id("cell-z1-0")
        .with_total_resources(Resources {
            memory_mb: 1024,
            disk_mb: 2048,
            containers: 8,
        })
}

pub async fn harness_with(
    backend: Arc<dyn ContainerBackend>,
    config: ExecutorConfig,
    prober: Option<Arc<dyn CheckProber>>,
) -> Harness {
    let logs = Arc::new(RingBufferLogSink::new(10_000));
    let mut builder = Executor::builder(backend)
        .config(config)
        .log_sink(logs.clone());
    if let Some(prober) = prober {
        builder = builder.prober(prober);
    }
    let executor = builder.build().await.expect("executor builds");
    let events = executor.events();
    Harness {
        executor,
        logs,
        events,
    }
}

pub async fn fake_harness(fake: &FakeBackend) -> Harness {
    harness_with(
        Arc::new(fake.clone()),
        test_config(),
        Some(Arc::new(FakeBackendProber::new(fake.clone()))),
    )
    .await
}

/// A request running `action`, logging as `APP/PROC/WEB` instance 0.
pub fn request(action: impl Into<Action>) -> RunRequest {
    let mut request = RunRequest::new(action);
    request.log_config = LogConfig::new(LOG_GUID)
        .with_source_name("APP/PROC/WEB")
        .with_index(0);
    request
}

impl Harness {
    pub async fn reserve(&self, guid: &str) {
        let failures = self
            .executor
            .allocate(vec![AllocationRequest::new(
                guid,
                ContainerResource::new(64, 64),
            )])
            .await;
        assert!(failures.is_empty(), "{failures:?}");
    }

    /// Reserves `guid`, runs `request`, waits for it to complete.
    pub async fn run_to_completion(&mut self, guid: &str, request: RunRequest) -> Container {
        self.reserve(guid).await;
        self.executor.run(guid, request).await.expect("run starts");
        self.wait_completed(guid).await
    }

    /// The next event about `guid`.
    pub async fn next_event(&mut self, guid: &str) -> ContainerEvent {
        loop {
            let event = self.events.next().await.expect("event stream open");
            if event.container().is_some_and(|c| c.guid == guid) {
                return event;
            }
        }
    }

    pub async fn wait_completed(&mut self, guid: &str) -> Container {
        loop {
            if let ContainerEvent::Completed(c) = self.next_event(guid).await {
                return c;
            }
        }
    }

    /// Waits until every one of `guids` completed, in any order.
    pub async fn wait_all_completed(&mut self, guids: &[&str]) -> Vec<Container> {
        let mut done: Vec<Container> = Vec::new();
        while done.len() < guids.len() {
            let event = self.events.next().await.expect("event stream open");
            if let ContainerEvent::Completed(c) = event {
                if guids.contains(&c.guid.as_str()) {
                    done.push(c);
                }
            }
        }
        done
    }

    pub async fn wait_running(&mut self, guid: &str) -> Container {
        loop {
            match self.next_event(guid).await {
                ContainerEvent::Running(c) => return c,
                ContainerEvent::Completed(c) => panic!("completed before running: {c:?}"),
                _ => {}
            }
        }
    }

    /// The text of every line logged so far, in order.
    pub fn texts(&self) -> Vec<String> {
        self.logs
            .lines(LOG_GUID)
            .iter()
            .map(|l| l.text().into_owned())
            .collect()
    }

    /// Every line as `[SOURCE/index] OUT text`.
    pub fn prefixed(&self) -> Vec<String> {
        self.logs.lines(LOG_GUID).iter().map(prefixed).collect()
    }
}

/// A line without its timestamp: `[APP/PROC/WEB/0] OUT hello`.
pub fn prefixed(line: &LogLine) -> String {
    let full = format_line(line);
    full.split_once(' ')
        .map(|(_, rest)| rest.to_string())
        .unwrap_or(full)
}

/// `/bin/sh -c <script>` as user `vcap`.
pub fn sh(script: &str) -> Action {
    diego_core::RunAction::new("/bin/sh", "vcap")
        .with_args(["-c", script])
        .into()
}

/// Whether `check` holds within `limit` (tokio time: paused-time tests advance it).
pub async fn until<F, Fut>(limit: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    false
}

/// Waits until `check` holds; fails the test naming `what` after `limit`.
pub async fn wait_for<F, Fut>(what: &str, limit: std::time::Duration, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    assert!(
        until(limit, check).await,
        "timed out waiting for {what} ({limit:?})"
    );
}
