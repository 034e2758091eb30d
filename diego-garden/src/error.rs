//! The crate's one error type: what went wrong, said for the caller.
//!
//! Every backend maps its private failures (I/O, system calls, parse errors) into these
//! variants and keeps the original as `source`.

use std::error::Error as StdError;

/// A boxed error kept as the `source` of [`Error::Backend`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The result of every garden operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in a container backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No container has this handle (never created, or already destroyed).
    #[error("container not found: {handle}")]
    ContainerNotFound {
        /// The handle that was asked for.
        handle: String,
    },
    /// A container with this handle already exists.
    #[error("handle already exists: {handle}")]
    HandleExists {
        /// The handle that was asked for.
        handle: String,
    },
    /// The backend has not enough memory, disk or container slots left for the request.
    #[error("insufficient resources: {reason}")]
    InsufficientResources {
        /// Which resource ran out, in words.
        reason: String,
    },
    /// The container has no process with this id.
    #[error("process not found: {id}")]
    ProcessNotFound {
        /// The process id that was asked for.
        id: String,
    },
    /// A process id given in a [`ProcessSpec`](crate::ProcessSpec) is already in use.
    #[error("process id already in use: {id}")]
    ProcessIdExists {
        /// The process id that was asked for.
        id: String,
    },
    /// A path asked for by `stream_out` (or a process's working dir) does not exist.
    #[error("path not found in container: {path}")]
    PathNotFound {
        /// The container path.
        path: String,
    },
    /// The request itself is invalid (empty handle, relative path where an absolute one
    /// is needed, unknown rootfs scheme, ...).
    #[error("invalid request: {reason}")]
    InvalidSpec {
        /// What is wrong with it.
        reason: String,
    },
    /// The container was stopped; it runs no new processes.
    #[error("container is stopped: {handle}")]
    ContainerStopped {
        /// The container's handle.
        handle: String,
    },
    /// The process could not be started (executable missing, not executable, ...).
    #[error("failed to start process {path}: {source}")]
    ProcessStart {
        /// The executable that was asked for.
        path: String,
        /// Why it did not start.
        #[source]
        source: std::io::Error,
    },
    /// The backend cannot do this at all (a feature it does not offer on this host).
    #[error("unsupported by this backend: {what}")]
    Unsupported {
        /// What was asked for.
        what: String,
    },
    /// The backend failed for a reason of its own (I/O, a system call, the kernel).
    #[error("backend failure while {context}: {source}")]
    Backend {
        /// What the backend was doing.
        context: String,
        /// The original error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// Wraps a backend's own failure with what it was doing.
    pub fn backend(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Backend {
            context: context.into(),
            source: source.into(),
        }
    }

    /// Shorthand for [`Error::InvalidSpec`].
    pub fn invalid(reason: impl Into<String>) -> Self {
        Error::InvalidSpec {
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::ContainerNotFound`].
    pub fn not_found(handle: impl Into<String>) -> Self {
        Error::ContainerNotFound {
            handle: handle.into(),
        }
    }
}
