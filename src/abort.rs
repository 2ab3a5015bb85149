//! abort: what ferry does when Jenkins aborts the build (SIGTERM) or someone
//! presses Ctrl-C (SIGINT), in whatever step the command is.
//!
//! Jenkins' abort and `timeout {}` send SIGTERM to the `sh` step's processes
//! and SIGKILL 5 s later (`SoftKillWaitSeconds`). So [`Guard`] catches both
//! signals from the first line of `release`/`rollback`, and the work is
//! stopped wherever it is:
//!
//! - before a deployment exists (bundling, assuming, uploading): the step is
//!   dropped, its leftovers cleaned (an open multipart upload is aborted and
//!   confirmed gone by the caller), the receipt written, exit 130/143;
//! - with a deployment: the receipt is written at once (outcome `aborted`),
//!   `--on-abort` is applied (StopDeployment goes out within milliseconds),
//!   and the receipt is rewritten as the stop and the rollback progress, so
//!   a SIGKILL at any moment leaves the last state ferry knew. The wait is
//!   bounded by `--abort-grace`; a second signal ends it at once.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::deployments;
use crate::event::{AbortRecord, Event, Outcome, Reporter};
use crate::exit::ExitCode;
use crate::follow::{self, Followed};
use crate::receipt::{self, Keeper};
use crate::rollback::{self, RollbackError};
use crate::watch::{WatchError, WatchOptions};

/// `--on-abort`: what to do with the deployment on SIGINT/SIGTERM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnAbort {
    /// StopDeployment without rollback: instances keep what they have.
    Stop,
    /// StopDeployment with rollback: CodeDeploy redeploys the last good revision.
    StopAndRollback,
    /// Leave the deployment running; `ferry watch` can follow it later.
    Leave,
}

impl OnAbort {
    /// The word used in events and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            OnAbort::Stop => "stop",
            OnAbort::StopAndRollback => "stop-and-rollback",
            OnAbort::Leave => "leave",
        }
    }
}

/// Which signal arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (Jenkins' abort).
    Terminate,
}

impl Received {
    /// `SIGINT` / `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Received::Interrupt => "SIGINT",
            Received::Terminate => "SIGTERM",
        }
    }

    /// 130 / 143.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Received::Interrupt => ExitCode::Interrupted,
            Received::Terminate => ExitCode::Terminated,
        }
    }
}

/// SIGINT and SIGTERM, caught from the moment this is made (a signal that
/// arrives before anyone waits is kept, not lost).
pub struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    /// Installs the handlers. From then on these signals no longer kill the
    /// process: keep the window between this and the wait short.
    ///
    /// The handler replaces whatever disposition the process inherited,
    /// `SIG_IGN` included: a non-interactive shell starts `cmd &` with SIGINT
    /// ignored, and ferry still answers it (signal-hook, under tokio, installs
    /// its handler over an ignored signal; `tests/rollback.rs` holds it to that).
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())? })
    }

    /// Waits for the next signal.
    pub async fn recv(&mut self) -> Received {
        tokio::select! {
            _ = self.int.recv() => Received::Interrupt,
            _ = self.term.recv() => Received::Terminate,
        }
    }
}

/// Where a command was when a signal came: the receipt's `abort.phase`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Building or checking the bundle.
    Bundle,
    /// Assuming the role.
    Assume,
    /// Choosing what to roll back to.
    Plan,
    /// Uploading the bundle.
    Upload,
    /// CreateDeployment in flight, or queued behind a busy group.
    Deploy,
    /// Following the deployment.
    Watch,
}

impl Phase {
    /// The word used in the receipt and the events.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Bundle => "bundle",
            Phase::Assume => "assume",
            Phase::Plan => "plan",
            Phase::Upload => "upload",
            Phase::Deploy => "deploy",
            Phase::Watch => "watch",
        }
    }
}

/// The signal handlers of one command, installed before its first step.
pub struct Guard {
    signals: Option<Signals>,
}

impl Guard {
    /// Installs the handlers; if that fails (it should not), says so and
    /// carries on with the default dispositions.
    pub fn install(reporter: &dyn Reporter) -> Guard {
        match Signals::install() {
            Ok(s) => Guard { signals: Some(s) },
            Err(e) => {
                reporter.report(&Event::Warning {
                    message: format!("cannot catch SIGINT/SIGTERM ({e}); an abort will kill ferry without a receipt"),
                });
                Guard { signals: None }
            }
        }
    }

    /// Runs `work` unless a signal comes first; then `work` is dropped
    /// (cancelling what it had in flight) and the signal returned.
    pub async fn run<F: Future>(&mut self, work: F) -> Result<F::Output, Received> {
        match self.signals.as_mut() {
            None => Ok(work.await),
            Some(signals) => tokio::select! {
                biased;
                sig = signals.recv() => Err(sig),
                out = work => Ok(out),
            },
        }
    }

