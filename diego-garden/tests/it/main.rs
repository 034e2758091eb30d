//! The integration tests of this crate in one test binary (one link instead of one per
//! file); each former `tests/NAME.rs` is the module `NAME`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod common;
mod fake_backend;
mod linux_backend;
mod linux_bridged;
mod process_backend;
