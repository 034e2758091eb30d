//! The nftables batches of bridged networking, built as values: the backend's table with
//! its base chains and rules, a container's DNAT rule, its egress chain, the deletion of
//! its rules, the removal of the table. Applying them is the `netfilter` seam's business;
//! this module makes no call and must not know links or namespaces.

use std::borrow::Cow;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use nftables::batch::Batch;
use nftables::expr::{
    Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression, Payload, PayloadField,
    Prefix, Range, SetItem, CT,
};
use nftables::schema::{Chain, FlushObject, NfCmd, NfListObject, Nftables, Rule, Table};
use nftables::stmt::{JumpTarget, Match, NATFamily, Operator, Statement, NAT};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use crate::error::{Error, Result};
use crate::spec::{NetOutRule, Protocol};

/// The payload field `protocol field` (`ip saddr`, `tcp dport`).
fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: Cow::Borrowed(protocol),
            field: Cow::Borrowed(field),
        },
    )))
}

/// A network as an nftables prefix.
fn prefix(net: Ipv4Net) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(Expression::String(Cow::Owned(net.network().to_string()))),
        len: u32::from(net.prefix_len()),
    }))
}

/// The backend's table (family `ip`) and the batches it applies to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NatTable {
    /// The table's name.
    pub(crate) name: String,
    /// The bridge the containers are on.
    pub(crate) bridge: String,
    /// The containers' subnet.
    pub(crate) subnet: Ipv4Net,
}

impl NatTable {
    /// The comment that tags a container's rules in the shared chains (`c<offset>`).
    pub(crate) fn tag(offset: u32) -> String {
        format!("c{offset}")
    }

    /// The name of a container's egress chain (`egress_c<offset>`).
    pub(crate) fn egress_chain(offset: u32) -> String {
        format!("egress_c{offset}")
    }

