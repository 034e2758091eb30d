//! Task completion callbacks over HTTP: POST the JSON body; any answer but 503/504 counts
//! as delivered; 503, 504, timeouts and closed connections are worth another try; any
//! other network error is not (SPEC.md, Tasks).

use std::time::Duration;

use async_trait::async_trait;

use crate::bbs::completion_callback::{CompletionCallback, Delivery, TaskCallbackResponse};

/// Delivers completion callbacks with reqwest.
#[derive(Clone, Debug)]
pub struct HttpCompletionCallback {
    http: reqwest::Client,
}

impl HttpCompletionCallback {
    /// A callback client with a `timeout` per attempt.
    ///
    /// # Errors
    /// The HTTP client could not be built.
    pub fn new(timeout: Duration) -> crate::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| crate::Error::unavailable_from("cannot build the HTTP client", e))?;
        Ok(HttpCompletionCallback { http })
    }
}

#[async_trait]
impl CompletionCallback for HttpCompletionCallback {
    async fn deliver(&self, url: &str, body: &TaskCallbackResponse) -> Delivery {
        match self.http.post(url).json(body).send().await {
            Ok(resp) => match resp.status().as_u16() {
                503 | 504 => Delivery::Retry(format!("callback answered {}", resp.status())),
                _ => Delivery::Delivered,
            },
            Err(e) if e.is_timeout() => Delivery::Retry(format!("callback timed out: {e}")),
            Err(e) if is_closed_connection(&e) => {
                Delivery::Retry(format!("connection closed: {e}"))
            }
            Err(e) => Delivery::GiveUp(format!("callback failed: {e}")),
        }
    }
}

/// Whether the error is a connection the peer closed (reset or ended early), rather than
/// one that could not be made.
fn is_closed_connection(e: &reqwest::Error) -> bool {
    if e.is_connect() {
        return false;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            );
        }
        let text = s.to_string();
        if text.contains("connection closed") || text.contains("IncompleteMessage") {
            return true;
        }
        source = s.source();
    }
    false
}
