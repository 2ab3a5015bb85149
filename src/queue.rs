//! queue: CreateDeployment for a group that may be busy, and whose answer may
//! be lost.
//!
//! - Busy: CodeDeploy allows one running deployment per group and answers
//!   `DeploymentLimitExceededException`. ferry says which deployment runs
//!   and who started it, waits for it up to `--queue-timeout`, and retries.
//! - Superseded: before each attempt, if a recent deployment of the group
//!   carries a newer build of the same Jenkins job (`ferry build N of JOB`
//!   in its description), this older build is not deployed over it.
//! - Lost answer: when the call times out, the connection drops or the
//!   service answers 5xx, CodeDeploy may have created the deployment anyway.
//!   CreateDeployment has no idempotency token, so the SDK does not retry it
//!   (see `deploy::send`); ferry looks for a deployment of the same revision
//!   created in the last minutes whose description carries this process's
//!   run token (`[ferry run …]`, made fresh by every process) and follows
//!   it, and only creates again when there is none. A deployment of an
//!   identical release started by another live process has another token:
//!   it is queued behind like any other, never adopted.
//! - Re-run after a crash: a release killed before it ended leaves its
//!   [`pending`] record (its run token, and the deployment once known). A
//!   re-run of the very same release takes the tokens over as its own: the
//!   killed run's deployment is followed when it still runs or has just
//!   succeeded (the group's newest, ended within [`DUPLICATE_WINDOW`]), and
//!   deployed anew when it failed or was stopped (a re-run is how people
//!   retry).
//! - Throttled: nothing was created; ferry backs off and tries again.
//! - Deadline: once the command's `--timeout` has passed, no CreateDeployment
//!   is sent any more (one already sent is seen through, so ferry learns what
//!   it did).

mod missing;
pub mod pending;

use std::time::{Duration, Instant, SystemTime};

use aws_sdk_codedeploy::types::{AutoRollbackConfiguration, DeploymentInfo, DeploymentStatus, RevisionLocation};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::DateTime;

use crate::config::Environment;
use crate::deadline::{self, Passed, Watchdog};
use crate::deploy::{self, CreateFailure, DeployError};
use crate::deployments::{self, Build, Filter, ReadFailure, same_object};
use crate::event::{Event, Reporter};
use crate::exit::ExitCode;

pub use pending::{Pending, Prior};

/// How far back a lost CreateDeployment's deployment is looked for.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);
/// How many recent deployments are checked for a newer build.
const NEWER_BUILD_DEPTH: usize = 10;
/// How often a lost answer is retried after finding no deployment.
const TRANSPORT_RETRIES: u32 = 2;
/// How often a throttled CreateDeployment is retried, backing off from 1 s.
const THROTTLE_RETRIES: u32 = 4;

/// What to create.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// Where.
    pub env: &'a Environment,
    /// The pinned revision.
    pub revision: RevisionLocation,
    /// The description (starts with [`Build::marker`] when there is a build).
    pub description: String,
    /// `--rollback-on`: overrides the group's automatic rollback.
    pub auto_rollback: Option<AutoRollbackConfiguration>,
    /// This build, for the superseded check.
    pub build: Option<Build>,
    /// How long to wait for a busy group.
    pub queue_timeout: Duration,
}

/// How the request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// CodeDeploy created this deployment.
    New(String),
    /// An earlier, lost attempt of this request had created this deployment.
    Adopted(String),
    /// Not created: `deployment_id` carries a newer build of the same job.
    Superseded {
        /// The deployment with the newer build.
        deployment_id: String,
        /// Its build number.
        newer_build: u64,
    },
}

