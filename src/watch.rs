//! watch: follows a deployment until it reaches a final state, reporting each
//! change, and on failure the failed lifecycle events with their script output.

use std::time::{Duration, Instant};

use aws_sdk_codedeploy::types::{DeploymentStatus, TargetStatus};
use aws_sdk_codedeploy::error::ProvideErrorMetadata;

use crate::error::{describe_sdk_error, is_unreachable};
use crate::report::{Event, Outcome, Overview, Reporter};

/// The fastest poll: right after a change, something else is usually close.
const FAST: Duration = Duration::from_millis(250);
/// The slowest poll. Keeps a finished deployment noticed within 2 s.
const SLOW: Duration = Duration::from_secs(2);

/// How long to follow.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// Give up (exit 5) after this long.
    pub timeout: Duration,
}

/// Why ferry could not follow the deployment (the deployment itself may be fine).
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// CodeDeploy refused to describe the deployment.
    #[error("cannot read deployment {deployment_id}: {detail}. Check the deployment id and that the role may call codedeploy:GetDeployment.")]
    Refused {
        /// The deployment.
        deployment_id: String,
        /// CodeDeploy's code and message.
        detail: String,
    },
}

/// Follows `deployment_id` until Succeeded, Failed or Stopped, or until the
/// timeout. Connection failures and throttling between polls slow the loop
/// down instead of ending it: a network blip must not fail a release.
pub async fn watch(
    cd: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
    opts: &WatchOptions,
    reporter: &dyn Reporter,
) -> Result<Outcome, WatchError> {
    let started = Instant::now();
    let mut last: Option<(String, Overview)> = None;
    let mut interval = FAST;
    loop {
        match cd.get_deployment().deployment_id(deployment_id).send().await {
            Ok(out) => {
                let info = out.deployment_info();
                let status = info.and_then(|i| i.status().cloned());
                let overview = info.and_then(|i| i.deployment_overview()).map(to_overview).unwrap_or_default();
                let word = status.as_ref().map(|s| s.as_str().to_string()).unwrap_or_else(|| "Unknown".into());
                let changed = last.as_ref() != Some(&(word.clone(), overview.clone()));
                if changed {
                    reporter.report(&Event::DeploymentStatus {
                        deployment_id: deployment_id.to_string(),
                        status: word.clone(),
                        overview: overview.clone(),
                    });
                    last = Some((word, overview));
                    interval = FAST;
                } else {
                    interval = (interval * 3 / 2).min(SLOW);
                }
                let outcome = match status {
                    Some(DeploymentStatus::Succeeded) => Some(Outcome::Succeeded),
                    Some(DeploymentStatus::Failed) => Some(Outcome::Failed),
                    Some(DeploymentStatus::Stopped) => Some(Outcome::Stopped),
                    _ => None,
                };
                if let Some(outcome) = outcome {
                    if outcome != Outcome::Succeeded {
                        report_failed_targets(cd, deployment_id, reporter).await;
                    }
                    let error = info.and_then(|i| i.error_information()).map(|e| {
                        let code = e.code().map(|c| c.as_str().to_string()).unwrap_or_default();
                        let msg = e.message().unwrap_or_default();
                        if code.is_empty() { msg.to_string() } else { format!("{code}: {msg}") }
                    });
                    reporter.report(&Event::Finished { deployment_id: deployment_id.to_string(), outcome, error });
                    return Ok(outcome);
                }
            }
            Err(e) if is_unreachable(&e) || e.code() == Some("ThrottlingException") => {
                interval = (interval * 2).min(SLOW * 4);
            }
            Err(e) => {
                return Err(WatchError::Refused { deployment_id: deployment_id.to_string(), detail: describe_sdk_error(&e) });
            }
        }
        if started.elapsed() >= opts.timeout {
            reporter.report(&Event::Finished {
                deployment_id: deployment_id.to_string(),
                outcome: Outcome::TimedOut,
                error: last.map(|(status, o)| {
                    format!("it was {status} with {} of {} instances done", o.succeeded + o.failed + o.skipped, o.total())
                }),
            });
            return Ok(Outcome::TimedOut);
        }
        tokio::time::sleep(interval.min(opts.timeout.saturating_sub(started.elapsed()))).await;
    }
}

fn to_overview(o: &aws_sdk_codedeploy::types::DeploymentOverview) -> Overview {
    Overview {
        pending: o.pending,
        in_progress: o.in_progress,
        succeeded: o.succeeded,
        failed: o.failed,
        skipped: o.skipped,
        ready: o.ready,
    }
}

/// Reports each failed lifecycle event of each failed instance. Best effort:
/// the deployment's own error is reported regardless.
async fn report_failed_targets(cd: &aws_sdk_codedeploy::Client, deployment_id: &str, reporter: &dyn Reporter) {
    let mut ids = Vec::new();
    let mut next_token = None;
    loop {
        let page = cd
            .list_deployment_targets()
            .deployment_id(deployment_id)
            .target_filters(aws_sdk_codedeploy::types::TargetFilterName::TargetStatus, vec!["Failed".to_string()])
            .set_next_token(next_token.take())
            .send()
            .await;
        let Ok(page) = page else { return };
        ids.extend(page.target_ids().iter().cloned());
        match page.next_token() {
            Some(t) if !t.is_empty() => next_token = Some(t.to_string()),
            _ => break,
        }
    }
    // BatchGetDeploymentTargets takes at most 25 ids per call.
    for chunk in ids.chunks(25) {
        let Ok(out) = cd.batch_get_deployment_targets().deployment_id(deployment_id).set_target_ids(Some(chunk.to_vec())).send().await
        else {
            return;
        };
        for target in out.deployment_targets() {
            let Some(inst) = target.instance_target() else { continue };
            if inst.status() != Some(&TargetStatus::Failed) {
                continue;
            }
            for ev in inst.lifecycle_events() {
                if ev.status().map(|s| s.as_str()) != Some("Failed") {
                    continue;
                }
                let diag = ev.diagnostics();
                reporter.report(&Event::LifecycleFailed {
                    deployment_id: deployment_id.to_string(),
                    target_id: inst.target_id().unwrap_or_default().to_string(),
                    lifecycle_event: ev.lifecycle_event_name().unwrap_or_default().to_string(),
                    error_code: diag.and_then(|d| d.error_code()).map(|c| c.as_str().to_string()),
                    script_name: diag.and_then(|d| d.script_name()).map(String::from),
                    message: diag.and_then(|d| d.message()).map(String::from),
                    log_tail: diag.and_then(|d| d.log_tail()).map(String::from),
                });
            }
        }
    }
}
