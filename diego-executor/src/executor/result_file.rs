//! The result file of a one-off run: read out of the container after success, at most
//! 51,200 bytes; larger or unreadable gives `"failed to fetch result"`.
//!
//! It knows containers and files; it must not know Tasks or LRPs.

use futures::StreamExt;

use crate::executor::config::MAX_RESULT_FILE_BYTES;
use crate::executor::download::first_file;

/// Diego's text when the result file cannot be had.
pub const FAILED_TO_FETCH_RESULT: &str = "failed to fetch result";

/// Slack for tar headers around the file when reading the archive.
const TAR_OVERHEAD: u64 = 64 * 1024;

/// Reads the file at `path` out of `container`.
pub(crate) async fn fetch(
    container: &dyn diego_garden::Container,
    path: &str,
) -> Result<String, String> {
    let mut tar = container
        .stream_out(path)
        .await
        .map_err(|e| e.to_string())?;
    let mut archive = Vec::new();
    while let Some(chunk) = tar.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        archive.extend_from_slice(&chunk);
        if archive.len() as u64 > MAX_RESULT_FILE_BYTES + TAR_OVERHEAD {
            return Err(format!("result file {path} is too large"));
        }
    }
    let data = first_file(&archive, MAX_RESULT_FILE_BYTES).map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&data).into_owned())
}
