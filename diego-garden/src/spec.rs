//! What a caller asks a backend for: the specs of containers and of processes.
//!
//! Plain data, shared by every backend; it knows nothing of how a backend isolates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Key/value properties attached to a container (owner, tags, ...), listed by filters.
pub type Properties = BTreeMap<String, String>;

/// Resource limits of a container. `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceLimits {
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// Disk limit in bytes (accounted against capacity; enforced where the backend says so).
    pub disk_bytes: Option<u64>,
    /// Maximum number of processes (and threads).
    pub pids: Option<u64>,
    /// Relative CPU weight (cgroup v2 scale, 1..=10000; 100 is the default share).
    pub cpu_weight: Option<u64>,
    /// Maximum number of open files per process.
    pub nofile: Option<u64>,
}

/// A host path made visible inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    /// The path on the host.
    pub src_path: String,
    /// The absolute path inside the container.
    pub dst_path: String,
    /// Whether the container may only read it.
    pub read_only: bool,
}

/// A port to map into the container when it is created (see `Container::net_in`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetIn {
    /// The host port; 0 lets the backend choose a free one.
    pub host_port: u16,
    /// The port the process inside listens on (a hint in host-network mode, where the
    /// backend reports the port it actually assigned).
    pub container_port: u16,
}

/// The transport a [`NetOutRule`] allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// Any protocol.
    #[default]
    All,
    /// TCP only.
    Tcp,
    /// UDP only.
    Udp,
    /// ICMP only.
    Icmp,
}

/// An egress rule. Backends that do not firewall report it in `Capabilities::net_out`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetOutRule {
    /// The transport allowed.
    pub protocol: Protocol,
    /// Destination networks in CIDR notation (`10.0.0.0/8`) or single addresses;
    /// empty means any.
    pub networks: Vec<String>,
    /// Destination port ranges (inclusive, from 1); empty means any. Only with
    /// [`Protocol::Tcp`] or [`Protocol::Udp`].
    pub ports: Vec<(u16, u16)>,
}

impl NetOutRule {
    /// A rule allowing `protocol` to anywhere.
    pub fn new(protocol: Protocol) -> Self {
        NetOutRule {
            protocol,
            networks: Vec::new(),
            ports: Vec::new(),
        }
    }

    /// Adds a destination network (`10.0.0.0/8`) or address.
    #[must_use]
    pub fn network(mut self, network: impl Into<String>) -> Self {
        self.networks.push(network.into());
        self
    }

    /// Adds a destination port range (inclusive).
    #[must_use]
    pub fn ports(mut self, first: u16, last: u16) -> Self {
        self.ports.push((first, last));
        self
    }

    /// The rule's networks, parsed (a single address is a network of one).
    pub fn parsed_networks(&self) -> crate::Result<Vec<ipnet::IpNet>> {
        self.networks
            .iter()
            .enumerate()
            .map(|(i, text)| {
                text.parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        crate::Error::invalid(format!(
                            "networks[{i}]: {text:?} is neither a CIDR network nor an address"
                        ))
                    })
            })
            .collect()
    }

    /// Checks the rule; the error names the field and the reason.
    pub fn validate(&self) -> crate::Result<()> {
        self.parsed_networks()?;
        for (i, &(first, last)) in self.ports.iter().enumerate() {
            if first == 0 || first > last {
                return Err(crate::Error::invalid(format!(
                    "ports[{i}]: {first}..={last} is not a range of ports from 1"
                )));
            }
        }
        if !self.ports.is_empty() && !matches!(self.protocol, Protocol::Tcp | Protocol::Udp) {
            return Err(crate::Error::invalid(format!(
                "ports: only tcp and udp rules have ports, not {:?}",
                self.protocol
            )));
        }
        Ok(())
    }
}

/// Everything needed to create a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The container's unique handle (`^[a-zA-Z0-9_.-]+$`).
    pub handle: String,
    /// The root filesystem: empty for the backend's default, a directory path, a tarball
    /// path (`.tar`, `.tar.gz`, `.tgz`), `file://<path>`, or `preloaded:<name>` where the
    /// backend knows the name. Backends without their own rootfs ignore it.
    pub rootfs: String,
    /// Environment given to every process of the container, in order.
    pub env: Vec<(String, String)>,
    /// Host paths made visible in the container.
    pub bind_mounts: Vec<BindMount>,
    /// Resource limits.
    pub limits: ResourceLimits,
    /// Ports to map at creation.
    pub net_in: Vec<NetIn>,
    /// Egress rules.
    pub net_out: Vec<NetOutRule>,
    /// Properties (owner, tags); `ContainerBackend::containers` filters on them.
    pub properties: Properties,
}

impl ContainerSpec {
    /// A spec with this handle and everything else default.
    pub fn new(handle: impl Into<String>) -> Self {
        ContainerSpec {
            handle: handle.into(),
            ..ContainerSpec::default()
        }
    }

    /// Adds an environment variable.
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Sets a property.
    #[must_use]
    pub fn property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }

    /// Sets the rootfs.
    #[must_use]
    pub fn rootfs(mut self, rootfs: impl Into<String>) -> Self {
        self.rootfs = rootfs.into();
        self
    }

    /// Sets the resource limits.
    #[must_use]
    pub fn limits(mut self, limits: ResourceLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Checks what every backend requires of a spec.
    pub fn validate(&self) -> crate::Result<()> {
        validate_handle(&self.handle)?;
        for (name, _) in &self.env {
            validate_env_name(name)?;
        }
        for mount in &self.bind_mounts {
            if !mount.dst_path.starts_with('/') {
                return Err(crate::Error::invalid(format!(
                    "bind mount destination must be absolute: {}",
                    mount.dst_path
                )));
            }
        }
        for (i, rule) in self.net_out.iter().enumerate() {
            rule.validate().map_err(|err| match err {
                crate::Error::InvalidSpec { reason } => {
                    crate::Error::invalid(format!("net_out[{i}].{reason}"))
                }
                other => other,
            })?;
        }
        if let Some(weight) = self.limits.cpu_weight {
            if !(1..=10_000).contains(&weight) {
                return Err(crate::Error::invalid("cpu weight must be in 1..=10000"));
            }
        }
        Ok(())
    }
}

