//! Declarative checks: startup (all in parallel, each retried every unhealthy interval
//! until the start timeout), then liveness (each at its own interval; the first failure
//! ends the instance) beside readiness (flips `routable` only).
//!
//! It knows checks and time; it must not know Tasks or LRPs.

use std::time::Duration;

use diego_core::models::check_definition::{
    DEFAULT_CHECK_INTERVAL_MS, DEFAULT_CHECK_LOG_SOURCE, DEFAULT_CHECK_TIMEOUT_MS,
    DEFAULT_HTTP_CHECK_PATH,
};
use diego_core::{Check, CheckDefinition};
use futures::future::{join_all, select_all};
use futures::FutureExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::prober::ProbeFailure;
use super::{HealthContext, HealthSignal};
use crate::executor::duration::go_duration;
use crate::executor::log_streamer::LogStreamer;
use crate::executor::step::StepError;

/// One check, resolved: what to probe and how often.
struct Probe<'a> {
    check: &'a Check,
    timeout: Duration,
    interval: Duration,
}

impl<'a> Probe<'a> {
    fn new(check: &'a Check) -> Self {
        let (timeout_ms, interval_ms) = match (&check.tcp_check, &check.http_check) {
            (Some(tcp), _) => (tcp.connect_timeout_ms, tcp.interval_ms),
            (None, Some(http)) => (http.request_timeout_ms, http.interval_ms),
            (None, None) => (0, 0),
        };
        let or = |ms: u64, default: u64| Duration::from_millis(if ms == 0 { default } else { ms });
        Probe {
            check,
            timeout: or(timeout_ms, DEFAULT_CHECK_TIMEOUT_MS),
            interval: or(interval_ms, DEFAULT_CHECK_INTERVAL_MS),
        }
    }

    /// One attempt; the error in Diego's words.
    async fn attempt(&self, ctx: &HealthContext) -> Result<(), String> {
        if let Some(tcp) = &self.check.tcp_check {
            let target = ctx.target(tcp.port);
            return ctx
                .prober
                .tcp(&target, self.timeout)
                .await
                .map_err(|failure| {
                    let dial = match failure {
                        ProbeFailure::Connection(text) => text,
                        ProbeFailure::TimedOut => {
                            format!("dial tcp {}:{}: i/o timeout", target.ip, target.port)
                        }
                        ProbeFailure::Status { code, .. } => format!("status code {code}"),
                    };
                    format!(
                        "failed to make TCP connection to {}:{}: {dial}",
                        target.ip, target.port
                    )
                });
        }
        if let Some(http) = &self.check.http_check {
            let target = ctx.target(http.port);
            let path = if http.path.is_empty() {
                DEFAULT_HTTP_CHECK_PATH
            } else {
                http.path.as_str()
            };
            return ctx
                .prober
                .http(&target, path, self.timeout)
                .await
                .map_err(|failure| {
                    let why = match failure {
                        ProbeFailure::Connection(_) => "connection refused".to_string(),
                        ProbeFailure::Status { code, elapsed } => {
                            format!("received status code {code} in {}ms", elapsed.as_millis())
                        }
                        ProbeFailure::TimedOut => {
                            format!("timed out after {:.2} seconds", self.timeout.as_secs_f64())
                        }
                    };
                    format!(
                        "failed to make HTTP request to '{path}' on port {}: {why}",
                        http.port
                    )
                });
        }
        Err("a check needs a tcp_check or an http_check".to_string())
    }
}