/// Why no deployment was created.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// CodeDeploy refused (or could not be reached).
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// The group stayed busy for `--queue-timeout`.
    #[error(
        "deployment group {deployment_group} was still busy with {deployment_id} after {waited_s}s; nothing was \
         deployed. Raise --queue-timeout, or stop that deployment (`ferry stop {deployment_id}`)."
    )]
    TimedOut {
        /// Group.
        deployment_group: String,
        /// The deployment that kept it busy.
        deployment_id: String,
        /// Seconds waited.
        waited_s: u64,
    },
    /// CodeDeploy kept answering DeploymentLimitExceeded while no deployment
    /// of the group ran (an account- or region-wide limit).
    #[error(
        "CodeDeploy kept refusing with DeploymentLimitExceededException for {waited_s}s although no deployment of \
         {deployment_group} is running: a limit beyond this group (deployments running across the account or \
         region) is reached. Nothing was deployed. Wait for other deployments to end, raise --queue-timeout, or ask \
         AWS to raise the limit."
    )]
    LimitElsewhere {
        /// Group.
        deployment_group: String,
        /// Seconds waited.
        waited_s: u64,
    },
    /// The command's `--timeout` ran out before a deployment was created.
    #[error(transparent)]
    Deadline(#[from] Passed),
    /// The group's deployments could not be read.
    #[error(
        "cannot read the deployments of {deployment_group}: {detail}. The role needs codedeploy:ListDeployments and BatchGetDeployments."
    )]
    Read {
        /// Group.
        deployment_group: String,
        /// What CodeDeploy said.
        detail: String,
    },
}

impl QueueError {
    /// Exit code: 5 when the wait ran out, else 2.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            QueueError::Deploy(e) => e.exit_code(),
            QueueError::TimedOut { .. } | QueueError::LimitElsewhere { .. } | QueueError::Deadline(_) => ExitCode::TimedOut,
            QueueError::Read { .. } => ExitCode::Aws,
        }
    }
}

/// Creates the deployment, waiting behind a running one and never creating
/// a duplicate of a lost attempt, of a killed run of the same release
/// (`prior`) that still runs or has just succeeded, or overwriting a newer
/// build.
pub async fn create(
    cd: &aws_sdk_codedeploy::Client,
    req: &Request<'_>,
    prior: &Prior,
    reporter: &dyn Reporter,
) -> Result<Created, QueueError> {
    let mut c = Creating::new(cd, req, prior, reporter);
    if let Some(resumed) = c.resume(prior).await? {
        return Ok(resumed);
    }
    loop {
        if let Some(superseded) = c.superseded().await? {
            return Ok(superseded);
        }
        // Past the command's deadline nothing is created any more.
        if deadline::passed() {
            return Err(c.dog.passed().into());
        }
        // Not abandoned at the deadline: once sent, ferry must learn whether
        // it created a deployment (the SDK's attempt timeout bounds it).
        let sent = c.dog.finish(deploy::send(cd, req.env, req.revision.clone(), &c.ours.description, req.auto_rollback.clone()));
        let err = match sent.await {
            Ok(id) => return Ok(Created::New(id)),
            Err(e) => e,
        };
        if let Some(created) = c.refused(&err).await? {
            return Ok(created);
        }
    }
}

/// One [`create`] across its attempts: what it sends, and how often and how
/// long it has retried so far.
struct Creating<'a, 'e> {
    cd: &'a aws_sdk_codedeploy::Client,
    req: &'a Request<'e>,
    reporter: &'a dyn Reporter,
    dog: Watchdog<'a>,
    /// What this process sends, and so what marks a deployment as its own.
    ours: Ours<'a, 'e>,
    started: Instant,
    queue_deadline: Instant,
    /// The running deployment already announced as the one waited for.
    announced: Option<String>,
    /// Answers lost (with no deployment found) so far.
    lost: u32,
    /// Throttled attempts so far.
    throttled: u32,
    /// The next wait while the limit holds with nothing running in the group.
    idle: Duration,
}

impl<'a, 'e> Creating<'a, 'e> {
    fn new(cd: &'a aws_sdk_codedeploy::Client, req: &'a Request<'e>, prior: &Prior, reporter: &'a dyn Reporter) -> Self {
        Creating {
            cd,
            req,
            reporter,
            dog: Watchdog::new("CodeDeploy", "creating the deployment", reporter),
            ours: Ours { inherited: prior.tokens.clone(), ..Ours::of(req) },
            started: Instant::now(),
            queue_deadline: deadline::after(req.queue_timeout),
            announced: None,
            lost: 0,
            throttled: 0,
            idle: crate::watch::FAST,
        }
    }

    fn read(&self, f: ReadFailure) -> QueueError {
        read_error(self.req.env, f)
    }

