//! Bridged networking for the [`LinuxBackend`](super::LinuxBackend): each container gets
//! its own network namespace, joined to a host bridge by a veth pair, an IP from the
//! bridge's subnet and a default route through the bridge; `net_in` becomes a DNAT rule
//! and outbound traffic leaves masqueraded as the host.
//!
//! Links, addresses and routes are made over rtnetlink; NAT rules are nftables rules (the
//! `nft` program, driven through its JSON interface) in a table of the backend's own. This
//! module knows nothing of processes: it hands the sandbox a namespace to join.
//!
//! Names, all derived from [`BridgeNetwork::name`] (say `dg0`): the bridge `dg0br`, the
//! host ends of the veth pairs `dg0v<n>` (`n`: the container's offset in the subnet), the
//! nftables table `ip diego_dg0`. At start-up the backend deletes the host ends and the
//! table left by a previous run with the same name, so nothing of a crashed run stays.
//!
//! Rules of the table:
//! - `prerouting` and `output` (nat): `fib daddr type local jump ports`, so a mapped port
//!   answers on every local address of the host, `127.0.0.1` included;
//! - `ports`: one `tcp dport <host port> dnat to <container ip>:<container port>` rule per
//!   mapping, its comment naming the container (`c<n>`);
//! - `forward` (filter, policy accept): replies of established connections pass; with
//!   [`BridgeNetwork::enforce_net_out`], traffic from a container to outside the subnet
//!   jumps to the container's chain `egress_c<n>`: one accept rule per `net_out` rule,
//!   then reject;
//! - `postrouting` (nat): traffic from the subnet leaving by another interface is
//!   masqueraded (outbound access), so is traffic from one container DNATed to another
//!   (hairpin: a container reaching a mapped port on a host address), and traffic from
//!   `127.0.0.0/8` DNATed onto the bridge is masqueraded as the bridge's address (with
//!   `route_localnet` on the bridge, which the kernel needs to route a loopback source
//!   out of it): a mapped port answers on `127.0.0.1` as in host-network mode.
//!
//! The backend keeps the handle nft tells (`--echo`) of each rule it adds to a shared
//! chain and deletes the container's rules by handle on destroy, in one transaction with
//! its egress chain; rules whose handle was not told are found by their comment.
//!
//! Each batch is built as a value (the `ruleset` module) and applied through the
//! `netfilter` seam, so the rules are tested without root.
//!
//! The backend also turns on `net.ipv4.ip_forward` (host-wide), without which no container
//! packet is routed off the bridge.

mod ruleset;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use nftables::schema::{NfCmd, NfListObject, NfObject, Nftables};
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute};
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use self::ruleset::NatTable;
use super::netfilter::{Netfilter, NftProgram};
use super::syscall::Syscall;
use crate::error::{Error, Result};
use crate::spec::NetOutRule;

/// The settings of bridged networking (see [`NetworkMode::Bridged`]):
/// [`new`](Self::new) or [`default`](Self::default), then the setters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeNetwork {
    /// A short name (1 to 8 characters of `[a-z0-9]`) the bridge, the veth links and the
    /// nftables table are named after; backends that share a host need different names.
    pub name: String,
    /// The subnet containers take their IPs from, in CIDR notation (`10.254.0.0/22`),
    /// with prefix length 16 to 29. Its first address is the bridge's (the containers'
    /// gateway); the others but the last (broadcast) are handed out.
    pub subnet: String,
    /// The program driving nftables (`nft`, looked up in `PATH`, unless a path is given).
    pub nft: String,
    /// Whether containers' `net_out` rules are enforced. `false` (the default): every
    /// container may reach any network (masqueraded), whatever its rules say. `true`: a
    /// container reaches networks outside the bridge's subnet only as its rules allow
    /// (none: nothing); other traffic is rejected. Replies to connections made to the
    /// container, the host itself and the other containers stay reachable either way.
    pub enforce_net_out: bool,
}

