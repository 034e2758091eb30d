//! Action trees as cancellable steps: every [`Action`] variant runs here, with Diego's
//! exact failure texts.
//!
//! A step is an async function of (action, context, cancellation token) returning
//! `Ok(())` or a [`StepError`]. Cancelling the token asks the step to end promptly (a run
//! step sends SIGTERM, then SIGKILL after the graceful shutdown interval). This module
//! knows actions, containers and processes; it must not know Tasks or LRPs.

mod codependent;
mod download;
mod emit_progress;
mod parallel;
mod run;
mod serial;
mod timeout;
mod try_step;
mod upload;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use diego_core::models::action::INVALID_ACTION_TYPE;
use diego_core::Action;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::executor::download::Downloader;
use crate::executor::log_streamer::LogStreamer;

/// Diego's text for a cancelled step.
pub(crate) const CANCELLED: &str = "cancelled";

/// Why a step did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StepError {
    message: String,
    cancelled: bool,
}

impl StepError {
    /// A failure with this message.
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            cancelled: false,
        }
    }

    /// The step was cancelled (`"cancelled"`).
    pub(crate) fn cancelled() -> Self {
        StepError::cancelled_with(CANCELLED)
    }

    /// The step was cancelled and says this.
    pub(crate) fn cancelled_with(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            cancelled: true,
        }
    }

    /// The message (`Display` gives the same).
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// Whether it ended because it was cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The result of a step.
pub(crate) type StepResult = Result<(), StepError>;

/// Settings every step reads.
#[derive(Clone, Debug)]
pub(crate) struct StepSettings {
    pub(crate) graceful_shutdown_interval: Duration,
    pub(crate) process_kill_wait: Duration,
    pub(crate) apply_action_user: bool,
}

/// What a step runs in: the container, the environment, the logs.
#[derive(Clone)]
pub(crate) struct StepContext {
    pub(crate) container: Arc<dyn diego_garden::Container>,
    pub(crate) env: Arc<Vec<(String, String)>>,
    pub(crate) streamer: LogStreamer,
    pub(crate) settings: Arc<StepSettings>,
    pub(crate) downloader: Arc<Downloader>,
    /// Told (set to true) when a run step has spawned its process.
    pub(crate) spawned: Option<Arc<watch::Sender<bool>>>,
}

impl StepContext {
    /// The same context, with no spawn notification (for health-check processes).
    pub(crate) fn without_spawn_notice(&self) -> StepContext {
        StepContext {
            spawned: None,
            ..self.clone()
        }
    }

    /// The context with log lines under `source` (unchanged when empty).
    pub(crate) fn with_source(&self, source: &str) -> StepContext {
        StepContext {
            streamer: self.streamer.with_source(source),
            ..self.clone()
        }
    }

    pub(crate) fn notify_spawned(&self) {
        if let Some(spawned) = &self.spawned {
            spawned.send_replace(true);
        }
    }
}

/// Runs `action` in `ctx` until it ends or `cancel` ends it.
pub(crate) fn run_action<'a>(
    action: &'a Action,
    ctx: &'a StepContext,
    cancel: &'a CancellationToken,
) -> BoxFuture<'a, StepResult> {
    Box::pin(async move {
        match action {
            Action::Run(run) => run::run(run, ctx, cancel).await,
            Action::Download(download) => download::run(download, ctx, cancel).await,
            Action::Upload(upload) => upload::run(upload, ctx, cancel).await,
            Action::Timeout(timeout) => match timeout.action.as_deref() {
                Some(child) => {
                    let ctx = ctx.with_source(&timeout.log_source);
                    timeout::run(child, timeout.timeout_ms, &ctx, cancel).await
                }
                None => Err(StepError::failed(INVALID_ACTION_TYPE)),
            },
            Action::Try(try_action) => match try_action.action.as_deref() {
                Some(child) => {
                    let ctx = ctx.with_source(&try_action.log_source);
                    try_step::run(child, &ctx, cancel).await
                }
                None => Err(StepError::failed(INVALID_ACTION_TYPE)),
            },
            Action::Serial(serial) => {
                let ctx = ctx.with_source(&serial.log_source);
                serial::run(&serial.actions, &ctx, cancel).await
            }
            Action::Parallel(parallel) => {
                let ctx = ctx.with_source(&parallel.log_source);
                parallel::run(&parallel.actions, &ctx, cancel).await
            }
            Action::Codependent(codependent) => {
                let ctx = ctx.with_source(&codependent.log_source);
                codependent::run(&codependent.actions, &ctx, cancel).await
            }
            Action::EmitProgress(progress) => match progress.action.as_deref() {
                Some(child) => {
                    let ctx = ctx.with_source(&progress.log_source);
                    emit_progress::run(progress, child, &ctx, cancel).await
                }
                None => Err(StepError::failed(INVALID_ACTION_TYPE)),
            },
        }
    })
}

/// Codependent execution of several already-built futures: the first to end cancels the
/// rest (used for the action with its sidecars).
pub(crate) use codependent::run_group as run_codependent_group;

/// `"Codependent step exited"`.
pub use codependent::CODEPENDENT_STEP_EXITED;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_their_message_and_kind() {
        let failed = StepError::failed("boom");
        assert_eq!(failed.to_string(), "boom");
        assert!(!failed.is_cancelled());
        let cancelled = StepError::cancelled();
        assert_eq!(cancelled.message(), "cancelled");
        assert!(cancelled.is_cancelled());
    }
}
