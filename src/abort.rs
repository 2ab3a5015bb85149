//! abort: what ferry does when Jenkins aborts the build (SIGTERM) or someone
//! presses Ctrl-C (SIGINT) while it follows a deployment.
//!
//! Jenkins' abort and `timeout {}` send SIGTERM and, some seconds later,
//! SIGKILL. So the first signal applies `--on-abort` (stop, stop and roll
//! back, or leave the deployment running), reports what that achieved within
//! `--abort-grace`, and returns so the receipt gets written; a second signal
//! ends the wait at once.

use std::time::{Duration, Instant};

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::deployments;
use crate::event::{Event, Outcome, Reporter};
use crate::exit::ExitCode;
use crate::follow::{self, Followed};
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

/// Follows the deployment (and its rollback) unless a signal comes first,
/// in which case `on_abort` is applied and reported within `grace`.
pub async fn follow_or_abort(
    cd: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
    opts: &WatchOptions,
    on_abort: OnAbort,
    grace: Duration,
    signals: &mut Signals,
    reporter: &dyn Reporter,
) -> Result<Ended, WatchError> {
    let received = tokio::select! {
        done = follow::follow(cd, deployment_id, opts, reporter) => return Ok(Ended { followed: done?, signal: None }),
        sig = signals.recv() => sig,
    };
    reporter.report(&Event::Aborting {
        signal: received.name().into(),
        deployment_id: deployment_id.into(),
        action: on_abort.as_str().into(),
    });
    let mut state = AbortState { status: "Unknown".into(), rollback_id: None, rollback_status: None };
    tokio::select! {
        _ = apply(cd, deployment_id, on_abort, &mut state, reporter) => {}
        _ = tokio::time::sleep(grace) => {
            reporter.report(&Event::Warning { message: format!("--abort-grace ({}s) ran out; reporting what is known", grace.as_secs()) });
        }
        second = signals.recv() => {
            reporter.report(&Event::Warning { message: format!("second signal ({}): exiting at once", second.name()) });
        }
    }
    reporter.report(&Event::Aborted {
        signal: received.name().into(),
        deployment_id: deployment_id.into(),
        status: state.status.clone(),
        rollback_deployment_id: state.rollback_id.clone(),
        rollback_status: state.rollback_status.clone(),
    });
    Ok(Ended {
        followed: Followed {
            outcome: Outcome::Aborted,
            deployment_outcome: outcome_word(&state.status),
            rollback_deployment_id: state.rollback_id,
            rollback_outcome: state.rollback_status.as_deref().map(outcome_word),
        },
        signal: Some(received),
    })
}

/// What the abort has learnt so far; filled in place so a cut-short wait
/// still reports it.
struct AbortState {
    status: String,
    rollback_id: Option<String>,
    rollback_status: Option<String>,
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

async fn apply(
    cd: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
    on_abort: OnAbort,
    state: &mut AbortState,
    reporter: &dyn Reporter,
) {
    let rollback = match on_abort {
        OnAbort::Leave => {
            state.status = rollback::status_of(cd, deployment_id).await.unwrap_or_else(|_| "Unknown".into());
            return;
        }
        OnAbort::Stop => false,
        OnAbort::StopAndRollback => true,
    };
    match rollback::request_stop(cd, deployment_id, Some(rollback), reporter).await {
        Ok(()) | Err(RollbackError::AlreadyEnded { .. }) => {}
        Err(e) => reporter.report(&Event::Warning { message: e.to_string() }),
    }
    state.status = wait_final(cd, deployment_id).await;
    if !rollback || !matches!(state.status.as_str(), "Stopped" | "Failed") {
        return;
    }
    if let Ok(Some(id)) = follow::rollback_of(cd, deployment_id, reporter).await {
        reporter.report(&Event::RollbackStarted { deployment_id: deployment_id.into(), rollback_deployment_id: id.clone() });
        state.rollback_id = Some(id.clone());
        state.rollback_status = Some("InProgress".into());
        state.rollback_status = Some(wait_final(cd, &id).await);
    }
}

/// Polls until the deployment has ended and returns its final status word.
/// The caller bounds the time.
async fn wait_final(cd: &aws_sdk_codedeploy::Client, deployment_id: &str) -> String {
    let active: Vec<String> = deployments::active_statuses().iter().map(|s| s.as_str().to_string()).collect();
    let mut interval = crate::watch::FAST;
    let started = Instant::now();
    loop {
        if let Ok(status) = rollback::status_of(cd, deployment_id).await
            && !active.contains(&status)
        {
            return status;
        }
        tokio::time::sleep(interval).await;
        if started.elapsed() > Duration::from_secs(2) {
            interval = crate::watch::SLOW;
        }
    }
}
