//! [`StdoutLogSink`]: cf-style prefixed lines on standard output (or any writer):
//! `2026-11-24T10:00:00Z [APP/PROC/WEB/0] OUT hello`.
//!
//! It knows log lines and their text form, nothing of where the lines came from.

use std::fmt;
use std::io::Write;
use std::sync::Mutex;

use super::{LogLine, LogSink};
use crate::time::Timestamp;

/// Writes each line as `<RFC 3339 UTC time> [<source type>/<index>] <OUT|ERR> <message>`.
///
/// Writes go to a buffered writer under a short lock; a failing writer drops the line
/// (logging must not fail a container).
pub struct StdoutLogSink {
    writer: Mutex<Box<dyn Write + Send>>,
}

impl fmt::Debug for StdoutLogSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdoutLogSink").finish_non_exhaustive()
    }
}

impl Default for StdoutLogSink {
    fn default() -> Self {
        StdoutLogSink::new()
    }
}

impl StdoutLogSink {
    /// A sink writing to the process's standard output.
    pub fn new() -> Self {
        StdoutLogSink::to_writer(Box::new(std::io::stdout()))
    }

    /// A sink writing to `writer` (a file, a pipe, a buffer in tests).
    pub fn to_writer(writer: Box<dyn Write + Send>) -> Self {
        StdoutLogSink {
            writer: Mutex::new(writer),
        }
    }
}

impl LogSink for StdoutLogSink {
    fn emit(&self, line: LogLine) {
        let text = format_line(&line);
        let mut writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // A broken writer loses the line; the container goes on.
        let _ = writeln!(writer, "{text}").and_then(|()| writer.flush());
    }
}

/// The cf-style text of a line, without a newline:
/// `2026-11-24T10:00:00Z [APP/PROC/WEB/0] OUT hello`.
pub fn format_line(line: &LogLine) -> String {
    format!(
        "{} [{}/{}] {} {}",
        format_rfc3339(line.timestamp),
        line.source_type,
        line.instance_index,
        line.stream,
        line.text()
    )
}

/// A timestamp as RFC 3339 in UTC with second precision: `2026-11-24T10:00:00Z`.
pub fn format_rfc3339(timestamp: Timestamp) -> String {
    let nanos = timestamp.unix_nanos();
    let secs = nanos.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Year, month, day of a count of days since 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    // 2026-11-24T10:00:00Z
    const T: i64 = 1_795_514_400;

    #[test]
    fn timestamps_format_as_rfc3339_utc() {
        assert_eq!(format_rfc3339(Timestamp(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(Timestamp(T * 1_000_000_000 + 999_999_999)),
            "2026-11-24T10:00:00Z"
        );
        assert_eq!(
            format_rfc3339(Timestamp(951_825_600 * 1_000_000_000)),
            "2000-02-29T12:00:00Z"
        );
        assert_eq!(
            format_rfc3339(Timestamp(-1_000_000_000)),
            "1969-12-31T23:59:59Z"
        );
    }

    #[test]
    fn lines_get_cf_prefixes() {
        let buf = Shared::default();
        let sink = StdoutLogSink::to_writer(Box::new(buf.clone()));
        let at = Timestamp(T * 1_000_000_000);
        sink.emit(LogLine::out("guid", "APP/PROC/WEB", 0, at, "hello"));
        sink.emit(LogLine::err("guid", "CELL", 3, at, "oops"));
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "2026-11-24T10:00:00Z [APP/PROC/WEB/0] OUT hello\n\
             2026-11-24T10:00:00Z [CELL/3] ERR oops\n"
        );
    }
}
