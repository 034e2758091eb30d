//! Health checks of a running container: the legacy monitor action and declarative
//! TCP/HTTP checks (startup, liveness, readiness), run from the cell against the
//! container's address (**ours**: Diego runs them as processes in the container).
//!
//! A health run reports `Healthy` once and `Ready(bool)` on each readiness change, and
//! ends only with the error that ends the instance (or a cancellation). It knows
//! containers, checks and actions; it must not know Tasks or LRPs.

mod checks;
mod fake_prober;
mod monitor;
mod prober;

use std::sync::Arc;
use std::time::Duration;

use diego_core::{Action, CheckDefinition};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use self::fake_prober::FakeBackendProber;
pub use self::prober::{CheckProber, NetworkProber, ProbeFailure, ProbeTarget};
use crate::executor::container::PortMapping;
use crate::executor::log_streamer::LogStreamer;
use crate::executor::step::{StepContext, StepError};

/// What a health run tells the executor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HealthSignal {
    /// The startup checks passed (once).
    Healthy,
    /// The readiness checks all pass (`true`) or one fails (`false`).
    Ready(bool),
}

/// Everything a health run needs.
pub(crate) struct HealthContext {
    /// For running the monitor action.
    pub(crate) step: StepContext,
    /// `CELL` lines.
    pub(crate) cell: LogStreamer,
    pub(crate) prober: Arc<dyn CheckProber>,
    pub(crate) handle: String,
    pub(crate) ip: String,
    pub(crate) ports: Vec<PortMapping>,
    pub(crate) start_timeout: Duration,
    pub(crate) unhealthy_interval: Duration,
    pub(crate) healthy_interval: Duration,
    pub(crate) signals: mpsc::UnboundedSender<HealthSignal>,
}

impl HealthContext {
    pub(crate) fn signal(&self, signal: HealthSignal) {
        let _ = self.signals.send(signal);
    }

    /// Where a check of container port `port` goes: the mapped internal port when the
    /// port is mapped, else the port itself.
    pub(crate) fn target(&self, port: u32) -> ProbeTarget {
        let port = u16::try_from(port).unwrap_or(0);
        let internal = self
            .ports
            .iter()
            .find(|p| p.container_port == port)
            .map_or(port, |p| p.internal_port);
        ProbeTarget {
            handle: self.handle.clone(),
            ip: self.ip.clone(),
            port: internal,
        }
    }
}

/// Which health checks a container has.
pub(crate) enum HealthPlan<'a> {
    Monitor(&'a Action),
    Checks(&'a CheckDefinition),
}

/// Runs the health checks until they end the instance or `cancel` fires.
pub(crate) async fn run(
    plan: HealthPlan<'_>,
    ctx: &HealthContext,
    cancel: &CancellationToken,
) -> StepError {
    ctx.cell.out("Starting health monitoring of container");
    match plan {
        HealthPlan::Monitor(action) => monitor::run(action, ctx, cancel).await,
        HealthPlan::Checks(definition) => checks::run(definition, ctx, cancel).await,
    }
}
