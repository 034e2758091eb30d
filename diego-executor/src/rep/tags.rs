//! How the rep tags its containers, so a restarted cell rebuilds its view from the
//! executor alone.

use diego_core::{ActualLrpInstanceKey, ActualLrpKey, CellId, InstanceGuid, ProcessGuid, TaskGuid};

use crate::{Container, Tags};

/// `lrp` or `task`.
pub const LIFECYCLE_TAG: &str = "lifecycle";
const DOMAIN_TAG: &str = "domain";
const PROCESS_GUID_TAG: &str = "process-guid";
const PROCESS_INDEX_TAG: &str = "process-index";
const INSTANCE_GUID_TAG: &str = "instance-guid";
const LRP: &str = "lrp";
const TASK: &str = "task";

/// The container guid of an LRP instance: `<process_guid>-<instance_guid>`.
pub fn container_guid(process_guid: &ProcessGuid, instance_guid: &InstanceGuid) -> String {
    format!("{process_guid}-{instance_guid}")
}

/// The tags of an LRP instance's container.
pub(super) fn lrp_tags(key: &ActualLrpKey, instance_guid: &InstanceGuid) -> Tags {
    let mut t = Tags::new();
    t.insert(LIFECYCLE_TAG.into(), LRP.into());
    t.insert(DOMAIN_TAG.into(), key.domain.clone());
    t.insert(PROCESS_GUID_TAG.into(), key.process_guid.to_string());
    t.insert(PROCESS_INDEX_TAG.into(), key.index.to_string());
    t.insert(INSTANCE_GUID_TAG.into(), instance_guid.to_string());
    t
}

/// The tags of a task's container.
pub(super) fn task_tags(domain: &str) -> Tags {
    let mut t = Tags::new();
    t.insert(LIFECYCLE_TAG.into(), TASK.into());
    t.insert(DOMAIN_TAG.into(), domain.to_owned());
    t
}

/// What a container runs, read back from its tags.
pub(super) enum Workload {
    Lrp {
        key: ActualLrpKey,
        instance_key: ActualLrpInstanceKey,
    },
    Task {
        task_guid: TaskGuid,
        domain: String,
    },
}

/// The workload of `c` on `cell`, when it carries this rep's tags.
pub(super) fn workload(c: &Container, cell: &CellId) -> Option<Workload> {
    let get = |k: &str| c.tags.get(k);
    match get(LIFECYCLE_TAG)?.as_str() {
        LRP => {
            let index: i32 = get(PROCESS_INDEX_TAG)?.parse().ok()?;
            let key = ActualLrpKey::new(
                get(PROCESS_GUID_TAG)?.as_str(),
                index,
                get(DOMAIN_TAG)?.clone(),
            );
            let instance_key =
                ActualLrpInstanceKey::new(get(INSTANCE_GUID_TAG)?.as_str(), cell.clone());
            Some(Workload::Lrp { key, instance_key })
        }
        TASK => Some(Workload::Task {
            task_guid: TaskGuid::new(&c.guid),
            domain: get(DOMAIN_TAG).cloned().unwrap_or_default(),
        }),
        _ => None,
    }
}
