//! The rep's answers to the auction: its state, and `perform` (admit what fits, largest
//! memory first; refuse everything while evacuating; return what was not taken), then
//! the start of each admitted LRP instance (claim, run) and Task (start, run).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use diego_auction::Work;
use diego_core::{
    ActualLrpInstanceKey, ActualLrpKey, CellState, DesiredLrp, InstanceGuid, LrpStartRequest,
    LrpSummary, Resource, Task, TaskStartRequest, TaskSummary,
};

use super::tags::{container_guid, lrp_tags, task_tags, workload, Workload};
use super::Rep;
use crate::{
    AllocationRequest, ContainerResource, ContainerState, InstanceIdentity, LogConfig, RunRequest,
};

/// Failure reason of a task whose container could not be run (Diego's text).
pub const FAILED_TO_RUN_CONTAINER: &str = "failed to run container";

fn resource_of(c: &crate::Container) -> Resource {
    Resource {
        memory_mb: i32::try_from(c.resource.memory_mb).unwrap_or(i32::MAX),
        disk_mb: i32::try_from(c.resource.disk_mb).unwrap_or(i32::MAX),
        max_pids: i32::try_from(c.resource.max_pids).unwrap_or(i32::MAX),
    }
}

fn container_resource(r: &Resource) -> ContainerResource {
    let mut c = ContainerResource::new(r.memory_mb.max(0) as u64, r.disk_mb.max(0) as u64);
    c.max_pids = r.max_pids.max(0) as u64;
    c
}

impl Rep {
    /// The cell's state for the auction; the same snapshot while nothing changed.
    pub fn state(&self) -> Arc<CellState> {
        let version = self.inner.version.load(Ordering::SeqCst);
        let mut cache = self.inner.state_cache.lock();
        if let Some((v, state)) = cache.as_ref() {
            if *v == version {
                return state.clone();
            }
        }
        let state = Arc::new(self.build_state());
        *cache = Some((version, state.clone()));
        state
    }

    fn build_state(&self) -> CellState {
        let ex = &self.inner.executor;
        let c = &self.inner.config;
        let cell = &c.cell_id;
        let remaining = ex.remaining_resources();
        let mut lrps = Vec::new();
        let mut tasks = Vec::new();
        let mut starting = 0;
        for container in ex.list() {
            if matches!(
                container.state,
                ContainerState::Reserved | ContainerState::Initializing | ContainerState::Created
            ) {
                starting += 1;
            }
            match workload(&container, cell) {
                Some(Workload::Lrp { key, .. }) => lrps.push(LrpSummary {
                    key,
                    resource: resource_of(&container),
                }),
                Some(Workload::Task { task_guid, domain }) => tasks.push(TaskSummary {
                    task_guid,
                    domain,
                    resource: resource_of(&container),
                }),
                None => {}
            }
        }
        let presence = self.presence();
        let lrp_fingerprints = diego_core::models::cell::LrpFingerprints::of_lrps(&lrps);
        CellState {
            cell_id: cell.clone(),
            rep_url: c.rep_url.clone(),
            zone: c.zone.clone(),
            available_resources: diego_core::CellCapacity {
                memory_mb: super::clamp(remaining.memory_mb),
                disk_mb: super::clamp(remaining.disk_mb),
                containers: super::clamp(remaining.containers),
            },
            total_resources: presence.capacity,
            lrps,
            tasks,
            starting_container_count: starting,
            evacuating: self.is_evacuating(),
            rootfs_providers: c.rootfs_providers.clone(),
            placement_tags: c.placement_tags.clone(),
            optional_placement_tags: c.optional_placement_tags.clone(),
            volume_drivers: c.volume_drivers.clone(),
            proxy_memory_allocation_mb: c.proxy_memory_allocation_mb,
            // Listed in container order, not appended to: no promise across snapshots.
            lrp_lineage: diego_core::models::cell::LrpLineage::default(),
            lrp_fingerprints,
        }
    }

