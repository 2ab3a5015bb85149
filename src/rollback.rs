//! rollback: choose the revision to restore from CodeDeploy's own history
//! (never a local file), pin it by eTag/version, check it is still in S3; and
//! stop a running deployment, with or without CodeDeploy's rollback.

use aws_sdk_codedeploy::types::{
    BundleType as CdBundleType, DeploymentInfo, DeploymentStatus, RevisionLocation, RevisionLocationType, S3Location,
};

use crate::aws_error::{describe_sdk_error, is_unreachable};
use crate::config::Environment;
use crate::deployments::{self, Filter, ReadFailure, s3_location, s3_url, same_object, sha256_of_key};
use crate::event::{Event, Reporter};
use crate::exit::ExitCode;

/// How far back `ferry rollback` looks in the group's history.
const HISTORY_DEPTH: usize = 100;

/// Why a rollback or stop was not carried out. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// There is no earlier good revision.
    #[error(
        "nothing to roll back to in {deployment_group}: {reason}. Use --to <deployment-id|sha256|s3 key> to name a revision."
    )]
    NothingToRollBackTo {
        /// Group.
        deployment_group: String,
        /// Why.
        reason: String,
    },
    /// `--to` matched nothing.
    #[error(
        "--to {to} matches no deployment of {deployment_group} in its last {searched} deployments, and no bundle in the \
         bucket. Give a deployment id (d-XXXXXXXXX), a bundle's sha256 (or its first 12+ characters), or an S3 key; \
         `ferry history` lists them."
    )]
    TargetNotFound {
        /// What was asked for.
        to: String,
        /// Group.
        deployment_group: String,
        /// Deployments looked at.
        searched: usize,
    },
    /// A deployment is running in the group.
    #[error(
        "deployment {deployment_id} is still running in {deployment_group}; a rollback cannot start beside it. \
         Stop it first (`ferry stop {deployment_id} --rollback`), or wait for it (`ferry watch {deployment_id}`)."
    )]
    Busy {
        /// Group.
        deployment_group: String,
        /// The running deployment.
        deployment_id: String,
    },
    /// The revision to restore is no longer in S3 as it was deployed.
    #[error(
        "the revision to restore, {url}, is no longer in S3 as it was deployed: {detail}. Its bucket lifecycle rules \
         may have expired it; pick another with --to, or re-release that build."
    )]
    RevisionGone {
        /// `s3://bucket/key`.
        url: String,
        /// What S3 said.
        detail: String,
    },
    /// The deployment had already ended.
    #[error(
        "deployment {deployment_id} has already ended ({status}); there is nothing to stop. `ferry rollback` restores the previous revision."
    )]
    AlreadyEnded {
        /// The deployment.
        deployment_id: String,
        /// Its final status.
        status: String,
    },
    /// CodeDeploy or S3 refused a call.
    #[error(
        "CodeDeploy refused to {action}: {detail}. Check the deployment id, the environment's region, and the role's codedeploy permissions."
    )]
    Refused {
        /// What ferry tried.
        action: String,
        /// The service's code and message.
        detail: String,
    },
    /// CodeDeploy could not be reached.
    #[error(
        "could not reach CodeDeploy to {action}: {detail}. Check the network or proxy, and AWS_ENDPOINT_URL_CODEDEPLOY if you set it."
    )]
    Unreachable {
        /// What ferry tried.
        action: String,
        /// The connection error.
        detail: String,
    },
}

impl RollbackError {
    /// Exit code: 1 when the group's state or the arguments make it
    /// impossible, 2 when AWS refused or was unreachable.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            RollbackError::NothingToRollBackTo { .. }
            | RollbackError::TargetNotFound { .. }
            | RollbackError::Busy { .. }
            | RollbackError::AlreadyEnded { .. } => ExitCode::Usage,
            RollbackError::RevisionGone { .. } | RollbackError::Refused { .. } | RollbackError::Unreachable { .. } => {
                ExitCode::Aws
            }
        }
    }

    fn read(action: &str, f: ReadFailure) -> RollbackError {
        if f.unreachable {
            RollbackError::Unreachable { action: action.into(), detail: f.detail }
        } else {
            RollbackError::Refused { action: action.into(), detail: f.detail }
        }
    }
}

/// `--rollback-on`: which endings make CodeDeploy roll a release back,
/// overriding the deployment group's setting for this deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RollbackOn {
    /// Roll back when the deployment fails (DEPLOYMENT_FAILURE).
    Failure,
    /// Roll back when it fails or is stopped (adds DEPLOYMENT_STOP_ON_REQUEST).
    Stop,
    /// Never roll back automatically (autoRollbackConfiguration enabled=false).
    Never,
}