    /// The deployment a killed run of this release made, adopted when it
    /// still runs or has just succeeded; `None` to deploy (it failed, was
    /// stopped, is older, or was never made).
    async fn resume(&self, prior: &Prior) -> Result<Option<Created>, QueueError> {
        if prior.is_empty() {
            return Ok(None);
        }
        let found = self.dog.run(find_inherited(self.cd, &self.ours, prior)).await?.map_err(|f| self.read(f))?;
        let Some(info) = found else { return Ok(None) };
        let id = info.deployment_id().unwrap_or_default().to_string();
        let status = info.status().cloned().unwrap_or(DeploymentStatus::Created);
        if deployments::active_statuses().contains(&status) {
            let reason = format!("a run of this same release, killed before it ended, had created it ({status})");
            return Ok(Some(adopt(id, &reason, self.reporter)));
        }
        if status != DeploymentStatus::Succeeded || !ended_recently(&info) {
            return Ok(None);
        }
        // Only while nothing has been deployed over it is the group still on it.
        let newest = Filter { limit: 1, ..Default::default() };
        let newest = self.dog.run(deployments::list(self.cd, self.req.env, &newest)).await?.map_err(|f| self.read(f))?;
        if newest.first().and_then(|d| d.deployment_id()) != Some(id.as_str()) {
            return Ok(None);
        }
        let reason = "a run of this same release, killed before it ended, had created it, and it has just succeeded";
        Ok(Some(adopt(id, reason, self.reporter)))
    }

    /// A recent deployment of the group carries a newer build of this job:
    /// said, and nothing is created.
    async fn superseded(&self) -> Result<Option<Created>, QueueError> {
        let Some(build) = &self.req.build else { return Ok(None) };
        let newer = self.dog.run(newer_build(self.cd, self.req.env, build)).await?.map_err(|f| self.read(f))?;
        Ok(newer.map(|(deployment_id, newer_build)| {
            self.reporter.report(&Event::Superseded { deployment_id: deployment_id.clone(), build: build.number, newer_build });
            Created::Superseded { deployment_id, newer_build }
        }))
    }

    /// CreateDeployment did not create one: the deployment found after all,
    /// `None` to send again, or the reason to give up.
    async fn refused(&mut self, err: &CreateFailure) -> Result<Option<Created>, QueueError> {
        if answer_lost(err) {
            return self.answer_lost(err).await;
        }
        self.dog.touch();
        if is_throttled(err) {
            self.throttled += 1;
            if self.throttled > THROTTLE_RETRIES {
                return Err(deploy::to_error(err, self.req.env).into());
            }
            self.dog.run(tokio::time::sleep(Duration::from_secs(1 << (self.throttled - 1)))).await?;
            return Ok(None);
        }
        if !limit_exceeded(err) {
            let mut error = deploy::to_error(err, self.req.env);
            let code = aws_sdk_codedeploy::error::ProvideErrorMetadata::code(err).unwrap_or_default();
            if let deploy::DeployError::Refused { fix, .. } = &mut error
                && let Some(missing) = missing::missing_group(self.cd, self.req.env, code).await
            {
                *fix = missing;
            }
            return Err(error.into());
        }
        self.wait_for_group().await
    }

    /// The answer was lost: the deployment the call made, if CodeDeploy
    /// made one, else `None` to send again (a few times).
    async fn answer_lost(&mut self, err: &CreateFailure) -> Result<Option<Created>, QueueError> {
        if let Some(id) = self.dog.finish(find_ours(self.cd, &self.ours)).await.map_err(|f| self.read(f))? {
            let reason = "CreateDeployment's answer was lost, but CodeDeploy had created it (same revision and description)";
            return Ok(Some(adopt(id, reason, self.reporter)));
        }
        self.lost += 1;
        if self.lost > TRANSPORT_RETRIES {
            return Err(deploy::to_error(err, self.req.env).into());
        }
        Ok(None)
    }