    /// Admits what fits (largest memory first), starts it in the background, and returns
    /// what it did not take. Refuses everything naming another cell or while evacuating.
    #[tracing::instrument(skip_all, fields(cell_id = %self.cell_id()))]
    pub async fn perform(&self, work: Work) -> Work {
        if &work.cell_id != self.cell_id() || self.is_evacuating() {
            return work;
        }
        let mut unperformed = Work::new(work.cell_id.clone());
        let proxy = self.inner.config.proxy_memory_allocation_mb.max(0);
        let mut memory_left = i64::from(super::clamp(
            self.inner.executor.remaining_resources().memory_mb,
        ));

        // LRP instances, largest memory first; memory (plus proxy memory) checked up front.
        let mut units: Vec<(usize, &LrpStartRequest, i32)> = work
            .lrps
            .iter()
            .enumerate()
            .flat_map(|(pos, r)| r.indices.iter().map(move |i| (pos, r, *i)))
            .collect();
        units.sort_by_key(|(_, r, _)| std::cmp::Reverse(r.resource.memory_mb));
        let mut refused: BTreeMap<usize, Vec<i32>> = BTreeMap::new();
        let mut admitted = Vec::new();
        for (pos, req, index) in units {
            let need = i64::from(req.resource.memory_mb) + i64::from(proxy);
            if need > memory_left {
                refused.entry(pos).or_default().push(index);
                continue;
            }
            let ig = InstanceGuid::generate();
            let key = ActualLrpKey::new(req.process_guid.clone(), index, req.domain.clone());
            let mut resource = req.resource;
            resource.memory_mb += proxy;
            let alloc = AllocationRequest {
                guid: container_guid(&req.process_guid, &ig),
                resource: container_resource(&resource),
                tags: lrp_tags(&key, &ig),
            };
            match self
                .inner
                .executor
                .allocate(vec![alloc])
                .await
                .into_iter()
                .next()
            {
                None => {
                    memory_left -= need;
                    admitted.push((key, ig));
                }
                Some(failure) => {
                    tracing::info!(reason = %failure.reason, "refused an LRP instance");
                    refused.entry(pos).or_default().push(index);
                }
            }
        }
        for (pos, indices) in refused {
            if let Some(r) = work.lrps.get(pos) {
                let mut r = r.clone();
                r.indices = indices;
                unperformed.lrps.push(r);
            }
        }

        let mut tasks: Vec<&TaskStartRequest> = work.tasks.iter().collect();
        tasks.sort_by_key(|t| std::cmp::Reverse(t.resource.memory_mb));
        let mut admitted_tasks = Vec::new();
        for t in tasks {
            let alloc = AllocationRequest {
                guid: t.task_guid.to_string(),
                resource: container_resource(&t.resource),
                tags: task_tags(&t.domain),
            };
            match self
                .inner
                .executor
                .allocate(vec![alloc])
                .await
                .into_iter()
                .next()
            {
                None => admitted_tasks.push(t.task_guid.clone()),
                Some(failure) => {
                    tracing::info!(reason = %failure.reason, task_guid = %t.task_guid, "refused a task");
                    unperformed.tasks.push(t.clone());
                }
            }
        }
        self.touch();
        // One task per process: the DesiredLRP is read once for all its instances.
        let mut by_process: BTreeMap<diego_core::ProcessGuid, Vec<(ActualLrpKey, InstanceGuid)>> =
            BTreeMap::new();
        for (key, ig) in admitted {
            by_process
                .entry(key.process_guid.clone())
                .or_default()
                .push((key, ig));
        }
        for (pg, instances) in by_process {
            let rep = self.clone();
            tokio::spawn(async move { rep.start_lrps(pg, instances).await });
        }
        for guid in admitted_tasks {
            let rep = self.clone();
            tokio::spawn(async move { rep.start_task(guid).await });
        }
        unperformed
    }

