//! The upload step: a file out of the container (`stream_out`), POSTed to a URL.
//!
//! It knows actions, files and containers; it must not know Tasks or LRPs.

use diego_core::UploadAction;
use tokio_util::sync::CancellationToken;

use super::{StepContext, StepError, StepResult};
use crate::executor::download::{describe_reqwest, first_file};
use crate::executor::duration::byte_size;

/// Largest file an upload step sends.
const MAX_UPLOAD_BYTES: u64 = 1 << 32;

pub(super) async fn run(
    action: &UploadAction,
    ctx: &StepContext,
    cancel: &CancellationToken,
) -> StepResult {
    if cancel.is_cancelled() {
        return Err(StepError::cancelled());
    }
    let streamer = ctx.streamer.with_source(&action.log_source);
    if !action.artifact.is_empty() {
        streamer.out(format!("Uploading {}...", action.artifact));
    }
    let result = tokio::select! {
        result = upload(action, ctx) => result,
        () = cancel.cancelled() => return Err(StepError::cancelled()),
    };
    match result {
        Ok(size) => {
            if !action.artifact.is_empty() {
                streamer.out(format!(
                    "Uploaded {} ({})",
                    action.artifact,
                    byte_size(size)
                ));
            }
            Ok(())
        }
        Err(why) => {
            if !action.artifact.is_empty() {
                streamer.err(format!("Uploading {} failed", action.artifact));
            }
            Err(StepError::failed(format!("Uploading failed; {why}")))
        }
    }
}

async fn upload(action: &UploadAction, ctx: &StepContext) -> Result<u64, String> {
    let tar = ctx
        .container
        .stream_out(&action.from)
        .await
        .map_err(|e| e.to_string())?;
    let archive = diego_garden::collect(tar)
        .await
        .map_err(|e| format!("reading {}: {e}", action.from))?;
    let data = tokio::task::spawn_blocking(move || first_file(&archive, MAX_UPLOAD_BYTES))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("reading {}: {e}", action.from))?;
    let size = data.len() as u64;
    let response = ctx
        .downloader
        .client()
        .post(&action.to)
        .body(data)
        .send()
        .await
        .map_err(|e| describe_reqwest(&e))?;
    if !response.status().is_success() {
        return Err(format!(
            "Upload failed: Status code {}",
            response.status().as_u16()
        ));
    }
    Ok(size)
}
