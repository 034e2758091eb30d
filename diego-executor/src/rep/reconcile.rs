//! Keeping the BBS told: reactions to container events, and the periodic reconciliation
//! (the "bulker") that repairs whatever an event missed — so a restarted rep loses
//! nothing.

use std::collections::HashSet;

use diego_core::store::{ActualLrpFilter, TaskFilter};
use diego_core::{
    ActualLrpInstanceKey, ActualLrpKey, ActualLrpNetInfo, Error, Presence, TaskState,
};

use super::tags::{container_guid, workload, Workload};
use super::Rep;
use crate::{Container, ContainerEvent, ContainerState};

/// Failure reason and result of a Running task whose container is gone (Diego's text).
pub const TASK_CONTAINER_DOES_NOT_EXIST: &str = "task container does not exist";

/// Where a container can be reached, as the BBS records it.
pub(super) fn net_info(c: &Container) -> ActualLrpNetInfo {
    ActualLrpNetInfo {
        address: if c.external_ip.is_empty() {
            "127.0.0.1".into()
        } else {
            c.external_ip.clone()
        },
        instance_address: c.internal_ip.clone(),
        preferred_address: diego_core::PreferredAddress::Host,
        ports: c
            .ports
            .iter()
            .map(|p| diego_core::PortMapping {
                container_port: u32::from(p.container_port),
                host_port: u32::from(p.host_port),
                ..Default::default()
            })
            .collect(),
    }
}

/// Whether a container failed in setup in a way worth another try elsewhere (SPEC.md,
/// The cell: setup failures).
pub fn is_retryable_setup_failure(reason: &str) -> bool {
    reason.starts_with("failed to create container")
        || reason == "failed to download cached artifacts"
        || reason == "failed to mount volume"
}

impl Rep {
    pub(super) async fn on_event(&self, event: ContainerEvent) {
        self.touch();
        match event {
            ContainerEvent::Running(c) | ContainerEvent::RoutableChanged(c) => {
                self.report_running(&c).await
            }
            ContainerEvent::Completed(c) => self.report_completed(&c).await,
            ContainerEvent::Lagged { missed } => {
                tracing::info!(missed, "missed container events; reconciling");
                self.reconcile().await;
            }
            _ => {}
        }
    }

