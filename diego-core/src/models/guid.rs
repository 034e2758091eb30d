//! Identifier newtypes: `ProcessGuid`, `TaskGuid`, `CellId`, `InstanceGuid`.
//!
//! Each wraps a cheap-to-clone `Arc<str>` (an identifier is cloned into many records and
//! events) and serialises as a plain JSON string. Construction never fails; whether a guid
//! is well formed is a validation rule (`^[a-zA-Z0-9_-]+$`), checked by
//! [`validate`](crate::models::validation::Validate) on the request that carries it.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a string as this identifier (not validated: see the module docs).
            pub fn new(id: impl AsRef<str>) -> Self {
                Self(Arc::from(id.as_ref()))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Whether the identifier is the empty string.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::new(s)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(Arc::from(s))
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }
    };
}

id_type!(
    /// The guid of a DesiredLRP (and of all its ActualLRPs).
    ProcessGuid
);
id_type!(
    /// The guid of a Task; also the guid of the container that runs it.
    TaskGuid
);
id_type!(
    /// The id of a cell (one rep and its executor).
    CellId
);
id_type!(
    /// The guid of one running attempt of an LRP instance, made by the rep at allocation.
    InstanceGuid
);

impl InstanceGuid {
    /// A fresh random instance guid (UUID v4).
    pub fn generate() -> Self {
        Self::from(uuid::Uuid::new_v4().to_string())
    }
}

/// Whether `s` is a well-formed guid: non-empty, only ASCII letters, digits, `_` and `-`.
pub fn is_valid_guid(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_rule() {
        assert!(is_valid_guid("abc-DEF_123"));
        assert!(!is_valid_guid(""));
        assert!(!is_valid_guid("a b"));
        assert!(!is_valid_guid("a/b"));
        assert!(!is_valid_guid("é"));
    }

    #[test]
    fn serialises_as_plain_string() {
        let g = ProcessGuid::new("web");
        assert_eq!(serde_json::to_string(&g).unwrap(), "\"web\"");
        let back: ProcessGuid = serde_json::from_str("\"web\"").unwrap();
        assert_eq!(back, g);
        assert_eq!(back, "web");
    }
}
