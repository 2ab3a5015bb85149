//! watch: follows a deployment until it reaches a final state, reporting
//! each change of the deployment and of its instances' lifecycle events, and
//! on failure which instance failed which event, with the hook's output.
//!
//! Polling adapts: fast right after something changed, slower while nothing
//! does, never slower than [`IDLE_MAX`](poll::IDLE_MAX), so a finished deployment is noticed
//! within a second. Throttling and lost connections slow the loop down
//! instead of ending it: a network blip must not fail a release.

mod poll;
mod targets;

use std::time::{Duration, Instant};

use aws_sdk_codedeploy::error::ProvideErrorMetadata;
use aws_sdk_codedeploy::types::{DeploymentInfo, DeploymentStatus};

use crate::aws_error::{describe_sdk_error, is_unreachable};
use crate::deadline::{self, Watchdog};
use crate::event::{Event, Outcome, Overview, Reporter};

use poll::Poll;
pub use poll::{FAST, SLOW};
use targets::Targets;

/// How to follow.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// Give up (exit 5) after this long.
    pub timeout: Duration,
    /// Keep waiting when a blue/green deployment is Ready (waiting for
    /// traffic to be rerouted) instead of ending there.
    pub wait_ready: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions { timeout: Duration::from_secs(3600), wait_ready: false }
    }
}

/// Why ferry could not follow the deployment (the deployment itself may be fine).
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// CodeDeploy refused to describe the deployment.
    #[error(
        "cannot read deployment {deployment_id}: {detail}. Check the deployment id, the region, and that the role \
         may call codedeploy:GetDeployment, ListDeploymentTargets and BatchGetDeploymentTargets."
    )]
    Refused {
        /// The deployment.
        deployment_id: String,
        /// CodeDeploy's code and message.
        detail: String,
    },
    /// CodeDeploy could not be reached (refused, reset, or no answer in time).
    #[error(
        "could not reach CodeDeploy to read deployment {deployment_id}: {detail}. Check the network or proxy, and \
         AWS_ENDPOINT_URL_CODEDEPLOY if you set it."
    )]
    Unreachable {
        /// The deployment.
        deployment_id: String,
        /// The connection error.
        detail: String,
    },
}

impl WatchError {
    fn of<E>(deployment_id: &str, e: &aws_sdk_codedeploy::error::SdkError<E>) -> WatchError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (deployment_id, detail) = (deployment_id.to_string(), describe_sdk_error(e));
        if is_unreachable(e) {
            WatchError::Unreachable { deployment_id, detail }
        } else {
            WatchError::Refused { deployment_id, detail }
        }
    }
}

/// Whether an error is worth waiting out: throttling, 5xx, or no connection.
fn transient<E: ProvideErrorMetadata + std::error::Error + 'static>(e: &aws_sdk_codedeploy::error::SdkError<E>) -> bool {
    use aws_smithy_runtime_api::client::result::SdkError;
    is_unreachable(e)
        || matches!(e.code(), Some("ThrottlingException" | "Throttling" | "RequestLimitExceeded"))
        || matches!(e, SdkError::ResponseError(_))
        || matches!(e, SdkError::ServiceError(ctx) if ctx.raw().status().is_server_error())
}

/// One deployment's state as last read.
fn outcome_of(status: Option<&DeploymentStatus>, wait_ready: bool) -> Option<Outcome> {
    match status? {
        DeploymentStatus::Succeeded => Some(Outcome::Succeeded),
        DeploymentStatus::Failed => Some(Outcome::Failed),
        DeploymentStatus::Stopped => Some(Outcome::Stopped),
        DeploymentStatus::Ready if !wait_ready => Some(Outcome::Ready),
        _ => None,
    }
}

fn to_overview(info: &DeploymentInfo) -> Overview {
    info.deployment_overview()
        .map(|o| Overview {
            pending: o.pending,
            in_progress: o.in_progress,
            succeeded: o.succeeded,
            failed: o.failed,
            skipped: o.skipped,
            ready: o.ready,
        })
        .unwrap_or_default()
}

fn error_of(info: &DeploymentInfo) -> Option<String> {
    info.error_information().map(|e| {
        let code = e.code().map(|c| c.as_str().to_string()).unwrap_or_default();
        let msg = e.message().unwrap_or_default();
        if code.is_empty() { msg.to_string() } else { format!("{code}: {msg}") }
    })
}

/// How long an ended deployment took by CodeDeploy's clock: createTime to
/// completeTime. A deployment that had ended before ferry first read it
/// (`ferry watch` of an old one) took that long, not the 0 ms ferry spent.
fn took_ms(info: &DeploymentInfo) -> Option<u64> {
    let (start, end) = (info.create_time()?, info.complete_time()?);
    let ms = (end.as_secs_f64() - start.as_secs_f64()) * 1000.0;
    (ms >= 0.0).then_some(ms as u64)
}

