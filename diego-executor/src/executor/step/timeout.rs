//! The timeout step: the child with a deadline; past it the child is cancelled and the
//! error is `"exceeded <d> timeout"` (Go duration), plus `"; <child error>"`.
//!
//! It knows actions and time; it must not know Tasks or LRPs.

use std::time::Duration;

use diego_core::Action;
use tokio_util::sync::CancellationToken;

use super::{run_action, StepContext, StepError, StepResult};
use crate::executor::duration::go_duration;

pub(super) async fn run(
    child: &Action,
    timeout_ms: i64,
    ctx: &StepContext,
    cancel: &CancellationToken,
) -> StepResult {
    let timeout = Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0));
    let child_cancel = cancel.child_token();
    let mut step = run_action(child, ctx, &child_cancel);
    tokio::select! {
        result = &mut step => result,
        () = tokio::time::sleep(timeout) => {
            child_cancel.cancel();
            let child_result = step.await;
            let mut message = format!("exceeded {} timeout", go_duration(timeout));
            if let Err(err) = child_result {
                if !err.message().is_empty() {
                    message.push_str("; ");
                    message.push_str(err.message());
                }
            }
            Err(StepError::failed(message))
        }
    }
}
