//! Metric tags: static values, or values filled in per instance (`INDEX`, `INSTANCE_GUID`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::models::validation::{FieldPath, Validator};

/// The value of one metric tag: exactly one of `static` or `dynamic`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricTagValue {
    /// A fixed value.
    #[serde(rename = "static", default, skip_serializing_if = "String::is_empty")]
    pub static_value: String,
    /// A value taken from the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic: Option<DynamicMetricTag>,
}

/// Per-instance metric tag values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DynamicMetricTag {
    /// The instance index.
    Index,
    /// The instance guid.
    InstanceGuid,
}

impl MetricTagValue {
    /// A fixed value.
    pub fn fixed(value: impl Into<String>) -> Self {
        MetricTagValue {
            static_value: value.into(),
            dynamic: None,
        }
    }
}

/// Metric tags by name.
pub type MetricTags = BTreeMap<String, MetricTagValue>;

/// The tags of one instance, as Diego's `ConvertMetricTags` resolves them: static values
/// as they are, `INDEX` as the decimal `index`, `INSTANCE_GUID` as `instance_guid`. With no
/// instance (`None`, e.g. a Task), dynamic tags are left out.
///
/// ```
/// use diego_core::{DynamicMetricTag, MetricTagValue, MetricTags};
/// use diego_core::models::metric_tags::resolve_metric_tags;
///
/// let mut tags = MetricTags::new();
/// tags.insert("source_id".into(), MetricTagValue::fixed("app-1"));
/// tags.insert("instance_index".into(), MetricTagValue { dynamic: Some(DynamicMetricTag::Index), ..Default::default() });
/// let resolved = resolve_metric_tags(&tags, Some((3, "ig-3")));
/// assert_eq!(resolved["source_id"], "app-1");
/// assert_eq!(resolved["instance_index"], "3");
/// assert!(!resolve_metric_tags(&tags, None).contains_key("instance_index"));
/// ```
pub fn resolve_metric_tags(
    tags: &MetricTags,
    instance: Option<(i32, &str)>,
) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|(name, value)| {
            let resolved = match (value.dynamic, instance) {
                (None, _) => value.static_value.clone(),
                (Some(DynamicMetricTag::Index), Some((index, _))) => index.to_string(),
                (Some(DynamicMetricTag::InstanceGuid), Some((_, guid))) => guid.to_owned(),
                (Some(_), None) => return None,
            };
            Some((name.clone(), resolved))
        })
        .collect()
}

/// Validates metric tags at `path`: each has exactly one of static/dynamic.
pub(crate) fn validate_metric_tags(tags: &MetricTags, path: &FieldPath<'_>, v: &mut Validator) {
    for (name, value) in tags {
        let p = path.field(name);
        let has_static = !value.static_value.is_empty();
        v.check(
            has_static != value.dynamic.is_some(),
            &p,
            "needs exactly one of static and dynamic",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_value() {
        let mut tags = MetricTags::new();
        tags.insert("a".into(), MetricTagValue::fixed("x"));
        tags.insert("b".into(), MetricTagValue::default());
        tags.insert(
            "c".into(),
            MetricTagValue {
                static_value: "x".into(),
                dynamic: Some(DynamicMetricTag::Index),
            },
        );
        let mut v = Validator::new();
        validate_metric_tags(&tags, &FieldPath::ROOT.field("metric_tags"), &mut v);
        let e = v.finish().unwrap_err();
        let fields: Vec<_> = e.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["metric_tags.b", "metric_tags.c"]);
        assert_eq!(
            serde_json::to_string(&MetricTagValue {
                static_value: String::new(),
                dynamic: Some(DynamicMetricTag::InstanceGuid)
            })
            .unwrap(),
            r#"{"dynamic":"INSTANCE_GUID"}"#
        );
    }
}
