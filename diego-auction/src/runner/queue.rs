//! The auction runner's queue: requests from the BBS wait here, de-duplicated, until
//! the next round drains them.

use std::sync::Mutex;

use diego_core::{LrpStartRequest, ProcessGuid, TaskGuid, TaskStartRequest};
use tokio::sync::Notify;

use crate::hash::FxHashSet;
use crate::work::AuctionBatch;

#[derive(Debug, Default)]
struct Pending {
    batch: AuctionBatch,
    lrp_keys: FxHashSet<(ProcessGuid, i32)>,
    task_keys: FxHashSet<TaskGuid>,
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
        let mut added = false;
        for mut r in requests {
            let Pending {
                lrp_keys, batch, ..
            } = &mut *p;
            r.indices
                .retain(|&i| lrp_keys.insert((r.process_guid.clone(), i)));
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
        let mut added = false;
        for t in requests {
            if p.task_keys.insert(t.task_guid.clone()) {
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

    /// Takes everything queued.
    pub(crate) fn drain(&self) -> AuctionBatch {
        let mut p = self.lock();
        p.lrp_keys.clear();
        p.task_keys.clear();
        std::mem::take(&mut p.batch)
    }

    /// Refuses further requests; returns how many pieces of work were still queued
    /// (dropped: the BBS's convergence asks for them again).
    pub(crate) fn stop(&self) -> usize {
        let mut p = self.lock();
        p.stopped = true;
        p.lrp_keys.clear();
        p.task_keys.clear();
        std::mem::take(&mut p.batch).len()
    }
}
