//! deploy: one CodeDeploy `CreateDeployment`, pinned to exactly the object
//! that was uploaded (bucket, key, eTag and, when versioned, version).

use aws_sdk_codedeploy::error::ProvideErrorMetadata;
use aws_sdk_codedeploy::types::{
    Alarm, AlarmConfiguration, BundleType as CdBundleType, Ec2TagFilter, Ec2TagFilterType, FileExistsBehavior, RevisionLocation,
    RevisionLocationType, S3Location, TargetInstances,
};

use crate::aws_error::{describe_sdk_error, is_unreachable};
use crate::bundle::BundleType;
use crate::config::Environment;
use crate::exit::ExitCode;
use crate::upload::Uploaded;

/// Why CodeDeploy did not create the deployment. Nothing was deployed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// CodeDeploy answered with an error.
    #[error("CodeDeploy refused to deploy {application}/{deployment_group}: {detail}. {fix}")]
    Refused {
        /// Application.
        application: String,
        /// Group.
        deployment_group: String,
        /// CodeDeploy's code and message.
        detail: String,
        /// What to do about it.
        fix: String,
    },
    /// ContinueDeployment was refused.
    #[error("CodeDeploy refused to continue {deployment_id}: {detail}. {fix}")]
    NotContinued {
        /// The deployment.
        deployment_id: String,
        /// CodeDeploy's code and message.
        detail: String,
        /// What to do about it.
        fix: String,
    },
    /// CodeDeploy could not be reached.
    #[error("could not reach CodeDeploy: {detail}. Check the network or proxy, and AWS_ENDPOINT_URL_CODEDEPLOY if you set it.")]
    Unreachable {
        /// The connection error.
        detail: String,
    },
}

impl DeployError {
    /// Exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::Aws
    }
}

/// The S3 revision CodeDeploy will fetch: the uploaded object, pinned.
pub fn revision(uploaded: &Uploaded, kind: BundleType) -> RevisionLocation {
    let bundle_type = match kind {
        BundleType::Zip => CdBundleType::Zip,
        BundleType::Tar => CdBundleType::Tar,
        BundleType::Tgz => CdBundleType::TarGZip,
    };
    let s3 = S3Location::builder()
        .bucket(&uploaded.bucket)
        .key(&uploaded.key)
        .bundle_type(bundle_type)
        .e_tag(&uploaded.etag)
        .set_version(uploaded.version_id.clone())
        .build();
    RevisionLocation::builder().revision_type(RevisionLocationType::S3).s3_location(s3).build()
}

/// The revision of an ECS deployment: the appspec ferry wrote, in S3 at
/// its content address (so `history` and `rollback` read it like a bundle).
pub fn appspec_object_revision(uploaded: &Uploaded) -> RevisionLocation {
    let s3 = S3Location::builder()
        .bucket(&uploaded.bucket)
        .key(&uploaded.key)
        .bundle_type(CdBundleType::Yaml)
        .e_tag(&uploaded.etag)
        .set_version(uploaded.version_id.clone())
        .build();
    RevisionLocation::builder().revision_type(RevisionLocationType::S3).s3_location(s3).build()
}

/// The revision of a Lambda deployment: the appspec ferry wrote, sent as
/// `AppSpecContent` with its SHA-256 (see docs/lambda.md for why not an S3
/// object: the code is the S3 object, the appspec only names versions).
pub fn appspec_revision(content: &str) -> RevisionLocation {
    use sha2::Digest;
    let sha256 = hex::encode(sha2::Sha256::digest(content.as_bytes()));
    let spec = aws_sdk_codedeploy::types::AppSpecContent::builder().content(content).sha256(sha256).build();
    RevisionLocation::builder().revision_type(RevisionLocationType::AppSpecContent).app_spec_content(spec).build()
}

/// The raw SDK error of CreateDeployment, for callers that handle some codes
/// themselves (a busy group, a lost answer) before turning it into a [`DeployError`].
pub type CreateFailure = aws_sdk_codedeploy::error::SdkError<
    aws_sdk_codedeploy::operation::create_deployment::CreateDeploymentError,
    aws_smithy_runtime_api::client::orchestrator::HttpResponse,
>;

/// One CreateDeployment call. `auto_rollback`, when given, overrides the
/// group's automatic rollback settings for this deployment only.
pub async fn send(
    cd: &aws_sdk_codedeploy::Client,
    env: &Environment,
    revision: RevisionLocation,
    description: &str,
    auto_rollback: Option<aws_sdk_codedeploy::types::AutoRollbackConfiguration>,
) -> Result<String, CreateFailure> {
    let out = cd
        .create_deployment()
        .application_name(&env.application)
        .deployment_group_name(&env.deployment_group)
        .set_deployment_config_name(env.deployment_config.clone())
        .revision(revision)
        .description(description)
        .set_auto_rollback_configuration(auto_rollback)
        .set_file_exists_behavior(env.deploy.file_exists_behavior.map(|b| FileExistsBehavior::from(b.as_str())))
        .ignore_application_stop_failures(env.deploy.ignore_application_stop_failures)
        .set_target_instances(env.deploy.target_instances.as_ref().map(target_instances))
        .update_outdated_instances_only(env.deploy.update_outdated_instances_only)
        .set_override_alarm_configuration(env.deploy.override_alarm_configuration.as_ref().map(alarm_configuration))
        // CreateDeployment has no idempotency token: an SDK retry after a
        // lost answer starts a second rollout. queue::create retries itself,
        // after checking whether the first attempt created the deployment.
        .customize()
        .config_override(
            aws_sdk_codedeploy::config::Builder::default()
                .retry_config(aws_sdk_codedeploy::config::retry::RetryConfig::disabled()),
        )
        .send()
        .await?;
    Ok(out.deployment_id().unwrap_or_default().to_string())
}