impl Default for BridgeNetwork {
    fn default() -> Self {
        BridgeNetwork {
            name: "dg0".to_string(),
            subnet: "10.254.0.0/22".to_string(),
            nft: "nft".to_string(),
            enforce_net_out: false,
        }
    }
}

impl BridgeNetwork {
    /// Bridged networking with this name and subnet (and `nft` from `PATH`).
    pub fn new(name: impl Into<String>, subnet: impl Into<String>) -> Self {
        BridgeNetwork {
            name: name.into(),
            subnet: subnet.into(),
            ..BridgeNetwork::default()
        }
    }

    /// Sets [`enforce_net_out`](Self::enforce_net_out).
    #[must_use]
    pub fn enforce_net_out(mut self, yes: bool) -> Self {
        self.enforce_net_out = yes;
        self
    }

    /// Sets the program driving nftables ([`nft`](Self::nft)).
    #[must_use]
    pub fn with_nft(mut self, program: impl Into<String>) -> Self {
        self.nft = program.into();
        self
    }

    /// The name of the bridge (`<name>br`).
    pub fn bridge_name(&self) -> String {
        format!("{}br", self.name)
    }

    /// The prefix of the host ends of the containers' veth pairs (`<name>v`).
    pub fn veth_prefix(&self) -> String {
        format!("{}v", self.name)
    }

    /// The name of the nftables table (family `ip`) holding the backend's rules.
    pub fn table_name(&self) -> String {
        format!("diego_{}", self.name)
    }

    /// Checks the settings; the error names the field and the reason.
    pub fn validate(&self) -> Result<()> {
        self.checked_subnet().map(drop)
    }

    /// The subnet, once the settings are checked.
    fn checked_subnet(&self) -> Result<Ipv4Net> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 8
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !name_ok {
            return Err(Error::invalid(format!(
                "network.bridged.name: {:?} must be 1 to 8 characters of [a-z0-9]",
                self.name
            )));
        }
        let subnet: Ipv4Net = self.subnet.parse().map_err(|e| {
            Error::invalid(format!(
                "network.bridged.subnet: {:?} is not an IPv4 CIDR: {e}",
                self.subnet
            ))
        })?;
        if !(16..=29).contains(&subnet.prefix_len()) {
            return Err(Error::invalid(format!(
                "network.bridged.subnet: {:?} must have a prefix length of 16 to 29",
                self.subnet
            )));
        }
        if subnet.trunc() != subnet {
            return Err(Error::invalid(format!(
                "network.bridged.subnet: {:?} has host bits set (did you mean {}?)",
                self.subnet,
                subnet.trunc()
            )));
        }
        if self.nft.is_empty() {
            return Err(Error::invalid("network.bridged.nft: empty program name"));
        }
        Ok(subnet)
    }
}

/// How the containers of a [`LinuxBackend`](super::LinuxBackend) are networked.
///
/// ```
/// use diego_garden::{BridgeNetwork, LinuxBackendConfig, NetworkMode};
///
/// // Containers on bridge `dg0br`, IPs from 10.254.0.0/22, egress rules enforced.
/// let network = BridgeNetwork::new("dg0", "10.254.0.0/22").enforce_net_out(true);
/// assert_eq!(network.bridge_name(), "dg0br");
/// assert!(network.validate().is_ok());
/// let config = LinuxBackendConfig::new("/var/lib/diego-rs/containers", "/var/lib/diego-rs/rootfs/busybox")
///     .network(NetworkMode::Bridged(network));
/// // `LinuxBackend::new(config)` then needs root, nftables and a kernel with veth and
/// // bridge support.
/// # let _ = config;
///
/// // A bad subnet is refused with the field named.
/// let err = BridgeNetwork::new("dg0", "10.254.0.1/22").validate().unwrap_err();
/// assert!(err.to_string().contains("network.bridged.subnet"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetworkMode {
    /// The host's network: `net_in` leases host ports the process listens on itself.
    #[default]
    Host,
    /// An own network namespace on a host bridge, `net_in` by DNAT (TCP), outbound traffic
    /// masqueraded (see [`BridgeNetwork`]). The backend makes the bridge when missing
    /// (and removes it when dropped), turns on `net.ipv4.ip_forward` host-wide, keeps its
    /// rules in an nftables table of its own (`nft` must be installed) and, at start-up,
    /// removes the veths and rules a previous backend of the same name left.
    Bridged(BridgeNetwork),
}

