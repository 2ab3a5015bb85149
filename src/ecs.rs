//! ecs: an ECS release's image made the service's next task definition.
//! The image is pinned to a digest first (a tag resolved through ECR
//! `DescribeImages`, which also proves the image exists), the service read
//! (`DescribeServices`) for its task definition, load balancer and network,
//! the task definition's roles checked ([`roles`]), and only then is the
//! copy with the new image registered (`RegisterTaskDefinition`).

pub mod image;
pub mod roles;
pub mod taskdef_file;

use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::types::{NetworkConfiguration, TaskDefinition};

pub use image::ImageRef;

use crate::aws_error::{describe_sdk_error, is_unreachable};
use crate::exit::ExitCode;

/// Why no task definition was registered (or not one that may deploy).
/// Nothing was deployed.
#[derive(Debug, thiserror::Error)]
pub enum EcsError {
    /// `--image` is not an image reference ferry can pin.
    #[error("--image {image}: {reason}")]
    BadImage {
        /// What was given.
        image: String,
        /// Why it cannot be used, and what to give instead.
        reason: String,
    },
    /// ECR has no such image (or repository).
    #[error(
        "image {image} is not in ECR ({detail}). Push it first (`docker push {image}`), or fix the tag; nothing was \
         registered or deployed."
    )]
    NoImage {
        /// The image asked for.
        image: String,
        /// ECR's code and message.
        detail: String,
    },
    /// An AWS service answered an error.
    #[error("{service} refused to {action}: {detail}. {fix}")]
    Refused {
        /// ECR, ECS or IAM.
        service: &'static str,
        /// What was asked, as a phrase.
        action: String,
        /// The code and message.
        detail: String,
        /// What to do about it.
        fix: String,
    },
    /// An image for a platform that deploys bundles, or the reverse.
    #[error("{0}")]
    Platform(String),
    /// The service, cluster or container cannot be worked out, or is not
    /// one CodeDeploy deploys.
    #[error("{0}")]
    Service(String),
    /// A role of the task definition cannot be passed to ECS tasks.
    #[error(
        "the task definition's {which} {arn} {problem}. Fix the role (or the task definition) before releasing; nothing was \
         registered or deployed."
    )]
    Role {
        /// `task role` / `execution role`.
        which: &'static str,
        /// The role.
        arn: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The repo's task definition file is unreadable or not one ferry registers.
    #[error("task_definition {path}: {reason}")]
    TaskDefFile {
        /// The file.
        path: String,
        /// What is wrong, and how to fix it.
        reason: String,
    },
    /// The service could not be reached.
    #[error("could not reach {service}: {detail}. Check the network or proxy, and {var} if you set it.")]
    Unreachable {
        /// ECR, ECS or IAM.
        service: &'static str,
        /// The endpoint variable.
        var: &'static str,
        /// The connection error.
        detail: String,
    },
}

impl EcsError {
    /// Exit code for this error: bad input is a usage error, the rest AWS's.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            EcsError::BadImage { .. } | EcsError::TaskDefFile { .. } | EcsError::Platform(_) => ExitCode::Usage,
            _ => ExitCode::Aws,
        }
    }
}

/// An SDK error of `service` as an [`EcsError`]; `fix` chosen from its code.
pub(crate) fn refused<E, R>(
    service: &'static str,
    action: impl Into<String>,
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    fix: impl FnOnce(&str) -> String,
) -> EcsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    if is_unreachable(e) {
        let var = match service {
            "ECR" => "AWS_ENDPOINT_URL_ECR",
            "IAM" => "AWS_ENDPOINT_URL_IAM",
            "CodeDeploy" => "AWS_ENDPOINT_URL_CODEDEPLOY",
            _ => "AWS_ENDPOINT_URL_ECS",
        };
        return EcsError::Unreachable { service, var, detail: describe_sdk_error(e) };
    }
    let code = e.code().unwrap_or_default().to_string();
    EcsError::Refused { service, action: action.into(), detail: describe_sdk_error(e), fix: fix(&code) }
}