fn target_instances(t: &crate::config::TargetInstances) -> TargetInstances {
    let filters = t
        .tag_filters
        .iter()
        .map(|f| {
            Ec2TagFilter::builder()
                .set_key(f.key.clone())
                .set_value(f.value.clone())
                .r#type(Ec2TagFilterType::from(f.kind.as_str()))
                .build()
        })
        .collect::<Vec<_>>();
    TargetInstances::builder()
        .set_tag_filters((!filters.is_empty()).then_some(filters))
        .set_auto_scaling_groups((!t.auto_scaling_groups.is_empty()).then(|| t.auto_scaling_groups.clone()))
        .build()
}

fn alarm_configuration(a: &crate::config::AlarmOverride) -> AlarmConfiguration {
    AlarmConfiguration::builder()
        .enabled(a.enabled)
        .ignore_poll_alarm_failure(a.ignore_poll_alarm_failure)
        .set_alarms(Some(a.alarms.iter().map(|name| Alarm::builder().name(name).build()).collect()))
        .build()
}

/// Which wait of a blue/green deployment ContinueDeployment ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContinueWait {
    /// The deployment stands Ready: reroute traffic to the replacement now.
    #[default]
    Ready,
    /// Traffic moved and the original instances wait to be terminated:
    /// terminate them now.
    Termination,
}

/// ContinueDeployment for a blue/green deployment: `Ready` reroutes traffic
/// of one standing Ready to the replacement instances, `Termination` ends
/// the wait before the original instances are terminated.
pub async fn continue_deployment(
    cd: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
    wait: ContinueWait,
) -> Result<(), DeployError> {
    let wait_type = match wait {
        ContinueWait::Ready => aws_sdk_codedeploy::types::DeploymentWaitType::ReadyWait,
        ContinueWait::Termination => aws_sdk_codedeploy::types::DeploymentWaitType::TerminationWait,
    };
    let sent = cd.continue_deployment().deployment_id(deployment_id).deployment_wait_type(wait_type).send().await;
    match sent {
        Ok(_) => Ok(()),
        Err(e) if is_unreachable(&e) => Err(DeployError::Unreachable { detail: describe_sdk_error(&e) }),
        Err(e) => {
            let fix = match e.code().unwrap_or_default() {
                "DeploymentIsNotInReadyStateException" if wait == ContinueWait::Termination => format!(
                    "Only a blue/green deployment whose original instances wait to be terminated can skip that wait; \
                     `ferry status {deployment_id}` shows where this one is."
                ),
                "DeploymentIsNotInReadyStateException" => format!(
                    "Only a blue/green deployment waiting in Ready (exit 6) can be continued (one whose original instances \
                     wait to be terminated takes `--wait-type termination`); `ferry status {deployment_id}` shows where this \
                     one is."
                ),
                // CodeDeploy's answer for a kind with no wait at all: a
                // Lambda deployment's traffic moves by its config alone.
                "UnsupportedActionForDeploymentTypeException" => format!(
                    "Only an EC2 or ECS blue/green deployment has a Ready or termination wait to continue; an in-place or \
                     Lambda deployment needs nothing (`ferry watch {deployment_id}` follows it)."
                ),
                "DeploymentAlreadyCompletedException" => "It has already ended; nothing to continue.".into(),
                "AccessDeniedException" => "Give the role codedeploy:ContinueDeployment (see `ferry policy deploy`).".into(),
                _ => format!("Check deployment {deployment_id} in the CodeDeploy console."),
            };
            Err(DeployError::NotContinued { deployment_id: deployment_id.into(), detail: describe_sdk_error(&e), fix })
        }
    }
}

/// The one-paragraph error for a failed CreateDeployment.
pub fn to_error(e: &CreateFailure, env: &Environment) -> DeployError {
    if is_unreachable(e) {
        return DeployError::Unreachable { detail: describe_sdk_error(e) };
    }
    DeployError::Refused {
        application: env.application.clone(),
        deployment_group: env.deployment_group.clone(),
        fix: fix_for(e.code().unwrap_or_default(), env),
        detail: describe_sdk_error(e),
    }
}

fn fix_for(code: &str, env: &Environment) -> String {
    let place = format!("account {} region {}", env.role.account, env.region);
    match code {
        "ApplicationDoesNotExistException" => {
            format!("Create application `{}` in {place}, or fix `application` in ferry.toml.", env.application)
        }
        "DeploymentGroupDoesNotExistException" => {
            format!("Create deployment group `{}` in {place}, or fix `deployment_group` in ferry.toml.", env.deployment_group)
        }
        "DeploymentConfigDoesNotExistException" => {
            "Use a CodeDeployDefault.* configuration or create this one, or remove `deployment_config`.".into()
        }
        "DeploymentLimitExceededException" => {
            "Another deployment to this group is still running; wait for it (ferry watch) or stop it, then retry.".into()
        }
        "AccessDeniedException" => "Give the role codedeploy:CreateDeployment on the group (see `ferry policy deploy`).".into(),
        _ => "Check the application and deployment group in the CodeDeploy console.".into(),
    }
}
