//! [`FakeBackendProber`]: declarative checks against [`FakeBackend`] containers, whose
//! "listening" ports are simulated: a port passes while a fake process listens on it.
//!
//! For tests and simulations. It knows the fake backend; it must not know Tasks or LRPs.

use std::time::Duration;

use async_trait::async_trait;
use diego_garden::FakeBackend;

use super::prober::{CheckProber, ProbeFailure, ProbeTarget};

/// Passes a TCP or HTTP check while a process of the fake container listens on the port
/// (see `FakeStep::Listen`); otherwise fails as a refused connection.
#[derive(Debug, Clone)]
pub struct FakeBackendProber {
    backend: FakeBackend,
}

impl FakeBackendProber {
    /// A prober looking at `backend`'s containers.
    pub fn new(backend: FakeBackend) -> Self {
        FakeBackendProber { backend }
    }

    fn listening(&self, target: &ProbeTarget) -> bool {
        self.backend
            .listening_ports(&target.handle)
            .map(|ports| ports.contains(&target.port))
            .unwrap_or(false)
    }
}

#[async_trait]
impl CheckProber for FakeBackendProber {
    async fn tcp(&self, target: &ProbeTarget, _timeout: Duration) -> Result<(), ProbeFailure> {
        if self.listening(target) {
            Ok(())
        } else {
            Err(ProbeFailure::Connection(format!(
                "dial tcp {}:{}: connect: connection refused",
                target.ip, target.port
            )))
        }
    }

    async fn http(
        &self,
        target: &ProbeTarget,
        _path: &str,
        _timeout: Duration,
    ) -> Result<(), ProbeFailure> {
        if self.listening(target) {
            Ok(())
        } else {
            Err(ProbeFailure::Connection("connection refused".to_string()))
        }
    }
}
