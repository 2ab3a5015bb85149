//! On-premises instances: registered with an IAM user ARN (the host
//! identifier their CodeDeploy agent polls with), tagged, and picked by a
//! deployment group's `onPremisesInstanceTagFilters`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::groups::Tag;
use crate::protocol::{ApiError, OpResult, input, required};
use crate::store::{OnPremisesInstance, Shared, Store};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterInput {
    instance_name: Option<String>,
    iam_user_arn: Option<String>,
    iam_session_arn: Option<String>,
}

pub(super) fn register(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: RegisterInput = input(body)?;
    let name = required(&req.instance_name, "InstanceNameRequiredException", "An instance name")?;
    let arn = match (&req.iam_user_arn, &req.iam_session_arn) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                "MultipleIamArnsProvidedException",
                "Both an IAM user ARN and an IAM session ARN were given.",
            ));
        }
        (Some(a), None) | (None, Some(a)) if !a.is_empty() => a.clone(),
        _ => return Err(ApiError::new("IamArnRequiredException", "No IAM ARN was included in the request.")),
    };
    let mut store = shared.lock();
    if store.on_premises.contains_key(name) {
        return Err(ApiError::new(
            "InstanceNameAlreadyRegisteredException",
            format!("The instance {name} is already registered."),
        ));
    }
    if store.on_premises.values().any(|i| i.iam_user_arn == arn) {
        return Err(ApiError::new(
            "IamUserArnAlreadyRegisteredException",
            format!("The IAM user ARN {arn} is already registered."),
        ));
    }
    store.on_premises.insert(
        name.to_string(),
        OnPremisesInstance { iam_user_arn: arn, tags: Default::default(), register_time: crate::model::now() },
    );
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddTagsInput {
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    instance_names: Vec<String>,
}

pub(super) fn add_tags(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: AddTagsInput = input(body)?;
    if req.tags.is_empty() {
        return Err(ApiError::new("TagRequiredException", "A tag was not specified."));
    }
    if req.instance_names.is_empty() {
        return Err(ApiError::new("InstanceNameRequiredException", "An on-premises instance name was not specified."));
    }
    let mut store = shared.lock();
    if let Some(unknown) = req.instance_names.iter().find(|n| !store.on_premises.contains_key(*n)) {
        return Err(ApiError::new("InstanceNotRegisteredException", format!("The instance {unknown} is not registered.")));
    }
    for name in &req.instance_names {
        let instance = store.on_premises.get_mut(name).expect("checked above");
        for t in &req.tags {
            if let Some(k) = &t.key {
                instance.tags.insert(k.clone(), t.value.clone().unwrap_or_default());
            }
        }
    }
    Ok(json!({}))
}

/// The registered instances matching a group's `onPremisesInstanceTagFilters`
/// (`KEY_ONLY`, `VALUE_ONLY`, `KEY_AND_VALUE`; any filter may match), by name.
pub(crate) fn matching(store: &Store, filters: &Value) -> Vec<String> {
    store.on_premises.iter().filter(|(_, i)| super::fleet::tags_match(filters, &i.tags)).map(|(name, _)| name.clone()).collect()
}
