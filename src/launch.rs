//! launch: the end of `ferry release` and `ferry rollback`, shared: create
//! the deployment (queued behind a busy group, never twice), then follow it
//! and its rollback (unless `--no-wait`), or apply `--on-abort` on a signal.
//! Everything learnt goes into the receipt as it is learnt, so a failure or
//! an abort half-way still leaves a truthful receipt, and into the release's
//! [`Pending`] record (held by the keeper until the receipt is final), so a
//! re-run after ferry was killed follows the deployment this run made
//! instead of making another.

use std::time::Duration;

use crate::abort::{self, Abort, Guard, OnAbort, Phase};
use crate::event::{Event, Outcome, Reporter};
use crate::exit::ExitCode;
use crate::queue::{self, Created, Pending, QueueError, Request};
use crate::receipt::Keeper;
use crate::watch::{WatchError, WatchOptions};

/// How long a CreateDeployment already in flight when a signal comes is
/// given to answer, so the deployment it made is known and can be stopped.
const CREATE_GRACE: Duration = Duration::from_secs(1);

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
    /// Follow it at all (the default; `--no-wait` turns it off).
    pub wait: bool,
    /// Timeout and blue/green handling.
    pub watch: WatchOptions,
    /// What a signal does to the deployment.
    pub on_abort: OnAbort,
    /// How long the abort may take.
    pub abort_grace: Duration,
}

/// Creates the deployment and, unless `--no-wait`, follows it; returns the
/// exit code. `guard` has caught SIGINT/SIGTERM since the command began.
pub async fn launch(
    cd: &aws_sdk_codedeploy::Client,
    request: &Request<'_>,
    following: &Following,
    guard: &mut Guard,
    keeper: &mut Keeper,
    reporter: &dyn Reporter,
) -> Result<ExitCode, LaunchError> {
    let abort = Abort { cd, on_abort: following.on_abort, grace: following.abort_grace };
    // Held by the keeper until the receipt is final: while it is, no re-run
    // adopts from it; dropped (the run ended by itself), it is removed.
    keeper.pending = Pending::take(request, reporter);
    let prior = keeper.pending.as_ref().map(|p| p.prior().clone()).unwrap_or_default();
    if let Some(p) = keeper.pending.as_mut() {
        p.add_token(queue::process_token());
    }
    let create = queue::create(cd, request, &prior, reporter);
    tokio::pin!(create);
    let first = match guard.signals() {
        None => Ok(create.as_mut().await),
        Some(signals) => tokio::select! {
            created = create.as_mut() => Ok(created),
            sig = signals.recv() => Err(sig),
        },
    };
    let created = match first {
        Ok(created) => created?,
        Err(sig) => return Ok(abort_create(&abort, request, create, sig, keeper, reporter).await),
    };
    let Some(deployment_id) = created_id(created, request, keeper, reporter) else {
        return Ok(ExitCode::Superseded);
    };
    if let Some(p) = keeper.pending.as_mut() {
        p.set_deployment(&deployment_id);
    }
    if !following.wait {
        keeper.receipt.outcome = Some(Outcome::Created);
        // Aborted now, the deployment was already handed to CodeDeploy and
        // ferry was not going to follow it: nothing more to do.
        return Ok(ExitCode::Success);
    }
    let ended = match guard.signals() {
        Some(signals) => abort::follow_or_abort(&abort, &deployment_id, &following.watch, signals, keeper, reporter).await?,
        None => {
            abort::Ended { followed: crate::follow::follow(cd, &deployment_id, &following.watch, reporter).await?, signal: None }
        }
    };
    Ok(ended.record(&mut keeper.receipt))
}

/// Reports and records a created (or adopted) deployment; `None` when
/// superseded.
fn created_id(created: Created, request: &Request<'_>, keeper: &mut Keeper, reporter: &dyn Reporter) -> Option<String> {
    let id = match created {
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
            keeper.receipt.outcome = Some(Outcome::Superseded);
            return None;
        }
    };
    keeper.receipt.deployment_id = Some(id.clone());
    Some(id)
}

/// A signal came while the deployment was being created (CreateDeployment
/// in flight, or queued behind a busy group). A CreateDeployment already
/// sent may have reached CodeDeploy: its answer is awaited for
/// [`CREATE_GRACE`], and if none comes the group is searched for the
/// deployment it made. Whatever was created is aborted like a running one.
async fn abort_create<F>(
    abort: &Abort<'_>,
    request: &Request<'_>,
    mut create: std::pin::Pin<&mut F>,
    sig: abort::Received,
    keeper: &mut Keeper,
    reporter: &dyn Reporter,
) -> ExitCode
where
    F: std::future::Future<Output = Result<Created, QueueError>>,
{
    // The receipt first: a SIGKILL may follow at any moment.
    abort::begin(keeper, sig, Phase::Deploy, abort.on_abort.as_str(), reporter);
    let found = match tokio::time::timeout(CREATE_GRACE, create.as_mut()).await {
        Ok(Ok(created)) => created_id(created, request, keeper, reporter),
        Ok(Err(_)) => None,
        Err(_) => queue::find_created(abort.cd, request).await.ok().flatten().inspect(|id| {
            reporter.report(&Event::DeploymentAdopted {
                deployment_id: id.clone(),
                reason: "CreateDeployment was in flight when the signal came, and CodeDeploy had created it".into(),
            });
            keeper.receipt.deployment_id = Some(id.clone());
        }),
    };
    match found {
        Some(id) => {
            let ended = abort::abort_deployment(abort, &id, sig, Phase::Deploy, None, keeper, reporter).await;
            ended.record(&mut keeper.receipt)
        }
        None => abort::interrupted(keeper, sig, Phase::Deploy, reporter),
    }
}
