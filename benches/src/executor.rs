//! `headline executor`: the executor's figures.
//!
//! - `executor_fake_containers_per_sec`: reserve → run `/bin/true` → complete → delete
//!   through the executor on the FakeBackend, 100 at a time, 10,000 in all.
//! - `executor_run_step_us`: time per run step of a serial of 1,000 `/bin/true` runs in
//!   one fake container.
//! - `executor_process_containers_per_sec`: the same cycle on the ProcessBackend (real
//!   `/bin/true` processes), 4 at a time.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use diego_core::log_sink::NullLogSink;
use diego_core::{Action, RunAction};
use diego_executor::{
    AllocationRequest, ContainerEvent, ContainerEventStream, ContainerResource, Executor,
    ExecutorConfig, Resources, RunRequest,
};
use diego_garden::{ContainerBackend, FakeBackend, ProcessBackend};
use futures::StreamExt;

use crate::print_figure;

async fn executor(backend: Arc<dyn ContainerBackend>) -> anyhow::Result<Executor> {
    let config = ExecutorConfig::default()
        .with_total_resources(Resources {
            memory_mb: 1 << 20,
            disk_mb: 1 << 20,
            containers: 100_000,
        })
        .with_apply_action_user(false);
    Ok(Executor::builder(backend)
        .config(config)
        .log_sink(Arc::new(NullLogSink))
        .build()
        .await?)
}

/// Reserves, runs and deletes `guids`, each running `action`; waits for all.
async fn batch(
    executor: &Executor,
    events: &mut ContainerEventStream,
    guids: &[String],
    action: &Action,
) -> anyhow::Result<()> {
    let requests = guids
        .iter()
        .map(|guid| AllocationRequest::new(guid.clone(), ContainerResource::new(16, 16)))
        .collect();
    let failures = executor.allocate(requests).await;
    if let Some(failure) = failures.first() {
        bail!("allocation failed: {}", failure.reason);
    }
    for guid in guids {
        executor.run(guid, RunRequest::new(action.clone())).await?;
    }
    let mut completed = 0;
    while completed < guids.len() {
        match events.next().await.context("event stream ended")? {
            ContainerEvent::Completed(c) if c.run_result.failed => {
                bail!("{} failed: {}", c.guid, c.run_result.failure_reason)
            }
            ContainerEvent::Completed(_) => completed += 1,
            _ => {}
        }
    }
    for guid in guids {
        executor.delete(guid).await?;
    }
    Ok(())
}

async fn rate(
    backend: Arc<dyn ContainerBackend>,
    total: usize,
    at_once: usize,
) -> anyhow::Result<f64> {
    let executor = executor(backend).await?;
    let mut events = executor.events();
    let action: Action = RunAction::new("/bin/true", "vcap").into();
    let started = Instant::now();
    for round in 0..total / at_once {
        let guids: Vec<String> = (0..at_once).map(|i| format!("h-{round}-{i}")).collect();
        batch(&executor, &mut events, &guids, &action).await?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

async fn step_us() -> anyhow::Result<f64> {
    let executor = executor(Arc::new(FakeBackend::new())).await?;
    let mut events = executor.events();
    let run: Action = RunAction::new("/bin/true", "vcap").into();
    let serial = Action::serial(std::iter::repeat_n(run, 1_000));
    let started = Instant::now();
    batch(&executor, &mut events, &["steps".to_string()], &serial).await?;
    Ok(started.elapsed().as_secs_f64() * 1e6 / 1_000.0)
}

/// Runs the group, printing one line per figure.
pub fn run() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let fake = rate(Arc::new(FakeBackend::new()), 10_000, 100).await?;
        print_figure("executor_fake_containers_per_sec", fake, "containers/s");
        print_figure("executor_run_step_us", step_us().await?, "us");
        let scratch =
            std::env::temp_dir().join(format!("diego-bench-executor-{}", std::process::id()));
        let process = Arc::new(ProcessBackend::new(&scratch)?);
        let real = rate(process, 200, 4).await;
        let _ = std::fs::remove_dir_all(&scratch);
        print_figure("executor_process_containers_per_sec", real?, "containers/s");
        Ok(())
    })
}
