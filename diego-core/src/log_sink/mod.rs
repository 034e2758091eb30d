//! Log lines of containers and cells, and where they go: the [`LogSink`] trait.
//!
//! A [`LogLine`] is what `cf logs` shows: who it is about (source id, the log guid), which
//! part said it (source type `APP/PROC/WEB`, `CELL`, `STG`, `HEALTH`), which instance,
//! which stream, when, and the bytes. Emitting never blocks the caller: a container must
//! not stall because its logs are slow.
//!
//! Defaults, one per file: [`TracingLogSink`] (lines as `tracing` events),
//! [`RingBufferLogSink`] (the last lines per source id, with live subscription),
//! [`StdoutLogSink`] (cf-style prefixed lines on a writer) and [`RateLimitedLogSink`] (a
//! per-source limit wrapping any sink). This module knows log lines only: not Tasks, LRPs,
//! containers or how lines are produced.

mod rate_limit;
mod ring_buffer;
mod stdout;
mod tracing_sink;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

pub use self::rate_limit::{LogLimit, RateLimitedLogSink, DROPPED_NOTICE_SUFFIX};
pub use self::ring_buffer::{LogSubscription, RingBufferLogSink};
pub use self::stdout::{format_line, format_rfc3339, StdoutLogSink};
pub use self::tracing_sink::TracingLogSink;

/// Which output stream a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// Standard output (`OUT`).
    Out,
    /// Standard error (`ERR`).
    Err,
}

impl LogStream {
    /// `OUT` or `ERR`, as cf prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Out => "OUT",
            LogStream::Err => "ERR",
        }
    }
}

impl fmt::Display for LogStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The tags a line or metric carries (Diego's envelope tags: the workload's resolved
/// metric tags), by name.
pub type LogTags = std::collections::BTreeMap<String, String>;

/// One log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// Whose line it is: the log guid of the app or task.
    pub source_id: String,
    /// Which part wrote it: `APP/PROC/WEB`, `CELL`, `STG`, `HEALTH`, ...
    pub source_type: String,
    /// The instance index (0 for tasks and cell-wide lines).
    pub instance_index: i32,
    /// Standard output or standard error.
    pub stream: LogStream,
    /// When it was written.
    pub timestamp: Timestamp,
    /// The line itself, without its trailing newline.
    pub message: Bytes,
    /// The container's metric tags when the line was written (shared, cheap to clone;
    /// empty for lines with no workload tags).
    pub tags: Arc<LogTags>,
}

impl LogLine {
    /// A line on stdout.
    pub fn out(
        source_id: impl Into<String>,
        source_type: impl Into<String>,
        instance_index: i32,
        timestamp: Timestamp,
        message: impl Into<Bytes>,
    ) -> Self {
        LogLine {
            source_id: source_id.into(),
            source_type: source_type.into(),
            instance_index,
            stream: LogStream::Out,
            timestamp,
            message: message.into(),
            tags: Arc::default(),
        }
    }

    /// The same line carrying `tags`.
    #[must_use]
    pub fn with_tags(mut self, tags: Arc<LogTags>) -> Self {
        self.tags = tags;
        self
    }

    /// A line on stderr.
    pub fn err(
        source_id: impl Into<String>,
        source_type: impl Into<String>,
        instance_index: i32,
        timestamp: Timestamp,
        message: impl Into<Bytes>,
    ) -> Self {
        LogLine {
            stream: LogStream::Err,
            ..LogLine::out(source_id, source_type, instance_index, timestamp, message)
        }
    }

    /// The message as text (invalid UTF-8 replaced).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.message)
    }
}

/// Where log lines go. Implementations must return quickly and never block on I/O a
/// container would wait for: buffer, drop or hand off instead.
pub trait LogSink: Send + Sync + fmt::Debug {
    /// Takes one line.
    fn emit(&self, line: LogLine);
}

impl<S: LogSink + ?Sized> LogSink for Arc<S> {
    fn emit(&self, line: LogLine) {
        (**self).emit(line)
    }
}

impl<S: LogSink + ?Sized> LogSink for Box<S> {
    fn emit(&self, line: LogLine) {
        (**self).emit(line)
    }
}

/// A sink that forwards every line to several sinks, in order.
#[derive(Debug, Default, Clone)]
pub struct FanOutLogSink {
    sinks: Vec<Arc<dyn LogSink>>,
}

impl FanOutLogSink {
    /// A sink forwarding to `sinks`.
    pub fn new(sinks: Vec<Arc<dyn LogSink>>) -> Self {
        FanOutLogSink { sinks }
    }
}

impl LogSink for FanOutLogSink {
    fn emit(&self, line: LogLine) {
        if let Some((last, rest)) = self.sinks.split_last() {
            for sink in rest {
                sink.emit(line.clone());
            }
            last.emit(line);
        }
    }
}

/// A sink that drops every line.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullLogSink;

impl LogSink for NullLogSink {
    fn emit(&self, _line: LogLine) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fan_out_reaches_every_sink_in_order() {
        let a = Arc::new(RingBufferLogSink::new(8));
        let b = Arc::new(RingBufferLogSink::new(8));
        let fan = FanOutLogSink::new(vec![a.clone(), b.clone(), Arc::new(NullLogSink)]);
        fan.emit(LogLine::out("app", "CELL", 0, Timestamp(1), "one"));
        fan.emit(LogLine::err("app", "CELL", 0, Timestamp(2), "two"));
        for sink in [a, b] {
            let lines = sink.lines("app");
            assert_eq!(lines.len(), 2);
            assert_eq!(lines[0].text(), "one");
            assert_eq!(lines[1].stream, LogStream::Err);
        }
    }
}
