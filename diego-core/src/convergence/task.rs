//! Task convergence planning: pure, deterministic, no I/O — SPEC.md's six task steps.

use std::collections::HashSet;
use std::time::Duration;

use crate::models::guid::CellId;
use crate::models::task::{Task, TaskState};
use crate::time::Timestamp;

/// Failure reason of a task that was never started in time (Diego's text).
pub const NOT_STARTED_IN_TIME: &str = "not started within time limit";
/// Failure reason of a task whose cell vanished (Diego's text).
pub const CELL_DISAPPEARED: &str = "cell disappeared before completion";

/// The settings task planning uses: [`TaskConvergenceConfig::default`], changed with the
/// `with_*` setters.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TaskConvergenceConfig {
    /// Pending for longer than this → failed (30 min).
    pub expire_pending_task_duration: Duration,
    /// Resolving/Completed not updated for this long → kicked (30 s).
    pub kick_task_duration: Duration,
    /// Completed for longer than this (since first completion) → deleted (120 s).
    pub expire_completed_task_duration: Duration,
}

impl Default for TaskConvergenceConfig {
    fn default() -> Self {
        TaskConvergenceConfig {
            expire_pending_task_duration: Duration::from_secs(30 * 60),
            kick_task_duration: Duration::from_secs(30),
            expire_completed_task_duration: Duration::from_secs(120),
        }
    }
}

impl TaskConvergenceConfig {
    /// With `expire_pending_task_duration`: Pending for longer than this fails.
    #[must_use]
    pub fn with_expire_pending_task_duration(
        mut self,
        expire_pending_task_duration: Duration,
    ) -> Self {
        self.expire_pending_task_duration = expire_pending_task_duration;
        self
    }

    /// With `kick_task_duration`: Resolving/Completed not updated for this long is kicked.
    #[must_use]
    pub fn with_kick_task_duration(mut self, kick_task_duration: Duration) -> Self {
        self.kick_task_duration = kick_task_duration;
        self
    }

    /// With `expire_completed_task_duration`: Completed for longer than this is deleted.
    #[must_use]
    pub fn with_expire_completed_task_duration(
        mut self,
        expire_completed_task_duration: Duration,
    ) -> Self {
        self.expire_completed_task_duration = expire_completed_task_duration;
        self
    }
}

/// One task repair, named by its reason.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskAction {
    /// 1. Pending too long → Completed, failed, "not started within time limit".
    ExpirePending(Task),
    /// 2. Running on a vanished cell → Completed, failed, "cell disappeared before completion".
    FailOnLostCell(Task),
    /// 3. Resolving, not updated for the kick duration → back to Completed (and resent).
    DemoteResolving(Task),
    /// 4. Completed for longer than the expiry → deleted.
    DeleteCompleted(Task),
    /// 5. Completed, not updated for the kick duration, with a callback → resend it.
    ResendCallback(Task),
    /// 6. Any other Pending task → auction again.
    Auction(Task),
}

impl TaskAction {
    /// A short reason, for logs and reports.
    pub fn reason(&self) -> &'static str {
        match self {
            TaskAction::ExpirePending(_) => "pending too long",
            TaskAction::FailOnLostCell(_) => "cell disappeared",
            TaskAction::DemoteResolving(_) => "resolving too long",
            TaskAction::DeleteCompleted(_) => "completed expired",
            TaskAction::ResendCallback(_) => "callback not delivered",
            TaskAction::Auction(_) => "pending",
        }
    }
}

/// Everything one task pass decided, and the counts of the snapshot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskConvergencePlan {
    /// The repairs.
    pub actions: Vec<TaskAction>,
    /// Pending tasks.
    pub pending: usize,
    /// Running tasks.
    pub running: usize,
    /// Completed tasks.
    pub completed: usize,
    /// Resolving tasks.
    pub resolving: usize,
}

impl TaskConvergencePlan {
    /// How many actions have `reason`.
    pub fn count(&self, reason: &str) -> usize {
        self.actions.iter().filter(|a| a.reason() == reason).count()
    }
}

/// Plans one task convergence pass.
pub fn plan_task_convergence(
    tasks: &[Task],
    now: Timestamp,
    live_cells: &HashSet<CellId>,
    config: &TaskConvergenceConfig,
) -> TaskConvergencePlan {
    let mut plan = TaskConvergencePlan::default();
    let kick_before = now - config.kick_task_duration;
    for t in tasks {
        match t.state {
            TaskState::Pending => {
                plan.pending += 1;
                if now.since(t.created_at) > config.expire_pending_task_duration {
                    plan.actions.push(TaskAction::ExpirePending(t.clone()));
                } else {
                    plan.actions.push(TaskAction::Auction(t.clone()));
                }
            }
            TaskState::Running => {
                plan.running += 1;
                let lost = t.cell_id.as_ref().is_none_or(|c| !live_cells.contains(c));
                if lost {
                    plan.actions.push(TaskAction::FailOnLostCell(t.clone()));
                }
            }
            TaskState::Resolving => {
                plan.resolving += 1;
                if t.updated_at < kick_before {
                    plan.actions.push(TaskAction::DemoteResolving(t.clone()));
                }
            }
            TaskState::Completed => {
                plan.completed += 1;
                if now.since(t.first_completed_at) > config.expire_completed_task_duration {
                    plan.actions.push(TaskAction::DeleteCompleted(t.clone()));
                } else if t.updated_at < kick_before
                    && !t.task_definition.completion_callback_url.is_empty()
                {
                    plan.actions.push(TaskAction::ResendCallback(t.clone()));
                }
            }
        }
    }
    plan
}
