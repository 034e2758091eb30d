//! Unit tests of bridged networking: the settings, and the nftables batches a bridge
//! applies for its table and its containers (through a recording netfilter, no root).

use std::fs::File;
use std::sync::Arc;

use nftables::schema::Rule;
use serde_json::{json, Value};

use super::*;
use crate::linux_backend::netfilter::recording::{NfCall, RecordingNetfilter};
use crate::linux_backend::syscall::recording::RecordingSyscall;
use crate::spec::Protocol;

#[test]
fn settings_are_checked_with_the_field_named() {
    assert!(BridgeNetwork::default().validate().is_ok());
    for (bad, field) in [
        (BridgeNetwork::new("", "10.254.0.0/22"), "name"),
        (BridgeNetwork::new("Dg0", "10.254.0.0/22"), "name"),
        (BridgeNetwork::new("abcdefghi", "10.254.0.0/22"), "name"),
        (BridgeNetwork::new("dg0", "10.254.0.0"), "subnet"),
        (BridgeNetwork::new("dg0", "10.254.0.1/22"), "subnet"),
        (BridgeNetwork::new("dg0", "10.0.0.0/8"), "subnet"),
        (BridgeNetwork::new("dg0", "10.0.0.0/30"), "subnet"),
    ] {
        let err = bad.validate().expect_err("accepted");
        assert!(
            err.to_string()
                .contains(&format!("network.bridged.{field}")),
            "{bad:?}: {err}"
        );
    }
    let names = BridgeNetwork::new("dg12345a", "10.254.0.0/16");
    // Linux limits interface names to 15 bytes.
    assert!(format!("{}65534", names.veth_prefix()).len() <= 15);
    assert!(names.bridge_name().len() <= 15);
}

// JSON as `nft -j -f` reads it, for the table `diego_dg0` of bridge `dg0br` on
// 10.254.0.0/22.

fn nft(commands: Vec<Value>) -> Value {
    json!({ "nftables": commands })
}

fn add(kind: &str, object: Value) -> Value {
    json!({ "add": { kind: object } })
}

fn delete(kind: &str, object: Value) -> Value {
    json!({ "delete": { kind: object } })
}

fn chain(name: &str) -> Value {
    json!({ "family": "ip", "table": "diego_dg0", "name": name })
}

fn base_chain(name: &str, kind: &str, hook: &str, prio: i32) -> Value {
    json!({ "family": "ip", "table": "diego_dg0", "name": name, "type": kind, "hook": hook, "prio": prio })
}

fn rule(chain: &str, expr: Vec<Value>) -> Value {
    json!({ "family": "ip", "table": "diego_dg0", "chain": chain, "expr": expr })
}

fn tagged(chain: &str, tag: &str, expr: Vec<Value>) -> Value {
    let mut rule = rule(chain, expr);
    rule["comment"] = json!(tag);
    rule
}

fn matches(left: Value, op: &str, right: Value) -> Value {
    json!({ "match": { "left": left, "right": right, "op": op } })
}

fn field(protocol: &str, name: &str) -> Value {
    json!({ "payload": { "protocol": protocol, "field": name } })
}

fn meta(key: &str) -> Value {
    json!({ "meta": { "key": key } })
}

fn ct(key: &str) -> Value {
    json!({ "ct": { "key": key } })
}

fn net(addr: &str, len: u32) -> Value {
    json!({ "prefix": { "addr": addr, "len": len } })
}

fn verdict(name: &str) -> Value {
    json!({ name: null })
}

fn jump(target: &str) -> Value {
    json!({ "jump": { "target": target } })
}

fn table() -> Value {
    json!({ "family": "ip", "name": "diego_dg0" })
}

fn json_of(batch: &Nftables<'_>) -> Value {
    serde_json::to_value(batch).unwrap()
}

fn nat() -> NatTable {
    NatTable {
        name: "diego_dg0".to_string(),
        bridge: "dg0br".to_string(),
        subnet: "10.254.0.0/22".parse().unwrap(),
    }
}

