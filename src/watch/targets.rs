//! Per-instance tracking: which lifecycle events changed since the last read.
//!
//! A Lambda deployment has one target, the function's alias: its events
//! (the hook functions' BeforeAllowTraffic and AfterAllowTraffic, and
//! AllowTraffic) are followed like an instance's, and its traffic (the
//! target version's weight) is reported each time it moves.
//!
//! An ECS deployment has one target too, the service (`CLUSTER:SERVICE`):
//! its events (the hook functions', AllowTestTraffic, AllowTraffic) are
//! followed the same way, and the replacement task set's share of
//! production traffic is reported each time it moves.
//!
//! A blue/green deployment has two fleets: each instance is labelled once,
//! Blue (original) or Green (replacement), before its first event line, and
//! a replacement standing Ready is followed on (its traffic events come
//! after ContinueDeployment).
//!
//! Small fleets get a line per lifecycle event change. Large fleets would
//! drown the log (1,000 instances × 7 events), so above [`DETAIL_LIMIT`] only
//! failures are read and reported; the deployment's counts show the rest.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_codedeploy::types::{
    EcsTarget, InstanceTarget, LambdaTarget, LifecycleEventStatus, TargetFilterName, TargetLabel, TargetStatus,
};

use crate::event::{Event, FailedInstance, Overview, Reporter};

/// Fleets up to this size get per-event lines.
pub const DETAIL_LIMIT: usize = 50;
/// BatchGetDeploymentTargets accepts at most this many ids.
const BATCH: usize = 25;

/// A failed read of instance detail.
#[derive(Debug)]
pub struct ReadError {
    /// Throttling, 5xx or no connection: try again later.
    pub transient: bool,
    /// What CodeDeploy said.
    pub detail: String,
}

impl<E> From<aws_sdk_codedeploy::error::SdkError<E>> for ReadError
where
    E: aws_sdk_codedeploy::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    fn from(e: aws_sdk_codedeploy::error::SdkError<E>) -> Self {
        ReadError { transient: super::transient(&e), detail: crate::aws_error::describe_sdk_error(&e) }
    }
}

#[derive(Debug, Default)]
struct TargetState {
    /// Lifecycle event name → last seen status.
    events: BTreeMap<String, LifecycleEventStatus>,
    /// Succeeded, Failed or Skipped: not read again.
    done: bool,
    /// Its Blue/Green label was reported.
    labelled: bool,
    /// Names of the events that failed.
    failed_events: Vec<String>,
    /// The event in progress, for the timeout message.
    current: Option<String>,
}

/// What ferry knows of one deployment's instances.
#[derive(Debug)]
pub struct Targets {
    deployment_id: String,
    ids: Vec<String>,
    state: BTreeMap<String, TargetState>,
    reported: HashSet<(String, String)>,
    failed_seen: i64,
    total: i64,
    /// A replacement (Green) instance was seen: the deployment is blue/green.
    blue_green: bool,
    /// A Lambda deployment's target version share (or an ECS deployment's
    /// replacement task set's) last reported, in percent.
    traffic_percent: Option<f64>,
}

impl Targets {
    /// Nothing known yet.
    pub fn new(deployment_id: &str) -> Targets {
        Targets {
            deployment_id: deployment_id.to_string(),
            ids: Vec::new(),
            state: BTreeMap::new(),
            reported: HashSet::new(),
            failed_seen: 0,
            total: 0,
            blue_green: false,
            traffic_percent: None,
        }
    }

    fn detailed(&self) -> bool {
        self.total as usize <= DETAIL_LIMIT
    }

    /// Reads what may have changed and reports it. Returns whether anything
    /// changed. `last` forces a final read so every failure is reported
    /// before the summary.
    pub async fn refresh(
        &mut self,
        cd: &aws_sdk_codedeploy::Client,
        overview: &Overview,
        last: bool,
        reporter: &dyn Reporter,
    ) -> Result<bool, ReadError> {
        let total = overview.total();
        if total == 0 {
            return Ok(false);
        }
        self.total = total;
        // Large fleets never need the full id list: only failures are read,
        // and listing 1,000 ids every round would itself be throttled.
        if self.detailed() && (self.ids.len() as i64) < total {
            self.ids = list(cd, &self.deployment_id, None).await?;
        }
        let to_read: Vec<String> = if self.detailed() {
            self.ids.iter().filter(|id| !self.state.get(*id).is_some_and(|s| s.done)).cloned().collect()
        } else if overview.failed > self.failed_seen || (last && overview.failed > 0) {
            let failed = list(cd, &self.deployment_id, Some(TargetStatus::Failed)).await?;
            failed.into_iter().filter(|id| !self.state.get(id).is_some_and(|s| s.done)).collect()
        } else {
            Vec::new()
        };
        let mut changed = false;
        for chunk in to_read.chunks(BATCH) {
            let out = cd
                .batch_get_deployment_targets()
                .deployment_id(&self.deployment_id)
                .set_target_ids(Some(chunk.to_vec()))
                .send()
                .await?;
            for lambda in out.deployment_targets().iter().filter_map(|t| t.lambda_target()) {
                // Events first: the traffic moves inside AllowTraffic.
                changed |= self.update(&as_instance(lambda), reporter);
                changed |= self.traffic(lambda, reporter);
            }
            for ecs in out.deployment_targets().iter().filter_map(|t| t.ecs_target()) {
                changed |= self.update(&ecs_as_instance(ecs), reporter);
                changed |= self.task_set_traffic(ecs, reporter);
            }
            let read: Vec<&InstanceTarget> = out.deployment_targets().iter().filter_map(|t| t.instance_target()).collect();
            self.blue_green |= read.iter().any(|inst| inst.instance_label() == Some(&TargetLabel::Green));
            for inst in read {
                changed |= self.update(inst, reporter);
            }
        }
        self.failed_seen = overview.failed;
        Ok(changed)
    }