/// What the deployment group and service say about where the release goes.
#[derive(Clone, Debug)]
pub struct ServiceInfo {
    /// The task definition the service runs now (its ARN).
    pub task_definition: String,
    /// The container the load balancer sends traffic to.
    pub container: String,
    /// Its port.
    pub container_port: u16,
    /// Fargate platform version, when the service names one.
    pub platform_version: Option<String>,
    /// The service's awsvpc network configuration, copied into the appspec.
    pub network: Option<NetworkConfiguration>,
}

/// The cluster and service of the group (`ecsServices`), unless ferry.toml
/// names them.
pub async fn group_service(
    cd: &aws_sdk_codedeploy::Client,
    env: &crate::config::Environment,
    wanted: &crate::config::EcsService,
) -> Result<(String, String), EcsError> {
    if let (Some(c), Some(s)) = (&wanted.cluster, &wanted.service) {
        return Ok((c.clone(), s.clone()));
    }
    let out = cd
        .get_deployment_group()
        .application_name(&env.application)
        .deployment_group_name(&env.deployment_group)
        .send()
        .await
        .map_err(|e| {
            refused("CodeDeploy", format!("describe deployment group {}", env.deployment_group), &e, |_| {
                "Set ecs_cluster and ecs_service in ferry.toml, or give the role codedeploy:GetDeploymentGroup".into()
            })
        })?;
    let group = out.deployment_group_info();
    let services = group.map(|g| g.ecs_services()).unwrap_or_default();
    let [one] = services else {
        return Err(EcsError::Service(format!(
            "deployment group {} names {} ECS services; ferry deploys to a group with exactly one. Set ecs_cluster and \
             ecs_service in ferry.toml, or fix the group's ecsServices",
            env.deployment_group,
            services.len()
        )));
    };
    let cluster = wanted.cluster.clone().or_else(|| one.cluster_name().map(String::from)).unwrap_or_default();
    let service = wanted.service.clone().or_else(|| one.service_name().map(String::from)).unwrap_or_default();
    Ok((cluster, service))
}

