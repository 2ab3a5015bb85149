//! follow: watch a deployment to its end and, when it failed or was stopped
//! and CodeDeploy rolled it back, watch the rollback deployment too, so the
//! pipeline learns both outcomes and one exit code that tells them apart.

use std::time::{Duration, Instant};

use crate::event::{Event, Outcome, Reporter};
use crate::watch::{self, WatchError, WatchOptions};

/// How long to keep re-reading a failed deployment whose configuration asks
/// for a rollback that CodeDeploy has not linked yet.
const ROLLBACK_LINK_WAIT: Duration = Duration::from_secs(10);

/// How a deployment and its rollback (if any) ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Followed {
    /// The overall outcome: [`Outcome::RolledBack`] when the rollback
    /// Succeeded, [`Outcome::Failed`] when the rollback failed too, otherwise
    /// the deployment's own.
    pub outcome: Outcome,
    /// How the deployment itself ended.
    pub deployment_outcome: Outcome,
    /// The rollback deployment, if CodeDeploy made one.
    pub rollback_deployment_id: Option<String>,
    /// How the rollback ended, if ferry followed it.
    pub rollback_outcome: Option<Outcome>,
}

/// Combines a deployment's outcome with its rollback's.
pub fn combine(deployment: Outcome, rollback: Option<Outcome>) -> Outcome {
    match rollback {
        None => deployment,
        Some(Outcome::Succeeded) => Outcome::RolledBack,
        Some(Outcome::TimedOut) => Outcome::TimedOut,
        // A failed or stopped rollback leaves the group in an unknown state.
        Some(_) => Outcome::Failed,
    }
}

/// Follows `deployment_id`, then its rollback, within `opts.timeout` in all.
pub async fn follow(
    cd: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
    opts: &WatchOptions,
    reporter: &dyn Reporter,
) -> Result<Followed, WatchError> {
    let started = Instant::now();
    let first = watch::watch(cd, deployment_id, opts, reporter).await?;
    let mut followed =
        Followed { outcome: first, deployment_outcome: first, rollback_deployment_id: None, rollback_outcome: None };
    if !matches!(first, Outcome::Failed | Outcome::Stopped) {
        return Ok(followed);
    }
    let Some(rollback_id) = rollback_of(cd, deployment_id, reporter).await? else {
        return Ok(followed);
    };
    reporter.report(&Event::RollbackStarted {
        deployment_id: deployment_id.to_string(),
        rollback_deployment_id: rollback_id.clone(),
    });
    let remaining = opts.timeout.saturating_sub(started.elapsed()).max(Duration::from_secs(1));
    let rollback_opts = WatchOptions { timeout: remaining, ..opts.clone() };
    let second = watch::watch(cd, &rollback_id, &rollback_opts, reporter).await?;
    followed.outcome = combine(first, Some(second));
    // The rollback's own "succeeded" must not be the log's last word.
    reporter.report(&Event::Verdict {
        deployment_id: deployment_id.to_string(),
        deployment_outcome: first,
        rollback_deployment_id: rollback_id.clone(),
        rollback_outcome: second,
        outcome: followed.outcome,
        exit_code: followed.outcome.exit_code().code(),
    });
    followed.rollback_deployment_id = Some(rollback_id);
    followed.rollback_outcome = Some(second);
    Ok(followed)
}

/// The rollback CodeDeploy linked to a deployment that ended badly, if any.
/// Reports why there is none when CodeDeploy says so.
pub async fn rollback_of(
    cd: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
    reporter: &dyn Reporter,
) -> Result<Option<String>, WatchError> {
    let deadline = Instant::now() + ROLLBACK_LINK_WAIT;
    loop {
        let out = cd.get_deployment().deployment_id(deployment_id).send().await.map_err(|e| WatchError::Refused {
            deployment_id: deployment_id.into(),
            detail: crate::aws_error::describe_sdk_error(&e),
        })?;
        let Some(info) = out.deployment_info() else { return Ok(None) };
        let rollback = info.rollback_info();
        if let Some(id) = rollback.and_then(|r| r.rollback_deployment_id()).filter(|id| !id.is_empty()) {
            return Ok(Some(id.to_string()));
        }
        if let Some(msg) = rollback.and_then(|r| r.rollback_message()).filter(|m| !m.is_empty()) {
            reporter.report(&Event::RollbackSkipped { deployment_id: deployment_id.into(), reason: msg.into() });
            return Ok(None);
        }
        // Only wait for a link the deployment's configuration promises.
        let promised = info.auto_rollback_configuration().is_some_and(|c| c.enabled());
        if !promised || Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(watch::SLOW).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_successful_rollback_is_its_own_outcome_and_a_failed_one_is_a_failure() {
        assert_eq!(combine(Outcome::Failed, Some(Outcome::Succeeded)), Outcome::RolledBack);
        assert_eq!(combine(Outcome::Stopped, Some(Outcome::Succeeded)), Outcome::RolledBack);
        assert_eq!(combine(Outcome::Failed, Some(Outcome::Failed)), Outcome::Failed);
        assert_eq!(combine(Outcome::Stopped, Some(Outcome::Failed)), Outcome::Failed);
        assert_eq!(combine(Outcome::Failed, None), Outcome::Failed);
        assert_eq!(combine(Outcome::Failed, Some(Outcome::TimedOut)), Outcome::TimedOut);
        assert_eq!(Outcome::RolledBack.exit_code().code(), 7);
    }
}
