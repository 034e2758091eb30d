//! The parallel step: every child at once; waits for all; the errors joined with
//! `"; "`, cancellations left out.
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
    let results =
        futures::future::join_all(actions.iter().map(|a| run_action(a, ctx, cancel))).await;
    join_errors(results)
}

/// The joined result of several children.
pub(super) fn join_errors(results: Vec<StepResult>) -> StepResult {
    let mut messages: Vec<String> = Vec::new();
    let mut any_cancelled = false;
    for result in results {
        match result {
            Ok(()) => {}
            Err(err) if err.is_cancelled() => any_cancelled = true,
            Err(err) => messages.push(err.message().to_string()),
        }
    }
    if !messages.is_empty() {
        Err(StepError::failed(messages.join("; ")))
    } else if any_cancelled {
        Err(StepError::cancelled())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_join_without_cancellations() {
        assert_eq!(join_errors(vec![Ok(()), Ok(())]), Ok(()));
        let joined = join_errors(vec![
            Err(StepError::failed("a")),
            Ok(()),
            Err(StepError::cancelled()),
            Err(StepError::failed("b")),
        ])
        .unwrap_err();
        assert_eq!(joined.message(), "a; b");
        assert!(!joined.is_cancelled());
        let only_cancelled = join_errors(vec![Ok(()), Err(StepError::cancelled())]).unwrap_err();
        assert!(only_cancelled.is_cancelled());
    }
}