    async fn report_running(&self, c: &Container) {
        let Some(Workload::Lrp { key, instance_key }) = workload(c, self.cell_id()) else {
            return;
        };
        if self.is_evacuating() {
            return; // the evacuation loop speaks for it now
        }
        match self
            .inner
            .bbs
            .start_actual_lrp(&key, &instance_key, &net_info(c), c.routable)
            .await
        {
            Ok(()) => {}
            Err(Error::ActualLrpCannotBeStarted) => {
                tracing::info!(guid = %c.guid, "start refused; stopping the instance");
                let _ = self.inner.executor.stop(&c.guid).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, guid = %c.guid, "failed to report the instance running")
            }
        }
    }

    async fn report_completed(&self, c: &Container) {
        let bbs = &self.inner.bbs;
        match workload(c, self.cell_id()) {
            Some(Workload::Lrp { key, instance_key }) => {
                let r = &c.run_result;
                let outcome = if self.is_evacuating() {
                    if r.stopped {
                        bbs.evacuate_stopped_actual_lrp(&key, &instance_key)
                            .await
                            .map(|_| ())
                    } else {
                        bbs.evacuate_crashed_actual_lrp(&key, &instance_key, &r.failure_reason)
                            .await
                            .map(|_| ())
                    }
                } else if r.stopped {
                    bbs.remove_actual_lrp(&key, Some(&instance_key)).await
                } else {
                    bbs.crash_actual_lrp(&key, &instance_key, &r.failure_reason)
                        .await
                };
                if let Err(e) = outcome {
                    tracing::info!(error = %e, guid = %c.guid, "BBS refused the instance's end");
                }
                self.delete(&c.guid).await;
            }
            Some(Workload::Task { task_guid, .. }) => {
                let r = &c.run_result;
                let outcome = if r.failed && is_retryable_setup_failure(&r.failure_reason) {
                    bbs.reject_task(&task_guid, &r.failure_reason).await
                } else {
                    bbs.complete_task(
                        &task_guid,
                        self.cell_id(),
                        r.failed,
                        &r.failure_reason,
                        &r.result,
                    )
                    .await
                };
                if let Err(e) = outcome {
                    tracing::info!(error = %e, %task_guid, "BBS refused the task's end");
                }
                self.delete(&c.guid).await;
            }
            None => {}
        }
    }

    /// One reconciliation of containers with the BBS (SPEC.md, The cell).
    #[tracing::instrument(skip_all, fields(cell_id = %self.cell_id()))]
    pub async fn reconcile(&self) {
        let bbs = &self.inner.bbs;
        let cell = self.cell_id().clone();
        let containers = self.inner.executor.list();
        let mut guids: HashSet<String> = HashSet::with_capacity(containers.len());
        for c in &containers {
            guids.insert(c.guid.clone());
            match c.state {
                ContainerState::Running => self.report_running(c).await,
                ContainerState::Completed => self.report_completed(c).await,
                _ => {}
            }
        }
        let mine = ActualLrpFilter {
            cell_id: Some(cell.clone()),
            ..Default::default()
        };
        match bbs.actual_lrps(&mine).await {
            Ok(rows) => {
                for row in rows {
                    let Some(ik) = row.instance_key.clone() else {
                        continue;
                    };
                    if guids.contains(&container_guid(&row.key.process_guid, &ik.instance_guid)) {
                        continue;
                    }
                    let r = match row.presence {
                        Presence::Ordinary => bbs.remove_actual_lrp(&row.key, Some(&ik)).await,
                        Presence::Evacuating => {
                            bbs.remove_evacuating_actual_lrp(&row.key, &ik).await
                        }
                        Presence::Suspect => Ok(()),
                    };
                    if let Err(e) = r {
                        tracing::info!(error = %e, "could not remove a row without a container");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "reconcile could not list actual LRPs"),
        }
        let my_tasks = TaskFilter {
            cell_id: Some(cell.clone()),
            ..Default::default()
        };
        match bbs.tasks(&my_tasks).await {
            Ok(tasks) => {
                // A running task container whose Task no longer runs here (cancelled,
                // failed by convergence) is deleted.
                let running_here: HashSet<&str> = tasks
                    .iter()
                    .filter(|t| t.state == TaskState::Running)
                    .map(|t| t.task_guid.as_str())
                    .collect();
                for c in containers
                    .iter()
                    .filter(|c| c.state == ContainerState::Running)
                {
                    if let Some(Workload::Task { task_guid, .. }) = workload(c, &cell) {
                        if !running_here.contains(task_guid.as_str()) {
                            tracing::info!(%task_guid, "task no longer runs here; deleting its container");
                            self.delete(&c.guid).await;
                        }
                    }
                }
                for t in &tasks {
                    if t.state == TaskState::Running && !guids.contains(t.task_guid.as_str()) {
                        let r = bbs
                            .complete_task(
                                &t.task_guid,
                                &cell,
                                true,
                                TASK_CONTAINER_DOES_NOT_EXIST,
                                TASK_CONTAINER_DOES_NOT_EXIST,
                            )
                            .await;
                        if let Err(e) = r {
                            tracing::info!(error = %e, "could not fail a task without a container");
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "reconcile could not list tasks"),
        }
    }

    /// Stops an LRP instance (the BBS asked); its row goes when the container ends.
    pub async fn stop_lrp_instance(
        &self,
        key: &ActualLrpKey,
        ik: &ActualLrpInstanceKey,
    ) -> diego_core::Result<()> {
        let guid = container_guid(&key.process_guid, &ik.instance_guid);
        match self.inner.executor.stop(&guid).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::info!(error = %e, %guid, "no container to stop; removing the row");
                match self.inner.bbs.remove_actual_lrp(key, Some(ik)).await {
                    Ok(()) | Err(Error::ResourceNotFound) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Applies new metric tags to a running LRP instance in place (the BBS asked after
    /// an update of its DesiredLRP's `metric_tags`): they are resolved for this instance
    /// (`INDEX`, `INSTANCE_GUID`) and its later log lines and metrics carry them; the
    /// instance keeps running. No container for it → `ResourceNotFound`.
    pub async fn update_lrp_instance(
        &self,
        key: &ActualLrpKey,
        ik: &ActualLrpInstanceKey,
        metric_tags: &diego_core::MetricTags,
    ) -> diego_core::Result<()> {
        let guid = container_guid(&key.process_guid, &ik.instance_guid);
        let tags = diego_core::models::metric_tags::resolve_metric_tags(
            metric_tags,
            Some((key.index, ik.instance_guid.as_str())),
        );
        self.inner
            .executor
            .update_metric_tags(&guid, tags)
            .map_err(|_| Error::ResourceNotFound)
    }

    /// Cancels a task (the BBS asked): its container is deleted.
    pub async fn cancel_task(&self, task_guid: &diego_core::TaskGuid) -> diego_core::Result<()> {
        self.delete(task_guid.as_str()).await;
        Ok(())
    }
}
