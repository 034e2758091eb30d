//! Events: what changed in the BBS, as two streams (LRP and task).
//!
//! Events are emitted only after their write succeeded, carry a sequence number, and for
//! one instance arrive in write order. A subscriber that falls behind receives an explicit
//! [`EventItem::Lagged`] with the number of events it missed (ours: Diego drops it
//! silently), and may resynchronise by listing.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::models::actual_lrp::{ActualLrp, ActualLrpInstanceKey, ActualLrpKey};
use crate::models::desired_lrp::DesiredLrp;
use crate::models::guid::CellId;
use crate::models::task::Task;
use crate::time::Timestamp;

/// Events of the LRP stream.
// Events travel inside an `Arc`; boxing the large variants would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum LrpEvent {
    /// A DesiredLRP was created.
    DesiredLrpCreated(DesiredLrp),
    /// A DesiredLRP was updated.
    DesiredLrpChanged {
        /// Before the update.
        before: DesiredLrp,
        /// After the update.
        after: DesiredLrp,
    },
    /// A DesiredLRP was deleted.
    DesiredLrpRemoved(DesiredLrp),
    /// An instance (a new instance guid, or a new row) appeared.
    ActualLrpInstanceCreated(Arc<ActualLrp>),
    /// An instance changed.
    ActualLrpInstanceChanged {
        /// Before the change.
        before: Arc<ActualLrp>,
        /// After the change.
        after: Arc<ActualLrp>,
    },
    /// An instance went away.
    ActualLrpInstanceRemoved(Arc<ActualLrp>),
    /// An instance crashed.
    ActualLrpCrashed(ActualLrpCrashed),
}

/// The details of a crash (the reason is not truncated here).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActualLrpCrashed {
    /// Which instance.
    pub key: ActualLrpKey,
    /// The attempt that crashed.
    pub instance_key: ActualLrpInstanceKey,
    /// The crash count after this crash.
    pub crash_count: i32,
    /// Why it crashed, in full.
    pub crash_reason: String,
    /// When it crashed.
    pub since: Timestamp,
}

impl LrpEvent {
    /// The wire name of the event (`desired_lrp_created`, `actual_lrp_crashed`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            LrpEvent::DesiredLrpCreated(_) => "desired_lrp_created",
            LrpEvent::DesiredLrpChanged { .. } => "desired_lrp_changed",
            LrpEvent::DesiredLrpRemoved(_) => "desired_lrp_removed",
            LrpEvent::ActualLrpInstanceCreated(_) => "actual_lrp_instance_created",
            LrpEvent::ActualLrpInstanceChanged { .. } => "actual_lrp_instance_changed",
            LrpEvent::ActualLrpInstanceRemoved(_) => "actual_lrp_instance_removed",
            LrpEvent::ActualLrpCrashed(_) => "actual_lrp_crashed",
        }
    }

    /// Whether the event concerns `cell`: actual-LRP events whose row (before or after)
    /// is on that cell. Desired-LRP events never match a cell filter.
    pub fn concerns_cell(&self, cell: &CellId) -> bool {
        let on = |lrp: &ActualLrp| lrp.cell_id() == Some(cell);
        match self {
            LrpEvent::ActualLrpInstanceCreated(a) | LrpEvent::ActualLrpInstanceRemoved(a) => on(a),
            LrpEvent::ActualLrpInstanceChanged { before, after } => on(before) || on(after),
            LrpEvent::ActualLrpCrashed(c) => &c.instance_key.cell_id == cell,
            _ => false,
        }
    }
}

/// Events of the task stream.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum TaskEvent {
    /// A Task was desired.
    TaskCreated(Task),
    /// A Task changed.
    TaskChanged {
        /// Before the change.
        before: Task,
        /// After the change.
        after: Task,
    },
    /// A Task was deleted.
    TaskRemoved(Task),
}

impl TaskEvent {
    /// The wire name of the event (`task_created`, `task_changed`, `task_removed`).
    pub fn name(&self) -> &'static str {
        match self {
            TaskEvent::TaskCreated(_) => "task_created",
            TaskEvent::TaskChanged { .. } => "task_changed",
            TaskEvent::TaskRemoved(_) => "task_removed",
        }
    }
}

