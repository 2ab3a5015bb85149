//! Deployments: create (which starts the engine), read, list, stop.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::model::{
    AutoRollbackConfiguration, BlueGreenRun, Deployment, DeploymentStatus, EcsRun, LambdaRun, LastDeploymentInfo,
    RegisteredRevision, RevisionLocation, RollbackInfo, StopRequest, now,
};
use crate::protocol::{ApiError, OpResult, input, required};
use crate::store::{Shared, Store, is_deployment_id, new_deployment_id};

/// The deployment config used when neither the deployment nor its group names one.
pub const DEFAULT_CONFIG: &str = "CodeDeployDefault.OneAtATime";

/// Deployment input members the emulator accepts but does not model.
const ECHOED: &[&str] = &["targetInstances", "overrideAlarmConfiguration"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    application_name: Option<String>,
    deployment_group_name: Option<String>,
    revision: Option<RevisionLocation>,
    deployment_config_name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    ignore_application_stop_failures: bool,
    auto_rollback_configuration: Option<AutoRollbackConfiguration>,
    #[serde(default)]
    update_outdated_instances_only: bool,
    file_exists_behavior: Option<String>,
}

/// Validates a revision the emulator can deploy (S3 bundles only).
pub(crate) fn check_revision(revision: &Option<RevisionLocation>) -> Result<&RevisionLocation, ApiError> {
    let revision = revision.as_ref().ok_or_else(|| ApiError::new("RevisionRequiredException", "Revision must be specified."))?;
    let invalid = |m: &str| Err(ApiError::new("InvalidRevisionException", m.to_string()));
    match revision.revision_type.as_deref() {
        Some("S3") => {}
        Some("GitHub") | Some("String") | Some("AppSpecContent") => {
            return invalid("The emulator can only deploy S3 revisions.");
        }
        Some(other) => return invalid(&format!("Unknown revision type: {other}")),
        None => return invalid("Revision type must be specified."),
    }
    let Some(s3) = &revision.s3_location else {
        return invalid("The S3 location must be specified for an S3 revision.");
    };
    if s3.bucket.as_deref().unwrap_or("").is_empty() {
        return invalid("The S3 bucket must be specified.");
    }
    if s3.key.as_deref().unwrap_or("").is_empty() {
        return invalid("The S3 key must be specified.");
    }
    if let Some(bt) = s3.bundle_type.as_deref()
        && !matches!(bt, "zip" | "tar" | "tgz")
    {
        return invalid(&format!("Bundle type {bt} is not valid for the Server compute platform; use zip, tar or tgz."));
    }
    Ok(revision)
}

/// Validates the revision of a Lambda or ECS (`platform`) deployment: an
/// appspec, given as `AppSpecContent` (read here with `parse`) or as a YAML
/// or JSON object in S3 (read when the deployment starts: `None`).
fn check_appspec_revision<'a, T>(
    revision: &'a Option<RevisionLocation>,
    platform: &str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<(&'a RevisionLocation, Option<T>), ApiError> {
    let revision = revision.as_ref().ok_or_else(|| ApiError::new("RevisionRequiredException", "Revision must be specified."))?;
    let invalid = |m: String| ApiError::new("InvalidRevisionException", m);
    match (revision.revision_type.as_deref(), &revision.s3_location) {
        (Some("AppSpecContent"), _) => {}
        (Some("S3"), Some(s3)) => {
            if s3.bucket.as_deref().unwrap_or("").is_empty() || s3.key.as_deref().unwrap_or("").is_empty() {
                return Err(invalid("The S3 bucket and key must be specified.".into()));
            }
            return match s3.bundle_type.as_deref() {
                Some("YAML" | "JSON") => Ok((revision, None)),
                other => Err(invalid(format!(
                    "Bundle type {} is not valid for the {platform} compute platform; use YAML or JSON.",
                    other.unwrap_or("(none)")
                ))),
            };
        }
        _ => return Err(invalid(format!("A {platform} deployment's appspec is an AppSpecContent or an S3 revision."))),
    }
    let content = revision
        .app_spec_content
        .as_ref()
        .and_then(crate::lambda::content)
        .ok_or_else(|| invalid("The AppSpecContent revision has no content.".into()))?;
    let run = parse(content).map_err(invalid)?;
    Ok((revision, Some(run)))
}

