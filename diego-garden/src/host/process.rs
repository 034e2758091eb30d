//! A host process started by a host backend: its output, its exit status, its signals.
//!
//! A task owns the child and waits for it, so the process is reaped even when every
//! handle is dropped (no zombies).

use std::process::Stdio;
use std::sync::Arc;

use async_trait::async_trait;
use nix::sys::signal::{kill, killpg, Signal as NixSignal};
use nix::unistd::Pid;
use tokio::sync::watch;

use crate::backend::{ByteStream, Process};
use crate::error::{Error, Result};
use crate::info::{ExitStatus, Signal};
use crate::output::Output;

/// How long an exit waits for the process's output pipes to close.
const OUTPUT_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Tells, once a process ended, whether the kernel killed it for memory.
pub(crate) type OomProbe = Box<dyn FnOnce(&ExitStatus) -> bool + Send>;

/// How a process's signals are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignalTarget {
    /// To its whole process group (the process leads its own group).
    Group,
    /// To the process only (it forwards them).
    Process,
}

/// A running or finished host process.
pub(crate) struct HostProcess {
    id: String,
    pid: i32,
    target: SignalTarget,
    stdout: Arc<Output>,
    stderr: Arc<Output>,
    exit: watch::Receiver<Option<ExitStatus>>,
}

impl HostProcess {
    /// Spawns `command` with piped output; a task waits for it.
    pub(crate) fn spawn(
        id: String,
        mut command: tokio::process::Command,
        path: &str,
        target: SignalTarget,
        oom: OomProbe,
    ) -> Result<Arc<Self>> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(false);
        let mut child = command.spawn().map_err(|source| Error::ProcessStart {
            path: path.to_string(),
            source,
        })?;
        let pid = child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .ok_or_else(|| {
                Error::backend(
                    "starting a process",
                    "the child exited before it was tracked",
                )
            })?;
        let stdout = Output::new();
        let stderr = Output::new();
        let pumps = [
            child.stdout.take().map(|out| stdout.pump(out)),
            child.stderr.take().map(|err| stderr.pump(err)),
        ];
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(status) => exit_status(status),
                Err(err) => {
                    tracing::warn!(pid, error = %err, "waiting for a container process failed");
                    ExitStatus::signaled(9)
                }
            };
            let out_of_memory = oom(&status);
            if target == SignalTarget::Group {
                // What the process left running in its group ends with it, as in a pid
                // namespace whose init exits.
                let _ = killpg(Pid::from_raw(pid), NixSignal::SIGKILL);
            }
            // Report the exit once its output is complete, so a caller that waited reads
            // every byte; a descendant that escaped and keeps the pipes open does not hold
            // the exit back for long.
            let drained = async {
                for pump in pumps.into_iter().flatten() {
                    let _ = pump.await;
                }
            };
            let _ = tokio::time::timeout(OUTPUT_DRAIN_TIMEOUT, drained).await;
            let _ = tx.send(Some(ExitStatus {
                out_of_memory,
                ..status
            }));
        });
        Ok(Arc::new(HostProcess {
            id,
            pid,
            target,
            stdout,
            stderr,
            exit: rx,
        }))
    }

    /// The host pid.
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether it still runs (its exit was not reported yet).
    pub(crate) fn running(&self) -> bool {
        self.exit.borrow().is_none()
    }

    /// Sends a signal unless it already ended.
    pub(crate) fn send(&self, signal: NixSignal) {
        if !self.running() {
            return;
        }
        let pid = Pid::from_raw(self.pid);
        let _ = match self.target {
            SignalTarget::Group => killpg(pid, signal),
            SignalTarget::Process => kill(pid, signal),
        };
    }

    /// Waits for the end.
    pub(crate) async fn wait_exit(&self) -> ExitStatus {
        let mut rx = self.exit.clone();
        let status = match rx.wait_for(Option::is_some).await {
            Ok(status) => *status,
            Err(_) => None,
        };
        status.unwrap_or(ExitStatus::signaled(9))
    }
}

/// Maps a Unix wait status: the code, or `128 + n` after signal `n`.
pub(crate) fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitStatus::code(code),
        (None, Some(signal)) => ExitStatus::signaled(signal),
        (None, None) => ExitStatus::code(255),
    }
}

#[async_trait]
impl Process for HostProcess {
    fn id(&self) -> &str {
        &self.id
    }

    async fn wait(&self) -> Result<ExitStatus> {
        Ok(self.wait_exit().await)
    }

    async fn signal(&self, signal: Signal) -> Result<()> {
        self.send(match signal {
            Signal::Terminate => NixSignal::SIGTERM,
            Signal::Kill => NixSignal::SIGKILL,
        });
        Ok(())
    }

    fn stdout(&self) -> ByteStream {
        self.stdout.stream()
    }

    fn stderr(&self) -> ByteStream {
        self.stderr.stream()
    }
}
