//! Durations written the way Go prints them (`500ms`, `2s`, `1m0s`, `1h2m3.5s`), because
//! Diego's messages quote them and clients match on those texts.
//!
//! It knows durations only.

use std::time::Duration;

/// Formats `d` as Go's `time.Duration.String()` does.
///
/// ```
/// use std::time::Duration;
/// use diego_executor::go_duration;
///
/// assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
/// assert_eq!(go_duration(Duration::from_secs(5)), "5s");
/// assert_eq!(go_duration(Duration::from_secs(60)), "1m0s");
/// assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
/// ```
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", fraction(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", fraction(nanos, 1_000_000));
    }
    let hours = nanos / 3_600_000_000_000;
    let rem = nanos % 3_600_000_000_000;
    let minutes = rem / 60_000_000_000;
    let secs = rem % 60_000_000_000;
    let seconds = format!("{}s", fraction(secs, 1_000_000_000));
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}")
    } else {
        seconds
    }
}

/// `value / unit` with the fraction's trailing zeros removed (`1.5`, `2`).
fn fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let frac = value % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A duration rounded to the nearest millisecond (what Diego's monitor messages show).
pub(crate) fn round_to_millis(d: Duration) -> Duration {
    let millis = (d.as_nanos() + 500_000) / 1_000_000;
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

/// A byte count as Diego's `bytefmt` writes it: `512B`, `1K`, `1.5M`, `2G`.
pub fn byte_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (1 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
        (1, "B"),
    ];
    for (size, unit) in UNITS {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            let text = format!("{value:.1}");
            let text = text.strip_suffix(".0").unwrap_or(&text);
            return format!("{text}{unit}");
        }
    }
    "0B".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        let cases = [
            (Duration::from_nanos(0), "0s"),
            (Duration::from_nanos(15), "15ns"),
            (Duration::from_micros(3), "3µs"),
            (Duration::from_millis(1), "1ms"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_secs(2), "2s"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_millis(2500), "2.5s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_millis(3_723_500), "1h2m3.5s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn rounding_and_byte_sizes() {
        assert_eq!(
            round_to_millis(Duration::from_micros(10_499)),
            Duration::from_millis(10)
        );
        assert_eq!(
            round_to_millis(Duration::from_micros(10_500)),
            Duration::from_millis(11)
        );
        assert_eq!(byte_size(0), "0B");
        assert_eq!(byte_size(512), "512B");
        assert_eq!(byte_size(1024), "1K");
        assert_eq!(byte_size(1536), "1.5K");
        assert_eq!(byte_size(5 << 20), "5M");
        assert_eq!(byte_size(3 << 30), "3G");
    }
}
