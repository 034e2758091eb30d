//! diego-core