impl RollbackOn {
    /// The CreateDeployment override.
    pub fn configuration(self) -> aws_sdk_codedeploy::types::AutoRollbackConfiguration {
        use aws_sdk_codedeploy::types::{AutoRollbackConfiguration, AutoRollbackEvent};
        let events = match self {
            RollbackOn::Failure => vec![AutoRollbackEvent::DeploymentFailure],
            RollbackOn::Stop => vec![AutoRollbackEvent::DeploymentFailure, AutoRollbackEvent::DeploymentStopOnRequest],
            RollbackOn::Never => vec![],
        };
        AutoRollbackConfiguration::builder()
            .enabled(self != RollbackOn::Never)
            .set_events((!events.is_empty()).then_some(events))
            .build()
    }
}

/// What a rollback will deploy, in place of what.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The group's newest ended deployment (what it runs, or tried to).
    pub from: Option<DeploymentInfo>,
    /// The deployment whose revision is restored, when it came from one.
    pub to_deployment_id: Option<String>,
    /// The revision, pinned by eTag (and version, when versioned).
    pub revision: S3Location,
    /// What is odd about a target named with `--to`: it is what the group
    /// already runs, or it never succeeded in this group.
    pub warnings: Vec<String>,
    /// ECS: the task definition the restored appspec names, read from it.
    pub task_definition: Option<String>,
}

impl Plan {
    /// The event that says what is rolled back from and to.
    pub fn event(&self, env: &Environment) -> Event {
        Event::RollbackPlanned {
            deployment_group: env.deployment_group.clone(),
            from_deployment_id: self.from.as_ref().and_then(|d| d.deployment_id()).map(String::from),
            from_revision: self.from.as_ref().and_then(s3_location).map(s3_url),
            to_deployment_id: self.to_deployment_id.clone(),
            to_revision: match &self.task_definition {
                Some(td) => format!("{} (task definition {td})", s3_url(&self.revision)),
                None => s3_url(&self.revision),
            },
            to_etag: self.revision.e_tag().map(String::from),
            to_version_id: self.revision.version().map(String::from),
        }
    }

    /// The revision to pass to CreateDeployment.
    pub fn revision_location(&self) -> RevisionLocation {
        RevisionLocation::builder().revision_type(RevisionLocationType::S3).s3_location(self.revision.clone()).build()
    }
}

/// Chooses what to roll back to. Without `to`: the newest Succeeded
/// deployment, older than the group's newest ended one, whose revision
/// differs from it. So a group whose last release failed returns to its last
/// good revision, and a healthy group to the one before.
pub async fn plan(
    cd: &aws_sdk_codedeploy::Client,
    s3: &aws_sdk_s3::Client,
    env: &Environment,
    to: Option<&str>,
) -> Result<Plan, RollbackError> {
    let recent = deployments::list(cd, env, &Filter { limit: HISTORY_DEPTH, ..Default::default() })
        .await
        .map_err(|f| RollbackError::read("list the group's deployments", f))?;
    if let Some(running) = recent.iter().find(|d| d.status().is_some_and(is_active)) {
        return Err(RollbackError::Busy {
            deployment_group: env.deployment_group.clone(),
            deployment_id: running.deployment_id().unwrap_or_default().into(),
        });
    }
    let from = recent.first().cloned();
    let (to_deployment_id, loc, warnings) = match to {
        None => {
            let (id, loc) = default_target(env, &recent)?;
            (id, loc, Vec::new())
        }
        Some(to) => {
            let (id, loc, status) = named_target(cd, s3, env, &recent, to).await?;
            let warnings = target_warnings(env, &recent, to, &loc, status.as_ref());
            (id, loc, warnings)
        }
    };
    let revision = pin(s3, env, loc).await?;
    let task_definition = match env.platform.ecs() {
        Some(_) => appspec_task_definition(s3, &revision).await,
        None => None,
    };
    Ok(Plan { from, to_deployment_id, revision, warnings, task_definition })
}

/// The task definition an ECS appspec in S3 names; none when it cannot be
/// read (the rollback goes ahead: CodeDeploy reads the object itself).
async fn appspec_task_definition(s3: &aws_sdk_s3::Client, loc: &S3Location) -> Option<String> {
    let out = s3
        .get_object()
        .bucket(loc.bucket()?)
        .key(loc.key()?)
        .set_version_id(loc.version().map(String::from))
        .send()
        .await
        .ok()?;
    let bytes = out.body.collect().await.ok()?.into_bytes();
    crate::appspec::ecs::task_definition(std::str::from_utf8(&bytes).ok()?)
}

