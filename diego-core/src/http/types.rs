//! The request and response bodies of the BBS HTTP API, shared by the server and
//! [`BbsClient`](super::BbsClient), and the JSON error body.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::log_sink::{LogLine, LogStream};
use crate::models::actual_lrp::{ActualLrpInstanceKey, ActualLrpKey, ActualLrpNetInfo};
use crate::models::desired_lrp::DesiredLrpUpdate;
use crate::models::guid::{CellId, ProcessGuid, TaskGuid};
use crate::models::validation::{FieldError, ValidationErrors};
use crate::store::{ActualLrpFilter, DesiredLrpFilter, TaskFilter};
use crate::time::Timestamp;

/// The body of every error answer: `{"type": ..., "message": ...}` (plus the violated
/// fields of an `InvalidRequest`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error's stable kind ([`Error::kind`]).
    #[serde(rename = "type")]
    pub kind: String,
    /// The error's message.
    pub message: String,
    /// Every violated field, for `InvalidRequest`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ErrorBody {
    /// The body describing `e`.
    pub fn of(e: &Error) -> Self {
        ErrorBody {
            kind: e.kind().to_owned(),
            message: e.to_string(),
            errors: e
                .validation_errors()
                .map(|v| v.errors().to_vec())
                .unwrap_or_default(),
        }
    }

    /// The error this body describes (the inverse of [`ErrorBody::of`]).
    pub fn into_error(self) -> Error {
        let (from_to, on_cell) = (parse_transition(&self.message), parse_cells(&self.message));
        match self.kind.as_str() {
            "ResourceNotFound" => Error::ResourceNotFound,
            "ResourceExists" => Error::ResourceExists,
            "ResourceConflict" => Error::ResourceConflict,
            "InvalidRequest" if self.errors.is_empty() => Error::BadRequest,
            "InvalidRequest" => {
                let mut v = ValidationErrors::new();
                for e in self.errors {
                    v.add(e.field, e.reason);
                }
                Error::InvalidRequest(v)
            }
            "InvalidStateTransition" => match from_to {
                Some((from, to)) => Error::InvalidStateTransition { from, to },
                None => Error::unavailable(self.message),
            },
            "RunningOnDifferentCell" => match on_cell {
                Some((actual, caller)) => Error::RunningOnDifferentCell { actual, caller },
                None => Error::unavailable(self.message),
            },
            "ActualLRPCannotBeClaimed" => Error::ActualLrpCannotBeClaimed,
            "ActualLRPCannotBeStarted" => Error::ActualLrpCannotBeStarted,
            "ActualLRPCannotBeCrashed" => Error::ActualLrpCannotBeCrashed,
            "ActualLRPCannotBeFailed" => Error::ActualLrpCannotBeFailed,
            "ActualLRPCannotBeRemoved" => Error::ActualLrpCannotBeRemoved,
            "ActualLRPCannotBeUnclaimed" => Error::ActualLrpCannotBeUnclaimed,
            "InvalidRecord" => Error::invalid_record(strip(self.message, "invalid record: ")),
            "Unavailable" => Error::unavailable(strip(self.message, "unavailable: ")),
            "InvalidConfiguration" => {
                Error::invalid_config(strip(self.message, "invalid configuration: "))
            }
            "LockCollision" => Error::LockCollision(strip(self.message, "lock-collision: ")),
            "FenceLost" => match parse_fence(&self.message) {
                Some((lock, token)) => Error::FenceLost { lock, token },
                None => Error::unavailable(self.message),
            },
            _ => Error::unavailable(self.message),
        }
    }
}

/// `("bbs", 7)` from `fence lost: lock "bbs" no longer carries fencing token 7`.
fn parse_fence(message: &str) -> Option<(String, u64)> {
    let rest = message.strip_prefix("fence lost: lock ")?;
    let (quoted, token) = rest.rsplit_once(" no longer carries fencing token ")?;
    let lock: String = serde_json::from_str(quoted).ok()?;
    Some((lock, token.parse().ok()?))
}

fn strip(message: String, prefix: &str) -> String {
    match message.strip_prefix(prefix) {
        Some(rest) => rest.to_owned(),
        None => message,
    }
}

