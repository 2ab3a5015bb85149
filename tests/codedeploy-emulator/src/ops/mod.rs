//! Operation handlers, one module per area, and the dispatcher that routes
//! an `X-Amz-Target` operation name to its handler.

mod applications;
mod configs;
mod deployments;
mod fleet;
mod groups;
mod onprem;
mod revisions;
mod targets;

use std::sync::Arc;

use serde_json::Value;

use crate::protocol::{ApiError, OpResult};
use crate::store::Shared;

/// Every operation [`dispatch`] implements.
pub const OPERATIONS: &[&str] = &[
    "CreateApplication",
    "GetApplication",
    "ListApplications",
    "BatchGetApplications",
    "DeleteApplication",
    "CreateDeploymentGroup",
    "GetDeploymentGroup",
    "ListDeploymentGroups",
    "BatchGetDeploymentGroups",
    "DeleteDeploymentGroup",
    "CreateDeploymentConfig",
    "GetDeploymentConfig",
    "ListDeploymentConfigs",
    "DeleteDeploymentConfig",
    "CreateDeployment",
    "GetDeployment",
    "BatchGetDeployments",
    "ListDeployments",
    "StopDeployment",
    "ContinueDeployment",
    "PutLifecycleEventHookExecutionStatus",
    "ListDeploymentTargets",
    "BatchGetDeploymentTargets",
    "GetDeploymentTarget",
    "ListDeploymentInstances",
    "BatchGetDeploymentInstances",
    "GetDeploymentInstance",
    "RegisterApplicationRevision",
    "GetApplicationRevision",
    "ListApplicationRevisions",
    "BatchGetApplicationRevisions",
];

/// The on-premises registration operations [`dispatch`] also implements,
/// for the test stack's real-agent mode. Kept apart from [`OPERATIONS`]:
/// they are not IAM-scoped here (the stack registers as its inspector) and
/// the full-coverage model test does not drive them; their answers are still
/// checked against the service model like every other.
pub const ON_PREMISES_OPERATIONS: &[&str] = &["RegisterOnPremisesInstance", "AddTagsToOnPremisesInstances"];

/// Runs `operation` with its parsed JSON input.
pub fn dispatch(shared: &Arc<Shared>, operation: &str, input: Value) -> OpResult {
    match operation {
        "CreateApplication" => applications::create(shared, input),
        "GetApplication" => applications::get(shared, input),
        "ListApplications" => applications::list(shared, input),
        "BatchGetApplications" => applications::batch_get(shared, input),
        "DeleteApplication" => applications::delete(shared, input),
        "CreateDeploymentGroup" => groups::create(shared, input),
        "GetDeploymentGroup" => groups::get(shared, input),
        "ListDeploymentGroups" => groups::list(shared, input),
        "BatchGetDeploymentGroups" => groups::batch_get(shared, input),
        "DeleteDeploymentGroup" => groups::delete(shared, input),
        "CreateDeploymentConfig" => configs::create(shared, input),
        "GetDeploymentConfig" => configs::get(shared, input),
        "ListDeploymentConfigs" => configs::list(shared, input),
        "DeleteDeploymentConfig" => configs::delete(shared, input),
        "CreateDeployment" => deployments::create(shared, input),
        "GetDeployment" => deployments::get(shared, input),
        "BatchGetDeployments" => deployments::batch_get(shared, input),
        "ListDeployments" => deployments::list(shared, input),
        "StopDeployment" => deployments::stop(shared, input),
        "ContinueDeployment" => deployments::continue_deployment(shared, input),
        "PutLifecycleEventHookExecutionStatus" => deployments::put_hook_status(shared, input),
        "ListDeploymentTargets" => targets::list_targets(shared, input),
        "BatchGetDeploymentTargets" => targets::batch_get_targets(shared, input),
        "GetDeploymentTarget" => targets::get_target(shared, input),
        "ListDeploymentInstances" => targets::list_instances(shared, input),
        "BatchGetDeploymentInstances" => targets::batch_get_instances(shared, input),
        "GetDeploymentInstance" => targets::get_instance(shared, input),
        "RegisterApplicationRevision" => revisions::register(shared, input),
        "GetApplicationRevision" => revisions::get(shared, input),
        "ListApplicationRevisions" => revisions::list(shared, input),
        "BatchGetApplicationRevisions" => revisions::batch_get(shared, input),
        "RegisterOnPremisesInstance" => onprem::register(shared, input),
        "AddTagsToOnPremisesInstances" => onprem::add_tags(shared, input),
        other => Err(ApiError::new("UnknownOperationException", format!("The emulator does not implement operation {other}"))),
    }
}