/// Follows `deployment_id` until it ends or the timeout elapses (the
/// command's `--timeout` too, whichever comes first), and returns how it
/// ended. A call CodeDeploy does not answer is reported while it is silent
/// and abandoned at the deadline.
pub async fn watch(
    cd: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
    opts: &WatchOptions,
    reporter: &dyn Reporter,
) -> Result<Outcome, WatchError> {
    let deadline = deadline::earlier(deadline::after(opts.timeout));
    let dog = Watchdog::new("CodeDeploy", "following the deployment", reporter);
    let mut seen = Seen::new(deployment_id);
    loop {
        let Ok(answer) = dog.run_until(Some(deadline), cd.get_deployment().deployment_id(deployment_id).send()).await else {
            break;
        };
        match answer {
            Ok(out) => {
                dog.touch();
                seen.contact_restored(reporter);
                let Some(info) = out.deployment_info() else {
                    return Err(WatchError::Refused {
                        deployment_id: deployment_id.into(),
                        detail: "CodeDeploy returned no deployment information".into(),
                    });
                };
                let status = info.status();
                let word = status.map(|s| s.as_str().to_string()).unwrap_or_else(|| "Unknown".into());
                let overview = to_overview(info);
                let outcome = outcome_of(status, opts.wait_ready);
                // Instance lines first, so the log reads in the order things happened.
                let Ok(refreshed) =
                    dog.run_until(Some(deadline), seen.targets.refresh(cd, &overview, outcome.is_some(), reporter)).await
                else {
                    break;
                };
                let instances_changed = match refreshed {
                    Ok(changed) => changed,
                    Err(e) => seen.instances_unreadable(e, reporter),
                };
                let status_changed = seen.status(word, &overview, reporter);
                if let Some(outcome) = outcome {
                    seen.finished(outcome, error_of(info), overview, took_ms(info), reporter);
                    return Ok(outcome);
                }
                seen.poll.observed(instances_changed || status_changed);
            }
            Err(e) if transient(&e) => {
                seen.contact_lost(&e, reporter);
                seen.poll.throttled();
            }
            Err(e) => return Err(WatchError::of(deployment_id, &e)),
        }

        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(seen.poll.interval().min(left)).await;
    }
    let budget = deadline::command().map_or(opts.timeout, |d| d.budget().min(opts.timeout));
    seen.timed_out(budget, &dog, reporter);
    Ok(Outcome::TimedOut)
}

/// What following one deployment has seen so far, and what it said.
struct Seen<'a> {
    deployment_id: &'a str,
    started: Instant,
    targets: Targets,
    /// The instances could not be listed, and ferry said why (once).
    targets_refused: bool,
    poll: Poll,
    /// The status and counts last reported.
    last: Option<(String, Overview)>,
    /// CodeDeploy cannot be reached, and ferry said so.
    lost_contact: bool,
}

impl<'a> Seen<'a> {
    fn new(deployment_id: &'a str) -> Seen<'a> {
        Seen {
            deployment_id,
            started: Instant::now(),
            targets: Targets::new(deployment_id),
            targets_refused: false,
            poll: Poll::new(),
            last: None,
            lost_contact: false,
        }
    }

    /// CodeDeploy answered: says so if it had been out of reach.
    fn contact_restored(&mut self, reporter: &dyn Reporter) {
        if self.lost_contact {
            reporter.report(&Event::Warning { message: "contact with CodeDeploy restored".into() });
            self.lost_contact = false;
        }
    }

    /// A transient failure: says once that CodeDeploy is out of reach.
    fn contact_lost<E, R>(&mut self, e: &aws_sdk_codedeploy::error::SdkError<E, R>, reporter: &dyn Reporter)
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        if is_unreachable(e) && !self.lost_contact {
            reporter.report(&Event::Warning {
                message: format!("lost contact with CodeDeploy ({}); still waiting", describe_sdk_error(e)),
            });
            self.lost_contact = true;
        }
    }

    /// The instances could not be read. Instance detail is a bonus, the
    /// deployment's own status still decides; but ferry says once why it is
    /// missing instead of going quiet about instances. Nothing changed.
    fn instances_unreadable(&mut self, e: targets::ReadError, reporter: &dyn Reporter) -> bool {
        if e.transient {
            self.poll.throttled();
        } else if !self.targets_refused {
            self.targets_refused = true;
            reporter.report(&Event::Warning {
                message: format!(
                    "no per-instance progress for {}: {}. The deployment's own status is still \
                     followed. The role needs codedeploy:ListDeploymentTargets and \
                     BatchGetDeploymentTargets on \"*\" (they take no resource type; `ferry policy deploy` \
                     grants them).",
                    self.deployment_id, e.detail
                ),
            });
        }
        false
    }

