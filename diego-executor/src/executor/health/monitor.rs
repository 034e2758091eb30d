//! The legacy monitor: the monitor action run again and again, every unhealthy interval
//! until it first passes (or the start timeout runs out), then every healthy interval
//! until it fails.
//!
//! It knows actions and time; it must not know Tasks or LRPs.

use diego_core::Action;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{HealthContext, HealthSignal};
use crate::executor::duration::{go_duration, round_to_millis};
use crate::executor::step::{run_action, StepError};

pub(super) async fn run(
    action: &Action,
    ctx: &HealthContext,
    cancel: &CancellationToken,
) -> StepError {
    let step_ctx = ctx.step.without_spawn_notice();
    let started = Instant::now();
    let deadline = (!ctx.start_timeout.is_zero()).then(|| started + ctx.start_timeout);
    let mut last_error = String::new();
    // Startup: first check after one interval.
    loop {
        let next = Instant::now() + ctx.unhealthy_interval;
        let wake = deadline.map_or(next, |d| d.min(next));
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = cancel.cancelled() => return StepError::cancelled(),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return never_healthy(started, &last_error);
        }
        match run_action(action, &step_ctx, cancel).await {
            Ok(()) => break,
            Err(err) if err.is_cancelled() => return err,
            Err(err) => {
                last_error = err.message().to_string();
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return never_healthy(started, &last_error);
                }
            }
        }
    }
    ctx.cell.out("Container became healthy");
    ctx.signal(HealthSignal::Healthy);
    // Liveness.
    loop {
        tokio::select! {
            () = tokio::time::sleep(ctx.healthy_interval) => {}
            () = cancel.cancelled() => return StepError::cancelled(),
        }
        match run_action(action, &step_ctx, cancel).await {
            Ok(()) => {}
            Err(err) if err.is_cancelled() => return err,
            Err(err) => {
                ctx.cell.err("Container became unhealthy");
                return StepError::failed(format!("Instance became unhealthy: {err}"));
            }
        }
    }
}

fn never_healthy(started: Instant, last_error: &str) -> StepError {
    StepError::failed(format!(
        "Instance never healthy after {}: {last_error}",
        go_duration(round_to_millis(started.elapsed()))
    ))
}
