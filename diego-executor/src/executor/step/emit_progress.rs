//! The emit-progress step: start and success messages on the stdout log,
//! `"<prefix>: <error>"` on the stderr log; the error itself is returned unchanged.
//!
//! It knows actions and logs; it must not know Tasks or LRPs.

use diego_core::{Action, EmitProgressAction};
use tokio_util::sync::CancellationToken;

use super::{run_action, StepContext, StepResult};

pub(super) async fn run(
    progress: &EmitProgressAction,
    child: &Action,
    ctx: &StepContext,
    cancel: &CancellationToken,
) -> StepResult {
    if !progress.start_message.is_empty() {
        ctx.streamer.out(progress.start_message.clone());
    }
    let result = run_action(child, ctx, cancel).await;
    match &result {
        Ok(()) => {
            if !progress.success_message.is_empty() {
                ctx.streamer.out(progress.success_message.clone());
            }
        }
        Err(err) => {
            if !progress.failure_message_prefix.is_empty() && !err.is_cancelled() {
                ctx.streamer
                    .err(format!("{}: {}", progress.failure_message_prefix, err));
            }
        }
    }
    result
}