#[test]
fn the_table_is_replaced_by_its_base_chains_and_rules() {
    let subnet = || net("10.254.0.0", 22);
    let local_jump = |chain: &str| {
        rule(
            chain,
            vec![
                matches(
                    json!({ "fib": { "result": "type", "flags": ["daddr"] } }),
                    "==",
                    json!("local"),
                ),
                jump("ports"),
            ],
        )
    };
    let mut forward = base_chain("forward", "filter", "forward", 0);
    forward["policy"] = json!("accept");
    assert_eq!(
        json_of(&nat().reset().unwrap()),
        nft(vec![
            // Whatever a previous run left goes: add (so that delete finds it), delete.
            add("table", table()),
            delete("table", table()),
            add("table", table()),
            add("chain", chain("ports")),
            add("chain", base_chain("prerouting", "nat", "prerouting", -100)),
            add("chain", base_chain("output", "nat", "output", -100)),
            add(
                "chain",
                base_chain("postrouting", "nat", "postrouting", 100)
            ),
            add("chain", forward),
            add(
                "rule",
                rule(
                    "forward",
                    vec![
                        matches(ct("state"), "in", json!(["established", "related"])),
                        verdict("accept"),
                    ]
                )
            ),
            // A mapped port answers on every local address, 127.0.0.1 included.
            add("rule", local_jump("prerouting")),
            add("rule", local_jump("output")),
            // Outbound: masqueraded as the host.
            add(
                "rule",
                rule(
                    "postrouting",
                    vec![
                        matches(field("ip", "saddr"), "==", subnet()),
                        matches(meta("oifname"), "!=", json!("dg0br")),
                        verdict("masquerade"),
                    ]
                )
            ),
            // Hairpin: container to container through a mapped host port.
            add(
                "rule",
                rule(
                    "postrouting",
                    vec![
                        matches(field("ip", "saddr"), "==", subnet()),
                        matches(field("ip", "daddr"), "==", subnet()),
                        matches(ct("status"), "in", json!("dnat")),
                        verdict("masquerade"),
                    ]
                )
            ),
            // Loopback sources DNATed onto the bridge leave as the bridge's address.
            add(
                "rule",
                rule(
                    "postrouting",
                    vec![
                        matches(field("ip", "saddr"), "==", net("127.0.0.0", 8)),
                        matches(meta("oifname"), "==", json!("dg0br")),
                        verdict("masquerade"),
                    ]
                )
            ),
        ])
    );
}

#[test]
fn a_port_mapping_is_one_dnat_rule_in_ports_tagged_with_the_container() {
    let batch = json_of(&nat().port_mapping(5, Ipv4Addr::new(10, 254, 0, 5), 61_001, 8080));
    assert_eq!(
        batch,
        nft(vec![add(
            "rule",
            tagged(
                "ports",
                "c5",
                vec![
                    matches(field("tcp", "dport"), "==", json!(61_001)),
                    json!({ "dnat": { "addr": "10.254.0.5", "family": "ip", "port": 8080 } }),
                ]
            )
        )])
    );
}

