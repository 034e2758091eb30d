//! [`RateLimitedLogSink`]: a per-instance limit on lines and bytes per second in front
//! of any sink; what goes over is dropped and counted, never waited for.
//!
//! It knows log lines and time, nothing of where the lines came from.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{LogLine, LogSink, LogStream};
use crate::time::{Clock, Timestamp};

/// The end of the notice sent after lines were dropped: `"<n> log lines dropped"`.
pub const DROPPED_NOTICE_SUFFIX: &str = "log lines dropped";

/// How much one instance may log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLimit {
    /// Lines per second; `None`: unlimited.
    pub lines_per_second: Option<u64>,
    /// Message bytes per second; `None`: unlimited.
    pub bytes_per_second: Option<u64>,
}

#[derive(Debug)]
struct Bucket {
    lines: f64,
    bytes: f64,
    last: Timestamp,
    dropped: u64,
    source_type: String,
}

/// Wraps a sink with a token bucket per (source id, instance index): up to one second's
/// worth of lines and bytes may come in a burst, then the rate. Lines over the limit are
/// dropped (the caller never waits); the next line let through is preceded by a stderr
/// notice `"<n> log lines dropped: log rate limit exceeded"`.
pub struct RateLimitedLogSink<S> {
    inner: S,
    limit: LogLimit,
    clock: Arc<dyn Clock>,
    buckets: Mutex<HashMap<(String, i32), Bucket>>,
}

