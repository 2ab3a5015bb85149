//! The plan of a Lambda release: the function's alias, the version it is
//! on and that version's code against the new bundle's, the hook functions
//! and the deployment configuration (GetAlias, GetFunctionConfiguration,
//! and the group's reads of every plan). Nothing is published or moved.

use std::path::Path;

use crate::appspec::lambda as spec;
use crate::aws_error::describe_sdk_error;
use crate::bundle::Bundle;
use crate::config::{Environment, LAMBDA_HOOK_EVENTS, LambdaFunction};
use crate::event::{FileChanges, HookChanges, LambdaHook, LambdaPlan, ReleasePlan, RunningRevision};

use super::PlanError;

/// CodeDeploy's configuration for a Lambda group that names none.
const DEFAULT_CONFIG: &str = "CodeDeployDefault.LambdaAllAtOnce";

/// The plan of releasing `bundle` (from `path`) as `function`'s code.
pub async fn plan(
    cd: &aws_sdk_codedeploy::Client,
    client: &aws_sdk_lambda::Client,
    env: &Environment,
    function: &LambdaFunction,
    path: &Path,
    bundle: &Bundle,
) -> Result<ReleasePlan, PlanError> {
    let (plan, last, _) = super::start(cd, env, path, bundle, DEFAULT_CONFIG).await?;
    let alias_version = crate::lambda::alias_version(client, function).await?;
    let config =
        client.get_function_configuration().function_name(&function.name).qualifier(&alias_version).send().await.map_err(
            |e| PlanError::Read {
                action: format!("read version {alias_version} of Lambda function {}", function.name),
                detail: describe_sdk_error(&e),
            },
        )?;
    let alias_code_sha256 = config.code_sha256().unwrap_or_default().to_string();
    let new_code_sha256 = crate::lambda::code_sha256(&bundle.sha256);
    let not_compared = "a Lambda release replaces the function's code whole; see `function` and `new code`".to_string();
    let running = last.as_ref().map(|d| {
        // A Lambda deployment's one target is the alias, not an instance.
        let mut r = RunningRevision { instances: None, ..super::running_revision(d) };
        // The revision is an appspec, not a bundle: name what it deployed.
        let versions = d.revision().and_then(|r| r.app_spec_content()).and_then(|a| a.content()).and_then(spec::versions);
        if let Some(v) = versions {
            r.revision = format!("{}:{} version {} (from {})", function.name, function.alias, v.target, v.current);
        }
        r
    });
    Ok(ReleasePlan {
        running,
        files: FileChanges { not_compared: Some(not_compared.clone()), ..FileChanges::default() },
        hooks: HookChanges { compared: false, not_compared: Some(not_compared), events: Vec::new() },
        lambda: Some(Box::new(LambdaPlan {
            function: function.name.clone(),
            alias: function.alias.clone(),
            code_unchanged: alias_code_sha256 == new_code_sha256,
            alias_version,
            alias_code_sha256,
            new_code_sha256,
            hooks: LAMBDA_HOOK_EVENTS
                .iter()
                .filter_map(|e| function.hooks.get(*e).map(|f| LambdaHook { event: e.to_string(), function: f.clone() }))
                .collect(),
        })),
        ..plan
    })
}
