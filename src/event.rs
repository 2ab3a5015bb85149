//! The typed events the pipeline emits. Renderers decide how they look; the
//! JSON renderer writes them as they are, so field names here are a public,
//! documented interface (docs/output.md).

use serde::Serialize;

mod plan;
pub use plan::*;

use crate::config::BundleType;
use crate::exit::ExitCode;

/// Something that renders events. Implementations are internally locked so
/// the pipeline can share one by reference.
pub trait Reporter: Send + Sync {
    /// Renders one event.
    fn report(&self, event: &Event);

    /// Renders one event of environment `env`, in a wave where several
    /// environments report at once. Renderers mark it with the name (plain
    /// `[ENV] `, JSON `"env"`); one that does not know how says nothing more.
    fn report_in(&self, env: &str, event: &Event) {
        let _ = env;
        self.report(event);
    }
}

/// A reporter for one environment of a wave: everything reported through it
/// reaches `inner` marked with the environment's name, so the pipeline
/// steps (which know nothing of waves) need no change.
pub struct Tagged<'a> {
    /// The command's reporter.
    pub inner: &'a dyn Reporter,
    /// The `[env.NAME]` name.
    pub env: String,
}

impl Reporter for Tagged<'_> {
    fn report(&self, event: &Event) {
        self.inner.report_in(&self.env, event);
    }

    fn report_in(&self, env: &str, event: &Event) {
        self.inner.report_in(env, event);
    }
}

/// Deployment-wide instance counts, as CodeDeploy's `deploymentOverview`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Overview {
    /// Instances not started yet.
    pub pending: i64,
    /// Instances being deployed.
    pub in_progress: i64,
    /// Instances done.
    pub succeeded: i64,
    /// Instances that failed.
    pub failed: i64,
    /// Instances skipped.
    pub skipped: i64,
    /// Instances waiting for traffic (blue/green).
    pub ready: i64,
}

impl Overview {
    /// Every instance the deployment knows about.
    pub fn total(&self) -> i64 {
        self.pending + self.in_progress + self.succeeded + self.failed + self.skipped + self.ready
    }
}

/// How a deployment ended, as far as ferry followed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Created and not followed (`--no-wait`).
    Created,
    /// CodeDeploy says Succeeded.
    Succeeded,
    /// CodeDeploy says Failed.
    Failed,
    /// CodeDeploy says Stopped.
    Stopped,
    /// `--timeout` elapsed first.
    TimedOut,
    /// Blue/green: installed and waiting for traffic to be rerouted.
    Ready,
    /// Failed or stopped, and CodeDeploy's rollback deployment Succeeded:
    /// the group runs the previous revision again (exit 7).
    RolledBack,
    /// Not deployed because the group runs (or is running) a newer build of
    /// the same job (exit 8).
    Superseded,
    /// ferry was interrupted (SIGINT/SIGTERM) while following; what it did
    /// about the deployment is in the `aborted` event (exit 130/143).
    Aborted,
}

impl Outcome {
    /// The exit code the outcome maps to.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Created | Outcome::Succeeded => ExitCode::Success,
            Outcome::Failed => ExitCode::DeploymentFailed,
            Outcome::Stopped => ExitCode::Stopped,
            Outcome::TimedOut => ExitCode::TimedOut,
            Outcome::Ready => ExitCode::Ready,
            Outcome::RolledBack => ExitCode::RolledBack,
            Outcome::Superseded => ExitCode::Superseded,
            // The signal decides between 130 and 143; see `crate::abort`.
            Outcome::Aborted => ExitCode::Interrupted,
        }
    }
}

/// An instance that failed, and the lifecycle events it failed in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailedInstance {
    /// Instance id.
    pub target_id: String,
    /// ApplicationStop, DownloadBundle, …
    pub lifecycle_events: Vec<String>,
}

