//! Deployment groups: create, read, list, delete. A group's instances are
//! simulated EC2 instances created with it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::model::{AutoRollbackConfiguration, BlueGreenConfig, DeploymentGroup, EcsGroup};
use crate::protocol::{ApiError, OpResult, input, required};
use crate::store::{Shared, Store, new_instance_id};

/// The config of a Lambda group that names none.
const LAMBDA_DEFAULT_CONFIG: &str = "CodeDeployDefault.LambdaAllAtOnce";
/// The config of an ECS group that names none.
const ECS_DEFAULT_CONFIG: &str = "CodeDeployDefault.ECSAllAtOnce";

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
    "ecsServices",
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

/// The `deploymentStyle` of a group or deployment.
pub(crate) fn style(blue_green: bool) -> Value {
    if blue_green {
        json!({ "deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL" })
    } else {
        json!({ "deploymentType": "IN_PLACE", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL" })
    }
}

/// The longest termination wait AWS allows (two days, as its API reference says).
const MAX_TERMINATION_WAIT_MINUTES: u64 = 2880;

/// Reads a group's style and blue/green configuration: `None` for IN_PLACE.
/// What the emulator cannot model is refused here, saying so.
fn blue_green(
    style: &Option<Value>,
    config: &Option<Value>,
    echoed: &Map<String, Value>,
) -> Result<Option<BlueGreenConfig>, ApiError> {
    let text = |v: Option<&Value>, key: &str| v.and_then(|v| v.get(key)).and_then(Value::as_str).map(str::to_string);
    let kind = text(style.as_ref(), "deploymentType").unwrap_or_else(|| "IN_PLACE".into());
    let option = text(style.as_ref(), "deploymentOption").unwrap_or_else(|| "WITHOUT_TRAFFIC_CONTROL".into());
    let bad_style = |m: String| ApiError::new("InvalidDeploymentStyleException", m);
    if !matches!(option.as_str(), "WITH_TRAFFIC_CONTROL" | "WITHOUT_TRAFFIC_CONTROL") {
        return Err(bad_style(format!("Invalid deployment option: {option}")));
    }
    match (kind.as_str(), option.as_str()) {
        ("IN_PLACE", "WITHOUT_TRAFFIC_CONTROL") => return Ok(None),
        ("IN_PLACE", _) => {
            return Err(bad_style(
                "The emulator does not model load balancers for IN_PLACE deployments: use WITHOUT_TRAFFIC_CONTROL, or BLUE_GREEN.".into(),
            ));
        }
        ("BLUE_GREEN", "WITHOUT_TRAFFIC_CONTROL") => {
            return Err(bad_style(
                "A BLUE_GREEN deployment reroutes traffic: its deploymentOption must be WITH_TRAFFIC_CONTROL.".into(),
            ));
        }
        ("BLUE_GREEN", _) => {}
        (other, _) => return Err(bad_style(format!("Invalid deployment type: {other}"))),
    }
    if echoed.contains_key("onPremisesInstanceTagFilters") || echoed.contains_key("onPremisesTagSet") {
        return Err(bad_style(
            "Blue/green deployments are for Amazon EC2 instances only; on-premises instances cannot be replaced. Use IN_PLACE for them.".into(),
        ));
    }
    let raw = config.clone().unwrap_or_else(|| json!({}));
    let bad = |m: String| ApiError::new("InvalidBlueGreenDeploymentConfigurationException", m);
    let fleet = text(raw.get("greenFleetProvisioningOption"), "action").unwrap_or_else(|| "DISCOVER_EXISTING".into());
    match fleet.as_str() {
        "DISCOVER_EXISTING" => {}
        "COPY_AUTO_SCALING_GROUP" => {
            return Err(bad(
                "The emulator does not model Auto Scaling groups, so it cannot copy one (COPY_AUTO_SCALING_GROUP). Use DISCOVER_EXISTING and name the replacement instances in CreateDeployment's targetInstances tag filters.".into(),
            ));
        }
        other => return Err(bad(format!("Invalid green fleet provisioning action: {other}"))),
    }
    let minutes = |v: Option<&Value>, key: &str| -> Result<u64, ApiError> {
        match v.and_then(|v| v.get(key)) {
            None => Ok(0),
            Some(n) => n.as_u64().ok_or_else(|| bad(format!("A wait time must be a whole number of minutes, got {n}."))),
        }
    };
    let ready = raw.get("deploymentReadyOption");
    let stop_when_ready = match text(ready, "actionOnTimeout").as_deref() {
        None | Some("CONTINUE_DEPLOYMENT") => false,
        Some("STOP_DEPLOYMENT") => true,
        Some(other) => return Err(bad(format!("Invalid deployment ready action: {other}"))),
    };
    let terminate = raw.get("terminateBlueInstancesOnDeploymentSuccess");
    let terminate_blue = match text(terminate, "action").as_deref() {
        None | Some("KEEP_ALIVE") => false,
        Some("TERMINATE") => true,
        Some(other) => return Err(bad(format!("Invalid instance action: {other}"))),
    };
    let termination_wait_minutes = minutes(terminate, "terminationWaitTimeInMinutes")?;
    if termination_wait_minutes > MAX_TERMINATION_WAIT_MINUTES {
        return Err(bad(format!(
            "terminationWaitTimeInMinutes is {termination_wait_minutes}; the most is {MAX_TERMINATION_WAIT_MINUTES} (2 days)."
        )));
    }
    Ok(Some(BlueGreenConfig {
        ready_wait_minutes: minutes(ready, "waitTimeInMinutes")?,
        raw,
        stop_when_ready,
        terminate_blue,
        termination_wait_minutes,
    }))
}

/// Reads an ECS group's service (`ecsServices`: one, with its cluster) and
/// its `loadBalancerInfo.targetGroupPairInfoList` (one pair: two target
/// groups, a production listener and optionally a test one). `config` is
/// its blue/green configuration.
fn ecs_group(store: &Store, echoed: &Map<String, Value>, config: BlueGreenConfig) -> Result<EcsGroup, ApiError> {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    let services = echoed.get("ecsServices").and_then(Value::as_array).cloned().unwrap_or_default();
    let bad_service = |m: &str| ApiError::new("InvalidECSServiceException", m.to_string());
    let [entry] = services.as_slice() else {
        return Err(bad_service(
            "An ECS deployment group names exactly one service in ecsServices (serviceName and clusterName).",
        ));
    };
    let (Some(service), Some(cluster)) = (text(entry, "serviceName"), text(entry, "clusterName")) else {
        return Err(bad_service("The ECS service needs both serviceName and clusterName."));
    };
    if store.groups.values().any(|g| g.ecs.as_ref().is_some_and(|e| e.service == service && e.cluster == cluster)) {
        return Err(ApiError::new(
            "ECSServiceMappingLimitExceededException",
            format!(
                "The ECS service {service} of cluster {cluster} already belongs to a deployment group; a service can be in only one."
            ),
        ));
    }
    let Some(load_balancer_info) = echoed.get("loadBalancerInfo").cloned() else {
        return Err(ApiError::new(
            "InvalidLoadBalancerInfoException",
            "An ECS deployment group needs loadBalancerInfo with a targetGroupPairInfoList.",
        ));
    };
    let bad_pair = |m: &str| ApiError::new("InvalidTargetGroupPairException", m.to_string());
    let pairs = load_balancer_info.get("targetGroupPairInfoList").and_then(Value::as_array).cloned().unwrap_or_default();
    let [pair] = pairs.as_slice() else {
        return Err(bad_pair("An ECS deployment group needs exactly one target group pair in targetGroupPairInfoList."));
    };
    let names: Vec<String> =
        pair.get("targetGroups").and_then(Value::as_array).into_iter().flatten().filter_map(|g| text(g, "name")).collect();
    let [blue, green] = names.as_slice() else {
        return Err(bad_pair("A target group pair names exactly two target groups (by name)."));
    };
    if blue == green {
        return Err(bad_pair("The two target groups of a pair must differ."));
    }
    let listeners =
        |route: &str| pair.get(route).and_then(|r| r.get("listenerArns")).and_then(Value::as_array).map_or(0, Vec::len);
    if listeners("prodTrafficRoute") != 1 {
        return Err(bad_pair("A target group pair needs one production listener (prodTrafficRoute.listenerArns)."));
    }
    if pair.get("testTrafficRoute").is_some() && listeners("testTrafficRoute") != 1 {
        return Err(bad_pair("A test traffic route names one listener (testTrafficRoute.listenerArns)."));
    }
    Ok(EcsGroup {
        cluster,
        service,
        target_groups: [blue.clone(), green.clone()],
        test_listener: pair.get("testTrafficRoute").is_some(),
        load_balancer_info,
        config,
    })
}

pub(crate) fn info(group: &DeploymentGroup) -> Value {
    let mut out: Map<String, Value> = group.echoed.clone();
    out.insert("applicationName".into(), json!(group.application_name));
    out.insert("deploymentGroupId".into(), json!(group.id));
    out.insert("deploymentGroupName".into(), json!(group.name));
    out.insert("deploymentConfigName".into(), json!(group.deployment_config_name));
    out.insert("computePlatform".into(), json!(group.compute_platform));
    out.insert("deploymentStyle".into(), style(group.blue_green.is_some() || group.compute_platform != "Server"));
    if let Some(bg) = group.blue_green.as_ref().or(group.ecs.as_ref().map(|e| &e.config)) {
        out.insert("blueGreenDeploymentConfiguration".into(), bg.raw.clone());
    }
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
    let platform = {
        let store = shared.lock();
        super::applications::existing(&store, app)?.compute_platform.clone()
    };
    let lambda = platform == "Lambda";
    let ecs = platform == "ECS";
    // A Lambda group's traffic always moves (BLUE_GREEN / WITH_TRAFFIC_CONTROL,
    // what AWS sets for one); the EC2 blue/green settings are not its.
    let blue_green =
        if lambda { None } else { blue_green(&req.deployment_style, &req.blue_green_deployment_configuration, &echoed)? };
    if req.ecs_services.is_some() && !ecs {
        return Err(ApiError::new(
            "InvalidECSServiceException",
            format!("ecsServices is for ECS applications, not {platform} ones."),
        ));
    }
    // An ECS group is blue/green with traffic control, as AWS requires.
    let (blue_green, ecs_config) = match blue_green {
        Some(config) if ecs => (None, Some(config)),
        None if ecs => {
            return Err(ApiError::new(
                "InvalidDeploymentStyleException",
                "An ECS deployment group's deploymentStyle must be BLUE_GREEN with WITH_TRAFFIC_CONTROL.",
            ));
        }
        other => (other, None),
    };
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
    let default_config = match platform.as_str() {
        "Lambda" => LAMBDA_DEFAULT_CONFIG,
        "ECS" => ECS_DEFAULT_CONFIG,
        _ => super::deployments::DEFAULT_CONFIG,
    };
    let config_name = req.deployment_config_name.filter(|n| !n.is_empty()).unwrap_or_else(|| default_config.to_string());

    let mut store = shared.lock();
    // A group naming on-premises tags is those registered instances, whose
    // real agents run its deployments; any other group is simulated EC2.
    let instances = match echoed.get("onPremisesInstanceTagFilters") {
        _ if lambda || ecs => Vec::new(),
        Some(filters) => super::onprem::matching(&store, filters),
        None => (0..instance_count).map(|_| new_instance_id()).collect(),
    };
    super::applications::existing(&store, app)?;
    match store.configs.get(&config_name) {
        None => {
            return Err(ApiError::new(
                "DeploymentConfigDoesNotExistException",
                format!("No deployment configuration found for name: {config_name}"),
            ));
        }
        Some(c) if c.compute_platform != platform => {
            return Err(ApiError::new(
                "InvalidDeploymentConfigNameException",
                format!("The deployment configuration {config_name} is for {}, not {platform}.", c.compute_platform),
            ));
        }
        Some(_) => {}
    }
    let key = (app.to_string(), name.to_string());
    if store.groups.contains_key(&key) {
        return Err(ApiError::new(
            "DeploymentGroupAlreadyExistsException",
            format!("Deployment Group {name} already exists for application {app}."),
        ));
    }
    let ecs = ecs_config.map(|config| ecs_group(&store, &echoed, config)).transpose()?;
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
        blue_green,
        ecs,
        compute_platform: platform,
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
