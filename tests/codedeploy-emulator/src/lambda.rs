//! Lambda deployments: the appspec that names a function, its alias and two
//! versions, and the alias whose traffic moves in Lambda (moto in tests).
//!
//! moto stores functions, versions and aliases (with their `RoutingConfig`)
//! but runs no code here, so hook functions are never invoked: see
//! `engine::lambda` for how their status is decided.

use std::collections::HashMap;

use serde_json::Value;

use crate::model::LambdaRun;
use crate::store::Shared;

/// The lifecycle events a Lambda appspec may hook.
pub const HOOK_EVENTS: [&str; 2] = ["BeforeAllowTraffic", "AfterAllowTraffic"];

/// The Lambda client, built on first use.
pub(crate) async fn client(shared: &Shared) -> &aws_sdk_lambda::Client {
    shared
        .lambda
        .get_or_init(|| async {
            let base = crate::bundle::sdk_config(shared).await;
            let mut builder = aws_sdk_lambda::config::Builder::from(&base)
                .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2));
            if let Some(endpoint) = &shared.config.lambda_endpoint {
                builder = builder.endpoint_url(endpoint);
            }
            aws_sdk_lambda::Client::from_conf(builder.build())
        })
        .await
}

/// A scalar of the appspec as text (versions are often written as numbers).
pub(crate) fn text(v: &serde_yaml_ng::Value) -> Option<String> {
    match v {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads a Lambda appspec (YAML or JSON): one `AWS::Lambda::Function`
/// resource with `Name`, `Alias`, `CurrentVersion`, `TargetVersion`, and
/// optional `Hooks` for BeforeAllowTraffic and AfterAllowTraffic.
pub fn parse_appspec(content: &str) -> Result<LambdaRun, String> {
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(content).map_err(|e| format!("The AppSpec file is not valid YAML or JSON: {e}"))?;
    let get = |v: &serde_yaml_ng::Value, k: &str| v.get(k).cloned();
    let resources = get(&doc, "Resources").and_then(|r| r.as_sequence().cloned()).unwrap_or_default();
    let [resource] = resources.as_slice() else {
        return Err(format!("The AppSpec file must name exactly one resource under Resources, not {}.", resources.len()));
    };
    let body = resource.as_mapping().and_then(|m| m.values().next().cloned()).unwrap_or_default();
    if get(&body, "Type").and_then(|t| text(&t)).as_deref() != Some("AWS::Lambda::Function") {
        return Err("The AppSpec file's resource must be of Type AWS::Lambda::Function.".into());
    }
    let props = get(&body, "Properties").unwrap_or_default();
    let field = |k: &str| {
        get(&props, k)
            .and_then(|v| text(&v))
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("The AppSpec file's function has no {k}."))
    };
    let hooks = hook_functions(&doc, &HOOK_EVENTS, "a Lambda")?;
    Ok(LambdaRun {
        function: field("Name")?,
        alias: field("Alias")?,
        current: field("CurrentVersion")?,
        target: field("TargetVersion")?,
        hooks,
        ..Default::default()
    })
}

/// The appspec's `Hooks`: (lifecycle event, function) pairs in order, each
/// event one of `events` (those a `platform` deployment may hook).
pub(crate) fn hook_functions(
    doc: &serde_yaml_ng::Value,
    events: &[&str],
    platform: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut hooks = Vec::new();
    for hook in doc.get("Hooks").and_then(|h| h.as_sequence().cloned()).unwrap_or_default() {
        for (event, function) in hook.as_mapping().cloned().unwrap_or_default() {
            let (Some(event), Some(function)) = (text(&event), text(&function)) else {
                return Err("Each hook must map a lifecycle event to a function name.".into());
            };
            if !events.contains(&event.as_str()) {
                return Err(format!("{event} is not a hook of {platform} deployment; use {}.", events.join(", ")));
            }
            hooks.push((event, function));
        }
    }
    Ok(hooks)
}

/// The appspec text of an `AppSpecContent` revision.
pub fn content(app_spec_content: &Value) -> Option<&str> {
    app_spec_content.get("content").and_then(Value::as_str)
}

/// Points `run`'s alias at `version` alone, or sends `weight` of its traffic
/// to `run.target` beside it.
pub(crate) async fn route(shared: &Shared, run: &LambdaRun, version: &str, weight: Option<f64>) -> Result<(), String> {
    let routing = aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
        .set_additional_version_weights(Some(match weight {
            Some(w) => HashMap::from([(run.target.clone(), w)]),
            None => HashMap::new(),
        }))
        .build();
    client(shared)
        .await
        .update_alias()
        .function_name(&run.function)
        .name(&run.alias)
        .function_version(version)
        .routing_config(routing)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("Lambda refused to update alias {} of function {}: {}", run.alias, run.function, describe(&e)))
}

/// An AWS error code and message (of any SDK: Lambda, ECS), or what kept
/// the request from the service.
pub(crate) fn describe<E: aws_sdk_lambda::error::ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: &aws_sdk_lambda::error::SdkError<E, R>,
) -> String {
    use aws_sdk_lambda::error::ProvideErrorMetadata;
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => aws_sdk_lambda::error::DisplayErrorContext(e).to_string(),
    }
}

/// The status a hook function's tag `emulator:hook-status` names
/// (`Succeeded` or `Failed`), read when it did not report in time.
pub(crate) async fn tagged_status(shared: &Shared, function: &str) -> Result<Option<String>, String> {
    let out = client(shared)
        .await
        .get_function()
        .function_name(function)
        .send()
        .await
        .map_err(|e| format!("The hook function {function} could not be read: {}", describe(&e)))?;
    Ok(out.tags().and_then(|t| t.get(HOOK_STATUS_TAG)).cloned())
}

/// The tag that decides what a hook function reports when no one called
/// PutLifecycleEventHookExecutionStatus for it in time.
pub const HOOK_STATUS_TAG: &str = "emulator:hook-status";
