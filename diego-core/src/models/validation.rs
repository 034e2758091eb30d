//! Validation of requests: every violated field, with its full path and a reason.
//!
//! [`Validate::validate`] reports *all* violations of a value at once, in Diego's form
//! (`Invalid field: <name>`, joined with `", "`), with full paths such as
//! `action.serial.actions[2].run.path` (ours: Diego names only the last field) and a
//! human reason beside each (`must not be empty`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// One violated field: its full path and why it is invalid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Full path of the field, e.g. `action.serial.actions[2].run.path`.
    pub field: String,
    /// Why the value is invalid, e.g. `must not be empty`.
    pub reason: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Invalid field: {} ({})", self.field, self.reason)
    }
}

/// Every violated field of one request; never empty when returned as an error.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ValidationErrors {
    errors: Vec<FieldError>,
}

impl ValidationErrors {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation of `field` (a full path).
    pub fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            reason: reason.into(),
        });
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The recorded violations, in the order they were found.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// Whether `field` (a full path) is among the violations.
    pub fn has_field(&self, field: &str) -> bool {
        self.errors.iter().any(|e| e.field == field)
    }

    /// `Ok(())` when empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// The path of a field being validated; builds child paths cheaply.
#[derive(Clone, Copy, Debug)]
pub struct FieldPath<'a> {
    parent: Option<&'a FieldPath<'a>>,
    segment: Segment<'a>,
}

#[derive(Clone, Copy, Debug)]
enum Segment<'a> {
    Root,
    Name(&'a str),
    Index(usize),
}

impl<'a> FieldPath<'a> {
    /// The path of the value being validated itself (fields below it have no prefix).
    pub const ROOT: FieldPath<'static> = FieldPath {
        parent: None,
        segment: Segment::Root,
    };

    /// The path of field `name` below this one.
    pub fn field<'b>(&'b self, name: &'b str) -> FieldPath<'b> {
        FieldPath {
            parent: Some(self),
            segment: Segment::Name(name),
        }
    }

    /// The path of element `index` of this list.
    pub fn index<'b>(&'b self, index: usize) -> FieldPath<'b> {
        FieldPath {
            parent: Some(self),
            segment: Segment::Index(index),
        }
    }

    fn write_to(&self, out: &mut String) {
        if let Some(parent) = self.parent {
            parent.write_to(out);
        }
        match self.segment {
            Segment::Root => {}
            Segment::Name(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Segment::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
}

impl fmt::Display for FieldPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write_to(&mut s);
        f.write_str(&s)
    }
}

/// Collects violations while walking a value.
#[derive(Debug, Default)]
pub struct Validator {
    errors: ValidationErrors,
}

impl Validator {
    /// An empty validator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the field at `path` is invalid for `reason`.
    pub fn error(&mut self, path: &FieldPath<'_>, reason: impl Into<String>) {
        self.errors.add(path.to_string(), reason);
    }

    /// Records an error at `path` unless `ok`.
    pub fn check(&mut self, ok: bool, path: &FieldPath<'_>, reason: &str) {
        if !ok {
            self.error(path, reason);
        }
    }

    /// Requires a non-empty string.
    pub fn non_empty(&mut self, value: &str, path: &FieldPath<'_>) {
        self.check(!value.is_empty(), path, "must not be empty");
    }

    /// Requires a well-formed guid (`^[a-zA-Z0-9_-]+$`).
    pub fn guid(&mut self, value: &str, path: &FieldPath<'_>) {
        if value.is_empty() {
            self.error(path, "must not be empty");
        } else if !crate::models::guid::is_valid_guid(value) {
            self.error(path, "must match ^[a-zA-Z0-9_-]+$");
        }
    }

    /// Requires a number ≥ 0.
    pub fn non_negative(&mut self, value: i64, path: &FieldPath<'_>) {
        self.check(value >= 0, path, "must be >= 0");
    }

    /// Validates a nested value at `path`.
    pub fn nested<V: Validate + ?Sized>(&mut self, value: &V, path: &FieldPath<'_>) {
        value.validate_at(path, self);
    }

    /// The violations found.
    pub fn finish(self) -> Result<(), ValidationErrors> {
        self.errors.into_result()
    }
}

/// A request that can be checked before anything is written.
pub trait Validate {
    /// Records every violation of `self`, placed at `path`, into `v`.
    fn validate_at(&self, path: &FieldPath<'_>, v: &mut Validator);

    /// Every violation of `self`, with paths relative to it; `Ok(())` when valid.
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut v = Validator::new();
        self.validate_at(&FieldPath::ROOT, &mut v);
        v.finish()
    }
}

/// Largest annotation, in bytes.
pub const MAX_ANNOTATION_BYTES: usize = 10_240;

impl Validator {
    /// Requires a rootfs URL with a scheme (`preloaded:cflinuxfs4`, `docker:///busybox`).
    pub fn rootfs(&mut self, value: &str, path: &FieldPath<'_>) {
        self.check(
            crate::models::rootfs::rootfs_scheme(value).is_some(),
            path,
            "must be a URL with a scheme, e.g. preloaded:cflinuxfs4 or docker:///busybox",
        );
    }

    /// Requires an annotation of at most [`MAX_ANNOTATION_BYTES`].
    pub fn annotation(&mut self, value: &str, path: &FieldPath<'_>) {
        self.check(
            value.len() <= MAX_ANNOTATION_BYTES,
            path,
            "must be at most 10240 bytes",
        );
    }

    /// Requires image username and password to be set together.
    pub fn image_credentials(&mut self, username: &str, password: &str, path: &FieldPath<'_>) {
        match (username.is_empty(), password.is_empty()) {
            (false, true) => self.error(
                &path.field("image_password"),
                "must be set with image_username",
            ),
            (true, false) => self.error(
                &path.field("image_username"),
                "must be set with image_password",
            ),
            _ => {}
        }
    }

    /// Requires a log rate limit of at least -1.
    pub fn log_rate_limit(
        &mut self,
        limit: Option<&crate::models::log_rate_limit::LogRateLimit>,
        path: &FieldPath<'_>,
    ) {
        if let Some(l) = limit {
            self.check(
                l.bytes_per_second >= -1,
                &path.field("bytes_per_second"),
                "must be >= -1",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_dots_and_indices() {
        let root = FieldPath::ROOT;
        let action = root.field("action");
        let serial = action.field("serial");
        let actions = serial.field("actions");
        let second = actions.index(2);
        let path = second.field("run");
        let leaf = path.field("path");
        assert_eq!(leaf.to_string(), "action.serial.actions[2].run.path");
        assert_eq!(root.field("domain").to_string(), "domain");
        assert_eq!(root.index(0).field("x").to_string(), "[0].x");
    }

    #[test]
    fn display_is_diegos_form_joined() {
        let mut e = ValidationErrors::new();
        e.add("domain", "must not be empty");
        e.add("action.run.path", "must not be empty");
        assert_eq!(
            e.to_string(),
            "Invalid field: domain (must not be empty), Invalid field: action.run.path (must not be empty)"
        );
        assert!(e.has_field("domain"));
        assert!(ValidationErrors::new().into_result().is_ok());
    }
}
