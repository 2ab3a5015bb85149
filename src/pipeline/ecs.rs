//! The ECS step of a release, between the role and the upload: the image
//! pinned to its digest, the task definition copied with it (from the
//! service, or the repo's file), its roles checked, the copy registered,
//! and the appspec naming it written. Nothing is registered before the
//! image and the roles are known good.

use aws_sdk_ecs::types::TaskDefinition;

use crate::appspec::ecs as spec;
use crate::config::{EcsService, Environment};
use crate::ecs::{self, EcsError, ImageRef, roles};
use crate::event::{Event, Reporter};

/// What an ECS release deploys, known before any AWS call.
#[derive(Clone, Debug)]
pub struct EcsRelease {
    /// `--image`, parsed.
    pub image: ImageRef,
    /// The repo's task definition file (`task_definition`), read: path and
    /// definition.
    pub task_definition: Option<(String, TaskDefinition)>,
}

impl EcsRelease {
    /// Parses `--image` and reads the environment's task definition file.
    pub fn prepare(image: &str, service: &EcsService) -> Result<EcsRelease, EcsError> {
        let image = ImageRef::parse(image)?;
        let task_definition = match &service.task_definition {
            Some(path) => Some((path.display().to_string(), ecs::taskdef_file::read(path)?)),
            None => None,
        };
        Ok(EcsRelease { image, task_definition })
    }
}

/// The task definition registered for a release, and its appspec.
#[derive(Clone, Debug)]
pub struct Registered {
    /// The appspec (YAML) naming the task definition.
    pub appspec: String,
    /// The new task definition's ARN.
    pub task_definition_arn: String,
    /// The image it runs, by digest.
    pub image: String,
}

/// Registers the release's task definition and writes its appspec (see the
/// module's doc).
pub async fn register(
    sdk: &aws_config::SdkConfig,
    cd: &aws_sdk_codedeploy::Client,
    env: &Environment,
    service: &EcsService,
    release: &EcsRelease,
    reporter: &dyn Reporter,
) -> Result<Registered, EcsError> {
    let resolved = ecs::image::resolve(sdk, &release.image).await?;
    reporter.report(&Event::ImageResolved {
        image: release.image.display(),
        deploys: resolved.image.clone(),
        digest: resolved.digest.clone(),
        verified: resolved.verified,
    });
    let (cluster, name) = ecs::group_service(cd, env, service).await?;
    let client = aws_sdk_ecs::Client::new(sdk);
    let info = ecs::describe_service(&client, &cluster, &name, service).await?;
    let (copied_from, base) = match &release.task_definition {
        Some((path, definition)) => (path.clone(), definition.clone()),
        None => (info.task_definition.clone(), ecs::describe_task_definition(&client, &info.task_definition).await?),
    };
    let definition = ecs::with_image(&base, &info.container, &resolved.image)?;
    roles::check(&aws_sdk_iam::Client::new(sdk), &definition, &env.role.account).await?;
    let arn = ecs::register(&client, &definition).await?;
    reporter.report(&Event::TaskDefinitionRegistered {
        task_definition_arn: arn.clone(),
        copied_from,
        container: info.container.clone(),
        image: resolved.image.clone(),
    });
    let appspec = spec::write(
        &spec::Spec {
            task_definition: &arn,
            container: &info.container,
            container_port: info.container_port,
            platform_version: info.platform_version.as_deref(),
            network: info.network.as_ref(),
        },
        &service.hooks,
    );
    Ok(Registered { appspec, task_definition_arn: arn, image: resolved.image })
}