#[test]
fn net_out_rules_become_an_egress_chain_that_ends_in_reject() {
    let rules = [
        NetOutRule::new(Protocol::Tcp)
            .network("10.0.0.0/8")
            .network("192.168.1.1")
            .ports(80, 80)
            .ports(8000, 8999),
        // IPv6 only: nothing an IPv4 container reaches, so no rule.
        NetOutRule::new(Protocol::All).network("2001:db8::/32"),
        // IPv6 entries of a mixed rule are left out; ports of udp match udp dport.
        NetOutRule::new(Protocol::Udp)
            .network("2001:db8::/32")
            .network("10.1.2.0/24")
            .ports(53, 53),
        NetOutRule::new(Protocol::Icmp),
        NetOutRule::new(Protocol::All),
    ];
    let batch = json_of(
        &nat()
            .egress(5, Ipv4Addr::new(10, 254, 0, 5), &rules)
            .unwrap(),
    );
    let l4 = |proto: &str| matches(meta("l4proto"), "==", json!(proto));
    let to = |nets: Vec<Value>| matches(field("ip", "daddr"), "==", json!({ "set": nets }));
    assert_eq!(
        batch,
        nft(vec![
            add("chain", chain("egress_c5")),
            add(
                "rule",
                rule(
                    "egress_c5",
                    vec![
                        l4("tcp"),
                        to(vec![net("10.0.0.0", 8), net("192.168.1.1", 32)]),
                        matches(
                            field("tcp", "dport"),
                            "==",
                            json!({ "set": [80, { "range": [8000, 8999] }] })
                        ),
                        verdict("accept"),
                    ]
                )
            ),
            add(
                "rule",
                rule(
                    "egress_c5",
                    vec![
                        l4("udp"),
                        to(vec![net("10.1.2.0", 24)]),
                        matches(field("udp", "dport"), "==", json!({ "set": [53] })),
                        verdict("accept"),
                    ]
                )
            ),
            add(
                "rule",
                rule("egress_c5", vec![l4("icmp"), verdict("accept")])
            ),
            add("rule", rule("egress_c5", vec![verdict("accept")])),
            add("rule", rule("egress_c5", vec![verdict("reject")])),
            // Only traffic leaving the subnet is filtered: the host and the other
            // containers stay reachable.
            add(
                "rule",
                tagged(
                    "forward",
                    "c5",
                    vec![
                        matches(field("ip", "saddr"), "==", json!("10.254.0.5")),
                        matches(field("ip", "daddr"), "!=", net("10.254.0.0", 22)),
                        jump("egress_c5"),
                    ]
                )
            ),
        ])
    );

    // No rule at all: the chain rejects everything leaving the subnet.
    let batch = json_of(&nat().egress(7, Ipv4Addr::new(10, 254, 0, 7), &[]).unwrap());
    let commands = batch["nftables"].as_array().unwrap().clone();
    assert_eq!(commands.len(), 3, "{commands:?}");
    assert_eq!(
        commands[1],
        add("rule", rule("egress_c7", vec![verdict("reject")]))
    );
}