/// Checks that a handle is non-empty and made of `[a-zA-Z0-9_.-]` (it names directories
/// and cgroups).
pub fn validate_handle(handle: &str) -> crate::Result<()> {
    let ok = !handle.is_empty()
        && handle.len() <= 255
        && handle != "."
        && handle != ".."
        && handle
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(crate::Error::invalid(format!("invalid handle: {handle:?}")))
    }
}

fn validate_env_name(name: &str) -> crate::Result<()> {
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        return Err(crate::Error::invalid(format!(
            "invalid environment variable name: {name:?}"
        )));
    }
    Ok(())
}

/// Per-process limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessLimits {
    /// Maximum number of open files (overrides the container's `nofile`).
    pub nofile: Option<u64>,
}

/// A process to run in a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// A caller-chosen id; `None` lets the backend make one.
    pub id: Option<String>,
    /// The executable: an absolute path, or a name looked up in `PATH`.
    pub path: String,
    /// Arguments, not including the program name.
    pub args: Vec<String>,
    /// Environment added to (and overriding) the container's.
    pub env: Vec<(String, String)>,
    /// Working directory, a container path; created when missing. `None`: the
    /// container's home (`/` or the backend's container directory).
    pub dir: Option<String>,
    /// The user to run as (a name or numeric uid); `None`: the backend's default.
    pub user: Option<String>,
    /// Limits for this process.
    pub limits: ProcessLimits,
}

impl ProcessSpec {
    /// A spec running `path` with no arguments.
    pub fn new(path: impl Into<String>) -> Self {
        ProcessSpec {
            path: path.into(),
            ..ProcessSpec::default()
        }
    }

    /// `/bin/sh -c <script>`.
    pub fn shell(script: impl Into<String>) -> Self {
        ProcessSpec::new("/bin/sh").args(["-c".to_string(), script.into()])
    }

    /// Sets the arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Adds an environment variable.
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Sets the working directory.
    #[must_use]
    pub fn dir(mut self, dir: impl Into<String>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Sets the process id.
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Checks what every backend requires of a process spec.
    pub fn validate(&self) -> crate::Result<()> {
        if self.path.is_empty() {
            return Err(crate::Error::invalid("process path is empty"));
        }
        for (name, _) in &self.env {
            validate_env_name(name)?;
        }
        if let Some(id) = &self.id {
            validate_handle(id)
                .map_err(|_| crate::Error::invalid(format!("invalid process id: {id:?}")))?;
        }
        Ok(())
    }
}

/// The environment a process gets: the container's, then the process's (later wins),
/// with `PATH` defaulted when neither sets it.
pub fn merged_env(
    container: &[(String, String)],
    process: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(container.len() + process.len() + 1);
    for (name, value) in container.iter().chain(process.iter()) {
        if let Some(slot) = out.iter_mut().find(|(n, _)| n == name) {
            slot.1 = value.clone();
        } else {
            out.push((name.clone(), value.clone()));
        }
    }
    if !out.iter().any(|(n, _)| n == "PATH") {
        out.push((
            "PATH".to_string(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_checked() {
        assert!(validate_handle("app-1_x.y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "é"] {
            assert!(validate_handle(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn process_env_overrides_container_env_and_path_defaults() {
        let env = merged_env(
            &[("A".into(), "1".into()), ("B".into(), "2".into())],
            &[("B".into(), "3".into())],
        );
        assert_eq!(env[0], ("A".into(), "1".into()));
        assert_eq!(env[1], ("B".into(), "3".into()));
        assert!(env.iter().any(|(n, _)| n == "PATH"));
        let env = merged_env(&[("PATH".into(), "/x".into())], &[]);
        assert_eq!(env, vec![("PATH".into(), "/x".into())]);
    }

    #[test]
    fn specs_are_validated() {
        assert!(ContainerSpec::new("ok").validate().is_ok());
        assert!(ContainerSpec::new("ok").env("A=B", "x").validate().is_err());
        let mut spec = ContainerSpec::new("ok");
        spec.limits.cpu_weight = Some(0);
        assert!(spec.validate().is_err());
        assert!(ProcessSpec::new("").validate().is_err());
        let mut spec = ContainerSpec::new("ok");
        spec.net_out = vec![
            NetOutRule::new(Protocol::Tcp)
                .network("10.0.0.0/8")
                .network("192.0.2.7")
                .ports(80, 443),
            NetOutRule::new(Protocol::All),
        ];
        assert!(spec.validate().is_ok());
        for (bad, field) in [
            (
                NetOutRule::new(Protocol::Tcp).network("10.0.0.0/33"),
                "net_out[0].networks[0]",
            ),
            (
                NetOutRule::new(Protocol::Tcp).ports(0, 10),
                "net_out[0].ports[0]",
            ),
            (
                NetOutRule::new(Protocol::Udp).ports(10, 9),
                "net_out[0].ports[0]",
            ),
            (
                NetOutRule::new(Protocol::All).ports(80, 80),
                "net_out[0].ports",
            ),
        ] {
            spec.net_out = vec![bad];
            let err = spec.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err} does not name {field}");
        }
        assert!(ProcessSpec::shell("true").id("a/b").validate().is_err());
    }
}
