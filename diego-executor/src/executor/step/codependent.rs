//! The codependent step: every child at once; the first to end cancels the rest. A clean
//! exit is an error too (`"Codependent step exited"`): the group only lives together.
//!
//! It knows actions; it must not know Tasks or LRPs.

use diego_core::Action;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio_util::sync::CancellationToken;

use super::{run_action, StepContext, StepError, StepResult};

/// Diego's text when a member of a codependent group exited cleanly.
pub const CODEPENDENT_STEP_EXITED: &str = "Codependent step exited";

pub(super) async fn run(
    actions: &[Action],
    ctx: &StepContext,
    cancel: &CancellationToken,
) -> StepResult {
    let group = cancel.child_token();
    let members: Vec<BoxFuture<'_, StepResult>> = actions
        .iter()
        .map(|action| run_action(action, ctx, &group))
        .collect();
    run_group(members, &group).await
}

/// Runs `members` (which watch `group`) until the first ends, then cancels `group` and
/// waits for the rest.
pub(crate) async fn run_group(
    members: Vec<BoxFuture<'_, StepResult>>,
    group: &CancellationToken,
) -> StepResult {
    let mut running: FuturesUnordered<_> = members.into_iter().collect();
    let first = match running.next().await {
        Some(result) => result,
        None => return Ok(()),
    };
    group.cancel();
    while running.next().await.is_some() {}
    match first {
        Ok(()) => Err(StepError::failed(CODEPENDENT_STEP_EXITED)),
        Err(err) => Err(err),
    }
}
