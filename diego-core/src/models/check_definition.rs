//! Declarative health checks: startup/liveness `checks` and `readiness_checks`.
//!
//! Each check is exactly one of `tcp_check` or `http_check`. Zero timeouts and intervals
//! mean the defaults ([`DEFAULT_CHECK_TIMEOUT_MS`], [`DEFAULT_CHECK_INTERVAL_MS`]).

use serde::{Deserialize, Serialize};

use crate::models::validation::{FieldPath, Validate, Validator};

/// Timeout of a check when none is given: 1 s.
pub const DEFAULT_CHECK_TIMEOUT_MS: u64 = 1_000;
/// Interval of liveness and readiness checks when none is given: 30 s.
pub const DEFAULT_CHECK_INTERVAL_MS: u64 = 30_000;
/// Log source of health-check messages when none is given.
pub const DEFAULT_CHECK_LOG_SOURCE: &str = "HEALTH";
/// Path of an HTTP check when none is given.
pub const DEFAULT_HTTP_CHECK_PATH: &str = "/";

/// The health checks of an LRP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckDefinition {
    /// Startup and liveness checks; all must pass at startup.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// Readiness checks: they flip the instance's `routable` only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readiness_checks: Vec<Check>,
    /// Log source of check messages; empty = `HEALTH`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_source: String,
}

/// One check: exactly one of `tcp_check` or `http_check`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// A TCP connect check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_check: Option<TcpCheck>,
    /// An HTTP GET check (only status 200 passes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_check: Option<HttpCheck>,
}

impl Check {
    /// A TCP check of `port` with default timeout and interval.
    pub fn tcp(port: u32) -> Self {
        Check {
            tcp_check: Some(TcpCheck {
                port,
                ..Default::default()
            }),
            http_check: None,
        }
    }

    /// An HTTP check of `path` on `port` with default timeout and interval.
    pub fn http(port: u32, path: impl Into<String>) -> Self {
        Check {
            tcp_check: None,
            http_check: Some(HttpCheck {
                port,
                path: path.into(),
                ..Default::default()
            }),
        }
    }
}

/// Passes when a TCP connection to the port succeeds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpCheck {
    /// Container port, 1..=65535.
    pub port: u32,
    /// Connect timeout; 0 = 1 s.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub connect_timeout_ms: u64,
    /// Interval between liveness/readiness checks; 0 = 30 s.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval_ms: u64,
}

/// Passes when `GET path` answers 200.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// Container port, 1..=65535.
    pub port: u32,
    /// Request path; empty = `/`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Request timeout; 0 = 1 s.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub request_timeout_ms: u64,
    /// Interval between liveness/readiness checks; 0 = 30 s.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn valid_port(port: u32) -> bool {
    (1..=65_535).contains(&port)
}

impl Validate for Check {
    fn validate_at(&self, path: &FieldPath<'_>, v: &mut Validator) {
        match (&self.tcp_check, &self.http_check) {
            (None, None) => v.error(
                &path.field("port"),
                "a check needs a tcp_check or an http_check",
            ),
            (Some(_), Some(_)) => v.error(
                &path.field("check"),
                "a check has exactly one of tcp_check and http_check",
            ),
            (Some(tcp), None) => {
                let p = path.field("tcp_check");
                v.check(valid_port(tcp.port), &p.field("port"), "must be 1..=65535");
            }
            (None, Some(http)) => {
                let p = path.field("http_check");
                v.check(valid_port(http.port), &p.field("port"), "must be 1..=65535");
            }
        }
    }
}

impl Validate for CheckDefinition {
    fn validate_at(&self, path: &FieldPath<'_>, v: &mut Validator) {
        let checks = path.field("checks");
        for (i, c) in self.checks.iter().enumerate() {
            v.nested(c, &checks.index(i));
        }
        let readiness = path.field("readiness_checks");
        for (i, c) in self.readiness_checks.iter().enumerate() {
            v.nested(c, &readiness.index(i));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(c: &CheckDefinition) -> Vec<String> {
        match c.validate() {
            Ok(()) => vec![],
            Err(e) => e.errors().iter().map(|e| e.field.clone()).collect(),
        }
    }

    #[test]
    fn exactly_one_kind_with_a_valid_port() {
        let def = CheckDefinition {
            checks: vec![
                Check::tcp(8080),
                Check::default(),
                Check {
                    tcp_check: Some(TcpCheck::default()),
                    http_check: Some(HttpCheck::default()),
                },
                Check::tcp(0),
            ],
            readiness_checks: vec![Check::http(70_000, "/ready"), Check::http(80, "")],
            log_source: String::new(),
        };
        assert_eq!(
            fields(&def),
            [
                "checks[1].port",
                "checks[2].check",
                "checks[3].tcp_check.port",
                "readiness_checks[0].http_check.port"
            ]
        );
    }

    #[test]
    fn json_shape() {
        let def = CheckDefinition {
            checks: vec![Check::http(8080, "/health")],
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&def).unwrap(),
            r#"{"checks":[{"http_check":{"port":8080,"path":"/health"}}]}"#
        );
    }
}
