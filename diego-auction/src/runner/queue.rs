//! The auction runner's queue: requests from the BBS wait here, de-duplicated, until
//! the next round drains them, each piece with the id of the request that asked for it.

use std::sync::{Arc, Mutex};

use diego_core::{request_id, LrpStartRequest, ProcessGuid, TaskGuid, TaskStartRequest};
use rustc_hash::{FxHashMap, FxHashSet};
use tokio::sync::Notify;

use crate::work::AuctionBatch;
use crate::Work;

/// One piece of work, by identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum WorkKey {
    Lrp(ProcessGuid, i32),
    Task(TaskGuid),
}

/// The request id (`X-Vcap-Request-Id`) each piece of queued work was asked for under;
/// work asked for outside a request (convergence, an in-process host) has none.
#[derive(Debug, Default)]
pub(crate) struct Origins(FxHashMap<WorkKey, Arc<str>>);

impl Origins {
    /// The distinct ids, in order, joined by commas; `None` when there are none.
    fn join<'a>(ids: impl Iterator<Item = &'a Arc<str>>) -> Option<String> {
        let mut ids: Vec<&str> = ids.map(|id| &**id).collect();
        ids.sort_unstable();
        ids.dedup();
        (!ids.is_empty()).then(|| ids.join(","))
    }

    /// Every id of the batch, for the round's span.
    pub(crate) fn all(&self) -> Option<String> {
        Self::join(self.0.values())
    }

    /// The ids of the work in `work`, for the cell call that carries it.
    pub(crate) fn of_work(&self, work: &Work) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let lrps = work.lrps.iter().flat_map(|r| {
            r.indices
                .iter()
                .filter_map(|&i| self.0.get(&WorkKey::Lrp(r.process_guid.clone(), i)))
        });
        let tasks = work
            .tasks
            .iter()
            .filter_map(|t| self.0.get(&WorkKey::Task(t.task_guid.clone())));
        Self::join(lrps.chain(tasks))
    }

    /// The id of one piece of work.
    pub(crate) fn of(&self, key: WorkKey) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        self.0.get(&key).map(|id| id.to_string())
    }
}

#[derive(Debug, Default)]
struct Pending {
    batch: AuctionBatch,
    lrp_keys: FxHashSet<(ProcessGuid, i32)>,
    task_keys: FxHashSet<TaskGuid>,
    origins: Origins,
    stopped: bool,
}

/// Requests waiting for the next round.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pending: Mutex<Pending>,
    work: Notify,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues LRP instances not already queued; `false` once the runner stopped.
    pub(crate) fn push_lrps(&self, requests: Vec<LrpStartRequest>) -> bool {
        let mut p = self.lock();
        if p.stopped {
            return false;
        }
        let origin: Option<Arc<str>> = request_id::current().map(Into::into);
        let mut added = false;
        for mut r in requests {
            let Pending {
                lrp_keys,
                batch,
                origins,
                ..
            } = &mut *p;
            r.indices
                .retain(|&i| lrp_keys.insert((r.process_guid.clone(), i)));
            if let Some(id) = &origin {
                for &i in &r.indices {
                    let key = WorkKey::Lrp(r.process_guid.clone(), i);
                    origins.0.insert(key, id.clone());
                }
            }
            if !r.indices.is_empty() {
                batch.lrps.push(r);
                added = true;
            }
        }
        drop(p);
        if added {
            self.work.notify_one();
        }
        true
    }

    /// Queues Tasks not already queued; `false` once the runner stopped.
    pub(crate) fn push_tasks(&self, requests: Vec<TaskStartRequest>) -> bool {
        let mut p = self.lock();
        if p.stopped {
            return false;
        }
        let origin: Option<Arc<str>> = request_id::current().map(Into::into);
        let mut added = false;
        for t in requests {
            if p.task_keys.insert(t.task_guid.clone()) {
                if let Some(id) = &origin {
                    let key = WorkKey::Task(t.task_guid.clone());
                    p.origins.0.insert(key, id.clone());
                }
                p.batch.tasks.push(t);
                added = true;
            }
        }
        drop(p);
        if added {
            self.work.notify_one();
        }
        true
    }

    /// Waits until some work is queued.
    pub(crate) async fn wait_for_work(&self) {
        loop {
            if !self.lock().batch.is_empty() {
                return;
            }
            // `notify_one` keeps a permit when nobody waits, so a push between the
            // check and this wait is not lost.
            self.work.notified().await;
        }
    }

    /// Takes everything queued, with the request ids it was asked for under.
    pub(crate) fn drain(&self) -> (AuctionBatch, Origins) {
        let mut p = self.lock();
        p.lrp_keys.clear();
        p.task_keys.clear();
        (std::mem::take(&mut p.batch), std::mem::take(&mut p.origins))
    }

    /// Refuses further requests; returns how many pieces of work were still queued
    /// (dropped: the BBS's convergence asks for them again).
    pub(crate) fn stop(&self) -> usize {
        let mut p = self.lock();
        p.stopped = true;
        p.lrp_keys.clear();
        p.task_keys.clear();
        p.origins = Origins::default();
        std::mem::take(&mut p.batch).len()
    }
}
