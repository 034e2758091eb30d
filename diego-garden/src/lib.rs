//! Container backends for diego-rs.
//!
//! This crate knows containers and processes only: it must not know Tasks, LRPs or
//! actions (those belong to `diego-core` and `diego-executor`).