    /// Reads every instance once and reports its current state (`ferry status`).
    pub async fn snapshot(
        &mut self,
        cd: &aws_sdk_codedeploy::Client,
        overview: &Overview,
        reporter: &dyn Reporter,
    ) -> Result<(), ReadError> {
        self.refresh(cd, overview, true, reporter).await.map(|_| ())
    }

    /// A Lambda target's traffic: reported each time the target version's
    /// share changes. Returns whether it did.
    fn traffic(&mut self, target: &LambdaTarget, reporter: &dyn Reporter) -> bool {
        let Some(info) = target.lambda_function_info() else { return false };
        let percent = info.target_version_weight() * 100.0;
        if self.traffic_percent.is_some_and(|p| (p - percent).abs() < 1e-9) {
            return false;
        }
        self.traffic_percent = Some(percent);
        reporter.report(&Event::TrafficShifted {
            deployment_id: self.deployment_id.clone(),
            function: info.function_name().unwrap_or_default().to_string(),
            alias: info.function_alias().unwrap_or_default().to_string(),
            current_version: info.current_version().unwrap_or_default().to_string(),
            target_version: info.target_version().unwrap_or_default().to_string(),
            target_percent: percent,
        });
        true
    }

    /// An ECS target's traffic: reported each time the replacement (Green)
    /// task set's share changes. Returns whether it did.
    fn task_set_traffic(&mut self, target: &EcsTarget, reporter: &dyn Reporter) -> bool {
        let sets = target.task_sets_info();
        let labelled = |label: TargetLabel| sets.iter().find(|t| t.task_set_label() == Some(&label));
        let Some(replacement) = labelled(TargetLabel::Green) else { return false };
        let percent = replacement.traffic_weight();
        if self.traffic_percent.is_some_and(|p| (p - percent).abs() < 1e-9) {
            return false;
        }
        self.traffic_percent = Some(percent);
        reporter.report(&Event::TaskSetTraffic {
            deployment_id: self.deployment_id.clone(),
            target_id: target.target_id().unwrap_or_default().to_string(),
            replacement: replacement.identifer().unwrap_or_default().to_string(),
            replacement_percent: percent,
            original_percent: labelled(TargetLabel::Blue).map_or(100.0 - percent, |t| t.traffic_weight()),
        });
        true
    }

