//! Evacuation: the cell is drained without taking an instance down (SPEC.md, Evacuation).

use std::sync::atomic::Ordering;

use super::reconcile::net_info;
use super::tags::{workload, Workload};
use super::Rep;
use crate::ContainerState;

impl Rep {
    /// Drains the cell: stops taking work, hands every RUNNING instance over with the
    /// keep-container protocol (its container stays until the replacement runs), gives up
    /// CLAIMED ones at once, lets tasks finish, and after `evacuation_timeout` deletes
    /// whatever remains and removes the cell's presence.
    #[tracing::instrument(skip_all, fields(cell_id = %self.cell_id()))]
    pub async fn evacuate(&self) {
        self.inner.evacuating.store(true, Ordering::SeqCst);
        self.touch();
        let bbs = &self.inner.bbs;
        let deadline = tokio::time::Instant::now() + self.inner.config.evacuation_timeout;
        loop {
            let containers = self.inner.executor.list();
            if containers.is_empty() {
                break;
            }
            for c in &containers {
                let Some(Workload::Lrp { key, instance_key }) = workload(c, self.cell_id()) else {
                    if c.state == ContainerState::Completed {
                        self.on_event(crate::ContainerEvent::Completed(c.clone()))
                            .await;
                    }
                    continue;
                };
                match c.state {
                    ContainerState::Running => {
                        match bbs
                            .evacuate_running_actual_lrp(&key, &instance_key, &net_info(c))
                            .await
                        {
                            Ok(true) => {}
                            Ok(false) => {
                                tracing::info!(guid = %c.guid, "instance handed over; stopping it");
                                let _ = self.inner.executor.stop(&c.guid).await;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, guid = %c.guid, "evacuation call failed")
                            }
                        }
                    }
                    ContainerState::Completed => {
                        self.on_event(crate::ContainerEvent::Completed(c.clone()))
                            .await;
                    }
                    _ => {
                        if let Err(e) = bbs.evacuate_claimed_actual_lrp(&key, &instance_key).await {
                            tracing::info!(error = %e, guid = %c.guid, "evacuate claimed refused");
                        }
                        self.delete(&c.guid).await;
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!("evacuation timed out; deleting every remaining container");
                for c in self.inner.executor.list() {
                    self.delete(&c.guid).await;
                }
                break;
            }
            tokio::time::sleep(self.inner.config.evacuation_polling_interval).await;
        }
        if let Err(e) = bbs.remove_cell(self.cell_id()).await {
            tracing::warn!(error = %e, "failed to remove the cell presence after evacuation");
        }
    }
}
