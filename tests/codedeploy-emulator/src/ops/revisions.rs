//! Application revisions: registered explicitly or by deploying them.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::{RegisteredRevision, RevisionLocation, now};
use crate::protocol::{ApiError, OpResult, input};
use crate::store::Shared;

fn generic_info(r: &RegisteredRevision) -> Value {
    json!({
        "description": r.description,
        "deploymentGroups": r.deployment_groups,
        "firstUsedTime": r.first_used_time,
        "lastUsedTime": r.last_used_time,
        "registerTime": r.register_time,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterInput {
    application_name: Option<String>,
    description: Option<String>,
    revision: Option<RevisionLocation>,
}

pub(super) fn register(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: RegisterInput = input(body)?;
    let app = super::applications::check_name(&req.application_name)?;
    let revision = super::deployments::check_revision(&req.revision)?;
    let mut store = shared.lock();
    super::applications::existing(&store, app)?;
    let entry = store.revisions.entry((app.to_string(), revision.identity())).or_insert_with(|| RegisteredRevision {
        location: revision.clone(),
        description: None,
        deployment_groups: Vec::new(),
        first_used_time: None,
        last_used_time: None,
        register_time: now(),
    });
    if req.description.is_some() {
        entry.description = req.description;
    }
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetInput {
    application_name: Option<String>,
    revision: Option<RevisionLocation>,
}

pub(super) fn get(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: GetInput = input(body)?;
    let app = super::applications::check_name(&req.application_name)?;
    let revision = super::deployments::check_revision(&req.revision)?;
    let store = shared.lock();
    super::applications::existing(&store, app)?;
    let found = store.revisions.get(&(app.to_string(), revision.identity())).ok_or_else(|| {
        ApiError::new(
            "RevisionDoesNotExistException",
            format!("No application revision found for {} in application {app}.", revision.describe()),
        )
    })?;
    Ok(json!({
        "applicationName": app,
        "revision": found.location,
        "revisionInfo": generic_info(found),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListInput {
    application_name: Option<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    s3_bucket: Option<String>,
    s3_key_prefix: Option<String>,
    deployed: Option<String>,
    next_token: Option<String>,
}

pub(super) fn list(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: ListInput = input(body)?;
    let app = super::applications::check_name(&req.application_name)?;
    let sort_by = req.sort_by.as_deref().unwrap_or("registerTime");
    if !matches!(sort_by, "registerTime" | "firstUsedTime" | "lastUsedTime") {
        return Err(ApiError::new("InvalidSortByException", format!("Invalid sortBy: {sort_by}")));
    }
    let descending = match req.sort_order.as_deref() {
        None | Some("ascending") => false,
        Some("descending") => true,
        Some(other) => {
            return Err(ApiError::new("InvalidSortOrderException", format!("Invalid sortOrder: {other}")));
        }
    };
    let deployed = req.deployed.as_deref().unwrap_or("ignore");
    if !matches!(deployed, "include" | "exclude" | "ignore") {
        return Err(ApiError::new("InvalidDeployedStateFilterException", format!("Invalid deployed filter: {deployed}")));
    }
    if req.s3_key_prefix.is_some() && req.s3_bucket.is_none() {
        return Err(ApiError::new(
            "BucketNameFilterRequiredException",
            "A bucket name filter is required when a key prefix is given.",
        ));
    }
    let mut found: Vec<RegisteredRevision> = {
        let store = shared.lock();
        super::applications::existing(&store, app)?;
        store.revisions.iter().filter(|((a, _), _)| a == app).map(|(_, r)| r.clone()).collect()
    };
    found.retain(|r| {
        let s3 = r.location.s3_location.as_ref();
        let bucket_ok = req.s3_bucket.as_ref().is_none_or(|b| s3.and_then(|s| s.bucket.as_ref()) == Some(b));
        let prefix_ok =
            req.s3_key_prefix.as_ref().is_none_or(|p| s3.and_then(|s| s.key.as_ref()).is_some_and(|k| k.starts_with(p.as_str())));
        let deployed_ok = match deployed {
            "include" => r.first_used_time.is_some(),
            "exclude" => r.first_used_time.is_none(),
            _ => true,
        };
        bucket_ok && prefix_ok && deployed_ok
    });
    let key = |r: &RegisteredRevision| match sort_by {
        "firstUsedTime" => r.first_used_time.unwrap_or(0.0),
        "lastUsedTime" => r.last_used_time.unwrap_or(0.0),
        _ => r.register_time,
    };
    found.sort_by(|a, b| key(a).total_cmp(&key(b)));
    if descending {
        found.reverse();
    }
    let locations: Vec<RevisionLocation> = found.into_iter().map(|r| r.location).collect();
    let (page, next) = super::paginate(locations, req.next_token.as_deref(), shared.config.page_size)?;
    Ok(json!({ "revisions": page, "nextToken": next }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchInput {
    application_name: Option<String>,
    revisions: Option<Vec<RevisionLocation>>,
}

pub(super) fn batch_get(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: BatchInput = input(body)?;
    let app = super::applications::check_name(&req.application_name)?;
    let revisions = req
        .revisions
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::new("RevisionRequiredException", "Revisions must be specified."))?;
    super::check_batch(&revisions, 25)?;
    let store = shared.lock();
    super::applications::existing(&store, app)?;
    let mut infos = Vec::new();
    let mut missing = Vec::new();
    for revision in &revisions {
        match store.revisions.get(&(app.to_string(), revision.identity())) {
            Some(r) => infos.push(json!({ "revisionLocation": r.location, "genericRevisionInfo": generic_info(r) })),
            None => missing.push(revision.describe()),
        }
    }
    let error_message = (!missing.is_empty()).then(|| format!("Revisions not found: {}", missing.join(", ")));
    Ok(json!({ "applicationName": app, "errorMessage": error_message, "revisions": infos }))
}