/// An event with its sequence number (increasing across both streams of one BBS).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sequenced<E> {
    /// The sequence number.
    pub seq: u64,
    /// The event.
    pub event: E,
}

/// One item of an event stream.
#[derive(Clone, Debug, PartialEq)]
pub enum EventItem<E> {
    /// The next event.
    Event(Arc<Sequenced<E>>),
    /// The subscriber fell behind and `missed` events were dropped for it; list the
    /// current state to resynchronise.
    Lagged {
        /// How many events were lost.
        missed: u64,
    },
}

/// A stream of events.
pub type EventStream<E> = Pin<Box<dyn Stream<Item = EventItem<E>> + Send>>;

/// What a subscriber that falls behind gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LagPolicy {
    /// An [`EventItem::Lagged`] item, then the stream goes on (ours).
    #[default]
    Signal,
    /// The stream ends (Diego's behaviour, minus the silence: the end is logged).
    Disconnect,
}

/// Fans events out to subscribers; bounded per subscriber.
#[derive(Debug)]
pub struct EventHub {
    lrp: broadcast::Sender<Arc<Sequenced<LrpEvent>>>,
    task: broadcast::Sender<Arc<Sequenced<TaskEvent>>>,
    seq: AtomicU64,
    lag_policy: LagPolicy,
}

impl EventHub {
    /// A hub whose subscribers may fall `capacity` events behind (Diego: 1,024).
    pub fn new(capacity: usize, lag_policy: LagPolicy) -> Self {
        let capacity = capacity.max(1);
        EventHub {
            lrp: broadcast::channel(capacity).0,
            task: broadcast::channel(capacity).0,
            seq: AtomicU64::new(0),
            lag_policy,
        }
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Emits LRP events (in order). Without subscribers this costs almost nothing.
    pub fn emit_lrp(&self, events: impl IntoIterator<Item = LrpEvent>) {
        if self.lrp.receiver_count() == 0 {
            return;
        }
        for event in events {
            let seq = self.next_seq();
            // An error only means every subscriber left meanwhile.
            let _ = self.lrp.send(Arc::new(Sequenced { seq, event }));
        }
    }

    /// Emits task events (in order).
    pub fn emit_task(&self, events: impl IntoIterator<Item = TaskEvent>) {
        if self.task.receiver_count() == 0 {
            return;
        }
        for event in events {
            let seq = self.next_seq();
            let _ = self.task.send(Arc::new(Sequenced { seq, event }));
        }
    }

    /// Subscribes to the LRP stream; with `cell`, actual-LRP events of other cells are
    /// left out (desired-LRP events are always left out then, as in Diego).
    pub fn subscribe_lrp(&self, cell: Option<CellId>) -> EventStream<LrpEvent> {
        let rx = self.lrp.subscribe();
        let filter = move |e: &LrpEvent| cell.as_ref().is_none_or(|c| e.concerns_cell(c));
        stream_of(rx, self.lag_policy, filter)
    }

    /// Subscribes to the task stream.
    pub fn subscribe_task(&self) -> EventStream<TaskEvent> {
        stream_of(self.task.subscribe(), self.lag_policy, |_| true)
    }
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub::new(1_024, LagPolicy::Signal)
    }
}

/// Times a subscriber with nothing to read yields to other tasks before it parks.
const IDLE_YIELDS: u32 = 2;