#[test]
fn a_net_out_rule_with_a_bad_network_is_refused_with_its_index() {
    let rules = [
        NetOutRule::new(Protocol::Tcp),
        NetOutRule::new(Protocol::Tcp)
            .network("10.0.0.0/8")
            .network("nowhere"),
    ];
    let err = nat()
        .egress(5, Ipv4Addr::new(10, 254, 0, 5), &rules)
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::InvalidSpec { .. }), "{err:?}");
    assert!(message.contains("net_out[1]."), "{message}");
    assert!(message.contains(r#"networks[1]: "nowhere""#), "{message}");
}

#[test]
fn a_containers_rules_are_deleted_by_handle_with_its_egress_chain_in_one_batch() {
    let deleted = |chain: &str, handle: u32| {
        let mut rule = rule(chain, vec![]);
        rule["handle"] = json!(handle);
        delete("rule", rule)
    };
    let batch = json_of(
        &nat()
            .deletion(5, vec![("forward".into(), 3), ("ports".into(), 7)], true)
            .unwrap(),
    );
    assert_eq!(
        batch,
        nft(vec![
            deleted("forward", 3),
            deleted("ports", 7),
            json!({ "flush": { "chain": chain("egress_c5") } }),
            delete("chain", chain("egress_c5")),
        ])
    );
    let batch = json_of(&nat().deletion(5, vec![("ports".into(), 7)], false).unwrap());
    assert_eq!(batch, nft(vec![deleted("ports", 7)]));
    assert!(nat().deletion(5, Vec::new(), false).is_none());
    assert_eq!(
        json_of(&nat().removal()),
        nft(vec![add("table", table()), delete("table", table())])
    );
}

/// A bridge on `dg0br`, 10.254.0.0/22, applying through `netfilter`, its host files in
/// `sys`.
fn bridge(enforce: bool, netfilter: &Arc<RecordingNetfilter>, sys: RecordingSyscall) -> Bridge {
    let config = BridgeNetwork::new("dg0", "10.254.0.0/22").enforce_net_out(enforce);
    Bridge::unstarted(config, Arc::new(sys), netfilter.clone()).unwrap()
}

fn attachment(bridge: &Bridge, offset: u32) -> Attachment {
    Attachment::unlinked(bridge, File::open("/dev/null").unwrap().into(), offset)
}

#[test]
fn a_bridge_deletes_a_containers_rules_by_the_handles_nft_told() {
    let netfilter = Arc::new(RecordingNetfilter::new());
    let bridge = bridge(true, &netfilter, RecordingSyscall::new());
    let container = attachment(&bridge, 2);
    assert_eq!(container.ip, Ipv4Addr::new(10, 254, 0, 2));
    assert!(bridge.enforces_net_out());

    bridge
        .install_egress(&container, &[NetOutRule::new(Protocol::Tcp)])
        .unwrap();
    bridge.map_port(&container, 61_001, 8080).unwrap();
    let egress = json_of(
        &nat()
            .egress(2, container.ip, &[NetOutRule::new(Protocol::Tcp)])
            .unwrap(),
    );
    let mapping = json_of(&nat().port_mapping(2, container.ip, 61_001, 8080));
    assert_eq!(
        netfilter.take_calls(),
        vec![NfCall::ApplyEchoed(egress), NfCall::ApplyEchoed(mapping),]
    );

    // The egress batch added rules 1 and 2 to its chain and 3 (the jump) to forward;
    // the mapping rule 4 to ports.
    bridge.detach_rules(&container).unwrap();
    let deletion = json_of(
        &nat()
            .deletion(2, vec![("forward".into(), 3), ("ports".into(), 4)], true)
            .unwrap(),
    );
    assert_eq!(netfilter.take_calls(), vec![NfCall::Apply(deletion)]);

    // Detached: no rule is added any more.
    let err = bridge.map_port(&container, 61_002, 8080).unwrap_err();
    assert!(err.to_string().contains("being destroyed"), "{err}");
    assert_eq!(netfilter.take_calls(), vec![]);

    // The table goes with the bridge.
    drop(bridge);
    assert_eq!(
        netfilter.take_calls(),
        vec![NfCall::Apply(json_of(&nat().removal()))]
    );
}

#[test]
fn rules_whose_handle_nft_did_not_tell_are_found_by_their_comment() {
    let listed = |chain: &str, comment: &str, handle: u32| {
        NfObject::ListObject(NfListObject::Rule(Rule {
            family: nftables::types::NfFamily::IP,
            table: "diego_dg0".into(),
            chain: chain.to_string().into(),
            comment: Some(comment.to_string().into()),
            handle: Some(handle),
            ..Rule::default()
        }))
    };
    let listing = Nftables {
        objects: vec![
            listed("ports", "c2", 11),
            listed("ports", "c3", 12),
            listed("ports", "c2", 13),
        ]
        .into(),
    };
    let netfilter = Arc::new(
        RecordingNetfilter::new()
            .without_handles()
            .with_listing(listing),
    );
    let bridge = bridge(false, &netfilter, RecordingSyscall::new());
    assert!(!bridge.enforces_net_out());
    let container = attachment(&bridge, 2);
    bridge.map_port(&container, 61_001, 8080).unwrap();
    netfilter.take_calls();

    bridge.detach_rules(&container).unwrap();
    let deletion = json_of(
        &nat()
            .deletion(2, vec![("ports".into(), 11), ("ports".into(), 13)], false)
            .unwrap(),
    );
    assert_eq!(
        netfilter.take_calls(),
        vec![
            NfCall::ListTable("diego_dg0".into()),
            NfCall::Apply(deletion),
        ]
    );
    // A container that never had a rule deletes nothing.
    bridge.detach_rules(&attachment(&bridge, 3)).unwrap();
    assert_eq!(netfilter.take_calls(), vec![]);
}

#[test]
fn a_refused_batch_says_what_the_bridge_was_doing() {
    let netfilter = Arc::new(RecordingNetfilter::new().failing());
    let bridge = bridge(false, &netfilter, RecordingSyscall::new());
    let err = bridge
        .map_port(&attachment(&bridge, 2), 61_001, 8080)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "backend failure while nftables: mapping host port 61001 to 10.254.0.2:8080: \
         nft: refused (recording)"
    );
}

#[test]
fn traffic_is_read_from_the_host_end_of_the_veth() {
    let statistics = RecordingSyscall::new()
        .with_file("/sys/class/net/dg0v9/statistics/rx_bytes", "1500\n")
        .with_file("/sys/class/net/dg0v9/statistics/tx_bytes", "4200\n");
    let bridge = bridge(false, &Arc::new(RecordingNetfilter::new()), statistics);
    // What the host end received, the container sent.
    assert_eq!(bridge.traffic(&attachment(&bridge, 9)), (4200, 1500));
    assert_eq!(bridge.traffic(&attachment(&bridge, 10)), (0, 0));
}
