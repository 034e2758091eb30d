//! [`LogStreamer`]: turns a container's process output and the executor's own messages
//! into labelled [`LogLine`]s for a [`LogSink`].
//!
//! It knows log lines and byte streams; it must not know Tasks or LRPs.

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::{Bytes, BytesMut};
use diego_core::{Clock, LogLine, LogSink, LogStream, LogTags};
use diego_garden::ByteStream;
use futures::StreamExt;

/// The source type used when neither the action nor the container names one.
pub const DEFAULT_SOURCE_TYPE: &str = "LOG";

/// Longest line forwarded as one; longer output is cut into pieces of this size.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The metric tags of one container, shared by everything that writes its lines and
/// metrics; replacing them reaches every later line at once. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct SharedTags(Arc<ArcSwap<LogTags>>);

impl SharedTags {
    /// Tags starting as `tags`.
    pub fn new(tags: LogTags) -> Self {
        SharedTags(Arc::new(ArcSwap::from_pointee(tags)))
    }

    /// The tags now.
    pub fn get(&self) -> Arc<LogTags> {
        self.0.load_full()
    }

    /// Replaces the tags.
    pub fn set(&self, tags: LogTags) {
        self.0.store(Arc::new(tags));
    }
}

/// Writes lines for one container under one source type.
#[derive(Clone, Debug)]
pub struct LogStreamer {
    sink: Arc<dyn LogSink>,
    clock: Arc<dyn Clock>,
    source_id: String,
    source_type: String,
    index: i32,
    tags: SharedTags,
}

impl LogStreamer {
    /// A streamer labelling lines with `source_id`, `source_type` (empty: `LOG`) and
    /// `index`.
    pub fn new(
        sink: Arc<dyn LogSink>,
        clock: Arc<dyn Clock>,
        source_id: impl Into<String>,
        source_type: impl Into<String>,
        index: i32,
    ) -> Self {
        let source_type = source_type.into();
        LogStreamer {
            sink,
            clock,
            source_id: source_id.into(),
            source_type: if source_type.is_empty() {
                DEFAULT_SOURCE_TYPE.to_string()
            } else {
                source_type
            },
            index,
            tags: SharedTags::default(),
        }
    }

    /// The same streamer, its lines carrying `tags` (as they are when each line is
    /// written).
    #[must_use]
    pub fn with_tags(mut self, tags: SharedTags) -> LogStreamer {
        self.tags = tags;
        self
    }

    /// The same streamer with another source type (unchanged when `source_type` is
    /// empty).
    pub fn with_source(&self, source_type: &str) -> LogStreamer {
        let mut out = self.clone();
        if !source_type.is_empty() {
            out.source_type = source_type.to_string();
        }
        out
    }

    /// The source type of its lines.
    pub fn source_type(&self) -> &str {
        &self.source_type
    }

    fn line(&self, stream: LogStream, message: Bytes) -> LogLine {
        LogLine {
            source_id: self.source_id.clone(),
            source_type: self.source_type.clone(),
            instance_index: self.index,
            stream,
            timestamp: self.clock.now(),
            message,
            tags: self.tags.get(),
        }
    }

    /// Writes a message to stdout.
    pub fn out(&self, message: impl Into<String>) {
        let message = Bytes::from(message.into());
        self.sink.emit(self.line(LogStream::Out, message));
    }

    /// Writes a message to stderr.
    pub fn err(&self, message: impl Into<String>) {
        let message = Bytes::from(message.into());
        self.sink.emit(self.line(LogStream::Err, message));
    }

    /// Forwards `output` line by line until it ends (a last unterminated line included).
    pub async fn pump(&self, stream: LogStream, mut output: ByteStream) {
        let mut pending = BytesMut::new();
        while let Some(chunk) = output.next().await {
            let Ok(chunk) = chunk else { break };
            pending.extend_from_slice(&chunk);
            while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
                let mut line = pending.split_to(pos + 1);
                line.truncate(pos);
                self.emit_line(stream, line.freeze());
            }
            while pending.len() >= MAX_LINE_BYTES {
                let piece = pending.split_to(MAX_LINE_BYTES);
                self.emit_line(stream, piece.freeze());
            }
        }
        if !pending.is_empty() {
            self.emit_line(stream, pending.freeze());
        }
    }

    fn emit_line(&self, stream: LogStream, mut line: Bytes) {
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        self.sink.emit(self.line(stream, line));
    }
}

#[cfg(test)]
mod tests {
    use diego_core::log_sink::RingBufferLogSink;
    use diego_core::ManualClock;

    use super::*;

    #[tokio::test]
    async fn output_is_split_into_lines() {
        let sink = Arc::new(RingBufferLogSink::new(100));
        let clock = Arc::new(ManualClock::default());
        let streamer = LogStreamer::new(sink.clone(), clock, "guid", "", 2);
        assert_eq!(streamer.source_type(), "LOG");
        let chunks: Vec<std::io::Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"hel")),
            Ok(Bytes::from_static(b"lo\nwor")),
            Ok(Bytes::from_static(b"ld\r\n\nlast")),
        ];
        streamer
            .with_source("APP/PROC/WEB")
            .pump(LogStream::Err, Box::pin(futures::stream::iter(chunks)))
            .await;
        let lines = sink.lines("guid");
        let texts: Vec<String> = lines.iter().map(|l| l.text().into_owned()).collect();
        assert_eq!(texts, ["hello", "world", "", "last"]);
        assert!(lines
            .iter()
            .all(|l| l.source_type == "APP/PROC/WEB" && l.stream == LogStream::Err));
        assert!(lines.iter().all(|l| l.instance_index == 2));
    }

    #[test]
    fn lines_carry_the_tags_of_the_moment() {
        let sink = Arc::new(RingBufferLogSink::new(100));
        let clock = Arc::new(ManualClock::default());
        let tags = SharedTags::new([("app".to_string(), "one".to_string())].into());
        let streamer = LogStreamer::new(sink.clone(), clock, "guid", "", 0).with_tags(tags.clone());
        streamer.out("before");
        tags.set([("app".to_string(), "two".to_string())].into());
        streamer.out("after");
        let lines = sink.lines("guid");
        assert_eq!(lines[0].tags["app"], "one");
        assert_eq!(lines[1].tags["app"], "two");
        let untagged =
            LogStreamer::new(sink.clone(), Arc::new(ManualClock::default()), "g2", "", 0);
        untagged.out("x");
        assert!(sink.lines("g2")[0].tags.is_empty());
    }
}