    fn update(&mut self, inst: &InstanceTarget, reporter: &dyn Reporter) -> bool {
        let id = inst.target_id().unwrap_or_default().to_string();
        let detailed = self.detailed();
        let target_status = inst.status();
        let state = self.state.entry(id.clone()).or_default();
        let mut changed = false;
        if self.blue_green
            && !state.labelled
            && let Some(label) = inst.instance_label()
        {
            state.labelled = true;
            reporter.report(&Event::TargetLabelled {
                deployment_id: self.deployment_id.clone(),
                target_id: id.clone(),
                label: label.as_str().to_string(),
            });
        }
        state.current = None;
        // A skipped instance is one line, not seven "Skipped" events.
        let skipped = target_status == Some(&TargetStatus::Skipped);
        if skipped && !state.done {
            reporter.report(&Event::TargetSkipped { deployment_id: self.deployment_id.clone(), target_id: id.clone() });
            changed = true;
        }
        let events_total = inst.lifecycle_events().len() as u32;
        for (index, ev) in inst.lifecycle_events().iter().enumerate() {
            let name = ev.lifecycle_event_name().unwrap_or_default().to_string();
            // An event without a status has nothing to report yet.
            let Some(status) = ev.status().cloned() else { continue };
            if status == LifecycleEventStatus::InProgress {
                state.current = Some(name.clone());
            }
            if state.events.get(&name) == Some(&status) {
                continue;
            }
            state.events.insert(name.clone(), status.clone());
            if status == LifecycleEventStatus::Pending || (skipped && status == LifecycleEventStatus::Skipped) {
                continue;
            }
            changed = true;
            if detailed {
                let duration_ms = match (ev.start_time(), ev.end_time()) {
                    (Some(s), Some(e)) => {
                        let ms = (e.as_secs_f64() - s.as_secs_f64()) * 1000.0;
                        Some(ms.max(0.0) as u64)
                    }
                    _ => None,
                };
                reporter.report(&Event::TargetEventChanged {
                    deployment_id: self.deployment_id.clone(),
                    target_id: id.clone(),
                    lifecycle_event: name.clone(),
                    status: status.as_str().to_string(),
                    duration_ms,
                    position: index as u32 + 1,
                    events_total,
                });
            }
            if status == LifecycleEventStatus::Failed && self.reported.insert((id.clone(), name.clone())) {
                state.failed_events.push(name.clone());
                let diag = ev.diagnostics();
                reporter.report(&Event::LifecycleFailed {
                    deployment_id: self.deployment_id.clone(),
                    target_id: id.clone(),
                    lifecycle_event: name,
                    error_code: diag.and_then(|d| d.error_code()).map(|c| c.as_str().to_string()),
                    script_name: diag.and_then(|d| d.script_name()).map(String::from),
                    message: diag.and_then(|d| d.message()).map(String::from),
                    log_tail: diag.and_then(|d| d.log_tail()).map(String::from),
                });
            }
        }
        let was_done = state.done;
        // A Ready replacement is not done: traffic moves onto it later.
        state.done = matches!(target_status, Some(TargetStatus::Succeeded | TargetStatus::Failed | TargetStatus::Skipped));
        if detailed && state.done && !was_done {
            reporter.report(&Event::TargetFinished {
                deployment_id: self.deployment_id.clone(),
                target_id: id,
                status: target_status.map(|s| s.as_str().to_string()).unwrap_or_default(),
            });
            changed = true;
        }
        changed
    }

    /// Instances with failed events, for the final summary.
    pub fn failed_instances(&self) -> Vec<FailedInstance> {
        self.state
            .iter()
            .filter(|(_, s)| !s.failed_events.is_empty())
            .map(|(id, s)| FailedInstance { target_id: id.clone(), lifecycle_events: s.failed_events.clone() })
            .collect()
    }

    /// "; i-1 in AfterInstall, i-2 in Install" for the timeout message.
    pub fn still_running(&self) -> String {
        let running: Vec<String> = self
            .state
            .iter()
            .filter(|(_, s)| !s.done)
            .filter_map(|(id, s)| s.current.as_ref().map(|ev| format!("{id} in {ev}")))
            .take(10)
            .collect();
        if running.is_empty() { String::new() } else { format!("; still running: {}", running.join(", ")) }
    }
}

/// A Lambda deployment's one target (its function's alias) as the
/// lifecycle events of an instance: the same lines, failures and summary.
fn as_instance(lambda: &LambdaTarget) -> InstanceTarget {
    InstanceTarget::builder()
        .set_deployment_id(lambda.deployment_id().map(String::from))
        .set_target_id(lambda.target_id().map(String::from))
        .set_status(lambda.status().cloned())
        .set_lifecycle_events(Some(lambda.lifecycle_events().to_vec()))
        .build()
}

/// An ECS deployment's one target (its service) as the lifecycle events of
/// an instance.
fn ecs_as_instance(ecs: &EcsTarget) -> InstanceTarget {
    InstanceTarget::builder()
        .set_deployment_id(ecs.deployment_id().map(String::from))
        .set_target_id(ecs.target_id().map(String::from))
        .set_status(ecs.status().cloned())
        .set_lifecycle_events(Some(ecs.lifecycle_events().to_vec()))
        .build()
}

/// All target ids of the deployment, optionally only those in `status`.
/// ListDeploymentTargets is not marked paginated in CodeDeploy's model, so
/// the SDK has no paginator for it: nextToken is followed here.
async fn list(
    cd: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
    status: Option<TargetStatus>,
) -> Result<Vec<String>, ReadError> {
    let mut ids = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let mut req = cd.list_deployment_targets().deployment_id(deployment_id).set_next_token(next_token.take());
        if let Some(s) = &status {
            req = req.target_filters(TargetFilterName::TargetStatus, vec![s.as_str().to_string()]);
        }
        let page = req.send().await?;
        ids.extend(page.target_ids().iter().cloned());
        match page.next_token() {
            Some(t) if !t.is_empty() => next_token = Some(t.to_string()),
            _ => return Ok(ids),
        }
    }
}
