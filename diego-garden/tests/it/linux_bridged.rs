//! The LinuxBackend in bridged mode: the conformance suite, container-to-container traffic
//! by IP, `net_in` by DNAT (from the host on 127.0.0.1 and from another host through the
//! host's IP), outbound traffic masqueraded, and nothing left behind (veths, NAT rules,
//! IPs) after destroy, parallel churn, a dropped backend or a previous run.
//!
//! They need root, the busybox rootfs of `scripts/setup-garden.sh`, `nft` and iproute2's
//! `ip`; without them each test says why it did not run; under the README's test command
//! or in CI a missing one is a failure (`precondition_missing`). Each test has a bridge, subnet and nftables table of its own
//! (`dgt<n>br`, `10.254.<100+n>.0/24`, `ip diego_dgt<n>`); the "other host" is a network
//! namespace the test makes (`10.253.<n>.0/30`), so no packet leaves this machine.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diego_garden::conformance;
use diego_garden::{
    collect, BridgeNetwork, Container, ContainerBackend, ContainerSpec, Error, ExitStatus,
    LinuxBackend, LinuxBackendConfig, NetIn, NetOutRule, NetworkMode, ProcessSpec, Protocol,
};

use crate::common::precondition_missing;

fn rootfs() -> PathBuf {
    std::env::var_os("DIEGO_GARDEN_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/diego-rs/rootfs/busybox"))
}

/// Test numbers: names and subnets of concurrent tests never collide.
static NEXT: AtomicU32 = AtomicU32::new(1);

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn missing_dependency(name: &str) -> Option<String> {
    if let Err(why) = LinuxBackend::available() {
        return Some(why);
    }
    if !rootfs().join("bin/sh").exists() {
        return Some(format!(
            "no busybox rootfs at {} (run scripts/setup-garden.sh)",
            rootfs().display()
        ));
    }
    for (program, version) in [("nft", "--version"), ("ip", "-V")] {
        let found = Command::new(program)
            .arg(version)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            return Some(format!("no `{program}` (run scripts/setup-garden.sh)"));
        }
    }
    let _ = name;
    None
}

