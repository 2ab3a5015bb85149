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

/// An ECS application and its deployment group in the emulator, and in
/// moto: the task role and execution role (trusting ECS tasks), an ECR
/// repository with `images` pushed (tag → a manifest of its own), the
/// cluster, the task definition running the first image and the service
/// (deployment controller CODE_DEPLOY, behind a load balancer).
pub struct EcsApp<'a> {
    /// CodeDeploy application (`computePlatform` ECS).
    pub application: &'a str,
    /// Its deployment group.
    pub group: &'a str,
    /// The group's deployment config (`CodeDeployDefault.ECSLinear10PercentEvery1Minutes`, …).
    pub config: &'a str,
    /// Minutes the deployment stands Ready (STOP_DEPLOYMENT), if it waits.
    pub ready_wait: Option<i32>,
    /// Cluster.
    pub cluster: &'a str,
    /// Service.
    pub service: &'a str,
    /// The container the load balancer sends traffic to (port 80).
    pub container: &'a str,
    /// ECR repository.
    pub repository: &'a str,
    /// Tags pushed to the repository; the first is what the service runs.
    pub images: &'a [&'a str],
    /// Hook functions to create, each with the emulator's
    /// `emulator:hook-status` tag when given.
    pub hooks: &'a [(&'a str, Option<&'a str>)],
}

/// The task role and the execution role [`create_ecs`] makes.
pub const ECS_TASK_ROLES: [&str; 2] = ["web-task", "web-task-execution"];

/// The image URI of `tag` in the Production account's `repository`.
pub fn ecr_image(repository: &str, tag: &str) -> String {
    format!("{PRODUCTION_ACCOUNT}.dkr.ecr.{}.amazonaws.com/{repository}:{tag}", crate::REGION)
}

