//! plan: what a release would change in a deployment group, against what it
//! runs now (`ferry plan`, `ferry release --plan`, and the confirmation of
//! an environment marked `confirm = true`).
//!
//! The running revision is the group's last successful deployment's
//! (GetDeploymentGroup, BatchGetDeployments): who deployed it, when, to how
//! many instances. Its files come from its zip's central directory, read by
//! ranged GETs ([`ranged`]); a tar or tgz has no directory to read without
//! the whole archive, so its files are "not compared" (docs/plan.md).
//! Nothing here writes anything anywhere.

pub mod diff;
pub mod lambda;
pub mod local;
pub mod ranged;
pub mod zipdir;

use std::path::Path;

use aws_sdk_codedeploy::types::{BundleType as CdBundleType, DeploymentInfo};

use crate::bundle::Bundle;
use crate::config::Environment;
use crate::deployments::{self, ReadFailure};
use crate::event::{FileChanges, HookChanges, PlannedBundle, ReleasePlan, RunningRevision};
use crate::exit::ExitCode;

/// CodeDeploy's configuration for a group that names none.
const DEFAULT_CONFIG: &str = "CodeDeployDefault.OneAtATime";

/// Why no plan could be made. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The new bundle could not be listed.
    #[error("cannot list the new bundle {path}: {detail}. Rebuild it, or check it with `ferry check`.")]
    Bundle {
        /// The bundle.
        path: String,
        /// Why.
        detail: String,
    },
    /// CodeDeploy refused a read or could not be reached.
    #[error(
        "could not {action} for the plan: {detail}. Check the environment's application, deployment group and \
         region, and that the role has what `ferry policy deploy` grants."
    )]
    Read {
        /// What ferry tried.
        action: String,
        /// What CodeDeploy (or the connection) said.
        detail: String,
    },
    /// An environment marked `confirm = true` was not confirmed.
    #[error("{0}")]
    NotConfirmed(String),
    /// Lambda refused to show the function's alias.
    #[error(transparent)]
    Lambda(#[from] crate::lambda::LambdaError),
}

impl PlanError {
    /// Exit code: 1 for a bundle that cannot be listed or a release not
    /// confirmed (nothing was deployed), 2 when CodeDeploy refused.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            PlanError::Bundle { .. } | PlanError::NotConfirmed(_) => ExitCode::Usage,
            PlanError::Read { .. } | PlanError::Lambda(_) => ExitCode::Aws,
        }
    }

    fn read(action: &str) -> impl FnOnce(ReadFailure) -> PlanError + '_ {
        move |f| PlanError::Read { action: action.into(), detail: f.detail }
    }
}

/// The refusal of a release to an environment marked `confirm = true` when
/// no terminal can ask and `--yes` was not given.
pub fn refuse_without_terminal(env: &Environment) -> PlanError {
    PlanError::NotConfirmed(format!(
        "[env.{0}] is marked confirm = true, and there is no terminal to confirm on (stdin or stderr is not a TTY). \
         Nothing was sent. Show the plan first (`ferry plan --env {0}`, e.g. in a Jenkins input step), then release \
         with --yes.",
        env.name
    ))
}

/// The refusal when the name typed is not the environment's.
pub fn refuse_typed(env: &Environment, typed: &str) -> PlanError {
    PlanError::NotConfirmed(format!(
        "release to {0} not confirmed: `{1}` was typed, not `{0}`. Nothing was uploaded or deployed.",
        env.name,
        crate::report::one_line(typed.trim())
    ))
}

/// The plan of releasing `bundle` (from `path`) to `env`.
pub async fn plan(
    cd: &aws_sdk_codedeploy::Client,
    s3: &aws_sdk_s3::Client,
    env: &Environment,
    path: &Path,
    bundle: &Bundle,
) -> Result<ReleasePlan, PlanError> {
    let (mut plan, last, new) = start(cd, env, path, bundle, DEFAULT_CONFIG).await?;
    let Some(last) = last else {
        plan.files = diff::files(&Default::default(), &new.files);
        plan.hooks = HookChanges {
            compared: true,
            events: diff::hook_changes(None, new.appspec.as_deref(), &|_| false),
            ..HookChanges::default()
        };
        return Ok(plan);
    };
    let mut running = running_revision(&last);
    match read_running(s3, env, &last, &mut running).await {
        Ok(old) => {
            plan.files = diff::files(&old.files, &new.files);
            let changed = |l: &str| plan.files.changed.iter().any(|c| c.path == l);
            plan.hooks = match &old.appspec {
                Some(text) => HookChanges {
                    compared: true,
                    events: diff::hook_changes(Some(text), new.appspec.as_deref(), &changed),
                    ..HookChanges::default()
                },
                None => not_compared_hooks("the running bundle's appspec.yml could not be read".into()),
            };
        }
        Err(why) => {
            plan.files = FileChanges { not_compared: Some(why.clone()), ..FileChanges::default() };
            plan.hooks = not_compared_hooks(why);
        }
    }
    plan.running = Some(running);
    Ok(plan)
}

