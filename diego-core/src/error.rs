//! The crate's error type: what went wrong, by meaning, with Diego's messages.
//!
//! Every variant has a stable machine-readable [`Error::kind`] (the `type` of the HTTP
//! API's error body); messages are Diego's exact texts where Diego has one, because
//! clients match on them.

use crate::models::validation::ValidationErrors;

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
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A stored record could not be read back (corrupt, from an unknown version, or
    /// encrypted under a key this process does not have).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// A configuration (file, certificate, key, URL) is unusable; the message names the
    /// field and the reason.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
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
            Error::Unavailable(_) => "Unavailable",
            Error::InvalidRecord(_) => "InvalidRecord",
            Error::InvalidConfig(_) => "InvalidConfiguration",
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
    fn validation_errors_convert() {
        let mut v = ValidationErrors::new();
        v.add("domain", "must not be empty");
        let e = Error::from(v);
        assert_eq!(e.kind(), "InvalidRequest");
        assert!(e.validation_errors().is_some_and(|v| v.has_field("domain")));
        assert_eq!(e.to_string(), "Invalid field: domain (must not be empty)");
    }
}
