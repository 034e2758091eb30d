//! [`NftProgram`]: batches applied by the `nft` program, the default netfilter.

use nftables::schema::Nftables;

use super::Netfilter;
use crate::error::BoxError;

/// Runs `nft` (a program name looked up in `PATH`, or a path) with its JSON interface.
#[derive(Debug, Clone)]
pub(crate) struct NftProgram {
    program: String,
}

impl NftProgram {
    /// Drives nftables through `program`.
    pub(crate) fn new(program: impl Into<String>) -> NftProgram {
        NftProgram {
            program: program.into(),
        }
    }
}

impl Netfilter for NftProgram {
    fn apply(&self, batch: &Nftables<'_>) -> Result<(), BoxError> {
        nftables::helper::apply_ruleset_with_args(
            batch,
            Some(self.program.as_str()),
            std::iter::empty::<&str>(),
        )
        .map_err(Into::into)
    }

    fn apply_echoed(&self, batch: &Nftables<'_>) -> Result<Nftables<'static>, BoxError> {
        nftables::helper::apply_and_return_ruleset_with_args(
            batch,
            Some(self.program.as_str()),
            std::iter::empty::<&str>(),
        )
        .map_err(Into::into)
    }

    fn list_table(&self, table: &str) -> Result<Nftables<'static>, BoxError> {
        nftables::helper::get_current_ruleset_with_args(
            Some(self.program.as_str()),
            ["list", "table", "ip", table],
        )
        .map_err(Into::into)
    }
}