struct Fixture {
    backend: Option<LinuxBackend>,
    network: BridgeNetwork,
    dir: PathBuf,
    n: u32,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        drop(self.backend.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn network_for(n: u32, prefix_len: u8) -> BridgeNetwork {
    BridgeNetwork::new(
        format!("dgt{n}"),
        format!("10.254.{}.0/{prefix_len}", 100 + n),
    )
}

/// A bridged backend for one test, or `None` (having said why) when this host cannot run
/// it.
fn fixture(name: &str, prefix_len: u8) -> Option<Fixture> {
    fixture_enforcing(name, prefix_len, false)
}

fn fixture_enforcing(name: &str, prefix_len: u8, enforce_net_out: bool) -> Option<Fixture> {
    if let Some(why) = missing_dependency(name) {
        precondition_missing(&format!("linux_bridged::{name}"), &why);
        return None;
    }
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let network = network_for(n, prefix_len).enforce_net_out(enforce_net_out);
    Some(fixture_with(name, n, network))
}

fn fixture_with(name: &str, n: u32, network: BridgeNetwork) -> Fixture {
    let dir = std::env::temp_dir().join(format!("garden-bridged-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config =
        LinuxBackendConfig::new(dir.join("containers"), rootfs().display().to_string())
            .network(NetworkMode::Bridged(network.clone()));
    config.cgroup_parent = Some(format!("diego-rs-bridged-{name}-{}", std::process::id()));
    let backend = LinuxBackend::new(config).unwrap();
    Fixture {
        backend: Some(backend),
        network,
        dir,
        n,
    }
}

impl Fixture {
    fn backend(&self) -> &LinuxBackend {
        self.backend.as_ref().unwrap()
    }

    /// The host ends of veths of this backend that exist now.
    fn veths(&self) -> Vec<String> {
        let prefix = self.network.veth_prefix();
        std::fs::read_dir("/sys/class/net")
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.strip_prefix(&prefix).is_some_and(|rest| {
                    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
                })
            })
            .collect()
    }

    /// The DNAT rules in the backend's `ports` chain.
    fn dnat_rules(&self) -> Vec<String> {
        let table = self.network.table_name();
        run("nft", &["list", "chain", "ip", &table, "ports"])
            .lines()
            .filter(|l| l.contains("dnat"))
            .map(|l| l.trim().to_string())
            .collect()
    }

    /// No veth, no DNAT rule, no egress chain or jump to one, no leased IP.
    fn assert_clean(&self) {
        assert_eq!(self.veths(), Vec::<String>::new(), "veths left");
        assert_eq!(self.dnat_rules(), Vec::<String>::new(), "DNAT rules left");
        let table = run("nft", &["list", "table", "ip", &self.network.table_name()]);
        assert!(
            !table.contains("egress_c") && !table.contains("dnat to"),
            "container rules left: {table}"
        );
        assert_eq!(self.backend().leased_ips(), Some(0), "IPs still leased");
    }
}

/// Another host: a network namespace joined to this one by a veth pair, `10.253.<n>.1` on
/// this side and `10.253.<n>.2` on the other. Only this side has a route to it, and it has
/// no route to the containers' subnet: replies reach a container only when its traffic
/// was masqueraded.
struct OtherHost {
    ns: String,
    here: Ipv4Addr,
    there: Ipv4Addr,
}

impl OtherHost {
    fn new(n: u32) -> OtherHost {
        let ns = format!("dgtout{n}-{}", std::process::id());
        let (here_link, there_link) = (format!("dgto{n}h"), format!("dgto{n}o"));
        let here = Ipv4Addr::new(10, 253, n as u8, 1);
        let there = Ipv4Addr::new(10, 253, n as u8, 2);
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        let _ = Command::new("ip")
            .args(["link", "del", &here_link])
            .output();
        run("ip", &["netns", "add", &ns]);
        run(
            "ip",
            &[
                "link",
                "add",
                &here_link,
                "type",
                "veth",
                "peer",
                "name",
                &there_link,
                "netns",
                &ns,
            ],
        );
        run(
            "ip",
            &["addr", "add", &format!("{here}/30"), "dev", &here_link],
        );
        run("ip", &["link", "set", &here_link, "up"]);
        let exec = |args: &[&str]| {
            let mut all = vec!["netns", "exec", ns.as_str(), "ip"];
            all.extend_from_slice(args);
            run("ip", &all);
        };
        exec(&["addr", "add", &format!("{there}/30"), "dev", &there_link]);
        exec(&["link", "set", &there_link, "up"]);
        exec(&["link", "set", "lo", "up"]);
        OtherHost { ns, here, there }
    }

    /// Runs `work` on a thread inside the other host's namespace.
    fn within<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.ns);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap();
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            work()
        })
        .join()
        .unwrap()
    }
}

impl Drop for OtherHost {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

async fn sh(container: &Arc<dyn Container>, script: &str) -> (ExitStatus, String, String) {
    let process = container.run(ProcessSpec::shell(script)).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), process.wait())
        .await
        .unwrap()
        .unwrap();
    let out = String::from_utf8_lossy(&collect(process.stdout()).await.unwrap()).into_owned();
    let err = String::from_utf8_lossy(&collect(process.stderr()).await.unwrap()).into_owned();
    (status, out, err)
}

/// Starts busybox httpd on `port` in the container, serving `body` at `/` (from a
/// directory of the port's own).
async fn serve(container: &Arc<dyn Container>, port: u16, body: &str) {
    let script = format!(
        "mkdir -p /www{port} && echo '{body}' > /www{port}/index.html && exec httpd -f -p {port} -h /www{port}"
    );
    container.run(ProcessSpec::shell(script)).await.unwrap();
}

