//! What several of the backend tests share.

pub mod container_paths;