/// The errno of a netlink failure, if it is one.
fn netlink_errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(message) => message.code.map(|c| -c.get()),
        _ => None,
    }
}

fn netlink(context: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Error {
    let context = context.into();
    move |err| Error::backend(context, err)
}

/// Runs `work` on a thread of its own with a current-thread runtime (and so a netlink
/// connection of its own): the thread may change its network namespace, which must never
/// happen on a thread that is shared.
fn on_own_thread<T, F>(what: &'static str, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&tokio::runtime::Runtime) -> Result<T> + Send + 'static,
{
    std::thread::Builder::new()
        .name("diego-garden-net".to_string())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .map_err(|e| Error::backend(format!("{what}: starting a runtime"), e))?;
            work(&runtime)
        })
        .map_err(|e| Error::backend(format!("{what}: starting a thread"), e))?
        .join()
        .map_err(|_| Error::backend(what, std::io::Error::other("the network thread panicked")))?
}

/// A netlink connection in the calling thread's current network namespace.
fn connect(runtime: &tokio::runtime::Runtime) -> Result<rtnetlink::Handle> {
    let _entered = runtime.enter();
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(|e| Error::backend("opening a netlink socket", e))?;
    runtime.spawn(connection);
    Ok(handle)
}

/// The index of the link named `name`, `None` when there is none.
async fn link_index(handle: &rtnetlink::Handle, name: &str) -> Result<Option<u32>> {
    match handle
        .link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await
    {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        Err(err) if netlink_errno(&err) == Some(libc::ENODEV) => Ok(None),
        Err(err) => Err(Error::backend(format!("looking up link {name}"), err)),
    }
}

/// Deletes the link named `name`; no error when there is none.
async fn delete_link(handle: &rtnetlink::Handle, name: &str) -> Result<()> {
    let Some(index) = link_index(handle, name).await? else {
        return Ok(());
    };
    match handle.link().del(index).execute().await {
        Ok(()) => Ok(()),
        Err(err) if netlink_errno(&err) == Some(libc::ENODEV) => Ok(()),
        Err(err) => Err(Error::backend(format!("deleting link {name}"), err)),
    }
}

fn write_sysctl(sys: &dyn Syscall, path: &str, value: &str) -> Result<()> {
    sys.write(Path::new(path), value)
        .map_err(|e| Error::backend(format!("writing {path}"), e))
}

/// The subnet of checked settings and its gateway (its first host address, the bridge's).
fn addresses(config: &BridgeNetwork) -> Result<(Ipv4Net, Ipv4Addr)> {
    let subnet = config.checked_subnet()?;
    let gateway = subnet
        .hosts()
        .next()
        .ok_or_else(|| Error::invalid("network.bridged.subnet: no host addresses"))?;
    Ok((subnet, gateway))
}

/// The bridge, the address allocator and the NAT table of a backend in bridged mode.
#[derive(Debug)]
pub(crate) struct Bridge {
    config: BridgeNetwork,
    /// The table, the bridge's name and the subnet; the batches are built from it.
    nat: NatTable,
    gateway: Ipv4Addr,
    /// Whether this backend made the bridge (and so removes it when dropped).
    created_bridge: bool,
    /// Offsets in the subnet in use, and where the next search starts.
    leases: Mutex<(BTreeSet<u32>, u32)>,
    /// Host files (sysctls, link statistics).
    sys: Arc<dyn Syscall>,
    /// Where the batches are applied.
    netfilter: Arc<dyn Netfilter>,
}