    /// The handlers, to wait for a signal beside other work.
    pub fn signals(&mut self) -> Option<&mut Signals> {
        self.signals.as_mut()
    }
}

/// Starts the receipt's account of an abort and writes it at once: outcome
/// `aborted`, the signal, the phase, and everything the receipt knew.
pub fn begin(keeper: &mut Keeper, signal: Received, phase: Phase, action: &str, reporter: &dyn Reporter) {
    let r = &mut keeper.receipt;
    r.outcome = Some(Outcome::Aborted);
    r.signal = Some(signal.name().into());
    r.abort = Some(Box::new(AbortRecord {
        phase: phase.as_str().into(),
        action: action.into(),
        received_at: receipt::now_utc(),
        ..Default::default()
    }));
    keeper.save(reporter);
}

/// A signal stopped a step before any deployment existed: reports it,
/// records it in the receipt (written at once) and returns 130/143.
pub fn interrupted(keeper: &mut Keeper, signal: Received, phase: Phase, reporter: &dyn Reporter) -> ExitCode {
    let detail = match phase {
        Phase::Bundle => "stopped bundling; nothing was uploaded or deployed",
        Phase::Assume | Phase::Plan => "stopped before anything was uploaded or deployed",
        Phase::Upload => "stopped the upload; nothing was deployed",
        Phase::Deploy | Phase::Watch => "no deployment was created; nothing was deployed",
    };
    reporter.report(&Event::Interrupted { signal: signal.name().into(), phase: phase.as_str().into(), detail: detail.into() });
    crate::bundle::abandon_keeping();
    begin(keeper, signal, phase, "none", reporter);
    if let Some(a) = keeper.receipt.abort.as_mut()
        && phase != Phase::Upload
    {
        a.complete = true;
        keeper.save(reporter);
    }
    signal.exit_code()
}

/// How following a deployment ended: on its own, or by a signal.
#[derive(Clone, Debug)]
pub struct Ended {
    /// What ferry knows of the deployment and its rollback.
    pub followed: Followed,
    /// The signal, when one cut the watch short.
    pub signal: Option<Received>,
}

impl Ended {
    /// Puts the outcome, rollback and signal into the receipt and returns
    /// the exit code: the signal's when one came, else the outcome's.
    pub fn record(self, receipt: &mut crate::event::Receipt) -> ExitCode {
        receipt.outcome = Some(self.followed.outcome);
        receipt.rollback_deployment_id = self.followed.rollback_deployment_id;
        receipt.rollback_outcome = self.followed.rollback_outcome;
        match self.signal {
            Some(sig) => {
                receipt.signal = Some(sig.name().into());
                sig.exit_code()
            }
            None => self.followed.outcome.exit_code(),
        }
    }
}

/// What the abort of a deployment may use.
pub struct Abort<'a> {
    /// CodeDeploy.
    pub cd: &'a aws_sdk_codedeploy::Client,
    /// What to do with the deployment.
    pub on_abort: OnAbort,
    /// How long to see the stop and the rollback through.
    pub grace: Duration,
}

/// Follows the deployment (and its rollback) unless a signal comes first,
/// in which case it is aborted (see [`abort_deployment`]).
pub async fn follow_or_abort(
    abort: &Abort<'_>,
    deployment_id: &str,
    opts: &WatchOptions,
    signals: &mut Signals,
    keeper: &mut Keeper,
    reporter: &dyn Reporter,
) -> Result<Ended, WatchError> {
    let received = tokio::select! {
        done = follow::follow(abort.cd, deployment_id, opts, reporter) => return Ok(Ended { followed: done?, signal: None }),
        sig = signals.recv() => sig,
    };
    Ok(abort_deployment(abort, deployment_id, received, Phase::Watch, Some(signals), keeper, reporter).await)
}

