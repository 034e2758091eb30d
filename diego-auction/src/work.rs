//! A batch of work for one auction round, and the order Diego places it in.
//!
//! A batch holds LRP start requests (several indices each) and Task start requests, as
//! core's auctioneer types describe them. Placement looks at one LRP *instance* (process
//! and index) or one Task at a time, in Diego's order: LRP instances with index 0 first,
//! then Tasks, then the other LRP instances; within each group larger memory first.
//! Requests are de-duplicated (process guid + index; task guid); the first one wins.

use diego_core::{LrpStartRequest, TaskStartRequest};
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

/// The work of one auction round.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionBatch {
    /// LRP instances to start.
    #[serde(default)]
    pub lrps: Vec<LrpStartRequest>,
    /// Tasks to start.
    #[serde(default)]
    pub tasks: Vec<TaskStartRequest>,
}

impl AuctionBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an LRP start request.
    #[must_use]
    pub fn with_lrp(mut self, request: LrpStartRequest) -> Self {
        self.lrps.push(request);
        self
    }

    /// Adds a Task start request.
    #[must_use]
    pub fn with_task(mut self, request: TaskStartRequest) -> Self {
        self.tasks.push(request);
        self
    }

    /// How many pieces of work the batch names (LRP instances + Tasks), duplicates
    /// included.
    pub fn len(&self) -> usize {
        self.lrps.iter().map(|r| r.indices.len()).sum::<usize>() + self.tasks.len()
    }

    /// Whether the batch names no work.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One piece of work of a batch, by position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WorkItem {
    /// Instance `index` of `batch.lrps[request]`.
    Lrp {
        /// Position of the request in `batch.lrps`.
        request: usize,
        /// The instance index.
        index: i32,
    },
    /// `batch.tasks[request]`.
    Task {
        /// Position of the request in `batch.tasks`.
        request: usize,
    },
}

/// The batch's work, de-duplicated, in the order placement visits it.
///
/// `index0_after_tasks_quirk` reproduces Diego's split: when no LRP instance of the
/// batch has an index above 0, the index-0 instances go *after* the Tasks.
pub(crate) fn ordered_items(batch: &AuctionBatch, index0_after_tasks_quirk: bool) -> Vec<WorkItem> {
    let mut seen: FxHashSet<(&str, i32)> = FxHashSet::default();
    let mut lrps: Vec<(i32, i32, usize)> = Vec::with_capacity(batch.len());
    for (request, r) in batch.lrps.iter().enumerate() {
        for &index in &r.indices {
            if seen.insert((r.process_guid.as_str(), index)) {
                lrps.push((index, r.resource.memory_mb, request));
            }
        }
    }
    // Stable: equal keys keep the batch's order.
    lrps.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));

    let mut seen_tasks: FxHashSet<&str> = FxHashSet::default();
    let mut tasks: Vec<(i32, usize)> = batch
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| seen_tasks.insert(t.task_guid.as_str()))
        .map(|(i, t)| (t.resource.memory_mb, i))
        .collect();
    tasks.sort_by_key(|t| std::cmp::Reverse(t.0));

    let split = match lrps.iter().position(|l| l.0 > 0) {
        Some(p) => p,
        None if index0_after_tasks_quirk => 0,
        None => lrps.len(),
    };
    let lrp_item = |&(index, _, request): &(i32, i32, usize)| WorkItem::Lrp { request, index };
    let mut items = Vec::with_capacity(lrps.len() + tasks.len());
    items.extend(lrps[..split].iter().map(lrp_item));
    items.extend(tasks.iter().map(|&(_, request)| WorkItem::Task { request }));
    items.extend(lrps[split..].iter().map(lrp_item));
    items
}

#[cfg(test)]
mod tests {
    use diego_core::{PlacementConstraint, Resource};

    use super::*;

    fn lrp(guid: &str, indices: Vec<i32>, mem: i32) -> LrpStartRequest {
        LrpStartRequest {
            process_guid: guid.into(),
            domain: "d".into(),
            indices,
            resource: Resource {
                memory_mb: mem,
                disk_mb: 1,
                max_pids: 0,
            },
            placement_constraint: PlacementConstraint::default(),
        }
    }

    fn task(guid: &str, mem: i32) -> TaskStartRequest {
        TaskStartRequest {
            task_guid: guid.into(),
            domain: "d".into(),
            resource: Resource {
                memory_mb: mem,
                disk_mb: 1,
                max_pids: 0,
            },
            placement_constraint: PlacementConstraint::default(),
        }
    }

    #[test]
    fn order_index0_tasks_rest_larger_memory_first() {
        let b = AuctionBatch::new()
            .with_lrp(lrp("a", vec![0, 1, 2], 10))
            .with_lrp(lrp("b", vec![1, 0], 20))
            .with_lrp(lrp("a", vec![1], 99)) // duplicate of a/1: dropped
            .with_task(task("t1", 5))
            .with_task(task("t2", 50))
            .with_task(task("t1", 500)); // duplicate: dropped
        let items = ordered_items(&b, false);
        use WorkItem::*;
        assert_eq!(
            items,
            vec![
                Lrp {
                    request: 1,
                    index: 0
                },
                Lrp {
                    request: 0,
                    index: 0
                },
                Task { request: 1 },
                Task { request: 0 },
                Lrp {
                    request: 1,
                    index: 1
                },
                Lrp {
                    request: 0,
                    index: 1
                },
                Lrp {
                    request: 0,
                    index: 2
                },
            ]
        );
        assert_eq!(b.len(), 9);
    }

    #[test]
    fn go_quirk_puts_index0_after_tasks_without_higher_indices() {
        let b = AuctionBatch::new()
            .with_lrp(lrp("a", vec![0], 10))
            .with_task(task("t", 5));
        use WorkItem::*;
        assert_eq!(
            ordered_items(&b, false),
            vec![
                Lrp {
                    request: 0,
                    index: 0
                },
                Task { request: 0 }
            ]
        );
        assert_eq!(
            ordered_items(&b, true),
            vec![
                Task { request: 0 },
                Lrp {
                    request: 0,
                    index: 0
                }
            ]
        );
    }
}
