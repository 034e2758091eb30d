//! Host ports handed out by `net_in` in host-network mode: a pool over a port range that
//! leases only ports nothing on the host is bound to.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::ops::RangeInclusive;
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Leases host ports from a range.
#[derive(Debug)]
pub(crate) struct PortPool {
    range: RangeInclusive<u16>,
    state: Mutex<(BTreeSet<u16>, u16)>,
}

fn bindable(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
}

impl PortPool {
    /// A pool over `range`.
    pub(crate) fn new(range: RangeInclusive<u16>) -> Self {
        // Start at a random place so that several pools on one host (one per backend)
        // rarely probe the same port at the same moment.
        let size = u32::from(range.end().saturating_sub(*range.start())) + 1;
        let offset = (uuid::Uuid::new_v4().as_u128() % u128::from(size)) as u16;
        let start = range.start().saturating_add(offset);
        PortPool {
            range,
            state: Mutex::new((BTreeSet::new(), start)),
        }
    }

    /// Leases `requested`, or any free port of the range when it is 0.
    pub(crate) fn lease(&self, requested: u16) -> Result<u16> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if requested != 0 {
            if state.0.contains(&requested) || !bindable(requested) {
                return Err(Error::InsufficientResources {
                    reason: format!("host port {requested} is in use"),
                });
            }
            state.0.insert(requested);
            return Ok(requested);
        }
        let (start, end) = (*self.range.start(), *self.range.end());
        let size = u32::from(end - start) + 1;
        let mut candidate = state.1.clamp(start, end);
        for _ in 0..size {
            let next = if candidate == end {
                start
            } else {
                candidate + 1
            };
            if !state.0.contains(&candidate) && bindable(candidate) {
                state.0.insert(candidate);
                state.1 = next;
                return Ok(candidate);
            }
            candidate = next;
        }
        Err(Error::InsufficientResources {
            reason: format!("no free host port in {start}..={end}"),
        })
    }

    /// Returns a leased port.
    pub(crate) fn release(&self, port: u16) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.0.remove(&port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_distinct_free_ports_and_skips_bound_ones() {
        let busy = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let busy_port = busy.local_addr().unwrap().port();
        let pool = PortPool::new(busy_port..=busy_port.saturating_add(3));
        let a = pool.lease(0).unwrap();
        let b = pool.lease(0).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, busy_port);
        assert_ne!(b, busy_port);
        assert!(pool.lease(a).is_err(), "a leased port is leased twice");
        assert!(pool.lease(busy_port).is_err(), "a bound port is leased");
        pool.release(a);
        assert_eq!(pool.lease(a).unwrap(), a);
    }
}