/// A signal came while `deployment_id` exists: writes the receipt at once,
/// applies `--on-abort` (StopDeployment is the first call), and rewrites the
/// receipt as the stop and rollback progress, until they end, `grace` runs
/// out, or a second signal comes.
pub async fn abort_deployment(
    abort: &Abort<'_>,
    deployment_id: &str,
    received: Received,
    phase: Phase,
    signals: Option<&mut Signals>,
    keeper: &mut Keeper,
    reporter: &dyn Reporter,
) -> Ended {
    let signalled = Instant::now();
    reporter.report(&Event::Aborting {
        signal: received.name().into(),
        deployment_id: deployment_id.into(),
        action: abort.on_abort.as_str().into(),
    });
    keeper.receipt.deployment_id = Some(deployment_id.into());
    begin(keeper, received, phase, abort.on_abort.as_str(), reporter);
    let second = async {
        match signals {
            Some(s) => s.recv().await,
            None => std::future::pending().await,
        }
    };
    let grace = abort.grace;
    let complete = tokio::select! {
        _ = apply(abort.cd, deployment_id, abort.on_abort, signalled, keeper, reporter) => true,
        _ = tokio::time::sleep(grace) => {
            reporter.report(&Event::Warning { message: format!("--abort-grace ({}s) ran out; reporting what is known", grace.as_secs()) });
            false
        }
        sig = second => {
            reporter.report(&Event::Warning { message: format!("second signal ({}): exiting at once", sig.name()) });
            false
        }
    };
    let record = keeper.receipt.abort.get_or_insert_with(Default::default);
    record.complete = complete;
    let status = record.deployment_status.clone().unwrap_or_else(|| "Unknown".into());
    let rollback_status = record.rollback_status.clone();
    keeper.save(reporter);
    let rollback_id = keeper.receipt.rollback_deployment_id.clone();
    reporter.report(&Event::Aborted {
        signal: received.name().into(),
        deployment_id: deployment_id.into(),
        status: status.clone(),
        rollback_deployment_id: rollback_id.clone(),
        rollback_status: rollback_status.clone(),
    });
    Ended {
        followed: Followed {
            outcome: Outcome::Aborted,
            deployment_outcome: outcome_word(&status),
            rollback_deployment_id: rollback_id,
            // Only a rollback that ended has an outcome.
            rollback_outcome: rollback_status.as_deref().filter(|s| ended(s)).map(outcome_word),
        },
        signal: Some(received),
    }
}

fn outcome_word(status: &str) -> Outcome {
    match status {
        "Succeeded" => Outcome::Succeeded,
        "Failed" => Outcome::Failed,
        "Stopped" => Outcome::Stopped,
        "Ready" => Outcome::Ready,
        _ => Outcome::Aborted,
    }
}

fn ended(status: &str) -> bool {
    !deployments::active_statuses().iter().any(|s| s.as_str() == status) && status != "Unknown"
}

/// Carries out `on_abort`, writing each thing learnt into the receipt.
async fn apply(
    cd: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
    on_abort: OnAbort,
    signalled: Instant,
    keeper: &mut Keeper,
    reporter: &dyn Reporter,
) {
    let rollback = match on_abort {
        OnAbort::Leave => {
            let status = rollback::status_of(cd, deployment_id).await.unwrap_or_else(|_| "Unknown".into());
            record(keeper, reporter, |a| a.deployment_status = Some(status));
            return;
        }
        OnAbort::Stop => false,
        OnAbort::StopAndRollback => true,
    };
    match rollback::request_stop(cd, deployment_id, Some(rollback), reporter).await {
        Ok(()) => record(keeper, reporter, |a| {
            a.stop_requested_at = Some(receipt::now_utc());
            a.stop_requested_after_ms = Some(signalled.elapsed().as_millis() as u64);
        }),
        Err(RollbackError::AlreadyEnded { .. }) => {}
        Err(e) => reporter.report(&Event::Warning { message: e.to_string() }),
    }
    let status = wait_final(cd, deployment_id, keeper, reporter, |a, s| a.deployment_status = Some(s)).await;
    if !matches!(status.as_str(), "Stopped" | "Failed") {
        return;
    }
    // CodeDeploy's rollback: the one the stop asked for, or the one a
    // failure had already started (ferry was following it).
    if let Ok(Some(id)) = follow::rollback_of(cd, deployment_id, reporter).await {
        reporter.report(&Event::RollbackStarted { deployment_id: deployment_id.into(), rollback_deployment_id: id.clone() });
        keeper.receipt.rollback_deployment_id = Some(id.clone());
        record(keeper, reporter, |a| a.rollback_status = Some("Created".into()));
        wait_final(cd, &id, keeper, reporter, |a, s| a.rollback_status = Some(s)).await;
    }
}

/// Changes the receipt's abort record and writes the receipt.
fn record(keeper: &mut Keeper, reporter: &dyn Reporter, change: impl FnOnce(&mut AbortRecord)) {
    change(keeper.receipt.abort.get_or_insert_with(Default::default));
    keeper.save(reporter);
}

/// Polls until the deployment has ended and returns its final status word,
/// writing each new status into the receipt through `set`. The caller
/// bounds the time.
async fn wait_final(
    cd: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
    keeper: &mut Keeper,
    reporter: &dyn Reporter,
    set: impl Fn(&mut AbortRecord, String),
) -> String {
    let mut interval = crate::watch::FAST;
    let started = Instant::now();
    let mut last = String::new();
    loop {
        if let Ok(status) = rollback::status_of(cd, deployment_id).await {
            if status != last {
                last = status.clone();
                record(keeper, reporter, |a| set(a, status.clone()));
            }
            if ended(&status) {
                return status;
            }
        }
        tokio::time::sleep(interval).await;
        if started.elapsed() > Duration::from_secs(2) {
            interval = crate::watch::SLOW;
        }
    }
}