/// A container's place on the bridge.
#[derive(Debug)]
pub(crate) struct Attachment {
    /// The container's network namespace (kept alive by this descriptor).
    pub(crate) netns: OwnedFd,
    /// The container's IP.
    pub(crate) ip: Ipv4Addr,
    /// Its offset in the subnet (names its veth and tags its rules).
    offset: u32,
    /// The host end of its veth pair.
    veth: String,
    /// Its rules: held while one is added or while all are removed, so that a rule added
    /// while the container is destroyed is removed with the others, or never added.
    rules: Mutex<Rules>,
}

/// What a container has in the NAT table.
#[derive(Debug, Default)]
struct Rules {
    /// The (chain, handle) of each rule added in a shared chain (DNAT rules, the jump to
    /// the egress chain), deleted by handle on destroy.
    handles: Vec<(&'static str, u32)>,
    /// Whether a rule was added whose handle nft did not tell: destroy then finds the
    /// container's rules by their comment.
    untracked: bool,
    /// Whether the container has an egress chain.
    egress: bool,
    /// Whether the container was detached (no rule may be added any more).
    detached: bool,
}

impl Attachment {
    /// The raw descriptor of the namespace, for `setns` in a child.
    pub(crate) fn netns_fd(&self) -> RawFd {
        self.netns.as_raw_fd()
    }

    /// An attachment at `offset` of `bridge`'s subnet whose namespace is `netns`, with no
    /// link made: for tests of what a container's rules and processes would be.
    #[cfg(test)]
    pub(crate) fn unlinked(bridge: &Bridge, netns: OwnedFd, offset: u32) -> Attachment {
        Attachment {
            netns,
            ip: bridge.ip_of(offset),
            offset,
            veth: format!("{}{offset}", bridge.config.veth_prefix()),
            rules: Mutex::new(Rules::default()),
        }
    }
}

impl Bridge {
    /// Checks the settings, makes the bridge when missing (address, up), turns on IP
    /// forwarding and `route_localnet` on the bridge, removes what a previous run with the
    /// same name left (veth host ends and the nftables table) and installs a fresh table.
    pub(crate) fn start(config: BridgeNetwork, sys: &Arc<dyn Syscall>) -> Result<Bridge> {
        let (subnet, gateway) = addresses(&config)?;
        let bridge = config.bridge_name();
        let prefix = config.veth_prefix();
        let created_bridge = {
            let bridge = bridge.clone();
            on_own_thread("setting up the bridge", move |runtime| {
                let handle = connect(runtime)?;
                runtime.block_on(async move {
                    let mut created = false;
                    let index = match link_index(&handle, &bridge).await? {
                        Some(index) => index,
                        None => {
                            handle
                                .link()
                                .add(LinkBridge::new(&bridge).build())
                                .execute()
                                .await
                                .map_err(netlink(format!("creating bridge {bridge}")))?;
                            created = true;
                            link_index(&handle, &bridge).await?.ok_or_else(|| {
                                Error::backend(
                                    format!("creating bridge {bridge}"),
                                    std::io::Error::other("the new bridge is not listed"),
                                )
                            })?
                        }
                    };
                    handle
                        .address()
                        .add(index, IpAddr::V4(gateway), subnet.prefix_len())
                        .replace()
                        .execute()
                        .await
                        .map_err(netlink(format!("addressing bridge {bridge}")))?;
                    handle
                        .link()
                        .set(LinkUnspec::new_with_index(index).up().build())
                        .execute()
                        .await
                        .map_err(netlink(format!("bringing bridge {bridge} up")))?;
                    // Host ends left by a run that did not clean up.
                    let mut links = handle.link().get().execute();
                    let mut stale = Vec::new();
                    while let Some(link) =
                        links.try_next().await.map_err(netlink("listing links"))?
                    {
                        for attribute in &link.attributes {
                            if let LinkAttribute::IfName(name) = attribute {
                                let rest = name.strip_prefix(&prefix).unwrap_or("");
                                if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
                                    stale.push(name.clone());
                                }
                            }
                        }
                    }
                    for name in stale {
                        tracing::info!(link = %name, "removing a veth left by a previous run");
                        delete_link(&handle, &name).await?;
                    }
                    Ok(created)
                })
            })?
        };
        write_sysctl(&**sys, "/proc/sys/net/ipv4/ip_forward", "1")?;
        write_sysctl(
            &**sys,
            &format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
            "1",
        )?;
        let netfilter = Arc::new(NftProgram::new(config.nft.clone()));
        let this = Bridge::assemble(
            config,
            (subnet, gateway),
            created_bridge,
            Arc::clone(sys),
            netfilter,
        );
        this.reset_table()?;
        Ok(this)
    }

