//! The integration tests of this crate in one test binary (one link instead of one per
//! file); each former `tests/NAME.rs` is the module `NAME`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod actions;
mod cli;
mod cluster_fake;
mod cluster_http;
mod cluster_process;
mod cluster_scale;
mod common;
mod daemons;
mod daemons_tls;
mod executor;
mod fake_transfers;
mod fixture_app;
mod health;
mod local_cluster;
mod metric_tags;
mod no_leaks;
mod process_backend;
mod rep_http;