fn is_active(s: &DeploymentStatus) -> bool {
    deployments::active_statuses().contains(s)
}

fn default_target(env: &Environment, recent: &[DeploymentInfo]) -> Result<(Option<String>, S3Location), RollbackError> {
    let nothing = |reason: String| RollbackError::NothingToRollBackTo { deployment_group: env.deployment_group.clone(), reason };
    let Some(current) = recent.first() else {
        return Err(nothing("the group has no deployments".into()));
    };
    let current_loc = s3_location(current);
    let target = recent[1..].iter().find(|d| {
        d.status() == Some(&DeploymentStatus::Succeeded)
            && s3_location(d).is_some_and(|l| current_loc.is_none_or(|c| !same_object(c, l)))
    });
    match target {
        Some(d) => Ok((d.deployment_id().map(String::from), s3_location(d).cloned().expect("filtered on it"))),
        None => Err(nothing(format!(
            "none of its last {} deployments before {} succeeded with a different S3 revision",
            recent.len() - 1,
            current.deployment_id().unwrap_or_default()
        ))),
    }
}

async fn named_target(
    cd: &aws_sdk_codedeploy::Client,
    s3: &aws_sdk_s3::Client,
    env: &Environment,
    recent: &[DeploymentInfo],
    to: &str,
) -> Result<(Option<String>, S3Location, Option<DeploymentStatus>), RollbackError> {
    let not_found = || RollbackError::TargetNotFound {
        to: to.into(),
        deployment_group: env.deployment_group.clone(),
        searched: recent.len(),
    };
    let with_loc =
        |d: &DeploymentInfo| s3_location(d).map(|l| (d.deployment_id().map(String::from), l.clone(), d.status().cloned()));
    if to.starts_with("d-") {
        let found = deployments::describe(cd, &[to.to_string()])
            .await
            .map_err(|f| RollbackError::read(&format!("describe deployment {to}"), f))?;
        return found.first().and_then(with_loc).ok_or_else(not_found);
    }
    let hex = to.len() >= 12 && to.chars().all(|c| c.is_ascii_hexdigit());
    if hex {
        let sha = to.to_ascii_lowercase();
        // Prefer a deployment that succeeded with it; else any that used it.
        let uses = |d: &&DeploymentInfo| {
            s3_location(d).and_then(|l| l.key()).and_then(sha256_of_key).is_some_and(|k| k.starts_with(&sha))
        };
        let found = recent
            .iter()
            .filter(uses)
            .find(|d| d.status() == Some(&DeploymentStatus::Succeeded))
            .or_else(|| recent.iter().find(uses));
        if let Some(hit) = found.and_then(with_loc) {
            return Ok(hit);
        }
        // A bundle uploaded but never deployed is still in the bucket under its content address.
        if sha.len() == 64 {
            for ext in ["zip", "tar", "tgz"] {
                let key = format!("{}{}/{sha}.{ext}", key_prefix(env), env.application);
                if head(s3, env, &key, None).await.is_ok() {
                    return Ok((None, S3Location::builder().bucket(&env.bucket).key(key).build(), None));
                }
            }
        }
        return Err(not_found());
    }
    let key = to.strip_prefix(&format!("s3://{}/", env.bucket)).unwrap_or(to);
    if let Some(hit) = recent.iter().filter_map(with_loc).find(|(_, l, _)| l.key() == Some(key)) {
        return Ok(hit);
    }
    match head(s3, env, key, None).await {
        Ok(_) => Ok((None, S3Location::builder().bucket(&env.bucket).key(key).build(), None)),
        Err(_) => Err(not_found()),
    }
}

/// Warnings for a `--to` target: the revision the group already runs (its
/// newest Succeeded deployment's), or one that no deployment of the group's
/// recent history succeeded with. Neither stops the rollback: redeploying
/// the running revision repairs instances, and a build may be restored on
/// purpose; but both are more often a wrong id, so they are said first.
fn target_warnings(
    env: &Environment,
    recent: &[DeploymentInfo],
    to: &str,
    target: &S3Location,
    named_status: Option<&DeploymentStatus>,
) -> Vec<String> {
    let succeeded = |d: &&DeploymentInfo| d.status() == Some(&DeploymentStatus::Succeeded);
    let group = &env.deployment_group;
    let mut warnings = Vec::new();
    if let Some(running) = recent.iter().find(succeeded)
        && s3_location(running).is_some_and(|l| same_object(l, target))
    {
        warnings.push(format!(
            "--to {to} is the revision {group} already runs (deployed by {}, its last successful deployment); the \
             rollback redeploys it unchanged. `ferry history` lists the earlier ones.",
            running.deployment_id().unwrap_or("?")
        ));
    }
    let ever_succeeded = named_status == Some(&DeploymentStatus::Succeeded)
        || recent.iter().filter(succeeded).any(|d| s3_location(d).is_some_and(|l| same_object(l, target)));
    if !ever_succeeded {
        let what = match named_status {
            Some(status) => format!("its deployment ended {}", status.as_str()),
            None if recent.iter().any(|d| s3_location(d).is_some_and(|l| same_object(l, target))) => {
                "its deployments did not succeed".to_string()
            }
            None => "it was never deployed there".to_string(),
        };
        warnings.push(format!(
            "--to {to} never succeeded in {group} (in its last {} deployments): {what}. Restoring it may fail the \
             same way; `ferry history` shows which revisions succeeded.",
            recent.len()
        ));
    }
    warnings
}

