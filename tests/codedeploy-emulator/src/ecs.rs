//! ECS deployments: the appspec that names the replacement task definition
//! and the container the load balancer sends traffic to, and the task sets
//! of the group's service in ECS (moto in tests).
//!
//! moto keeps services, task definitions and task sets (CreateTaskSet,
//! UpdateServicePrimaryTaskSet, DeleteTaskSet) but runs no tasks and has no
//! notion of a task set's traffic: the weights live in the emulator (see
//! `engine::ecs`).

use crate::lambda::{describe, text};
use crate::model::{EcsAppSpec, EcsGroup, Label, TaskSetRun};
use crate::store::Shared;

/// The lifecycle events an ECS appspec may hook (AWS's "AppSpec 'hooks'
/// section for an Amazon ECS deployment").
pub const HOOK_EVENTS: [&str; 5] =
    ["BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic", "AfterAllowTraffic"];

/// The events of an ECS deployment's one target, in order.
pub const EVENTS: [&str; 8] = [
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "AllowTestTraffic",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
];

/// The ECS client, built on first use.
async fn client(shared: &Shared) -> &aws_sdk_ecs::Client {
    shared
        .ecs
        .get_or_init(|| async {
            let base = crate::bundle::sdk_config(shared).await;
            let mut builder = aws_sdk_ecs::config::Builder::from(&base)
                .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2));
            if let Some(endpoint) = &shared.config.ecs_endpoint {
                builder = builder.endpoint_url(endpoint);
            }
            aws_sdk_ecs::Client::from_conf(builder.build())
        })
        .await
}

/// Reads an ECS appspec (YAML or JSON): one `AWS::ECS::Service` resource
/// with `TaskDefinition` and `LoadBalancerInfo` (`ContainerName`,
/// `ContainerPort`), optional `PlatformVersion` and `NetworkConfiguration`,
/// and `Hooks` for the five hookable ECS events.
pub fn parse_appspec(content: &str) -> Result<EcsAppSpec, String> {
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(content).map_err(|e| format!("The AppSpec file is not valid YAML or JSON: {e}"))?;
    let resources = doc.get("Resources").and_then(|r| r.as_sequence().cloned()).unwrap_or_default();
    let [resource] = resources.as_slice() else {
        return Err(format!("The AppSpec file must name exactly one resource under Resources, not {}.", resources.len()));
    };
    let body = resource.as_mapping().and_then(|m| m.values().next().cloned()).unwrap_or_default();
    if body.get("Type").and_then(text).as_deref() != Some("AWS::ECS::Service") {
        return Err("The AppSpec file's resource must be of Type AWS::ECS::Service.".into());
    }
    let props = body.get("Properties").cloned().unwrap_or_default();
    let task_definition = props
        .get("TaskDefinition")
        .and_then(text)
        .filter(|t| !t.is_empty())
        .ok_or("The AppSpec file's service has no TaskDefinition.")?;
    let lb = props.get("LoadBalancerInfo").ok_or("The AppSpec file's service has no LoadBalancerInfo.")?;
    let container_name =
        lb.get("ContainerName").and_then(text).filter(|n| !n.is_empty()).ok_or("LoadBalancerInfo has no ContainerName.")?;
    let container_port = lb
        .get("ContainerPort")
        .and_then(serde_yaml_ng::Value::as_i64)
        .and_then(|p| i32::try_from(p).ok())
        .filter(|p| (1..=65535).contains(p))
        .ok_or("LoadBalancerInfo's ContainerPort must be a port number (1 to 65535).")?;
    let awsvpc = match props.get("NetworkConfiguration") {
        None => None,
        Some(n) => {
            let vpc = n.get("AwsvpcConfiguration").ok_or("NetworkConfiguration has no AwsvpcConfiguration.")?;
            let subnets = vpc.get("Subnets").and_then(|s| s.as_sequence()).map_or(0, Vec::len);
            if subnets == 0 {
                return Err("AwsvpcConfiguration must name at least one subnet (Subnets).".into());
            }
            Some(serde_json::to_value(vpc).map_err(|e| format!("NetworkConfiguration cannot be read: {e}"))?)
        }
    };
    Ok(EcsAppSpec {
        task_definition,
        container_name,
        container_port,
        platform_version: props.get("PlatformVersion").and_then(text),
        awsvpc,
        hooks: crate::lambda::hook_functions(&doc, &HOOK_EVENTS, "an ECS")?,
    })
}

