//! Placement for diego-rs: which cell runs which work.
//!
//! Depends on `diego-core` only.
