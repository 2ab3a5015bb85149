//! Deployment groups: create, read, list, delete. A group's instances are
//! simulated EC2 instances created with it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::model::{AutoRollbackConfiguration, DeploymentGroup};
use crate::protocol::{ApiError, OpResult, input, required};
use crate::store::{Shared, Store, new_instance_id};

/// Tag naming how many instances a group has.
pub const INSTANCES_TAG: &str = "emulator:instances";

/// Group input members the emulator accepts but does not model; they are
/// echoed back by GetDeploymentGroup.
const ECHOED: &[&str] = &[
    "ec2TagFilters",
    "onPremisesInstanceTagFilters",
    "autoScalingGroups",
    "serviceRoleArn",
    "triggerConfigurations",
    "alarmConfiguration",
    "outdatedInstancesStrategy",
    "loadBalancerInfo",
    "ec2TagSet",
    "onPremisesTagSet",
    "terminationHookEnabled",
];

/// A tag as the API sends one (`Key`, `Value`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Tag {
    #[serde(rename = "Key")]
    pub(super) key: Option<String>,
    #[serde(rename = "Value")]
    pub(super) value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    application_name: Option<String>,
    deployment_group_name: Option<String>,
    deployment_config_name: Option<String>,
    service_role_arn: Option<String>,
    auto_rollback_configuration: Option<AutoRollbackConfiguration>,
    deployment_style: Option<Value>,
    blue_green_deployment_configuration: Option<Value>,
    ecs_services: Option<Value>,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NameInput {
    application_name: Option<String>,
    deployment_group_name: Option<String>,
}

/// Validates a group name the way the service does.
pub(crate) fn check_name(name: &Option<String>) -> Result<&str, ApiError> {
    let name = required(name, "DeploymentGroupNameRequiredException", "The deployment group name")?;
    if name.len() > 100 {
        return Err(ApiError::new(
            "InvalidDeploymentGroupNameException",
            "The deployment group name was specified in an invalid format.",
        ));
    }
    Ok(name)
}

/// Looks up a group of an existing application.
pub(crate) fn existing<'a>(store: &'a Store, app: &str, group: &str) -> Result<&'a DeploymentGroup, ApiError> {
    super::applications::existing(store, app)?;
    store.groups.get(&(app.to_string(), group.to_string())).ok_or_else(|| {
        ApiError::new("DeploymentGroupDoesNotExistException", format!("No Deployment Group found for name: {group}"))
    })
}

/// Validates a rollback configuration's event names.
pub(crate) fn check_auto_rollback(cfg: &Option<AutoRollbackConfiguration>) -> Result<(), ApiError> {
    let Some(cfg) = cfg else { return Ok(()) };
    const EVENTS: &[&str] = &["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST"];
    if let Some(bad) = cfg.events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
        return Err(ApiError::new("InvalidAutoRollbackConfigException", format!("Invalid auto rollback event: {bad}")));
    }
    if cfg.enabled && cfg.events.is_empty() {
        return Err(ApiError::new(
            "InvalidAutoRollbackConfigException",
            "Auto rollback is enabled but no events were specified.",
        ));
    }
    Ok(())
}