    fn table(&self) -> Table<'_> {
        Table {
            family: NfFamily::IP,
            name: Cow::Borrowed(self.name.as_str()),
            handle: None,
        }
    }

    fn rule(&self, chain: &'static str, expr: Vec<Statement<'static>>) -> NfListObject<'_> {
        NfListObject::Rule(Rule {
            family: NfFamily::IP,
            table: Cow::Borrowed(self.name.as_str()),
            chain: Cow::Borrowed(chain),
            expr: Cow::Owned(expr),
            ..Rule::default()
        })
    }

    /// Replaces the table by an empty one with its base chains and rules.
    pub(crate) fn reset(&self) -> Result<Nftables<'_>> {
        let mut batch = Batch::new();
        // `add` then `delete`: removes the table whether or not it existed.
        batch.add(NfListObject::Table(self.table()));
        batch.delete(NfListObject::Table(self.table()));
        batch.add(NfListObject::Table(self.table()));
        let chain = |name: &'static str, hook: Option<(NfHook, i32)>| {
            NfListObject::Chain(Chain {
                family: NfFamily::IP,
                table: Cow::Borrowed(self.name.as_str()),
                name: Cow::Borrowed(name),
                _type: hook.map(|_| NfChainType::NAT),
                hook: hook.map(|(hook, _)| hook),
                prio: hook.map(|(_, prio)| prio),
                ..Chain::default()
            })
        };
        batch.add(chain("ports", None));
        batch.add(chain("prerouting", Some((NfHook::Prerouting, -100))));
        batch.add(chain("output", Some((NfHook::Output, -100))));
        batch.add(chain("postrouting", Some((NfHook::Postrouting, 100))));
        batch.add(NfListObject::Chain(Chain {
            family: NfFamily::IP,
            table: Cow::Borrowed(self.name.as_str()),
            name: Cow::Borrowed("forward"),
            _type: Some(NfChainType::Filter),
            hook: Some(NfHook::Forward),
            prio: Some(0),
            policy: Some(NfChainPolicy::Accept),
            ..Chain::default()
        }));
        batch.add(self.rule(
            "forward",
            vec![
                Statement::Match(Match {
                    left: Expression::Named(NamedExpression::CT(CT {
                        key: Cow::Borrowed("state"),
                        family: None,
                        dir: None,
                    })),
                    right: Expression::List(vec![
                        Expression::String(Cow::Borrowed("established")),
                        Expression::String(Cow::Borrowed("related")),
                    ]),
                    op: Operator::IN,
                }),
                Statement::Accept(None),
            ],
        ));
        let local_jump = || {
            vec![
                Statement::Match(Match {
                    left: Expression::Named(NamedExpression::Fib(Fib {
                        result: FibResult::Type,
                        flags: [FibFlag::Daddr].into_iter().collect(),
                    })),
                    right: Expression::String(Cow::Borrowed("local")),
                    op: Operator::EQ,
                }),
                Statement::Jump(JumpTarget {
                    target: Cow::Borrowed("ports"),
                }),
            ]
        };
        batch.add(self.rule("prerouting", local_jump()));
        batch.add(self.rule("output", local_jump()));
        let in_net = |field: &'static str, net: Ipv4Net| {
            Statement::Match(Match {
                left: payload("ip", field),
                right: prefix(net),
                op: Operator::EQ,
            })
        };
        let saddr = |net: Ipv4Net| in_net("saddr", net);
        let oifname = |op: Operator| {
            Statement::Match(Match {
                left: Expression::Named(NamedExpression::Meta(Meta {
                    key: MetaKey::Oifname,
                })),
                right: Expression::String(Cow::Owned(self.bridge.clone())),
                op,
            })
        };
        batch.add(self.rule(
            "postrouting",
            vec![
                saddr(self.subnet),
                oifname(Operator::NEQ),
                Statement::Masquerade(None),
            ],
        ));
        // Hairpin: a container reaching another through a host address and a mapped port
        // must see the answer come from where it sent the request (without br_netfilter
        // the answer would otherwise go straight back over the bridge).
        batch.add(self.rule(
            "postrouting",
            vec![
                saddr(self.subnet),
                in_net("daddr", self.subnet),
                Statement::Match(Match {
                    left: Expression::Named(NamedExpression::CT(CT {
                        key: Cow::Borrowed("status"),
                        family: None,
                        dir: None,
                    })),
                    right: Expression::String(Cow::Borrowed("dnat")),
                    op: Operator::IN,
                }),
                Statement::Masquerade(None),
            ],
        ));
        let loopback = Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 0), 8)
            .map_err(|e| Error::backend("building the loopback prefix", e))?;
        batch.add(self.rule(
            "postrouting",
            vec![
                saddr(loopback),
                oifname(Operator::EQ),
                Statement::Masquerade(None),
            ],
        ));
        Ok(batch.to_nftables())
    }

    /// Removes the table (`add` then `delete`: whether or not it exists).
    pub(crate) fn removal(&self) -> Nftables<'_> {
        let mut batch = Batch::new();
        batch.add(NfListObject::Table(self.table()));
        batch.delete(NfListObject::Table(self.table()));
        batch.to_nftables()
    }

    /// The DNAT rule of `host_port` to `container_port` of the container at `offset`
    /// (its IP `ip`), in the `ports` chain.
    pub(crate) fn port_mapping(
        &self,
        offset: u32,
        ip: Ipv4Addr,
        host_port: u16,
        container_port: u16,
    ) -> Nftables<'_> {
        let mut batch = Batch::new();
        batch.add(NfListObject::Rule(Rule {
            family: NfFamily::IP,
            table: Cow::Borrowed(self.name.as_str()),
            chain: Cow::Borrowed("ports"),
            expr: Cow::Owned(vec![
                Statement::Match(Match {
                    left: payload("tcp", "dport"),
                    right: Expression::Number(u32::from(host_port)),
                    op: Operator::EQ,
                }),
                Statement::DNAT(Some(NAT {
                    addr: Some(Expression::String(Cow::Owned(ip.to_string()))),
                    family: Some(NATFamily::IP),
                    port: Some(Expression::Number(u32::from(container_port))),
                    flags: None,
                })),
            ]),
            comment: Some(Cow::Owned(NatTable::tag(offset))),
            ..Rule::default()
        }));
        batch.to_nftables()
    }

    /// The egress chain of the container at `offset` (its IP `ip`): one accept rule per
    /// `net_out` rule it can use (IPv6-only rules are left out), then reject; and the
    /// jump to it from `forward` for its traffic leaving the subnet.
    pub(crate) fn egress(
        &self,
        offset: u32,
        ip: Ipv4Addr,
        net_out: &[NetOutRule],
    ) -> Result<Nftables<'_>> {
        let chain = NatTable::egress_chain(offset);
        let mut batch = Batch::new();
        batch.add(NfListObject::Chain(Chain {
            family: NfFamily::IP,
            table: Cow::Borrowed(self.name.as_str()),
            name: Cow::Owned(chain.clone()),
            ..Chain::default()
        }));
        let in_chain = |expr: Vec<Statement<'static>>| {
            NfListObject::Rule(Rule {
                family: NfFamily::IP,
                table: Cow::Borrowed(self.name.as_str()),
                chain: Cow::Owned(chain.clone()),
                expr: Cow::Owned(expr),
                ..Rule::default()
            })
        };
        for (i, rule) in net_out.iter().enumerate() {
            let networks: Vec<Ipv4Net> = rule
                .parsed_networks()
                .map_err(|e| Error::invalid(format!("net_out[{i}].{e}")))?
                .into_iter()
                .filter_map(|net| match net {
                    ipnet::IpNet::V4(net) => Some(net),
                    ipnet::IpNet::V6(_) => None,
                })
                .collect();
            if !rule.networks.is_empty() && networks.is_empty() {
                // IPv6 destinations only: nothing a container (IPv4 only) can reach.
                continue;
            }
            let mut expr = Vec::new();
            let l4 = match rule.protocol {
                Protocol::All => None,
                Protocol::Tcp => Some("tcp"),
                Protocol::Udp => Some("udp"),
                Protocol::Icmp => Some("icmp"),
            };
            if let Some(l4) = l4 {
                expr.push(Statement::Match(Match {
                    left: Expression::Named(NamedExpression::Meta(Meta {
                        key: MetaKey::L4proto,
                    })),
                    right: Expression::String(Cow::Borrowed(l4)),
                    op: Operator::EQ,
                }));
            }
            if !networks.is_empty() {
                expr.push(Statement::Match(Match {
                    left: payload("ip", "daddr"),
                    right: Expression::Named(NamedExpression::Set(
                        networks
                            .iter()
                            .map(|net| SetItem::Element(prefix(*net)))
                            .collect(),
                    )),
                    op: Operator::EQ,
                }));
            }
            if let (Some(l4 @ ("tcp" | "udp")), false) = (l4, rule.ports.is_empty()) {
                expr.push(Statement::Match(Match {
                    left: payload(l4, "dport"),
                    right: Expression::Named(NamedExpression::Set(
                        rule.ports
                            .iter()
                            .map(|&(first, last)| {
                                SetItem::Element(if first == last {
                                    Expression::Number(u32::from(first))
                                } else {
                                    Expression::Range(Box::new(Range {
                                        range: [
                                            Expression::Number(u32::from(first)),
                                            Expression::Number(u32::from(last)),
                                        ],
                                    }))
                                })
                            })
                            .collect(),
                    )),
                    op: Operator::EQ,
                }));
            }
            expr.push(Statement::Accept(None));
            batch.add(in_chain(expr));
        }
        batch.add(in_chain(vec![Statement::Reject(None)]));
        batch.add(NfListObject::Rule(Rule {
            family: NfFamily::IP,
            table: Cow::Borrowed(self.name.as_str()),
            chain: Cow::Borrowed("forward"),
            expr: Cow::Owned(vec![
                Statement::Match(Match {
                    left: payload("ip", "saddr"),
                    right: Expression::String(Cow::Owned(ip.to_string())),
                    op: Operator::EQ,
                }),
                Statement::Match(Match {
                    left: payload("ip", "daddr"),
                    right: prefix(self.subnet),
                    op: Operator::NEQ,
                }),
                Statement::Jump(JumpTarget {
                    target: Cow::Owned(chain.clone()),
                }),
            ]),
            comment: Some(Cow::Owned(NatTable::tag(offset))),
            ..Rule::default()
        }));
        Ok(batch.to_nftables())
    }

    /// Deletes the rules `handles` ((chain, handle) pairs) and, with `egress`, the egress
    /// chain of the container at `offset`: one transaction. `None` when there is nothing
    /// to delete.
    pub(crate) fn deletion(
        &self,
        offset: u32,
        handles: Vec<(String, u32)>,
        egress: bool,
    ) -> Option<Nftables<'_>> {
        if handles.is_empty() && !egress {
            return None;
        }
        let mut batch = Batch::new();
        for (chain, handle) in handles {
            batch.delete(NfListObject::Rule(Rule {
                family: NfFamily::IP,
                table: Cow::Borrowed(self.name.as_str()),
                chain: Cow::Owned(chain),
                handle: Some(handle),
                ..Rule::default()
            }));
        }
        if egress {
            let chain = Chain {
                family: NfFamily::IP,
                table: Cow::Borrowed(self.name.as_str()),
                name: Cow::Owned(NatTable::egress_chain(offset)),
                ..Chain::default()
            };
            batch.add_cmd(NfCmd::Flush(FlushObject::Chain(chain.clone())));
            batch.delete(NfListObject::Chain(chain));
        }
        Some(batch.to_nftables())
    }
}
