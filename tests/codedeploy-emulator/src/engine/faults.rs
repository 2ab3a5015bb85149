//! Fault injection configured by deployment group tags, for exercising a
//! caller's failure handling without writing failing bundles.

use std::collections::BTreeMap;

use crate::model::all_event_names;

/// Tag naming the lifecycle event that fails.
pub const FAIL_EVENT_TAG: &str = "emulator:fail-event";
/// Tag limiting the failure to the first N instances of each deployment.
pub const FAIL_INSTANCES_TAG: &str = "emulator:fail-instances";
/// Tag making rollback deployments fail too (by default they don't, so a
/// rollback can restore the group).
pub const FAIL_ROLLBACKS_TAG: &str = "emulator:fail-rollbacks";

/// An injected failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The lifecycle event that fails.
    pub event: String,
    /// How many instances (in deployment order) fail; `None` = all.
    pub instances: Option<usize>,
    /// Whether rollback deployments fail too.
    pub rollbacks: bool,
}

impl Fault {
    /// Reads the fault tags of a group; `Ok(None)` when there are none.
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Result<Option<Fault>, String> {
        let Some(event) = tags.get(FAIL_EVENT_TAG) else { return Ok(None) };
        if !all_event_names().any(|e| e == event) {
            let names: Vec<&str> = all_event_names().collect();
            return Err(format!("Tag {FAIL_EVENT_TAG} names {event}, which is not one of {}.", names.join(", ")));
        }
        let instances = match tags.get(FAIL_INSTANCES_TAG) {
            Some(n) => {
                Some(n.trim().parse().map_err(|_| format!("Tag {FAIL_INSTANCES_TAG} must be a whole number, got '{n}'."))?)
            }
            None => None,
        };
        let rollbacks = tags.get(FAIL_ROLLBACKS_TAG).is_some_and(|v| v == "true");
        Ok(Some(Fault { event: event.clone(), instances, rollbacks }))
    }

    /// Whether the fault applies to deployments made by `creator`.
    pub fn applies_to_creator(&self, creator: &str) -> bool {
        creator != "codeDeployRollback" || self.rollbacks
    }

    /// Whether `event` fails on the instance at `index`.
    pub fn hits(&self, event: &str, index: usize) -> bool {
        self.event == event && self.instances.is_none_or(|n| index < n)
    }
}
