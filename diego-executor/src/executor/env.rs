//! The environment a container's processes get: `INSTANCE_*`, `CF_INSTANCE_*`, `PORT`,
//! then the run request's own variables.
//!
//! It knows containers, ports and instance identities; it must not know Tasks or LRPs.

use crate::executor::container::PortMapping;
use crate::executor::run_request::RunRequest;

/// The environment of every process of a container with these addresses and ports.
///
/// `CF_INSTANCE_IP`/`CF_INSTANCE_INTERNAL_IP` are the host's and the container's
/// addresses; `CF_INSTANCE_PORT`/`CF_INSTANCE_ADDR` come from the first port (empty when
/// none); `CF_INSTANCE_PORTS` lists every `{external, internal}` pair (`[]` when none);
/// `PORT` is set when exactly one port is mapped. Variables of the request come last and
/// win over these.
pub fn container_env(
    request: &RunRequest,
    external_ip: &str,
    internal_ip: &str,
    ports: &[PortMapping],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |name: &str, value: String| env.push((name.to_string(), value));
    if let Some(instance) = &request.instance {
        set("INSTANCE_GUID", instance.guid.clone());
        set("INSTANCE_INDEX", instance.index.to_string());
        set("CF_INSTANCE_GUID", instance.guid.clone());
        set("CF_INSTANCE_INDEX", instance.index.to_string());
    }
    set("CF_INSTANCE_IP", external_ip.to_string());
    set("CF_INSTANCE_INTERNAL_IP", internal_ip.to_string());
    match ports.first() {
        Some(first) => {
            set("CF_INSTANCE_PORT", first.host_port.to_string());
            set(
                "CF_INSTANCE_ADDR",
                format!("{external_ip}:{}", first.host_port),
            );
        }
        None => {
            set("CF_INSTANCE_PORT", String::new());
            set("CF_INSTANCE_ADDR", String::new());
        }
    }
    let pairs: Vec<serde_json::Value> = ports
        .iter()
        .map(|p| serde_json::json!({"external": p.host_port, "internal": p.internal_port}))
        .collect();
    set(
        "CF_INSTANCE_PORTS",
        serde_json::Value::Array(pairs).to_string(),
    );
    if let [only] = ports {
        set("PORT", only.internal_port.to_string());
    }
    for var in &request.env {
        if let Some(slot) = env.iter_mut().find(|(name, _)| *name == var.name) {
            slot.1.clone_from(&var.value);
        } else {
            env.push((var.name.clone(), var.value.clone()));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use diego_core::EnvironmentVariable;

    use super::*;
    use crate::executor::run_request::InstanceIdentity;

    fn get<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
        env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn one_port_and_an_instance() {
        let request = RunRequest {
            instance: Some(InstanceIdentity {
                guid: "ig-1".into(),
                index: 3,
            }),
            env: vec![EnvironmentVariable::new("FOO", "bar")],
            ..RunRequest::default()
        };
        let ports = [PortMapping {
            container_port: 8080,
            host_port: 61001,
            internal_port: 8080,
        }];
        let env = container_env(&request, "10.0.0.5", "10.255.0.2", &ports);
        assert_eq!(get(&env, "INSTANCE_GUID"), Some("ig-1"));
        assert_eq!(get(&env, "CF_INSTANCE_INDEX"), Some("3"));
        assert_eq!(get(&env, "CF_INSTANCE_IP"), Some("10.0.0.5"));
        assert_eq!(get(&env, "CF_INSTANCE_INTERNAL_IP"), Some("10.255.0.2"));
        assert_eq!(get(&env, "CF_INSTANCE_PORT"), Some("61001"));
        assert_eq!(get(&env, "CF_INSTANCE_ADDR"), Some("10.0.0.5:61001"));
        assert_eq!(
            get(&env, "CF_INSTANCE_PORTS"),
            Some(r#"[{"external":61001,"internal":8080}]"#)
        );
        assert_eq!(get(&env, "PORT"), Some("8080"));
        assert_eq!(get(&env, "FOO"), Some("bar"));
    }

    #[test]
    fn no_ports_and_several_ports() {
        let env = container_env(&RunRequest::default(), "1.2.3.4", "1.2.3.4", &[]);
        assert_eq!(get(&env, "CF_INSTANCE_PORT"), Some(""));
        assert_eq!(get(&env, "CF_INSTANCE_ADDR"), Some(""));
        assert_eq!(get(&env, "CF_INSTANCE_PORTS"), Some("[]"));
        assert_eq!(get(&env, "PORT"), None);
        assert_eq!(get(&env, "INSTANCE_GUID"), None);
        let two = [
            PortMapping {
                container_port: 8080,
                host_port: 1,
                internal_port: 8080,
            },
            PortMapping {
                container_port: 9090,
                host_port: 2,
                internal_port: 9090,
            },
        ];
        let env = container_env(&RunRequest::default(), "ip", "ip", &two);
        assert_eq!(get(&env, "PORT"), None);
        assert_eq!(get(&env, "CF_INSTANCE_PORT"), Some("1"));
    }
}