fn parse_transition(m: &str) -> Option<(String, String)> {
    let rest = m.strip_prefix("Cannot transition from ")?;
    let (from, to) = rest.split_once(" to ")?;
    Some((from.to_owned(), to.to_owned()))
}

fn parse_cells(m: &str) -> Option<(String, String)> {
    let rest = m.strip_prefix("Running on cell ")?;
    let (actual, caller) = rest.split_once(" not ")?;
    Some((actual.to_owned(), caller.to_owned()))
}

/// `{"task_guid": ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskGuidRequest {
    /// The task.
    pub task_guid: TaskGuid,
}

/// `/v1/tasks/start`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartTaskRequest {
    /// The task.
    pub task_guid: TaskGuid,
    /// The cell starting it.
    pub cell_id: CellId,
}

/// `/v1/tasks/start`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartTaskResponse {
    /// False when the task already runs on this cell ("not changed").
    pub should_start: bool,
}

/// `/v1/tasks/fail`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailTaskRequest {
    /// The task.
    pub task_guid: TaskGuid,
    /// Why.
    pub failure_reason: String,
}

/// `/v1/tasks/reject`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectTaskRequest {
    /// The task.
    pub task_guid: TaskGuid,
    /// Why.
    pub rejection_reason: String,
}

/// `/v1/tasks/complete`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteTaskRequest {
    /// The task.
    pub task_guid: TaskGuid,
    /// The cell it ran on.
    pub cell_id: CellId,
    /// Whether it failed.
    pub failed: bool,
    /// Why it failed.
    #[serde(default)]
    pub failure_reason: String,
    /// Its result.
    #[serde(default)]
    pub result: String,
}

/// `/v1/desired_lrp/update`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateDesiredLrpRequest {
    /// The LRP.
    pub process_guid: ProcessGuid,
    /// The change.
    pub update: DesiredLrpUpdate,
}

/// `{"process_guid": ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessGuidRequest {
    /// The LRP.
    pub process_guid: ProcessGuid,
}

/// An ActualLRP key, and an instance key when the call has one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActualLrpRequest {
    /// Which instance.
    pub actual_lrp_key: ActualLrpKey,
    /// Which attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_lrp_instance_key: Option<ActualLrpInstanceKey>,
    /// Where it runs (start, evacuate running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_lrp_net_info: Option<ActualLrpNetInfo>,
    /// Whether routers may send it traffic (start).
    #[serde(default)]
    pub routable: bool,
    /// Crash reason or placement error.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// The answer of an evacuation call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvacuationResponse {
    /// Whether the cell should keep the container.
    pub keep_container: bool,
}

/// `/v1/domains/upsert`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpsertDomainRequest {
    /// The domain.
    pub domain: String,
    /// Freshness in milliseconds; 0 = forever.
    #[serde(default)]
    pub ttl_ms: u64,
}

/// `{"cell_id": ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellIdRequest {
    /// The cell.
    pub cell_id: CellId,
}

/// Filters of `/v1/tasks/list`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TasksRequest {
    /// Only this domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Only tasks on this cell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell_id: Option<CellId>,
}

impl From<&TaskFilter> for TasksRequest {
    fn from(f: &TaskFilter) -> Self {
        TasksRequest {
            domain: f.domain.clone(),
            cell_id: f.cell_id.clone(),
        }
    }
}

impl From<TasksRequest> for TaskFilter {
    fn from(r: TasksRequest) -> Self {
        TaskFilter {
            domain: r.domain,
            cell_id: r.cell_id,
        }
    }
}

/// Filters of `/v1/desired_lrps/list`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredLrpsRequest {
    /// Only this domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Only these process guids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub process_guids: Vec<ProcessGuid>,
}

impl From<&DesiredLrpFilter> for DesiredLrpsRequest {
    fn from(f: &DesiredLrpFilter) -> Self {
        DesiredLrpsRequest {
            domain: f.domain.clone(),
            process_guids: f.process_guids.clone(),
        }
    }
}

impl From<DesiredLrpsRequest> for DesiredLrpFilter {
    fn from(r: DesiredLrpsRequest) -> Self {
        DesiredLrpFilter {
            domain: r.domain,
            process_guids: r.process_guids,
        }
    }
}

