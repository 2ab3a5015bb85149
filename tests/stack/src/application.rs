//! The CodeDeploy application and deployment group, created in the emulator.

use aws_sdk_codedeploy::operation::create_deployment_group::builders::CreateDeploymentGroupFluentBuilder;
use aws_sdk_codedeploy::types::{
    AutoRollbackConfiguration, AutoRollbackEvent, BlueGreenDeploymentConfiguration, BlueInstanceTerminationOption,
    DeploymentOption, DeploymentReadyAction, DeploymentReadyOption, DeploymentStyle, DeploymentType,
    GreenFleetProvisioningAction, GreenFleetProvisioningOption, InstanceAction, LoadBalancerInfo, Tag, TargetGroupInfo,
};

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
    /// The group is the on-premises instances carrying this tag (key,
    /// value) instead of simulated EC2 instances.
    pub on_premises_tag: Option<(&'a str, &'a str)>,
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
    group_request(codedeploy, g).send().await.map_err(err(format!("codedeploy:CreateDeploymentGroup {}", g.name)))?;
    Ok(())
}

/// How a blue/green group waits, in minutes (of the stack's time scale:
/// one minute lasts 50 step delays).
#[derive(Clone, Copy, Debug, Default)]
pub struct BlueGreen {
    /// `STOP_DEPLOYMENT` after that many minutes: the deployment stands
    /// Ready until ContinueDeployment. `None`: traffic is rerouted at once.
    pub ready_wait_minutes: Option<i32>,
    /// `TERMINATE` the original instances after that many minutes. `None`:
    /// `KEEP_ALIVE`.
    pub termination_wait_minutes: Option<i32>,
}

/// Creates a blue/green deployment group (EC2, behind target group
/// `web-tg`) in an application that exists. Its deployments name their
/// replacement instances by `targetInstances` tag filters.
pub async fn create_blue_green_group(codedeploy: &aws_sdk_codedeploy::Client, g: &Group<'_>, bg: BlueGreen) -> Result<()> {
    let ready = match bg.ready_wait_minutes {
        Some(m) => DeploymentReadyOption::builder()
            .action_on_timeout(DeploymentReadyAction::StopDeployment)
            .wait_time_in_minutes(m)
            .build(),
        None => DeploymentReadyOption::builder().action_on_timeout(DeploymentReadyAction::ContinueDeployment).build(),
    };
    let terminate = match bg.termination_wait_minutes {
        Some(m) => {
            BlueInstanceTerminationOption::builder().action(InstanceAction::Terminate).termination_wait_time_in_minutes(m).build()
        }
        None => BlueInstanceTerminationOption::builder().action(InstanceAction::KeepAlive).build(),
    };
    let config = BlueGreenDeploymentConfiguration::builder()
        .deployment_ready_option(ready)
        .terminate_blue_instances_on_deployment_success(terminate)
        .green_fleet_provisioning_option(
            GreenFleetProvisioningOption::builder().action(GreenFleetProvisioningAction::DiscoverExisting).build(),
        )
        .build();
    group_request(codedeploy, g)
        .deployment_style(
            DeploymentStyle::builder()
                .deployment_type(DeploymentType::BlueGreen)
                .deployment_option(DeploymentOption::WithTrafficControl)
                .build(),
        )
        .blue_green_deployment_configuration(config)
        .load_balancer_info(
            LoadBalancerInfo::builder().target_group_info_list(TargetGroupInfo::builder().name("web-tg").build()).build(),
        )
        .send()
        .await
        .map_err(err(format!("codedeploy:CreateDeploymentGroup {}", g.name)))?;
    Ok(())
}

/// CreateDeploymentGroup for `g`, ready to send or to add to.
fn group_request(codedeploy: &aws_sdk_codedeploy::Client, g: &Group<'_>) -> CreateDeploymentGroupFluentBuilder {
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
        .set_on_premises_instance_tag_filters(g.on_premises_tag.map(|(k, v)| {
            vec![
                aws_sdk_codedeploy::types::TagFilter::builder()
                    .key(k)
                    .value(v)
                    .r#type(aws_sdk_codedeploy::types::TagFilterType::KeyAndValue)
                    .build(),
            ]
        }))
}

