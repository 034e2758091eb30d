//! The try step: the child's failure is logged, never returned (a cancellation still
//! is, so the tree stops).
//!
//! It knows actions; it must not know Tasks or LRPs.

use diego_core::Action;
use tokio_util::sync::CancellationToken;

use super::{run_action, StepContext, StepResult};

pub(super) async fn run(
    child: &Action,
    ctx: &StepContext,
    cancel: &CancellationToken,
) -> StepResult {
    match run_action(child, ctx, cancel).await {
        Err(err) if err.is_cancelled() => Err(err),
        Err(err) => {
            tracing::info!(error = %err, "try step failed; ignored");
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}
