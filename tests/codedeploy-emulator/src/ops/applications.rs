//! Applications: create, read, list, delete.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::{Application, now};
use crate::protocol::{ApiError, OpResult, input, required};
use crate::store::{Shared, Store};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NameInput {
    application_name: Option<String>,
    compute_platform: Option<String>,
}

/// Validates an application name the way the service does.
pub(crate) fn check_name(name: &Option<String>) -> Result<&str, ApiError> {
    let name = required(name, "ApplicationNameRequiredException", "The name of an application")?;
    if name.len() > 100 {
        return Err(ApiError::new("InvalidApplicationNameException", "The application name was specified in an invalid format."));
    }
    Ok(name)
}

/// Looks up an application or fails with `ApplicationDoesNotExistException`.
pub(crate) fn existing<'a>(store: &'a Store, name: &str) -> Result<&'a Application, ApiError> {
    store
        .applications
        .get(name)
        .ok_or_else(|| ApiError::new("ApplicationDoesNotExistException", format!("No application found for name: {name}")))
}

fn info(app: &Application) -> Value {
    json!({
        "applicationId": app.id,
        "applicationName": app.name,
        "createTime": app.create_time,
        "linkedToGitHub": false,
        "computePlatform": app.compute_platform,
    })
}

pub(super) fn create(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: NameInput = input(body)?;
    let name = check_name(&req.application_name)?;
    let platform = req.compute_platform.unwrap_or_else(|| "Server".to_string());
    if !matches!(platform.as_str(), "Server" | "Lambda" | "ECS") {
        return Err(ApiError::new(
            "InvalidComputePlatformException",
            format!("The emulator models the Server, Lambda and ECS compute platforms, not {platform}."),
        ));
    }
    let mut store = shared.lock();
    if store.applications.contains_key(name) {
        return Err(ApiError::new("ApplicationAlreadyExistsException", format!("{name} already exists in the account.")));
    }
    let app = Application {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_string(),
        create_time: now(),
        compute_platform: platform,
    };
    let id = app.id.clone();
    store.applications.insert(name.to_string(), app);
    Ok(json!({ "applicationId": id }))
}

pub(super) fn get(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: NameInput = input(body)?;
    let name = check_name(&req.application_name)?;
    let store = shared.lock();
    Ok(json!({ "application": info(existing(&store, name)?) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListInput {
    next_token: Option<String>,
}

pub(super) fn list(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: ListInput = input(body)?;
    let names: Vec<String> = shared.lock().applications.keys().cloned().collect();
    let (page, next) = super::paginate(names, req.next_token.as_deref(), shared.config.page_size)?;
    Ok(json!({ "applications": page, "nextToken": next }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchInput {
    #[serde(default)]
    application_names: Vec<String>,
}

pub(super) fn batch_get(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: BatchInput = input(body)?;
    super::check_batch(&req.application_names, 100)?;
    let store = shared.lock();
    let infos = req.application_names.iter().map(|name| existing(&store, name).map(info)).collect::<Result<Vec<_>, _>>()?;
    Ok(json!({ "applicationsInfo": infos }))
}

pub(super) fn delete(shared: &Arc<Shared>, body: Value) -> OpResult {
    let req: NameInput = input(body)?;
    let name = check_name(&req.application_name)?.to_string();
    let mut store = shared.lock();
    // Deleting a missing application succeeds silently on AWS too.
    store.applications.remove(&name);
    store.groups.retain(|(app, _), _| *app != name);
    store.revisions.retain(|(app, _), _| *app != name);
    Ok(json!({}))
}