    /// The deployment limit is reached: waits for the group's running
    /// deployment to end (saying which, once), or, with none running,
    /// backs off; all within `--queue-timeout`. `Some` when the running
    /// one is an earlier attempt of this very request.
    async fn wait_for_group(&mut self) -> Result<Option<Created>, QueueError> {
        let env = self.req.env;
        let filter = Filter { statuses: deployments::active_statuses(), limit: 1, ..Default::default() };
        let running = self.dog.run(deployments::list(self.cd, env, &filter)).await?.map_err(|f| self.read(f))?;
        let Some(running) = running.into_iter().next() else {
            // The limit is reached but nothing runs in this group: it ended
            // between the two calls, or the limit is wider than the group.
            // Either way wait, backing off, within --queue-timeout.
            if Instant::now() >= self.queue_deadline {
                return Err(QueueError::LimitElsewhere {
                    deployment_group: env.deployment_group.clone(),
                    waited_s: self.started.elapsed().as_secs(),
                });
            }
            let wake = deadline::earlier(self.queue_deadline.min(deadline::after(self.idle)));
            tokio::time::sleep_until(wake.into()).await;
            self.idle = (self.idle * 2).min(crate::watch::SLOW);
            return Ok(None);
        };
        self.idle = crate::watch::FAST;
        let running_id = running.deployment_id().unwrap_or_default().to_string();
        // ferry re-sends a create whose answer was lost (the SDK's own retry
        // is off for it); the re-send then meets the deployment the first
        // attempt made, which carries this process's token.
        if is_ours(&running, &self.ours) {
            let reason = "an earlier attempt of this CreateDeployment had created it (same revision and description)";
            return Ok(Some(adopt(running_id, reason, self.reporter)));
        }
        // A killed run's CreateDeployment that landed after `resume` looked.
        if is_inherited(&running, &self.ours) {
            let reason = "a run of this same release, killed before it ended, had created it";
            return Ok(Some(adopt(running_id, reason, self.reporter)));
        }
        if self.announced.as_deref() != Some(running_id.as_str()) {
            self.reporter.report(&Event::Queued {
                deployment_id: running_id.clone(),
                creator: running.creator().map(|c| c.as_str().to_string()),
                description: running.description().map(String::from),
                timeout_s: whole_seconds(self.queue_deadline.saturating_duration_since(Instant::now())),
            });
            self.announced = Some(running_id.clone());
        }
        if !self.dog.run(wait_until_ended(self.cd, &running_id, self.queue_deadline, &self.dog)).await? {
            return Err(QueueError::TimedOut {
                deployment_group: env.deployment_group.clone(),
                deployment_id: running_id,
                waited_s: self.started.elapsed().as_secs(),
            });
        }
        Ok(None)
    }
}

/// A duration as the seconds a user would count: a part-second left is a
/// second (`--queue-timeout 2s` is "up to 2s", not 1).
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A CodeDeploy read that failed: unreachable is said as such, anything
/// else is a refusal naming the permissions it needs.
fn read_error(env: &Environment, f: ReadFailure) -> QueueError {
    if f.unreachable {
        QueueError::Deploy(DeployError::Unreachable { detail: f.detail })
    } else {
        QueueError::Read { deployment_group: env.deployment_group.clone(), detail: f.detail }
    }
}

/// The request as this process sends it.
struct Ours<'r, 'e> {
    req: &'r Request<'e>,
    /// The description with this process's run token.
    description: String,
    /// The run tokens of killed runs of the same release, taken over.
    inherited: Vec<String>,
}

impl<'r, 'e> Ours<'r, 'e> {
    fn of(req: &'r Request<'e>) -> Self {
        Ours { req, description: with_token(&req.description, process_token()), inherited: Vec::new() }
    }
}

/// This process's run token, the same for every request it sends (a lost
/// answer's re-send, the abort's search for what a dropped request made, and
/// the [`pending`] record a re-run after a crash reads).
pub fn process_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(new_token)
}

/// A token no other process will send: which of two identical releases
/// created a deployment is told by it alone.
fn new_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS's randomness once per process.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos());
    format!("{:016x}", h.finish())
}

/// `description [ferry run TOKEN]`.
fn with_token(description: &str, token: &str) -> String {
    format!("{description} [ferry run {token}]")
}

fn adopt(deployment_id: String, reason: &str, reporter: &dyn Reporter) -> Created {
    reporter.report(&Event::DeploymentAdopted {
        deployment_id: deployment_id.clone(),
        reason: format!("{reason}; following it instead of creating another"),
    });
    Created::Adopted(deployment_id)
}

/// Whether the call may have reached CodeDeploy without ferry seeing the answer.
fn answer_lost(e: &CreateFailure) -> bool {
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(ctx) => ctx.raw().status().is_server_error(),
        _ => false,
    }
}

/// Throttled: CodeDeploy refused before creating anything.
fn is_throttled(e: &CreateFailure) -> bool {
    matches!(aws_sdk_codedeploy::error::ProvideErrorMetadata::code(e), Some("ThrottlingException" | "Throttling"))
}