fn stream_of<E, F>(
    rx: broadcast::Receiver<Arc<Sequenced<E>>>,
    lag_policy: LagPolicy,
    filter: F,
) -> EventStream<E>
where
    E: Send + Sync + 'static,
    F: Fn(&E) -> bool + Send + 'static,
{
    let stream = futures::stream::unfold(
        (rx, filter, false),
        move |(mut rx, filter, done)| async move {
            if done {
                return None;
            }
            let mut idle_yields = 0;
            loop {
                // Drain what is already there; when nothing is, let the writers run a
                // little before parking, so a busy stream is read in batches instead of
                // costing a cross-thread wake-up per event.
                let next = match rx.try_recv() {
                    Ok(ev) => Ok(ev),
                    Err(TryRecvError::Empty) if idle_yields < IDLE_YIELDS => {
                        idle_yields += 1;
                        tokio::task::yield_now().await;
                        continue;
                    }
                    Err(TryRecvError::Empty) => rx.recv().await,
                    Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                    Err(TryRecvError::Closed) => Err(RecvError::Closed),
                };
                match next {
                    Ok(ev) => {
                        idle_yields = 0;
                        if filter(&ev.event) {
                            return Some((EventItem::Event(ev), (rx, filter, false)));
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        let end = lag_policy == LagPolicy::Disconnect;
                        if end {
                            tracing::warn!(
                                missed,
                                "event subscriber fell behind; disconnecting it"
                            );
                        }
                        return Some((EventItem::Lagged { missed }, (rx, filter, end)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    Box::pin(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::actual_lrp::ActualLrpKey;
    use futures::StreamExt;

    fn row(cell: Option<&str>) -> ActualLrp {
        let mut a = ActualLrp::unclaimed(ActualLrpKey::new("web", 0, "apps"), Timestamp(1));
        a.instance_key = cell.map(|c| ActualLrpInstanceKey::new("i", c));
        a
    }

    #[tokio::test]
    async fn subscribers_get_events_in_order_with_sequence_numbers() {
        let hub = EventHub::default();
        let mut s = hub.subscribe_lrp(None);
        hub.emit_lrp([
            LrpEvent::ActualLrpInstanceCreated(Arc::new(row(None))),
            LrpEvent::ActualLrpInstanceRemoved(Arc::new(row(None))),
        ]);
        let EventItem::Event(a) = s.next().await.unwrap() else {
            panic!()
        };
        let EventItem::Event(b) = s.next().await.unwrap() else {
            panic!()
        };
        assert_eq!(a.event.name(), "actual_lrp_instance_created");
        assert_eq!(b.event.name(), "actual_lrp_instance_removed");
        assert!(b.seq > a.seq);
    }

    #[tokio::test]
    async fn the_cell_filter_applies_to_actual_lrp_events_only() {
        let hub = EventHub::default();
        let mut s = hub.subscribe_lrp(Some(CellId::new("cell-1")));
        hub.emit_lrp([
            LrpEvent::DesiredLrpRemoved(DesiredLrp::default()),
            LrpEvent::ActualLrpInstanceCreated(Arc::new(row(Some("cell-2")))),
            LrpEvent::ActualLrpInstanceChanged {
                before: Arc::new(row(Some("cell-1"))),
                after: Arc::new(row(None)),
            },
        ]);
        let EventItem::Event(e) = s.next().await.unwrap() else {
            panic!()
        };
        assert_eq!(e.event.name(), "actual_lrp_instance_changed");
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_what_it_missed() {
        let hub = EventHub::new(4, LagPolicy::Signal);
        let mut s = hub.subscribe_task();
        for _ in 0..10 {
            hub.emit_task([TaskEvent::TaskRemoved(
                crate::models::task::Task::from_request(
                    crate::models::task::DesireTaskRequest {
                        task_guid: "t".into(),
                        domain: "d".into(),
                        task_definition: Default::default(),
                    },
                    Timestamp(0),
                ),
            )]);
        }
        assert_eq!(s.next().await, Some(EventItem::Lagged { missed: 6 }));
        let EventItem::Event(e) = s.next().await.unwrap() else {
            panic!()
        };
        assert_eq!(e.seq, 7);
    }

    #[tokio::test]
    async fn disconnect_policy_ends_the_stream() {
        let hub = EventHub::new(2, LagPolicy::Disconnect);
        let mut s = hub.subscribe_lrp(None);
        for _ in 0..5 {
            hub.emit_lrp([LrpEvent::ActualLrpInstanceCreated(Arc::new(row(None)))]);
        }
        assert_eq!(s.next().await, Some(EventItem::Lagged { missed: 3 }));
        assert_eq!(s.next().await, None);
    }

    #[test]
    fn wire_names() {
        let e = LrpEvent::ActualLrpInstanceCreated(Arc::new(row(None)));
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["type"], "actual_lrp_instance_created");
        assert_eq!(e.name(), "actual_lrp_instance_created");
    }
}
