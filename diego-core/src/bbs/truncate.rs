//! Truncation of strings written by cells (crash reasons, failure, rejection and
//! placement reasons), as Diego stores them.

/// Strings of this many bytes or more are truncated.
pub const MAX_CELL_STRING_BYTES: usize = 1_024;
/// How many bytes of a truncated string are kept (before the marker).
pub const TRUNCATED_KEEP_BYTES: usize = 1_013;
/// Appended to a truncated string.
pub const TRUNCATED_MARKER: &str = "(truncated)";

/// `s` as Diego stores it: strings of 1,024 bytes or more become their first 1,013 bytes
/// plus `"(truncated)"`, cut on a UTF-8 boundary (ours: Diego may split a character).
pub fn truncate_cell_string(s: &str) -> String {
    if s.len() < MAX_CELL_STRING_BYTES {
        return s.to_owned();
    }
    let mut cut = TRUNCATED_KEEP_BYTES;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut + TRUNCATED_MARKER.len());
    out.push_str(&s[..cut]);
    out.push_str(TRUNCATED_MARKER);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_are_kept() {
        let s = "x".repeat(1_023);
        assert_eq!(truncate_cell_string(&s), s);
    }

    #[test]
    fn long_strings_are_cut_with_a_marker() {
        let t = truncate_cell_string(&"x".repeat(1_024));
        assert_eq!(t.len(), 1_013 + 11);
        assert!(t.ends_with("(truncated)"));
    }

    #[test]
    fn cuts_on_a_character_boundary() {
        // 'é' is two bytes: 1,012 ASCII bytes then 'é' straddles byte 1,013.
        let s = format!("{}{}", "x".repeat(1_012), "é".repeat(100));
        let t = truncate_cell_string(&s);
        assert!(t.ends_with("(truncated)"));
        assert_eq!(t.len(), 1_012 + 11);
    }
}