pub(crate) fn info(group: &DeploymentGroup) -> Value {
    let mut out: Map<String, Value> = group.echoed.clone();
    out.insert("applicationName".into(), json!(group.application_name));
    out.insert("deploymentGroupId".into(), json!(group.id));
    out.insert("deploymentGroupName".into(), json!(group.name));
    out.insert("deploymentConfigName".into(), json!(group.deployment_config_name));
    out.insert("computePlatform".into(), json!("Server"));
    out.insert("deploymentStyle".into(), json!({ "deploymentType": "IN_PLACE", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL" }));
    out.entry("outdatedInstancesStrategy").or_insert(json!("UPDATE"));
    if let Some(cfg) = &group.auto_rollback {
        out.insert("autoRollbackConfiguration".into(), json!(cfg));
    }
    if let Some(rev) = &group.target_revision {
        out.insert("targetRevision".into(), json!(rev));
    }
    if let Some(last) = &group.last_successful {
        out.insert("lastSuccessfulDeployment".into(), json!(last));
    }
    if let Some(last) = &group.last_attempted {
        out.insert("lastAttemptedDeployment".into(), json!(last));
    }
    Value::Object(out)
}

pub(super) fn create(shared: &Arc<Shared>, body: Value) -> OpResult {
    let echoed = super::echoed(&body, ECHOED);
    let req: CreateInput = input(body)?;
    let app = super::applications::check_name(&req.application_name)?;
    let name = check_name(&req.deployment_group_name)?;
    required(&req.service_role_arn, "RoleRequiredException", "The service role ARN")?;
    let style_type = req.deployment_style.as_ref().and_then(|s| s.get("deploymentType")).and_then(Value::as_str);
    if style_type.is_some_and(|t| t != "IN_PLACE") || req.blue_green_deployment_configuration.is_some() {
        return Err(ApiError::new("InvalidDeploymentStyleException", "The emulator only models IN_PLACE deployments."));
    }
    if req.ecs_services.is_some() {
        return Err(ApiError::new("InvalidECSServiceException", "The emulator does not model ECS."));
    }
    check_auto_rollback(&req.auto_rollback_configuration)?;
    let tags: BTreeMap<String, String> =
        req.tags.into_iter().filter_map(|t| Some((t.key?, t.value.unwrap_or_default()))).collect();
    let instance_count = match tags.get(INSTANCES_TAG) {
        Some(v) => v.trim().parse::<usize>().map_err(|_| {
            ApiError::new("InvalidTagException", format!("Tag {INSTANCES_TAG} must be a whole number, got '{v}'"))
        })?,
        None => shared.config.default_instances,
    };
    crate::engine::Fault::from_tags(&tags).map_err(|m| ApiError::new("InvalidTagException", m))?;
    let config_name =
        req.deployment_config_name.filter(|n| !n.is_empty()).unwrap_or_else(|| super::deployments::DEFAULT_CONFIG.to_string());

    let mut store = shared.lock();
    // A group naming on-premises tags is those registered instances, whose
    // real agents run its deployments; any other group is simulated EC2.
    let instances = match echoed.get("onPremisesInstanceTagFilters") {
        Some(filters) => super::onprem::matching(&store, filters),
        None => (0..instance_count).map(|_| new_instance_id()).collect(),
    };
    super::applications::existing(&store, app)?;
    if !store.configs.contains_key(&config_name) {
        return Err(ApiError::new(
            "DeploymentConfigDoesNotExistException",
            format!("No deployment configuration found for name: {config_name}"),
        ));
    }
    let key = (app.to_string(), name.to_string());
    if store.groups.contains_key(&key) {
        return Err(ApiError::new(
            "DeploymentGroupAlreadyExistsException",
            format!("Deployment Group {name} already exists for application {app}."),
        ));
    }
    let group = DeploymentGroup {
        id: uuid::Uuid::new_v4().to_string(),
        application_name: app.to_string(),
        name: name.to_string(),
        deployment_config_name: config_name,
        auto_rollback: req.auto_rollback_configuration,
        instances,
        tags,
        echoed,
        target_revision: None,
        last_successful: None,
        last_attempted: None,
        last_successful_revision: None,
    };
    let id = group.id.clone();
    store.groups.insert(key, group);
    Ok(json!({ "deploymentGroupId": id }))
}

pub(super) fn get(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: NameInput = input(body)?;
    let app = super::applications::check_name(&req.application_name)?;
    let name = check_name(&req.deployment_group_name)?;
    let store = shared.lock();
    Ok(json!({ "deploymentGroupInfo": info(existing(&store, app, name)?) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListInput {
    application_name: Option<String>,
    next_token: Option<String>,
}

pub(super) fn list(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: ListInput = input(body)?;
    let app = super::applications::check_name(&req.application_name)?;
    let names: Vec<String> = {
        let store = shared.lock();
        super::applications::existing(&store, app)?;
        store.groups.keys().filter(|(a, _)| a == app).map(|(_, g)| g.clone()).collect()
    };
    let (page, next) = super::paginate(names, req.next_token.as_deref(), shared.config.page_size)?;
    Ok(json!({ "applicationName": app, "deploymentGroups": page, "nextToken": next }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchInput {
    application_name: Option<String>,
    #[serde(default)]
    deployment_group_names: Vec<String>,
}

pub(super) fn batch_get(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: BatchInput = input(body)?;
    let app = super::applications::check_name(&req.application_name)?;
    super::check_batch(&req.deployment_group_names, 100)?;
    let store = shared.lock();
    super::applications::existing(&store, app)?;
    let mut infos = Vec::new();
    let mut missing = Vec::new();
    for name in &req.deployment_group_names {
        match store.groups.get(&(app.to_string(), name.clone())) {
            Some(g) => infos.push(info(g)),
            None => missing.push(name.clone()),
        }
    }
    let error_message = (!missing.is_empty()).then(|| format!("Deployment groups not found: {}", missing.join(", ")));
    Ok(json!({ "deploymentGroupsInfo": infos, "errorMessage": error_message }))
}

pub(super) fn delete(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: NameInput = input(body)?;
    let app = super::applications::check_name(&req.application_name)?;
    let name = check_name(&req.deployment_group_name)?;
    let mut store = shared.lock();
    super::applications::existing(&store, app)?;
    store.groups.remove(&(app.to_string(), name.to_string()));
    Ok(json!({ "hooksNotCleanedUp": [] }))
}
