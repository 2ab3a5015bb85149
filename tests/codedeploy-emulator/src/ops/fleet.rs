//! Simulated EC2 instances found by tag: a blue/green deployment's
//! replacement environment (`targetInstances` tag filters).
//!
//! The emulator has no EC2. An operator using DISCOVER_EXISTING launches the
//! replacement instances, tagged, before the release; the emulator stands in
//! for that: filters that match no running instance outside the group
//! launch as many instances as the group has, carrying the filter's tag, and
//! later discoveries find those same instances.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::protocol::ApiError;
use crate::store::{Store, new_instance_id};

/// Whether `tags` match any of `filters` (a list of `{Key, Value, Type}`,
/// `KEY_ONLY`, `VALUE_ONLY` or `KEY_AND_VALUE`, the default).
pub(crate) fn tags_match(filters: &Value, tags: &BTreeMap<String, String>) -> bool {
    let Some(filters) = filters.as_array() else { return false };
    let text = |f: &Value, k: &str| f.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    filters.iter().any(|f| {
        let (key, value) = (text(f, "Key"), text(f, "Value"));
        tags.iter().any(|(k, v)| match text(f, "Type").as_str() {
            "KEY_ONLY" => *k == key,
            "VALUE_ONLY" => *v == value,
            _ => *k == key && *v == value,
        })
    })
}

fn invalid(message: &str) -> ApiError {
    ApiError::new("InvalidTargetInstancesException", message.to_string())
}

/// The replacement environment named by a deployment's `targetInstances`:
/// running instances matching its tag filters that are not in `original`,
/// or, when there are none, `count` instances launched with the first
/// filter's tag.
pub(crate) fn discover(
    store: &mut Store,
    target_instances: Option<&Value>,
    original: &[String],
    count: usize,
) -> Result<Vec<String>, ApiError> {
    let Some(target) = target_instances else {
        return Err(invalid(
            "A blue/green deployment that discovers existing instances needs targetInstances naming the replacement instances by EC2 tag filters.",
        ));
    };
    if target.get("autoScalingGroups").and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
        return Err(invalid("The emulator does not model Auto Scaling groups: name the replacement instances by tagFilters."));
    }
    if target.get("ec2TagSet").is_some() {
        return Err(invalid(
            "The emulator does not model ec2TagSet in targetInstances: name the replacement instances by tagFilters.",
        ));
    }
    let filters = target.get("tagFilters").cloned().unwrap_or(Value::Null);
    let Some(first) = filters.as_array().and_then(|f| f.first()) else {
        return Err(invalid("targetInstances has no tagFilters: name the replacement instances by EC2 tag."));
    };
    let found: Vec<String> = store
        .ec2_tags
        .iter()
        .filter(|(id, tags)| !original.contains(id) && !store.terminated.contains(*id) && tags_match(&filters, tags))
        .map(|(id, _)| id.clone())
        .collect();
    if !found.is_empty() {
        return Ok(found);
    }
    let text = |k: &str| first.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let tag = match text("Type").as_str() {
        "VALUE_ONLY" => ("Name".to_string(), text("Value")),
        "KEY_ONLY" => (text("Key"), String::new()),
        _ => (text("Key"), text("Value")),
    };
    let launched: Vec<String> = (0..count.max(1)).map(|_| new_instance_id()).collect();
    for id in &launched {
        store.ec2_tags.insert(id.clone(), BTreeMap::from([tag.clone()]));
    }
    Ok(launched)
}