/// `GET /` at `addr`, retried until it answers (the server may still be starting).
fn http_get(addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            stream.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            Ok(response)
        })();
        match attempt {
            Ok(response) if response.starts_with("HTTP/1.") => return response,
            other if Instant::now() > deadline => panic!("GET {addr}: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

macro_rules! conformance_tests {
    ($($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let Some(fixture) = fixture(stringify!($scenario), 24) else { return };
                conformance::$scenario(fixture.backend()).await;
                fixture.assert_clean();
            }
        )*
    };
}

// Every scenario: a container with a network of its own must behave as one without.
conformance_tests!(
    lifecycle,
    duplicate_and_invalid_handles,
    env_and_dir,
    stdout_and_stderr,
    exit_codes,
    missing_executable,
    signals,
    kill_after_ignored_terminate,
    stream_round_trip,
    properties_and_filters,
    capacity_accounting,
    destroy_while_running,
    stop,
    attach,
    net_in,
    metrics_and_bulk,
    nofile_limit,
    memory_limit,
    pids_limit,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_containers_reach_each_other_by_ip() {
    let Some(fixture) = fixture("by_ip", 24) else {
        return;
    };
    let backend = fixture.backend();
    let a = backend.create(ContainerSpec::new("by-ip-a")).await.unwrap();
    let b = backend.create(ContainerSpec::new("by-ip-b")).await.unwrap();
    let (info_a, info_b) = (a.info().await.unwrap(), b.info().await.unwrap());
    let subnet = format!("10.254.{}.", 100 + fixture.n);
    for info in [&info_a, &info_b] {
        assert!(
            info.container_ip.starts_with(&subnet),
            "container IP {} not in {subnet}0/24",
            info.container_ip
        );
        assert_eq!(info.host_ip, "127.0.0.1");
    }
    assert_ne!(info_a.container_ip, info_b.container_ip);

    // The container sees its own address on eth0 and a default route via the bridge.
    let (status, out, err) = sh(&a, "ip -4 addr show eth0; ip route").await;
    assert!(status.success(), "{err}");
    assert!(
        out.contains(&format!("inet {}/24", info_a.container_ip)),
        "{out}"
    );
    assert!(out.contains(&format!("default via {subnet}1")), "{out}");

    serve(&a, 8080, "hello from a").await;
    let script = format!(
        "for i in $(seq 100); do wget -q -O - http://{}:8080/ && exit 0; sleep 0.1; done; exit 1",
        info_a.container_ip
    );
    let (status, out, err) = sh(&b, &script).await;
    assert!(status.success(), "b could not reach a: {out}{err}");
    assert_eq!(out.trim(), "hello from a");

    backend.destroy("by-ip-a").await.unwrap();
    backend.destroy("by-ip-b").await.unwrap();
    fixture.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_ports_answer_on_localhost_and_on_the_hosts_ip() {
    let Some(fixture) = fixture("dnat", 24) else {
        return;
    };
    let other = OtherHost::new(fixture.n);
    let backend = fixture.backend();
    let mut spec = ContainerSpec::new("dnat");
    spec.net_in.push(NetIn {
        host_port: 0,
        container_port: 8080,
    });
    let container = backend.create(spec).await.unwrap();
    let second = container.net_in(0, 9090).await.unwrap();
    let info = container.info().await.unwrap();
    assert_eq!(info.mapped_ports.len(), 2);
    let first = info.mapped_ports[0];
    assert_eq!(
        first.container_port, 8080,
        "the container keeps its own port"
    );
    assert_eq!(second.container_port, 9090);
    assert_ne!(first.host_port, second.host_port);
    assert_eq!(fixture.dnat_rules().len(), 2, "{:?}", fixture.dnat_rules());
    serve(&container, 8080, "eighty-eighty").await;
    serve(&container, 9090, "ninety-ninety").await;

    // From this host, on the loopback address (DNAT in the output chain).
    let response = tokio::task::spawn_blocking(move || {
        http_get(SocketAddr::from((Ipv4Addr::LOCALHOST, first.host_port)))
    })
    .await
    .unwrap();
    assert!(response.contains("eighty-eighty"), "{response}");

    // From another container, through the host's address on the bridge (hairpin).
    let neighbour = backend
        .create(ContainerSpec::new("dnat-neighbour"))
        .await
        .unwrap();
    let gateway = format!("10.254.{}.1", 100 + fixture.n);
    let script = format!(
        "for i in $(seq 100); do wget -q -O - http://{gateway}:{}/ && exit 0; sleep 0.1; done; exit 1",
        first.host_port
    );
    let (status, out, err) = sh(&neighbour, &script).await;
    assert!(status.success(), "no hairpin: {out}{err}");
    assert_eq!(out.trim(), "eighty-eighty");
    backend.destroy("dnat-neighbour").await.unwrap();

    // From another host, through this host's address on the link between them (DNAT in
    // prerouting): the way a router reaches the container.
    let here = other.here;
    let response = other.within(move || http_get(SocketAddr::from((here, second.host_port))));
    assert!(response.contains("ninety-ninety"), "{response}");

    backend.destroy("dnat").await.unwrap();
    fixture.assert_clean();
    // The port answers no more.
    let refused = TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, first.host_port)),
        Duration::from_secs(2),
    );
    assert!(
        refused.is_err(),
        "the host port still answers after destroy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_traffic_is_masqueraded_as_the_host() {
    let Some(fixture) = fixture("masquerade", 24) else {
        return;
    };
    let other = OtherHost::new(fixture.n);
    // A server on the other host that answers with the address it saw.
    let there = other.there;
    let listener = other.within(move || TcpListener::bind((there, 0)).unwrap());
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, peer) = listener.accept().unwrap();
        stream
            .write_all(format!("you are {}\n", peer.ip()).as_bytes())
            .unwrap();
        peer
    });

    let backend = fixture.backend();
    let container = backend.create(ContainerSpec::new("masq")).await.unwrap();
    let container_ip = container.info().await.unwrap().container_ip;
    let (status, out, err) = sh(&container, &format!("nc -w 5 {there} {port} </dev/null")).await;
    assert!(status.success(), "{out}{err}");
    let peer = server.join().unwrap();
    assert_eq!(
        peer.ip().to_string(),
        other.here.to_string(),
        "the other host saw {peer}, not this host (the container is {container_ip})"
    );
    assert_eq!(out.trim(), format!("you are {}", other.here));
    let metrics = container.metrics().await.unwrap();
    assert!(
        metrics.rx_bytes > 0 && metrics.tx_bytes > 0,
        "no traffic counted: {metrics:?}"
    );

    backend.destroy("masq").await.unwrap();
    fixture.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_churn_leaks_no_ip() {
    // A /28 has 13 container addresses: a single leaked one shows in the last round.
    let Some(fixture) = fixture("churn", 28) else {
        return;
    };
    let backend = fixture.backend();
    for round in 0..4 {
        let creates = (0..10).map(|i| {
            let mut spec = ContainerSpec::new(format!("churn-{round}-{i}"));
            spec.net_in.push(NetIn {
                host_port: 0,
                container_port: 8080,
            });
            backend.create(spec)
        });
        for created in futures::future::join_all(creates).await {
            created.unwrap();
        }
        let destroys = (0..10).map(|i| {
            let handle = format!("churn-{round}-{i}");
            async move { backend.destroy(&handle).await }
        });
        for destroyed in futures::future::join_all(destroys).await {
            destroyed.unwrap();
        }
    }
    fixture.assert_clean();
    // Every address is free again: 13 fit, the 14th is refused for want of one.
    let creates = (0..13).map(|i| backend.create(ContainerSpec::new(format!("full-{i}"))));
    let mut ips = std::collections::BTreeSet::new();
    for created in futures::future::join_all(creates).await {
        ips.insert(created.unwrap().info().await.unwrap().container_ip);
    }
    assert_eq!(ips.len(), 13, "IPs handed out twice: {ips:?}");
    match backend.create(ContainerSpec::new("one-too-many")).await {
        Err(Error::InsufficientResources { reason }) => assert!(reason.contains("IP"), "{reason}"),
        Err(other) => panic!("expected InsufficientResources, got {other}"),
        Ok(_) => panic!("a 14th container got an IP in a /28"),
    }
    let destroys = (0..13).map(|i| {
        let handle = format!("full-{i}");
        async move { backend.destroy(&handle).await }
    });
    for destroyed in futures::future::join_all(destroys).await {
        destroyed.unwrap();
    }
    fixture.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_removes_leftovers_and_drop_removes_the_bridge() {
    if let Some(why) = missing_dependency("leftovers") {
        precondition_missing("linux_bridged::leftovers", &why);
        return;
    }
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let network = network_for(n, 24);
    // What a crashed run leaves: a veth host end and a DNAT rule in the table.
    let stale = format!("{}42", network.veth_prefix());
    let table = network.table_name();
    let _ = Command::new("ip").args(["link", "del", &stale]).output();
    run(
        "ip",
        &[
            "link",
            "add",
            &stale,
            "type",
            "veth",
            "peer",
            "name",
            &format!("dgt{n}p"),
        ],
    );
    run("nft", &["add", "table", "ip", &table]);
    run("nft", &["add", "chain", "ip", &table, "ports"]);
    run(
        "nft",
        &[
            "add",
            "rule",
            "ip",
            &table,
            "ports",
            "tcp",
            "dport",
            "1",
            "dnat",
            "to",
            "10.254.1.2:1",
        ],
    );
    let fixture = fixture_with("leftovers", n, network.clone());
    assert!(
        !PathBuf::from("/sys/class/net").join(&stale).exists(),
        "the stale veth is still there"
    );
    fixture.assert_clean();
    let bridge = PathBuf::from("/sys/class/net").join(network.bridge_name());
    assert!(bridge.exists(), "no bridge");
    let container = fixture
        .backend()
        .create(ContainerSpec::new("left"))
        .await
        .unwrap();
    let (status, _, err) = sh(&container, "true").await;
    assert!(status.success(), "{err}");
    // Dropping the backend destroys its containers, its table and the bridge it made.
    drop(fixture);
    assert!(!bridge.exists(), "the bridge outlived the backend");
    let tables = run("nft", &["list", "tables"]);
    assert!(
        !tables.contains(&table),
        "the table outlived the backend: {tables}"
    );
}

#[test]
fn bad_settings_are_refused_with_the_field_named() {
    if LinuxBackend::available().is_err() {
        precondition_missing("linux_bridged::bad_settings", "not root");
        return;
    }
    let dir = std::env::temp_dir().join(format!("garden-bridged-bad-{}", std::process::id()));
    let config = LinuxBackendConfig::new(&dir, rootfs().display().to_string()).network(
        NetworkMode::Bridged(BridgeNetwork::new("dgbad", "10.254.0.1/33")),
    );
    match LinuxBackend::new(config) {
        Err(Error::InvalidSpec { reason }) => {
            assert!(reason.contains("network.bridged.subnet"), "{reason}")
        }
        Err(other) => panic!("expected InvalidSpec, got {other}"),
        Ok(_) => panic!("a bad subnet was accepted"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server on the other host answering every connection with "hi"; its port.
fn serve_on(other: &OtherHost) -> u16 {
    let there = other.there;
    let listener = other.within(move || TcpListener::bind((there, 0)).unwrap());
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.write_all(b"hi\n");
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn net_out_rules_are_enforced_when_asked() {
    let Some(fixture) = fixture_enforcing("net_out", 24, true) else {
        return;
    };
    let backend = fixture.backend();
    assert!(backend.capabilities().net_out, "enforcement not reported");
    let other = OtherHost::new(fixture.n);
    let (allowed, denied) = (serve_on(&other), serve_on(&other));
    let there = other.there;
    let connect = |port: u16| format!("nc -w 5 {there} {port} </dev/null");

    // No rules: nothing outside the bridge, but the other containers are reachable.
    let closed = backend.create(ContainerSpec::new("closed")).await.unwrap();
    let (status, out, _) = sh(&closed, &connect(allowed)).await;
    assert!(
        !status.success(),
        "a container without rules got out: {out}"
    );

    let mut spec = ContainerSpec::new("open");
    spec.net_out = vec![NetOutRule::new(Protocol::Tcp)
        .network(format!("{}/32", other.there))
        .ports(allowed, allowed)];
    spec.net_in.push(NetIn {
        host_port: 0,
        container_port: 8080,
    });
    let open = backend.create(spec).await.unwrap();
    let (status, out, err) = sh(&open, &connect(allowed)).await;
    assert!(status.success(), "the allowed port is closed: {out}{err}");
    assert_eq!(out.trim(), "hi");
    let (status, out, _) = sh(&open, &connect(denied)).await;
    assert!(!status.success(), "a port no rule allows is open: {out}");

    // Inbound connections and their replies pass whatever the rules.
    serve(&open, 8080, "still served").await;
    let host_port = open.info().await.unwrap().mapped_ports[0].host_port;
    let here = other.here;
    let response = other.within(move || http_get(SocketAddr::from((here, host_port))));
    assert!(response.contains("still served"), "{response}");
    let open_ip = open.info().await.unwrap().container_ip;
    let script = format!(
        "for i in $(seq 100); do wget -q -O - http://{open_ip}:8080/ && exit 0; sleep 0.1; done; exit 1"
    );
    let (status, out, err) = sh(&closed, &script).await;
    assert!(
        status.success(),
        "containers cannot reach each other: {out}{err}"
    );

    // Bad rules are refused with the field named, and leave nothing behind.
    let mut bad = ContainerSpec::new("bad");
    bad.net_out = vec![NetOutRule::new(Protocol::Icmp).ports(1, 2)];
    match backend.create(bad).await {
        Err(Error::InvalidSpec { reason }) => {
            assert!(reason.contains("net_out[0].ports"), "{reason}")
        }
        Err(other) => panic!("expected InvalidSpec, got {other}"),
        Ok(_) => panic!("ports on an icmp rule were accepted"),
    }

    backend.destroy("closed").await.unwrap();
    backend.destroy("open").await.unwrap();
    fixture.assert_clean();
}

#[test]
fn a_backend_that_cannot_start_leaves_no_bridge() {
    if let Some(why) = missing_dependency("cannot_start") {
        precondition_missing("linux_bridged::cannot_start", &why);
        return;
    }
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let mut network = network_for(n, 24);
    network.nft = "/nonexistent/nft".to_string();
    let dir = std::env::temp_dir().join(format!("garden-bridged-nonft-{}", std::process::id()));
    let config = LinuxBackendConfig::new(&dir, rootfs().display().to_string())
        .network(NetworkMode::Bridged(network.clone()));
    match LinuxBackend::new(config) {
        Err(Error::Backend { context, .. }) => assert!(context.contains("nftables"), "{context}"),
        Err(other) => panic!("expected a backend error, got {other}"),
        Ok(_) => panic!("started without nft"),
    }
    let bridge = PathBuf::from("/sys/class/net").join(network.bridge_name());
    assert!(!bridge.exists(), "the bridge of a failed start is left");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An `nft` that applies rules but never tells their handles (as if `--echo` printed
/// nothing): destroy must then find a container's rules by their comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_whose_handles_are_unknown_are_still_removed() {
    if let Some(why) = missing_dependency("unknown_handles") {
        precondition_missing("linux_bridged::unknown_handles", &why);
        return;
    }
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("garden-bridged-mute-nft-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let real = run("sh", &["-c", "command -v nft"]);
    let wrapper = dir.join("nft");
    let script = format!(
        "#!/bin/sh\n\
         case \" $* \" in\n\
         *' --echo '*) args=''; for a in \"$@\"; do [ \"$a\" = --echo ] || args=\"$args $a\"; done;\n\
         {real} $args >/dev/null || exit $?; echo '{{\"nftables\": []}}' ;;\n\
         *) exec {real} \"$@\" ;;\n\
         esac\n",
        real = real.trim()
    );
    std::fs::write(&wrapper, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut network = network_for(n, 24).enforce_net_out(true);
    network.nft = wrapper.display().to_string();
    let fixture = fixture_with("unknown_handles", n, network);
    let backend = fixture.backend();
    let mut spec = ContainerSpec::new("mute");
    spec.net_in.push(NetIn {
        host_port: 0,
        container_port: 8080,
    });
    spec.net_out = vec![NetOutRule::new(Protocol::Udp).ports(53, 53)];
    let container = backend.create(spec).await.unwrap();
    container.net_in(0, 9090).await.unwrap();
    assert_eq!(fixture.dnat_rules().len(), 2, "{:?}", fixture.dnat_rules());
    backend.destroy("mute").await.unwrap();
    fixture.assert_clean();
    drop(fixture);
    let _ = std::fs::remove_dir_all(&dir);
}
