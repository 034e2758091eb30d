//! The BBS's contract with a Task's client: [`CompletionCallback`], how a completed
//! Task's result reaches the client's callback URL.
//!
//! The BBS moves the Task to Resolving, delivers the callback (up to 3 attempts,
//! retrying only what the callback says is retryable: 503, 504, timeouts, closed
//! connections), then deletes the Task. After giving up it stays Resolving and
//! convergence brings it back to Completed to try again. The HTTP implementation is
//! `http::HttpCompletionCallback` (feature `http`); this module must not know HTTP, only
//! the outcome of one attempt ([`Delivery`]).

use async_trait::async_trait;
#[cfg(feature = "test-util")]
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::models::guid::TaskGuid;
use crate::models::task::Task;
use crate::time::Timestamp;

/// How many times a callback is attempted before giving up (Diego: 3).
pub const CALLBACK_ATTEMPTS: usize = 3;

/// The JSON body POSTed to a completion callback URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCallbackResponse {
    /// The task.
    pub task_guid: TaskGuid,
    /// Whether it failed.
    pub failed: bool,
    /// Why it failed.
    pub failure_reason: String,
    /// Its result.
    pub result: String,
    /// Its annotation (omitted when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub annotation: String,
    /// When it was desired (Unix ns).
    pub created_at: Timestamp,
}

impl TaskCallbackResponse {
    /// The callback body of `task`.
    pub fn of(task: &Task) -> Self {
        TaskCallbackResponse {
            task_guid: task.task_guid.clone(),
            failed: task.failed,
            failure_reason: task.failure_reason.clone(),
            result: task.result.clone(),
            annotation: task.task_definition.annotation.clone(),
            created_at: task.created_at,
        }
    }
}

/// The outcome of one delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver answered (any status but 503/504): the task can be deleted.
    Delivered,
    /// Worth another attempt (503, 504, timeout, closed connection).
    Retry(String),
    /// Not worth another attempt (any other network error).
    GiveUp(String),
}

/// Delivers completion callbacks. The HTTP implementation comes with the HTTP API.
#[async_trait]
pub trait CompletionCallback: Send + Sync + std::fmt::Debug {
    /// One attempt to POST `body` to `url`.
    async fn deliver(&self, url: &str, body: &TaskCallbackResponse) -> Delivery;
}

/// A callback that records deliveries and answers from a script: a test double (feature
/// `test-util`).
#[cfg(feature = "test-util")]
#[derive(Debug, Default)]
pub struct RecordingCallback {
    delivered: Mutex<Vec<(String, TaskCallbackResponse)>>,
    script: Mutex<Vec<Delivery>>,
}

#[cfg(feature = "test-util")]
impl RecordingCallback {
    /// A callback answering `Delivered` to everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers the next attempts with `outcomes`, in order (then `Delivered`).
    pub fn script(&self, outcomes: Vec<Delivery>) {
        let mut s = self.script.lock();
        *s = outcomes;
        s.reverse();
    }

    /// The attempts so far: URL and body.
    pub fn attempts(&self) -> Vec<(String, TaskCallbackResponse)> {
        self.delivered.lock().clone()
    }
}

#[cfg(feature = "test-util")]
#[async_trait]
impl CompletionCallback for RecordingCallback {
    async fn deliver(&self, url: &str, body: &TaskCallbackResponse) -> Delivery {
        self.delivered.lock().push((url.to_owned(), body.clone()));
        self.script.lock().pop().unwrap_or(Delivery::Delivered)
    }
}

/// The callback of a BBS built without one: gives up at once (logged by the BBS).
#[derive(Debug, Default)]
pub struct NoCallback;

#[async_trait]
impl CompletionCallback for NoCallback {
    async fn deliver(&self, _: &str, _: &TaskCallbackResponse) -> Delivery {
        Delivery::GiveUp("no completion callback client configured".into())
    }
}
