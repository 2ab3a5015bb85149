//! The Lambda step of a release, between the upload and CreateDeployment:
//! the uploaded code published as the function's next version, and the
//! appspec that moves the alias onto it.

use crate::appspec::lambda as spec;
use crate::config::LambdaFunction;
use crate::event::{Event, Reporter};
use crate::lambda::{self, LambdaError};
use crate::upload::Uploaded;

/// Publishes the uploaded code (`sha256` is the bundle's, hex) and returns
/// the deployment's appspec.
pub async fn publish(
    client: &aws_sdk_lambda::Client,
    function: &LambdaFunction,
    uploaded: &Uploaded,
    sha256: &str,
    reporter: &dyn Reporter,
) -> Result<String, LambdaError> {
    let published = lambda::publish(client, function, uploaded, sha256).await?;
    let v = &published.versions;
    reporter.report(&Event::FunctionPublished {
        function: function.name.clone(),
        version: v.target.clone(),
        alias_version: v.current.clone(),
        alias: function.alias.clone(),
        code_sha256: published.code_sha256.clone(),
    });
    if v.current == v.target {
        reporter.report(&Event::Warning {
            message: format!(
                "{} version {} is the code the alias {} already runs (Lambda publishes no new version of unchanged \
                 code); the deployment moves no traffic",
                function.name, v.target, function.alias
            ),
        });
    }
    Ok(spec::write(function, v))
}

/// How deep `ferry rollback` looks into a Lambda group's history.
const HISTORY_DEPTH: usize = 100;

/// Why a Lambda rollback was not started. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// The alias could not be read.
    #[error(transparent)]
    Lambda(#[from] LambdaError),
    /// The group's history could not be read, or holds nothing to go back to.
    #[error(transparent)]
    Rollback(#[from] crate::rollback::RollbackError),
}

/// A Lambda environment's rollback: the alias moved from the version it is
/// on back to the one it was on before.
pub struct RollbackPlan {
    /// The appspec to deploy.
    pub appspec: String,
    /// Alias version now → the version restored.
    pub versions: spec::Versions,
    /// The deployment that moved the alias onto the version it is on now.
    pub from_deployment_id: Option<String>,
}

impl RollbackPlan {
    /// The event that says what is rolled back from and to.
    pub fn event(&self, env: &crate::config::Environment, function: &LambdaFunction) -> Event {
        let at = |v: &str| format!("{}:{} version {v}", function.name, function.alias);
        Event::RollbackPlanned {
            deployment_group: env.deployment_group.clone(),
            from_deployment_id: self.from_deployment_id.clone(),
            from_revision: Some(at(&self.versions.current)),
            to_deployment_id: None,
            to_revision: at(&self.versions.target),
            to_etag: None,
            to_version_id: None,
        }
    }
}

/// Chooses the version to go back to: `to` when given, else the version
/// the alias was on before the newest Succeeded deployment that moved it
/// onto the version it is on now (read from CodeDeploy's own record of
/// that deployment's appspec, never from a local file).
pub async fn rollback_plan(
    cd: &aws_sdk_codedeploy::Client,
    client: &aws_sdk_lambda::Client,
    env: &crate::config::Environment,
    function: &LambdaFunction,
    to: Option<&str>,
) -> Result<RollbackPlan, RollbackError> {
    use crate::rollback::RollbackError as R;
    let now = lambda::alias_version(client, function).await?;
    let filter = crate::deployments::Filter { limit: HISTORY_DEPTH, ..Default::default() };
    let recent = crate::deployments::list(cd, env, &filter)
        .await
        .map_err(|f| R::Refused { action: "list the group's deployments".into(), detail: f.detail })?;
    let succeeded =
        recent.iter().filter(|d| d.status() == Some(&aws_sdk_codedeploy::types::DeploymentStatus::Succeeded)).filter_map(|d| {
            let text = d.revision()?.app_spec_content()?.content()?;
            Some((d.deployment_id().map(String::from), spec::versions(text)?))
        });
    let onto_now = succeeded.clone().find(|(_, v)| v.target == now && v.current != now);
    let target = match (to, &onto_now) {
        (Some(to), _) => to.to_string(),
        (None, Some((_, v))) => v.current.clone(),
        (None, None) => {
            return Err(R::NothingToRollBackTo {
                deployment_group: env.deployment_group.clone(),
                reason: format!(
                    "none of its last {HISTORY_DEPTH} deployments that succeeded moved alias {} onto version {now},                      the one it is on",
                    function.alias
                ),
            }
            .into());
        }
    };
    let versions = spec::Versions { current: now, target };
    Ok(RollbackPlan { appspec: spec::write(function, &versions), versions, from_deployment_id: onto_now.and_then(|(id, _)| id) })
}