fn limit_exceeded(e: &CreateFailure) -> bool {
    e.as_service_error().is_some_and(|s| s.is_deployment_limit_exceeded_exception())
}

/// Whether `info` is this process's own deployment: same object, the
/// description with this process's run token, created within
/// [`DUPLICATE_WINDOW`].
fn is_ours(info: &DeploymentInfo, ours: &Ours<'_, '_>) -> bool {
    let recent = info.create_time().is_none_or(|t| t.secs() >= window_start().secs());
    let same_revision = match (deployments::s3_location(info), ours.req.revision.s3_location()) {
        (Some(a), Some(b)) => same_object(a, b),
        _ => false,
    };
    recent && same_revision && info.description() == Some(ours.description.as_str())
}

/// Whether `info` was made by a killed run of this release: the same
/// object, and a description ending in one of the inherited run tokens (the
/// rest of it may differ: a Jenkins re-run is another build number).
fn is_inherited(info: &DeploymentInfo, ours: &Ours<'_, '_>) -> bool {
    let same_revision = match (deployments::s3_location(info), ours.req.revision.s3_location()) {
        (Some(a), Some(b)) => same_object(a, b),
        _ => false,
    };
    let description = info.description().unwrap_or_default();
    same_revision && ours.inherited.iter().any(|t| description.ends_with(&format!("[ferry run {t}]")))
}

/// Whether a deployment that ended did so within [`DUPLICATE_WINDOW`].
fn ended_recently(info: &DeploymentInfo) -> bool {
    info.complete_time().is_some_and(|t| t.secs() >= window_start().secs())
}

/// The deployment killed runs of this release made: the one the record
/// names, else the newest recent one carrying an inherited token.
async fn find_inherited(
    cd: &aws_sdk_codedeploy::Client,
    ours: &Ours<'_, '_>,
    prior: &Prior,
) -> Result<Option<DeploymentInfo>, ReadFailure> {
    if let Some(id) = &prior.deployment_id {
        // One CodeDeploy no longer knows (or never did) is looked for by token.
        let named = deployments::describe(cd, std::slice::from_ref(id)).await.unwrap_or_default();
        if let Some(info) = named.into_iter().find(|d| is_inherited(d, ours)) {
            return Ok(Some(info));
        }
    }
    if ours.inherited.is_empty() {
        return Ok(None);
    }
    let filter = Filter { created_after: Some(window_start()), limit: 25, ..Default::default() };
    let recent = deployments::list(cd, ours.req.env, &filter).await?;
    Ok(recent.into_iter().find(|d| is_inherited(d, ours)))
}

fn window_start() -> DateTime {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    DateTime::from_secs(now.saturating_sub(DUPLICATE_WINDOW).as_secs() as i64)
}

/// A deployment of this request created in the last minutes, if any.
async fn find_ours(cd: &aws_sdk_codedeploy::Client, ours: &Ours<'_, '_>) -> Result<Option<String>, ReadFailure> {
    let filter = Filter { created_after: Some(window_start()), limit: 25, ..Default::default() };
    let recent = deployments::list(cd, ours.req.env, &filter).await?;
    Ok(recent.iter().find(|d| is_ours(d, ours)).and_then(|d| d.deployment_id()).map(String::from))
}

/// The deployment this request created, if CodeDeploy has one: for an abort
/// that dropped the request while its CreateDeployment was in flight.
pub async fn find_created(cd: &aws_sdk_codedeploy::Client, req: &Request<'_>) -> Result<Option<String>, QueueError> {
    find_ours(cd, &Ours::of(req)).await.map_err(|f| read_error(req.env, f))
}

/// The newest recent deployment carrying a higher build number of the same job.
async fn newer_build(
    cd: &aws_sdk_codedeploy::Client,
    env: &Environment,
    build: &Build,
) -> Result<Option<(String, u64)>, ReadFailure> {
    let recent = deployments::list(cd, env, &Filter { limit: NEWER_BUILD_DEPTH, ..Default::default() }).await?;
    Ok(recent.iter().find_map(|d| {
        let theirs = Build::parse(d.description()?)?;
        let id = d.deployment_id()?.to_string();
        (theirs.job == build.job && theirs.number > build.number).then_some((id, theirs.number))
    }))
}

