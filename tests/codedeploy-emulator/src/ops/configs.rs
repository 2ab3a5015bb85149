//! Deployment configs: the built-in `CodeDeployDefault.*` ones and custom ones.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::{DeploymentConfig, MinimumHealthyHosts, now};
use crate::protocol::{ApiError, OpResult, input, required};
use crate::store::Shared;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    deployment_config_name: Option<String>,
    minimum_healthy_hosts: Option<MinimumHealthyHosts>,
    compute_platform: Option<String>,
    traffic_routing_config: Option<Value>,
    zonal_config: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NameInput {
    deployment_config_name: Option<String>,
}

fn check_name(name: &Option<String>) -> Result<&str, ApiError> {
    let name = required(name, "DeploymentConfigNameRequiredException", "The deployment configuration name")?;
    if name.len() > 100 {
        return Err(ApiError::new(
            "InvalidDeploymentConfigNameException",
            "The deployment configuration name was specified in an invalid format.",
        ));
    }
    Ok(name)
}

fn info(cfg: &DeploymentConfig) -> Value {
    let server = cfg.compute_platform == "Server";
    json!({
        "deploymentConfigId": cfg.id,
        "deploymentConfigName": cfg.name,
        "minimumHealthyHosts": server.then_some(&cfg.minimum_healthy_hosts),
        "createTime": cfg.create_time,
        "computePlatform": cfg.compute_platform,
        "trafficRoutingConfig": cfg.traffic_routing,
    })
}

pub(super) fn create(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: CreateInput = input(body)?;
    let name = check_name(&req.deployment_config_name)?;
    let platform = req.compute_platform.clone().unwrap_or_else(|| "Server".into());
    match platform.as_str() {
        "Server" if req.traffic_routing_config.is_some() => {
            return Err(ApiError::new(
                "InvalidTrafficRoutingConfigurationException",
                "A Server deployment config has no trafficRoutingConfig.",
            ));
        }
        "Server" => {}
        "Lambda" | "ECS" => return create_traffic(shared, name, req.traffic_routing_config, &platform),
        other => {
            return Err(ApiError::new(
                "InvalidComputePlatformException",
                format!("The emulator models Server, Lambda and ECS deployment configs, not {other}."),
            ));
        }
    }
    if req.zonal_config.is_some() {
        return Err(ApiError::new(
            "InvalidZonalDeploymentConfigurationException",
            "The emulator does not model zonal deployments.",
        ));
    }
    let hosts = req.minimum_healthy_hosts.ok_or_else(|| {
        ApiError::new("InvalidMinimumHealthyHostValueException", "The minimum healthy hosts must be specified.")
    })?;
    let valid = match hosts.kind.as_str() {
        "HOST_COUNT" => hosts.value >= 0,
        "FLEET_PERCENT" => (0..=99).contains(&hosts.value),
        _ => false,
    };
    if !valid {
        return Err(ApiError::new(
            "InvalidMinimumHealthyHostValueException",
            format!("The minimum healthy instance value {} {} is not valid.", hosts.kind, hosts.value),
        ));
    }
    insert(shared, name, hosts, "Server", None)
}

/// Stores a new config unless one has that name.
fn insert(
    shared: &Arc<Shared>,
    name: &str,
    minimum_healthy_hosts: MinimumHealthyHosts,
    compute_platform: &str,
    traffic_routing: Option<Value>,
) -> OpResult {
    let mut store = shared.lock();
    if store.configs.contains_key(name) {
        return Err(ApiError::new(
            "DeploymentConfigAlreadyExistsException",
            format!("A deployment configuration with the name {name} already exists."),
        ));
    }
    let cfg = DeploymentConfig {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_string(),
        minimum_healthy_hosts,
        create_time: now(),
        compute_platform: compute_platform.into(),
        traffic_routing,
    };
    let id = cfg.id.clone();
    store.configs.insert(name.to_string(), cfg);
    Ok(json!({ "deploymentConfigId": id }))
}

/// A Lambda or ECS config: how its deployments move traffic (an alias's,
/// a service's task sets').
fn create_traffic(shared: &Arc<Shared>, name: &str, routing: Option<Value>, platform: &str) -> OpResult {
    let bad = |m: String| ApiError::new("InvalidTrafficRoutingConfigurationException", m);
    let routing = routing.unwrap_or_else(|| json!({ "type": "AllAtOnce" }));
    let number = |member: &str, key: &str| routing.get(member).and_then(|m| m.get(key)).and_then(Value::as_i64);
    let (percentage, interval) = match routing.get("type").and_then(Value::as_str) {
        Some("AllAtOnce") => (None, None),
        Some("TimeBasedCanary") => (number("timeBasedCanary", "canaryPercentage"), number("timeBasedCanary", "canaryInterval")),
        Some("TimeBasedLinear") => (number("timeBasedLinear", "linearPercentage"), number("timeBasedLinear", "linearInterval")),
        other => return Err(bad(format!("Invalid traffic routing type: {}", other.unwrap_or("(none)")))),
    };
    // Absent numbers are 0 (the SDKs leave zeros out): a step needs both.
    let stepped = routing.get("type").and_then(Value::as_str) != Some("AllAtOnce");
    if stepped && (!(1..=99).contains(&percentage.unwrap_or(0)) || interval.unwrap_or(0) < 1) {
        return Err(bad("A traffic step is 1 to 99 percent, every whole number of minutes from 1.".into()));
    }
    // Lambda and ECS configs have no minimum healthy hosts.
    insert(shared, name, MinimumHealthyHosts { kind: String::new(), value: 0 }, platform, Some(routing))
}

pub(super) fn get(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: NameInput = input(body)?;
    let name = check_name(&req.deployment_config_name)?;
    let store = shared.lock();
    let cfg = store.configs.get(name).ok_or_else(|| {
        ApiError::new("DeploymentConfigDoesNotExistException", format!("No deployment configuration found for name: {name}"))
    })?;
    Ok(json!({ "deploymentConfigInfo": info(cfg) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListInput {
    next_token: Option<String>,
}

pub(super) fn list(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: ListInput = input(body)?;
    let names: Vec<String> = shared.lock().configs.keys().cloned().collect();
    let (page, next) = super::paginate(names, req.next_token.as_deref(), shared.config.page_size)?;
    Ok(json!({ "deploymentConfigsList": page, "nextToken": next }))
}

pub(super) fn delete(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: NameInput = input(body)?;
    let name = check_name(&req.deployment_config_name)?;
    if name.starts_with("CodeDeployDefault.") {
        return Err(ApiError::new("InvalidOperationException", "The built-in deployment configurations cannot be deleted."));
    }
    let mut store = shared.lock();
    if store.groups.values().any(|g| g.deployment_config_name == name) {
        return Err(ApiError::new("DeploymentConfigInUseException", format!("The deployment configuration {name} is in use.")));
    }
    store.configs.remove(name);
    Ok(json!({}))
}
