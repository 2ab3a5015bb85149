//! Deployment targets and their older "instances" view: per-instance status
//! and lifecycle events of a deployment.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::{Deployment, InstanceRun, TargetStatus};
use crate::protocol::{ApiError, OpResult, input, required};
use crate::store::Shared;

/// Most target ids BatchGetDeploymentTargets accepts.
const MAX_TARGET_IDS: usize = 25;

fn started(d: &Deployment) -> Result<&Deployment, ApiError> {
    if d.instances.is_empty() && !d.status.is_complete() {
        return Err(ApiError::new("DeploymentNotStartedException", format!("The deployment {} has not started yet.", d.id)));
    }
    Ok(d)
}

fn parse_statuses(values: &[String]) -> Result<Vec<TargetStatus>, ApiError> {
    values
        .iter()
        .map(|s| {
            serde_json::from_value(json!(s))
                .map_err(|_| ApiError::new("InvalidInstanceStatusException", format!("Invalid instance status: {s}")))
        })
        .collect()
}

/// `arn:aws:ec2:REGION:ACCOUNT:instance/i-…`.
fn instance_arn(shared: &Shared, instance_id: &str) -> String {
    format!("arn:aws:ec2:{}:{}:instance/{instance_id}", shared.config.region, shared.config.account_id)
}

fn target(shared: &Shared, d: &Deployment, run: &InstanceRun) -> Value {
    if let Some(l) = &d.lambda {
        return json!({
            "deploymentTargetType": "LambdaTarget",
            "lambdaTarget": {
                "deploymentId": d.id,
                // The target is the function's alias: `NAME:ALIAS`.
                "targetId": run.instance_id,
                "targetArn": format!("arn:aws:lambda:{}:{}:function:{}", shared.config.region, shared.config.account_id, run.instance_id),
                "status": run.status,
                "lastUpdatedAt": run.last_updated,
                "lifecycleEvents": run.events,
                "lambdaFunctionInfo": {
                    "functionName": l.function,
                    "functionAlias": l.alias,
                    "currentVersion": l.current,
                    "targetVersion": l.target,
                    "targetVersionWeight": l.target_weight,
                },
            }
        });
    }
    if let Some(e) = &d.ecs {
        let (region, account) = (&shared.config.region, &shared.config.account_id);
        let task_sets: Vec<Value> = e
            .original
            .iter()
            .chain(&e.replacement)
            .map(|t| {
                json!({
                    // The service model's spelling.
                    "identifer": t.id,
                    "desiredCount": t.desired_count,
                    // moto runs no tasks: every task counts as running.
                    "pendingCount": 0,
                    "runningCount": if t.status == "DRAINING" { 0 } else { t.desired_count },
                    "status": t.status,
                    "trafficWeight": t.traffic_weight,
                    "targetGroup": { "name": t.target_group },
                    "taskSetLabel": t.label,
                })
            })
            .collect();
        return json!({
            "deploymentTargetType": "ECSTarget",
            "ecsTarget": {
                "deploymentId": d.id,
                // The target is the service: `CLUSTER:SERVICE`.
                "targetId": run.instance_id,
                "targetArn": format!("arn:aws:ecs:{region}:{account}:service/{}/{}", e.group.cluster, e.group.service),
                "status": run.status,
                "lastUpdatedAt": run.last_updated,
                "lifecycleEvents": run.events,
                "taskSetsInfo": task_sets,
            }
        });
    }
    json!({
        "deploymentTargetType": "InstanceTarget",
        "instanceTarget": {
            "deploymentId": d.id,
            // The target id is the bare instance id; its ARN is beside it.
            "targetId": run.instance_id,
            "targetArn": instance_arn(shared, &run.instance_id),
            "status": run.status,
            "lastUpdatedAt": run.last_updated,
            "lifecycleEvents": run.events,
            "instanceLabel": run.label,
        }
    })
}

