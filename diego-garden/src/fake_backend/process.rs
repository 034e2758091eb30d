//! A running fake process: a tokio task playing a [`FakeScript`], with output, signals and
//! an exit status like a real one.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::script::{FakeScript, FakeStep};
use super::FakeContainer;
use crate::backend::{ByteStream, Process};
use crate::error::Result;
use crate::info::{ExitStatus, Signal};
use crate::output::Output;

/// What a test or a caller does to a running fake process.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Control {
    Signal(Signal),
    Exit(i32),
}

/// The handle on a fake process.
pub(crate) struct FakeProcess {
    id: String,
    stdout: Arc<Output>,
    stderr: Arc<Output>,
    exit: watch::Receiver<Option<ExitStatus>>,
    control: mpsc::UnboundedSender<Control>,
}

impl FakeProcess {
    /// Starts playing `script` in `container`, in directory `dir`.
    pub(crate) fn start(
        id: String,
        script: FakeScript,
        dir: String,
        container: Arc<FakeContainer>,
    ) -> Arc<Self> {
        let (exit_tx, exit_rx) = watch::channel(None);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let process = Arc::new(FakeProcess {
            id,
            stdout: Output::new(),
            stderr: Output::new(),
            exit: exit_rx,
            control: control_tx,
        });
        let player = Player {
            stdout: Arc::clone(&process.stdout),
            stderr: Arc::clone(&process.stderr),
            control: control_rx,
            ignore_terminate: false,
            listening: Vec::new(),
            dir,
            container,
        };
        tokio::spawn(player.play(script, exit_tx));
        process
    }

    /// Sends a control message; false when the process already ended.
    pub(crate) fn control(&self, control: Control) -> bool {
        self.exit.borrow().is_none() && self.control.send(control).is_ok()
    }

    /// Whether it still runs.
    pub(crate) fn running(&self) -> bool {
        self.exit.borrow().is_none()
    }

    /// Waits for the end (infallible form of `wait`).
    pub(crate) async fn wait_exit(&self) -> ExitStatus {
        let mut rx = self.exit.clone();
        let result = match rx.wait_for(Option::is_some).await {
            Ok(status) => *status,
            // The player always sends before it ends; a dropped sender means it was
            // cancelled with its runtime: report a kill.
            Err(_) => None,
        };
        result.unwrap_or(ExitStatus::signaled(9))
    }
}

#[async_trait]
impl Process for FakeProcess {
    fn id(&self) -> &str {
        &self.id
    }

    async fn wait(&self) -> Result<ExitStatus> {
        Ok(self.wait_exit().await)
    }

    async fn signal(&self, signal: Signal) -> Result<()> {
        self.control(Control::Signal(signal));
        Ok(())
    }

    fn stdout(&self) -> ByteStream {
        self.stdout.stream()
    }

    fn stderr(&self) -> ByteStream {
        self.stderr.stream()
    }
}

struct Player {
    stdout: Arc<Output>,
    stderr: Arc<Output>,
    control: mpsc::UnboundedReceiver<Control>,
    ignore_terminate: bool,
    listening: Vec<u16>,
    dir: String,
    container: Arc<FakeContainer>,
}

impl Player {
    async fn play(mut self, script: FakeScript, exit: watch::Sender<Option<ExitStatus>>) {
        let status = self.run_steps(script).await;
        for port in std::mem::take(&mut self.listening) {
            self.container.unlisten(port);
        }
        self.stdout.close();
        self.stderr.close();
        let _ = exit.send(Some(status));
    }

    async fn run_steps(&mut self, script: FakeScript) -> ExitStatus {
        let mut status = 0;
        for step in script.steps {
            match step {
                FakeStep::Stdout(bytes) => self.stdout.push(bytes),
                FakeStep::Stderr(bytes) => self.stderr.push(bytes),
                FakeStep::Status(code) => status = code,
                FakeStep::Exit(code) => return ExitStatus::code(code),
                FakeStep::IgnoreTerminate => self.ignore_terminate = true,
                FakeStep::Listen(port) => {
                    let port = self.container.resolve_port(port);
                    self.container.listen(port);
                    self.listening.push(port);
                }
                FakeStep::CheckListening(port) => {
                    let port = self.container.resolve_port(port);
                    status = if self.container.is_listening(port) {
                        0
                    } else {
                        1
                    };
                }
                FakeStep::ReadFile(path) => match self.container.read_file(&self.dir, &path) {
                    Some(bytes) => self.stdout.push(bytes),
                    None => {
                        self.stderr.push(Bytes::from(format!(
                            "cat: can't open '{path}': No such file or directory\n"
                        )));
                        status = 1;
                    }
                },
                FakeStep::WriteFile(path, bytes) => {
                    self.container.write_file(&self.dir, &path, bytes)
                }
                FakeStep::Sleep(duration) => {
                    if let Some(end) = self.wait_until(Some(Instant::now() + duration)).await {
                        return end;
                    }
                }
                FakeStep::Forever => {
                    if let Some(end) = self.wait_until(None).await {
                        return end;
                    }
                }
            }
            // Let other tasks see output between steps, as a real process would.
            if let Ok(control) = self.control.try_recv() {
                if let Some(end) = self.apply(control) {
                    return end;
                }
            }
        }
        ExitStatus::code(status)
    }

    /// Waits until `deadline` (forever when `None`); `Some(status)` when a control message
    /// ended the process first.
    async fn wait_until(&mut self, deadline: Option<Instant>) -> Option<ExitStatus> {
        loop {
            let control = match deadline {
                Some(deadline) => tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => return None,
                    control = self.control.recv() => control,
                },
                None => self.control.recv().await,
            };
            match control {
                Some(control) => {
                    if let Some(end) = self.apply(control) {
                        return Some(end);
                    }
                }
                // Every sender is gone: nobody can signal it any more; it was forgotten
                // with its container. End as killed.
                None => return Some(ExitStatus::signaled(9)),
            }
        }
    }

    fn apply(&mut self, control: Control) -> Option<ExitStatus> {
        match control {
            Control::Exit(code) => Some(ExitStatus::code(code)),
            Control::Signal(Signal::Kill) => Some(ExitStatus::signaled(9)),
            Control::Signal(Signal::Terminate) if !self.ignore_terminate => {
                Some(ExitStatus::signaled(15))
            }
            Control::Signal(Signal::Terminate) => None,
        }
    }
}