/// Why ECS work failed: the deployment's `errorInformation` code and message.
pub(crate) type EcsError = (&'static str, String);

fn update_error(what: &str, e: String) -> EcsError {
    ("ECS_UPDATE_ERROR", format!("ECS refused to {what}: {e}"))
}

/// The group's service: its desired count, current task definition, and
/// the task set ECS serves it from (`PRIMARY`), if any.
pub(crate) struct Service {
    pub desired_count: i64,
    pub task_definition: Option<String>,
    pub primary: Option<(String, String, String)>,
    /// The target group ARNs of its load balancers.
    pub target_group_arns: Vec<String>,
}

/// Reads the group's service; it must exist and be deployed by CodeDeploy.
pub(crate) async fn service(shared: &Shared, group: &EcsGroup) -> Result<Service, EcsError> {
    let invalid = |m: String| ("INVALID_ECS_SERVICE", m);
    let out =
        client(shared).await.describe_services().cluster(&group.cluster).services(&group.service).send().await.map_err(|e| {
            invalid(format!("The ECS service {} of cluster {} could not be read: {}", group.service, group.cluster, describe(&e)))
        })?;
    let Some(s) = out.services().iter().find(|s| s.status() != Some("INACTIVE")) else {
        return Err(invalid(format!("The ECS service {} was not found in cluster {}.", group.service, group.cluster)));
    };
    let controller = s.deployment_controller().map(|c| c.r#type().as_str().to_string());
    if controller.as_deref() != Some("CODE_DEPLOY") {
        return Err(invalid(format!(
            "The ECS service {} has deployment controller {}; CodeDeploy deploys only services whose deploymentController type is CODE_DEPLOY.",
            group.service,
            controller.unwrap_or_else(|| "ECS".into())
        )));
    }
    let primary = s.task_sets().iter().find(|t| t.status() == Some("PRIMARY")).map(|t| {
        let tg = t.load_balancers().first().and_then(|lb| lb.target_group_arn()).unwrap_or_default();
        (t.task_set_arn().unwrap_or_default().to_string(), t.id().unwrap_or_default().to_string(), tg.to_string())
    });
    Ok(Service {
        desired_count: i64::from(s.desired_count()),
        task_definition: s.task_definition().map(str::to_string),
        primary,
        target_group_arns: s.load_balancers().iter().filter_map(|lb| lb.target_group_arn()).map(str::to_string).collect(),
    })
}

/// The ARN of target group `name`: the service's own when one of its load
/// balancers names it, else one made up in the region and account (the
/// emulator has no Elastic Load Balancing to look it up in).
fn target_group_arn(shared: &Shared, service: &Service, name: &str) -> String {
    service.target_group_arns.iter().find(|arn| arn.contains(&format!(":targetgroup/{name}/"))).cloned().unwrap_or_else(|| {
        format!(
            "arn:aws:elasticloadbalancing:{}:{}:targetgroup/{name}/0000000000000000",
            shared.config.region, shared.config.account_id
        )
    })
}

/// Creates a task set of `task_definition` behind target group
/// `target_group`, labelled Green (the caller relabels an original);
/// `external_id` (the deployment's id) is left out when empty.
pub(crate) async fn create_task_set(
    shared: &Shared,
    group: &EcsGroup,
    service: &Service,
    spec: &EcsAppSpec,
    task_definition: &str,
    target_group: &str,
    external_id: &str,
) -> Result<TaskSetRun, EcsError> {
    let lb = aws_sdk_ecs::types::LoadBalancer::builder()
        .target_group_arn(target_group_arn(shared, service, target_group))
        .container_name(&spec.container_name)
        .container_port(spec.container_port)
        .build();
    let network = match &spec.awsvpc {
        None => None,
        Some(vpc) => {
            let list = |k: &str| {
                vpc.get(k).and_then(|v| v.as_array()).map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            };
            let public = vpc.get("AssignPublicIp").and_then(|v| v.as_str()).map(aws_sdk_ecs::types::AssignPublicIp::from);
            let awsvpc = aws_sdk_ecs::types::AwsVpcConfiguration::builder()
                .set_subnets(list("Subnets"))
                .set_security_groups(list("SecurityGroups"))
                .set_assign_public_ip(public)
                .build()
                .map_err(|e| ("INVALID_REVISION", format!("NetworkConfiguration is not valid: {e}")))?;
            Some(aws_sdk_ecs::types::NetworkConfiguration::builder().awsvpc_configuration(awsvpc).build())
        }
    };
    let out = client(shared)
        .await
        .create_task_set()
        .cluster(&group.cluster)
        .service(&group.service)
        .task_definition(task_definition)
        .set_external_id((!external_id.is_empty()).then(|| external_id.to_string()))
        .load_balancers(lb)
        .set_network_configuration(network)
        .set_platform_version(spec.platform_version.clone())
        .send()
        .await
        .map_err(|e| update_error(&format!("create a task set of {task_definition}"), describe(&e)))?;
    let set = out.task_set().ok_or_else(|| update_error("create a task set", "no task set in its answer".into()))?;
    Ok(TaskSetRun {
        arn: set.task_set_arn().unwrap_or_default().to_string(),
        id: set.id().unwrap_or_default().to_string(),
        desired_count: service.desired_count,
        status: set.status().unwrap_or("ACTIVE").to_string(),
        traffic_weight: 0.0,
        target_group: target_group.to_string(),
        label: Label::Green,
    })
}

/// Makes `task_set` the service's primary task set.
pub(crate) async fn make_primary(shared: &Shared, group: &EcsGroup, task_set: &str) -> Result<(), EcsError> {
    client(shared)
        .await
        .update_service_primary_task_set()
        .cluster(&group.cluster)
        .service(&group.service)
        .primary_task_set(task_set)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| update_error("make the replacement task set primary", describe(&e)))
}

/// Removes `task_set` from the service.
pub(crate) async fn delete_task_set(shared: &Shared, group: &EcsGroup, task_set: &str) -> Result<(), EcsError> {
    client(shared)
        .await
        .delete_task_set()
        .cluster(&group.cluster)
        .service(&group.service)
        .task_set(task_set)
        .force(true)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| update_error(&format!("delete task set {task_set}"), describe(&e)))
}