/// Polls until the deployment is no longer running. `false` if `until` came first.
async fn wait_until_ended(cd: &aws_sdk_codedeploy::Client, deployment_id: &str, until: Instant, dog: &Watchdog<'_>) -> bool {
    let active = deployments::active_statuses();
    loop {
        if let Ok(out) = cd.get_deployment().deployment_id(deployment_id).send().await {
            dog.touch();
            let status = out.deployment_info().and_then(|i| i.status().cloned());
            if status.is_some_and(|s| !active.contains(&s)) {
                return true;
            }
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        tokio::time::sleep(crate::watch::SLOW.min(left)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codedeploy::types::{RevisionLocationType, S3Location};

    fn revision(etag: &str) -> RevisionLocation {
        let loc = S3Location::builder().bucket("b").key("releases/web/x.zip").e_tag(etag).build();
        RevisionLocation::builder().revision_type(RevisionLocationType::S3).s3_location(loc).build()
    }

    fn env() -> Environment {
        Environment::example()
    }

    fn request<'e>(env: &'e Environment, description: &str) -> Request<'e> {
        Request {
            env,
            revision: revision("e1"),
            description: description.into(),
            auto_rollback: None,
            build: None,
            queue_timeout: Duration::ZERO,
        }
    }

    #[test]
    fn a_lost_create_is_matched_only_by_same_object_same_description_and_recent() {
        let env = env();
        let req = request(&env, "ferry build 7 of web by s (sha256 x)");
        let ours = Ours { req: &req, description: with_token(&req.description, "t1"), inherited: Vec::new() };
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
        let info = |etag: &str, desc: &str, created: i64| {
            DeploymentInfo::builder().revision(revision(etag)).description(desc).create_time(DateTime::from_secs(created)).build()
        };
        assert!(is_ours(&info("e1", &ours.description, now - 5), &ours));
        assert!(!is_ours(&info("e2", &ours.description, now - 5), &ours), "other bytes under the same key");
        let other_build = with_token("ferry build 8 of web by s (sha256 x)", "t1");
        assert!(!is_ours(&info("e1", &other_build, now - 5), &ours), "another build");
        assert!(!is_ours(&info("e1", &ours.description, now - 3600), &ours), "too old to be this attempt");
    }

    /// Issue 18 item 11: two identical releases at once send the same
    /// description; only the run token tells whose deployment it is.
    #[test]
    fn an_identical_release_by_another_process_is_not_ours() {
        let env = env();
        let req = request(&env, "ferry release manual by me (sha256 x)");
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b, "every process gets its own token");
        assert_eq!(process_token(), process_token(), "and keeps it for all its requests");
        let theirs = Ours { req: &req, description: with_token(&req.description, &a), inherited: Vec::new() };
        let ours = Ours { req: &req, description: with_token(&req.description, &b), inherited: Vec::new() };
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
        let info = DeploymentInfo::builder()
            .revision(revision("e1"))
            .description(&theirs.description)
            .create_time(DateTime::from_secs(now));
        assert!(!is_ours(&info.clone().build(), &ours));
        assert!(is_ours(&info.clone().description(&ours.description).build(), &ours));
    }

    /// Issue 23: a re-run after a crash takes over the killed run's token,
    /// whatever the rest of the description says (another build number),
    /// but only for the very same object.
    #[test]
    fn a_killed_runs_deployment_is_known_by_its_token_and_object() {
        let env = env();
        let req = request(&env, "ferry build 8 of web by s (sha256 x)");
        let ours = Ours { inherited: vec!["dead".into()], ..Ours::of(&req) };
        let info = |etag: &str, desc: &str| DeploymentInfo::builder().revision(revision(etag)).description(desc).build();
        assert!(is_inherited(&info("e1", &with_token("ferry build 7 of web by s (sha256 x)", "dead")), &ours));
        assert!(!is_inherited(&info("e2", &with_token(&req.description, "dead")), &ours), "other bytes");
        assert!(!is_inherited(&info("e1", &with_token(&req.description, "live")), &ours), "a live run's");
        assert!(!is_inherited(&info("e1", &ours.description), &Ours::of(&req)), "nothing inherited");
    }

    #[test]
    fn the_queue_wait_is_announced_in_whole_seconds_rounded_up() {
        assert_eq!(whole_seconds(Duration::from_millis(1999)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::ZERO), 0);
    }
}
