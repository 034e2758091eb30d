//! The integration tests of this crate in one test binary (one link instead of one per
//! file); each former `tests/NAME.rs` is the module `NAME`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod bbs_evacuation;
mod bbs_fence;
mod bbs_lrps;
mod bbs_props;
mod bbs_tasks;
mod common;
mod convergence;
mod fixtures;
mod http_api;
mod http_failover;
mod http_logs;
mod http_tls;
mod model_props;
mod router;
mod router_framing;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql_common;
mod store_memory;
mod store_postgres;
mod store_sqlite;
