//! The cell side of diego-rs: the executor (containers and action trees) and the rep.
