//! The traits a caller of the BBS needs in scope, in one import:
//!
//! ```
//! use diego_core::prelude::*;
//! ```
//!
//! The BBS's operations ([`TaskApi`], [`DesiredLrpApi`], [`ActualLrpApi`],
//! [`EvacuationApi`], [`DomainApi`], [`CellApi`], [`EventApi`], and [`BbsApi`], their
//! union) are methods of these traits, on the in-process [`Bbs`](crate::Bbs), the HTTP
//! `BbsClient` and any `Arc<dyn BbsApi>`. This module only re-exports.

pub use crate::bbs::{
    ActualLrpApi, BbsApi, CellApi, DesiredLrpApi, DomainApi, EvacuationApi, EventApi, TaskApi,
};
