//! [`TracingLogSink`]: log lines as `tracing` events (target `diego::logs`).
//!
//! It knows log lines and `tracing`, nothing of where the lines came from.

use super::{LogLine, LogSink, LogStream};

/// Emits every line as a `tracing` event with target `diego::logs`: stdout lines at
/// INFO, stderr lines at WARN, with the source id, type and instance as fields. The
/// library never installs a subscriber; without one the lines go nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingLogSink;

impl TracingLogSink {
    /// A tracing sink.
    pub fn new() -> Self {
        TracingLogSink
    }
}

impl LogSink for TracingLogSink {
    fn emit(&self, line: LogLine) {
        let message = line.text();
        match line.stream {
            LogStream::Out => tracing::info!(
                target: "diego::logs",
                source_id = %line.source_id,
                source_type = %line.source_type,
                instance = line.instance_index,
                timestamp = line.timestamp.unix_nanos(),
                "{message}"
            ),
            LogStream::Err => tracing::warn!(
                target: "diego::logs",
                source_id = %line.source_id,
                source_type = %line.source_type,
                instance = line.instance_index,
                timestamp = line.timestamp.unix_nanos(),
                "{message}"
            ),
        }
    }
}
