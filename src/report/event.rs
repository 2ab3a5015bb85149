//! The typed events the pipeline emits. Renderers decide how they look; the
//! JSON renderer writes them as they are, so field names here are a public,
//! documented interface (docs/output.md).

use serde::Serialize;

use crate::bundle::BundleType;

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
    /// Created and not followed (no `--wait`).
    Created,
    /// CodeDeploy says Succeeded.
    Succeeded,
    /// CodeDeploy says Failed.
    Failed,
    /// CodeDeploy says Stopped.
    Stopped,
    /// `--timeout` elapsed first.
    TimedOut,
}

impl Outcome {
    /// The exit code the outcome maps to.
    pub fn exit_code(self) -> crate::error::ExitCode {
        use crate::error::ExitCode;
        match self {
            Outcome::Created | Outcome::Succeeded => ExitCode::Success,
            Outcome::Failed => ExitCode::DeploymentFailed,
            Outcome::Stopped => ExitCode::Stopped,
            Outcome::TimedOut => ExitCode::TimedOut,
        }
    }
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
    /// The deployment.
    pub deployment_id: String,
    /// How it ended.
    pub outcome: Option<Outcome>,
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
        /// CodeDeploy's error code and message, when it failed.
        error: Option<String>,
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
    /// The bucket already holds exactly this bundle (checksum compared); nothing was sent.
    UploadSkipped {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
    /// The command's result.
    Receipt(Receipt),
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