/// Validates a deployment id and finds the deployment.
pub(crate) fn existing<'a>(store: &'a Store, id: &Option<String>) -> Result<&'a Deployment, ApiError> {
    let id = required(id, "DeploymentIdRequiredException", "The deployment ID")?;
    check_id(id)?;
    store
        .deployments
        .get(id)
        .ok_or_else(|| ApiError::new("DeploymentDoesNotExistException", format!("The deployment {id} could not be found.")))
}

/// Fails with `InvalidDeploymentIdException` unless `id` looks like `d-XXXXXXXXX`.
pub(crate) fn check_id(id: &str) -> Result<(), ApiError> {
    if is_deployment_id(id) {
        Ok(())
    } else {
        Err(ApiError::new("InvalidDeploymentIdException", format!("Specified DeploymentId is not in the valid format: {id}")))
    }
}

/// What a new deployment is made of; shared by CreateDeployment and rollbacks.
pub(crate) struct NewDeployment {
    pub application_name: String,
    pub group_name: String,
    pub revision: RevisionLocation,
    pub config_name: String,
    pub description: Option<String>,
    pub creator: &'static str,
    pub ignore_application_stop_failures: bool,
    pub auto_rollback: Option<AutoRollbackConfiguration>,
    pub update_outdated_instances_only: bool,
    pub file_exists_behavior: String,
    pub echoed: Map<String, Value>,
    pub rollback_info: Option<RollbackInfo>,
    pub blue_green: Option<BlueGreenRun>,
    pub lambda: Option<LambdaRun>,
    pub ecs: Option<EcsRun>,
    pub compute_platform: String,
}

/// Records a new deployment (status Created), registers its revision and
/// updates the group. The caller starts the engine on the returned id.
pub(crate) fn insert(store: &mut Store, spec: NewDeployment) -> String {
    let id = loop {
        let id = new_deployment_id();
        if !store.deployments.contains_key(&id) {
            break id;
        }
    };
    let created = now();
    let key = (spec.application_name.clone(), spec.group_name.clone());
    let (group_id, previous_revision) = match store.groups.get_mut(&key) {
        Some(group) => {
            group.target_revision = Some(spec.revision.clone());
            group.last_attempted = Some(LastDeploymentInfo {
                deployment_id: id.clone(),
                status: DeploymentStatus::Created,
                end_time: None,
                create_time: created,
            });
            (group.id.clone(), group.last_successful_revision.clone())
        }
        None => (String::new(), None),
    };
    let revision_key = (spec.application_name.clone(), spec.revision.identity());
    let registered = store.revisions.entry(revision_key).or_insert_with(|| RegisteredRevision {
        location: spec.revision.clone(),
        description: None,
        deployment_groups: Vec::new(),
        first_used_time: None,
        last_used_time: None,
        register_time: created,
    });
    registered.first_used_time.get_or_insert(created);
    registered.last_used_time = Some(created);
    if !registered.deployment_groups.contains(&spec.group_name) {
        registered.deployment_groups.push(spec.group_name.clone());
    }
    store.deployments.insert(
        id.clone(),
        Deployment {
            id: id.clone(),
            application_name: spec.application_name,
            group_name: spec.group_name,
            group_id,
            config_name: spec.config_name,
            revision: spec.revision,
            previous_revision,
            status: DeploymentStatus::Created,
            error: None,
            create_time: created,
            start_time: None,
            complete_time: None,
            description: spec.description,
            creator: spec.creator.to_string(),
            ignore_application_stop_failures: spec.ignore_application_stop_failures,
            auto_rollback: spec.auto_rollback,
            rollback_info: spec.rollback_info,
            file_exists_behavior: spec.file_exists_behavior,
            update_outdated_instances_only: spec.update_outdated_instances_only,
            echoed: spec.echoed,
            instances: Vec::new(),
            stop: None,
            blue_green: spec.blue_green,
            lambda: spec.lambda,
            ecs: spec.ecs,
            hook_executions: Default::default(),
            compute_platform: spec.compute_platform,
        },
    );
    store.deployment_order.push(id.clone());
    id
}