    fn assemble(
        config: BridgeNetwork,
        (subnet, gateway): (Ipv4Net, Ipv4Addr),
        created_bridge: bool,
        sys: Arc<dyn Syscall>,
        netfilter: Arc<dyn Netfilter>,
    ) -> Bridge {
        Bridge {
            nat: NatTable {
                name: config.table_name(),
                bridge: config.bridge_name(),
                subnet,
            },
            config,
            gateway,
            created_bridge,
            leases: Mutex::new((BTreeSet::new(), 2)),
            sys,
            netfilter,
        }
    }

    /// A bridge as [`start`](Self::start) leaves it, without the links, sysctls and table
    /// made: for tests of what it applies through `netfilter`.
    #[cfg(test)]
    pub(crate) fn unstarted(
        config: BridgeNetwork,
        sys: Arc<dyn Syscall>,
        netfilter: Arc<dyn Netfilter>,
    ) -> Result<Bridge> {
        let addresses = addresses(&config)?;
        Ok(Bridge::assemble(config, addresses, false, sys, netfilter))
    }

    /// Applies `ruleset`, which adds one rule to the shared chain `chain`, and records
    /// the new rule's handle (nft's `--echo`) in `rules`.
    fn apply_tracked(
        &self,
        what: &str,
        ruleset: &Nftables<'_>,
        chain: &'static str,
        rules: &mut Rules,
    ) -> Result<()> {
        let echoed = self
            .netfilter
            .apply_echoed(ruleset)
            .map_err(|e| Error::backend(format!("nftables: {what}"), e))?;
        let handle = echoed.objects.iter().find_map(|object| match object {
            NfObject::CmdObject(NfCmd::Add(NfListObject::Rule(rule))) if rule.chain == chain => {
                rule.handle
            }
            _ => None,
        });
        match handle {
            Some(handle) => rules.handles.push((chain, handle)),
            None => rules.untracked = true,
        }
        Ok(())
    }

    fn apply(&self, what: &str, ruleset: &Nftables<'_>) -> Result<()> {
        self.netfilter
            .apply(ruleset)
            .map_err(|e| Error::backend(format!("nftables: {what}"), e))
    }

    /// Replaces the backend's table by an empty one with its base chains and rules.
    fn reset_table(&self) -> Result<()> {
        self.apply("installing the table", &self.nat.reset()?)
    }