fn key_prefix(env: &Environment) -> String {
    if env.prefix.is_empty() { String::new() } else { format!("{}/", env.prefix) }
}

/// Checks the object is still there as deployed and pins it: eTag and
/// version from the deployment when it had them, else from S3 now.
async fn pin(s3: &aws_sdk_s3::Client, env: &Environment, loc: S3Location) -> Result<S3Location, RollbackError> {
    let url = s3_url(&loc);
    let bucket = loc.bucket().unwrap_or(&env.bucket).to_string();
    let key = loc.key().unwrap_or_default().to_string();
    let probe = Environment { bucket: bucket.clone(), ..env.clone() };
    let found =
        head(s3, &probe, &key, loc.version()).await.map_err(|detail| RollbackError::RevisionGone { url: url.clone(), detail })?;
    let etag = found.e_tag().unwrap_or_default().trim_matches('"').to_string();
    if let Some(want) = loc.e_tag()
        && want.trim_matches('"') != etag
    {
        return Err(RollbackError::RevisionGone {
            url,
            detail: format!("the object's eTag is now {etag}, not the {want} that was deployed (it was overwritten)"),
        });
    }
    let bundle_type = loc.bundle_type().cloned().unwrap_or_else(|| bundle_type_of(&key));
    Ok(S3Location::builder()
        .bucket(bucket)
        .key(key)
        .bundle_type(bundle_type)
        .e_tag(etag)
        .set_version(loc.version().map(String::from).or_else(|| found.version_id().map(String::from)))
        .build())
}

fn bundle_type_of(key: &str) -> CdBundleType {
    // An ECS release's revision is the appspec ferry wrote.
    if key.ends_with(".yaml") || key.ends_with(".yml") {
        CdBundleType::Yaml
    } else if key.ends_with(".tar") {
        CdBundleType::Tar
    } else if key.ends_with(".tgz") || key.ends_with(".tar.gz") {
        CdBundleType::TarGZip
    } else {
        CdBundleType::Zip
    }
}

async fn head(
    s3: &aws_sdk_s3::Client,
    env: &Environment,
    key: &str,
    version: Option<&str>,
) -> Result<aws_sdk_s3::operation::head_object::HeadObjectOutput, String> {
    s3.head_object()
        .bucket(&env.bucket)
        .key(key)
        .set_version_id(version.map(String::from))
        .expected_bucket_owner(&env.role.account)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(s) if s.is_not_found() => "no such object (or version)".to_string(),
            _ => describe_sdk_error(&e),
        })
}

/// Asks CodeDeploy to stop a deployment. `rollback`: `Some(true)` rolls back
/// to the previous revision, `Some(false)` leaves the instances as they are,
/// `None` does what the deployment's rollback configuration says.
pub async fn request_stop(
    cd: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
    rollback: Option<bool>,
    reporter: &dyn Reporter,
) -> Result<(), RollbackError> {
    let action = format!("stop deployment {deployment_id}");
    match cd.stop_deployment().deployment_id(deployment_id).set_auto_rollback_enabled(rollback).send().await {
        Ok(_) => {
            reporter.report(&Event::StopRequested { deployment_id: deployment_id.into(), rollback });
            Ok(())
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_deployment_already_completed_exception()) => {
            let status = status_of(cd, deployment_id).await.unwrap_or_else(|_| "ended".into());
            Err(RollbackError::AlreadyEnded { deployment_id: deployment_id.into(), status })
        }
        Err(e) if is_unreachable(&e) => Err(RollbackError::Unreachable { action, detail: describe_sdk_error(&e) }),
        Err(e) => Err(RollbackError::Refused { action, detail: describe_sdk_error(&e) }),
    }
}

