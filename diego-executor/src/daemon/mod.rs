//! The daemons of a multi-machine deployment (feature `daemon`): `diego bbs` (the BBS,
//! auctioneer and converger behind the leader lock, with the HTTP API) and `diego cell`
//! (a rep and an executor on a container backend, registered with the BBS over HTTP).

pub mod config;

pub use config::{BackendKind, BbsServerConfig, CellServerConfig, StoreConfig, StoreKind};
