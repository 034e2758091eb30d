//! Routes: an opaque map of router name → JSON value, as Diego keeps them, with typed
//! helpers for the `cf-router` (HTTP) and `tcp-router` entries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::models::validation::{FieldPath, Validator};

/// Key of HTTP routes (host names → container port).
pub const CF_ROUTER: &str = "cf-router";
/// Key of TCP routes (external port → container port).
pub const TCP_ROUTER: &str = "tcp-router";
/// Key of internal (container-to-container) routes.
pub const INTERNAL_ROUTER: &str = "internal-router";
/// Largest total size of the route values, in bytes of their JSON.
pub const MAX_ROUTES_BYTES: usize = 131_072;

/// Routes of an LRP: router name → that router's opaque JSON value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Routes(pub BTreeMap<String, serde_json::Value>);

/// One HTTP route entry: host names served by a container port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRoute {
    /// Host names (matched against the `Host` header).
    pub hostnames: Vec<String>,
    /// The container port serving them.
    pub port: u32,
    /// Optional route service URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub route_service_url: String,
}

/// One TCP route entry: an external port on the router forwarding to a container port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpRoute {
    /// Router group of the external port.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub router_group_guid: String,
    /// Port on the router.
    pub external_port: u32,
    /// The container port.
    pub container_port: u32,
}

impl Routes {
    /// No routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The HTTP routes under `cf-router`; empty when absent.
    ///
    /// # Errors
    /// The entry exists but is not a list of [`HttpRoute`]s.
    pub fn http_routes(&self) -> Result<Vec<HttpRoute>, serde_json::Error> {
        self.typed(CF_ROUTER)
    }

    /// Replaces the `cf-router` entry.
    pub fn set_http_routes(&mut self, routes: &[HttpRoute]) {
        self.set_typed(CF_ROUTER, routes);
    }

    /// The TCP routes under `tcp-router`; empty when absent.
    ///
    /// # Errors
    /// The entry exists but is not a list of [`TcpRoute`]s.
    pub fn tcp_routes(&self) -> Result<Vec<TcpRoute>, serde_json::Error> {
        self.typed(TCP_ROUTER)
    }

    /// Replaces the `tcp-router` entry.
    pub fn set_tcp_routes(&mut self, routes: &[TcpRoute]) {
        self.set_typed(TCP_ROUTER, routes);
    }

    /// Routes holding only `hostnames` → `port` under `cf-router`.
    pub fn http(hostnames: &[&str], port: u32) -> Self {
        let mut r = Routes::new();
        r.set_http_routes(&[HttpRoute {
            hostnames: hostnames.iter().map(|h| (*h).to_owned()).collect(),
            port,
            route_service_url: String::new(),
        }]);
        r
    }

    /// Total size of the values, in bytes of their compact JSON.
    pub fn size_bytes(&self) -> usize {
        self.0.values().map(|v| v.to_string().len()).sum()
    }

    fn typed<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Vec<T>, serde_json::Error> {
        match self.0.get(key) {
            None => Ok(Vec::new()),
            Some(v) => Vec::<T>::deserialize(v),
        }
    }

    fn set_typed<T: Serialize>(&mut self, key: &str, routes: &[T]) {
        // Serialising plain structs of strings and integers to a Value cannot fail.
        let value = serde_json::to_value(routes).unwrap_or(serde_json::Value::Null);
        self.0.insert(key.to_owned(), value);
    }

    pub(crate) fn validate_size(&self, path: &FieldPath<'_>, v: &mut Validator) {
        v.check(
            self.size_bytes() <= MAX_ROUTES_BYTES,
            path,
            "must be at most 131072 bytes",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_helpers_round_trip() {
        let r = Routes::http(&["demo.localhost", "www.demo"], 8080);
        let routes = r.http_routes().unwrap();
        assert_eq!(routes[0].hostnames, ["demo.localhost", "www.demo"]);
        assert_eq!(routes[0].port, 8080);
        assert!(r.tcp_routes().unwrap().is_empty());
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"cf-router":[{"hostnames":["demo.localhost","www.demo"],"port":8080}]}"#
        );
    }

    #[test]
    fn opaque_entries_are_kept() {
        let r: Routes = serde_json::from_str(r#"{"my-router":{"anything":[1,2]}}"#).unwrap();
        assert_eq!(r.0["my-router"]["anything"][1], 2);
        let bad: Routes = serde_json::from_str(r#"{"cf-router":"nope"}"#).unwrap();
        assert!(bad.http_routes().is_err());
    }

    #[test]
    fn size_limit() {
        let mut r = Routes::new();
        r.0.insert(
            "x".into(),
            serde_json::Value::String("a".repeat(MAX_ROUTES_BYTES)),
        );
        let mut v = Validator::new();
        r.validate_size(&FieldPath::ROOT.field("routes"), &mut v);
        assert!(v.finish().unwrap_err().has_field("routes"));
    }
}