/// A deployment's status word.
pub async fn status_of(cd: &aws_sdk_codedeploy::Client, deployment_id: &str) -> Result<String, RollbackError> {
    let out = cd
        .get_deployment()
        .deployment_id(deployment_id)
        .send()
        .await
        .map_err(|e| RollbackError::read(&format!("read deployment {deployment_id}"), e.into()))?;
    Ok(out.deployment_info().and_then(|i| i.status()).map(|s| s.as_str().to_string()).unwrap_or_else(|| "Unknown".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        Environment::example()
    }

    fn deployment(id: &str, status: DeploymentStatus, key: &str, etag: &str) -> DeploymentInfo {
        let loc = S3Location::builder().bucket("b").key(key).e_tag(etag).build();
        DeploymentInfo::builder()
            .deployment_id(id)
            .status(status)
            .revision(RevisionLocation::builder().revision_type(RevisionLocationType::S3).s3_location(loc).build())
            .build()
    }

    #[test]
    fn rollback_on_maps_to_codedeploys_events() {
        use aws_sdk_codedeploy::types::AutoRollbackEvent as E;
        let f = RollbackOn::Failure.configuration();
        assert!(f.enabled() && f.events() == [E::DeploymentFailure]);
        let s = RollbackOn::Stop.configuration();
        assert!(s.enabled() && s.events() == [E::DeploymentFailure, E::DeploymentStopOnRequest]);
        let n = RollbackOn::Never.configuration();
        assert!(!n.enabled() && n.events().is_empty());
    }

    #[test]
    fn default_target_skips_the_current_revision_and_failures() {
        let recent = vec![
            deployment("d-3", DeploymentStatus::Succeeded, "k3", "e3"),
            deployment("d-r", DeploymentStatus::Succeeded, "k3", "e3"),
            deployment("d-2", DeploymentStatus::Failed, "k2", "e2"),
            deployment("d-1", DeploymentStatus::Succeeded, "k1", "e1"),
        ];
        let (id, loc) = default_target(&env(), &recent).unwrap();
        assert_eq!(id.as_deref(), Some("d-1"));
        assert_eq!(loc.key(), Some("k1"));
    }

    #[test]
    fn after_a_failed_release_the_target_is_the_last_good_revision() {
        let recent = vec![
            deployment("d-2", DeploymentStatus::Failed, "k2", "e2"),
            deployment("d-1", DeploymentStatus::Succeeded, "k1", "e1"),
        ];
        assert_eq!(default_target(&env(), &recent).unwrap().0.as_deref(), Some("d-1"));
    }

    #[test]
    fn a_group_with_one_revision_has_nothing_to_roll_back_to() {
        let recent = vec![deployment("d-1", DeploymentStatus::Succeeded, "k1", "e1")];
        let e = default_target(&env(), &recent).unwrap_err();
        assert_eq!(e.exit_code(), ExitCode::Usage);
        assert!(e.to_string().contains("nothing to roll back to"), "{e}");
        assert!(default_target(&env(), &[]).unwrap_err().to_string().contains("no deployments"));
    }

    fn loc(key: &str, etag: &str) -> S3Location {
        S3Location::builder().bucket("b").key(key).e_tag(etag).build()
    }

    #[test]
    fn a_target_the_group_already_runs_is_warned_about() {
        let recent = vec![
            deployment("d-2", DeploymentStatus::Succeeded, "k2", "e2"),
            deployment("d-1", DeploymentStatus::Succeeded, "k1", "e1"),
        ];
        let w = target_warnings(&env(), &recent, "d-2", &loc("k2", "e2"), Some(&DeploymentStatus::Succeeded));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("is the revision web-prod already runs (deployed by d-2"), "{w:?}");
        assert!(target_warnings(&env(), &recent, "d-1", &loc("k1", "e1"), Some(&DeploymentStatus::Succeeded)).is_empty());
    }

    #[test]
    fn a_target_that_never_succeeded_is_warned_about() {
        let recent = vec![
            deployment("d-2", DeploymentStatus::Failed, "k2", "e2"),
            deployment("d-1", DeploymentStatus::Succeeded, "k1", "e1"),
        ];
        let w = target_warnings(&env(), &recent, "d-2", &loc("k2", "e2"), Some(&DeploymentStatus::Failed));
        assert!(w.len() == 1 && w[0].contains("never succeeded in web-prod") && w[0].contains("ended Failed"), "{w:?}");
        let w = target_warnings(&env(), &recent, "releases/web/x.zip", &loc("k9", "e9"), None);
        assert!(w.len() == 1 && w[0].contains("it was never deployed there"), "{w:?}");
    }
}
