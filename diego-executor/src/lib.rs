//! The cell side of diego-rs: the executor (containers and action trees) and the rep.

#[cfg(feature = "fixture-app")]
pub mod fixture_app;