/// Reads the service: its task definition, and the container and port its
/// load balancer names (ferry.toml's `container_name`/`container_port` win).
/// Refuses a service that CodeDeploy does not deploy.
pub async fn describe_service(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    wanted: &crate::config::EcsService,
) -> Result<ServiceInfo, EcsError> {
    let out = ecs.describe_services().cluster(cluster).services(service).send().await.map_err(|e| {
        refused("ECS", format!("describe service {service} in cluster {cluster}"), &e, |_| {
            "Give the role ecs:DescribeServices (see `ferry policy deploy`), and check the cluster's name".into()
        })
    })?;
    let Some(svc) = out.services().iter().find(|s| s.status() != Some("INACTIVE")) else {
        return Err(EcsError::Service(format!(
            "cluster {cluster} has no active service {service}. Create it (with deployment controller CODE_DEPLOY), or fix \
             ecs_cluster/ecs_service in ferry.toml or the deployment group's ecsServices"
        )));
    };
    let controller = svc.deployment_controller().map(|c| c.r#type().as_str().to_string()).unwrap_or_else(|| "ECS".into());
    if controller != "CODE_DEPLOY" {
        return Err(EcsError::Service(format!(
            "service {service} in cluster {cluster} is deployed by its {controller} deployment controller, so CodeDeploy \
             cannot deploy it: create the service with deploymentController CODE_DEPLOY (it cannot be changed afterwards)"
        )));
    }
    let lb = svc.load_balancers().first();
    let container = wanted.container.clone().or_else(|| lb.and_then(|l| l.container_name()).map(String::from));
    let port = wanted.container_port.or_else(|| lb.and_then(|l| l.container_port()).and_then(|p| u16::try_from(p).ok()));
    let (Some(container), Some(container_port)) = (container, port) else {
        return Err(EcsError::Service(format!(
            "service {service} names no load balancer container and port, and ferry.toml sets no container_name and \
             container_port: set them to the container and port the group's target groups send traffic to"
        )));
    };
    Ok(ServiceInfo {
        task_definition: svc.task_definition().unwrap_or_default().to_string(),
        container,
        container_port,
        platform_version: svc.platform_version().filter(|v| !v.is_empty()).map(String::from),
        network: svc.network_configuration().cloned(),
    })
}

/// The task definition `arn` (family:revision or ARN).
pub async fn describe_task_definition(ecs: &aws_sdk_ecs::Client, arn: &str) -> Result<TaskDefinition, EcsError> {
    let out = ecs.describe_task_definition().task_definition(arn).send().await.map_err(|e| {
        refused("ECS", format!("describe task definition {arn}"), &e, |_| {
            "Give the role ecs:DescribeTaskDefinition (see `ferry policy deploy`)".into()
        })
    })?;
    out.task_definition.ok_or_else(|| EcsError::Service(format!("ECS answered DescribeTaskDefinition {arn} with no definition")))
}

/// `definition` with `container`'s image replaced by `image`; refused when
/// it has no such container.
pub fn with_image(definition: &TaskDefinition, container: &str, image: &str) -> Result<TaskDefinition, EcsError> {
    let family = definition.family().unwrap_or_default();
    if !definition.container_definitions().iter().any(|c| c.name() == Some(container)) {
        let names: Vec<&str> = definition.container_definitions().iter().filter_map(|c| c.name()).collect();
        return Err(EcsError::Service(format!(
            "task definition {family} has no container {container} (it has {}): set container_name in ferry.toml to the \
             container the load balancer sends traffic to",
            names.join(", ")
        )));
    }
    let containers = definition
        .container_definitions()
        .iter()
        .map(|c| {
            let mut c = c.clone();
            if c.name() == Some(container) {
                c.image = Some(image.to_string());
            }
            c
        })
        .collect();
    let mut copy = definition.clone();
    copy.container_definitions = Some(containers);
    Ok(copy)
}

/// Registers `definition` as its family's next revision: every field a
/// task definition is registered with is copied. Returns the new ARN.
pub async fn register(ecs: &aws_sdk_ecs::Client, d: &TaskDefinition) -> Result<String, EcsError> {
    let family = d.family().unwrap_or_default().to_string();
    let out = ecs
        .register_task_definition()
        .family(&family)
        .set_task_role_arn(d.task_role_arn().map(String::from))
        .set_execution_role_arn(d.execution_role_arn().map(String::from))
        .set_network_mode(d.network_mode().cloned())
        .set_container_definitions(Some(d.container_definitions().to_vec()))
        .set_volumes(vec_or_none(d.volumes()))
        .set_placement_constraints(vec_or_none(d.placement_constraints()))
        .set_requires_compatibilities(vec_or_none(d.requires_compatibilities()))
        .set_cpu(d.cpu().map(String::from))
        .set_memory(d.memory().map(String::from))
        .set_pid_mode(d.pid_mode().cloned())
        .set_ipc_mode(d.ipc_mode().cloned())
        .set_proxy_configuration(d.proxy_configuration().cloned())
        .set_ephemeral_storage(d.ephemeral_storage().cloned())
        .set_runtime_platform(d.runtime_platform().cloned())
        .set_enable_fault_injection(d.enable_fault_injection())
        .send()
        .await
        .map_err(|e| {
            refused("ECS", format!("register a revision of task definition {family}"), &e, |code| match code {
                "AccessDeniedException" | "AccessDenied" => "Give the role ecs:RegisterTaskDefinition, and iam:PassRole \
                                                              on the task's roles (see `ferry policy deploy`)"
                    .into(),
                _ => "Check the task definition with `aws ecs register-task-definition`".into(),
            })
        })?;
    Ok(out.task_definition().and_then(|t| t.task_definition_arn()).unwrap_or_default().to_string())
}

/// A list the request leaves out when empty.
fn vec_or_none<T: Clone>(v: &[T]) -> Option<Vec<T>> {
    (!v.is_empty()).then(|| v.to_vec())
}
