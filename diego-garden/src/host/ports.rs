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
    /// Where the next search starts.
    next: Mutex<u16>,
}

/// The ports leased by every pool of this process. Several backends of one process (the
/// cells of a local cluster) lease from the same range, and a port one of them has
/// leased is still bindable until its process binds it: without a common set, two
/// containers could be given the same port and one of them would fail to listen.
static LEASED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

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
            next: Mutex::new(start),
        }
    }

    /// Leases `requested`, or any free port of the range when it is 0.
    pub(crate) fn lease(&self, requested: u16) -> Result<u16> {
        let mut leased = LEASED.lock().unwrap_or_else(|p| p.into_inner());
        if requested != 0 {
            if leased.contains(&requested) || !bindable(requested) {
                return Err(Error::InsufficientResources {
                    reason: format!("host port {requested} is in use"),
                });
            }
            leased.insert(requested);
            return Ok(requested);
        }
        let mut next_free = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let (start, end) = (*self.range.start(), *self.range.end());
        let size = u32::from(end - start) + 1;
        let mut candidate = next_free.clamp(start, end);
        for _ in 0..size {
            let next = if candidate == end {
                start
            } else {
                candidate + 1
            };
            if !leased.contains(&candidate) && bindable(candidate) {
                leased.insert(candidate);
                *next_free = next;
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
        let mut leased = LEASED.lock().unwrap_or_else(|p| p.into_inner());
        leased.remove(&port);
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
        pool.release(a);
        pool.release(b);
    }

    /// Two backends of one process over the same range never get the same port, though
    /// nothing binds the ports they lease.
    #[test]
    fn pools_of_one_process_never_lease_the_same_port() {
        let probe = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let first = probe.local_addr().unwrap().port().saturating_add(100);
        drop(probe);
        let range = first..=first.saturating_add(7);
        let (one, two) = (PortPool::new(range.clone()), PortPool::new(range));
        let mut leased = BTreeSet::new();
        loop {
            let got: Vec<u16> = [&one, &two]
                .iter()
                .filter_map(|pool| pool.lease(0).ok())
                .collect();
            if got.is_empty() {
                break;
            }
            for p in got {
                assert!(leased.insert(p), "port {p} leased twice");
            }
        }
        assert!(!leased.is_empty(), "no port of the range was free");
        for p in leased {
            one.release(p);
        }
    }
}