/// Creates [`EcsApp`] (see there); returns each pushed tag's digest.
pub async fn create_ecs(
    codedeploy: &aws_sdk_codedeploy::Client,
    ecs: &aws_sdk_ecs::Client,
    ecr: &aws_sdk_ecr::Client,
    iam: &aws_sdk_iam::Client,
    lambda: &aws_sdk_lambda::Client,
    app: &EcsApp<'_>,
) -> Result<Vec<String>> {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    for role in ECS_TASK_ROLES {
        iam.create_role()
            .role_name(role)
            .assume_role_policy_document(trust)
            .send()
            .await
            .map_err(err(format!("iam:CreateRole {role}")))?;
    }
    ecr.create_repository()
        .repository_name(app.repository)
        .send()
        .await
        .map_err(err(format!("ecr:CreateRepository {}", app.repository)))?;
    let mut digests = Vec::new();
    for tag in app.images {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                       "digest": format!("sha256:{:0>64}", tag.len())},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
                        "digest": format!("sha256:{}", hex_of(tag))}],
        });
        let out = ecr
            .put_image()
            .repository_name(app.repository)
            .image_manifest(manifest.to_string())
            .image_tag(*tag)
            .send()
            .await
            .map_err(err(format!("ecr:PutImage {}:{tag}", app.repository)))?;
        digests.push(out.image().and_then(|i| i.image_id()).and_then(|i| i.image_digest()).unwrap_or_default().to_string());
    }
    ecs.create_cluster().cluster_name(app.cluster).send().await.map_err(err(format!("ecs:CreateCluster {}", app.cluster)))?;
    let first =
        app.images.first().map(|t| format!("{}@{}", ecr_image(app.repository, t).rsplit_once(':').unwrap().0, digests[0]));
    let container = aws_sdk_ecs::types::ContainerDefinition::builder()
        .name(app.container)
        .set_image(first)
        .memory(128)
        .port_mappings(aws_sdk_ecs::types::PortMapping::builder().container_port(80).build())
        .build();
    let role_arn = |name: &str| format!("arn:aws:iam::{PRODUCTION_ACCOUNT}:role/{name}");
    let definition = ecs
        .register_task_definition()
        .family(app.service)
        .task_role_arn(role_arn(ECS_TASK_ROLES[0]))
        .execution_role_arn(role_arn(ECS_TASK_ROLES[1]))
        .container_definitions(container)
        .send()
        .await
        .map_err(err(format!("ecs:RegisterTaskDefinition {}", app.service)))?;
    let definition = definition.task_definition().and_then(|t| t.task_definition_arn()).unwrap_or_default().to_string();
    let lb = aws_sdk_ecs::types::LoadBalancer::builder()
        .target_group_arn(format!(
            "arn:aws:elasticloadbalancing:{}:{PRODUCTION_ACCOUNT}:targetgroup/{}-blue/1111111111111111",
            crate::REGION,
            app.service
        ))
        .container_name(app.container)
        .container_port(80)
        .build();
    let controller = aws_sdk_ecs::types::DeploymentController::builder()
        .r#type(aws_sdk_ecs::types::DeploymentControllerType::CodeDeploy)
        .build()
        .map_err(|e| e.to_string())?;
    ecs.create_service()
        .cluster(app.cluster)
        .service_name(app.service)
        .task_definition(&definition)
        .desired_count(2)
        .load_balancers(lb)
        .deployment_controller(controller)
        .send()
        .await
        .map_err(err(format!("ecs:CreateService {}", app.service)))?;
    let hook_role = format!("arn:aws:iam::{PRODUCTION_ACCOUNT}:role/{}", crate::accounts::DEPLOYER_ROLE);
    for (hook, tag) in app.hooks {
        lambda
            .create_function()
            .function_name(*hook)
            .runtime(aws_sdk_lambda::types::Runtime::Python312)
            .role(&hook_role)
            .handler("index.handler")
            .code(aws_sdk_lambda::types::FunctionCode::builder().zip_file(function_code(1).into()).build())
            .set_tags(tag.map(|t| [("emulator:hook-status".to_string(), t.to_string())].into()))
            .send()
            .await
            .map_err(err(format!("lambda:CreateFunction {hook}")))?;
    }
    codedeploy
        .create_application()
        .application_name(app.application)
        .compute_platform(aws_sdk_codedeploy::types::ComputePlatform::Ecs)
        .send()
        .await
        .map_err(err(format!("codedeploy:CreateApplication {}", app.application)))?;
    let route = |name: &str| {
        aws_sdk_codedeploy::types::TrafficRoute::builder()
            .listener_arns(format!(
                "arn:aws:elasticloadbalancing:{}:{PRODUCTION_ACCOUNT}:listener/app/{}/1/{name}",
                crate::REGION,
                app.cluster
            ))
            .build()
    };
    let pair = aws_sdk_codedeploy::types::TargetGroupPairInfo::builder()
        .target_groups(TargetGroupInfo::builder().name(format!("{}-blue", app.service)).build())
        .target_groups(TargetGroupInfo::builder().name(format!("{}-green", app.service)).build())
        .prod_traffic_route(route("prod"))
        .test_traffic_route(route("test"))
        .build();
    let ready = match app.ready_wait {
        Some(minutes) => DeploymentReadyOption::builder()
            .action_on_timeout(DeploymentReadyAction::StopDeployment)
            .wait_time_in_minutes(minutes),
        None => DeploymentReadyOption::builder().action_on_timeout(DeploymentReadyAction::ContinueDeployment),
    };
    let bg = BlueGreenDeploymentConfiguration::builder()
        .deployment_ready_option(ready.build())
        .terminate_blue_instances_on_deployment_success(
            BlueInstanceTerminationOption::builder()
                .action(InstanceAction::Terminate)
                .termination_wait_time_in_minutes(0)
                .build(),
        )
        .build();
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
        .blue_green_deployment_configuration(bg)
        .load_balancer_info(LoadBalancerInfo::builder().target_group_pair_info_list(pair).build())
        .ecs_services(
            aws_sdk_codedeploy::types::EcsService::builder().service_name(app.service).cluster_name(app.cluster).build(),
        )
        .auto_rollback_configuration(
            AutoRollbackConfiguration::builder()
                .enabled(true)
                .events(AutoRollbackEvent::DeploymentFailure)
                .events(AutoRollbackEvent::DeploymentStopOnRequest)
                .build(),
        )
        .send()
        .await
        .map_err(err(format!("codedeploy:CreateDeploymentGroup {}", app.group)))?;
    Ok(digests)
}

/// 64 hex digits standing for `s` (a fake layer digest, one per tag).
fn hex_of(s: &str) -> String {
    let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex:0>64}").chars().take(64).collect()
}
