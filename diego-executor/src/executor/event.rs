//! Container events the executor publishes: reserved, running, routable changed,
//! completed — read as a `Stream`.
//!
//! It knows containers; it must not know Tasks or LRPs.

use std::pin::Pin;

use futures::Stream;
use tokio::sync::broadcast;

use crate::executor::container::Container;

/// Something that happened to a container, with its snapshot just after.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContainerEvent {
    /// Resources were reserved for it.
    Reserved(Container),
    /// It became healthy (or spawned, without checks).
    Running(Container),
    /// Its readiness changed while running (`routable` says which way).
    RoutableChanged(Container),
    /// It completed; see its run result.
    Completed(Container),
    /// The subscriber fell behind and missed this many events; resync with
    /// [`Executor::list`](crate::Executor::list).
    Lagged {
        /// How many events were missed.
        missed: u64,
    },
}

impl ContainerEvent {
    /// The container the event is about (`None` for `Lagged`).
    pub fn container(&self) -> Option<&Container> {
        match self {
            ContainerEvent::Reserved(c)
            | ContainerEvent::Running(c)
            | ContainerEvent::RoutableChanged(c)
            | ContainerEvent::Completed(c) => Some(c),
            ContainerEvent::Lagged { .. } => None,
        }
    }
}

/// A live stream of container events, in the order they happened.
pub type ContainerEventStream = Pin<Box<dyn Stream<Item = ContainerEvent> + Send + 'static>>;

pub(crate) fn stream(rx: broadcast::Receiver<ContainerEvent>) -> ContainerEventStream {
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(event) => Some((event, rx)),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Some((ContainerEvent::Lagged { missed }, rx))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }))
}
