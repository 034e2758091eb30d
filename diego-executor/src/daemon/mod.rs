//! The daemons of a multi-machine deployment (feature `daemon`): `diego bbs` (the BBS,
//! auctioneer and converger behind the leader lock, with the HTTP API) and `diego cell`
//! (a rep and an executor on a container backend, registered with the BBS over HTTP).

pub mod bbs;
pub mod cell;
pub mod config;

pub use bbs::{open_store, rotate_keys, run_bbs, run_bbs_on, OpenedStore};
pub use cell::{run_cell, run_cell_on};
pub use config::{BackendKind, BbsServerConfig, CellServerConfig, StoreConfig, StoreKind};