    /// Reports the deployment's status and counts when they changed; returns whether they did.
    fn status(&mut self, word: String, overview: &Overview, reporter: &dyn Reporter) -> bool {
        if self.last.as_ref().is_some_and(|(w, o)| *w == word && o == overview) {
            return false;
        }
        reporter.report(&Event::DeploymentStatus {
            deployment_id: self.deployment_id.to_string(),
            status: word.clone(),
            overview: overview.clone(),
        });
        self.last = Some((word, overview.clone()));
        true
    }

    /// The deployment ended: its outcome and the failed instances, and how
    /// long it took: `took_ms` by CodeDeploy's own clock when it gives one,
    /// else how long ferry followed it.
    fn finished(
        &self,
        outcome: Outcome,
        error: Option<String>,
        overview: Overview,
        took_ms: Option<u64>,
        reporter: &dyn Reporter,
    ) {
        reporter.report(&Event::Finished {
            deployment_id: self.deployment_id.to_string(),
            outcome,
            error,
            overview,
            failed_instances: self.targets.failed_instances(),
            elapsed_ms: took_ms.unwrap_or_else(|| self.started.elapsed().as_millis() as u64),
        });
    }

    /// The deadline came first: how far the deployment had got, and how to follow it again.
    fn timed_out(self, budget: Duration, dog: &Watchdog<'_>, reporter: &dyn Reporter) {
        let id = self.deployment_id;
        let (status, overview) = self.last.clone().unwrap_or_else(|| ("Unknown".into(), Overview::default()));
        let silent = if dog.stalled() {
            format!(" (CodeDeploy had not answered for {} s)", dog.silence().as_secs())
        } else {
            String::new()
        };
        let error = format!(
            "after {}s it was still {status} with {} of {} instances done{}{silent}; it may still be running \
             (ferry watch {id} follows it again)",
            budget.as_secs(),
            overview.succeeded + overview.failed + overview.skipped,
            overview.total(),
            self.targets.still_running()
        );
        self.finished(Outcome::TimedOut, Some(error), overview, None, reporter);
    }
}

/// Reads a deployment once and reports its state and its instances' current
/// lifecycle events (`ferry status`).
pub async fn status(cd: &aws_sdk_codedeploy::Client, deployment_id: &str, reporter: &dyn Reporter) -> Result<String, WatchError> {
    let out = cd.get_deployment().deployment_id(deployment_id).send().await.map_err(|e| WatchError::of(deployment_id, &e))?;
    let info = out.deployment_info().ok_or_else(|| WatchError::Refused {
        deployment_id: deployment_id.into(),
        detail: "CodeDeploy returned no deployment information".into(),
    })?;
    let word = info.status().map(|s| s.as_str().to_string()).unwrap_or_else(|| "Unknown".into());
    let overview = to_overview(info);
    reporter.report(&Event::DeploymentStatus {
        deployment_id: deployment_id.to_string(),
        status: word.clone(),
        overview: overview.clone(),
    });
    let mut targets = Targets::new(deployment_id);
    targets
        .snapshot(cd, &overview, reporter)
        .await
        .map_err(|e| WatchError::Refused { deployment_id: deployment_id.to_string(), detail: e.detail })?;
    if let Some(error) = error_of(info) {
        reporter.report(&Event::Warning { message: format!("deployment {deployment_id}: {error}") });
    }
    Ok(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ended_deployment_took_codedeploys_create_to_complete_time() {
        use aws_smithy_types::DateTime;
        let info = |complete: Option<DateTime>| {
            DeploymentInfo::builder().create_time(DateTime::from_secs(1_000)).set_complete_time(complete).build()
        };
        assert_eq!(took_ms(&info(Some(DateTime::from_millis(1_000_000 + 83_500)))), Some(83_500));
        assert_eq!(took_ms(&info(None)), None, "not ended: ferry's own time");
    }

    #[test]
    fn ready_ends_the_watch_unless_asked_to_wait() {
        assert_eq!(outcome_of(Some(&DeploymentStatus::Ready), false), Some(Outcome::Ready));
        assert_eq!(outcome_of(Some(&DeploymentStatus::Ready), true), None);
    }

    #[test]
    fn baking_and_in_progress_are_not_final() {
        for s in [DeploymentStatus::Baking, DeploymentStatus::InProgress, DeploymentStatus::Created, DeploymentStatus::Queued] {
            assert_eq!(outcome_of(Some(&s), false), None, "{s:?}");
        }
    }
}