/// What a release did, for `--output json` and archiving in Jenkins.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Receipt {
    /// ferry.toml environment name.
    pub environment: String,
    /// Role that was assumed.
    pub role_arn: String,
    /// Role session name (CloudTrail).
    pub session_name: String,
    /// Bucket the bundle went to.
    pub bucket: String,
    /// Its key.
    pub key: String,
    /// SHA-256 of the bundle.
    pub sha256: String,
    /// S3 ETag the deployment is pinned to.
    pub etag: String,
    /// S3 version, on versioned buckets.
    pub version_id: Option<String>,
    /// CodeDeploy application.
    pub application: String,
    /// CodeDeploy deployment group.
    pub deployment_group: String,
    /// The deployment; null when the command failed before creating one.
    pub deployment_id: Option<String>,
    /// How it ended.
    pub outcome: Option<Outcome>,
    /// The Jenkins build (BUILD_TAG, else BUILD_NUMBER), when there was one.
    pub build: Option<String>,
    /// The rollback deployment CodeDeploy (or ferry, on abort) started, if any.
    pub rollback_deployment_id: Option<String>,
    /// How the rollback deployment ended, when ferry followed it.
    pub rollback_outcome: Option<Outcome>,
    /// When the command started, UTC (`2026-11-27T21:40:01Z`).
    pub started_at: Option<String>,
    /// When the command ended, UTC.
    pub finished_at: Option<String>,
    /// Milliseconds between the two.
    pub elapsed_ms: Option<u64>,
    /// The signal that aborted the command (`SIGINT`/`SIGTERM`), if any.
    pub signal: Option<String>,
    /// The error the command ended with, if it ended with one.
    pub error: Option<String>,
    /// What ferry did about a SIGINT/SIGTERM, when one came: rewritten as the
    /// stop and the rollback progress, so a SIGKILL at any moment leaves the
    /// last state ferry knew.
    pub abort: Option<Box<AbortRecord>>,
    /// ECS: the image that deployed, by digest (null elsewhere).
    pub image: Option<String>,
    /// ECS: the task definition registered for the release (null elsewhere).
    pub task_definition_arn: Option<String>,
}

/// The receipt's account of an abort (SIGINT/SIGTERM), in whatever step it
/// came.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AbortRecord {
    /// The step the command was in: `bundle`, `assume`, `plan`, `upload`,
    /// `deploy` (CreateDeployment, or queued behind a busy group) or `watch`.
    pub phase: String,
    /// What was done to the deployment: `stop`, `stop-and-rollback`,
    /// `leave`, or `none` when no deployment existed.
    pub action: String,
    /// When the signal arrived, UTC.
    pub received_at: String,
    /// When CodeDeploy accepted StopDeployment, UTC.
    pub stop_requested_at: Option<String>,
    /// Milliseconds from the signal to CodeDeploy accepting StopDeployment.
    pub stop_requested_after_ms: Option<u64>,
    /// The deployment's status as ferry last saw it (InProgress, Stopped, …).
    pub deployment_status: Option<String>,
    /// The rollback deployment's status as ferry last saw it.
    pub rollback_status: Option<String>,
    /// Multipart uploads of the bundle's key that ferry aborted.
    pub uploads_aborted: Option<u32>,
    /// Multipart uploads of that key still open afterwards, as
    /// ListMultipartUploads reported (0: none left to pay for).
    pub uploads_open: Option<u32>,
    /// Whether ferry saw the abort through (the stop and rollback ended, or
    /// the upload was aborted and confirmed) before it exited.
    pub complete: bool,
}

/// How a wave ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaveOutcome {
    /// Every environment of every stage Succeeded (or was created, with
    /// `--no-wait`).
    Succeeded,
    /// An environment failed, or a bake saw a failure: later stages were not
    /// started.
    Halted,
    /// SIGINT/SIGTERM: running deployments were stopped, nothing more started.
    Aborted,
}

/// One environment of a wave, in the wave's receipt: the single-environment
/// receipt's fields, plus where it stood in the wave.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WaveEnvReceipt {
    /// 1-based stage the environment belongs to.
    pub stage: usize,
    /// Whether the wave got as far as this environment's stage.
    pub started: bool,
    /// The environment's exit code, as its own `ferry release` would have
    /// exited (none when it was not started).
    pub exit_code: Option<u8>,
    /// The rollback the wave's policy made ferry deploy, if any (CodeDeploy's
    /// own automatic rollback is `rollback_deployment_id`).
    pub wave_rollback_deployment_id: Option<String>,
    /// How that rollback ended, or why there was none (an error sentence).
    pub wave_rollback_outcome: Option<Outcome>,
    /// Why the wave's rollback could not be made, when it could not.
    pub wave_rollback_error: Option<String>,
    /// Everything a single-environment receipt holds.
    #[serde(flatten)]
    pub receipt: Receipt,
}

