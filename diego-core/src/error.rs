//! The crate's error type: what went wrong, by meaning, with Diego's messages.
//!
//! Every variant has a stable machine-readable [`Error::kind`] (the `type` of the HTTP
//! API's error body); messages are Diego's exact texts where Diego has one, because
//! clients match on them. The variants that report a failure of something else
//! (`Unavailable`, `InvalidRecord`, `InvalidConfig`) keep that failure as their
//! `source`, as diego-garden's errors do; their text stays the whole message (the
//! cause's text included), so it reads the same here and over the HTTP API.

use crate::models::validation::ValidationErrors;

/// A boxed error kept as the `source` of [`Error::Unavailable`], [`Error::InvalidRecord`]
/// and [`Error::InvalidConfig`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of diego-core's operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The record does not exist.
    #[error("the requested resource could not be found")]
    ResourceNotFound,
    /// A record with that identity already exists.
    #[error("the requested resource already exists")]
    ResourceExists,
    /// The record changed since it was read (a compare-and-swap lost), or is in a
    /// state that conflicts with the request.
    #[error("the requested resource is in a conflicting state")]
    ResourceConflict,
    /// The request is not allowed in the record's current state (non-Task operations).
    #[error("the request received is invalid")]
    BadRequest,
    /// The request failed validation; every violated field is listed.
    #[error("{0}")]
    InvalidRequest(ValidationErrors),
    /// A Task cannot move between these states.
    #[error("Cannot transition from {from} to {to}")]
    InvalidStateTransition {
        /// The current state (`Pending`, `Running`, `Completed`, `Resolving`).
        from: String,
        /// The requested state.
        to: String,
    },
    /// The Task runs on another cell than the caller's.
    #[error("Running on cell {actual} not {caller}")]
    RunningOnDifferentCell {
        /// The cell the Task runs on.
        actual: String,
        /// The cell that made the call.
        caller: String,
    },
    /// The ActualLRP cannot be claimed from its current state or by this instance.
    #[error("cannot claim actual LRP")]
    ActualLrpCannotBeClaimed,
    /// The ActualLRP cannot be started from its current state or by this instance.
    #[error("cannot start actual LRP")]
    ActualLrpCannotBeStarted,
    /// The ActualLRP cannot be crashed from its current state or by this instance.
    #[error("cannot crash actual LRP")]
    ActualLrpCannotBeCrashed,
    /// The ActualLRP cannot be failed (it is not UNCLAIMED).
    #[error("cannot fail actual LRP")]
    ActualLrpCannotBeFailed,
    /// The ActualLRP cannot be removed by this instance.
    #[error("cannot remove actual LRP")]
    ActualLrpCannotBeRemoved,
    /// The ActualLRP cannot be unclaimed.
    #[error("cannot unclaim actual LRP")]
    ActualLrpCannotBeUnclaimed,
    /// A dependency (store, peer, network) is unavailable; retrying later may succeed.
    #[error("unavailable: {message}")]
    Unavailable {
        /// What failed, the cause's text included (the error's text after
        /// `"unavailable: "`).
        message: String,
        /// The failure behind it, when it happened in this process (an error read from
        /// the HTTP API has none: its cause stayed on the other side).
        #[source]
        source: Option<BoxError>,
    },
    /// A stored record could not be read back (corrupt, from an unknown version, or
    /// encrypted under a key this process does not have).
    #[error("invalid record: {message}")]
    InvalidRecord {
        /// What is wrong with the record, the cause's text included.
        message: String,
        /// The failure behind it (a decoding error), when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// A configuration (file, certificate, key, URL) is unusable; the message names the
    /// field and the reason.
    #[error("invalid configuration: {message}")]
    InvalidConfig {
        /// The field and the reason, the cause's text included.
        message: String,
        /// The failure behind it (an unreadable file, a PEM that does not parse), when
        /// there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// A fenced write was refused: the writer's lease on the lock is gone (another
    /// process took the lock over, or it was released), so this process must stop
    /// acting as the lock's holder.
    #[error("fence lost: lock {lock:?} no longer carries fencing token {token}")]
    FenceLost {
        /// The lock's name.
        lock: String,
        /// The fencing token the writer presented.
        token: u64,
    },
    /// A lease is held by another owner: e.g. a second process registering a cell id
    /// whose presence another rep holds (Diego's locket `lock-collision`).
    #[error("lock-collision: {0}")]
    LockCollision(String),
}

impl Error {
    /// [`Error::Unavailable`] with `message` and no source.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::Unavailable {
            message: message.into(),
            source: None,
        }
    }

    /// [`Error::Unavailable`] caused by `source`: the text is `"{message}: {source}"`
    /// and `source` is kept.
    pub fn unavailable_from(message: impl std::fmt::Display, source: impl Into<BoxError>) -> Self {
        let (message, source) = caused(message, source.into());
        Error::Unavailable { message, source }
    }

    /// [`Error::InvalidRecord`] with `message` and no source.
    pub fn invalid_record(message: impl Into<String>) -> Self {
        Error::InvalidRecord {
            message: message.into(),
            source: None,
        }
    }

    /// [`Error::InvalidRecord`] caused by `source`: the text is `"{message}: {source}"`
    /// and `source` is kept.
    pub fn invalid_record_from(
        message: impl std::fmt::Display,
        source: impl Into<BoxError>,
    ) -> Self {
        let (message, source) = caused(message, source.into());
        Error::InvalidRecord { message, source }
    }

    /// [`Error::InvalidConfig`] with `message` and no source.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Error::InvalidConfig {
            message: message.into(),
            source: None,
        }
    }

    /// [`Error::InvalidConfig`] caused by `source`: the text is `"{message}: {source}"`
    /// and `source` is kept.
    pub fn invalid_config_from(
        message: impl std::fmt::Display,
        source: impl Into<BoxError>,
    ) -> Self {
        let (message, source) = caused(message, source.into());
        Error::InvalidConfig { message, source }
    }

    /// The stable machine-readable name of this error (Diego's error type names).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::ResourceNotFound => "ResourceNotFound",
            Error::ResourceExists => "ResourceExists",
            Error::ResourceConflict => "ResourceConflict",
            Error::BadRequest | Error::InvalidRequest(_) => "InvalidRequest",
            Error::InvalidStateTransition { .. } => "InvalidStateTransition",
            Error::RunningOnDifferentCell { .. } => "RunningOnDifferentCell",
            Error::ActualLrpCannotBeClaimed => "ActualLRPCannotBeClaimed",
            Error::ActualLrpCannotBeStarted => "ActualLRPCannotBeStarted",
            Error::ActualLrpCannotBeCrashed => "ActualLRPCannotBeCrashed",
            Error::ActualLrpCannotBeFailed => "ActualLRPCannotBeFailed",
            Error::ActualLrpCannotBeRemoved => "ActualLRPCannotBeRemoved",
            Error::ActualLrpCannotBeUnclaimed => "ActualLRPCannotBeUnclaimed",
            Error::Unavailable { .. } => "Unavailable",
            Error::InvalidRecord { .. } => "InvalidRecord",
            Error::InvalidConfig { .. } => "InvalidConfiguration",
            Error::FenceLost { .. } => "FenceLost",
            Error::LockCollision(_) => "LockCollision",
        }
    }

    /// The validation errors, when this is an `InvalidRequest`.
    pub fn validation_errors(&self) -> Option<&ValidationErrors> {
        match self {
            Error::InvalidRequest(errors) => Some(errors),
            _ => None,
        }
    }
}