pub(super) async fn run(
    definition: &CheckDefinition,
    ctx: &HealthContext,
    cancel: &CancellationToken,
) -> StepError {
    let source = if definition.log_source.is_empty() {
        DEFAULT_CHECK_LOG_SOURCE
    } else {
        definition.log_source.as_str()
    };
    let health_log = ctx.cell.with_source(source);
    let startup: Vec<Probe<'_>> = definition.checks.iter().map(Probe::new).collect();
    let readiness: Vec<Probe<'_>> = definition.readiness_checks.iter().map(Probe::new).collect();

    let startup_result = tokio::select! {
        result = run_startup(&startup, ctx) => result,
        () = cancel.cancelled() => return StepError::cancelled(),
    };
    if let Err(err) = startup_result {
        health_log.err(err.clone());
        return StepError::failed(err);
    }
    ctx.cell.out("Container became healthy");
    ctx.signal(HealthSignal::Healthy);

    let liveness = run_liveness(&startup, ctx).fuse();
    let ready = run_readiness(&readiness, ctx, &health_log).fuse();
    tokio::pin!(liveness, ready);
    tokio::select! {
        err = &mut liveness => {
            health_log.err(err.clone());
            ctx.cell.err("Container became unhealthy");
            StepError::failed(err)
        }
        () = &mut ready => {
            // Readiness never ends on its own; wait for liveness or cancellation.
            tokio::select! {
                err = liveness => {
                    health_log.err(err.clone());
                    ctx.cell.err("Container became unhealthy");
                    StepError::failed(err)
                }
                () = cancel.cancelled() => StepError::cancelled(),
            }
        }
        () = cancel.cancelled() => StepError::cancelled(),
    }
}

/// Every startup check must pass; the first to time out fails them all.
async fn run_startup(probes: &[Probe<'_>], ctx: &HealthContext) -> Result<(), String> {
    if probes.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let deadline = (!ctx.start_timeout.is_zero()).then(|| started + ctx.start_timeout);
    let attempts = probes.iter().map(|probe| {
        async move {
            let mut count: u64 = 0;
            loop {
                count += 1;
                let error = match probe.attempt(ctx).await {
                    Ok(()) => return Ok(()),
                    Err(error) => error,
                };
                let now = Instant::now();
                if let Some(deadline) = deadline {
                    if now >= deadline {
                        let d = go_duration(ctx.start_timeout);
                        return Err(format!(
                            "Instance never healthy after {d}: Timed out after {d} \
                             ({count} attempts) waiting for startup check to succeed: {error}"
                        ));
                    }
                    tokio::time::sleep_until(deadline.min(now + ctx.unhealthy_interval)).await;
                } else {
                    tokio::time::sleep(ctx.unhealthy_interval).await;
                }
            }
        }
        .boxed()
    });
    let mut pending: Vec<_> = attempts.collect();
    while !pending.is_empty() {
        let (result, _, rest) = select_all(pending).await;
        result?;
        pending = rest;
    }
    Ok(())
}

/// Ends with the first liveness failure (never, without checks).
async fn run_liveness(probes: &[Probe<'_>], ctx: &HealthContext) -> String {
    if probes.is_empty() {
        return std::future::pending().await;
    }
    let loops = probes.iter().map(|probe| {
        async move {
            loop {
                tokio::time::sleep(probe.interval).await;
                if let Err(error) = probe.attempt(ctx).await {
                    return format!(
                        "Instance became unhealthy: Liveness check unsuccessful: {error}"
                    );
                }
            }
        }
        .boxed()
    });
    let (first, _, _) = select_all(loops).await;
    first
}

/// Probes readiness forever, reporting each change of "all pass".
async fn run_readiness(probes: &[Probe<'_>], ctx: &HealthContext, log: &LogStreamer) {
    if probes.is_empty() {
        return;
    }
    let mut ready: Option<bool> = None;
    let mut next_due: Vec<Instant> = vec![Instant::now(); probes.len()];
    let mut passing: Vec<bool> = vec![false; probes.len()];
    loop {
        let now = Instant::now();
        let due: Vec<usize> = (0..probes.len()).filter(|&i| next_due[i] <= now).collect();
        let results = join_all(due.iter().map(|&i| probes[i].attempt(ctx))).await;
        for (&i, result) in due.iter().zip(results) {
            passing[i] = result.is_ok();
            next_due[i] = now + probes[i].interval;
        }
        let all = passing.iter().all(|p| *p);
        if ready != Some(all) {
            if all {
                log.out("Container passed the readiness health check. Container marked ready and added to route pool.");
            } else if ready.is_some() {
                log.out("Container failed the readiness health check. Container marked not ready and removed from route pool.");
            }
            if ready.is_some() || all {
                ctx.signal(HealthSignal::Ready(all));
            }
            ready = Some(all);
        }
        let wake = next_due
            .iter()
            .min()
            .copied()
            .unwrap_or(now + ctx.healthy_interval);
        tokio::time::sleep_until(wake).await;
    }
}