/// The receipt of `ferry release --wave`: one file, each environment's
/// outcome in it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WaveReceipt {
    /// The `[wave.NAME]` name.
    pub wave: String,
    /// SHA-256 of the one bundle every environment received.
    pub sha256: String,
    /// The Jenkins build (BUILD_TAG, else BUILD_NUMBER), when there was one.
    pub build: Option<String>,
    /// How the wave ended; null while it runs.
    pub outcome: Option<WaveOutcome>,
    /// The process exit code: the worst of the environments' (see docs/waves.md).
    pub exit_code: Option<u8>,
    /// `failed`, `all` or `none`.
    pub rollback_policy: String,
    /// The stage that halted the wave (1-based), if one did.
    pub halted_at_stage: Option<usize>,
    /// Why it halted, in one sentence.
    pub halted_reason: Option<String>,
    /// The stages, as configured.
    pub stages: Vec<Vec<String>>,
    /// Each environment, in stage order.
    pub envs: Vec<WaveEnvReceipt>,
    /// When the command started, UTC.
    pub started_at: Option<String>,
    /// When the receipt was last written, UTC.
    pub finished_at: Option<String>,
    /// Milliseconds between the two.
    pub elapsed_ms: Option<u64>,
    /// The signal that aborted the wave, if any.
    pub signal: Option<String>,
    /// The error the command ended with, if it ended with one before any
    /// environment was started (a bundle that fails its checks, say).
    pub error: Option<String>,
}

/// One deployment of a group, as `ferry history` lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// The deployment.
    pub deployment_id: String,
    /// When CodeDeploy created it, UTC.
    pub created_at: Option<String>,
    /// When it ended, UTC.
    pub completed_at: Option<String>,
    /// CodeDeploy's status word.
    pub status: String,
    /// `release`, `rollback` (ferry's or CodeDeploy's automatic one), `wave`
    /// (a release of `--wave`), or CodeDeploy's creator for the others
    /// (`autoscaling`, `CloudFormation`, …).
    pub kind: String,
    /// `user`, `autoscaling`, `codeDeployRollback`, …
    pub creator: String,
    /// The Jenkins build: from the deployment description (`ferry build N`)
    /// or the bundle's `ferry-build` metadata.
    pub build: Option<String>,
    /// SHA-256 of the bundle, from ferry's key or the `ferry-sha256` metadata.
    pub sha256: Option<String>,
    /// Bucket of the revision.
    pub bucket: Option<String>,
    /// Key of the revision.
    pub key: Option<String>,
    /// ETag the revision is pinned to.
    pub etag: Option<String>,
    /// The deployment's description.
    pub description: Option<String>,
    /// The rollback CodeDeploy made of it, if any.
    pub rollback_deployment_id: Option<String>,
}

