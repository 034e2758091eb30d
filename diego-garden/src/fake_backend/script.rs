//! Scripted behaviour of fake processes: [`FakeScript`], a list of [`FakeStep`]s.
//!
//! Tests build scripts directly ("exit after d with code c", "crash", "never exit",
//! "listen on its port") or register a program by path; `/bin/sh -c` scripts made of a few
//! simple commands are translated by the `shell` module.

use std::time::Duration;

use bytes::Bytes;

/// One thing a fake process does. Steps run in order; a process that runs out of steps
/// exits with the status of the last command (0 unless a step set it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeStep {
    /// Writes bytes to stdout.
    Stdout(Bytes),
    /// Writes bytes to stderr.
    Stderr(Bytes),
    /// Waits (in tokio time: paused time makes it instant and deterministic).
    Sleep(Duration),
    /// Exits with this code.
    Exit(i32),
    /// Sets the status the process exits with when it runs out of steps.
    Status(i32),
    /// From now on, `Terminate` is ignored (as after `trap '' TERM`).
    IgnoreTerminate,
    /// Listens on a container port until the process ends (0: the container's first
    /// mapped container port).
    Listen(u16),
    /// Sets the status to 0 when something in the container listens on the port (0: the
    /// first mapped one), else 1 — what a port health check does.
    CheckListening(u16),
    /// Copies a container file to stdout; a missing file writes an error and sets status 1.
    ReadFile(String),
    /// Writes a container file.
    WriteFile(String, Bytes),
    /// Waits until signalled.
    Forever,
}

/// A fake process's behaviour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeScript {
    /// The steps, in order.
    pub steps: Vec<FakeStep>,
}

impl FakeScript {
    /// An empty script (exits 0 at once).
    pub fn new() -> Self {
        FakeScript::default()
    }

    /// Appends a step.
    #[must_use]
    pub fn then(mut self, step: FakeStep) -> Self {
        self.steps.push(step);
        self
    }

    /// Exits with `code` after `after`.
    pub fn exit_after(after: Duration, code: i32) -> Self {
        FakeScript::new()
            .then(FakeStep::Sleep(after))
            .then(FakeStep::Exit(code))
    }

    /// Crashes after `after`: writes a message to stderr and exits with code 1.
    pub fn crash_after(after: Duration) -> Self {
        FakeScript::new()
            .then(FakeStep::Sleep(after))
            .then(FakeStep::Stderr(Bytes::from_static(
                b"fake process crashed\n",
            )))
            .then(FakeStep::Exit(1))
    }

    /// Runs until signalled.
    pub fn never_exit() -> Self {
        FakeScript::new().then(FakeStep::Forever)
    }

    /// Listens on the container's first mapped port until signalled.
    pub fn listen() -> Self {
        FakeScript::new()
            .then(FakeStep::Listen(0))
            .then(FakeStep::Forever)
    }

    /// Exits 0 when something listens on `port` (0: the first mapped one), else 1.
    pub fn check_listening(port: u16) -> Self {
        FakeScript::new().then(FakeStep::CheckListening(port))
    }
}