/// Registers on-premises instances `(name, IAM user ARN)` and tags them
/// `key=value`, as an operator does for each host before its agent runs.
pub async fn register_on_premises(
    codedeploy: &aws_sdk_codedeploy::Client,
    instances: &[(String, String)],
    tag: (&str, &str),
) -> Result<()> {
    for (name, arn) in instances {
        codedeploy
            .register_on_premises_instance()
            .instance_name(name)
            .iam_user_arn(arn)
            .send()
            .await
            .map_err(err(format!("codedeploy:RegisterOnPremisesInstance {name}")))?;
    }
    codedeploy
        .add_tags_to_on_premises_instances()
        .set_instance_names(Some(instances.iter().map(|(n, _)| n.clone()).collect()))
        .tags(Tag::builder().key(tag.0).value(tag.1).build())
        .send()
        .await
        .map_err(err("codedeploy:AddTagsToOnPremisesInstances".to_string()))?;
    Ok(())
}

/// A Lambda application and its deployment group in the emulator, and in
/// moto's Lambda the function (version 1 published, the alias on it) and
/// its hook functions.
pub struct LambdaApp<'a> {
    /// CodeDeploy application (`computePlatform` Lambda).
    pub application: &'a str,
    /// Its deployment group.
    pub group: &'a str,
    /// The group's deployment config (`CodeDeployDefault.LambdaCanary10Percent5Minutes`, …).
    pub config: &'a str,
    /// Roll back automatically when a deployment fails or is stopped.
    pub auto_rollback: bool,
    /// The function.
    pub function: &'a str,
    /// Its alias.
    pub alias: &'a str,
    /// Hook functions to create (no versions, no alias), each with the
    /// emulator's `emulator:hook-status` tag when given.
    pub hooks: &'a [(&'a str, Option<&'a str>)],
}

/// The code of version `n` of a test function: moto stores it and runs none.
pub fn function_code(n: usize) -> Vec<u8> {
    format!("def handler(event, context):\n    return {n}\n").into_bytes()
}

/// Creates [`LambdaApp`]: the application and group through `codedeploy`,
/// the functions through `lambda`. Functions run as the deployer role (moto
/// only checks that the role exists).
pub async fn create_lambda(
    codedeploy: &aws_sdk_codedeploy::Client,
    lambda: &aws_sdk_lambda::Client,
    app: &LambdaApp<'_>,
) -> Result<()> {
    use aws_sdk_lambda::types::{FunctionCode, Runtime};
    let role = format!("arn:aws:iam::{PRODUCTION_ACCOUNT}:role/{}", crate::accounts::DEPLOYER_ROLE);
    let create = |name: &str, tag: Option<&str>| {
        lambda
            .create_function()
            .function_name(name)
            .runtime(Runtime::Python312)
            .role(&role)
            .handler("index.handler")
            .code(FunctionCode::builder().zip_file(function_code(1).into()).build())
            .set_tags(tag.map(|t| [("emulator:hook-status".to_string(), t.to_string())].into()))
            .send()
    };
    create(app.function, None).await.map_err(err(format!("lambda:CreateFunction {}", app.function)))?;
    lambda
        .publish_version()
        .function_name(app.function)
        .send()
        .await
        .map_err(err(format!("lambda:PublishVersion {}", app.function)))?;
    lambda
        .create_alias()
        .function_name(app.function)
        .name(app.alias)
        .function_version("1")
        .send()
        .await
        .map_err(err(format!("lambda:CreateAlias {}", app.alias)))?;
    for (hook, tag) in app.hooks {
        create(hook, *tag).await.map_err(err(format!("lambda:CreateFunction {hook}")))?;
    }
    codedeploy
        .create_application()
        .application_name(app.application)
        .compute_platform(aws_sdk_codedeploy::types::ComputePlatform::Lambda)
        .send()
        .await
        .map_err(err(format!("codedeploy:CreateApplication {}", app.application)))?;
    let rollback = app.auto_rollback.then(|| {
        AutoRollbackConfiguration::builder()
            .enabled(true)
            .events(AutoRollbackEvent::DeploymentFailure)
            .events(AutoRollbackEvent::DeploymentStopOnRequest)
            .build()
    });
    codedeploy
        .create_deployment_group()
        .application_name(app.application)
        .deployment_group_name(app.group)
        .service_role_arn(format!("arn:aws:iam::{PRODUCTION_ACCOUNT}:role/CodeDeployServiceRole"))
        .deployment_config_name(app.config)
        .deployment_style(
            DeploymentStyle::builder()
                .deployment_type(DeploymentType::BlueGreen)
                .deployment_option(DeploymentOption::WithTrafficControl)
                .build(),
        )
        .set_auto_rollback_configuration(rollback)
        .send()
        .await
        .map_err(err(format!("codedeploy:CreateDeploymentGroup {}", app.group)))?;
    Ok(())
}
