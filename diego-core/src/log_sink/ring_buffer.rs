//! [`RingBufferLogSink`]: the last lines of each source id in memory, with live
//! subscription as a `Stream` (what `cf logs --recent` and `cf logs` need).
//!
//! It knows log lines only, nothing of where they came from.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::Stream;
use tokio::sync::watch;

use super::{LogLine, LogSink};

/// A live stream of one source id's lines: first the lines still kept, then new ones as
/// they come. A subscriber that falls more than the buffer's capacity behind skips the
/// lines it missed. It never ends on its own: drop it to stop.
pub type LogSubscription = Pin<Box<dyn Stream<Item = LogLine> + Send + 'static>>;

#[derive(Debug)]
struct SourceState {
    /// Sequence number of `lines[0]`.
    first_seq: u64,
    lines: VecDeque<LogLine>,
}

#[derive(Debug)]
struct Source {
    state: Mutex<SourceState>,
    /// Bumped to the next sequence number on every push.
    version: watch::Sender<u64>,
}

impl Source {
    fn new() -> Self {
        Source {
            state: Mutex::new(SourceState {
                first_seq: 0,
                lines: VecDeque::new(),
            }),
            version: watch::channel(0).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, SourceState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The line at sequence `seq` (or the oldest kept after it) and the next sequence.
    fn read_at(&self, seq: u64) -> Option<(LogLine, u64)> {
        let state = self.lock();
        let seq = seq.max(state.first_seq);
        let index = usize::try_from(seq - state.first_seq).ok()?;
        state.lines.get(index).map(|line| (line.clone(), seq + 1))
    }
}

/// Keeps the last `capacity` lines of every source id and serves them to subscribers.
///
/// ```
/// use diego_core::log_sink::{LogLine, LogSink, RingBufferLogSink};
/// use diego_core::Timestamp;
/// use futures::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let sink = RingBufferLogSink::new(100);
/// sink.emit(LogLine::out("app-guid", "APP/PROC/WEB", 0, Timestamp(1), "booting"));
/// let mut live = sink.subscribe("app-guid");
/// sink.emit(LogLine::out("app-guid", "APP/PROC/WEB", 0, Timestamp(2), "ready"));
/// assert_eq!(live.next().await.unwrap().text(), "booting");
/// assert_eq!(live.next().await.unwrap().text(), "ready");
/// # }
/// ```
#[derive(Debug)]
pub struct RingBufferLogSink {
    capacity: usize,
    sources: Mutex<HashMap<String, Arc<Source>>>,
}

impl RingBufferLogSink {
    /// A sink keeping up to `capacity` lines per source id (at least 1).
    pub fn new(capacity: usize) -> Self {
        RingBufferLogSink {
            capacity: capacity.max(1),
            sources: Mutex::new(HashMap::new()),
        }
    }

    fn source(&self, source_id: &str) -> Arc<Source> {
        let mut sources = self
            .sources
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(source) = sources.get(source_id) {
            return Arc::clone(source);
        }
        let source = Arc::new(Source::new());
        sources.insert(source_id.to_string(), Arc::clone(&source));
        source
    }

    /// The lines kept for `source_id`, oldest first.
    pub fn lines(&self, source_id: &str) -> Vec<LogLine> {
        let source = self.source(source_id);
        let state = source.lock();
        state.lines.iter().cloned().collect()
    }

    /// The source ids with lines kept.
    pub fn source_ids(&self) -> Vec<String> {
        let sources = self
            .sources
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut ids: Vec<String> = sources
            .iter()
            .filter(|(_, s)| !s.lock().lines.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Forgets the lines of `source_id` (live subscribers keep following new lines).
    pub fn clear(&self, source_id: &str) {
        let source = self.source(source_id);
        let mut state = source.lock();
        state.first_seq += state.lines.len() as u64;
        state.lines.clear();
    }

    /// The lines of `source_id` kept now, then live ones (see [`LogSubscription`]).
    pub fn subscribe(&self, source_id: &str) -> LogSubscription {
        let source = self.source(source_id);
        let rx = source.version.subscribe();
        let start = source.lock().first_seq;
        Box::pin(futures::stream::unfold(
            (source, start, rx),
            |(source, seq, mut rx)| async move {
                loop {
                    rx.borrow_and_update();
                    if let Some((line, next)) = source.read_at(seq) {
                        return Some((line, (source, next, rx)));
                    }
                    if rx.changed().await.is_err() {
                        // The sender lives in `source`, which this stream holds.
                        return None;
                    }
                }
            },
        ))
    }
}

impl LogSink for RingBufferLogSink {
    fn emit(&self, line: LogLine) {
        let source = self.source(&line.source_id);
        let next = {
            let mut state = source.lock();
            state.lines.push_back(line);
            while state.lines.len() > self.capacity {
                state.lines.pop_front();
                state.first_seq += 1;
            }
            state.first_seq + state.lines.len() as u64
        };
        source.version.send_replace(next);
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::time::Timestamp;

    fn line(source: &str, text: &str) -> LogLine {
        LogLine::out(source, "APP/PROC/WEB", 0, Timestamp(0), text.to_string())
    }

    #[test]
    fn keeps_the_last_lines_per_source() {
        let sink = RingBufferLogSink::new(2);
        for text in ["a", "b", "c"] {
            sink.emit(line("one", text));
        }
        sink.emit(line("two", "x"));
        let texts: Vec<String> = sink
            .lines("one")
            .iter()
            .map(|l| l.text().into_owned())
            .collect();
        assert_eq!(texts, ["b", "c"]);
        assert_eq!(sink.lines("two").len(), 1);
        assert_eq!(sink.source_ids(), ["one", "two"]);
        sink.clear("one");
        assert!(sink.lines("one").is_empty());
    }

    #[tokio::test]
    async fn subscribers_replay_then_follow_in_order() {
        let sink = Arc::new(RingBufferLogSink::new(100));
        sink.emit(line("app", "0"));
        let live = sink.subscribe("app");
        let other = sink.subscribe("other");
        let writer = Arc::clone(&sink);
        let task = tokio::spawn(async move {
            for i in 1..50 {
                writer.emit(line("app", &i.to_string()));
                writer.emit(line("noise", "n"));
                tokio::task::yield_now().await;
            }
        });
        let got: Vec<String> = live.take(50).map(|l| l.text().into_owned()).collect().await;
        let want: Vec<String> = (0..50).map(|i| i.to_string()).collect();
        assert_eq!(got, want);
        task.await.unwrap();
        drop(other);
    }

    #[tokio::test]
    async fn slow_subscribers_skip_what_was_dropped() {
        let sink = RingBufferLogSink::new(3);
        let mut live = sink.subscribe("app");
        for i in 0..10 {
            sink.emit(line("app", &i.to_string()));
        }
        assert_eq!(live.next().await.unwrap().text(), "7");
        assert_eq!(live.next().await.unwrap().text(), "8");
        assert_eq!(live.next().await.unwrap().text(), "9");
    }
}