    fn lease(&self) -> Result<u32> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        // Offsets 2 ..= size - 2: not the network, the gateway (1) nor the broadcast.
        let last = (1u32 << (32 - self.nat.subnet.prefix_len())) - 2;
        let first = 2;
        let mut candidate = leases.1.clamp(first, last);
        for _ in first..=last {
            let next = if candidate >= last {
                first
            } else {
                candidate + 1
            };
            if leases.0.insert(candidate) {
                leases.1 = next;
                return Ok(candidate);
            }
            candidate = next;
        }
        Err(Error::InsufficientResources {
            reason: format!("no free IP left in {}", self.nat.subnet),
        })
    }

    fn release(&self, offset: u32) {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        leases.0.remove(&offset);
    }

    /// How many container IPs are leased now.
    pub(crate) fn leased(&self) -> usize {
        self.leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .len()
    }

    fn ip_of(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.nat.subnet.network()) + offset)
    }

    /// Makes a network namespace for a container, joined to the bridge with an IP of its
    /// own and a default route via the bridge (blocking). On failure nothing is left.
    pub(crate) fn attach(&self, net_out: &[NetOutRule]) -> Result<Attachment> {
        let attachment = self.attach_link()?;
        if self.config.enforce_net_out {
            if let Err(err) = self.install_egress(&attachment, net_out) {
                let _ = self.detach(&attachment);
                return Err(err);
            }
        }
        Ok(attachment)
    }

    /// Whether `net_out` rules are enforced.
    pub(crate) fn enforces_net_out(&self) -> bool {
        self.config.enforce_net_out
    }

    /// The container's egress chain (its rules, then reject) and the jump to it.
    fn install_egress(&self, attachment: &Attachment, net_out: &[NetOutRule]) -> Result<()> {
        let batch = self.nat.egress(attachment.offset, attachment.ip, net_out)?;
        let mut rules = attachment.rules.lock().unwrap_or_else(|p| p.into_inner());
        self.apply_tracked(
            &format!("installing the egress rules of {}", attachment.ip),
            &batch,
            "forward",
            &mut rules,
        )?;
        rules.egress = true;
        Ok(())
    }

    fn attach_link(&self) -> Result<Attachment> {
        let offset = self.lease()?;
        let ip = self.ip_of(offset);
        let veth = format!("{}{offset}", self.config.veth_prefix());
        let made = {
            let veth = veth.clone();
            let bridge = self.nat.bridge.clone();
            let (gateway, prefix_len) = (self.gateway, self.nat.subnet.prefix_len());
            on_own_thread("attaching a container to the bridge", move |runtime| {
                let host = connect(runtime)?;
                // This thread alone moves to the new namespace; `host` stays on the host's.
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| Error::backend("creating a network namespace", e))?;
                let netns: OwnedFd = File::open("/proc/thread-self/ns/net")
                    .map_err(|e| Error::backend("opening the new network namespace", e))?
                    .into();
                let inside = connect(runtime)?;
                let fd = netns.as_raw_fd();
                let configured = runtime.block_on(async {
                    // A host end of this name can only be a leftover (its offset was free).
                    delete_link(&host, &veth).await?;
                    let bridge_index = link_index(&host, &bridge).await?.ok_or_else(|| {
                        Error::backend(
                            "attaching a container",
                            std::io::Error::other(format!("bridge {bridge} is gone")),
                        )
                    })?;
                    let peer = LinkMessageBuilder::<LinkUnspec>::default()
                        .name("eth0".to_string())
                        .setns_by_fd(fd)
                        .build();
                    host.link()
                        .add(
                            LinkVeth::new(&veth, "eth0")
                                .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
                                .controller(bridge_index)
                                .up()
                                .build(),
                        )
                        .execute()
                        .await
                        .map_err(netlink(format!("creating veth {veth}")))?;
                    let lo = link_index(&inside, "lo").await?;
                    if let Some(lo) = lo {
                        inside
                            .link()
                            .set(LinkUnspec::new_with_index(lo).up().build())
                            .execute()
                            .await
                            .map_err(netlink("bringing lo up"))?;
                    }
                    let eth0 = link_index(&inside, "eth0").await?.ok_or_else(|| {
                        Error::backend(
                            "attaching a container",
                            std::io::Error::other("eth0 did not arrive in the namespace"),
                        )
                    })?;
                    inside
                        .address()
                        .add(eth0, IpAddr::V4(ip), prefix_len)
                        .execute()
                        .await
                        .map_err(netlink(format!("addressing eth0 as {ip}")))?;
                    inside
                        .link()
                        .set(LinkUnspec::new_with_index(eth0).up().build())
                        .execute()
                        .await
                        .map_err(netlink("bringing eth0 up"))?;
                    inside
                        .route()
                        .add(
                            RouteMessageBuilder::<Ipv4Addr>::new()
                                .gateway(gateway)
                                .output_interface(eth0)
                                .build(),
                        )
                        .execute()
                        .await
                        .map_err(netlink(format!("adding the default route via {gateway}")))?;
                    Ok(())
                });
                if let Err(err) = configured {
                    let _ = runtime.block_on(delete_link(&host, &veth));
                    return Err(err);
                }
                Ok(netns)
            })
        };
        match made {
            Ok(netns) => Ok(Attachment {
                netns,
                ip,
                offset,
                veth,
                rules: Mutex::new(Rules::default()),
            }),
            Err(err) => {
                self.release(offset);
                Err(err)
            }
        }
    }

    /// Adds the DNAT rule of `host_port` to the container's `container_port` (blocking).
    pub(crate) fn map_port(
        &self,
        attachment: &Attachment,
        host_port: u16,
        container_port: u16,
    ) -> Result<()> {
        let batch =
            self.nat
                .port_mapping(attachment.offset, attachment.ip, host_port, container_port);
        let mut rules = attachment.rules.lock().unwrap_or_else(|p| p.into_inner());
        if rules.detached {
            return Err(Error::backend(
                format!("mapping host port {host_port}"),
                std::io::Error::other("the container is being destroyed"),
            ));
        }
        self.apply_tracked(
            &format!(
                "mapping host port {host_port} to {}:{container_port}",
                attachment.ip
            ),
            &batch,
            "ports",
            &mut rules,
        )
    }

    /// Removes the container's DNAT rules and its veth pair, and frees its IP (blocking).
    /// The IP is freed even when a removal fails; the error says which.
    pub(crate) fn detach(&self, attachment: &Attachment) -> Result<()> {
        let rules = self.detach_rules(attachment);
        let veth = attachment.veth.clone();
        let link = on_own_thread("detaching a container", move |runtime| {
            let host = connect(runtime)?;
            runtime.block_on(delete_link(&host, &veth))
        });
        self.release(attachment.offset);
        rules.and(link)
    }

    /// Marks the container detached (no rule is added any more) and deletes its rules.
    fn detach_rules(&self, attachment: &Attachment) -> Result<()> {
        let mut rules = attachment.rules.lock().unwrap_or_else(|p| p.into_inner());
        rules.detached = true;
        if rules.handles.is_empty() && !rules.untracked && !rules.egress {
            Ok(())
        } else {
            self.delete_rules(attachment.offset, &rules)
        }
    }

    /// Deletes the container's rules in the shared chains (by handle, or, when one was
    /// not told, every rule tagged with the container's offset) and its egress chain:
    /// one transaction.
    fn delete_rules(&self, offset: u32, rules: &Rules) -> Result<()> {
        let mut handles: Vec<(String, u32)> = rules
            .handles
            .iter()
            .map(|&(chain, handle)| (chain.to_string(), handle))
            .collect();
        if rules.untracked {
            let tag = NatTable::tag(offset);
            let listed = self
                .netfilter
                .list_table(&self.nat.name)
                .map_err(|e| Error::backend("nftables: listing the table", e))?;
            handles = listed
                .objects
                .iter()
                .filter_map(|object| match object {
                    NfObject::ListObject(NfListObject::Rule(rule))
                        if rule.comment.as_deref() == Some(tag.as_str()) =>
                    {
                        rule.handle.map(|handle| (rule.chain.to_string(), handle))
                    }
                    _ => None,
                })
                .collect();
        }
        match self.nat.deletion(offset, handles, rules.egress) {
            Some(batch) => self.apply("deleting a container's rules", &batch),
            None => Ok(()),
        }
    }

    /// Bytes (received, sent) by the container, read from the host end of its veth.
    pub(crate) fn traffic(&self, attachment: &Attachment) -> (u64, u64) {
        let read = |what: &str| {
            self.sys
                .read_to_string(Path::new(&format!(
                    "/sys/class/net/{}/statistics/{what}",
                    attachment.veth
                )))
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        // What the host end receives, the container sent.
        (read("tx_bytes"), read("rx_bytes"))
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Err(err) = self.apply("removing the table", &self.nat.removal()) {
            tracing::warn!(error = %err, "removing the nftables table failed");
        }
        if self.created_bridge {
            let bridge = self.nat.bridge.clone();
            let removed = on_own_thread("removing the bridge", move |runtime| {
                let host = connect(runtime)?;
                runtime.block_on(delete_link(&host, &bridge))
            });
            if let Err(err) = removed {
                tracing::warn!(error = %err, "removing the bridge failed");
            }
        }
    }
}
