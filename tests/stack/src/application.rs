//! The CodeDeploy application and deployment group, created in the emulator.

use aws_sdk_codedeploy::types::Tag;

use crate::Result;
use crate::accounts::PRODUCTION_ACCOUNT;
use crate::aws::err;

/// Tag the emulator reads to decide how many instances a group has.
pub const INSTANCES_TAG: &str = "emulator:instances";

/// Creates `application` and its `deployment_group` of `instances` instances.
pub async fn create(
    codedeploy: &aws_sdk_codedeploy::Client,
    application: &str,
    deployment_group: &str,
    instances: usize,
) -> Result<()> {
    codedeploy
        .create_application()
        .application_name(application)
        .send()
        .await
        .map_err(err(format!("codedeploy:CreateApplication {application}")))?;
    codedeploy
        .create_deployment_group()
        .application_name(application)
        .deployment_group_name(deployment_group)
        // Required by the API; the emulator assumes nothing with it.
        .service_role_arn(format!("arn:aws:iam::{PRODUCTION_ACCOUNT}:role/CodeDeployServiceRole"))
        .tags(Tag::builder().key(INSTANCES_TAG).value(instances.to_string()).build())
        .send()
        .await
        .map_err(err(format!("codedeploy:CreateDeploymentGroup {deployment_group}")))?;
    Ok(())
}