/// The `deploymentInfo` shape of a deployment.
pub(crate) fn info(d: &Deployment) -> Value {
    let mut out = d.echoed.clone();
    let fields = json!({
        "applicationName": d.application_name,
        "deploymentGroupName": d.group_name,
        "deploymentConfigName": d.config_name,
        "deploymentId": d.id,
        "previousRevision": d.previous_revision,
        "revision": d.revision,
        "status": d.status,
        "errorInformation": d.error,
        "createTime": d.create_time,
        "startTime": d.start_time,
        "completeTime": d.complete_time,
        "deploymentOverview": d.overview(),
        "description": d.description,
        "creator": d.creator,
        "ignoreApplicationStopFailures": d.ignore_application_stop_failures,
        "autoRollbackConfiguration": d.auto_rollback,
        "updateOutdatedInstancesOnly": d.update_outdated_instances_only,
        "rollbackInfo": d.rollback_info,
        "deploymentStyle": super::groups::style(d.blue_green.is_some() || d.compute_platform != "Server"),
        "instanceTerminationWaitTimeStarted": d.blue_green.as_ref().is_some_and(|bg| bg.termination_wait_started)
            || d.ecs.as_ref().is_some_and(|run| run.termination_wait_started),
        "blueGreenDeploymentConfiguration": d.blue_green.as_ref().map(|bg| bg.config.raw.clone())
            .or_else(|| d.ecs.as_ref().map(|run| run.group.config.raw.clone())),
        "loadBalancerInfo": d.blue_green.as_ref().and_then(|bg| bg.load_balancer_info.clone())
            .or_else(|| d.ecs.as_ref().map(|run| run.group.load_balancer_info.clone())),
        "fileExistsBehavior": d.file_exists_behavior,
        "deploymentStatusMessages": [],
        "computePlatform": d.compute_platform,
    });
    if let Value::Object(fields) = fields {
        out.extend(fields);
    }
    Value::Object(out)
}

