//! The life of one created container: setup, then the action with its sidecars beside
//! the health checks, until something ends it; then the result file. Running is
//! reported when the checks first pass (or when the process spawns, without checks).
//!
//! It knows containers, action trees and checks; it must not know Tasks or LRPs.

use std::sync::Arc;

use diego_core::log_sink::RateLimitedLogSink;
use diego_core::LogSink;
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::executor::container::{PortMapping, RunResult};
use crate::executor::env::container_env;
use crate::executor::health::{self, HealthContext, HealthPlan, HealthSignal};
use crate::executor::log_streamer::LogStreamer;
use crate::executor::result_file::{self, FAILED_TO_FETCH_RESULT};
use crate::executor::run_request::RunRequest;
use crate::executor::step::{
    run_action, run_codependent_group, StepContext, StepError, StepResult,
};
use crate::executor::Inner;

/// A created container, ready to run.
pub(crate) struct Setup {
    pub(crate) guid: String,
    pub(crate) container: Arc<dyn diego_garden::Container>,
    pub(crate) request: Arc<RunRequest>,
    pub(crate) external_ip: String,
    pub(crate) internal_ip: String,
    pub(crate) ports: Vec<PortMapping>,
    pub(crate) stop: CancellationToken,
    pub(crate) metric_tags: crate::executor::log_streamer::SharedTags,
}

/// Runs the container to its end and says how it ended.
pub(crate) async fn run(inner: &Arc<Inner>, setup: Setup) -> RunResult {
    let request = Arc::clone(&setup.request);
    let limited = request.log_rate_limit.map(|limit| {
        Arc::new(RateLimitedLogSink::new(
            Arc::clone(&inner.log_sink),
            limit,
            Arc::clone(&inner.clock),
        ))
    });
    let sink: Arc<dyn LogSink> = match &limited {
        Some(limited) => Arc::clone(limited) as Arc<dyn LogSink>,
        None => Arc::clone(&inner.log_sink),
    };
    let result = run_with_sink(inner, &setup, sink).await;
    if let Some(limited) = limited {
        // Say how many lines were dropped since the last notice.
        limited.flush_notices();
    }
    result
}

async fn run_with_sink(inner: &Arc<Inner>, setup: &Setup, sink: Arc<dyn LogSink>) -> RunResult {
    let request = Arc::clone(&setup.request);
    let log = &request.log_config;
    let streamer = LogStreamer::new(
        sink,
        Arc::clone(&inner.clock),
        log.guid.clone(),
        log.source_name.clone(),
        log.index,
    )
    .with_tags(setup.metric_tags.clone());
    let env = container_env(
        &request,
        &setup.external_ip,
        &setup.internal_ip,
        &setup.ports,
    );
    let (spawned_tx, mut spawned_rx) = watch::channel(false);
    let ctx = StepContext {
        container: Arc::clone(&setup.container),
        env: Arc::new(env),
        streamer: streamer.clone(),
        settings: Arc::clone(&inner.step_settings),
        downloader: Arc::clone(&inner.downloader),
        spawned: Some(Arc::new(spawned_tx)),
    };
    let tree = setup.stop.child_token();

    if let Some(setup_action) = &request.setup {
        if let Err(err) = run_action(setup_action, &ctx.without_spawn_notice(), &tree).await {
            return outcome(Err(err));
        }
    }
    let Some(action) = request.action.as_ref() else {
        return outcome(Err(StepError::failed(
            diego_core::models::action::INVALID_ACTION_TYPE,
        )));
    };

    let has_sidecars = !request.sidecars.is_empty();
    let main_cancel = tree.child_token();
    let sidecar_ctx = ctx.without_spawn_notice();
    let main: BoxFuture<'_, StepResult> = if has_sidecars {
        let mut members: Vec<BoxFuture<'_, StepResult>> =
            vec![run_action(action, &ctx, &main_cancel)];
        for sidecar in &request.sidecars {
            members.push(run_action(sidecar, &sidecar_ctx, &main_cancel));
        }
        Box::pin(run_codependent_group(members, &main_cancel))
    } else {
        run_action(action, &ctx, &main_cancel)
    };

    let plan = match (&request.check_definition, &request.monitor) {
        (Some(definition), _) => Some(HealthPlan::Checks(definition)),
        (None, Some(monitor)) => Some(HealthPlan::Monitor(monitor)),
        (None, None) => None,
    };

    let result = match plan {
        None => {
            let mut main = main.fuse();
            loop {
                tokio::select! {
                    result = &mut main => break result,
                    changed = spawned_rx.changed() => {
                        if changed.is_ok() && *spawned_rx.borrow_and_update() {
                            inner.mark_running(&setup.guid, true);
                        }
                    }
                }
            }
        }
        Some(plan) => {
            let has_readiness = request
                .check_definition
                .as_ref()
                .is_some_and(|d| !d.readiness_checks.is_empty());
            let (signals_tx, mut signals_rx) = mpsc::unbounded_channel();
            let health_ctx = HealthContext {
                step: ctx.clone(),
                cell: streamer.with_source("CELL"),
                prober: Arc::clone(&inner.prober),
                handle: setup.guid.clone(),
                ip: setup.internal_ip.clone(),
                ports: setup.ports.clone(),
                start_timeout: request.start_timeout,
                unhealthy_interval: inner.config.unhealthy_monitoring_interval,
                healthy_interval: inner.config.healthy_monitoring_interval,
                signals: signals_tx,
            };
            let health_cancel = tree.child_token();
            let health = health::run(plan, &health_ctx, &health_cancel).fuse();
            let mut main = main.fuse();
            tokio::pin!(health);
            let mut main_done = false;
            loop {
                tokio::select! {
                    result = &mut main, if !main_done => match result {
                        Err(err) => {
                            health_cancel.cancel();
                            (&mut health).await;
                            break Err(err);
                        }
                        // Exit 0 without sidecars: the process may have daemonised; the
                        // checks decide.
                        Ok(()) => main_done = true,
                    },
                    err = &mut health => {
                        main_cancel.cancel();
                        if !main_done {
                            let _ = (&mut main).await;
                        }
                        break Err(err);
                    }
                    Some(signal) = signals_rx.recv() => match signal {
                        HealthSignal::Healthy => inner.mark_running(&setup.guid, !has_readiness),
                        HealthSignal::Ready(ready) => inner.set_routable(&setup.guid, ready),
                    },
                }
            }
        }
    };

    if result.is_ok() && !request.result_file.is_empty() {
        return match result_file::fetch(setup.container.as_ref(), &request.result_file).await {
            Ok(content) => RunResult {
                result: content,
                ..RunResult::default()
            },
            Err(why) => {
                tracing::warn!(path = %request.result_file, %why, "result file unreadable");
                RunResult {
                    failed: true,
                    failure_reason: FAILED_TO_FETCH_RESULT.to_string(),
                    ..RunResult::default()
                }
            }
        };
    }
    outcome(result)
}

fn outcome(result: StepResult) -> RunResult {
    match result {
        Ok(()) => RunResult::default(),
        Err(err) => RunResult {
            failed: true,
            failure_reason: err.message().to_string(),
            ..RunResult::default()
        },
    }
}