/// A message followed by its cause's text, and the cause.
fn caused(message: impl std::fmt::Display, source: BoxError) -> (String, Option<BoxError>) {
    (format!("{message}: {source}"), Some(source))
}

impl From<ValidationErrors> for Error {
    fn from(errors: ValidationErrors) -> Self {
        Error::InvalidRequest(errors)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_diegos() {
        assert_eq!(
            Error::ResourceNotFound.to_string(),
            "the requested resource could not be found"
        );
        assert_eq!(
            Error::ResourceExists.to_string(),
            "the requested resource already exists"
        );
        assert_eq!(
            Error::BadRequest.to_string(),
            "the request received is invalid"
        );
        assert_eq!(
            Error::ResourceConflict.to_string(),
            "the requested resource is in a conflicting state"
        );
        let e = Error::InvalidStateTransition {
            from: "Pending".into(),
            to: "Completed".into(),
        };
        assert_eq!(e.to_string(), "Cannot transition from Pending to Completed");
        assert_eq!(e.kind(), "InvalidStateTransition");
        let e = Error::RunningOnDifferentCell {
            actual: "cell-a".into(),
            caller: "cell-b".into(),
        };
        assert_eq!(e.to_string(), "Running on cell cell-a not cell-b");
        assert_eq!(
            Error::ActualLrpCannotBeClaimed.to_string(),
            "cannot claim actual LRP"
        );
        assert_eq!(
            Error::ActualLrpCannotBeClaimed.kind(),
            "ActualLRPCannotBeClaimed"
        );
        let e = Error::FenceLost {
            lock: "bbs".into(),
            token: 7,
        };
        assert_eq!(
            e.to_string(),
            "fence lost: lock \"bbs\" no longer carries fencing token 7"
        );
        assert_eq!(e.kind(), "FenceLost");
    }

    #[test]
    fn causes_are_kept_and_the_text_is_unchanged() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::unavailable_from("cannot connect to PostgreSQL", io);
        assert_eq!(
            e.to_string(),
            "unavailable: cannot connect to PostgreSQL: refused"
        );
        assert_eq!(e.kind(), "Unavailable");
        let source = e.source().expect("the cause is kept");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("as the error it was");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);

        let e = Error::unavailable("no auctioneer configured");
        assert_eq!(e.to_string(), "unavailable: no auctioneer configured");
        assert!(e.source().is_none());

        let e = Error::invalid_record_from("tasks: undecodable payload", "eof");
        assert_eq!(
            e.to_string(),
            "invalid record: tasks: undecodable payload: eof"
        );
        assert_eq!(e.kind(), "InvalidRecord");
        assert!(e.source().is_some());
        let e = Error::invalid_config("bbs_urls: needs at least one URL");
        assert_eq!(
            e.to_string(),
            "invalid configuration: bbs_urls: needs at least one URL"
        );
        assert_eq!(e.kind(), "InvalidConfiguration");
        let e = Error::invalid_config_from("key_file", "no key");
        assert_eq!(e.to_string(), "invalid configuration: key_file: no key");
        assert!(e.source().is_some());
    }

    #[test]
    fn validation_errors_convert() {
        let mut v = ValidationErrors::new();
        v.add("domain", "must not be empty");
        let e = Error::from(v);
        assert_eq!(e.kind(), "InvalidRequest");
        assert!(e.validation_errors().is_some_and(|v| v.has_field("domain")));
        assert_eq!(e.to_string(), "Invalid field: domain (must not be empty)");
    }
}