pub(super) fn create(shared: &Arc<Shared>, body: Value) -> OpResult {
    let echoed = super::echoed(&body, ECHOED);
    let req: CreateInput = input(body)?;
    let app = super::applications::check_name(&req.application_name)?.to_string();
    let group_name = super::groups::check_name(&req.deployment_group_name)?.to_string();
    let file_exists_behavior = req.file_exists_behavior.unwrap_or_else(|| "DISALLOW".to_string());
    if !matches!(file_exists_behavior.as_str(), "DISALLOW" | "OVERWRITE" | "RETAIN") {
        return Err(ApiError::new(
            "InvalidFileExistsBehaviorException",
            format!("Invalid fileExistsBehavior: {file_exists_behavior}"),
        ));
    }
    super::groups::check_auto_rollback(&req.auto_rollback_configuration)?;

    let id = {
        let mut store = shared.lock();
        let group = super::groups::existing(&store, &app, &group_name)?;
        let compute_platform = group.compute_platform.clone();
        let (revision, lambda, ecs) = match compute_platform.as_str() {
            "Lambda" => {
                let (revision, run) = check_appspec_revision(&req.revision, "Lambda", crate::lambda::parse_appspec)?;
                (revision.clone(), run, None)
            }
            "ECS" => {
                let (revision, appspec) = check_appspec_revision(&req.revision, "ECS", crate::ecs::parse_appspec)?;
                let run = group.ecs.clone().map(|group| EcsRun {
                    group,
                    appspec,
                    original: None,
                    replacement: None,
                    rollback: false,
                    continue_ready: false,
                    continue_termination: false,
                    termination_wait_started: false,
                });
                (revision.clone(), None, run)
            }
            _ => (check_revision(&req.revision)?.clone(), None, None),
        };
        let config_name =
            req.deployment_config_name.filter(|n| !n.is_empty()).unwrap_or_else(|| group.deployment_config_name.clone());
        if !store.configs.contains_key(&config_name) {
            return Err(ApiError::new(
                "DeploymentConfigDoesNotExistException",
                format!("No deployment configuration found for name: {config_name}"),
            ));
        }
        // The original environment is the group's instances now.
        let blue_green = group
            .blue_green
            .clone()
            .map(|config| (config, group.instances.clone(), group.echoed.get("loadBalancerInfo").cloned()));
        if let Some(active) = store.active_deployment(&app, &group_name) {
            return Err(ApiError::new(
                "DeploymentLimitExceededException",
                format!(
                    "The Deployment Group '{group_name}' for Application '{app}' already has an active Deployment '{}'",
                    active.id
                ),
            ));
        }
        let blue_green = match blue_green {
            None => None,
            Some((config, blue, load_balancer_info)) => {
                let green = super::fleet::discover(&mut store, echoed.get("targetInstances"), &blue, blue.len())?;
                Some(BlueGreenRun {
                    config,
                    load_balancer_info,
                    blue,
                    green,
                    rollback: false,
                    continue_ready: false,
                    continue_termination: false,
                    termination_wait_started: false,
                })
            }
        };
        insert(
            &mut store,
            NewDeployment {
                application_name: app,
                group_name,
                revision,
                config_name,
                description: req.description,
                creator: "user",
                ignore_application_stop_failures: req.ignore_application_stop_failures,
                auto_rollback: req.auto_rollback_configuration,
                update_outdated_instances_only: req.update_outdated_instances_only,
                file_exists_behavior,
                echoed,
                rollback_info: None,
                blue_green,
                lambda,
                ecs,
                compute_platform,
            },
        )
    };
    crate::engine::spawn(shared.clone(), id.clone());
    Ok(json!({ "deploymentId": id }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdInput {
    deployment_id: Option<String>,
    auto_rollback_enabled: Option<bool>,
}

pub(super) fn get(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: IdInput = input(body)?;
    let store = shared.lock();
    Ok(json!({ "deploymentInfo": info(existing(&store, &req.deployment_id)?) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchInput {
    #[serde(default)]
    deployment_ids: Vec<String>,
}

pub(super) fn batch_get(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: BatchInput = input(body)?;
    super::check_batch(&req.deployment_ids, 25)?;
    for id in &req.deployment_ids {
        check_id(id)?;
    }
    let store = shared.lock();
    // Unknown ids are left out of the answer, as the service does.
    let infos: Vec<Value> = req.deployment_ids.iter().filter_map(|id| store.deployments.get(id)).map(info).collect();
    Ok(json!({ "deploymentsInfo": infos }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimeRange {
    start: Option<f64>,
    end: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListInput {
    application_name: Option<String>,
    deployment_group_name: Option<String>,
    #[serde(default)]
    include_only_statuses: Vec<String>,
    create_time_range: Option<TimeRange>,
    next_token: Option<String>,
}

pub(super) fn list(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: ListInput = input(body)?;
    let app = req.application_name.filter(|s| !s.is_empty());
    let group = req.deployment_group_name.filter(|s| !s.is_empty());
    match (&app, &group) {
        (Some(_), None) => {
            return Err(ApiError::new(
                "DeploymentGroupNameRequiredException",
                "If applicationName is specified, deploymentGroupName must be specified too.",
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::new(
                "ApplicationNameRequiredException",
                "If deploymentGroupName is specified, applicationName must be specified too.",
            ));
        }
        _ => {}
    }
    let mut statuses = Vec::new();
    for s in &req.include_only_statuses {
        let status: DeploymentStatus = serde_json::from_value(json!(s))
            .map_err(|_| ApiError::new("InvalidDeploymentStatusException", format!("Invalid deployment status: {s}")))?;
        statuses.push(status);
    }
    if let Some(TimeRange { start: Some(s), end: Some(e) }) = &req.create_time_range
        && s > e
    {
        return Err(ApiError::new("InvalidTimeRangeException", "The start time is after the end time."));
    }
    let ids: Vec<String> = {
        let store = shared.lock();
        if let (Some(a), Some(g)) = (&app, &group) {
            super::groups::existing(&store, a, g)?;
        }
        // Newest first, as the service lists them.
        store
            .deployment_order
            .iter()
            .rev()
            .filter_map(|id| store.deployments.get(id))
            .filter(|d| app.as_ref().is_none_or(|a| *a == d.application_name))
            .filter(|d| group.as_ref().is_none_or(|g| *g == d.group_name))
            .filter(|d| statuses.is_empty() || statuses.contains(&d.status))
            .filter(|d| match &req.create_time_range {
                Some(r) => r.start.is_none_or(|s| d.create_time >= s) && r.end.is_none_or(|e| d.create_time <= e),
                None => true,
            })
            .map(|d| d.id.clone())
            .collect()
    };
    let (page, next) = super::paginate(ids, req.next_token.as_deref(), shared.config.page_size)?;
    Ok(json!({ "deployments": page, "nextToken": next }))
}

pub(super) fn stop(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: IdInput = input(body)?;
    let mut store = shared.lock();
    let id = existing(&store, &req.deployment_id)?.id.clone();
    let deployment = store.deployments.get_mut(&id).expect("checked above");
    if deployment.status.is_complete() {
        return Err(ApiError::new("DeploymentAlreadyCompletedException", format!("The deployment {id} has already completed.")));
    }
    deployment.stop = Some(StopRequest { auto_rollback: req.auto_rollback_enabled });
    Ok(json!({
        "status": "Pending",
        "statusMessage": "Stopping Pending. Stopping to schedule commands in the deployment instances",
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContinueInput {
    deployment_id: Option<String>,
    deployment_wait_type: Option<String>,
}

/// ContinueDeployment: READY_WAIT (the default) reroutes traffic of a
/// blue/green deployment standing Ready; TERMINATION_WAIT ends the wait
/// before its original instances are terminated.
pub(super) fn continue_deployment(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: ContinueInput = input(body)?;
    let mut store = shared.lock();
    let id = existing(&store, &req.deployment_id)?.id.clone();
    let deployment = store.deployments.get_mut(&id).expect("checked above");
    let termination = match req.deployment_wait_type.as_deref() {
        None | Some("READY_WAIT") => false,
        Some("TERMINATION_WAIT") => true,
        Some(other) => {
            return Err(ApiError::new("InvalidDeploymentWaitTypeException", format!("Invalid deployment wait type: {other}")));
        }
    };
    if deployment.status.is_complete() {
        return Err(ApiError::new("DeploymentAlreadyCompletedException", format!("The deployment {id} has already completed.")));
    }
    let status = deployment.status;
    let not_ready = |m: &str| Err(ApiError::new("DeploymentIsNotInReadyStateException", m.to_string()));
    if deployment.compute_platform == "Lambda" {
        return Err(ApiError::new(
            "UnsupportedActionForDeploymentTypeException",
            "A Lambda deployment has no Ready or termination wait to continue.",
        ));
    }
    if let Some(run) = &mut deployment.ecs {
        match termination {
            false if status == DeploymentStatus::Ready => run.continue_ready = true,
            true if run.termination_wait_started => run.continue_termination = true,
            false => return not_ready("The deployment does not have a status of Ready and can't continue yet."),
            true => return not_ready("The deployment is not waiting to remove its original task set."),
        }
        return Ok(json!({}));
    }
    match (&mut deployment.blue_green, termination) {
        (Some(bg), false) if status == DeploymentStatus::Ready => bg.continue_ready = true,
        (Some(bg), true) if bg.termination_wait_started => bg.continue_termination = true,
        (_, false) => return not_ready("The deployment does not have a status of Ready and can't continue yet."),
        (_, true) => {
            return not_ready(
                "The deployment is not waiting to terminate its original instances, so there is no termination wait to end.",
            );
        }
    }
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HookStatusInput {
    deployment_id: Option<String>,
    lifecycle_event_hook_execution_id: Option<String>,
    status: Option<String>,
}

/// PutLifecycleEventHookExecutionStatus: a hook function reports how its
/// check went, with the execution id it was invoked with.
pub(super) fn put_hook_status(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: HookStatusInput = input(body)?;
    let mut store = shared.lock();
    let id = existing(&store, &req.deployment_id)?.id.clone();
    let deployment = store.deployments.get_mut(&id).expect("checked above");
    if deployment.compute_platform == "Server" {
        return Err(ApiError::new(
            "UnsupportedActionForDeploymentTypeException",
            "Only Lambda and ECS deployments run hook functions.",
        ));
    }
    let execution_id = req.lifecycle_event_hook_execution_id.unwrap_or_default();
    let Some(execution) = deployment.hook_executions.get_mut(&execution_id) else {
        return Err(ApiError::new(
            "InvalidLifecycleEventHookExecutionIdException",
            format!("The lifecycle event hook execution id {execution_id} does not belong to deployment {id}."),
        ));
    };
    let status = req.status.unwrap_or_default();
    if !matches!(status.as_str(), "Succeeded" | "Failed") {
        return Err(ApiError::new(
            "InvalidLifecycleEventHookExecutionStatusException",
            format!("A hook reports Succeeded or Failed, not {status}."),
        ));
    }
    if execution.status.is_some() {
        return Err(ApiError::new(
            "LifecycleEventAlreadyCompletedException",
            format!("The lifecycle event hook execution {execution_id} has already reported its status."),
        ));
    }
    execution.status = Some(status);
    Ok(json!({ "lifecycleEventHookExecutionId": execution_id }))
}
