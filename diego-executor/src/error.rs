//! The crate's one error type: what went wrong for the caller of the executor.
//!
//! It knows containers and the executor's rules; it must not know Tasks or LRPs.

/// The result of every executor operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Diego's text for a duplicate container guid.
pub const GUID_NOT_AVAILABLE: &str = "container guid not available";
/// Diego's text for an empty container guid.
pub const GUID_NOT_SPECIFIED: &str = "container guid not specified";
/// Diego's text for an allocation that does not fit.
pub const INSUFFICIENT_RESOURCES: &str = "insufficient resources available";

/// What went wrong in the executor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A container with this guid is already allocated.
    #[error("container guid not available")]
    GuidNotAvailable,
    /// The BBS refused a call or could not be reached.
    #[error("BBS: {0}")]
    Bbs(#[from] diego_core::Error),
    /// The allocation request has an empty guid.
    #[error("container guid not specified")]
    GuidNotSpecified,
    /// The cell has not enough memory, disk or container slots left.
    #[error("insufficient resources available")]
    InsufficientResources,
    /// The executor knows no container with this guid.
    #[error("container not found: {guid}")]
    ContainerNotFound {
        /// The guid asked for.
        guid: String,
    },
    /// The container is not in a state that allows the operation.
    #[error("invalid state transition of container {guid}: {from} to {to}")]
    InvalidTransition {
        /// The container's guid.
        guid: String,
        /// Its state now.
        from: String,
        /// The state the operation needs to move it to.
        to: String,
    },
    /// The run request is invalid (a field path and reason, as the models validate).
    #[error("invalid run request: {reason}")]
    InvalidRequest {
        /// What is wrong with it.
        reason: String,
    },
    /// The container backend failed to create the container.
    #[error("failed to create container: {source}")]
    CreateFailed {
        /// The backend's error.
        #[source]
        source: diego_garden::Error,
    },
    /// The container backend failed.
    #[error("container backend failure: {source}")]
    Backend {
        /// The backend's error.
        #[source]
        source: diego_garden::Error,
    },
    /// A local file (the download cache) could not be used.
    #[error("{context}: {source}")]
    Io {
        /// What the executor was doing.
        context: String,
        /// The original error.
        #[source]
        source: std::io::Error,
    },
    /// A daemon's configuration is unusable; the message names the field and the reason.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<diego_garden::Error> for Error {
    fn from(source: diego_garden::Error) -> Self {
        Error::Backend { source }
    }
}
