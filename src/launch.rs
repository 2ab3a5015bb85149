//! launch: the end of `ferry release` and `ferry rollback`, shared: create
//! the deployment (queued behind a busy group, never twice), then with
//! `--wait` follow it and its rollback, or apply `--on-abort` on a signal.
//! Everything learnt goes into the receipt as it is learnt, so a failure or
//! an abort half-way still leaves a truthful receipt.

use std::time::Duration;

use crate::abort::{self, OnAbort, Signals};
use crate::event::{Event, Outcome, Receipt, Reporter};
use crate::exit::ExitCode;
use crate::queue::{self, Created, QueueError, Request};
use crate::watch::{WatchError, WatchOptions};

/// Why a launch ended without an outcome to report.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// No deployment was created.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The deployment exists, but following it failed.
    #[error(transparent)]
    Watch(#[from] WatchError),
}

/// How to follow the deployment once created.
#[derive(Clone, Debug)]
pub struct Following {
    /// Follow it at all (`--wait`).
    pub wait: bool,
    /// Timeout and blue/green handling.
    pub watch: WatchOptions,
    /// What a signal does to the deployment.
    pub on_abort: OnAbort,
    /// How long the abort may take.
    pub abort_grace: Duration,
}

/// Creates the deployment and, with `--wait`, follows it; returns the exit code.
pub async fn launch(
    cd: &aws_sdk_codedeploy::Client,
    request: &Request<'_>,
    following: &Following,
    receipt: &mut Receipt,
    reporter: &dyn Reporter,
) -> Result<ExitCode, LaunchError> {
    // Caught from before CreateDeployment, so an abort that lands while it is
    // in flight is handled once the deployment id is known.
    let mut signals = if following.wait {
        match Signals::install() {
            Ok(s) => Some(s),
            Err(e) => {
                reporter.report(&Event::Warning {
                    message: format!("cannot catch SIGINT/SIGTERM ({e}); an abort will not stop the deployment"),
                });
                None
            }
        }
    } else {
        None
    };
    let created = match signals.as_mut() {
        None => queue::create(cd, request, reporter).await?,
        Some(signals) => tokio::select! {
            created = queue::create(cd, request, reporter) => created?,
            sig = signals.recv() => {
                reporter.report(&Event::Warning {
                    message: format!("{} received before a deployment was created; nothing was deployed", sig.name()),
                });
                receipt.outcome = Some(Outcome::Aborted);
                receipt.signal = Some(sig.name().into());
                return Ok(sig.exit_code());
            }
        },
    };
    let deployment_id = match created {
        Created::New(id) => {
            reporter.report(&Event::DeploymentCreated {
                deployment_id: id.clone(),
                application: request.env.application.clone(),
                deployment_group: request.env.deployment_group.clone(),
            });
            id
        }
        Created::Adopted(id) => id,
        Created::Superseded { .. } => {
            receipt.outcome = Some(Outcome::Superseded);
            return Ok(ExitCode::Superseded);
        }
    };
    receipt.deployment_id = deployment_id.clone();
    let Some(signals) = signals.as_mut() else {
        receipt.outcome = Some(Outcome::Created);
        return Ok(ExitCode::Success);
    };
    let ended = abort::follow_or_abort(
        cd,
        &deployment_id,
        &following.watch,
        following.on_abort,
        following.abort_grace,
        signals,
        reporter,
    )
    .await?;
    Ok(ended.record(receipt))
}
