//! Volume mounts of a container and the volume drivers they need on a cell.

use serde::{Deserialize, Serialize};

use crate::models::validation::{FieldPath, Validate, Validator};

/// A shared volume mounted into the container by a volume driver.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeMount {
    /// The volume driver (the cell must offer it).
    pub driver: String,
    /// Mount point in the container.
    pub container_dir: String,
    /// `r` (read-only) or `rw`.
    pub mode: String,
    /// The shared device to mount.
    pub shared: SharedDevice,
}

/// The device of a shared volume.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedDevice {
    /// The volume's id (required).
    pub volume_id: String,
    /// Driver-specific mount configuration (opaque JSON text).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mount_config: String,
}

/// The volume drivers a cell must offer to run the work (derived from its mounts).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumePlacement {
    /// Names of the drivers.
    #[serde(default)]
    pub driver_names: Vec<String>,
}

impl VolumePlacement {
    /// The distinct drivers of `mounts`, in order of first use.
    pub fn from_mounts(mounts: &[VolumeMount]) -> Self {
        let mut driver_names: Vec<String> = Vec::new();
        for m in mounts {
            if !driver_names.contains(&m.driver) {
                driver_names.push(m.driver.clone());
            }
        }
        VolumePlacement { driver_names }
    }
}

impl Validate for VolumeMount {
    fn validate_at(&self, path: &FieldPath<'_>, v: &mut Validator) {
        v.non_empty(&self.driver, &path.field("driver"));
        v.non_empty(&self.container_dir, &path.field("container_dir"));
        v.check(
            self.mode == "r" || self.mode == "rw",
            &path.field("mode"),
            "must be r or rw",
        );
        v.non_empty(
            &self.shared.volume_id,
            &path.field("shared").field("volume_id"),
        );
    }
}

/// Validates a list of volume mounts at `path`.
pub(crate) fn validate_volume_mounts(
    mounts: &[VolumeMount],
    path: &FieldPath<'_>,
    v: &mut Validator,
) {
    for (i, m) in mounts.iter().enumerate() {
        v.nested(m, &path.index(i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_placement() {
        let good = VolumeMount {
            driver: "nfs".into(),
            container_dir: "/data".into(),
            mode: "rw".into(),
            shared: SharedDevice {
                volume_id: "v1".into(),
                mount_config: String::new(),
            },
        };
        assert!(good.validate().is_ok());
        let bad = VolumeMount {
            mode: "x".into(),
            ..Default::default()
        };
        let e = bad.validate().unwrap_err();
        let fields: Vec<_> = e.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["driver", "container_dir", "mode", "shared.volume_id"]
        );
        let p = VolumePlacement::from_mounts(&[good.clone(), good]);
        assert_eq!(p.driver_names, ["nfs"]);
    }
}
