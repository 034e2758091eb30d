//! Criterion benchmarks of the executor on the FakeBackend: container throughput
//! (reserve → run → complete → delete, 100 containers at a time) and the overhead of one
//! step of an action tree (a serial of 100 runs of `true`).
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use diego_core::log_sink::NullLogSink;
use diego_core::{Action, RunAction};
use diego_executor::{
    AllocationRequest, ContainerEvent, ContainerEventStream, ContainerResource, Executor,
    ExecutorConfig, Resources, RunRequest,
};
use diego_garden::FakeBackend;
use futures::StreamExt;

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => panic!("no tokio runtime: {err}"),
    }
}

async fn executor() -> Executor {
    let config = ExecutorConfig::default().with_total_resources(Resources {
        memory_mb: 1 << 20,
        disk_mb: 1 << 20,
        containers: 10_000,
    });
    match Executor::builder(Arc::new(FakeBackend::new()))
        .config(config)
        .log_sink(Arc::new(NullLogSink))
        .build()
        .await
    {
        Ok(executor) => executor,
        Err(err) => panic!("executor: {err}"),
    }
}

/// Reserves, runs and deletes `count` containers running `action`; waits for all.
async fn batch(
    executor: &Executor,
    events: &mut ContainerEventStream,
    round: u64,
    count: usize,
    action: &Action,
) {
    let guids: Vec<String> = (0..count).map(|i| format!("c-{round}-{i}")).collect();
    let requests = guids
        .iter()
        .map(|guid| AllocationRequest::new(guid.clone(), ContainerResource::new(64, 64)))
        .collect();
    let failures = executor.allocate(requests).await;
    assert!(failures.is_empty(), "{failures:?}");
    for guid in &guids {
        if let Err(err) = executor.run(guid, RunRequest::new(action.clone())).await {
            panic!("run: {err}");
        }
    }
    let mut completed = 0;
    while completed < count {
        match events.next().await {
            Some(ContainerEvent::Completed(c)) => {
                assert!(!c.run_result.failed, "{:?}", c.run_result);
                completed += 1;
            }
            Some(_) => {}
            None => panic!("event stream ended"),
        }
    }
    for guid in &guids {
        if let Err(err) = executor.delete(guid).await {
            panic!("delete: {err}");
        }
    }
}

fn container_throughput(c: &mut Criterion) {
    let runtime = runtime();
    let executor = runtime.block_on(executor());
    let mut events = executor.events();
    let action: Action = RunAction::new("/bin/true", "vcap").into();
    let mut round = 0u64;
    let mut group = c.benchmark_group("executor");
    group.throughput(Throughput::Elements(100));
    group.bench_function("fake_container_cycle_x100", |b| {
        b.iter(|| {
            round += 1;
            runtime.block_on(batch(&executor, &mut events, round, 100, &action));
        })
    });
    group.finish();
}

fn step_overhead(c: &mut Criterion) {
    let runtime = runtime();
    let executor = runtime.block_on(executor());
    let mut events = executor.events();
    let run: Action = RunAction::new("/bin/true", "vcap").into();
    let serial = Action::serial(std::iter::repeat_n(run, 100));
    let mut round = 0u64;
    let mut group = c.benchmark_group("executor");
    group.throughput(Throughput::Elements(100));
    group.bench_function("action_tree_serial_100_run_steps", |b| {
        b.iter(|| {
            round += 1;
            runtime.block_on(batch(&executor, &mut events, round, 1, &serial));
        })
    });
    let timeout = Action::timeout(
        Action::try_(Action::parallel([
            RunAction::new("/bin/true", "vcap").into()
        ])),
        60_000,
    );
    let nested = Action::serial(std::iter::repeat_n(timeout, 100));
    group.bench_function("action_tree_serial_100_timeout_try_parallel_run", |b| {
        b.iter(|| {
            round += 1;
            runtime.block_on(batch(&executor, &mut events, round, 1, &nested));
        })
    });
    group.finish();
}

criterion_group!(benches, container_throughput, step_overhead);
criterion_main!(benches);
