//! Domains: freshness markers. While a domain is fresh, convergence may delete
//! instances its client no longer desires; a TTL of 0 never expires.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::models::validation::{FieldPath, Validate, Validator};
use crate::time::Timestamp;

/// A domain and when its freshness ends.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    /// The domain's name (non-empty).
    pub name: String,
    /// When it stops being fresh (Unix ns); `None` = never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

impl Domain {
    /// Domain `name`, fresh for `ttl` from `now` (a TTL of zero never expires).
    pub fn fresh_for(name: impl Into<String>, ttl: Duration, now: Timestamp) -> Self {
        Domain {
            name: name.into(),
            expires_at: (!ttl.is_zero()).then(|| now + ttl),
        }
    }

    /// Whether the domain is still fresh at `now`.
    pub fn is_fresh(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

impl Validate for Domain {
    fn validate_at(&self, path: &FieldPath<'_>, v: &mut Validator) {
        v.non_empty(&self.name, &path.field("name"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness() {
        let now = Timestamp(1_000);
        let d = Domain::fresh_for("apps", Duration::from_nanos(100), now);
        assert!(d.is_fresh(now));
        assert!(!d.is_fresh(Timestamp(1_100)));
        let forever = Domain::fresh_for("apps", Duration::ZERO, now);
        assert!(forever.is_fresh(Timestamp(i64::MAX)));
        assert!(Domain::fresh_for("", Duration::ZERO, now)
            .validate()
            .is_err());
    }
}
