//! Container networking settings: network properties and egress rules (Diego's
//! security group rules).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::models::validation::{FieldPath, Validate, Validator};

/// Network properties handed to the container backend (opaque key/values).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Key/value properties.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// Protocols an egress rule may name.
pub const EGRESS_PROTOCOLS: [&str; 4] = ["tcp", "udp", "icmp", "all"];

/// One allowed outbound destination of a container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressRule {
    /// `tcp`, `udp`, `icmp` or `all`.
    pub protocol: String,
    /// IP addresses, CIDRs (`10.0.0.0/8`) or ranges (`10.0.0.1-10.0.0.9`).
    pub destinations: Vec<String>,
    /// Single ports (tcp/udp); not together with `port_range`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u32>,
    /// A port range (tcp/udp); not together with `ports`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_range: Option<PortRange>,
    /// ICMP type and code (icmp only, required there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_info: Option<IcmpInfo>,
    /// Log packets matching this rule.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub log: bool,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<String>,
}

/// An inclusive port range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    /// First port, 1..=65535.
    pub start: u32,
    /// Last port, `start..=65535`.
    pub end: u32,
}

/// ICMP type and code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcmpInfo {
    /// ICMP type (-1 = any).
    #[serde(rename = "type")]
    pub icmp_type: i32,
    /// ICMP code (-1 = any).
    pub code: i32,
}

fn valid_destination(d: &str) -> bool {
    if let Some((ip, bits)) = d.split_once('/') {
        return match (ip.parse::<IpAddr>(), bits.parse::<u8>()) {
            (Ok(IpAddr::V4(_)), Ok(b)) => b <= 32,
            (Ok(IpAddr::V6(_)), Ok(b)) => b <= 128,
            _ => false,
        };
    }
    if let Some((a, b)) = d.split_once('-') {
        return match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
            (Ok(IpAddr::V4(a)), Ok(IpAddr::V4(b))) => a <= b,
            (Ok(IpAddr::V6(a)), Ok(IpAddr::V6(b))) => a <= b,
            _ => false,
        };
    }
    d.parse::<IpAddr>().is_ok()
}

impl Validate for EgressRule {
    fn validate_at(&self, path: &FieldPath<'_>, v: &mut Validator) {
        let protocol = self.protocol.as_str();
        v.check(
            EGRESS_PROTOCOLS.contains(&protocol),
            &path.field("protocol"),
            "must be tcp, udp, icmp or all",
        );
        let dests = path.field("destinations");
        if self.destinations.is_empty() {
            v.error(&dests, "must not be empty");
        }
        for (i, d) in self.destinations.iter().enumerate() {
            v.check(
                valid_destination(d),
                &dests.index(i),
                "must be an IP address, a CIDR or an IP range",
            );
        }
        let ported = matches!(protocol, "tcp" | "udp");
        match (&self.ports.is_empty(), &self.port_range) {
            (false, Some(_)) => v.error(&path.field("ports"), "not together with port_range"),
            (true, None) if ported => v.error(
                &path.field("ports"),
                "tcp and udp rules need ports or a port_range",
            ),
            (false, None) if !ported => v.error(&path.field("ports"), "only for tcp and udp"),
            (true, Some(_)) if !ported => {
                v.error(&path.field("port_range"), "only for tcp and udp")
            }
            _ => {}
        }
        let ports = path.field("ports");
        for (i, p) in self.ports.iter().enumerate() {
            v.check(
                (1..=65_535).contains(p),
                &ports.index(i),
                "must be 1..=65535",
            );
        }
        if let Some(r) = &self.port_range {
            v.check(
                (1..=65_535).contains(&r.start) && r.start <= r.end && r.end <= 65_535,
                &path.field("port_range"),
                "must satisfy 1 <= start <= end <= 65535",
            );
        }
        match (protocol, &self.icmp_info) {
            ("icmp", None) => v.error(&path.field("icmp_info"), "icmp rules need icmp_info"),
            (p, Some(_)) if p != "icmp" => v.error(&path.field("icmp_info"), "only for icmp rules"),
            _ => {}
        }
        v.check(
            !self.log || matches!(protocol, "tcp" | "all"),
            &path.field("log"),
            "only for tcp and all rules",
        );
    }
}

/// Validates a list of egress rules at `path`.
pub(crate) fn validate_egress_rules(rules: &[EgressRule], path: &FieldPath<'_>, v: &mut Validator) {
    for (i, r) in rules.iter().enumerate() {
        v.nested(r, &path.index(i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(r: &EgressRule) -> Vec<String> {
        match r.validate() {
            Ok(()) => vec![],
            Err(e) => e.errors().iter().map(|e| e.field.clone()).collect(),
        }
    }

    fn tcp() -> EgressRule {
        EgressRule {
            protocol: "tcp".into(),
            destinations: vec![
                "10.0.0.0/8".into(),
                "1.2.3.4".into(),
                "10.0.0.1-10.0.0.9".into(),
            ],
            ports: vec![443],
            ..Default::default()
        }
    }

    #[test]
    fn a_good_rule_passes() {
        assert!(fields(&tcp()).is_empty());
        let icmp = EgressRule {
            protocol: "icmp".into(),
            destinations: vec!["0.0.0.0/0".into()],
            icmp_info: Some(IcmpInfo {
                icmp_type: -1,
                code: -1,
            }),
            ..Default::default()
        };
        assert!(fields(&icmp).is_empty());
    }

    #[test]
    fn every_rule_is_checked() {
        let mut r = tcp();
        r.protocol = "sctp".into();
        r.destinations = vec![
            "10.0.0.0/40".into(),
            "nope".into(),
            "10.0.0.9-10.0.0.1".into(),
        ];
        assert_eq!(
            fields(&r),
            [
                "protocol",
                "destinations[0]",
                "destinations[1]",
                "destinations[2]",
                "ports"
            ]
        );
        let mut r = tcp();
        r.ports = vec![0, 70_000];
        assert_eq!(fields(&r), ["ports[0]", "ports[1]"]);
        let mut r = tcp();
        r.port_range = Some(PortRange { start: 10, end: 5 });
        assert_eq!(fields(&r), ["ports", "port_range"]);
        let mut r = tcp();
        r.ports.clear();
        assert_eq!(fields(&r), ["ports"]);
        r.destinations.clear();
        r.icmp_info = Some(IcmpInfo::default());
        assert_eq!(fields(&r), ["destinations", "ports", "icmp_info"]);
        let r = EgressRule {
            protocol: "icmp".into(),
            destinations: vec!["::1".into()],
            log: true,
            ..Default::default()
        };
        assert_eq!(fields(&r), ["icmp_info", "log"]);
    }
}
