//! The netfilter seam of the [`LinuxBackend`](super::LinuxBackend)'s bridged mode: the
//! backend builds each nftables batch as a value (see the `network` module's `ruleset`)
//! and hands it to a [`Netfilter`] to apply. [`NftProgram`] runs `nft` (its JSON
//! interface); a recording implementation (tests) writes the batches down, so the rules
//! of a container are checked without root.
//!
//! This module knows nftables batches only: not bridges, containers or ports.

mod nft;
#[cfg(test)]
pub(crate) mod recording;

pub(crate) use self::nft::NftProgram;

use std::fmt::Debug;

use nftables::schema::Nftables;

use crate::error::BoxError;

/// Applies nftables batches (see the module docs).
pub(crate) trait Netfilter: Send + Sync + Debug + 'static {
    /// Applies `batch`: all of it, or none when it fails.
    fn apply(&self, batch: &Nftables<'_>) -> Result<(), BoxError>;

    /// Applies `batch` and returns what nftables echoes back: the objects it added, each
    /// with its handle when nftables tells it.
    fn apply_echoed(&self, batch: &Nftables<'_>) -> Result<Nftables<'static>, BoxError>;

    /// The rules of the table `ip <table>`, with their handles.
    fn list_table(&self, table: &str) -> Result<Nftables<'static>, BoxError>;
}
