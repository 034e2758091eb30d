//! The serial step: children one after another, stopping at the first error.
//!
//! It knows actions; it must not know Tasks or LRPs.

use diego_core::Action;
use tokio_util::sync::CancellationToken;

use super::{run_action, StepContext, StepError, StepResult};

pub(super) async fn run(
    actions: &[Action],
    ctx: &StepContext,
    cancel: &CancellationToken,
) -> StepResult {
    for action in actions {
        if cancel.is_cancelled() {
            return Err(StepError::cancelled());
        }
        run_action(action, ctx, cancel).await?;
    }
    Ok(())
}