/// The deprecated instance view. Its `instanceId` is the instance's ARN
/// (AWS's own example shows `arn:aws:ec2:…:instance/i-…`), although
/// ListDeploymentInstances lists, and the Get/BatchGet calls take, bare ids.
fn summary(shared: &Shared, d: &Deployment, run: &InstanceRun) -> Value {
    json!({
        "deploymentId": d.id,
        "instanceId": instance_arn(shared, &run.instance_id),
        "status": run.status,
        "lastUpdatedAt": run.last_updated,
        "lifecycleEvents": run.events,
        "instanceType": run.label,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListTargetsInput {
    deployment_id: Option<String>,
    next_token: Option<String>,
    #[serde(default)]
    target_filters: BTreeMap<String, Vec<String>>,
}

pub(super) fn list_targets(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: ListTargetsInput = input(body)?;
    let mut statuses = Vec::new();
    let mut labels = Vec::new();
    for (name, values) in &req.target_filters {
        match name.as_str() {
            "TargetStatus" => statuses = parse_statuses(values)?,
            "ServerInstanceLabel" => labels.clone_from(values),
            other => {
                return Err(ApiError::new(
                    "InvalidTargetFilterNameException",
                    format!("The target filter name {other} is invalid."),
                ));
            }
        }
    }
    let ids = matching_ids(shared, &req.deployment_id, &labels, &statuses)?;
    let (page, next) = super::paginate(ids, req.next_token.as_deref(), shared.config.page_size)?;
    Ok(json!({ "targetIds": page, "nextToken": next }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchTargetsInput {
    deployment_id: Option<String>,
    #[serde(default)]
    target_ids: Vec<String>,
}

pub(super) fn batch_get_targets(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: BatchTargetsInput = input(body)?;
    let store = shared.lock();
    let d = super::deployments::existing(&store, &req.deployment_id)?;
    if req.target_ids.is_empty() {
        return Err(ApiError::new("DeploymentTargetIdRequiredException", "A deployment target ID was not provided."));
    }
    if req.target_ids.len() > MAX_TARGET_IDS {
        return Err(ApiError::new(
            "DeploymentTargetListSizeExceededException",
            format!("The maximum number of targets that can be associated with a deployment ({MAX_TARGET_IDS}) was exceeded."),
        ));
    }
    let d = started(d)?;
    let targets = req.target_ids.iter().map(|id| find(d, id).map(|run| target(shared, d, run))).collect::<Result<Vec<_>, _>>()?;
    Ok(json!({ "deploymentTargets": targets }))
}

fn find<'a>(d: &'a Deployment, id: &str) -> Result<&'a InstanceRun, ApiError> {
    d.instances.iter().find(|i| i.instance_id == id).ok_or_else(|| {
        ApiError::new(
            "DeploymentTargetDoesNotExistException",
            format!("The provided target ID {id} does not belong to the deployment {}.", d.id),
        )
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetTargetInput {
    deployment_id: Option<String>,
    target_id: Option<String>,
}

pub(super) fn get_target(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: GetTargetInput = input(body)?;
    let store = shared.lock();
    let d = super::deployments::existing(&store, &req.deployment_id)?;
    let id = required(&req.target_id, "DeploymentTargetIdRequiredException", "A deployment target ID")?;
    let d = started(d)?;
    Ok(json!({ "deploymentTarget": target(shared, d, find(d, id)?) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListInstancesInput {
    deployment_id: Option<String>,
    next_token: Option<String>,
    #[serde(default)]
    instance_status_filter: Vec<String>,
    #[serde(default)]
    instance_type_filter: Vec<String>,
}

pub(super) fn list_instances(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: ListInstancesInput = input(body)?;
    let statuses = parse_statuses(&req.instance_status_filter)?;
    if let Some(bad) = req.instance_type_filter.iter().find(|t| *t != "Blue" && *t != "Green") {
        return Err(ApiError::new("InvalidInstanceTypeException", format!("Invalid instance type: {bad}")));
    }
    let ids = matching_ids(shared, &req.deployment_id, &req.instance_type_filter, &statuses)?;
    let (page, next) = super::paginate(ids, req.next_token.as_deref(), shared.config.page_size)?;
    Ok(json!({ "instancesList": page, "nextToken": next }))
}

/// Ids of a started deployment's instances, in order, that pass the
/// Blue/Green and status filters shared by the target and instance lists
/// (an empty filter passes everything).
fn matching_ids(
    shared: &Arc<Shared>,
    deployment_id: &Option<String>,
    labels: &[String],
    statuses: &[TargetStatus],
) -> Result<Vec<String>, ApiError> {
    let store = shared.lock();
    let d = started(super::deployments::existing(&store, deployment_id)?)?;
    Ok(d.instances
        .iter()
        .filter(|i| labels.is_empty() || labels.iter().any(|l| l == i.label.as_str()))
        .filter(|i| statuses.is_empty() || statuses.contains(&i.status))
        .map(|i| i.instance_id.clone())
        .collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchInstancesInput {
    deployment_id: Option<String>,
    #[serde(default)]
    instance_ids: Vec<String>,
}

pub(super) fn batch_get_instances(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: BatchInstancesInput = input(body)?;
    let store = shared.lock();
    let d = super::deployments::existing(&store, &req.deployment_id)?;
    if req.instance_ids.is_empty() {
        return Err(ApiError::new("InstanceIdRequiredException", "The instance ID was not specified."));
    }
    super::check_batch(&req.instance_ids, 25)?;
    let mut summaries = Vec::new();
    let mut missing = Vec::new();
    for id in &req.instance_ids {
        match d.instances.iter().find(|i| i.instance_id == *id) {
            Some(run) => summaries.push(summary(shared, d, run)),
            None => missing.push(id.clone()),
        }
    }
    let error_message = (!missing.is_empty()).then(|| format!("Instances not found in {}: {}", d.id, missing.join(", ")));
    Ok(json!({ "instancesSummary": summaries, "errorMessage": error_message }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetInstanceInput {
    deployment_id: Option<String>,
    instance_id: Option<String>,
}

pub(super) fn get_instance(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: GetInstanceInput = input(body)?;
    let store = shared.lock();
    let d = super::deployments::existing(&store, &req.deployment_id)?;
    let id = required(&req.instance_id, "InstanceIdRequiredException", "The instance ID")?;
    let run = d.instances.iter().find(|i| i.instance_id == id).ok_or_else(|| {
        ApiError::new("InstanceDoesNotExistException", format!("The instance {id} is not part of deployment {}.", d.id))
    })?;
    Ok(json!({ "instanceSummary": summary(shared, d, run) }))
}