/// One page of `items` starting at `next_token`, and the token of the next page.
/// The request members in `keys`, kept verbatim: settings the emulator
/// stores and returns as sent (e.g. `autoRollbackConfiguration`).
pub(crate) fn echoed(body: &Value, keys: &[&str]) -> serde_json::Map<String, Value> {
    body.as_object()
        .map(|m| m.iter().filter(|(k, _)| keys.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

pub(crate) fn paginate<T>(
    items: Vec<T>,
    next_token: Option<&str>,
    page_size: usize,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start = match next_token {
        None | Some("") => 0,
        Some(token) => token
            .strip_prefix("emu-page-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| ApiError::new("InvalidNextTokenException", "The next token was specified in an invalid format."))?,
    };
    let page_size = page_size.max(1);
    let end = (start + page_size).min(items.len());
    let next = (end < items.len()).then(|| format!("emu-page-{end}"));
    let page = items.into_iter().skip(start).take(end - start).collect();
    Ok((page, next))
}

/// Fails with `BatchLimitExceededException` above `limit` items.
pub(crate) fn check_batch<T>(items: &[T], limit: usize) -> Result<(), ApiError> {
    if items.len() > limit {
        return Err(ApiError::new(
            "BatchLimitExceededException",
            format!("The maximum number of names or IDs allowed for this request ({limit}) was exceeded."),
        ));
    }
    Ok(())
}

/// Creates the rollback deployment of `failed`, redeploying `target` (the
/// group's last successful revision), and returns its id.
pub(crate) fn new_rollback(
    store: &mut crate::store::Store,
    failed: &crate::model::Deployment,
    target: crate::model::RevisionLocation,
) -> String {
    deployments::insert(
        store,
        deployments::NewDeployment {
            application_name: failed.application_name.clone(),
            group_name: failed.group_name.clone(),
            revision: target,
            config_name: failed.config_name.clone(),
            description: None,
            creator: "codeDeployRollback",
            ignore_application_stop_failures: failed.ignore_application_stop_failures,
            auto_rollback: None,
            update_outdated_instances_only: false,
            file_exists_behavior: failed.file_exists_behavior.clone(),
            echoed: Default::default(),
            rollback_info: Some(crate::model::RollbackInfo {
                rollback_triggering_deployment_id: Some(failed.id.clone()),
                ..Default::default()
            }),
            // A blue/green rollback moves traffic back to the originals.
            compute_platform: failed.compute_platform.clone(),
            // A Lambda rollback points the alias back at the version it had.
            lambda: failed.lambda.as_ref().map(|l| crate::model::LambdaRun {
                function: l.function.clone(),
                alias: l.alias.clone(),
                current: l.target.clone(),
                target: l.current.clone(),
                rollback: true,
                ..Default::default()
            }),
            // An ECS rollback moves traffic back to the original task set.
            ecs: failed.ecs.as_ref().map(|run| crate::model::EcsRun {
                rollback: true,
                continue_ready: false,
                continue_termination: false,
                termination_wait_started: false,
                ..run.clone()
            }),
            blue_green: failed.blue_green.as_ref().map(|bg| crate::model::BlueGreenRun {
                rollback: true,
                continue_ready: false,
                continue_termination: false,
                termination_wait_started: false,
                ..bg.clone()
            }),
        },
    )
}
