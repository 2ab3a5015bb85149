//! The error every command returns.
//!
//! Each stage and orchestration step has its own error enum (see `config`,
//! `assume`, `bundle`, `upload`, `deploy`, `watch`, `launch`, …); the face
//! gathers them here so `run` can report one paragraph and exit with the code
//! from the documented table ([`ExitCode`]).

use crate::exit::ExitCode;

/// Any error a ferry command can end with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// ferry.toml or the command line was wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The production role could not be assumed.
    #[error(transparent)]
    Assume(#[from] crate::assume::AssumeError),
    /// The bundle could not be built or failed its checks.
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    /// The bundle could not be put into the production bucket.
    #[error(transparent)]
    Upload(#[from] crate::upload::UploadError),
    /// CodeDeploy refused to create the deployment.
    #[error(transparent)]
    Deploy(#[from] crate::deploy::DeployError),
    /// Following the deployment failed (not the deployment itself).
    #[error(transparent)]
    Watch(#[from] crate::watch::WatchError),
    /// Credentials could not be handed to another program.
    #[error(transparent)]
    Handoff(#[from] crate::handoff::HandoffError),
    /// A rollback, stop or history request could not be carried out.
    #[error(transparent)]
    Rollback(#[from] crate::rollback::RollbackError),
    /// No deployment was created: the group stayed busy, or CodeDeploy refused.
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
    /// A bundle already in S3 could not be promoted.
    #[error(transparent)]
    Promote(#[from] crate::promote::PromoteError),
    /// A Lambda release's code was not published.
    #[error(transparent)]
    Lambda(#[from] crate::lambda::LambdaError),
    /// An ECS release's task definition was not registered.
    #[error(transparent)]
    Ecs(#[from] crate::ecs::EcsError),
    /// The receipt file could not be written.
    #[error(transparent)]
    Receipt(#[from] crate::receipt::ReceiptError),
    /// `--timeout` ran out before the command got as far as a deployment.
    #[error(transparent)]
    Deadline(#[from] crate::deadline::Passed),
    /// No plan could be made, or a `confirm = true` release was not confirmed.
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// `ferry release` with neither a bundle nor `--image`.
    #[error(
        "ferry release needs what to release: the application directory or a .zip/.tar/.tgz bundle, or `--image URI` \
         for an ECS environment (compute_platform = \"ECS\")."
    )]
    NothingToRelease,
    /// `--junit` names a path the report cannot be written to.
    /// `--env` on the command line beside `--wave`, which names its own
    /// environments (`FERRY_ENV` alone is not a conflict: it is ignored).
    #[error(
        "--env {env} and --wave {wave} both pick where to deploy, and a wave names its environments itself. Drop \
         --env (a FERRY_ENV left in the environment is ignored with --wave), or release to `{env}` alone without --wave."
    )]
    EnvWithWave {
        /// The `--env` given.
        env: String,
        /// The `--wave` given.
        wave: String,
    },
    /// `ferry continue` on a deployment that has ended: said as `ferry stop`
    /// says it, with the same exit code (1).
    #[error(
        "deployment {deployment_id} has already ended ({status}); there is nothing to continue. `ferry status {deployment_id}` shows how it ended."
    )]
    AlreadyEnded {
        /// The deployment.
        deployment_id: String,
        /// Its final status.
        status: String,
    },
    #[error("cannot write the JUnit report {path}: {reason}")]
    Junit {
        /// The path given.
        path: String,
        /// Why not, and the fix.
        reason: String,
    },
}

impl Error {
    /// Which row of the exit-code table this error belongs to.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config(_) | Error::Bundle(_) => ExitCode::Usage,
            Error::Assume(e) => e.exit_code(),
            Error::Upload(e) => e.exit_code(),
            Error::Deploy(e) => e.exit_code(),
            Error::Watch(_) => ExitCode::Aws,
            Error::Handoff(e) => e.exit_code(),
            Error::Rollback(e) => e.exit_code(),
            Error::Queue(e) => e.exit_code(),
            Error::Receipt(_) => ExitCode::Usage,
            Error::Promote(e) => e.exit_code(),
            Error::Lambda(e) => e.exit_code(),
            Error::Ecs(e) => e.exit_code(),
            Error::Deadline(_) => ExitCode::TimedOut,
            Error::Plan(e) => e.exit_code(),
            Error::Junit { .. } | Error::EnvWithWave { .. } | Error::AlreadyEnded { .. } | Error::NothingToRelease => {
                ExitCode::Usage
            }
        }
    }

    /// A short stable name for the kind of error, used in `--output json` and tests.
    pub fn class(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Assume(_) => "assume",
            Error::Bundle(_) => "bundle",
            Error::Upload(_) => "upload",
            Error::Deploy(_) => "deploy",
            Error::Watch(_) => "watch",
            Error::Handoff(_) => "handoff",
            Error::Rollback(_) => "rollback",
            Error::Queue(_) => "deploy",
            Error::Receipt(_) => "receipt",
            Error::Promote(_) => "upload",
            Error::Lambda(_) => "lambda",
            Error::Ecs(crate::ecs::EcsError::BadImage { .. } | crate::ecs::EcsError::Platform(_)) => "config",
            Error::Ecs(_) => "ecs",
            Error::Deadline(_) => "timeout",
            Error::Plan(crate::plan::PlanError::NotConfirmed(_)) => "confirm",
            Error::Plan(_) => "plan",
            Error::Junit { .. } => "junit",
            Error::EnvWithWave { .. } | Error::NothingToRelease => "config",
            Error::AlreadyEnded { .. } => "rollback",
        }
    }
}

impl From<crate::launch::LaunchError> for Error {
    fn from(e: crate::launch::LaunchError) -> Error {
        match e {
            crate::launch::LaunchError::Queue(e) => Error::Queue(e),
            crate::launch::LaunchError::Watch(e) => Error::Watch(e),
        }
    }
}

impl From<crate::pipeline::PipelineError> for Error {
    fn from(e: crate::pipeline::PipelineError) -> Error {
        use crate::pipeline::PipelineError as P;
        match e {
            P::Assume(e) => Error::Assume(e),
            P::Deadline(e) => Error::Deadline(e),
            P::Upload(e) => Error::Upload(e),
            P::Promote(e) => Error::Promote(e),
            P::Lambda(e) => Error::Lambda(e),
            P::Ecs(e) => Error::Ecs(e),
            P::Launch(e) => e.into(),
        }
    }
}
