//! The run step: a process in the container, its output forwarded to the logs, its
//! exit status turned into Diego's texts; cancelled with SIGTERM, then SIGKILL.
//!
//! It knows processes and containers; it must not know Tasks or LRPs.

use std::time::Duration;

use diego_core::{LogStream, RunAction};
use diego_garden::{ExitStatus, ProcessLimits, ProcessSpec, Signal, OUT_OF_MEMORY_EVENT};
use tokio_util::sync::CancellationToken;

use super::{StepContext, StepError, StepResult};
use crate::executor::duration::go_duration;

/// Diego's text when a killed process still did not end.
pub(crate) const PROCESS_DID_NOT_EXIT: &str = "process did not exit";

/// How long the output pumps may take to drain after the process ended (a daemonised
/// child may hold the pipe open).
const OUTPUT_DRAIN: Duration = Duration::from_secs(1);

pub(super) async fn run(
    action: &RunAction,
    ctx: &StepContext,
    cancel: &CancellationToken,
) -> StepResult {
    if cancel.is_cancelled() {
        return Err(StepError::cancelled());
    }
    let streamer = ctx.streamer.with_source(&action.log_source);
    let mut env: Vec<(String, String)> = ctx.env.as_ref().clone();
    for var in &action.env {
        if let Some(slot) = env.iter_mut().find(|(name, _)| *name == var.name) {
            slot.1.clone_from(&var.value);
        } else {
            env.push((var.name.clone(), var.value.clone()));
        }
    }
    let spec = ProcessSpec {
        id: None,
        path: action.path.clone(),
        args: action.args.clone(),
        env,
        dir: (!action.dir.is_empty()).then(|| action.dir.clone()),
        user: (ctx.settings.apply_action_user && !action.user.is_empty())
            .then(|| action.user.clone()),
        // nofile is applied; nproc is deprecated, accepted and ignored, as in Diego.
        limits: ProcessLimits {
            nofile: action.resource_limits.as_ref().and_then(|l| l.nofile),
        },
    };
    let process = match ctx.container.run(spec).await {
        Ok(process) => process,
        Err(err) => {
            tracing::warn!(path = %action.path, error = %err, "failed to start process");
            return Err(StepError::failed(err.to_string()));
        }
    };
    ctx.notify_spawned();

    let pumps = (!action.suppress_log_output).then(|| {
        let out = streamer.clone();
        let err = streamer.clone();
        let stdout = process.stdout();
        let stderr = process.stderr();
        tokio::spawn(async move {
            tokio::join!(
                out.pump(LogStream::Out, stdout),
                err.pump(LogStream::Err, stderr)
            );
        })
    });

    let mut cancelled = false;
    let mut killed = false;
    let status: Option<ExitStatus> = tokio::select! {
        status = process.wait() => Some(wait_status(status)),
        () = cancel.cancelled() => None,
    };
    let status = match status {
        Some(status) => status,
        None => {
            cancelled = true;
            let _ = process.signal(Signal::Terminate).await;
            let grace = ctx.settings.graceful_shutdown_interval;
            match tokio::time::timeout(grace, process.wait()).await {
                Ok(status) => wait_status(status),
                Err(_) => {
                    killed = true;
                    let _ = process.signal(Signal::Kill).await;
                    match tokio::time::timeout(ctx.settings.process_kill_wait, process.wait()).await
                    {
                        Ok(status) => wait_status(status),
                        Err(_) => {
                            if let Some(pumps) = pumps {
                                pumps.abort();
                            }
                            return Err(StepError::cancelled_with(PROCESS_DID_NOT_EXIT));
                        }
                    }
                }
            }
        }
    };
    if let Some(pumps) = pumps {
        // Output first, then the exit status line.
        if tokio::time::timeout(OUTPUT_DRAIN, pumps).await.is_err() {
            tracing::debug!(path = %action.path, "process output still open after exit");
        }
    }

    let out_of_memory = status.code != 0 && (status.out_of_memory || saw_oom(ctx).await);
    if !action.suppress_log_output {
        let mut line = format!("Exit status {}", status.code);
        if out_of_memory {
            line.push_str(" (out of memory)");
        } else if killed {
            line.push_str(&format!(
                " (exceeded {} graceful shutdown interval)",
                go_duration(ctx.settings.graceful_shutdown_interval)
            ));
        }
        streamer.out(line);
    }
    if cancelled {
        return Err(StepError::cancelled());
    }
    if status.code != 0 {
        let mut message = format!(
            "{}: Exited with status {}",
            streamer.source_type(),
            status.code
        );
        if out_of_memory {
            message.push_str(" (out of memory)");
        }
        return Err(StepError::failed(message));
    }
    Ok(())
}

/// A wait error (the backend lost the process) counts as a kill.
fn wait_status(status: diego_garden::Result<ExitStatus>) -> ExitStatus {
    match status {
        Ok(status) => status,
        Err(err) => {
            tracing::warn!(error = %err, "waiting for a process failed");
            ExitStatus::signaled(9)
        }
    }
}

async fn saw_oom(ctx: &StepContext) -> bool {
    match ctx.container.info().await {
        Ok(info) => info.events.iter().any(|e| e == OUT_OF_MEMORY_EVENT),
        Err(_) => false,
    }
}