/// One thing that happened. Serialized with an `event` tag, snake_case.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The target role was assumed.
    Assumed {
        /// The role.
        role_arn: String,
        /// The session name.
        session_name: String,
        /// The principal STS reports.
        assumed_arn: String,
    },
    /// The bundle is built (or taken as is) and checked.
    BundleReady {
        /// Local path.
        path: String,
        /// Format.
        bundle_type: BundleType,
        /// Bytes.
        size: u64,
        /// SHA-256, hex.
        sha256: String,
        /// Whether ferry built it from a directory.
        built: bool,
        /// Whether it is the cached bundle of the unchanged directory (nothing
        /// was read or compressed), or, for a ready archive (`built` false),
        /// whether its SHA-256 was known from before (only its CRC-64/NVME
        /// was read again): see `bundle::known`.
        cached: bool,
    },
    /// The upload began.
    UploadStarted {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Bytes to send.
        size: u64,
    },
    /// Bytes sent so far.
    UploadProgress {
        /// Sent.
        sent: u64,
        /// Total.
        total: u64,
    },
    /// The bundle is in the bucket.
    Uploaded {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// ETag without quotes.
        etag: String,
        /// Version, on versioned buckets.
        version_id: Option<String>,
        /// Bytes.
        size: u64,
    },
    /// Lambda: the uploaded code is the function's new version, published
    /// from the exact S3 object and checked against the bundle's SHA-256.
    FunctionPublished {
        /// The function.
        function: String,
        /// The version published from the bundle.
        version: String,
        /// The version the alias points at now (the deployment's current).
        alias_version: String,
        /// The alias.
        alias: String,
        /// Lambda's `CodeSha256` (base64), equal to the bundle's.
        code_sha256: String,
    },
    /// Lambda: the alias's traffic as a deployment moves it; reported each
    /// time the target version's share changes.
    TrafficShifted {
        /// The deployment.
        deployment_id: String,
        /// The function.
        function: String,
        /// The alias.
        alias: String,
        /// The version the alias pointed at.
        current_version: String,
        /// The version traffic moves to.
        target_version: String,
        /// The target version's share, in percent (0 to 100).
        target_percent: f64,
    },
    /// ECS: `--image` pinned to the digest that deploys (a tag resolved
    /// through ECR, which proves the image exists).
    ImageResolved {
        /// The image as given.
        image: String,
        /// `name@sha256:…`: what the task definition names.
        deploys: String,
        /// `sha256:…`.
        digest: String,
        /// Whether ECR confirmed it (false: an image outside ECR, by digest).
        verified: bool,
    },
    /// ECS: the service's task definition (or the repo's file) registered
    /// again with the container's image replaced.
    TaskDefinitionRegistered {
        /// The new revision's ARN.
        task_definition_arn: String,
        /// What it was copied from: the service's task definition ARN or the file.
        copied_from: String,
        /// The container whose image was replaced.
        container: String,
        /// The image it runs now (by digest).
        image: String,
    },
    /// ECS: the service's traffic between its task sets as a deployment
    /// moves it; reported each time the replacement's share changes.
    TaskSetTraffic {
        /// The deployment.
        deployment_id: String,
        /// The target: `CLUSTER:SERVICE`.
        target_id: String,
        /// The replacement (Green) task set's id.
        replacement: String,
        /// Its share of production traffic, in percent (0 to 100).
        replacement_percent: f64,
        /// The original (Blue) task set's share, in percent.
        original_percent: f64,
    },
    /// CodeDeploy accepted the deployment.
    DeploymentCreated {
        /// Its id.
        deployment_id: String,
        /// Application.
        application: String,
        /// Group.
        deployment_group: String,
    },
    /// The deployment's status or counts changed.
    DeploymentStatus {
        /// Its id.
        deployment_id: String,
        /// CodeDeploy's status word (Created, InProgress, Succeeded, …).
        status: String,
        /// Instance counts.
        overview: Overview,
    },
    /// A lifecycle event of one instance changed status (fleets of up to 50).
    TargetEventChanged {
        /// The deployment.
        deployment_id: String,
        /// Instance id.
        target_id: String,
        /// ApplicationStop, DownloadBundle, …
        lifecycle_event: String,
        /// InProgress, Succeeded, Failed, Skipped.
        status: String,
        /// How long the event took, once it ended.
        duration_ms: Option<u64>,
        /// Where the event stands among the instance's lifecycle events
        /// (1-based), and how many it runs: the live board's bar.
        position: u32,
        /// How many lifecycle events the instance runs in this deployment.
        events_total: u32,
    },
    /// An instance reached its end in this deployment (fleets of up to 50).
    TargetFinished {
        /// The deployment.
        deployment_id: String,
        /// Instance id.
        target_id: String,
        /// Succeeded, Failed, Skipped or Ready.
        status: String,
    },
    /// An instance was skipped: CodeDeploy will not deploy to it (the
    /// deployment failed or stopped before its turn).
    TargetSkipped {
        /// The deployment.
        deployment_id: String,
        /// Instance id.
        target_id: String,
    },
    /// A blue/green deployment's instance, first seen: which environment it
    /// belongs to. Reported before the instance's first event change.
    TargetLabelled {
        /// The deployment.
        deployment_id: String,
        /// Instance id.
        target_id: String,
        /// `Blue` (the original environment) or `Green` (the replacement).
        label: String,
    },
    /// A lifecycle event failed on an instance.
    LifecycleFailed {
        /// The deployment.
        deployment_id: String,
        /// Instance id.
        target_id: String,
        /// ApplicationStop, DownloadBundle, …
        lifecycle_event: String,
        /// CodeDeploy's diagnostics error code.
        error_code: Option<String>,
        /// The hook script, when one ran.
        script_name: Option<String>,
        /// The diagnostics message.
        message: Option<String>,
        /// The script's last output.
        log_tail: Option<String>,
    },
    /// The deployment reached a final state (or ferry stopped following it).
    Finished {
        /// The deployment.
        deployment_id: String,
        /// How it ended.
        outcome: Outcome,
        /// CodeDeploy's error code and message, when it failed; what was
        /// still running, when it timed out.
        error: Option<String>,
        /// Final instance counts.
        overview: Overview,
        /// Instances that failed, with their failed events.
        failed_instances: Vec<FailedInstance>,
        /// How long the deployment took: CodeDeploy's createTime to
        /// completeTime when it gives both, else how long ferry followed it.
        elapsed_ms: u64,
    },
    /// CodeDeploy started an automatic rollback of a deployment that failed
    /// or was stopped; ferry follows it next.
    RollbackStarted {
        /// The deployment that failed or stopped.
        deployment_id: String,
        /// The rollback deployment (`rollbackInfo.rollbackDeploymentId`).
        rollback_deployment_id: String,
    },
    /// The last word on a deployment CodeDeploy rolled back: how it ended,
    /// how its rollback ended, and the exit code, so the log does not end
    /// with the rollback's "succeeded".
    Verdict {
        /// The deployment that failed or stopped.
        deployment_id: String,
        /// How it ended (failed or stopped).
        deployment_outcome: Outcome,
        /// The rollback deployment.
        rollback_deployment_id: String,
        /// How the rollback ended.
        rollback_outcome: Outcome,
        /// The combined outcome (rolled back, failed, timed out).
        outcome: Outcome,
        /// The process exit code it maps to.
        exit_code: u8,
    },
    /// CodeDeploy did not roll back a deployment that failed or was stopped.
    RollbackSkipped {
        /// The deployment.
        deployment_id: String,
        /// CodeDeploy's `rollbackMessage`, or why ferry thinks none came.
        reason: String,
    },
    /// `ferry rollback`: what is about to be deployed in place of what.
    RollbackPlanned {
        /// Group.
        deployment_group: String,
        /// The deployment whose revision the group runs now, if known.
        from_deployment_id: Option<String>,
        /// Its revision, `s3://bucket/key`.
        from_revision: Option<String>,
        /// The deployment whose revision is restored, if it came from one.
        to_deployment_id: Option<String>,
        /// The revision restored, `s3://bucket/key`.
        to_revision: String,
        /// The eTag it is pinned to.
        to_etag: Option<String>,
        /// The object version it is pinned to.
        to_version_id: Option<String>,
    },
    /// ContinueDeployment was accepted: a blue/green deployment reroutes traffic.
    ContinueRequested {
        /// The deployment.
        deployment_id: String,
        /// Which wait ended: `ready` (traffic is rerouted) or `termination`
        /// (the original instances are terminated now).
        wait: String,
    },
    /// StopDeployment was accepted.
    StopRequested {
        /// The deployment.
        deployment_id: String,
        /// Whether CodeDeploy was asked to roll back (`None`: the group's setting).
        rollback: Option<bool>,
    },
    /// A signal arrived while following a deployment.
    Aborting {
        /// `SIGINT` or `SIGTERM`.
        signal: String,
        /// The deployment.
        deployment_id: String,
        /// `stop`, `stop-and-rollback` or `leave`.
        action: String,
    },
    /// A signal arrived before a deployment existed (bundling, assuming the
    /// role, uploading, or creating the deployment): the work was stopped.
    Interrupted {
        /// `SIGINT` or `SIGTERM`.
        signal: String,
        /// The step that was stopped (see [`AbortRecord::phase`]).
        phase: String,
        /// What that means for the release, in one sentence.
        detail: String,
    },
    /// The multipart upload of an interrupted release was aborted.
    UploadAborted {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// The upload ids aborted.
        upload_ids: Vec<String>,
        /// Uploads of the key still open afterwards (0: confirmed none).
        open: u32,
    },
    /// What the abort achieved, within its time bound.
    Aborted {
        /// `SIGINT` or `SIGTERM`.
        signal: String,
        /// The deployment.
        deployment_id: String,
        /// Its status when ferry gave up or finished (Stopped, InProgress, …).
        status: String,
        /// The rollback deployment, if one started.
        rollback_deployment_id: Option<String>,
        /// The rollback's status, if one started.
        rollback_status: Option<String>,
    },
    /// CreateDeployment met another deployment in the group; ferry waits for it.
    Queued {
        /// The running deployment.
        deployment_id: String,
        /// Who started it (`user`, `codeDeployRollback`, …).
        creator: Option<String>,
        /// Its description (ferry's carries the build).
        description: Option<String>,
        /// How long ferry will wait at most.
        timeout_s: u64,
    },
    /// Not deployed: the group has a newer build of the same job.
    Superseded {
        /// The deployment carrying the newer build.
        deployment_id: String,
        /// This build.
        build: u64,
        /// The newer one.
        newer_build: u64,
    },
    /// CreateDeployment's answer was lost, and CodeDeploy turned out to have
    /// created the deployment anyway: ferry follows that one instead of
    /// creating a duplicate.
    DeploymentAdopted {
        /// The deployment.
        deployment_id: String,
        /// Why ferry believes it is this release's.
        reason: String,
    },
    /// One row of `ferry history`.
    HistoryEntry(HistoryEntry),
    /// `ferry status`'s answer: the deployment's state (text mode prints the
    /// word on stdout) and the exit code it maps to.
    StatusRead {
        /// The deployment.
        deployment_id: String,
        /// CodeDeploy's status word.
        status: String,
        /// The exit code of the state, as `release` would end with it.
        exit_code: u8,
    },
    /// The receipt was written.
    ReceiptWritten {
        /// The file.
        path: String,
    },
    /// `ferry bundle` wrote the bundle file (its SHA-256 is the command's result).
    BundleWritten {
        /// The file written.
        path: String,
        /// SHA-256, hex.
        sha256: String,
    },
    /// `ferry upload` put the bundle in the bucket (the URI is the command's result).
    Staged {
        /// `s3://bucket/key`.
        uri: String,
        /// ETag without quotes, to pin a deployment to.
        etag: String,
        /// Version, on versioned buckets.
        version_id: Option<String>,
    },
    /// One problem `ferry check` (or a release) found in appspec.yml.
    AppSpecProblem {
        /// The appspec checked.
        file: String,
        /// 1-based line, where known.
        line: Option<usize>,
        /// Cause and fix.
        message: String,
    },
    /// `ferry check` finished.
    Checked {
        /// The appspec checked.
        file: String,
        /// How many problems were found.
        problems: usize,
    },
    /// A multipart upload left by an earlier run is continued.
    UploadResumed {
        /// S3's upload id.
        upload_id: String,
        /// Parts already in S3 and verified, not sent again.
        parts: u32,
        /// Their bytes.
        bytes: u64,
    },
    /// S3 answered that a body's bytes arrived damaged (`BadDigest`): ferry
    /// re-reads it from the local file and sends it again.
    UploadResent {
        /// The part, or none for the single PUT of a small bundle.
        part: Option<u32>,
        /// The send about to be made (2 is the first re-send).
        attempt: u32,
        /// Sends allowed for one body.
        attempts: u32,
        /// S3's code and message.
        detail: String,
    },
    /// The bucket already holds exactly this bundle (checksum compared); nothing was sent.
    UploadSkipped {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
    /// The command's result.
    Receipt(Receipt),
    /// `ferry release --wave`: the command's result, every environment in it.
    WaveReceipt(WaveReceipt),
    /// A wave begins: the bundle is built once, for every environment.
    WaveStarted {
        /// The `[wave.NAME]` name.
        wave: String,
        /// The stages in order.
        stages: Vec<Vec<String>>,
        /// SHA-256 of the bundle every environment receives.
        sha256: String,
        /// The rollback policy (`failed`, `all`, `none`).
        rollback: String,
    },
    /// A stage begins: its environments are released in parallel.
    StageStarted {
        /// 1-based.
        stage: usize,
        /// How many stages the wave has.
        stages: usize,
        /// Its environments.
        envs: Vec<String>,
    },
    /// Every environment of a stage ended well.
    StageDone {
        /// 1-based.
        stage: usize,
        /// Its environments.
        envs: Vec<String>,
    },
    /// The stage's groups must stay healthy this long before the next stage.
    BakeStarted {
        /// 1-based.
        stage: usize,
        /// Seconds.
        duration_s: u64,
        /// The groups watched, `application/group`.
        groups: Vec<String>,
    },
    /// The bake ended with no Failed or Stopped deployment in its groups.
    BakeDone {
        /// 1-based.
        stage: usize,
    },
    /// The wave stops: later stages are not started.
    WaveHalted {
        /// The stage that failed (1-based).
        stage: usize,
        /// The environments that failed, or whose group failed during the bake.
        envs: Vec<String>,
        /// Why, in one sentence.
        reason: String,
        /// What the rollback policy rolls back now.
        rollback: Vec<String>,
    },
    /// The wave ended.
    WaveFinished {
        /// The `[wave.NAME]` name.
        wave: String,
        /// How.
        outcome: WaveOutcome,
        /// The process exit code.
        exit_code: u8,
    },
    /// `ferry plan` / `ferry release --plan`: what the release changes
    /// against what the group runs now (the command's result).
    Plan(ReleasePlan),
    /// An environment marked `confirm = true` waits for its name to be
    /// typed on the terminal before the release goes on.
    ConfirmRequested {
        /// The environment to type.
        environment: String,
    },
    /// ferry changed or noticed something the user should know about (a
    /// clamped duration, lost contact with CodeDeploy, …).
    Warning {
        /// One sentence: what, why, and what to do.
        message: String,
    },
    /// What the assumed session will carry, as CloudTrail will show it.
    SessionPlanned {
        /// Roles assumed, in order (the last is the environment's role).
        hops: Vec<String>,
        /// Requested lifetime of each set of credentials.
        duration_seconds: u64,
        /// Session tags as `key=value`.
        tags: Vec<String>,
        /// `SourceIdentity`, when set.
        source_identity: Option<String>,
        /// Whether a generated session policy narrows the session.
        session_policy: bool,
    },
    /// One `ferry doctor` check.
    Check {
        /// What was checked (`source identity`, `assume role`, `bucket`, …).
        name: String,
        /// Whether it passed.
        ok: bool,
        /// What was found.
        detail: String,
        /// How to fix it, when it failed.
        fix: Option<String>,
    },
    /// The command failed.
    Error {
        /// Which step (config, assume, bundle, upload, deploy, watch).
        class: String,
        /// The process exit code.
        exit_code: u8,
        /// The one-paragraph explanation.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Keeps what it is given: `(env, event tag)` pairs.
    #[derive(Default)]
    struct Seen(Mutex<Vec<(Option<String>, String)>>);

    impl Reporter for Seen {
        fn report(&self, event: &Event) {
            self.0.lock().unwrap().push((None, tag(event)));
        }
        fn report_in(&self, env: &str, event: &Event) {
            self.0.lock().unwrap().push((Some(env.to_string()), tag(event)));
        }
    }

    fn tag(event: &Event) -> String {
        serde_json::to_value(event).unwrap()["event"].as_str().unwrap().to_string()
    }

    #[test]
    fn events_are_tagged_with_their_snake_case_names_as_docs_output_md_lists_them() {
        let events = [
            (Event::Warning { message: "w".into() }, "warning"),
            (Event::UploadSkipped { bucket: "b".into(), key: "k".into() }, "upload_skipped"),
            (Event::Receipt(Receipt::default()), "receipt"),
            (Event::WaveReceipt(WaveReceipt::default()), "wave_receipt"),
            (Event::BakeDone { stage: 1 }, "bake_done"),
            (
                Event::Verdict {
                    deployment_id: "d-1".into(),
                    deployment_outcome: Outcome::Failed,
                    rollback_deployment_id: "d-2".into(),
                    rollback_outcome: Outcome::Succeeded,
                    outcome: Outcome::RolledBack,
                    exit_code: 7,
                },
                "verdict",
            ),
        ];
        let doc = include_str!("../docs/output.md");
        for (event, name) in events {
            assert_eq!(tag(&event), name);
            assert!(doc.contains(&format!("`{name}`")), "docs/output.md does not list `{name}`");
        }
    }

    #[test]
    fn a_receipts_fields_keep_their_documented_names() {
        let r = Receipt { deployment_id: Some("d-1".into()), outcome: Some(Outcome::Created), ..Default::default() };
        let v = serde_json::to_value(Event::Receipt(r)).unwrap();
        assert_eq!(v["deployment_id"], "d-1", "{v}");
        assert_eq!(v["outcome"], "created", "{v}");
    }

    #[test]
    fn a_tagged_reporter_marks_every_event_with_its_environment_and_keeps_an_inner_one() {
        let seen = Seen::default();
        let eu = Tagged { inner: &seen, env: "eu".into() };
        eu.report(&Event::BakeDone { stage: 1 });
        // A tagged reporter inside another keeps the name it was given.
        let nested = Tagged { inner: &eu, env: "us".into() };
        nested.report(&Event::Warning { message: "x".into() });
        assert_eq!(
            *seen.0.lock().unwrap(),
            [(Some("eu".to_string()), "bake_done".to_string()), (Some("us".to_string()), "warning".to_string())]
        );
    }
}