    async fn start_lrps(
        &self,
        pg: diego_core::ProcessGuid,
        instances: Vec<(ActualLrpKey, InstanceGuid)>,
    ) {
        let desired = match self.inner.bbs.desired_lrp_by_process_guid(&pg).await {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::info!(error = %e, process_guid = %pg, "desired LRP unreadable; giving its instances up");
                None
            }
        };
        let starts = instances
            .into_iter()
            .map(|(key, ig)| self.start_lrp(desired.as_ref(), key, ig));
        futures::future::join_all(starts).await;
    }

    async fn start_lrp(&self, desired: Option<&DesiredLrp>, key: ActualLrpKey, ig: InstanceGuid) {
        let bbs = &self.inner.bbs;
        let guid = container_guid(&key.process_guid, &ig);
        let ik = ActualLrpInstanceKey::new(ig.clone(), self.cell_id().clone());
        let Some(desired) = desired else {
            self.delete(&guid).await;
            return;
        };
        if let Err(e) = bbs.claim_actual_lrp(&key, &ik).await {
            tracing::info!(error = %e, %guid, "claim refused; deleting the container");
            self.delete(&guid).await;
            return;
        }
        let request = lrp_run_request(desired, key.index, &ig);
        match self.inner.executor.run(&guid, request).await {
            Ok(()) => {}
            // The container completed with the setup failure: its Completed event
            // reports the crash (retryable) and deletes it.
            Err(crate::Error::CreateFailed { .. }) => {}
            Err(e) => {
                tracing::warn!(error = %e, %guid, "failed to run the container");
                let _ = bbs.remove_actual_lrp(&key, Some(&ik)).await;
                self.delete(&guid).await;
            }
        }
        self.touch();
    }

    async fn start_task(&self, guid: diego_core::TaskGuid) {
        let bbs = &self.inner.bbs;
        let container = guid.to_string();
        match bbs.start_task(&guid, self.cell_id()).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(task_guid = %guid, "task already started here; not running it again");
                return;
            }
            Err(e) => {
                tracing::info!(error = %e, task_guid = %guid, "start refused; deleting the container");
                self.delete(&container).await;
                return;
            }
        }
        let task = match bbs.task_by_guid(&guid).await {
            Ok(t) => t,
            Err(e) => {
                tracing::info!(error = %e, task_guid = %guid, "task gone");
                self.delete(&container).await;
                return;
            }
        };
        match self
            .inner
            .executor
            .run(&container, task_run_request(&task))
            .await
        {
            Ok(()) => {}
            // The container completed with the setup failure: its Completed event rejects
            // the task (retryable) and deletes the container.
            Err(crate::Error::CreateFailed { .. }) => {}
            Err(e) => {
                tracing::warn!(error = %e, task_guid = %guid, "failed to run the task container");
                let _ = bbs
                    .complete_task(&guid, self.cell_id(), true, FAILED_TO_RUN_CONTAINER, "")
                    .await;
                self.delete(&container).await;
            }
        }
        self.touch();
    }

    pub(super) async fn delete(&self, guid: &str) {
        if let Err(e) = self.inner.executor.delete(guid).await {
            tracing::debug!(error = %e, %guid, "container already gone");
        }
        self.touch();
    }
}

/// The run request of instance `index` of `desired`.
pub fn lrp_run_request(desired: &DesiredLrp, index: i32, ig: &InstanceGuid) -> RunRequest {
    let s = &desired.scheduling_info;
    let r = &desired.run_info;
    RunRequest {
        rootfs: s.rootfs.clone(),
        env: r.env.clone(),
        setup: r.setup.clone(),
        action: r.action.clone(),
        monitor: r.monitor.clone(),
        check_definition: r.check_definition.clone(),
        start_timeout: Duration::from_millis(r.start_timeout_ms),
        ports: r
            .ports
            .iter()
            .filter_map(|p| u16::try_from(*p).ok())
            .collect(),
        sidecars: r.sidecars.iter().filter_map(|s| s.action.clone()).collect(),
        cpu_weight: u64::from(r.cpu_weight),
        log_config: LogConfig {
            guid: if s.log_guid.is_empty() {
                s.process_guid.to_string()
            } else {
                s.log_guid.clone()
            },
            source_name: if r.log_source.is_empty() {
                "APP/PROC/WEB".into()
            } else {
                r.log_source.clone()
            },
            index,
        },
        instance: Some(InstanceIdentity {
            guid: ig.to_string(),
            index,
        }),
        result_file: String::new(),
        log_rate_limit: log_limit(r.log_rate_limit.as_ref()),
        metric_tags: diego_core::models::metric_tags::resolve_metric_tags(
            &r.metric_tags,
            Some((index, ig.as_str())),
        ),
    }
}

/// The executor's log limit for a workload's `log_rate_limit` (-1: unlimited).
fn log_limit(limit: Option<&diego_core::LogRateLimit>) -> Option<diego_core::log_sink::LogLimit> {
    let bytes = limit?.bytes_per_second;
    let bytes = u64::try_from(bytes).ok()?;
    Some(diego_core::log_sink::LogLimit {
        lines_per_second: None,
        bytes_per_second: Some(bytes),
    })
}

/// The run request of `task`.
pub fn task_run_request(task: &Task) -> RunRequest {
    let d = &task.task_definition;
    RunRequest {
        rootfs: d.rootfs.clone(),
        env: d.env.clone(),
        action: d.action.clone(),
        cpu_weight: u64::from(d.cpu_weight),
        log_config: LogConfig {
            guid: if d.log_guid.is_empty() {
                task.task_guid.to_string()
            } else {
                d.log_guid.clone()
            },
            source_name: if d.log_source.is_empty() {
                "TASK".into()
            } else {
                d.log_source.clone()
            },
            index: 0,
        },
        result_file: d.result_file.clone(),
        log_rate_limit: log_limit(d.log_rate_limit.as_ref()),
        metric_tags: diego_core::models::metric_tags::resolve_metric_tags(&d.metric_tags, None),
        ..RunRequest::default()
    }
}
