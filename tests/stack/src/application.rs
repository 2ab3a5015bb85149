//! The CodeDeploy application and deployment group, created in the emulator.

use aws_sdk_codedeploy::types::{AutoRollbackConfiguration, AutoRollbackEvent, Tag};

use crate::Result;
use crate::accounts::PRODUCTION_ACCOUNT;
use crate::aws::err;

/// Tag the emulator reads to decide how many instances a group has.
pub const INSTANCES_TAG: &str = "emulator:instances";

/// What the deployment group looks like.
pub struct Group<'a> {
    /// CodeDeploy application.
    pub application: &'a str,
    /// Deployment group in it.
    pub name: &'a str,
    /// Instance count, passed as [`INSTANCES_TAG`].
    pub instances: usize,
    /// More tags (the emulator's fault-injection tags, for instance).
    pub extra_tags: &'a [(String, String)],
    /// Roll back automatically when a deployment fails.
    pub auto_rollback: bool,
}

/// Creates the application and its deployment group.
pub async fn create(codedeploy: &aws_sdk_codedeploy::Client, g: &Group<'_>) -> Result<()> {
    codedeploy
        .create_application()
        .application_name(g.application)
        .send()
        .await
        .map_err(err(format!("codedeploy:CreateApplication {}", g.application)))?;
    create_group(codedeploy, g).await
}

/// Creates one more deployment group in an application that exists.
pub async fn create_group(codedeploy: &aws_sdk_codedeploy::Client, g: &Group<'_>) -> Result<()> {
    let tags = std::iter::once((INSTANCES_TAG.to_owned(), g.instances.to_string()))
        .chain(g.extra_tags.iter().cloned())
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    let rollback = g
        .auto_rollback
        .then(|| AutoRollbackConfiguration::builder().enabled(true).events(AutoRollbackEvent::DeploymentFailure).build());
    codedeploy
        .create_deployment_group()
        .application_name(g.application)
        .deployment_group_name(g.name)
        // Required by the API; the emulator assumes nothing with it.
        .service_role_arn(format!("arn:aws:iam::{PRODUCTION_ACCOUNT}:role/CodeDeployServiceRole"))
        .set_tags(Some(tags))
        .set_auto_rollback_configuration(rollback)
        .send()
        .await
        .map_err(err(format!("codedeploy:CreateDeploymentGroup {}", g.name)))?;
    Ok(())
}