/// The plan's head (the environment, the bundle, the group's deployment
/// configuration and where it comes from), the group's last successful
/// deployment, if any, and the new bundle's listing.
async fn start(
    cd: &aws_sdk_codedeploy::Client,
    env: &Environment,
    path: &Path,
    bundle: &Bundle,
    default_config: &str,
) -> Result<(ReleasePlan, Option<DeploymentInfo>, local::Listing), PlanError> {
    let (file, kind) = (bundle.path.clone(), bundle.kind);
    let new = tokio::task::spawn_blocking(move || local::list(&file, kind))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(|detail| PlanError::Bundle { path: path.display().to_string(), detail })?;
    let group = cd
        .get_deployment_group()
        .application_name(&env.application)
        .deployment_group_name(&env.deployment_group)
        .send()
        .await
        .map_err(|e| PlanError::read("read the deployment group")(e.into()))?;
    let info = group.deployment_group_info();
    let (config, from) = match (&env.deployment_config, info.and_then(|i| i.deployment_config_name())) {
        (Some(c), _) => (c.clone(), "environment"),
        (None, Some(c)) => (c.to_string(), "group"),
        (None, None) => (default_config.to_string(), "default"),
    };
    let last_id = info.and_then(|i| i.last_successful_deployment()).and_then(|l| l.deployment_id());
    let last = match last_id {
        Some(id) => deployments::describe(cd, &[id.to_string()])
            .await
            .map_err(PlanError::read("read the group's last successful deployment"))?
            .into_iter()
            .next(),
        None => None,
    };
    let plan = ReleasePlan {
        environment: env.name.clone(),
        application: env.application.clone(),
        deployment_group: env.deployment_group.clone(),
        bundle: PlannedBundle {
            path: path.display().to_string(),
            bundle_type: bundle.kind.extension().to_string(),
            size: bundle.size,
            sha256: bundle.sha256.clone(),
            files: new.files.len(),
        },
        deployment_config: config,
        deployment_config_from: from.into(),
        first_release: last.is_none(),
        confirm: env.confirm,
        ..ReleasePlan::default()
    };
    Ok((plan, last, new))
}

fn not_compared_hooks(why: String) -> HookChanges {
    HookChanges { compared: false, not_compared: Some(why), events: Vec::new() }
}

fn running_revision(d: &DeploymentInfo) -> RunningRevision {
    let overview = d.deployment_overview();
    let instances = overview.map(|o| o.pending() + o.in_progress() + o.succeeded() + o.failed() + o.skipped() + o.ready());
    RunningRevision {
        deployment_id: d.deployment_id().unwrap_or_default().to_string(),
        revision: deployments::s3_location(d).map(deployments::s3_url).unwrap_or_default(),
        creator: d.creator().map(|c| c.as_str().to_string()).unwrap_or_else(|| "unknown".into()),
        description: d.description().map(String::from),
        created_at: d.create_time().map(deployments::utc),
        completed_at: d.complete_time().map(deployments::utc),
        instances: instances.filter(|n| *n > 0),
        read: None,
    }
}

/// The running bundle's files and appspec, by ranged GETs; why not, when
/// they cannot be had that way.
async fn read_running(
    s3: &aws_sdk_s3::Client,
    env: &Environment,
    last: &DeploymentInfo,
    running: &mut RunningRevision,
) -> Result<local::Listing, String> {
    let Some(loc) = deployments::s3_location(last) else {
        return Err("the running revision is not an S3 bundle (GitHub or inline), whose files ferry cannot list".into());
    };
    let key = loc.key().unwrap_or_default();
    let zip = match loc.bundle_type() {
        Some(t) => *t == CdBundleType::Zip,
        None => key.ends_with(".zip"),
    };
    if !zip {
        return Err(format!(
            "the running revision {} is a tar/tgz archive, which has no index: listing it means reading all of it, \
             which a plan does not do",
            deployments::s3_url(loc)
        ));
    }
    let mut object = ranged::Object {
        s3,
        bucket: loc.bucket().unwrap_or(&env.bucket),
        key,
        version: loc.version(),
        etag: loc.e_tag(),
        owner: &env.role.account,
        read: Default::default(),
    };
    let result = async {
        let entries = object.entries().await?;
        let appspec = match local::appspec_entry(&entries) {
            Some(e) => object.read_entry(e).await.ok().map(|b| String::from_utf8_lossy(&b).into_owned()),
            None => None,
        };
        Ok::<_, String>(local::Listing { files: local::files_of(&entries), appspec })
    }
    .await;
    running.read = Some(object.read.clone());
    result.map_err(|e| format!("reading {}'s central directory failed: {e}", deployments::s3_url(loc)))
}