impl<S: fmt::Debug> fmt::Debug for RateLimitedLogSink<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitedLogSink")
            .field("inner", &self.inner)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<S: LogSink> RateLimitedLogSink<S> {
    /// Limits `inner` to `limit` per instance, with time from `clock`.
    pub fn new(inner: S, limit: LogLimit, clock: Arc<dyn Clock>) -> Self {
        RateLimitedLogSink {
            inner,
            limit,
            clock,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The wrapped sink.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Lines dropped for this instance since its last notice.
    pub fn dropped(&self, source_id: &str, instance_index: i32) -> u64 {
        let buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        buckets
            .get(&(source_id.to_string(), instance_index))
            .map_or(0, |b| b.dropped)
    }

    /// Sends the pending "dropped" notices now (instead of before the next line).
    pub fn flush_notices(&self) {
        let now = self.clock.now();
        let notices: Vec<LogLine> = {
            let mut buckets = self
                .buckets
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            buckets
                .iter_mut()
                .filter(|(_, b)| b.dropped > 0)
                .map(|((source_id, index), bucket)| {
                    let n = std::mem::take(&mut bucket.dropped);
                    notice(source_id, &bucket.source_type, *index, now, n)
                })
                .collect()
        };
        for line in notices {
            self.inner.emit(line);
        }
    }
}

fn notice(
    source_id: &str,
    source_type: &str,
    instance_index: i32,
    at: Timestamp,
    dropped: u64,
) -> LogLine {
    LogLine {
        source_id: source_id.to_string(),
        source_type: source_type.to_string(),
        instance_index,
        stream: LogStream::Err,
        timestamp: at,
        message: Bytes::from(format!(
            "{dropped} {DROPPED_NOTICE_SUFFIX}: log rate limit exceeded"
        )),
        tags: Default::default(),
    }
}

impl<S: LogSink> LogSink for RateLimitedLogSink<S> {
    fn emit(&self, line: LogLine) {
        if self.limit.lines_per_second.is_none() && self.limit.bytes_per_second.is_none() {
            self.inner.emit(line);
            return;
        }
        let now = self.clock.now();
        let lines_cap = self.limit.lines_per_second.map(|n| n as f64);
        let bytes_cap = self.limit.bytes_per_second.map(|n| n as f64);
        let size = line.message.len() as f64;
        let pending_notice = {
            let mut buckets = self
                .buckets
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let bucket = buckets
                .entry((line.source_id.clone(), line.instance_index))
                .or_insert_with(|| Bucket {
                    lines: lines_cap.unwrap_or(0.0),
                    bytes: bytes_cap.unwrap_or(0.0),
                    last: now,
                    dropped: 0,
                    source_type: line.source_type.clone(),
                });
            let elapsed = now.since(bucket.last).min(Duration::from_secs(3600));
            let secs = elapsed.as_secs_f64();
            bucket.last = bucket.last.max(now);
            if let Some(cap) = lines_cap {
                bucket.lines = (bucket.lines + secs * cap).min(cap);
            }
            if let Some(cap) = bytes_cap {
                bucket.bytes = (bucket.bytes + secs * cap).min(cap);
            }
            let lines_ok = lines_cap.is_none() || bucket.lines >= 1.0;
            let bytes_ok = bytes_cap.is_none() || bucket.bytes >= size;
            if !(lines_ok && bytes_ok) {
                bucket.dropped += 1;
                return;
            }
            if lines_cap.is_some() {
                bucket.lines -= 1.0;
            }
            if bytes_cap.is_some() {
                bucket.bytes -= size;
            }
            bucket.source_type.clone_from(&line.source_type);
            std::mem::take(&mut bucket.dropped)
        };
        if pending_notice > 0 {
            self.inner.emit(notice(
                &line.source_id,
                &line.source_type,
                line.instance_index,
                now,
                pending_notice,
            ));
        }
        self.inner.emit(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_sink::RingBufferLogSink;
    use crate::time::ManualClock;

    fn line(index: i32, text: &str) -> LogLine {
        LogLine::out("app", "APP/PROC/WEB", index, Timestamp(0), text.to_string())
    }

    fn texts(sink: &RingBufferLogSink) -> Vec<String> {
        sink.lines("app")
            .iter()
            .map(|l| l.text().into_owned())
            .collect()
    }

    #[test]
    fn drops_over_the_line_rate_and_says_how_many() {
        let clock = Arc::new(ManualClock::new(Timestamp(1_000_000_000)));
        let limit = LogLimit {
            lines_per_second: Some(2),
            bytes_per_second: None,
        };
        let sink = RateLimitedLogSink::new(RingBufferLogSink::new(100), limit, clock.clone());
        for i in 0..5 {
            sink.emit(line(0, &i.to_string()));
        }
        assert_eq!(sink.dropped("app", 0), 3);
        // Another instance has its own bucket.
        sink.emit(line(1, "other"));
        assert_eq!(sink.dropped("app", 1), 0);
        clock.advance(Duration::from_millis(500));
        sink.emit(line(0, "5"));
        assert_eq!(
            texts(sink.inner()),
            [
                "0",
                "1",
                "other",
                "3 log lines dropped: log rate limit exceeded",
                "5"
            ]
        );
        let notice = &sink.inner().lines("app")[3];
        assert_eq!(notice.stream, LogStream::Err);
        assert_eq!(notice.instance_index, 0);
    }

    #[test]
    fn byte_limit_and_explicit_flush() {
        let clock = Arc::new(ManualClock::new(Timestamp(0)));
        let limit = LogLimit {
            lines_per_second: None,
            bytes_per_second: Some(10),
        };
        let sink = RateLimitedLogSink::new(RingBufferLogSink::new(100), limit, clock.clone());
        sink.emit(line(0, "12345678"));
        sink.emit(line(0, "123"));
        assert_eq!(sink.dropped("app", 0), 1);
        sink.flush_notices();
        assert_eq!(sink.dropped("app", 0), 0);
        sink.emit(line(0, "12"));
        assert_eq!(
            texts(sink.inner()),
            [
                "12345678",
                "1 log lines dropped: log rate limit exceeded",
                "12"
            ]
        );
        sink.emit(line(0, "1"));
        sink.flush_notices();
        assert_eq!(
            texts(sink.inner()).last().unwrap(),
            "1 log lines dropped: log rate limit exceeded"
        );
        assert_eq!(sink.dropped("app", 0), 0);
    }

    #[test]
    fn unlimited_passes_everything() {
        let clock = Arc::new(ManualClock::new(Timestamp(0)));
        let sink =
            RateLimitedLogSink::new(RingBufferLogSink::new(1000), LogLimit::default(), clock);
        for i in 0..500 {
            sink.emit(line(0, &i.to_string()));
        }
        assert_eq!(sink.inner().lines("app").len(), 500);
    }
}