/// Filters of `/v1/actual_lrps/list`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActualLrpsRequest {
    /// Only this domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Only rows on this cell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell_id: Option<CellId>,
    /// Only this process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_guid: Option<ProcessGuid>,
    /// Only this index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<i32>,
}

impl From<&ActualLrpFilter> for ActualLrpsRequest {
    fn from(f: &ActualLrpFilter) -> Self {
        ActualLrpsRequest {
            domain: f.domain.clone(),
            cell_id: f.cell_id.clone(),
            process_guid: f.process_guid.clone(),
            index: f.index,
        }
    }
}

impl From<ActualLrpsRequest> for ActualLrpFilter {
    fn from(r: ActualLrpsRequest) -> Self {
        ActualLrpFilter {
            domain: r.domain,
            cell_id: r.cell_id,
            process_guid: r.process_guid,
            index: r.index,
        }
    }
}

/// One log line on the wire: an element of `GET /v1/logs/{log_guid}`'s answer, and the
/// data of each `log` event of `GET /v1/logs/{log_guid}?follow=true`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogRecord {
    /// Whose line it is (the log guid).
    pub source_id: String,
    /// Which part wrote it (`APP/PROC/WEB`, `CELL`, `HEALTH`, ...).
    pub source_type: String,
    /// The instance index.
    pub instance_index: i32,
    /// `out` or `err`.
    pub stream: LogStream,
    /// When it was written (Unix nanoseconds).
    pub timestamp: Timestamp,
    /// The line (invalid UTF-8 replaced).
    pub message: String,
    /// The container's metric tags when the line was written (absent when none).
    #[serde(default, skip_serializing_if = "crate::log_sink::LogTags::is_empty")]
    pub tags: crate::log_sink::LogTags,
}

impl From<&LogLine> for LogRecord {
    fn from(line: &LogLine) -> Self {
        LogRecord {
            source_id: line.source_id.clone(),
            source_type: line.source_type.clone(),
            instance_index: line.instance_index,
            stream: line.stream,
            timestamp: line.timestamp,
            message: line.text().into_owned(),
            tags: (*line.tags).clone(),
        }
    }
}

impl From<LogRecord> for LogLine {
    fn from(r: LogRecord) -> Self {
        LogLine {
            source_id: r.source_id,
            source_type: r.source_type,
            instance_index: r.instance_index,
            stream: r.stream,
            timestamp: r.timestamp,
            message: r.message.into(),
            tags: std::sync::Arc::new(r.tags),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_round_trip_every_kind() {
        let mut v = ValidationErrors::new();
        v.add("domain", "must not be empty");
        let errors = vec![
            Error::ResourceNotFound,
            Error::ResourceExists,
            Error::ResourceConflict,
            Error::BadRequest,
            Error::InvalidRequest(v),
            Error::InvalidStateTransition {
                from: "Pending".into(),
                to: "Completed".into(),
            },
            Error::RunningOnDifferentCell {
                actual: "a".into(),
                caller: "b".into(),
            },
            Error::ActualLrpCannotBeClaimed,
            Error::ActualLrpCannotBeStarted,
            Error::ActualLrpCannotBeCrashed,
            Error::ActualLrpCannotBeFailed,
            Error::ActualLrpCannotBeRemoved,
            Error::ActualLrpCannotBeUnclaimed,
            Error::unavailable("x"),
            Error::unavailable_from("BBS unreachable", "connection refused"),
            Error::invalid_record("y"),
            Error::invalid_record_from("tasks: undecodable payload", "EOF"),
            Error::invalid_config("z"),
            Error::invalid_config_from("key_file: no usable private key", "no PEM"),
            Error::FenceLost {
                lock: "bbs \"main\"".into(),
                token: 3,
            },
            Error::LockCollision("cell cell-1 is held by 10.0.0.1:1801".into()),
        ];
        for e in errors {
            let body = ErrorBody::of(&e);
            let json = serde_json::to_string(&body).unwrap();
            let back: ErrorBody = serde_json::from_str(&json).unwrap();
            let again = back.into_error();
            assert_eq!(again.kind(), e.kind(), "{json}");
            assert_eq!(again.to_string(), e.to_string(), "{json}");
        }
    }
}
