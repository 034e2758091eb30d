//! The download step: fetches `from` (through the shared cache when `cache_key` is set),
//! verifies its checksum, and streams it into the container at `to` (archives unpacked
//! there; another file lands as `to` itself).
//!
//! It knows actions, files and containers; it must not know Tasks or LRPs.

use diego_core::DownloadAction;
use tokio_util::io::ReaderStream;
use tokio_util::sync::CancellationToken;

use super::{StepContext, StepError, StepResult};
use crate::executor::download::{ArchiveKind, Checksum, ChecksumAlgorithm, FetchError};
use crate::executor::duration::byte_size;

pub(super) async fn run(
    action: &DownloadAction,
    ctx: &StepContext,
    cancel: &CancellationToken,
) -> StepResult {
    if cancel.is_cancelled() {
        return Err(StepError::cancelled());
    }
    let streamer = ctx.streamer.with_source(&action.log_source);
    if !action.artifact.is_empty() {
        streamer.out(format!("Downloading {}...", action.artifact));
    }
    let result = download(action, ctx, cancel).await;
    match &result {
        Ok(size) => {
            if !action.artifact.is_empty() {
                streamer.out(format!(
                    "Downloaded {} ({})",
                    action.artifact,
                    byte_size(*size)
                ));
            }
        }
        Err(err) if !err.is_cancelled() && !action.artifact.is_empty() => {
            streamer.err(format!("Downloading {} failed", action.artifact));
        }
        Err(_) => {}
    }
    result.map(drop)
}

async fn download(
    action: &DownloadAction,
    ctx: &StepContext,
    cancel: &CancellationToken,
) -> Result<u64, StepError> {
    let checksum = match (
        action.checksum_algorithm.is_empty(),
        action.checksum_value.is_empty(),
    ) {
        (true, true) => None,
        _ => match ChecksumAlgorithm::parse(&action.checksum_algorithm) {
            Some(algorithm) if !action.checksum_value.is_empty() => Some(Checksum {
                algorithm,
                value: action.checksum_value.clone(),
            }),
            _ => {
                return Err(StepError::failed(
                    "Downloading failed; invalid checksum algorithm or value",
                ))
            }
        },
    };
    let fetched = match ctx
        .downloader
        .fetch(&action.from, &action.cache_key, checksum.as_ref(), cancel)
        .await
    {
        Ok(fetched) => fetched,
        Err(FetchError::Cancelled) => return Err(StepError::cancelled()),
        Err(FetchError::Failed(why)) => {
            return Err(StepError::failed(format!("Downloading failed; {why}")))
        }
    };
    let (parent, base) = split_path(&action.to);
    let tar = ctx
        .downloader
        .prepare_tar(&fetched, base)
        .await
        .map_err(|why| StepError::failed(format!("Downloading failed; {why}")))?;
    let dest = match tar.kind {
        ArchiveKind::Plain => parent,
        _ => action.to.as_str(),
    };
    let file = tokio::fs::File::open(&tar.path)
        .await
        .map_err(|e| StepError::failed(format!("Downloading failed; {e}")))?;
    let stream = Box::pin(ReaderStream::new(file));
    tokio::select! {
        streamed = ctx.container.stream_in(dest, stream) => {
            streamed.map_err(|e| StepError::failed(format!("Downloading failed; {e}")))?;
        }
        () = cancel.cancelled() => return Err(StepError::cancelled()),
    }
    Ok(fetched.size())
}

/// The parent directory and base name of a container path (`/a/b` → `/a`, `b`).
fn split_path(path: &str) -> (&str, &str) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some(("", base)) => ("/", base),
        Some((parent, base)) => (parent, base),
        None => (".", trimmed),
    }
}

#[cfg(test)]
mod tests {
    use super::split_path;

    #[test]
    fn paths_split_into_parent_and_name() {
        assert_eq!(split_path("/app/config.yml"), ("/app", "config.yml"));
        assert_eq!(split_path("/file"), ("/", "file"));
        assert_eq!(split_path("/dir/sub/"), ("/dir", "sub"));
        assert_eq!(split_path("rel"), (".", "rel"));
    }
}
