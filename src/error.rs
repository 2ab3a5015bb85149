//! Exit codes and the top-level error that every command returns.
//!
//! Each pipeline step has its own error enum (see `config`, `assume`, `bundle`,
//! `upload`, `deploy`, `watch`); this module only gathers them so `main` can
//! print one paragraph and exit with the code from the documented table.

use std::error::Error as StdError;
use std::fmt;

/// The process exit codes ferry documents in README.md and docs/jenkins.md.
///
/// Jenkins only sees the number, so each one means exactly one thing for the
/// build: retry, fix the input, or look at the deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitCode {
    /// The command did what was asked (for a release: the deployment Succeeded,
    /// or it was created and `--wait` was not given).
    Success,
    /// Bad input: command line, ferry.toml, bundle or appspec. Nothing was sent to AWS.
    Usage,
    /// AWS refused or could not be reached: credentials, permissions, endpoints.
    Aws,
    /// The deployment ran and failed.
    DeploymentFailed,
    /// The deployment was stopped (by someone, or by CodeDeploy's rollback).
    Stopped,
    /// `--timeout` elapsed before the deployment reached a final state.
    TimedOut,
    /// A blue/green deployment is Ready: installed, waiting for traffic to be rerouted.
    Ready,
    /// The deployment failed or was stopped, and CodeDeploy's rollback
    /// deployment then Succeeded: the group runs the previous revision again.
    /// (A rollback that fails too is 3, [`ExitCode::DeploymentFailed`].)
    RolledBack,
    /// Not deployed: the group already runs, or is running, a newer build of
    /// the same job (see docs/rollback.md, "Busy group"). Nothing was changed.
    Superseded,
    /// Interrupted by SIGINT (Ctrl-C).
    Interrupted,
    /// Terminated by SIGTERM (Jenkins' abort).
    Terminated,
    /// `ferry exec`: the command's own exit status (128+N if signal N killed
    /// it; 127 if it could not be found, 126 if it could not be run).
    Child(u8),
}

impl ExitCode {
    /// The numeric process exit status.
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Usage => 1,
            ExitCode::Aws => 2,
            ExitCode::DeploymentFailed => 3,
            ExitCode::Stopped => 4,
            ExitCode::TimedOut => 5,
            ExitCode::Ready => 6,
            ExitCode::RolledBack => 7,
            ExitCode::Superseded => 8,
            ExitCode::Interrupted => 130,
            ExitCode::Terminated => 143,
            ExitCode::Child(code) => code,
        }
    }
}

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
    /// Writing ferry's own output failed (e.g. stdout closed).
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
    /// Credentials could not be handed to another program.
    #[error(transparent)]
    Handoff(#[from] crate::handoff::HandoffError),
    /// A rollback, stop or history request could not be carried out.
    #[error(transparent)]
    Rollback(#[from] crate::rollback::RollbackError),
    /// No deployment was created: the group stayed busy, or CodeDeploy refused.
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
    /// The receipt file could not be written.
    #[error(transparent)]
    Receipt(#[from] crate::receipt::ReceiptError),
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
            Error::Output(_) => ExitCode::Usage,
            Error::Handoff(e) => e.exit_code(),
            Error::Rollback(e) => e.exit_code(),
            Error::Queue(e) => e.exit_code(),
            Error::Receipt(_) => ExitCode::Usage,
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
            Error::Output(_) => "output",
            Error::Handoff(_) => "handoff",
            Error::Rollback(_) => "rollback",
            Error::Queue(_) => "deploy",
            Error::Receipt(_) => "receipt",
        }
    }
}

/// Renders an AWS SDK error as one readable sentence: the service's error code
/// and message when the service answered, the connection problem when it did
/// not.
///
/// The SDK's own `Display` for `SdkError` says only "service error"; the
/// useful part sits in the source chain.
pub fn describe_sdk_error<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + StdError + 'static,
    R: fmt::Debug + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            match (e.code(), e.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_string(),
                _ => chain(e),
            }
        }
        other => chain(other),
    }
}

/// Whether an SDK error means the endpoint could not be reached at all
/// (connection refused, DNS, timeout) rather than an answer from AWS.
pub fn is_unreachable<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> bool {
    use aws_smithy_runtime_api::client::result::SdkError;
    match err {
        SdkError::DispatchFailure(d) => d.is_io() || d.is_timeout(),
        SdkError::TimeoutError(_) => true,
        _ => false,
    }
}

/// Joins an error and its sources with ": ", skipping repeats, so nested
/// SDK errors read as one sentence.
pub fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// Finds the first error of type `T` in `err`'s source chain.
pub fn find_source<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_match_the_documented_table() {
        let table = [
            (ExitCode::Success, 0),
            (ExitCode::Usage, 1),
            (ExitCode::Aws, 2),
            (ExitCode::DeploymentFailed, 3),
            (ExitCode::Stopped, 4),
            (ExitCode::TimedOut, 5),
            (ExitCode::Ready, 6),
            (ExitCode::RolledBack, 7),
            (ExitCode::Superseded, 8),
            (ExitCode::Interrupted, 130),
            (ExitCode::Terminated, 143),
        ];
        for (code, n) in table {
            assert_eq!(code.code(), n, "{code:?}");
        }
    }

    #[test]
    fn chain_joins_sources_without_repeating_them() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("connection refused"));
        assert_eq!(chain(&e), "outer: connection refused");
    }
}
